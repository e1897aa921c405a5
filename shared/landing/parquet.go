package landing

import (
	"bytes"
	"fmt"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
)

// parquetCodec is zstd at its default level: the bronze contract's compression.
var parquetCodec = &zstd.Codec{Level: zstd.SpeedDefault}

// EncodeParquet writes rows as one bronze Parquet object. The bytes depend only on the rows:
// created_by is fixed (not the build's module version), so a redelivered batch handled by a
// newer deployment still rewrites an identical object.
func EncodeParquet(rows []bronze.Record) ([]byte, error) {
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[bronze.Record](&buf,
		parquet.Compression(parquetCodec),
		parquet.CreatedBy("fin-orchestrator landing", "1", ""),
	)
	if _, err := w.Write(rows); err != nil {
		return nil, fmt.Errorf("write %d rows: %w", len(rows), err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("close parquet writer: %w", err)
	}
	return buf.Bytes(), nil
}
