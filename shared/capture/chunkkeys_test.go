package capture

import (
	"fmt"
	"testing"
)

// A chunk's keys share one buffer; find answers by scanning for the first lookups and by an
// index after, and both must agree, for every row and for keys the chunk does not hold.
func TestChunkFindsItsKeys(t *testing.T) {
	tbl := newTable("public", "items", "fin")
	tbl.keyNames = []string{"grp", "id"}
	for _, c := range []string{"grp", "id", "v"} {
		tbl.addColumn(c, oidInt8, -1)
	}
	if err := tbl.resolveKey(); err != nil {
		t.Fatal(err)
	}
	const rows = 100
	ch := &chunk{rows: make([]image, rows), keyEnd: make([]int, rows), dropped: make([]bool, rows)}
	for i := range rows {
		cells := queryCells(nil, [][]byte{fmt.Appendf(nil, "%d", i%7), fmt.Appendf(nil, "%d", i), []byte("0")})
		if err := ch.addRow(tbl, cells); err != nil {
			t.Fatal(err)
		}
	}
	for round, tt := range []struct {
		name    string
		indexed bool
	}{{"scanned", false}, {"indexed", true}} {
		for i := range rows {
			key := fmt.Sprintf(`{"grp":%d,"id":%d}`, i%7, i)
			if got := string(ch.key(i)); got != key {
				t.Fatalf("%s: key(%d) = %s, want %s", tt.name, i, got, key)
			}
			if j, ok := ch.find(key); !ok || j != i {
				t.Errorf("%s: find(%s) = %d, %v; want %d, true", tt.name, key, j, ok, i)
			}
			if _, ok := ch.find(fmt.Sprintf(`{"grp":%d,"id":%d}`, i%7+1, i)); ok {
				t.Errorf("%s: found a key the chunk does not hold", tt.name)
			}
			if round == 0 && ch.lookups >= linearLookups {
				break // the rest of the rows are looked up through the index
			}
		}
		if ch.indexed != tt.indexed && round == 1 {
			t.Errorf("%s: indexed %v after %d lookups", tt.name, ch.indexed, ch.lookups)
		}
	}
	if !ch.indexed {
		t.Errorf("never indexed after more than %d lookups", linearLookups)
	}
}
