package reconcile

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fin-orchestrator/fin-orchestrator/shared/warehouse/duckdb"
)

// TestNamedKeysAreJoinedNotCompared: a pass of what changed looks its named keys up in a hash
// join, whatever their number; as a list of constants beside the sweep's range (an OR) DuckDB
// compared every row's key with each of them, and a pass of 20,000 keys ran for a minute holding
// the warehouse's read lock.
func TestNamedKeysAreJoinedNotCompared(t *testing.T) {
	ctx := context.Background()
	wh, err := duckdb.Open(ctx, filepath.Join(t.TempDir(), "raw_store.duckdb"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer wh.Close()
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprintf("c%03d", i)
	}
	for _, tc := range []struct {
		name string
		ks   *keySet
	}{
		{"named keys and the sweep's range", &keySet{keys: keys, lo: "c200", hi: "c300"}},
		{"named keys and the sweep to the end", &keySet{keys: keys, lo: "c200", toEnd: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := table{name: "customers", key: "customer_id", columns: []column{{name: "email"}}}
			var plan strings.Builder
			err := wh.QueryRows(ctx, "EXPLAIN "+warehouseQuery(tb, tc.ks), nil, func(rows *sql.Rows) error {
				for rows.Next() {
					var k, v string
					if err := rows.Scan(&k, &v); err != nil {
						return err
					}
					plan.WriteString(v)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(plan.String(), "HASH_JOIN") || strings.Contains(plan.String(), "'c050'") {
				t.Fatalf("the named keys are not looked up in a hash join:\n%s", plan.String())
			}
		})
	}
}
