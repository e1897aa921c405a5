package capture

import (
	"context"
	"strconv"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
)

// Debezium's transaction metadata (provide.transaction.metadata=true): every streamed change
// event carries a transaction block (the transaction's id, the event's position among all its
// events and among those of its table), and each streamed transaction with events has a BEGIN
// before its first event and an END after its last on <prefix>.transaction_metadata, keyed by the id. The
// END counts the transaction's events per table: a consumer that holds that many events of each
// table for the id holds the whole transaction, which is what lets the warehouse cut gold at a
// position where no transaction is torn (docs/capture.md, "Transaction metadata").
//
// Snapshot reads (initial or incremental) belong to no streamed transaction: their block is
// null, as Debezium writes it. Transactions without captured changes (heartbeats, other tables)
// have no BEGIN or END. Tombstones are not counted (they are not change events).

// txMeta is the metadata of the streamed transaction being read. Debezium 3.6.1's id of a
// Postgres transaction is "<txId>:<lsn>" with the lsn of the record that carries it: the Begin
// message's position on BEGIN, the event's source.lsn in its block, the end of the commit on END.
// So the ids of one transaction differ; its txId (and, on END, its end position) is what
// identifies it (the contract test checks this against Debezium).
type txMeta struct {
	active bool // between a Begin and its Commit
	xid    uint32
	begin  pglogrepl.LSN // the Begin message's position
	id     []byte
	commit time.Time
	began  bool  // its BEGIN has been produced
	total  int64 // events so far
	counts []collectionCount
}

// collectionCount is one table's events in the transaction, in the order the tables first appear.
type collectionCount struct {
	name string // schema.table, Debezium's data_collection
	n    int64
}

// transactionTopic is the topic of transaction boundaries: <prefix>.transaction_metadata.
// Its last segment (Debezium's topic.transaction, debezium/fin-postgres.properties) names its
// bronze and RAW tables.
func transactionTopic(prefix string) string { return prefix + "." + bronze.TransactionMetadataTable }

// beginTx starts the metadata of the transaction a Begin message at pos opens.
func (m *txMeta) beginTx(xid uint32, pos pglogrepl.LSN, commit time.Time) {
	m.active, m.began, m.total, m.commit = true, false, 0, commit
	m.xid, m.begin = xid, pos
	m.counts = m.counts[:0]
}

// at sets the id to the transaction's at lsn.
func (m *txMeta) at(lsn pglogrepl.LSN) {
	m.id = strconv.AppendUint(m.id[:0], uint64(m.xid), 10)
	m.id = append(m.id, ':')
	m.id = strconv.AppendUint(m.id, uint64(lsn), 10)
}

// count adds one event of table at lsn to the transaction and returns its block.
func (m *txMeta) count(dst []byte, table string, lsn pglogrepl.LSN) []byte {
	m.at(lsn)
	m.total++
	i := 0
	for i < len(m.counts) && m.counts[i].name != table {
		i++
	}
	if i == len(m.counts) {
		m.counts = append(m.counts, collectionCount{name: table})
	}
	m.counts[i].n++
	dst = append(dst, `{"id":`...)
	dst = appendJSONString(dst, m.id)
	dst = append(dst, `,"total_order":`...)
	dst = strconv.AppendInt(dst, m.total, 10)
	dst = append(dst, `,"data_collection_order":`...)
	dst = strconv.AppendInt(dst, m.counts[i].n, 10)
	return append(dst, '}')
}

// boundary is a BEGIN or END record of the transaction.
func (m *txMeta) boundary(topic string, end bool) *kgo.Record {
	key := append(append([]byte(`{"id":`), appendJSONString(nil, m.id)...), '}')
	v := make([]byte, 0, 128+48*len(m.counts))
	if end {
		v = append(v, `{"status":"END","id":`...)
	} else {
		v = append(v, `{"status":"BEGIN","id":`...)
	}
	v = appendJSONString(v, m.id)
	if !end {
		v = append(v, `,"event_count":null,"data_collections":null`...)
	} else {
		v = append(v, `,"event_count":`...)
		v = strconv.AppendInt(v, m.total, 10)
		v = append(v, `,"data_collections":[`...)
		for i, c := range m.counts {
			if i > 0 {
				v = append(v, ',')
			}
			v = append(v, `{"data_collection":`...)
			v = appendJSONString(v, []byte(c.name))
			v = append(v, `,"event_count":`...)
			v = strconv.AppendInt(v, c.n, 10)
			v = append(v, '}')
		}
		v = append(v, ']')
	}
	v = append(v, `,"ts_ms":`...)
	v = strconv.AppendInt(v, m.commit.UnixMilli(), 10)
	v = append(v, '}')
	return &kgo.Record{Topic: topic, Key: key, Value: v}
}

// txBlock is the transaction block of the next event of t in x (at lsn), producing the
// transaction's BEGIN first if this is its first event; nil outside a streamed transaction.
func (c *capturer) txBlock(ctx context.Context, t *table, lsn pglogrepl.LSN, x *txn) []byte {
	m := &c.txm
	if !m.active {
		return nil
	}
	if !m.began {
		m.began = true
		m.at(m.begin)
		c.send(ctx, m.boundary(transactionTopic(c.cfg.TopicPrefix), false), x)
	}
	c.blockBuf = m.count(c.blockBuf[:0], t.qualified(), lsn)
	return c.blockBuf
}

// endTx produces the END of the transaction being committed (its commit ends at end), if it had
// events.
func (c *capturer) endTx(ctx context.Context, end pglogrepl.LSN, x *txn) {
	m := &c.txm
	if m.active && m.began {
		m.at(end)
		c.send(ctx, m.boundary(transactionTopic(c.cfg.TopicPrefix), true), x)
	}
	m.active = false
}
