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

// errTombstone marks the null value Debezium writes after a delete (for log compaction): there
// is nothing to land, and it is not an error.
var errTombstone = errors.New("tombstone")

// decodeRecord turns one Kafka record of a Debezium topic into a bronze row: a change event, or
// a transaction boundary on the transaction metadata topic. It returns errTombstone for a
// tombstone and a *PoisonError for anything else.
func decodeRecord(rec *events.KafkaRecord, partition int32, sc *decodeScratch) (bronze.Record, error) {
	row := bronze.Record{Topic: rec.Topic, Partition: partition, Offset: rec.Offset}
	key, err := decodeBase64(rec.Key, &sc.buf)
	if err != nil {
		return row, poison("key is not base64: %v", err)
	}
	if len(key) > 0 && !validJSON(key) {
		return row, poison("key is not JSON")
	}
	row.Key = string(key)
	if rec.Value == "" {
		return row, errTombstone
	}
	value, err := decodeBase64(rec.Value, &sc.buf)
	if err != nil {
		return row, poison("value is not base64: %v", err)
	}
	if string(bytes.TrimSpace(value)) == "null" {
		return row, errTombstone
	}
	if tableOf(rec.Topic) == bronze.TransactionMetadataTable {
		return row, fillBoundary(&row, value, sc)
	}
	env, err := scanEnvelope(value)
	if err != nil {
		var pe *PoisonError
		if errors.As(err, &pe) {
			return row, err
		}
		return row, poison("value is not a Debezium JSON envelope: %v", err)
	}
	if err := fillRow(&row, &env, sc); err != nil {
		return row, err
	}
	return row, nil
}

// decodeScratch is what the records of one batch share while they are decoded: a buffer for
// the base64-decoded bytes (rows keep copies of what they need) and a slab for the rows'
// integer pointers (one allocation for the batch instead of two a row).
type decodeScratch struct {
	buf  []byte
	ints []int64
}

func (sc *decodeScratch) int(o optInt) *int64 {
	if !o.ok {
		return nil
	}
	if len(sc.ints) == cap(sc.ints) {
		sc.ints = make([]int64, 0, 512) // earlier rows keep pointing into the old slab
	}
	sc.ints = append(sc.ints, o.v)
	return &sc.ints[len(sc.ints)-1]
}

func decodeBase64(s string, scratch *[]byte) ([]byte, error) {
	n := base64.StdEncoding.DecodedLen(len(s))
	if cap(*scratch) < n {
		*scratch = make([]byte, n)
	}
	n, err := base64.StdEncoding.Decode((*scratch)[:n], []byte(s))
	return (*scratch)[:n], err
}

func fillRow(row *bronze.Record, env *envelopeFields, sc *decodeScratch) error {
	switch env.op {
	case "r", "c", "u", "d":
	case "":
		return poison("no op field (is the converter's schemas.enable=false?)")
	default:
		return poison("unknown op %q (want r, c, u or d)", env.op)
	}
	row.Op = env.op
	if !env.hasSource {
		return poison("no source block")
	}
	if env.table == "" {
		return poison("source.table is empty")
	}
	switch {
	case env.srcTsUs.ok:
		row.CommitTsUs = env.srcTsUs.v
	case env.srcTsMs.ok:
		row.CommitTsUs = env.srcTsMs.v * 1000
	default:
		return poison("source has neither ts_us nor ts_ms (the commit time)")
	}
	if !env.tsMs.ok {
		return poison("no ts_ms in the envelope")
	}
	row.EventTsMs = env.tsMs.v
	row.LSN, row.TxID = sc.int(env.lsn), sc.int(env.txID)
	row.SourceSchema, row.SourceTable = env.schema, env.table
	row.Snapshot = env.snapshot
	if row.Snapshot == "" {
		row.Snapshot = "false"
	}

	var err error
	if row.Before, err = image("before", env.before); err != nil {
		return err
	}
	if row.After, err = image("after", env.after); err != nil {
		return err
	}
	if env.op == "d" && row.Before == nil {
		return poison("op d without a before image")
	}
	if env.op != "d" && row.After == nil {
		return poison("op %s without an after image", env.op)
	}
	return nil
}

// snapshotString reads source.snapshot, a string in Debezium 2+ ("true", "last", "false", ...)
// and a boolean in older versions.
func snapshotString(raw []byte) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "false", nil
	}
	switch raw[0] {
	case '"':
		if !hasEscape(raw) {
			return intern(raw[1 : len(raw)-1]), nil
		}
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
func image(name string, raw []byte) (*string, error) {
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

// Permanent reports true (retry.IsPermanent): the same bytes never decode, so redelivering the
// record cannot land it and it goes to the DLQ instead.
func (e *PoisonError) Permanent() bool { return true }

func poison(format string, args ...any) error {
	return &PoisonError{Reason: fmt.Sprintf(format, args...)}
}
