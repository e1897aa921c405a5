package api

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/dbtrun"
	"github.com/fin-orchestrator/fin-orchestrator/shared/history"
	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

// rawVersion is one committed version of a row as the RAW change events hold it: what the
// history endpoints must show, derived here from the events themselves, not from dbt's output.
type rawVersion struct {
	lsn     int64
	from    time.Time
	deleted bool
	image   map[string]any
}

// field is an image's field as text ("" for null).
func (v rawVersion) field(name string) string {
	if s, ok := v.image[name].(string); ok {
		return s
	}
	if v.image[name] == nil {
		return ""
	}
	return fmt.Sprint(v.image[name])
}

// rawHistory reads table's RAW events into each key's versions in log order (a redelivered
// event, same lsn, counted once).
func rawHistory(t *testing.T, wh *duckdb.Warehouse, table, key string) map[string][]rawVersion {
	t.Helper()
	out := map[string][]rawVersion{}
	seen := map[string]bool{}
	q := fmt.Sprintf(`SELECT lsn, op, commit_ts_us, CAST(CASE WHEN op = 'd' THEN "before" ELSE "after" END AS VARCHAR)
		FROM raw.%s ORDER BY lsn, "offset"`, table)
	err := wh.QueryRows(context.Background(), q, nil, func(rows *sql.Rows) error {
		for rows.Next() {
			var v rawVersion
			var op, image string
			var us int64
			if err := rows.Scan(&v.lsn, &op, &us, &image); err != nil {
				return err
			}
			if err := json.Unmarshal([]byte(image), &v.image); err != nil {
				return err
			}
			v.from, v.deleted = time.UnixMicro(us).UTC(), op == "d"
			id := v.field(key)
			if seen[fmt.Sprint(id, v.lsn)] {
				continue
			}
			seen[fmt.Sprint(id, v.lsn)] = true
			out[id] = append(out[id], v)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read raw.%s: %v", table, err)
	}
	return out
}

// builtWarehouse writes the dbt project's fixture change events (scripts/dbt/raw_events.py
// scenario: two loads with several changes per key, a delete and a re-insert) into a DuckDB
// file and runs real dbt on it, building the marts the history reads.
func builtWarehouse(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	venv := filepath.Join(root, ".venv", "bin")
	if _, err := os.Stat(filepath.Join(venv, "dbt")); err != nil {
		if os.Getenv("FIN_REQUIRE_DBT") != "" {
			t.Fatalf("%s/dbt is missing: run bash scripts/venv.sh", venv)
		}
		t.Skipf("%s/dbt is missing (bash scripts/venv.sh makes it)", venv)
	}
	path := filepath.Join(t.TempDir(), "warehouse.duckdb")
	cmd := exec.Command(filepath.Join(venv, "python"), filepath.Join(root, "scripts", "dbt", "raw_events.py"), "duckdb", path, "scenario")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("write the fixture RAW events: %v\n%s", err, out)
	}
	_, err = dbtrun.Run(context.Background(), dbtrun.Config{
		DBT: filepath.Join(venv, "dbt"), ProjectDir: filepath.Join(root, "dbt"), Target: "duckdb",
		WorkDir: t.TempDir(), Env: []string{"WAREHOUSE_PATH=" + path, "DBT_SEND_ANONYMOUS_USAGE_STATS=false"},
	}, dbtrun.Request{})
	if err != nil {
		t.Fatalf("dbt build: %v", err)
	}
	return path
}

// TestHistory reads every version and as_of states of a customer changed several times, a
// customer deleted and re-inserted, and an account changed several times within a minute, from
// a DuckDB warehouse built by dbt, through the local server and both Lambda payloads; and checks
// them against the RAW change events.
func TestHistory(t *testing.T) {
	path := builtWarehouse(t)
	ctx := context.Background()
	wh, err := duckdb.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wh.Close() })
	e := newEnv(t, func(c *Config) { c.History = history.New(wh) })
	cut := ensureCut(t, wh)

	customers := rawHistory(t, wh, "customers", "customer_id")
	accounts := rawHistory(t, wh, "accounts", "account_id")
	pick := func(what string, from map[string][]rawVersion, ok func([]rawVersion) bool) string {
		t.Helper()
		for id, vs := range from {
			if ok(vs) {
				return id
			}
		}
		t.Fatalf("the fixture has no %s", what)
		return ""
	}
	updated := pick("customer updated three times", customers, func(vs []rawVersion) bool {
		return len(vs) >= 4 && !vs[len(vs)-1].deleted
	})
	reinserted := pick("customer deleted and re-inserted", customers, func(vs []rawVersion) bool {
		return len(vs) >= 3 && vs[len(vs)-2].deleted
	})
	busy := pick("account changed several times within a minute", accounts, func(vs []rawVersion) bool {
		return len(vs) >= 4 && vs[2].from.Sub(vs[0].from) < time.Minute
	})

	for _, tr := range e.transports {
		t.Run(tr.name, func(t *testing.T) {
			get := func(t *testing.T, path string, want int) response {
				t.Helper()
				return call(t, tr, request{method: "GET", path: path, token: e.ro}, want)
			}
			t.Run("customer versions", func(t *testing.T) {
				for _, id := range []string{updated, reinserted} {
					var l List[CustomerVersion]
					get(t, "/customers/"+id+"/history", http.StatusOK).json(t, &l)
					want := customers[id]
					if len(l.Data) != len(want) || l.HasMore {
						t.Fatalf("customer %s: %d versions (has_more %v), want the %d its change events hold", id, len(l.Data), l.HasMore, len(want))
					}
					for i, v := range l.Data {
						checkValidity(t, id, i, v.Validity, want)
						if v.LastName != want[i].field("last_name") || v.Email != want[i].field("email") || deref(v.City) != want[i].field("city") {
							t.Errorf("customer %s version %d: %s / %s / %s, want the row image %v", id, i, v.LastName, v.Email, deref(v.City), want[i].image)
						}
					}
				}
			})
			t.Run("account versions", func(t *testing.T) {
				want := accounts[busy]
				var all []AccountVersion
				next := "/accounts/" + busy + "/history?limit=2"
				for pages := 0; next != ""; pages++ {
					if pages > len(want) {
						t.Fatal("paging does not end")
					}
					var l List[AccountVersion]
					get(t, next, http.StatusOK).json(t, &l)
					all, next = append(all, l.Data...), ""
					if l.HasMore {
						next = "/accounts/" + busy + "/history?limit=2&starting_after=" + url.QueryEscape(l.Data[len(l.Data)-1].VersionID)
					}
				}
				if len(all) != len(want) {
					t.Fatalf("account %s: %d versions over pages of 2, want %d", busy, len(all), len(want))
				}
				for i, v := range all {
					checkValidity(t, busy, i, v.Validity, want)
					if v.Balance != want[i].field("balance") || v.Status != want[i].field("status") || deref(v.Nickname) != want[i].field("nickname") {
						t.Errorf("account %s version %d: balance %s status %s nickname %q, want the row image %v", busy, i, v.Balance, v.Status, deref(v.Nickname), want[i].image)
					}
				}
			})
			t.Run("as_of", func(t *testing.T) {
				for _, c := range []struct{ path, id, field, wire string }{
					{"/customers/", updated, "last_name", "last_name"},
					{"/customers/", reinserted, "first_name", "first_name"},
					{"/accounts/", busy, "balance", "balance"},
				} {
					vs := customers[c.id]
					if c.path == "/accounts/" {
						vs = accounts[c.id]
					}
					asOf := func(at time.Time) string {
						return c.path + c.id + "?as_of=" + url.QueryEscape(at.Format(time.RFC3339Nano))
					}
					// Before creation: the row did not exist.
					if p := problemOf(t, get(t, asOf(vs[0].from.Add(-time.Second)), http.StatusNotFound)); p.Code != "not_found" {
						t.Errorf("%s before creation: code %q, want not_found", c.id, p.Code)
					}
					for i, v := range vs {
						// At a version's commit, between it and the next, and after the last.
						end := v.from.Add(time.Hour)
						if i+1 < len(vs) {
							end = vs[i+1].from
						}
						if end.Equal(v.from) {
							continue // committed in the same transaction as the next version
						}
						for _, at := range []time.Time{v.from, v.from.Add(end.Sub(v.from) / 2)} {
							if v.deleted {
								get(t, asOf(at), http.StatusNotFound)
								continue
							}
							res := get(t, asOf(at), http.StatusOK)
							var body map[string]any
							res.json(t, &body)
							if got := fmt.Sprint(body[c.wire]); got != v.field(c.field) {
								t.Errorf("%s as of %s: %s = %s, want %s (version %d)", c.id, at.Format(time.RFC3339Nano), c.wire, got, v.field(c.field), i)
							}
							if res.header.Get("ETag") != "" {
								t.Errorf("%s as of %s has an ETag: a past state must not be a PUT precondition", c.id, at)
							}
							checkCutHeaders(t, res, cut, at)
						}
					}
				}
			})
			t.Run("as_of after the cut", func(t *testing.T) {
				testAsOfAfterCut(t, wh, tr, e, accounts[busy], busy, cut)
			})
			t.Run("errors", func(t *testing.T) {
				never := "00000000-0000-4000-8000-000000000001"
				for _, p := range []string{"/customers/" + never + "/history", "/accounts/" + never + "/history",
					"/customers/" + never + "?as_of=2026-11-25T10:00:00Z", "/accounts/" + never + "?as_of=2026-11-25T10:00:00Z"} {
					get(t, p, http.StatusNotFound)
				}
				for _, p := range []string{"/customers/" + updated + "?as_of=yesterday", "/customers/" + updated + "/history?starting_after=" + never + "@1",
					"/accounts/" + busy + "/history?limit=0"} {
					get(t, p, http.StatusUnprocessableEntity)
				}
				call(t, tr, request{method: "GET", path: "/customers/" + updated + "/history", token: e.wo}, http.StatusForbidden)
				call(t, tr, request{method: "GET", path: "/accounts/" + busy + "/history"}, http.StatusUnauthorized)
			})
		})
	}
}

// ensureCut gives the fixture's gold a cut holding every change event RAW has (all of them are
// built), unless the dbt build published one, and returns it.
func ensureCut(t *testing.T, wh *duckdb.Warehouse) history.Cut {
	t.Helper()
	ctx := context.Background()
	if _, err := history.New(wh).Cut(ctx); errors.Is(err, history.ErrNoCut) {
		setCut(t, wh, `SELECT max(lsn), max(commit_ts_us) FROM (SELECT lsn, commit_ts_us FROM raw.customers
			UNION ALL SELECT lsn, commit_ts_us FROM raw.accounts UNION ALL SELECT lsn, commit_ts_us FROM raw.transactions)`)
	}
	cut, err := history.New(wh).Cut(ctx)
	if err != nil {
		t.Fatalf("read gold.cut: %v", err)
	}
	return cut
}

// setCut replaces gold.cut with the position and commit time (microseconds) the query selects.
func setCut(t *testing.T, wh *duckdb.Warehouse, pos string) {
	t.Helper()
	q := `CREATE OR REPLACE TABLE gold.cut AS SELECT p.lsn, to_timestamp(0) + to_microseconds(p.us) AS commit_ts,
		now() AS built_at FROM (` + pos + `) AS p(lsn, us)`
	if err := wh.QueryRows(context.Background(), q, nil, func(*sql.Rows) error { return nil }); err != nil {
		t.Fatalf("set gold.cut: %v", err)
	}
}

// checkCutHeaders: an as_of answer names the cut it was read from and the time it is the state
// at: as_of, or the cut's commit time when as_of is later.
func checkCutHeaders(t *testing.T, res response, cut history.Cut, at time.Time) {
	t.Helper()
	want := at.UTC()
	if want.After(cut.CommitTS) {
		want = cut.CommitTS
	}
	lsn, commit, asOf := res.header.Get("Warehouse-Cut-Lsn"), res.header.Get("Warehouse-Cut-Commit-Time"), res.header.Get("Warehouse-As-Of")
	if lsn != fmt.Sprint(cut.LSN) || commit != cut.CommitTS.Format(time.RFC3339Nano) || asOf != want.Format(time.RFC3339Nano) {
		t.Errorf("as of %s: cut headers lsn %q commit %q as-of %q; want %d, %s, %s", at, lsn, commit, asOf,
			cut.LSN, cut.CommitTS.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
	}
}

// testAsOfAfterCut moves gold.cut back to just before the account's first version after its
// first change committed on its own (as a reader sees gold between a build's cut and a later one)
// and reads the account as of an hour after its last change: the answer is the state at the cut,
// and says so. It puts the cut back after.
func testAsOfAfterCut(t *testing.T, wh *duckdb.Warehouse, tr transport, e *env, vs []rawVersion, id string, cut history.Cut) {
	// Version k is the last in the cut; k+1 is in a later transaction (a later commit time).
	k := 1
	for k+1 < len(vs) && (vs[k].deleted || !vs[k+1].from.After(vs[k].from)) {
		k++
	}
	if k+1 >= len(vs) {
		t.Fatalf("account %s has no version followed by one of a later transaction", id)
	}
	t.Cleanup(func() {
		setCut(t, wh, fmt.Sprintf("SELECT %d, %d", cut.LSN, cut.CommitTS.UnixMicro()))
	})
	// Below the next version's own position, so its transaction ends after the cut.
	back := history.Cut{LSN: vs[k+1].lsn - 1, CommitTS: vs[k].from}
	setCut(t, wh, fmt.Sprintf("SELECT %d, %d", back.LSN, back.CommitTS.UnixMicro()))
	at := vs[len(vs)-1].from.Add(time.Hour)
	res := call(t, tr, request{method: "GET", path: "/accounts/" + id + "?as_of=" + url.QueryEscape(at.Format(time.RFC3339Nano)), token: e.ro}, http.StatusOK)
	var body Account
	res.json(t, &body)
	// Each version has its own updated_at: the answer's must be version k's.
	want, err := time.Parse(time.RFC3339Nano, vs[k].field("updated_at"))
	if err != nil {
		t.Fatalf("the fixture's updated_at %q: %v", vs[k].field("updated_at"), err)
	}
	if !body.UpdatedAt.Equal(want) || body.Balance != vs[k].field("balance") {
		t.Errorf("%s as of %s with the cut after its version %d: updated_at %s balance %s, want %s and %s (the last version's: %s, %s)",
			id, at, k, body.UpdatedAt, body.Balance, want, vs[k].field("balance"), vs[len(vs)-1].field("updated_at"), vs[len(vs)-1].field("balance"))
	}
	checkCutHeaders(t, res, back, at)
}

// TestHistoryOpenAPI: the history operations and as_of are in the OpenAPI description, with the
// read scope and their 404 and 503 answers.
func TestHistoryOpenAPI(t *testing.T) {
	e := newEnv(t)
	var spec struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
			Parameters  []struct {
				Name, In string
			} `json:"parameters"`
			Responses map[string]any        `json:"responses"`
			Security  []map[string][]string `json:"security"`
		} `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Properties map[string]any `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	call(t, e.transports[0], request{method: "GET", path: "/openapi.json"}, http.StatusOK).json(t, &spec)
	for name, fields := range map[string][]string{
		"CustomerVersion": {"customer_id", "email", "version_id", "version", "valid_from", "valid_to", "is_current", "is_deleted"},
		"AccountVersion":  {"account_id", "balance", "version_id", "version", "valid_from", "valid_to", "is_current", "is_deleted"},
	} {
		for _, f := range fields {
			if _, ok := spec.Components.Schemas[name].Properties[f]; !ok {
				t.Errorf("schema %s lacks %s (properties %v)", name, f, spec.Components.Schemas[name].Properties)
			}
		}
	}
	for path, param := range map[string]string{
		"/customers/{customer_id}/history": "starting_after", "/accounts/{account_id}/history": "starting_after",
		"/customers/{customer_id}": "as_of", "/accounts/{account_id}": "as_of",
	} {
		op, ok := spec.Paths[path]["get"]
		if !ok {
			t.Errorf("openapi.json has no GET %s", path)
			continue
		}
		found := false
		for _, p := range op.Parameters {
			found = found || (p.Name == param && p.In == "query")
		}
		_, has404 := op.Responses["404"]
		_, has503 := op.Responses["503"]
		if want := security(ScopeRead, ownCustomerOnly); !found || !has404 || !has503 || !reflect.DeepEqual(op.Security, want) {
			t.Errorf("GET %s (%s): query %s documented %v, 404 %v, 503 %v, security %v; want all, with security %v",
				path, op.OperationID, param, found, has404, has503, op.Security, want)
		}
		if param != "as_of" {
			continue
		}
		// The 200 answer documents the headers naming the cut an as_of answer was read from.
		ok200, _ := op.Responses["200"].(map[string]any)
		headers, _ := ok200["headers"].(map[string]any)
		for _, h := range []string{"Warehouse-Cut-Lsn", "Warehouse-Cut-Commit-Time", "Warehouse-As-Of"} {
			if _, ok := headers[h]; !ok {
				t.Errorf("GET %s: the 200 answer does not document header %s (headers %v)", path, h, headers)
			}
		}
	}
}

// checkValidity compares version i's validity with the change events: valid from its commit to
// the next's, current only when last, deleted when the event was a delete.
func checkValidity(t *testing.T, id string, i int, got Validity, want []rawVersion) {
	t.Helper()
	w := want[i]
	if !got.ValidFrom.Equal(w.from) || got.IsDeleted != w.deleted || got.IsCurrent != (i == len(want)-1) ||
		got.VersionID != fmt.Sprintf("%s@%d", id, w.lsn) {
		t.Errorf("%s version %d: %+v, want valid_from %s, is_deleted %v, is_current %v, version_id %s@%d",
			id, i, got, w.from, w.deleted, i == len(want)-1, id, w.lsn)
	}
	switch {
	case i == len(want)-1 && got.ValidTo != nil:
		t.Errorf("%s: the current version has valid_to %s, want null", id, got.ValidTo)
	case i < len(want)-1 && (got.ValidTo == nil || !got.ValidTo.Equal(want[i+1].from)):
		t.Errorf("%s version %d: valid_to %v, want the next version's commit %s", id, i, got.ValidTo, want[i+1].from)
	}
	if got.ValidFrom.Location() != time.UTC {
		t.Errorf("%s version %d: valid_from %s is not UTC", id, i, got.ValidFrom)
	}
}

// TestHistoryUnavailable: without a warehouse, or with one that has no history built or no cut
// published (or one without a position yet), the history endpoints and as_of answer 503 problem+json saying which, while the
// current state still works.
func TestHistoryUnavailable(t *testing.T) {
	ctx := context.Background()
	empty, err := duckdb.Open(ctx, filepath.Join(t.TempDir(), "empty.duckdb"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { empty.Close() })
	emptyCut, err := duckdb.Open(ctx, filepath.Join(t.TempDir(), "empty-cut.duckdb"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emptyCut.Close() })
	noPosition, err := duckdb.Open(ctx, filepath.Join(t.TempDir(), "no-position.duckdb"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { noPosition.Close() })
	q := "CREATE SCHEMA gold; CREATE TABLE gold.cut (lsn BIGINT, commit_ts TIMESTAMPTZ, built_at TIMESTAMPTZ)"
	for _, wh := range []*duckdb.Warehouse{emptyCut, noPosition} {
		if err := wh.QueryRows(ctx, q, nil, func(*sql.Rows) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	// A build that found no whole transaction yet: position 0, no commit time.
	if err := noPosition.QueryRows(ctx, "INSERT INTO gold.cut VALUES (0, NULL, now())", nil, func(*sql.Rows) error { return nil }); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name          string
		h             History
		history, asOf string // the problem codes
	}{
		{"no warehouse", nil, "warehouse_unavailable", "warehouse_unavailable"},
		{"no dbt run yet", history.New(empty), "warehouse_unavailable", "warehouse_not_built"},
		{"gold.cut empty", history.New(emptyCut), "warehouse_unavailable", "warehouse_not_built"},
		{"gold.cut without a position", history.New(noPosition), "warehouse_unavailable", "warehouse_not_built"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, func(cf *Config) { cf.History = c.h })
			tr := e.transports[0]
			var cu Customer
			call(t, tr, request{method: "POST", path: "/customers", token: e.rw, body: map[string]any{
				"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}}, http.StatusCreated).json(t, &cu)
			call(t, tr, request{method: "GET", path: "/customers/" + cu.CustomerID, token: e.ro}, http.StatusOK)
			for _, tr := range e.transports {
				for p, want := range map[string]string{"/customers/" + cu.CustomerID + "/history": c.history,
					"/customers/" + cu.CustomerID + "?as_of=2026-11-25T10:00:00Z": c.asOf} {
					if prob := problemOf(t, call(t, tr, request{method: "GET", path: p, token: e.ro}, http.StatusServiceUnavailable)); prob.Code != want {
						t.Errorf("%s %s: code %q, want %s", tr.name, p, prob.Code, want)
					}
				}
			}
		})
	}
}
