package capture

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/fin-orchestrator/fin-orchestrator/shared/pgtest"
)

// A chunk read must walk the primary key whatever the table's statistics say: a table loaded and
// snapshotted before autovacuum analyzed it made the planner sort the rest of the table for each
// chunk (a bitmap scan of the whole key range and a top-N sort), so a snapshot took time
// quadratic in the table's size.
func TestChunkReadWalksThePrimaryKeyWithoutStatistics(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	for _, q := range []string{
		`CREATE TABLE loaded (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), grp int, n bigint, v text, UNIQUE (grp, n)) WITH (autovacuum_enabled = false)`,
		`INSERT INTO loaded (grp, n, v) SELECT g % 7, g, 'row ' || g FROM generate_series(1, 50000) g`,
	} {
		if _, err := db.Pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	base, err := pgx.ParseConfig(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		keyCols []string
		args    []any
		index   string
		// The planner's own choice sorts (the case this guards against, reproduced here).
		defaultSorts bool
	}{
		{"first chunk of a uuid key", []string{"id"}, []any{"ffffffff-ffff-ffff-ffff-ffffffffffff"}, "loaded_pkey", false},
		{"next chunk of a uuid key", []string{"id"}, []any{"00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff"}, "loaded_pkey", true},
		{"next chunk of a composite key", []string{"grp", "n"}, []any{"0", "0", "6", "50000"}, "loaded_grp_n_key", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, c := range []struct {
				cfg      *pgx.ConnConfig
				wantScan bool // walks the key
			}{{chunkConnConfig(base), true}, {base, !tt.defaultSorts}} {
				conn, err := pgx.ConnectConfig(ctx, c.cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close(ctx)
				plan := explain(t, conn, "EXPLAIN "+chunkQuery("loaded", tt.keyCols, len(tt.args) > len(tt.keyCols), 4096), tt.args...)
				walks := strings.Contains(plan, "Index Scan using "+tt.index) && !strings.Contains(plan, "Sort")
				if walks != c.wantScan {
					t.Errorf("the read walks %s: %v, want %v; plan:\n%s", tt.index, walks, c.wantScan, plan)
				}
				// The read's WAL position is taken before the scan reads any row's xmax (heldOpen).
				if !strings.Contains(plan, "One-Time Filter") {
					t.Errorf("the read's position is not a one-time filter before the scan; plan:\n%s", plan)
				}
			}
		})
	}
}

func explain(t *testing.T, conn *pgx.Conn, q string, args ...any) string {
	t.Helper()
	rows, err := conn.Query(context.Background(), q, args...)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// A chunk read's snapshot and position come once, on a first row of their own, and every row
// after it is the table's with its xmax: repeated on every row they cost a third of its bytes
// on a busy cluster and a tenth of Postgres's CPU for the read. readMeta refuses a first row
// that is not theirs.
func TestChunkReadCarriesItsSnapshotOnce(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE once (id int PRIMARY KEY, v text NOT NULL);
		INSERT INTO once SELECT g, 'row ' || g FROM generate_series(1, 10) g`); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.ConnectConfig(ctx, chunkConnConfig(db.Pool.Config().ConnConfig))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tests := []struct {
		name string
		args [][]byte
		rows int
	}{
		{"first chunk", [][]byte{[]byte("10")}, 4},
		{"next chunk", [][]byte{[]byte("8"), []byte("10")}, 2},
		{"empty chunk", [][]byte{[]byte("10"), []byte("10")}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rr := conn.PgConn().ExecParams(ctx, chunkQuery("once", []string{"id"}, len(tt.args) > 1, 4), tt.args, nil, nil, nil)
			var rows [][][]byte
			for rr.NextRow() {
				var row [][]byte
				for _, v := range rr.Values() {
					row = append(row, bytes.Clone(v))
				}
				rows = append(rows, row)
			}
			if _, err := rr.Close(); err != nil {
				t.Fatal(err)
			}
			if len(rows) != tt.rows+1 {
				t.Fatalf("%d rows, want the read's own and %d of the table", len(rows), tt.rows)
			}
			var ch chunk
			if err := ch.readMeta(rows[0]); err != nil || ch.readLSN == 0 {
				t.Fatalf("first row %q: %v, position %s", rows[0], err, ch.readLSN)
			}
			for _, v := range rows[0][chunkMeta:] {
				if v != nil {
					t.Errorf("the read's own row carries a table value: %q", rows[0])
				}
			}
			for _, row := range rows[1:] {
				if row[0] != nil || row[1] != nil || row[2] == nil || row[chunkMeta] == nil {
					t.Errorf("row %q: want the snapshot and position null, its xmax and columns set", row)
				}
			}
			if len(rows) > 1 {
				if err := ch.readMeta(rows[1]); err == nil {
					t.Errorf("readMeta took a row of the table (%q) for the read's snapshot", rows[1])
				}
			}
		})
	}
}
