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

// runDLQ talks to the running stack, which holds the broker the records go back to: the list with
// the console's token, a replay as an operator's action (the console's "replay DLQ").
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
	if len(rest) == 0 {
		return listDLQ(ctx)
	}
	keys := rest[1:]
	var req struct {
		Keys []string `json:"keys,omitempty"`
	}
	switch {
	case len(keys) == 1 && keys[0] == "--all": // every entry: no keys
	case len(keys) == 0:
		return fmt.Errorf("%w: name the dlq/ keys to replay, or --all", errUsage)
	default:
		req.Keys = keys
	}
	return act(ctx, "dlq-replay", req)
}

// listDLQ prints each entry's key, topic and reason.
func listDLQ(ctx context.Context) error {
	token, err := duckdb.ReadToken(duckdb.TokenPath(duckdb.DefaultPath()))
	if err != nil {
		return fmt.Errorf("no running stack found (start it with `make run`): %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, consoleBase()+"/dlq", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("the running stack at %s: %w", consoleBase(), err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /dlq: %s: %s", resp.Status, strings.TrimSpace(string(out)))
	}
	var items []struct{ Key, Topic, Reason string }
	if err := json.Unmarshal(out, &items); err != nil {
		return fmt.Errorf("GET /dlq: %w", err)
	}
	for _, it := range items {
		fmt.Printf("%s\t%s\t%s\n", it.Key, it.Topic, it.Reason)
	}
	fmt.Fprintf(os.Stderr, "%d entries\n", len(items))
	return nil
}
