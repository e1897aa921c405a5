package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"

	"github.com/fin-orchestrator/fin-orchestrator/shared/settings"
)

func init() {
	register(command{name: "settings", hidden: true, run: runSettings,
		summary: "the functions' declared settings: docs/configuration.md (-markdown), or one function's as JSON"})
}

// runSettings prints the declarations of shared/settings: the page go generate writes, or the
// settings of one function (for a `sam local` env-vars file and its test).
func runSettings(_ context.Context, args []string) error {
	fs := newFlags("settings", "[-markdown [-o file]] [-function name] [-json]")
	markdown := fs.Bool("markdown", false, "print docs/configuration.md")
	out := fs.String("o", "", "write to this file instead of stdout")
	function := fs.String("function", "", "only this function's settings (api, cdc-landing, warehouse-loader, dbt-runner)")
	asJSON := fs.Bool("json", false, "print the settings as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var text []byte
	switch {
	case *markdown:
		text = []byte(settings.Markdown())
	default:
		list := settings.All()
		if *function != "" {
			if !slices.Contains(settings.Functions, *function) {
				return fmt.Errorf("%w: unknown function %q (known: %v)", errUsage, *function, settings.Functions)
			}
			list = settings.For(*function)
		}
		if !*asJSON {
			for _, s := range list {
				text = fmt.Appendf(text, "%s=%s\n", s.Name, s.Default)
			}
			break
		}
		var err error
		if text, err = json.MarshalIndent(list, "", "  "); err != nil {
			return err
		}
		text = append(text, '\n')
	}
	if *out == "" {
		_, err := os.Stdout.Write(text)
		return err
	}
	return os.WriteFile(*out, text, 0o644)
}
