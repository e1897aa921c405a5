package landing

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
)

// parquetCodec is zstd, the bronze contract's compression, at its fastest level: on JSON row
// images it compresses nearly as well as the default level, at a fraction of the CPU, and the
// landing is CPU-bound.
var parquetCodec = &zstd.Codec{Level: zstd.SpeedFastest}

// writers reuses Parquet writers: building one (column buffers for every field) costs as much
// as encoding a hundred rows.
var writers = sync.Pool{New: func() any {
	return parquet.NewGenericWriter[bronze.Record](nil,
		parquet.Compression(parquetCodec),
		// Fixed, not the build's module version: a redelivered batch handled by a newer
		// deployment still rewrites an identical object.
		parquet.CreatedBy("fin-orchestrator landing", "1", ""),
	)
}}

// EncodeParquet writes rows as one bronze Parquet object. The bytes depend only on the rows.
func EncodeParquet(rows []bronze.Record) ([]byte, error) {
	var buf bytes.Buffer
	w := writers.Get().(*parquet.GenericWriter[bronze.Record])
	w.Reset(&buf)
	if _, err := w.Write(rows); err != nil {
		return nil, fmt.Errorf("write %d rows: %w", len(rows), err) // w is dropped, not reused
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("close parquet writer: %w", err)
	}
	w.Reset(nil)
	writers.Put(w)
	return buf.Bytes(), nil
}
