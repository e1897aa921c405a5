package main

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// Every command refuses arguments it does not take and invalid values as a usage error (exit
// status 2), before it touches a database, a port or a file: a stray word is never ignored.
func TestCommandsRefuseBadArguments(t *testing.T) {
	cases := map[string][][]string{
		"api":        {{"now"}, {"-conns", "0"}, {"-procs", "-1"}, {"-conns", "x"}},
		"build":      {{"now"}, {"-select", "dim_accounts", "extra"}, {"-model", "x"}},
		"capture":    {{"once"}, {"-chunk-size", "0"}, {"-procs", "-1"}},
		"dlq":        {{"frobnicate"}, {"-all"}, {"replay"}},
		"generate":   {{"once", "--config", "x.yaml"}, {"-rate", "-1"}, {"-seed", "x"}},
		"kafka-tail": {{}, {"a", "b"}},
		"load":       {{}, {"a", "b"}},
		"migrate":    {{"up"}},
		"reconcile":  {{"now"}, {"-wait", "-1s"}, {"-grace", "-1h"}, {"-wait", "soon"}},
		"s3":         {{"serve"}},
		"settings":   {{"api"}, {"-function", "nope"}},
		"snapshot":   {{"public.accounts"}},
		"sql":        {{}, {"-nope", "select 1"}},
		"status":     {{"now"}},
		"token": {{"extra"}, {"-ttl", "-1h"}, {"-ttl", "0s"}, {"-ttl", "1d"}, {"-customer", "nobody"},
			{"-customer", "00000000-0000-0000-0000-000000000000"}, {"-scopes", "bank:admin"},
			{"-customer", "0f3c9a4e-5b1d-4c8e-9a7f-2d6b8e1c4a90", "-scopes", "bank:read,bank:service"},
			{"-customer", "0f3c9a4e-5b1d-4c8e-9a7f-2d6b8e1c4a90", "-scopes", "bank:operator"}},
		"up": {{"now"}, {"-rate", "-5"}},
	}
	for name := range commands {
		if commands[name].hidden {
			continue
		}
		if _, ok := cases[name]; !ok {
			t.Errorf("command %q has no case here: add its bad arguments", name)
		}
	}
	for name, list := range cases {
		c, ok := commands[name]
		if !ok {
			t.Errorf("no command %q", name)
			continue
		}
		for _, args := range list {
			t.Run(name+" "+strings.Join(args, " "), func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel() // a command that got past its arguments stops at once
				err := c.run(ctx, args)
				if !errors.Is(err, errUsage) {
					t.Fatalf("fin %s %q: %v, want a usage error (exit status 2)", name, args, err)
				}
			})
		}
	}
}

// A refusal prints the command's usage.
func TestRefusalPrintsUsage(t *testing.T) {
	fs := newFlags("token", "[-ttl 12h]")
	var out strings.Builder
	fs.SetOutput(&out)
	ttl := fs.Duration("ttl", 0, "")
	for _, args := range [][]string{{"stray"}, {"-ttl", "-1h"}} {
		out.Reset()
		err := parseFlags(fs, args)
		if err == nil {
			err = atLeast(fs, "ttl", *ttl, 1)
		}
		if !errors.Is(err, errUsage) || !strings.Contains(out.String(), "usage: fin token") {
			t.Errorf("%q: %v, printed %q; want a usage error and the usage", args, err, out.String())
		}
	}
}
