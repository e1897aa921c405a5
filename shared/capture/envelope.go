package capture

import (
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
)

// debeziumVersion is the Debezium release whose events this capture reproduces.
const debeziumVersion = "3.6.1.Final"

// column is one column of a captured table as the event shows it.
type column struct {
	name   string
	prefix []byte // `"name":`, ready to append
	enc    valueEncoder
}

// table is what the capture knows about one captured table.
type table struct {
	schema, name string
	qname        string // schema.name, made once: the stream asks for it at every change
	topic        string
	cols         []column
	keyNames     []string // primary key columns, in key order
	key          []int    // their positions in cols
}

// resolveKey finds the key columns among cols (after cols are set or replaced).
func (t *table) resolveKey() error {
	t.key = t.key[:0]
	for _, k := range t.keyNames {
		found := false
		for i, c := range t.cols {
			if c.name == k {
				t.key, found = append(t.key, i), true
			}
		}
		if !found {
			return fmt.Errorf("%s: primary key column %s is not in the row", t.qualified(), k)
		}
	}
	return nil
}

func newTable(schema, name, topicPrefix string) *table {
	return &table{schema: schema, name: name, qname: schema + "." + name, topic: topicPrefix + "." + schema + "." + name}
}

func (t *table) addColumn(name string, oid uint32, typmod int32) {
	t.addResultColumn(name, oid, typmod, pgx.TextFormatCode)
}

// addResultColumn adds a column a query returns in format (text or binary).
func (t *table) addResultColumn(name string, oid uint32, typmod int32, format int16) {
	enc := encoderFor(oid, typmod)
	if format == pgx.BinaryFormatCode {
		enc = binaryEncoderFor(oid, typmod)
	}
	prefix := appendJSONString(nil, []byte(name))
	t.cols = append(t.cols, column{name: name, prefix: append(prefix, ':'), enc: enc})
}

func (t *table) qualified() string { return t.qname }

// image is one encoded row: its JSON object and where each column's value sits in it, so a key
// or an unchanged TOAST value can be copied from it without decoding.
type image struct {
	json  []byte
	spans [][2]int
}

// cell is one column's value as the source gives it.
type cell struct {
	kind byte // 'n' null, 'u' unchanged TOAST (pgoutput only), 't' text
	data []byte
}

// encode fills img with the row's JSON object. An unchanged TOAST value is taken from old (the
// before-image, complete with REPLICA IDENTITY FULL); without it the row cannot be told truthfully
// and encode fails rather than let a placeholder pass for data.
func (t *table) encode(img *image, cells []cell, old *image) error {
	if len(cells) != len(t.cols) {
		return fmt.Errorf("%s: row has %d columns, relation has %d", t.qualified(), len(cells), len(t.cols))
	}
	img.json = append(img.json[:0], '{')
	img.spans = img.spans[:0]
	var err error
	for i, c := range cells {
		if i > 0 {
			img.json = append(img.json, ',')
		}
		img.json = append(img.json, t.cols[i].prefix...)
		start := len(img.json)
		switch c.kind {
		case 'n':
			img.json = append(img.json, "null"...)
		case 'u':
			if old == nil || len(old.spans) != len(t.cols) {
				return fmt.Errorf("%s.%s: unchanged TOAST value without a before-image (set REPLICA IDENTITY FULL on the table)", t.qualified(), t.cols[i].name)
			}
			sp := old.spans[i]
			img.json = append(img.json, old.json[sp[0]:sp[1]]...)
		default:
			img.json, err = t.cols[i].enc(img.json, c.data)
			if err != nil {
				return fmt.Errorf("%s.%s: %w", t.qualified(), t.cols[i].name, err)
			}
		}
		img.spans = append(img.spans, [2]int{start, len(img.json)})
	}
	img.json = append(img.json, '}')
	return nil
}

// appendKey writes the record key: the primary-key columns as a JSON object.
func (t *table) appendKey(dst []byte, img *image) []byte {
	dst = append(dst, '{')
	for i, k := range t.key {
		if i > 0 {
			dst = append(dst, ',')
		}
		sp := img.spans[k]
		dst = append(dst, t.cols[k].prefix...)
		dst = append(dst, img.json[sp[0]:sp[1]]...)
	}
	return append(dst, '}')
}

// source is the changing part of an event's source block.
type source struct {
	commit     time.Time // commit time (streaming) or snapshot time
	snapshot   string    // "false" streaming; first, true, last, ... in the snapshot
	lastCommit pglogrepl.LSN
	hasCommit  bool // lastCommit is known (Debezium writes null until it has seen a commit)
	lsn        pglogrepl.LSN
	txID       int64
}

// envelopeWriter appends Debezium envelopes for one connector (server name, database).
type envelopeWriter struct {
	namePrefix []byte // `"version":...,"name":"fin","ts_ms":`
	db         []byte // `"db":"fin","sequence":`
}

func newEnvelopeWriter(serverName, database string) *envelopeWriter {
	w := &envelopeWriter{}
	w.namePrefix = append(w.namePrefix, `{"version":"`+debeziumVersion+`","connector":"postgresql","name":`...)
	w.namePrefix = appendJSONString(w.namePrefix, []byte(serverName))
	w.namePrefix = append(w.namePrefix, `,"ts_ms":`...)
	w.db = append(w.db, `,"db":`...)
	w.db = appendJSONString(w.db, []byte(database))
	w.db = append(w.db, `,"sequence":`...)
	return w
}

// appendValue writes the change event: before and after are nil for absent images.
func (w *envelopeWriter) appendValue(dst []byte, t *table, op byte, before, after *image, src *source, now time.Time) []byte {
	dst = appendImages(dst, before, after)
	return w.appendTail(dst, t, op, src, nil, now)
}

// appendImages writes the start of the change event, up to its after-image.
func appendImages(dst []byte, before, after *image) []byte {
	dst = append(dst, `{"before":`...)
	dst = appendImage(dst, before)
	dst = append(dst, `,"after":`...)
	return appendImage(dst, after)
}

// appendTail writes the rest of the change event, after its after-image: the same for every row
// of an incremental snapshot's chunk. tx is the event's transaction block, nil for none (null).
func (w *envelopeWriter) appendTail(dst []byte, t *table, op byte, src *source, tx []byte, now time.Time) []byte {
	dst = append(dst, `,"source":`...)
	dst = append(dst, w.namePrefix...)
	us := src.commit.UnixMicro()
	dst = strconv.AppendInt(dst, us/1000, 10)
	dst = append(dst, `,"snapshot":"`...)
	dst = append(dst, src.snapshot...)
	dst = append(dst, '"')
	dst = append(dst, w.db...)
	dst = append(dst, `"[`...)
	if src.hasCommit {
		dst = append(dst, `\"`...)
		dst = strconv.AppendUint(dst, uint64(src.lastCommit), 10)
		dst = append(dst, `\"`...)
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,\"`...)
	dst = strconv.AppendUint(dst, uint64(src.lsn), 10)
	dst = append(dst, `\"]","ts_us":`...)
	dst = strconv.AppendInt(dst, us, 10)
	dst = append(dst, `,"ts_ns":`...)
	dst = strconv.AppendInt(dst, us*1000, 10)
	dst = append(dst, `,"schema":`...)
	dst = appendJSONString(dst, []byte(t.schema))
	dst = append(dst, `,"table":`...)
	dst = appendJSONString(dst, []byte(t.name))
	dst = append(dst, `,"txId":`...)
	dst = strconv.AppendInt(dst, src.txID, 10)
	dst = append(dst, `,"lsn":`...)
	dst = strconv.AppendUint(dst, uint64(src.lsn), 10)
	dst = append(dst, `,"xmin":null,"origin":null,"origin_lsn":null},"transaction":`...)
	if tx == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, tx...)
	}
	dst = append(dst, `,"op":"`...)
	dst = append(dst, op)
	dst = append(dst, `","ts_ms":`...)
	nowNs := now.UnixNano()
	dst = strconv.AppendInt(dst, nowNs/1_000_000, 10)
	dst = append(dst, `,"ts_us":`...)
	dst = strconv.AppendInt(dst, nowNs/1000, 10)
	dst = append(dst, `,"ts_ns":`...)
	dst = strconv.AppendInt(dst, nowNs, 10)
	return append(dst, '}')
}

func appendImage(dst []byte, img *image) []byte {
	if img == nil {
		return append(dst, "null"...)
	}
	return append(dst, img.json...)
}
