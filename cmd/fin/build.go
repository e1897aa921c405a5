package main

import (
	"context"
)

func init() {
	register(command{name: "build", summary: "ask the running stack for a dbt build now: everything, or --select a model and its children", run: runBuild})
}

// runBuild is the console's "build now": the build is queued as a load's build request is.
func runBuild(ctx context.Context, args []string) error {
	fs := newFlags("build", "[--select model]")
	model := fs.String("select", "", "one dbt model: build it and everything downstream of it (empty: every model)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var req struct {
		Model string `json:"model,omitempty"`
	}
	req.Model = *model
	return act(ctx, "build", req)
}
