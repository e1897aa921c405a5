package landing_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
	"github.com/fin-orchestrator/fin-orchestrator/shared/landing"
)

// TestEncodeParquetIsStable encodes the same rows several times in one process: every object
// must be the same bytes, with each column chunk naming its column (path_in_schema), which
// readers such as DuckDB use.
func TestEncodeParquetIsStable(t *testing.T) {
	after := `{"id":"a1","balance":"12345.67"}`
	rows := []bronze.Record{{Topic: accounts, Offset: 1, Op: "c", After: &after}}
	var first []byte
	for i := range 3 {
		b, err := landing.EncodeParquet(rows)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = b
		} else if !bytes.Equal(b, first) {
			t.Fatalf("encoding %d: %d bytes, first encoding %d: not identical", i, len(b), len(first))
		}
		f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		var paths []string
		for _, c := range f.Metadata().RowGroups[0].Columns {
			paths = append(paths, strings.Join(c.MetaData.PathInSchema, "."))
		}
		if slices.Contains(paths, "") || !slices.Contains(paths, "after") {
			t.Fatalf("encoding %d: column chunk paths %q; want every column named", i, paths)
		}
	}
}
