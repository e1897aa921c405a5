package capture

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fin-orchestrator/fin-orchestrator/shared/retry"
)

// streamState is what the stream knows between messages.
type streamState struct {
	cur           *txn // the open transaction, nil between Commit and Begin
	src           source
	row           rowMessage
	before, after image
	skipped       map[uint32]bool // relations outside the captured tables
	signalRel     uint32          // the signal table's relation id (0 until its Relation message)
	signalCols    [3]int          // positions of its id, type and data columns
	lastHeartbeat time.Time
}

// stream reads the slot from start and publishes every change until ctx ends or a failure.
func (c *capturer) stream(ctx context.Context, start pglogrepl.LSN, lastCommit *pglogrepl.LSN) (err error) {
	// messages: the capture's own heartbeat messages (see heartbeat) must reach it.
	args := []string{"proto_version '1'", "publication_names '" + c.cfg.Publication + "'", "messages 'true'"}
	if err := c.startReplication(ctx, start, args); err != nil {
		return err
	}
	c.track.mu.Lock()
	if c.track.flushed < start {
		c.track.flushed = start
	}
	c.track.mu.Unlock()
	st := &streamState{skipped: map[uint32]bool{}, lastHeartbeat: time.Now()}
	st.src.snapshot = "false"
	if lastCommit != nil {
		st.src.lastCommit, st.src.hasCommit = *lastCommit, true
	}
	c.log.Info("streaming", "from", start.String(), "publication", c.cfg.Publication)
	if err := c.nextChunk(ctx); err != nil {
		return err
	}

	// Statuses go out five times a second (wal_sender_timeout is 60 s by default), so the slot
	// follows deliveries closely; heartbeats at the configured interval.
	const statusEvery = 200 * time.Millisecond
	next := time.Now().Add(statusEvery)
	// One deadline context per status period, not per message: the stream carries hundreds of
	// thousands of messages a second. A chunk read that ends cancels it (readWake).
	recvCtx, cancel := c.wake.arm(ctx, next)
	defer func() { cancel() }()
	defer func() { err = errors.Join(err, c.finalStatus(ctx)) }()
	for {
		if !time.Now().Before(next) {
			if err := c.statusTick(ctx, st); err != nil {
				return err
			}
			next = time.Now().Add(statusEvery)
			cancel()
			recvCtx, cancel = c.wake.arm(ctx, next)
		}
		if streamHoldHook != nil && st.cur == nil && streamHoldHook() {
			time.Sleep(time.Millisecond) // a test holds the slot's messages back; the reads go on
			if err := c.movePipeline(ctx, st); err != nil {
				return err
			}
			continue
		}
		raw, err := c.repl.ReceiveMessage(recvCtx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(recvCtx.Err(), context.Canceled) {
				// A chunk read ended: the next one starts now (between two transactions; within
				// one, at its commit), not at the next message or status. (pgconn reports a wait
				// cancelled before it began as a timeout too.)
				cancel()
				c.wake.take()
				recvCtx, cancel = c.wake.arm(ctx, next)
				if err := c.movePipeline(ctx, st); err != nil {
					return err
				}
				continue
			}
			if pgconn.Timeout(err) {
				next = time.Time{}
				continue
			}
			return fmt.Errorf("capture: receive from slot %s: %w", c.cfg.Slot, err)
		}
		reply, err := c.message(ctx, st, raw)
		if err != nil {
			return err
		}
		if reply {
			next = time.Time{}
		}
	}
}

// statusTick is the stream's periodic work: a failed delivery stops the capture within a status
// period (nothing after it is confirmed, so the restart re-delivers from there), then the status.
func (c *capturer) statusTick(ctx context.Context, st *streamState) error {
	if _, _, err := c.track.state(); err != nil {
		return fmt.Errorf("capture: deliver to kafka: %w", err)
	}
	return c.status(ctx, st)
}

// movePipeline moves a running snapshot's pipeline on outside a message (nextChunk), if the
// stream is between two transactions; within one, its commit will.
func (c *capturer) movePipeline(ctx context.Context, st *streamState) error {
	if st.cur != nil {
		return nil
	}
	return c.nextChunk(ctx)
}

// readWake wakes the stream from its wait for the slot's next message when a chunk read or a
// watermark write ends, so the next chunk is read at once: with streaming idle, nothing else
// would come before the next status (up to 200 ms). The wait's deadline context is cancelled; a
// timeout of the replication connection's read is not fatal to it (the status period's deadline
// ends a wait the same way).
type readWake struct {
	mu     sync.Mutex
	cancel context.CancelFunc // the current wait's
	woken  bool               // wake was called since the last take: the next wait (arm) ends at once
}

func (w *readWake) wake() {
	w.mu.Lock()
	w.woken = true
	if w.cancel != nil {
		w.cancel()
	}
	w.mu.Unlock()
}

// arm is the context of the waits until deadline, already cancelled when a wake is due: a read
// that ends between take and arm is not missed.
func (w *readWake) arm(ctx context.Context, deadline time.Time) (context.Context, context.CancelFunc) {
	rctx, cancel := context.WithDeadline(ctx, deadline)
	w.mu.Lock()
	w.cancel = cancel
	if w.woken {
		cancel()
	}
	w.mu.Unlock()
	return rctx, cancel
}

func (w *readWake) take() {
	w.mu.Lock()
	w.woken = false
	w.mu.Unlock()
}

// streamHoldHook, set by tests alone, runs on the stream's goroutine between two transactions
// before it reads the next message: while it returns true the stream reads nothing from the slot
// and only moves the snapshot's pipeline on (nextChunk), as a stream far behind would.
var streamHoldHook func() bool

// message handles one message of the replication stream; reply says the server asked for a
// status at once.
func (c *capturer) message(ctx context.Context, st *streamState, raw pgproto3.BackendMessage) (reply bool, err error) {
	switch m := raw.(type) {
	case *pgproto3.ErrorResponse:
		return false, fmt.Errorf("capture: slot %s: %w", c.cfg.Slot, pgconn.ErrorResponseToPgError(m))
	case *pgproto3.CopyData:
		if len(m.Data) == 0 {
			return false, nil
		}
		switch m.Data[0] {
		case pglogrepl.PrimaryKeepaliveMessageByteID:
			ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(m.Data[1:])
			if err != nil {
				return false, fmt.Errorf("capture: keepalive: %w", err)
			}
			c.cfg.Metrics.ServerLSN.Store(uint64(ka.ServerWALEnd))
			return ka.ReplyRequested, nil
		case pglogrepl.XLogDataByteID:
			xld, err := pglogrepl.ParseXLogData(m.Data[1:])
			if err != nil {
				return false, fmt.Errorf("capture: xlogdata: %w", err)
			}
			return false, c.handle(ctx, st, xld)
		}
	}
	return false, nil
}

// handle turns one pgoutput message into events.
func (c *capturer) handle(ctx context.Context, st *streamState, xld pglogrepl.XLogData) error {
	c.cfg.Metrics.ReceivedLSN.Store(uint64(xld.WALStart))
	if len(xld.WALData) > 0 {
		switch xld.WALData[0] {
		case 'I', 'U', 'D':
			if err := decodeRow(&st.row, xld.WALData); err != nil {
				return fmt.Errorf("capture: at %s: %w", xld.WALStart, err)
			}
			return c.change(ctx, st, xld.WALStart)
		}
	}
	msg, err := pglogrepl.Parse(xld.WALData)
	if err != nil {
		return fmt.Errorf("capture: decode pgoutput at %s: %w", xld.WALStart, err)
	}
	switch m := msg.(type) {
	case *pglogrepl.BeginMessage:
		st.cur = c.track.begin(m.CommitTime)
		st.src.commit, st.src.txID = m.CommitTime, int64(m.Xid)
		c.txm.beginTx(m.Xid, xld.WALStart, m.CommitTime)
	case *pglogrepl.CommitMessage:
		if st.cur == nil {
			return fmt.Errorf("capture: commit at %s without a begin", xld.WALStart)
		}
		if len(c.held) > 0 {
			c.heldEnded(uint32(st.src.txID))
		}
		c.endTx(ctx, m.TransactionEndLSN, st.cur)
		c.track.commit(st.cur, m.TransactionEndLSN)
		st.cur = nil
		// Debezium's source.sequence starts with the end of the last commit it processed.
		st.src.lastCommit, st.src.hasCommit = xld.WALStart, true
		// Between transactions: read the next chunk of a running incremental snapshot.
		if c.inc != nil {
			return c.nextChunk(ctx)
		}
	case *pglogrepl.RelationMessage:
		return c.relation(ctx, st, m)
	case *pglogrepl.LogicalDecodingMessage:
		// Heartbeat messages (ours or anyone's) carry no row: their transaction only moves the
		// confirmed position. A held-transaction marker says which have passed (window.go).
		if m.Prefix == heldMarker {
			c.heldMarked(m.Content)
		}
	case *pglogrepl.TruncateMessage:
		// Debezium's skipped.operations=t: truncates are not captured. Say so loudly.
		c.log.Warn("TRUNCATE on a captured table is not captured (skipped.operations=t)", "lsn", xld.WALStart.String())
	}
	return nil
}

// change emits the events of one Insert, Update or Delete.
func (c *capturer) change(ctx context.Context, st *streamState, lsn pglogrepl.LSN) error {
	m := &st.row
	if m.relID == st.signalRel && st.signalRel != 0 && st.cur != nil {
		st.src.lsn = lsn
		return c.signal(ctx, st)
	}
	t := c.tables[m.relID]
	if t == nil || st.cur == nil {
		return c.unknown(st, m.relID)
	}
	st.src.lsn = lsn
	// The change may have to drop its key from a chunk being read (inWindow), which mostly
	// keeps it for when the read is taken (mustAwait says when it cannot).
	if c.mustAwait() {
		if err := c.awaitReads(ctx); err != nil {
			return err
		}
	}
	c.noteChange(t, uint32(st.src.txID), lsn)
	var before *image
	if m.hasOld {
		if err := t.encode(&st.before, m.old, nil); err != nil {
			return fmt.Errorf("capture: %c at %s: before-image: %w", m.kind, lsn, err)
		}
		before = &st.before
	}
	switch m.kind {
	case 'I':
		if err := t.encode(&st.after, m.new, nil); err != nil {
			return fmt.Errorf("capture: insert at %s: %w", lsn, err)
		}
		c.inWindow(t, uint32(st.src.txID), &st.after)
		c.emit(ctx, t, 'c', nil, &st.after, &st.src, st.cur)
	case 'U':
		if err := t.encode(&st.after, m.new, before); err != nil {
			return fmt.Errorf("capture: update at %s: %w", lsn, err)
		}
		c.inWindow(t, uint32(st.src.txID), before, &st.after)
		if before != nil && len(t.key) > 0 && !sameKey(t, before, &st.after) {
			// Like Debezium, a changed primary key is a delete of the old key (and its
			// tombstone) followed by a create of the new one.
			c.emit(ctx, t, 'd', before, nil, &st.src, st.cur)
			c.emit(ctx, t, 'c', nil, &st.after, &st.src, st.cur)
			return nil
		}
		c.emit(ctx, t, 'u', before, &st.after, &st.src, st.cur)
	case 'D':
		if before == nil {
			return fmt.Errorf("capture: delete at %s on %s has no before-image (REPLICA IDENTITY NOTHING?)", lsn, t.qualified())
		}
		c.inWindow(t, uint32(st.src.txID), before)
		c.emit(ctx, t, 'd', before, nil, &st.src, st.cur)
	}
	return nil
}

// unknown tolerates changes of relations outside the captured tables; anything else is a bug.
func (c *capturer) unknown(st *streamState, relID uint32) error {
	if st.skipped[relID] {
		return nil
	}
	if st.cur == nil {
		return fmt.Errorf("capture: change of relation %d outside a transaction", relID)
	}
	return fmt.Errorf("capture: change of relation %d before its Relation message", relID)
}

// relation (re)describes a table: pgoutput sends it before the first change of a relation and
// after each schema change, so added columns flow without a restart.
func (c *capturer) relation(ctx context.Context, st *streamState, m *pglogrepl.RelationMessage) error {
	qualified := m.Namespace + "." + m.RelationName
	if qualified == c.cfg.SignalTable {
		st.signalRel, st.signalCols = m.RelationID, [3]int{-1, -1, -1}
		for i, col := range m.Columns {
			if j := slices.Index([]string{"id", "type", "data"}, col.Name); j >= 0 {
				st.signalCols[j] = i
			}
		}
		delete(st.skipped, m.RelationID)
		return nil
	}
	captured := false
	for _, q := range c.cfg.Tables {
		captured = captured || q == qualified
	}
	if !captured {
		st.skipped[m.RelationID] = true
		delete(c.tables, m.RelationID)
		return nil
	}
	t, err := c.tableFor(ctx, qualified, m.RelationID)
	if err != nil {
		return err
	}
	for _, col := range m.Columns {
		t.addColumn(col.Name, col.DataType, col.TypeModifier)
	}
	if err := t.resolveKey(); err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	c.tables[m.RelationID] = t
	delete(st.skipped, m.RelationID)
	return nil
}

func sameKey(t *table, a, b *image) bool {
	for _, k := range t.key {
		x, y := a.spans[k], b.spans[k]
		if string(a.json[x[0]:x[1]]) != string(b.json[y[0]:y[1]]) {
			return false
		}
	}
	return true
}

// status confirms the delivered position to Postgres, refreshes the lag metrics and sends a
// heartbeat when due.
func (c *capturer) status(ctx context.Context, st *streamState) error {
	flushed, oldest, _ := c.track.state()
	flushed, err := c.confirmable(ctx, flushed, false)
	if err != nil {
		return err
	}
	err = pglogrepl.SendStandbyStatusUpdate(ctx, c.repl, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: flushed, WALFlushPosition: flushed, WALApplyPosition: flushed, ClientTime: time.Now()})
	if err != nil {
		return fmt.Errorf("capture: confirm position %s: %w", flushed, err)
	}
	m := c.cfg.Metrics
	m.ConfirmedLSN.Store(uint64(flushed))
	if err := c.applyProgress(ctx); err != nil {
		return err
	}
	if len(c.held) > 0 {
		if err := c.releaseHeld(ctx); err != nil {
			return err
		}
		if err := c.probeHeld(ctx); err != nil {
			return err
		}
	}
	if c.inc != nil && st.cur == nil {
		if err := c.nextChunk(ctx); err != nil {
			return err
		}
	}
	if oldest.IsZero() {
		m.LagMicros.Store(0)
	} else {
		m.LagMicros.Store(time.Since(oldest).Microseconds())
	}
	if time.Since(st.lastHeartbeat) >= c.cfg.HeartbeatInterval {
		st.lastHeartbeat = time.Now()
		c.heartbeat(ctx)
		c.log.Debug("capture position", "confirmed", flushed.String(), "lag_bytes", m.LagBytes(), "lag_seconds", m.Lag().Seconds(), "events", m.Events.Load())
	}
	return nil
}

// heartbeat writes Debezium's heartbeat record; it tells consumers the capture is alive while the
// captured tables are idle. Its delivery is not tracked: a lost heartbeat loses nothing.
//
// When nothing is in flight but the server's WAL has moved past the confirmed position (other
// databases, unpublished tables), it also writes a transactional logical message into this
// database's WAL. Its transaction reaches the capture like any other (Begin, Message, Commit)
// and is confirmed like any other, so the slot stops holding WAL. Confirming a keepalive's WAL
// end instead would not be safe: pgoutput sends a transaction's Begin only with its first
// published change, so a keepalive can report a position past a transaction not yet sent.
func (c *capturer) heartbeat(ctx context.Context) {
	flushed, oldest, _ := c.track.state()
	if oldest.IsZero() && pglogrepl.LSN(c.cfg.Metrics.ServerLSN.Load()) > flushed {
		if _, err := c.meta.Exec(ctx, "SELECT pg_logical_emit_message(true, 'fin-capture-heartbeat', '')"); err != nil && ctx.Err() == nil {
			c.log.Warn("heartbeat message not written: the slot holds WAL until a captured table changes", "err", err)
		}
	}
	key := appendJSONString([]byte(`{"serverName":`), []byte(c.cfg.TopicPrefix))
	key = append(key, '}')
	val := fmt.Appendf(nil, `{"ts_ms":%d}`, time.Now().UnixMilli())
	c.producer.Produce(ctx, &kgo.Record{Topic: "__debezium-heartbeat." + c.cfg.TopicPrefix, Key: key, Value: val},
		func(_ *kgo.Record, err error) {
			if err != nil && ctx.Err() == nil {
				c.log.Warn("heartbeat not delivered", "err", err)
			}
		})
}

// finalStatusFor bounds the capture's way out (finalStatus): the wait for Kafka's
// acknowledgements, then for the manifest writes, the one in flight included. A store that does
// not answer (a hung network) must not hang the stop, whether ctx was cancelled or the stream
// failed (ctx alive: nothing else cancels the write in flight).
var finalStatusFor = 5 * time.Second

// finalStatus confirms, on the way out, what Kafka acknowledged, so a restart re-delivers less.
// The error says why the slot is not confirmed so far (the manifest could not record it).
func (c *capturer) finalStatus(ctx context.Context) error {
	wait, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalStatusFor)
	defer cancel()
	_ = c.waitDelivered(wait)
	flushed, _, _ := c.track.state()
	confirm, err := c.confirmable(wait, flushed, true)
	if err != nil {
		c.log.Warn("delivered position not recorded in the manifest: the slot is not confirmed to it", "err", err,
			"delivered", flushed.String(), "recorded", c.recorded.String())
		return fmt.Errorf("%w (on the way out; the slot stays confirmed to %s at most, which the manifest holds)", err, c.recorded)
	}
	if err := pglogrepl.SendStandbyStatusUpdate(wait, c.repl, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: confirm, WALFlushPosition: confirm, WALApplyPosition: confirm, ClientTime: time.Now()}); err == nil {
		c.cfg.Metrics.ConfirmedLSN.Store(uint64(confirm))
	}
	return nil
}

// slotBusyFor bounds how long a start waits for the slot's previous consumer to let it go: a
// walsender whose client has gone (a capture stopped or killed a moment ago) holds the slot
// until it notices, at most wal_sender_timeout (60 s by default) later.
var slotBusyFor = 90 * time.Second

// startReplication starts the stream at start, waiting while the slot is still active for a
// previous consumer (SQLSTATE 55006, object_in_use), with backoff, for at most slotBusyFor. The
// connection stays usable after the refusal (pglogrepl reads past its ReadyForQuery).
func (c *capturer) startReplication(ctx context.Context, start pglogrepl.LSN, args []string) error {
	began := time.Now()
	p := retry.Policy{Backoff: retry.Backoff{First: 50 * time.Millisecond, Max: 2 * time.Second},
		Again: func(_ int, wait time.Duration, err error) bool {
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "55006" || time.Since(began) > slotBusyFor {
				return false
			}
			c.log.Info("slot still held by its previous consumer; trying again", "err", pgErr.Message, "after", wait)
			return true
		}}
	err := retry.Do(ctx, p, func(ctx context.Context) error {
		return pglogrepl.StartReplication(ctx, c.repl, c.cfg.Slot, start, pglogrepl.StartReplicationOptions{PluginArgs: args})
	})
	if err != nil {
		return fmt.Errorf("capture: start replication on slot %s: %w", c.cfg.Slot, err)
	}
	return nil
}
