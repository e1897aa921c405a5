package capture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ensureSlot returns where to start streaming and the last commit already delivered (for
// source.sequence). An existing slot whose snapshot completed is resumed; otherwise a slot is
// created and the initial snapshot taken from its exported snapshot.
func (c *capturer) ensureSlot(ctx context.Context) (start pglogrepl.LSN, lastCommit *pglogrepl.LSN, err error) {
	var plugin, db string
	var confirmed *string
	err = c.meta.QueryRow(ctx, `SELECT plugin, database, confirmed_flush_lsn::text FROM pg_replication_slots
		WHERE slot_name = $1 AND slot_type = 'logical'`, c.cfg.Slot).Scan(&plugin, &db, &confirmed)
	exists := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, nil, fmt.Errorf("capture: read slot %s: %w", c.cfg.Slot, err)
	}
	var done bool
	if err := c.meta.QueryRow(ctx, "SELECT EXISTS (SELECT FROM capture_snapshots WHERE slot_name = $1)", c.cfg.Slot).Scan(&done); err != nil {
		return 0, nil, fmt.Errorf("capture: read capture_snapshots (run the migrations): %w", err)
	}
	if exists {
		if plugin != "pgoutput" || db != c.database {
			return 0, nil, fmt.Errorf("capture: slot %s exists with plugin %s on database %s; it needs pgoutput on %s (choose another slot name)", c.cfg.Slot, plugin, db, c.database)
		}
		// With a manifest, tables the destination lacks are snapshotted incrementally while the
		// slot streams, so even a slot whose initial snapshot died half way is resumed.
		if (done || c.cfg.Manifest != nil) && confirmed != nil {
			lsn, err := pglogrepl.ParseLSN(*confirmed)
			if err != nil {
				return 0, nil, fmt.Errorf("capture: slot %s position %q: %w", c.cfg.Slot, *confirmed, err)
			}
			c.log.Info("resuming from slot", "lsn", lsn.String())
			return lsn, &lsn, nil
		}
		c.log.Warn("slot has no completed snapshot (a capture died while taking it): dropping it to snapshot again")
		if _, err := c.meta.Exec(ctx, "SELECT pg_drop_replication_slot($1)", c.cfg.Slot); err != nil {
			return 0, nil, fmt.Errorf("capture: drop incomplete slot %s: %w", c.cfg.Slot, err)
		}
	}
	if _, err := c.meta.Exec(ctx, "DELETE FROM capture_snapshots WHERE slot_name = $1", c.cfg.Slot); err != nil {
		return 0, nil, fmt.Errorf("capture: %w", err)
	}
	// The snapshot rows' time: the server's clock before the slot exists, so no change after
	// the slot's consistent point can carry an earlier commit time than the rows it follows.
	var at time.Time
	if err := c.meta.QueryRow(ctx, "SELECT clock_timestamp()").Scan(&at); err != nil {
		return 0, nil, fmt.Errorf("capture: %w", err)
	}
	res, err := c.createSlot(ctx)
	if err != nil {
		return 0, nil, fmt.Errorf("capture: create slot %s: %w", c.cfg.Slot, err)
	}
	point, err := pglogrepl.ParseLSN(res.ConsistentPoint)
	if err != nil {
		return 0, nil, fmt.Errorf("capture: slot %s consistent point %q: %w", c.cfg.Slot, res.ConsistentPoint, err)
	}
	c.log.Info("slot created; taking the initial snapshot", "lsn", point.String(), "tables", c.cfg.Tables)
	if err := c.snapshot(ctx, res.SnapshotName, point, at); err != nil {
		return 0, nil, err
	}
	if _, err := c.meta.Exec(ctx, "INSERT INTO capture_snapshots (slot_name, consistent_point) VALUES ($1, $2::text::pg_lsn)", c.cfg.Slot, point.String()); err != nil {
		return 0, nil, fmt.Errorf("capture: record snapshot of %s: %w", c.cfg.Slot, err)
	}
	// Delivered (with the landed gate: landed), so the destination holds every table, and an
	// incremental snapshot left from an earlier slot has nothing left to add.
	c.manifest.Incremental = nil
	c.manifest.Delivered = point.String()
	if err := c.recordSnapshots(ctx, "initial", point, c.cfg.Tables...); err != nil {
		return 0, nil, err
	}
	return point, nil, nil
}

// createSlot creates the slot with an exported snapshot, saying while it waits what it waits
// for. A logical slot is consistent only once every transaction that held a transaction id when
// its creation began has ended, in any database of the cluster (Postgres's snapshot builder waits
// on each in turn): one long transaction anywhere on the cluster (an idle session, another
// capture's initial snapshot, a bulk load) holds the capture at its start for as long as it stays
// open, with nothing in the capture's own database to show for it. watchSlotWait names it.
func (c *capturer) createSlot(ctx context.Context) (pglogrepl.CreateReplicationSlotResult, error) {
	stop, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		c.watchSlotWait(ctx, stop)
	}()
	res, err := pglogrepl.CreateReplicationSlot(ctx, c.repl, c.cfg.Slot, "pgoutput", pglogrepl.CreateReplicationSlotOptions{
		Mode: pglogrepl.LogicalReplication, SnapshotAction: "EXPORT_SNAPSHOT"})
	close(stop)
	<-watched // the watcher's queries use c.meta, idle until the slot exists
	c.cfg.Metrics.WaitingFor.Store(nil)
	return res, err
}

// slotWaitPoll is how often watchSlotWait looks at what the slot's creation waits for.
const slotWaitPoll = time.Second

// awaitedXids are the transactions the replication connection's backend waits for, as text.
const awaitedXids = `SELECT coalesce(array_agg(transactionid::text), '{}') FROM pg_locks
	WHERE pid = $1 AND locktype = 'transactionid' AND NOT granted`

// watchSlotWait keeps Metrics.WaitingFor current while the slot is being created (until stop),
// and logs, after heldLogAfter and then every heldLogEvery, which transactions the creation waits
// for and which backends hold them (database, application, query). Best effort: a failed
// look-up is logged once, the creation goes on.
func (c *capturer) watchSlotWait(ctx context.Context, stop <-chan struct{}) {
	began := time.Now()
	var logged time.Time
	pid := c.repl.PID()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-time.After(slotWaitPoll):
		}
		var xids []string
		if err := c.meta.QueryRow(ctx, awaitedXids, pid).Scan(&xids); err != nil {
			if ctx.Err() == nil {
				c.log.Warn("creating the replication slot: cannot see what it waits for", "err", err)
			}
			return
		}
		if len(xids) == 0 {
			c.cfg.Metrics.WaitingFor.Store(nil)
			continue
		}
		holders, err := c.heldBy(ctx, xids)
		if err != nil {
			holders = "not found: " + err.Error()
		}
		what := "transaction " + strings.Join(xids, ", ") + " held by " + holders
		c.cfg.Metrics.WaitingFor.Store(&what)
		if now := time.Now(); now.Sub(began) >= heldLogAfter && now.Sub(logged) >= heldLogEvery {
			logged = now
			c.log.Warn("creating the replication slot waits for transactions open on the cluster to end, in any database: a logical slot is consistent only once every transaction running when it began has ended (commit, roll back, or pg_terminate_backend(pid))",
				"waiting", now.Sub(began).Round(time.Second).String(), "xids", strings.Join(xids, ","), "held_by", holders)
		}
	}
}

// heldRead is a snapshot row held back until the next one shows whether it was the last.
type heldRead struct {
	t                 *table
	img               image
	first             bool // first row of the first table
	firstInT, lastInT bool
	ok                bool
}

// snapshotMarker is Debezium's source.snapshot for a snapshot row that is not the very last.
func (h *heldRead) snapshotMarker() string {
	switch {
	case h.first:
		return "first"
	case h.lastInT:
		return "last_in_data_collection"
	case h.firstInT:
		return "first_in_data_collection"
	}
	return "true"
}

// snapshot emits every row of the tables as Debezium's initial snapshot does: op "r", source.lsn
// the slot's consistent point, source.txId the snapshot transaction, source.snapshot marking the
// first row, each table's first and last rows, and the very last record ("last"). Debezium
// stamps the rows with the time each was read; they carry at (taken before the slot was made)
// instead, so a row's version never starts after a change that follows it in the log.
func (c *capturer) snapshot(ctx context.Context, name string, point pglogrepl.LSN, at time.Time) error {
	tx, err := c.meta.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return fmt.Errorf("capture: snapshot: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+name+"'"); err != nil {
		return fmt.Errorf("capture: import snapshot %s: %w", name, err)
	}
	var txID int64
	if err := tx.QueryRow(ctx, "SELECT txid_current()").Scan(&txID); err != nil {
		return fmt.Errorf("capture: snapshot: %w", err)
	}
	x := c.track.begin(time.Now())
	src := source{lsn: point, txID: txID, commit: at}
	var held heldRead
	var next image
	var cells []cell
	rows := 0
	flush := func(last bool) {
		src.snapshot = held.snapshotMarker()
		if last {
			src.snapshot = "last"
		}
		c.emit(ctx, held.t, 'r', nil, &held.img, &src, x)
		held.ok = false
	}
	for ti, qualified := range c.cfg.Tables {
		t, err := c.tableFor(ctx, qualified, 0)
		if err != nil {
			return err
		}
		rr := tx.Conn().PgConn().ExecParams(ctx, "SELECT * FROM "+qualified, nil, nil, nil, nil)
		if len(rr.FieldDescriptions()) == 0 { // the query failed (or was cancelled): say why
			_, err := rr.Close()
			return fmt.Errorf("capture: snapshot %s: %w", qualified, err)
		}
		for _, fd := range rr.FieldDescriptions() {
			t.addColumn(fd.Name, fd.DataTypeOID, fd.TypeModifier)
		}
		if err := t.resolveKey(); err != nil {
			rr.Close()
			return err
		}
		firstInT := true
		for rr.NextRow() {
			cells = queryCells(cells, rr.Values())
			if err := t.encode(&next, cells, nil); err != nil {
				rr.Close()
				return fmt.Errorf("capture: snapshot: %w", err)
			}
			if held.ok {
				flush(false)
			}
			held.img, next = next, held.img
			held.t, held.first, held.firstInT, held.lastInT, held.ok = t, ti == 0 && firstInT, firstInT, false, true
			firstInT = false
			rows++
		}
		if _, err := rr.Close(); err != nil {
			return fmt.Errorf("capture: snapshot %s: %w", qualified, err)
		}
		if held.ok && held.t == t {
			held.lastInT = true
		}
	}
	if held.ok {
		flush(true)
	}
	c.track.commit(x, point)
	if err := c.waitDelivered(ctx); err != nil {
		return fmt.Errorf("capture: snapshot: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("capture: snapshot: %w", err)
	}
	c.log.Info("initial snapshot delivered", "rows", rows)
	return nil
}

// waitDelivered waits until Kafka has acknowledged every event produced so far.
func (c *capturer) waitDelivered(ctx context.Context) error {
	for {
		c.track.mu.Lock()
		n, err := len(c.track.queue), c.track.err
		c.track.mu.Unlock()
		if err != nil {
			return fmt.Errorf("deliver to kafka: %w", err)
		}
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// tableFor describes a captured table: its topic and primary key (columns come from the
// snapshot query or the Relation message). relID 0 looks it up by name.
func (c *capturer) tableFor(ctx context.Context, qualified string, relID uint32) (*table, error) {
	var schema, name string
	var key []string
	q := `SELECT n.nspname, cl.relname,
	        coalesce((SELECT array_agg(a.attname ORDER BY k.ord) FROM pg_index i
	           CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
	           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
	          WHERE i.indrelid = cl.oid AND i.indisprimary), '{}')
	      FROM pg_class cl JOIN pg_namespace n ON n.oid = cl.relnamespace WHERE cl.oid = `
	var err error
	if relID != 0 {
		err = c.meta.QueryRow(ctx, q+"$1", relID).Scan(&schema, &name, &key)
	} else {
		err = c.meta.QueryRow(ctx, q+"to_regclass($1)", qualified).Scan(&schema, &name, &key)
	}
	if err != nil {
		return nil, fmt.Errorf("capture: describe table %s: %w", qualified, err)
	}
	t := newTable(schema, name, c.cfg.TopicPrefix)
	t.keyNames = key
	return t, nil
}

// emit produces one change event, and a tombstone after a delete.
func (c *capturer) emit(ctx context.Context, t *table, op byte, before, after *image, src *source, x *txn) {
	keyImg := after
	if keyImg == nil {
		keyImg = before
	}
	c.keyBuf = c.keyBuf[:0]
	if len(t.key) > 0 {
		c.keyBuf = t.appendKey(c.keyBuf, keyImg)
	}
	c.tail = c.env.appendTail(c.tail[:0], t, op, src, c.txBlock(ctx, t, src.lsn, x), time.Now())
	emitRecord(ctx, c, t, c.keyBuf, before, after, c.tail, op == 'd', x)
}

// emitRecord produces one change event with its key and the end of its envelope (after the
// images) already encoded, in one buffer: value and key share it. An incremental snapshot keeps
// each row's key and writes one envelope end for its chunk. Records and their buffers come back
// once Kafka has acknowledged them (recycle): a snapshot's million records of about 1 KB were a
// million allocations for the garbage collector.
func emitRecord[K string | []byte](ctx context.Context, c *capturer, t *table, key K, before, after *image, tail []byte, tombstone bool, x *txn) {
	size := len(key) + len(`{"before":null,"after":null`) + len(tail)
	if before != nil {
		size += len(before.json)
	}
	if after != nil {
		size += len(after.json)
	}
	r := records.Get().(*kgo.Record)
	buf := r.Value[:0]
	if cap(buf) < size {
		buf = make([]byte, 0, size)
	}
	buf = appendImages(buf, before, after)
	buf = append(buf, tail...)
	n := len(buf)
	buf = append(buf, key...)
	*r = kgo.Record{Topic: t.topic, Value: buf[:n]} // Value keeps the buffer's capacity for its reuse
	if len(key) > 0 {
		r.Key = buf[n:]
	}
	c.send(ctx, r, x)
	c.cfg.Metrics.Events.Add(1)
	if tombstone {
		// Its own copy of the key: the event's buffer may be reused before the tombstone is sent.
		c.send(ctx, &kgo.Record{Topic: t.topic, Key: bytes.Clone(r.Key)}, x)
	}
}

// records holds acknowledged records for emitRecord to reuse, with their buffers.
var records = sync.Pool{New: func() any { return new(kgo.Record) }}

// recycle takes back a record once Kafka has acknowledged it: franz-go no longer touches a record
// after its promise, and neither does anything here.
func recycle(r *kgo.Record) {
	if r.Value != nil {
		records.Put(r)
	}
}

func (c *capturer) send(ctx context.Context, r *kgo.Record, x *txn) {
	c.track.produced(x)
	c.producer.Produce(ctx, r, x.promise)
}
