package reconcile

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
)

// warehouseQuery selects the current row of every key of a RAW table: its key, version, the
// commit time of that version, and each column as the JSON text of the change event's row image
// (so null, a missing column and an empty string stay apart).
// keys, when set, limits it to those keys (a pass of what changed).
//
// The row image is parsed once a row: one json_extract of every path gives a list, whose items
// are the columns. A json_extract a column parsed the image once each, a dozen times a row
// (TestRowImageParsedOnce).
func warehouseQuery(t table, keys *keySet) string {
	path := func(col string) string { return "'$.\"" + strings.ReplaceAll(col, "'", "''") + "\"'" }
	paths := []string{path(t.key), "'$.version'"}
	cols := []string{
		"json_extract_string(j[1], '$') AS k",
		"CAST(json_extract_string(j[2], '$') AS BIGINT) AS v",
		"commit_ts_us",
	}
	for i, c := range t.columns {
		paths = append(paths, path(c.name))
		cols = append(cols, fmt.Sprintf("CAST(j[%d] AS VARCHAR) AS c%d", i+3, i))
	}
	where := "true"
	if keys != nil {
		where = warehouseKeysWhere(t, keys)
	}
	current := currentRowsWhereSQL(t.name, "commit_ts_us, json_extract(after, ["+strings.Join(paths, ", ")+"]) AS j", t.windows, where)
	return "SELECT " + strings.Join(cols, ", ") + " FROM (" + current + ") ORDER BY k"
}

// warehouseRows is the answer of one table's query, spooled to a temporary file and read back a
// row at a time (rowCursor).
type warehouseRows struct {
	t   table
	f   *os.File
	csv *csv.Reader
}

// openWarehouse runs every table's query in turn, each writing its answer into a temporary file
// (memory stays bounded whatever the table's size), so the warehouse is read before the
// Postgres snapshot that follows, as the verdicts need. Spooled, not piped: a query streaming
// into a pipe holds the warehouse's read lock until the pass reads its last row, and the next
// table's query then asked for the lock again, behind a RAW snapshot (dbt's) waiting for the
// first: the stack stood still for good (TestOpenWarehouseBesideAWriter). close removes the
// files.
func openWarehouse(ctx context.Context, wh Warehouse, tables []table, sel selection) (map[string]*warehouseRows, func(), error) {
	out := map[string]*warehouseRows{}
	closeAll := func() {
		for _, w := range out {
			w.f.Close()
			os.Remove(w.f.Name())
		}
	}
	for _, t := range tables {
		f, err := os.CreateTemp("", "fin-reconcile-"+t.name+"-*.csv")
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("reconcile: spool warehouse raw.%s: %w", t.name, err)
		}
		w := &warehouseRows{t: t, f: f}
		out[t.name] = w
		err = wh.Query(ctx, warehouseQuery(t, sel[t.name]), f)
		if err == nil {
			_, err = f.Seek(0, io.SeekStart)
		}
		if err == nil {
			w.csv = csv.NewReader(bufio.NewReaderSize(f, 1<<16))
			w.csv.ReuseRecord = true
			_, err = w.csv.Read() // the header
		}
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("reconcile: read warehouse raw.%s: %w", t.name, err)
		}
	}
	return out, closeAll, nil
}

func (w *warehouseRows) next() (string, row, bool, error) {
	t := w.t
	rec, err := w.csv.Read()
	if errors.Is(err, io.EOF) {
		return "", row{}, false, nil
	}
	if err != nil {
		return "", row{}, false, fmt.Errorf("reconcile: read warehouse raw.%s: %w", t.name, err)
	}
	if len(rec) != 3+len(t.columns) {
		return "", row{}, false, fmt.Errorf("reconcile: warehouse raw.%s: %d columns, want %d", t.name, len(rec), 3+len(t.columns))
	}
	v, err := strconv.ParseInt(rec[1], 10, 64)
	if err != nil {
		return "", row{}, false, fmt.Errorf("reconcile: warehouse raw.%s key %s: version %q: %w", t.name, rec[0], rec[1], err)
	}
	commit, _ := strconv.ParseInt(rec[2], 10, 64)
	out := row{version: v, commitUs: commit, values: make([]string, len(t.columns))}
	for i, c := range t.columns {
		if out.values[i], err = fromJSON(c.kind, rec[3+i]); err != nil {
			return "", row{}, false, fmt.Errorf("reconcile: warehouse raw.%s key %s column %s: %w", t.name, rec[0], c.name, err)
		}
	}
	return rec[0], out, true, nil
}

// fromJSON turns the JSON text of one row-image value into the form Postgres's side is compared
// in. An empty field is SQL NULL: the row image has no such column.
func fromJSON(kind, text string) (string, error) {
	switch {
	case text == "":
		return absent, nil
	case text == "null":
		return null, nil
	case text == "true" || text == "false":
		return text, nil
	case text[0] == '"':
		s := text[1 : len(text)-1]
		if strings.IndexByte(s, '\\') >= 0 {
			if err := json.Unmarshal([]byte(text), &s); err != nil {
				return "", err
			}
		}
		return normalize(kind, s), nil
	}
	// A number: Postgres's text of an integer is the same digits.
	return normalize(kind, text), nil
}

// normalize writes a value the way both sides compare it: timestamps as the UTC instant to the
// microsecond, decimals by exact value (12.3 and 12.30 are the same money), the rest as is.
func normalize(kind, s string) string {
	switch kind {
	case "timestamptz":
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t.UTC().Format("2006-01-02T15:04:05.000000Z")
		}
	case "numeric":
		if d, err := decimal.NewFromString(s); err == nil {
			return d.String()
		}
	}
	return s
}

// loadedTables keeps the tables the warehouse has a RAW table for; the others are named in
// skipped (captured, but never loaded: a signal table).
func loadedTables(ctx context.Context, wh Warehouse, tables []table, skipped []string) ([]table, []string, error) {
	var buf bytes.Buffer
	if err := wh.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw'`, &buf); err != nil {
		return nil, nil, fmt.Errorf("reconcile: list the warehouse's RAW tables: %w", err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		return nil, nil, fmt.Errorf("reconcile: list the warehouse's RAW tables: %w", err)
	}
	raw := map[string]bool{}
	for _, r := range recs[min(1, len(recs)):] {
		raw[r[0]] = true
	}
	var out []table
	for _, t := range tables {
		if raw[t.name] {
			t.windows = raw[bronze.SnapshotWindowsTable]
			out = append(out, t)
		} else {
			skipped = append(skipped, fmt.Sprintf("%s.%s: not compared, the warehouse has no raw.%s", t.schema, t.name, t.name))
		}
	}
	if len(out) == 0 {
		return nil, skipped, fmt.Errorf("reconcile: the warehouse holds none of the captured tables: %s", strings.Join(skipped, "; "))
	}
	return out, skipped, nil
}

// loadDelay is how far behind its commits the warehouse has been loading lately: the longest
// time from an event's commit to its load over the last minute's loads (zero when idle). A
// warehouse refilling itself from the lake loads old events, so this grows, and a change the
// capture delivered is not judged lost while the loads are still working their way to it.
func loadDelay(ctx context.Context, wh Warehouse, tables []table) (time.Duration, error) {
	parts := make([]string, len(tables))
	for i, t := range tables {
		parts[i] = fmt.Sprintf(`SELECT max(epoch_us(_loaded_at) - commit_ts_us) AS d FROM raw.%s
			WHERE _loaded_at > now() - INTERVAL 1 MINUTE`, t.name)
	}
	var buf bytes.Buffer
	if err := wh.Query(ctx, "SELECT coalesce(max(d), 0) AS d FROM ("+strings.Join(parts, " UNION ALL ")+")", &buf); err != nil {
		return 0, fmt.Errorf("reconcile: read the warehouse's load delay: %w", err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(recs) != 2 {
		return 0, fmt.Errorf("reconcile: read the warehouse's load delay: %q: %v", buf.String(), err)
	}
	us, err := strconv.ParseFloat(recs[1][0], 64)
	if err != nil {
		return 0, fmt.Errorf("reconcile: load delay %q: %w", recs[1][0], err)
	}
	return max(0, time.Duration(us)*time.Microsecond), nil
}
