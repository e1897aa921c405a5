package main

import (
	"context"
	"fmt"
	"os"
	"strings"
)

func init() {
	register(command{name: "snapshot", summary: "ask the running stack's capture for an online incremental snapshot (--table T)", run: runSnapshot})
}

// runSnapshot is the console's "re-snapshot": the stack writes Debezium's execute-snapshot signal,
// which the capture (Go or Debezium) takes from its slot.
func runSnapshot(ctx context.Context, args []string) error {
	fs := newFlags("snapshot", "[--table public.accounts[,public.customers]]")
	tables := fs.String("table", "", "tables to snapshot again, comma-separated, \"public.\" optional (empty: every captured table)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var req struct {
		Tables []string `json:"tables,omitempty"`
	}
	for _, t := range strings.Split(*tables, ",") {
		if t = strings.TrimSpace(t); t != "" {
			req.Tables = append(req.Tables, t)
		}
	}
	if err := act(ctx, "snapshot", req); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "the running capture takes it from its slot (log: \"incremental snapshot requested\", then \"snapshot recorded in the destination manifest\")")
	return nil
}
