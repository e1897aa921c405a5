package landing

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/aws/aws-lambda-go/events"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
)

// envelope is the part of Debezium's JSON change event (schemas disabled) that bronze keeps.
// Row images stay raw JSON: money is a decimal string inside them and is never parsed here.
type envelope struct {
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
	Source *struct {
		Schema   string          `json:"schema"`
		Table    string          `json:"table"`
		Snapshot json.RawMessage `json:"snapshot"`
		TxID     *int64          `json:"txId"`
		LSN      *int64          `json:"lsn"`
		TsMs     *int64          `json:"ts_ms"`
		TsUs     *int64          `json:"ts_us"`
	} `json:"source"`
	Op   string `json:"op"`
	TsMs *int64 `json:"ts_ms"`
}

// errTombstone marks the null value Debezium writes after a delete (for log compaction): there
// is nothing to land, and it is not an error.
var errTombstone = errors.New("tombstone")

// decodeRecord turns one Kafka record of a Debezium topic into a bronze row. It returns
// errTombstone for a tombstone and a *PoisonError for anything that is not a change event.
func decodeRecord(rec *events.KafkaRecord, partition int32) (bronze.Record, error) {
	row := bronze.Record{Topic: rec.Topic, Partition: partition, Offset: rec.Offset}
	key, err := base64.StdEncoding.DecodeString(rec.Key)
	if err != nil {
		return row, poison("key is not base64: %v", err)
	}
	if len(key) > 0 && !json.Valid(key) {
		return row, poison("key is not JSON")
	}
	row.Key = string(key)
	if rec.Value == "" {
		return row, errTombstone
	}
	value, err := base64.StdEncoding.DecodeString(rec.Value)
	if err != nil {
		return row, poison("value is not base64: %v", err)
	}
	if bytes.Equal(bytes.TrimSpace(value), []byte("null")) {
		return row, errTombstone
	}
	var env envelope
	if err := json.Unmarshal(value, &env); err != nil {
		return row, poison("value is not a Debezium JSON envelope: %v", err)
	}
	if err := fillRow(&row, &env); err != nil {
		return row, err
	}
	return row, nil
}

func fillRow(row *bronze.Record, env *envelope) error {
	switch env.Op {
	case "r", "c", "u", "d":
	case "":
		return poison("no op field (is the converter's schemas.enable=false?)")
	default:
		return poison("unknown op %q (want r, c, u or d)", env.Op)
	}
	row.Op = env.Op
	src := env.Source
	if src == nil {
		return poison("no source block")
	}
	if src.Table == "" {
		return poison("source.table is empty")
	}
	switch {
	case src.TsUs != nil:
		row.CommitTsUs = *src.TsUs
	case src.TsMs != nil:
		row.CommitTsUs = *src.TsMs * 1000
	default:
		return poison("source has neither ts_us nor ts_ms (the commit time)")
	}
	if env.TsMs == nil {
		return poison("no ts_ms in the envelope")
	}
	row.EventTsMs = *env.TsMs
	row.LSN, row.TxID = src.LSN, src.TxID
	row.SourceSchema, row.SourceTable = src.Schema, src.Table
	snapshot, err := snapshotString(src.Snapshot)
	if err != nil {
		return err
	}
	row.Snapshot = snapshot

	if row.Before, err = image("before", env.Before); err != nil {
		return err
	}
	if row.After, err = image("after", env.After); err != nil {
		return err
	}
	if env.Op == "d" && row.Before == nil {
		return poison("op d without a before image")
	}
	if env.Op != "d" && row.After == nil {
		return poison("op %s without an after image", env.Op)
	}
	return nil
}

// snapshotString reads source.snapshot, a string in Debezium 2+ ("true", "last", "false", ...)
// and a boolean in older versions.
func snapshotString(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "false", nil
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", poison("source.snapshot: %v", err)
		}
		return s, nil
	case 't', 'f':
		b, err := strconv.ParseBool(string(raw))
		if err != nil {
			return "", poison("source.snapshot is %s", raw)
		}
		return strconv.FormatBool(b), nil
	}
	return "", poison("source.snapshot is %s, want a string", raw)
}

// image keeps a row image exactly as Debezium wrote it; null means there is none.
func image(name string, raw json.RawMessage) (*string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] != '{' {
		return nil, poison("%s is not a JSON object", name)
	}
	s := string(raw)
	return &s, nil
}

// PoisonError says why a record cannot be landed; such a record goes to the DLQ.
type PoisonError struct{ Reason string }

func (e *PoisonError) Error() string { return "undecodable record: " + e.Reason }

func poison(format string, args ...any) error {
	return &PoisonError{Reason: fmt.Sprintf(format, args...)}
}
