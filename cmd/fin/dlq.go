package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

func init() {
	register(command{name: "dlq", summary: "list the dead-letter queue, or replay entries (fin dlq replay <key>... | --all)", run: runDLQ})
}

// runDLQ talks to the running stack, which holds the broker the records go back to.
func runDLQ(ctx context.Context, args []string) error {
	fs := newFlags("dlq", "[replay [--all] [<dlq key>...]]")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) > 0 && rest[0] != "replay" {
		fs.Usage()
		return fmt.Errorf("%w: unknown subcommand %q (want replay)", errUsage, rest[0])
	}
	token, err := duckdb.ReadToken(duckdb.TokenPath(duckdb.DefaultPath()))
	if err != nil {
		return fmt.Errorf("no running stack found (start it with `make run`): %w", err)
	}
	base := strings.TrimRight(envOr("FIN_CONSOLE_URL", defaultConsole), "/")
	call := func(method, path, body string) (string, error) {
		req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		if err != nil {
			return "", err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", fmt.Errorf("the running stack at %s: %w", base, err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(out)))
		}
		return string(out), nil
	}
	var items []struct{ Key, Topic, Reason string }
	list := func() error {
		out, err := call(http.MethodGet, "/dlq", "")
		if err != nil {
			return err
		}
		return json.Unmarshal([]byte(out), &items)
	}
	if len(rest) == 0 {
		if err := list(); err != nil {
			return err
		}
		for _, it := range items {
			fmt.Printf("%s\t%s\t%s\n", it.Key, it.Topic, it.Reason)
		}
		fmt.Fprintf(os.Stderr, "%d entries\n", len(items))
		return nil
	}
	keys := rest[1:]
	if len(keys) == 1 && keys[0] == "--all" {
		if err := list(); err != nil {
			return err
		}
		keys = nil
		for _, it := range items {
			keys = append(keys, it.Key)
		}
	}
	if len(keys) == 0 {
		return fmt.Errorf("%w: name the dlq/ keys to replay, or --all", errUsage)
	}
	for _, k := range keys {
		out, err := call(http.MethodPost, "/dlq/replay", k)
		if err != nil {
			return err
		}
		fmt.Print(out)
	}
	return nil
}
