package landing

import (
	"strconv"
	"strings"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
	"github.com/fin-orchestrator/fin-orchestrator/shared/strictjson"
)

// boundary is a record of Debezium's transaction metadata topic (docs/capture.md).
type boundary struct {
	Status          string           `json:"status"`
	ID              string           `json:"id"`
	EventCount      *int64           `json:"event_count"`
	DataCollections []dataCollection `json:"data_collections"`
	TsMs            *int64           `json:"ts_ms"`
}

type dataCollection struct {
	DataCollection string `json:"data_collection"`
	EventCount     *int64 `json:"event_count"`
}

// fillBoundary makes a transaction's BEGIN or END the bronze row of
// bronze.TransactionMetadataTable: Op the status, TxID and LSN from the id "<txId>:<lsn>",
// CommitTsUs from ts_ms (the commit time), After the record as Debezium wrote it. Anything else
// is poison: the warehouse counts a transaction's events from its END, so an END without its
// counts could only mislead it.
func fillBoundary(row *bronze.Record, value []byte, sc *decodeScratch) error {
	var b boundary
	if err := strictjson.Unmarshal(value, &b); err != nil {
		return poison("not a Debezium transaction metadata record: %v", err)
	}
	tx, lsn, ok := strings.Cut(b.ID, ":")
	txID, err1 := strconv.ParseInt(tx, 10, 64)
	pos, err2 := strconv.ParseInt(lsn, 10, 64)
	if !ok || err1 != nil || err2 != nil || txID < 0 || pos < 0 {
		return poison("transaction id %q is not <txId>:<lsn>", b.ID)
	}
	if b.TsMs == nil {
		return poison("transaction %s has no ts_ms (the commit time)", b.ID)
	}
	switch b.Status {
	case "BEGIN":
	case "END":
		if b.EventCount == nil || b.DataCollections == nil {
			return poison("END of transaction %s has no event_count or data_collections", b.ID)
		}
		var sum int64
		for _, c := range b.DataCollections {
			if c.DataCollection == "" || c.EventCount == nil || *c.EventCount < 0 {
				return poison("END of transaction %s: a data collection without a name or count", b.ID)
			}
			sum += *c.EventCount
		}
		if sum != *b.EventCount {
			return poison("END of transaction %s counts %d events, its data collections %d", b.ID, *b.EventCount, sum)
		}
	default:
		return poison("transaction %s has status %q, want BEGIN or END", b.ID, b.Status)
	}
	row.Op = b.Status
	row.TxID, row.LSN = sc.int(optInt{txID, true}), sc.int(optInt{pos, true})
	row.CommitTsUs, row.EventTsMs = *b.TsMs*1000, *b.TsMs
	row.Snapshot = "false"
	after := string(value)
	row.After = &after
	return nil
}
