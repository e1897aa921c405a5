package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/console"
	"github.com/fin-orchestrator/fin-orchestrator/shared/reconcile"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

func init() {
	register(command{name: "reconcile", summary: "compare Postgres with the warehouse (every column at equal versions, money per currency); tell lost changes from lag", run: runReconcile})
	register(command{name: "status", summary: "print the running stack's health (what the console shows)", run: runStatus})
}

// localWarehouse queries the running stack's warehouse through its /sql endpoint (the stack holds
// the file), or, with no stack (no token yet, or nobody listening), opens the file read-only.
type localWarehouse struct {
	path, console string
	file          *duckdb.Warehouse
}

func newLocalWarehouse() *localWarehouse {
	return &localWarehouse{path: duckdb.DefaultPath(), console: envOr("FIN_CONSOLE_URL", defaultConsole)}
}

func (w *localWarehouse) Query(ctx context.Context, query string, out io.Writer) error {
	if w.file == nil {
		token, err := duckdb.ReadToken(duckdb.TokenPath(w.path))
		if err == nil {
			err = queryStack(ctx, strings.TrimRight(w.console, "/")+"/sql", token, query, out)
			if !errors.Is(err, errNoStack) {
				return err
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if w.file, err = duckdb.OpenReadOnly(ctx, w.path); err != nil {
			return err
		}
	}
	return w.file.Query(ctx, query, out)
}

func (w *localWarehouse) Close() {
	if w.file != nil {
		w.file.Close()
	}
}

func runReconcile(ctx context.Context, args []string) error {
	fs := newFlags("reconcile", "[--wait 60s] [--grace 30s] [--slot NAME]")
	wait := fs.Duration("wait", time.Minute, "how long to let changes the capture has not delivered yet reach the warehouse")
	grace := fs.Duration("grace", 30*time.Second, "how long the warehouse may take to hold a change the capture has delivered; absent after that, it is lost")
	slot := fs.String("slot", os.Getenv("FIN_CAPTURE_SLOT"), "the capture's replication slot (default: the one fin up uses for this database)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := errors.Join(atLeast(fs, "wait", *wait, 0), atLeast(fs, "grace", *grace, 0)); err != nil {
		return err
	}
	pool, err := openMigrated(ctx, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	if *slot == "" {
		*slot = slotFor(pool.Config().ConnConfig.Database)
	}
	wh := newLocalWarehouse()
	defer wh.Close()
	r := reconcile.New(pool, wh, reconcile.Options{Slot: *slot, Grace: *grace, Snapshotting: stackSnapshotting})
	defer r.Close() // its passes, kept in the temporary folder
	rep, err := r.Compare(ctx, *wait)
	if err != nil {
		return err
	}
	rep.Write(os.Stdout)
	if !rep.OK() {
		return errors.New(rep.Summary())
	}
	return nil
}

// stackSnapshotting asks the running stack whether its capture is re-reading tables; with no
// stack, nothing is.
func stackSnapshotting(ctx context.Context) (bool, error) {
	token, err := duckdb.ReadToken(duckdb.TokenPath(duckdb.DefaultPath()))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	st, err := fetchStatus(ctx, strings.TrimRight(envOr("FIN_CONSOLE_URL", defaultConsole), "/")+"/api/status", token)
	if err != nil {
		return false, nil // no stack answers: no capture snapshots
	}
	return st.Replication != nil && st.Replication.Snapshotting, nil
}

func runStatus(ctx context.Context, args []string) error {
	fs := newFlags("status", "")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	token, err := duckdb.ReadToken(duckdb.TokenPath(duckdb.DefaultPath()))
	if err != nil {
		return fmt.Errorf("no running stack found (start it with `make run`): %w", err)
	}
	url := strings.TrimRight(envOr("FIN_CONSOLE_URL", defaultConsole), "/") + "/api/status"
	st, err := fetchStatus(ctx, url, token)
	if err != nil {
		return err
	}
	console.Print(os.Stdout, st)
	if !st.Healthy() {
		return errors.New("a part of the pipeline is down")
	}
	return nil
}

func fetchStatus(ctx context.Context, url, token string) (console.Status, error) {
	var st console.Status
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return st, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, fmt.Errorf("no running stack answers at %s (start it with `make run`): %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return st, decodeJSON(resp.Body, &st)
}

func decodeJSON(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }
