package landing

import (
	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
)

// EncodeParquet writes rows as one bronze Parquet object (bronze.EncodeParquet: the capture
// writes bronze objects too). The bytes depend only on the rows.
func EncodeParquet(rows []bronze.Record) ([]byte, error) { return bronze.EncodeParquet(rows) }
