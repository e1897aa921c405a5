package duckdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// The publication: the marts the API's history reads (gold.dim_customers, gold.dim_accounts and
// the tables their views read, the cut among them), copied after each build into a file of their
// own, published.duckdb beside the models file, which the stack holds and writes itself. History
// reads go there (Published) and never wait for dbt, which holds the models file through a build.
// A build's publication is one transaction: a read sees one build's cut, whole, or the one
// before it. Its cost follows the build's change, not the history: a table a build rewrites only
// in part (dbt's history_range strategy: a key's rows from some lsn on, every one of them written
// with the build's _built_at) is brought up to date from the rows the build wrote; any other table
// the views read (the one-row cut) is copied whole.

// publishedCatalog is the name the publication's file is attached under.
const publishedCatalog = "published"

// PublishedPath is the publication's file that goes with the models file at warehousePath.
func PublishedPath(warehousePath string) string {
	return filepath.Join(filepath.Dir(warehousePath), publishedCatalog+".duckdb")
}

// PublishedSchema is how a reader of Published names a schema of the models ("gold").
func PublishedSchema(schema string) string { return publishedCatalog + "." + schema }

// View is a view of the models to publish (schema.name, as "gold.dim_accounts") and the key the
// tables it reads are rewritten by (history_range's history_key).
type View struct{ Name, Key string }

// WithPublication publishes views after each build, for readers that must not wait for dbt
// (Published). Their file is PublishedPath of the models file.
func WithPublication(views ...View) Option { return func(w *Warehouse) { w.views = views } }

// Published reads the last build published (WithPublication), never waiting for dbt's turn on the
// models: the API's history. Names are qualified with PublishedSchema.
type Published struct{ *Warehouse }

// QueryRows runs query as (*Warehouse).QueryRows does, beside any build.
func (p Published) QueryRows(ctx context.Context, query string, args []any, read func(*sql.Rows) error) error {
	_, err := p.readOnce(ctx, false, rowsQuery(ctx, query, args, read))
	return err
}

// PublishStats is what a publication cost, for the log.
type PublishStats struct {
	Took  time.Duration
	Rows  int64    // rows written to the publication
	Whole []string // tables copied whole (a first publication, a changed schema, the cut)
}

// publishing reports whether this warehouse keeps a publication.
func (w *Warehouse) publishing() bool { return len(w.views) > 0 && w.models != "" && !w.readOnly }

// attachPublished attaches the publication's file (creating it) for writing.
func (w *Warehouse) attachPublished(ctx context.Context) error {
	if !w.publishing() {
		return nil
	}
	stmts := []string{fmt.Sprintf("ATTACH %s AS %s", literal(PublishedPath(w.models)), publishedCatalog)}
	for _, v := range w.views {
		schema, _, _ := strings.Cut(v.Name, ".")
		// Created before any build, so a read before the first one finds no table (not no schema).
		stmts = append(stmts, "CREATE SCHEMA IF NOT EXISTS "+publishedCatalog+"."+quote(schema))
	}
	stmts = append(stmts, "CREATE TABLE IF NOT EXISTS "+publishedCatalog+".main.marks (relation VARCHAR PRIMARY KEY, built_at TIMESTAMPTZ)")
	for _, s := range stmts {
		if _, err := w.db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("publication %s: %s: %w", PublishedPath(w.models), s, err)
		}
	}
	return nil
}

// Publish brings the publication up to date with the models file, as the end of dbt's turn does.
func (w *Warehouse) Publish(ctx context.Context) (PublishStats, error) {
	w.lent.Lock()
	defer w.lent.Unlock()
	return w.publish(ctx)
}

// LastPublication is what the last publication cost (the end of the last dbt turn's, or Publish's).
func (w *Warehouse) LastPublication() PublishStats {
	w.lent.RLock()
	defer w.lent.RUnlock()
	return w.lastPublish
}

// PublishWhole publishes every table whole, as the first publication does: the reference a
// build's publication is measured beside.
func (w *Warehouse) PublishWhole(ctx context.Context) (PublishStats, error) {
	w.lent.Lock()
	defer w.lent.Unlock()
	if _, err := w.db.ExecContext(ctx, "DELETE FROM "+publishedCatalog+".main.marks"); err != nil {
		return PublishStats{}, fmt.Errorf("publish whole: %w", err)
	}
	return w.publish(ctx)
}

// publish brings the publication up to date with the models file, attached, in one transaction;
// the caller keeps dbt from the models file meanwhile (lent, W).
func (w *Warehouse) publish(ctx context.Context) (PublishStats, error) {
	var st PublishStats
	if !w.publishing() || !w.attached {
		return st, nil
	}
	start := time.Now()
	if err := w.share(); err != nil {
		return st, err
	}
	defer w.unshare()
	conn, err := w.db.Conn(ctx)
	if err != nil {
		return st, err
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return st, fmt.Errorf("publish: begin: %w", err)
	}
	defer tx.Rollback()
	done := map[string]bool{} // a table two views read (the cut) is published once
	for _, v := range w.views {
		if err := w.publishView(ctx, tx, v, done, &st); err != nil {
			return st, fmt.Errorf("publish %s: %w", v.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return st, fmt.Errorf("publish: commit: %w", err)
	}
	// The rows written stay in DuckDB's memory and the file's WAL until a checkpoint, and the
	// stack checkpoints only RAW (at a snapshot for dbt): they went to the file only when the
	// instance was closed, and publications no reopen followed added up. A failed checkpoint
	// loses nothing: the WAL holds the rows, and the next checkpoint or the close writes them.
	if _, err := conn.ExecContext(ctx, "CHECKPOINT "+publishedCatalog); err != nil {
		slog.Warn("publication: checkpoint", "file", PublishedPath(w.models), "err", err)
	}
	st.Took = time.Since(start)
	w.lastPublish = st
	return st, nil
}

// modelsRef finds the models' catalog named in a view's SQL, quoted or not.
func modelsRef(catalog string) *regexp.Regexp {
	c := regexp.QuoteMeta(catalog)
	return regexp.MustCompile(`(^|[^\w."])(` + c + `|"` + c + `")\.`)
}

// publishedRelation finds the relations a rewritten view reads.
var publishedRelation = regexp.MustCompile(publishedCatalog + `\.(\w+)\.(\w+)`)

// publishView publishes the tables view v reads, then the view itself over them.
func (w *Warehouse) publishView(ctx context.Context, tx *sql.Tx, v View, done map[string]bool, st *PublishStats) error {
	schema, name, _ := strings.Cut(v.Name, ".")
	var def string
	err := tx.QueryRowContext(ctx, `SELECT sql FROM duckdb_views() WHERE database_name = ? AND schema_name = ? AND view_name = ?`,
		catalogOf(w.models), schema, name).Scan(&def)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // not built yet
	}
	if err != nil {
		return err
	}
	_, body, ok := strings.Cut(def, " AS ")
	if !ok {
		return fmt.Errorf("unexpected view definition %q", def)
	}
	body = modelsRef(catalogOf(w.models)).ReplaceAllString(body, "${1}"+publishedCatalog+".")
	for _, m := range publishedRelation.FindAllStringSubmatch(body, -1) {
		rel := m[1] + "." + m[2]
		if done[rel] {
			continue
		}
		done[rel] = true
		if err := w.publishTable(ctx, tx, m[1], m[2], v.Key, st); err != nil {
			return err
		}
	}
	_, err = tx.ExecContext(ctx, "CREATE OR REPLACE VIEW "+publishedCatalog+"."+quote(schema)+"."+quote(name)+" AS "+body)
	return err
}

// publishTable brings one table up to date: from the rows the builds since the last publication
// wrote when it is rewritten by key (key, lsn and _built_at columns) and was published before
// with the same columns, else whole.
func (w *Warehouse) publishTable(ctx context.Context, tx *sql.Tx, schema, table, key string, st *PublishStats) error {
	from := quote(catalogOf(w.models)) + "." + quote(schema) + "." + quote(table)
	to := publishedCatalog + "." + quote(schema) + "." + quote(table)
	rel := schema + "." + table
	src, err := columnsOf(ctx, tx, catalogOf(w.models), schema, table)
	if err != nil {
		return err
	}
	dst, err := columnsOf(ctx, tx, publishedCatalog, schema, table)
	if err != nil {
		return err
	}
	var mark sql.NullTime
	if err := tx.QueryRowContext(ctx, "SELECT max(built_at) FROM "+publishedCatalog+".main.marks WHERE relation = ?", rel).Scan(&mark); err != nil {
		return err
	}
	byKey := hasColumns(src, quote(key), `"lsn"`, `"_built_at"`)
	whole := !byKey || !mark.Valid || !slices.Equal(src, dst)
	if !whole {
		n, err := publishChanges(ctx, tx, from, to, key, mark.Time)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		st.Rows += n
		// A full refresh may have left keys out altogether: the counts tell, and it is copied whole.
		var same bool
		if err := tx.QueryRowContext(ctx, "SELECT (SELECT count(*) FROM "+from+") = (SELECT count(*) FROM "+to+")").Scan(&same); err != nil {
			return err
		}
		if !same {
			slog.Warn("publication: a table differs from the models' after its changes; copied whole", "table", rel)
		}
		whole = !same
	}
	if whole {
		if _, err := tx.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+publishedCatalog+"."+quote(schema)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "CREATE OR REPLACE TABLE "+to+" AS SELECT * FROM "+from); err != nil {
			return fmt.Errorf("copy %s: %w", rel, err)
		}
		st.Whole = append(st.Whole, rel)
	}
	if !byKey {
		return nil
	}
	_, err = tx.ExecContext(ctx, "INSERT OR REPLACE INTO "+publishedCatalog+".main.marks SELECT ?, max(_built_at) FROM "+from, rel)
	return err
}

// publishChanges replaces, for each key the builds since mark wrote, the published rows from the
// least lsn they wrote on with the models' (history_range wrote every row of a key from there,
// and deleted only there). The least lsn of all, read first, bounds both statements as a
// constant, so they skip the older blocks.
func publishChanges(ctx context.Context, tx *sql.Tx, from, to, key string, mark time.Time) (int64, error) {
	at := mark.UTC().Format(time.RFC3339Nano) // bound as text: a time.Time binds as a TIMESTAMP
	var least sql.NullInt64
	if err := tx.QueryRowContext(ctx, "SELECT min(lsn) FROM "+from+" WHERE _built_at > CAST(? AS TIMESTAMPTZ)", at).Scan(&least); err != nil {
		return 0, err
	}
	if !least.Valid {
		return 0, nil
	}
	k := quote(key)
	changed := fmt.Sprintf("(SELECT %s, min(lsn) AS from_lsn FROM %s WHERE _built_at > CAST(? AS TIMESTAMPTZ) AND lsn >= %d GROUP BY %s)", k, from, least.Int64, k)
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("DELETE FROM %s AS t USING %s AS c WHERE t.%s = c.%s AND t.lsn >= c.from_lsn AND t.lsn >= %d",
		to, changed, k, k, least.Int64), at); err != nil {
		return 0, fmt.Errorf("remove the rows rewritten: %w", err)
	}
	r, err := tx.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s SELECT m.* FROM %s AS m INNER JOIN %s AS c ON m.%s = c.%s AND m.lsn >= c.from_lsn WHERE m.lsn >= %d ORDER BY m.lsn",
		to, from, changed, k, k, least.Int64), at)
	if err != nil {
		return 0, fmt.Errorf("insert the rows written: %w", err)
	}
	return r.RowsAffected()
}

// hasColumns reports whether cols (as columnsOf lists them) has every one of names.
func hasColumns(cols []string, names ...string) bool {
	for _, n := range names {
		if !slices.ContainsFunc(cols, func(c string) bool { return strings.HasPrefix(c, n+" ") }) {
			return false
		}
	}
	return true
}

// columnsOf lists a table's columns as `"name" type`, in order; none when it does not exist.
func columnsOf(ctx context.Context, tx *sql.Tx, catalog, schema, table string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT column_name, data_type FROM information_schema.columns
		WHERE table_catalog = ? AND table_schema = ? AND table_name = ? ORDER BY ordinal_position`, catalog, schema, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return nil, err
		}
		cols = append(cols, quote(name)+" "+typ)
	}
	return cols, rows.Err()
}
