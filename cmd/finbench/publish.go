package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	duckdriver "github.com/duckdb/duckdb-go/v2"

	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

// historyViews are the views the API's history reads, as the stack publishes them.
var historyViews = []duckdb.View{{Name: "gold.dim_customers", Key: "customer_id"}, {Name: "gold.dim_accounts", Key: "account_id"}}

// runBenchPublish times the publication of a build for history reads (duckdb's publication) on a
// history's models file (dbt-history.sh caches the 1M and 10M ones): it copies what the history
// views read into a models file of their own, opens a warehouse on it (the first publication,
// whole: the reference, which a copy per build would cost at least), then, rounds times, writes a
// build as dbt's history_range strategy does (closes the current version of changes accounts and
// appends their next one, moves the cut past them) and times the publication of it.
func runBenchPublish(ctx context.Context, args []string) error {
	fs := newFlags("publish")
	models := fs.String("models", "", "a history's models file to take the history marts from")
	rounds := fs.Int("rounds", 5, "builds to publish after the first publication")
	changes := fs.Int("changes", 10000, "account versions each build appends (one per account)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *models == "" {
		return fmt.Errorf("%w: -models is required", errUsage)
	}
	dir, err := os.MkdirTemp("", "fin-bench-publish-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "warehouse.duckdb")
	start := time.Now()
	if err := inDuckDB(ctx, file, nil, extractMarts(*models)...); err != nil {
		return err
	}
	if err := copyViews(ctx, *models, file); err != nil {
		return err
	}
	fmt.Printf("publish benchmark: history marts of %s copied out in %.1f s\n", *models, time.Since(start).Seconds())
	wh, err := duckdb.Open(ctx, duckdb.RawPath(file), nil, duckdb.WithModels(file), duckdb.WithPublication(historyViews...), duckdb.WithThreads(1))
	if err != nil {
		return err
	}
	defer wh.Close()
	var took []time.Duration
	for r := range *rounds {
		resume, err := wh.LendModels(ctx)
		if err != nil {
			return err
		}
		// The build, then its publication at the end of dbt's turn.
		built := inDuckDB(ctx, file, nil, buildStatements(*changes)...)
		if err := errors.Join(built, resume(ctx)); err != nil {
			return err
		}
		st := wh.LastPublication()
		took = append(took, st.Took)
		fmt.Printf("  build %d published: %.3f s, %d rows, whole %v\n", r+1, st.Took.Seconds(), st.Rows, st.Whole)
	}
	return reportPublish(ctx, wh, took)
}

// reportPublish times a whole publication (the reference) and prints the builds' median beside it.
func reportPublish(ctx context.Context, wh *duckdb.Warehouse, took []time.Duration) error {
	st, err := wh.PublishWhole(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("  reference, the same marts published whole: %.3f s (%d tables)\n", st.Took.Seconds(), len(st.Whole))
	slices.Sort(took)
	if len(took) > 0 {
		p50 := took[len(took)/2]
		fmt.Printf("  publication of a build, median of %d: %.3f s beside the whole publication's %.3f s: ratio %.3f\n",
			len(took), p50.Seconds(), st.Took.Seconds(), p50.Seconds()/st.Took.Seconds())
	}
	return nil
}

// extractMarts copies the tables the history views read, and the views, from src.
func extractMarts(src string) []string {
	stmts := []string{"ATTACH '" + src + "' AS src (READ_ONLY)", "USE warehouse",
		"CREATE SCHEMA silver", "CREATE SCHEMA gold"}
	for _, t := range []string{"silver.customers_in_cut", "silver.accounts_in_cut", "gold.cut"} {
		stmts = append(stmts, "CREATE TABLE "+t+" AS SELECT * FROM src."+t)
	}
	return stmts
}

// copyViews creates the history views of src in the models file at path, as dbt defined them.
func copyViews(ctx context.Context, src, path string) error {
	var defs []string
	err := inDuckDB(ctx, path, func(db *sql.DB) error {
		rows, err := db.QueryContext(ctx, "SELECT sql FROM duckdb_views() WHERE database_name = 'src' AND schema_name = 'gold' AND view_name IN ('dim_customers', 'dim_accounts')")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var d string
			if err := rows.Scan(&d); err != nil {
				return err
			}
			defs = append(defs, d)
		}
		return rows.Err()
	}, "ATTACH '"+src+"' AS src (READ_ONLY)")
	if err != nil {
		return err
	}
	return inDuckDB(ctx, path, nil, defs...)
}

// buildStatements write one build as dbt's history_range does: n accounts' current versions
// closed (their closing columns and _built_at updated in place), their next versions appended,
// and the cut moved past them.
func buildStatements(n int) []string {
	return []string{
		fmt.Sprintf("CREATE TEMP TABLE pick AS SELECT * FROM (SELECT * FROM silver.accounts_in_cut WHERE is_current) USING SAMPLE %d ROWS", n),
		"CREATE TEMP TABLE base AS SELECT max(end_lsn) AS lsn, now() AS stamp FROM silver.accounts_in_cut",
		`UPDATE silver.accounts_in_cut SET is_current = false, effective_to = (SELECT stamp FROM base), _built_at = (SELECT stamp FROM base)
			WHERE account_version_key IN (SELECT account_version_key FROM pick)`,
		`INSERT INTO silver.accounts_in_cut SELECT p.* REPLACE (
			p.account_id || '@' || (b.lsn + row_number() OVER ()) AS account_version_key, p.version + 1 AS version,
			b.stamp AS effective_from, NULL AS effective_to, true AS is_current, b.lsn + row_number() OVER () AS lsn,
			b.lsn + row_number() OVER () AS end_lsn, b.stamp AS _built_at) FROM pick AS p, base AS b`,
		"UPDATE gold.cut SET lsn = (SELECT max(end_lsn) FROM silver.accounts_in_cut), built_at = now()",
	}
}

// inDuckDB runs stmts on the DuckDB file at path (attached as warehouse, as dbt names the models
// file), then then (if not nil), and closes it, which checkpoints it as dbt's worker does.
func inDuckDB(ctx context.Context, path string, then func(*sql.DB) error, stmts ...string) error {
	conn, err := duckdriver.NewConnector("", nil)
	if err != nil {
		return err
	}
	db := sql.OpenDB(conn)
	defer conn.Close()
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, s := range append([]string{"ATTACH '" + path + "' AS warehouse", "USE warehouse"}, stmts...) {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	if then != nil {
		return then(db)
	}
	return nil
}
