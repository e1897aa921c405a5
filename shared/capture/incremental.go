package capture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
)

// Online incremental snapshots, with the DBLog watermark algorithm as Debezium implements it.
//
// Between two streamed transactions the stream goroutine reads a table in chunks of ChunkSize
// rows by primary key (keyset pagination, up to the largest key the table had when its snapshot
// began). Each chunk is read between two watermark rows of the signal table: a low one
// (<id>-open) before the read and a high one (<id>-close) after it, both back through the slot in
// commit order. Every streamed change of the table between them (the window) drops its key from
// the chunk: the streamed event is newer than the chunk's row, or as new. At the high watermark
// the rows left are emitted (op "r", source.snapshot "incremental") inside its transaction, so the
// slot is confirmed past it only once they are delivered. No lock is taken, no other slot used.
//
// Chunks are pipelined: the high watermark of one chunk and the low watermark of the next are
// written in one transaction, and the next chunk is read as soon as the last read has ended (the
// read wakes the stream, readWake), whether or not the stream has come back to the earlier
// windows: reads wait only for the memory bound, maxPending chunks held. Each chunk costs one
// commit and one read, overlapped with the stream's round trip and the earlier chunks' emission:
// the stream does not wait for a read at the changes it meets meanwhile (inWindow's later drops).
// A table's later chunks are read while their watermark transaction commits (readsEarly).

// Signal types of Debezium's signal table.
const (
	signalExecuteSnapshot = "execute-snapshot"
	signalWindowOpen      = "snapshot-window-open"
	signalWindowClose     = "snapshot-window-close"
)

// incremental is the running incremental snapshot.
type incremental struct {
	id string
	// gap is, for a snapshot taken because the destination missed changes, what it missed (nil
	// for a requested snapshot); it goes into the windows (bronze.Gap).
	gap *bronze.Gap
	// The read cursor: the tables left to read (the first is being read), the key of the last
	// row read and the largest key of the first table when its snapshot began.
	tables          []string
	lastKey, maxKey []string

	pending []*chunk   // read, waiting for their high watermark in the stream (at most maxPending)
	windows []*window  // the windows of the tables being read, not yet closed (window.go)
	spare   []*chunk   // emitted chunks whose buffers are reused
	stale   []string   // watermark rows to delete with the next insert
	marking *markWrite // the watermark write in flight (writeWatermarks)
	// described is the table being read as the catalog described it (name, topic, key).
	described *table
	// deferrals counts the reads in a row that stopped at a row an open transaction holds
	// (chunk.deferred); the next read waits until retryAt.
	deferrals int
	retryAt   time.Time
	// heldSince is when the reads began to stop at the row they stop at now, heldLogged when
	// that was last logged (logHeld).
	heldSince, heldLogged time.Time
	// unprobedLogged: a refused probeLocked was logged.
	unprobedLogged bool
}

// chunk is one chunk of rows between its watermarks.
type chunk struct {
	id      string
	t       *table // nil for a table found empty
	rows    []image
	keyData []byte   // the rows' record keys, one after another (key)
	keyEnd  []int    // where each row's key ends in keyData
	spans   [][2]int // the column spans of the row being added (addRow)
	dropped []bool
	// index finds a row by its key once a chunk has had more lookups than linearLookups (find).
	index   map[string]int
	indexed bool
	lookups int
	n       int
	snap    snapshot      // the read's snapshot
	readLSN pglogrepl.LSN // the WAL insert position before the read's first row (readRows)
	// deferred: the read stopped before a row that a transaction open at the read had changed
	// or locked; the rows before it are the chunk, and the next read starts at that row.
	deferred bool
	locked   []lockedRow // rows for probeLocked
	// heldXmax is the xmax of the row a deferred read stopped at; heldMulti: it may be a
	// MultiXactId (probeLocked found the row held).
	heldXmax  string
	heldMulti bool
	// closeSnap is the snapshot of the statement that wrote the high watermark (closeWindow);
	// closeOthers, for a table's last chunk, the transactions in it of other databases.
	closeSnap    *snapshot
	closeOthers  map[uint32]bool
	unprobed     bool      // probeLocked was refused (the role lacks UPDATE on the table)
	open         bool      // its low watermark has come back
	openedAt     time.Time // the low watermark's commit time
	closeWritten bool      // its high watermark is written
	readAt       time.Time
	pos          *IncrementalPosition // the snapshot's position once this chunk is delivered
	done         string               // the table this chunk completes, if any
	win          *window              // its table's snapshot window
	first        bool                 // the table's first chunk: its low watermark opens the window

	// The read, in its own goroutine until the stream takes it (awaitReads).
	name         string   // the table read
	from, maxKey []string // the cursor the read starts from: after from, up to maxKey
	last         []string // the key of the last row read
	lastRaw      [][]byte // the same while the read runs
	keyBuf       []byte
	formats      []int16 // the read's result formats
	ready        chan error
	reading      bool
	// later holds the keys of the table's streamed changes met while the read ran, for the
	// stream does not wait for it (inWindow): they are applied once it is taken (awaitReads).
	later []laterDrop
}

// laterDrop is a streamed change met while its chunk was being read: the key it changed, its
// transaction, and whether the chunk's window was open then.
type laterDrop struct {
	key  string
	xid  uint32
	open bool
}

// maxLater bounds a chunk's later drops: past it, the stream waits for the read (awaitReads), so
// a burst of changes during one read holds no more than this many keys.
const maxLater = 16384

// progress is a position reached by an emitted chunk, durable once its transaction is delivered.
type progress struct {
	x         *txn // nil: durable as soon as everything before it is
	pos       *IncrementalPosition
	completed string // a table whose last chunk this was
	lsn       pglogrepl.LSN
	window    *bronze.SnapshotWindow // the completed table's window, written beside the data once delivered
	held      *heldWindow            // instead, its window held for transactions open across it
}

func (inc *incremental) position() *IncrementalPosition {
	if len(inc.tables) == 0 {
		return nil
	}
	p := &IncrementalPosition{ID: inc.id, Tables: slices.Clone(inc.tables), LastKey: slices.Clone(inc.lastKey), MaxKey: slices.Clone(inc.maxKey),
		Gap: inc.gap}
	if w := inc.window(inc.tables[0]); w != nil && inc.lastKey != nil {
		p.Window = w.position()
	}
	return p
}

// window is the open window of table (the latest, should a second snapshot of it begin before
// the first one's last chunk is emitted), nil when none.
func (inc *incremental) window(table string) *window {
	for i := len(inc.windows) - 1; i >= 0; i-- {
		if inc.windows[i].table == table {
			return inc.windows[i]
		}
	}
	return nil
}

// requestSnapshot queues tables for an incremental snapshot (joining a running one) and records
// the request in the manifest before the signal that asked for it is confirmed. gap is what the
// destination missed (nil when it missed nothing).
func (c *capturer) requestSnapshot(ctx context.Context, id, reason string, tables []string, gap *bronze.Gap) error {
	if c.inc == nil {
		c.inc = &incremental{id: id}
	}
	if c.inc.gap == nil {
		c.inc.gap = gap
	}
	var added []string
	for _, t := range tables {
		if !slices.Contains(c.inc.tables, t) {
			c.inc.tables = append(c.inc.tables, t)
			added = append(added, t)
		}
	}
	c.cfg.Metrics.Snapshotting.Store(true)
	c.log.Info("incremental snapshot requested", "id", id, "reason", reason, "tables", added, "queued", c.inc.tables)
	if c.manifest.Incremental == nil {
		c.manifest.Incremental = &IncrementalPosition{ID: c.inc.id}
	}
	c.manifest.Incremental.Gap = c.inc.gap
	for _, t := range added {
		if !slices.Contains(c.manifest.Incremental.Tables, t) {
			c.manifest.Incremental.Tables = append(c.manifest.Incremental.Tables, t)
		}
	}
	return c.saveManifest(ctx)
}

// resumeSnapshot continues the incremental snapshot the manifest records.
func (c *capturer) resumeSnapshot(p *IncrementalPosition) {
	c.inc = &incremental{id: p.ID, tables: slices.Clone(p.Tables), lastKey: slices.Clone(p.LastKey), maxKey: slices.Clone(p.MaxKey),
		gap: p.Gap}
	if p.Window != nil && len(p.Tables) > 0 && p.LastKey != nil {
		w := windowFrom(p.Window)
		w.table = p.Tables[0]
		c.inc.windows = append(c.inc.windows, w)
	}
	c.cfg.Metrics.Snapshotting.Store(true)
	c.log.Info("incremental snapshot resumed from the destination manifest", "id", p.ID, "tables", p.Tables, "after_key", p.LastKey)
}

// maxPending bounds the chunks held at once, read or being read and waiting for their high
// watermark to come back through the stream: a snapshot holds at most maxPending x ChunkSize rows
// (and each chunk at most maxLater keys of later drops), whatever the table's size.
const maxPending = 3

// nextChunk moves the pipeline on between two streamed transactions (or in a high watermark's,
// closeWindow): once the last chunk's read has ended, it closes that chunk and opens and reads
// the next one (one watermark transaction), unless maxPending chunks are held or the last one's
// high watermark is written. It never waits for a read: the read's end wakes the stream
// (readWake), or the next commit comes back here. A commit that waited for the read (when that
// chunk is the only one held) would make every streamed change behind it wait for the rest of
// the read too: during a snapshot the stream would run in bursts between reads and its changes
// reach Kafka a read's time late (docs/capture.md, "Freshness during a snapshot").
func (c *capturer) nextChunk(ctx context.Context) error {
	inc := c.inc
	for inc != nil {
		if m := inc.marking; m != nil {
			if !m.ended() {
				return nil // the stream goes on (emits); the write's end wakes it
			}
			if err := c.awaitMarks(ctx); err != nil {
				return err
			}
		}
		var last *chunk
		if n := len(inc.pending); n > 0 {
			last = inc.pending[n-1]
		}
		if last != nil && last.closeWritten || len(inc.pending) >= maxPending {
			return nil // the stream has to bring a high watermark first
		}
		if last != nil && last.reading && len(last.ready) == 0 {
			return nil // its read has not ended
		}
		if err := c.awaitReads(ctx); err != nil { // the cursor moves on past the last read
			return err
		}
		// A row held by an open transaction is read again a little later (advance): until then
		// the last chunk's high watermark alone is written.
		held := time.Now().Before(inc.retryAt)
		var t *table
		if !held {
			var err error
			if t, err = c.nextTable(ctx, inc); err != nil {
				return err
			}
		}
		if t == nil && last == nil && held {
			return nil
		}
		if t == nil && last == nil {
			c.finishSnapshot(ctx, inc)
			return nil
		}
		var ch *chunk
		if t != nil {
			ch = inc.newChunk()
		}
		// A table's later chunk is read at once, while its low watermark commits (readsEarly).
		early := ch != nil && readsEarly(inc)
		if early {
			if err := c.queueRead(ctx, inc, ch, t); err != nil {
				return err
			}
			if lowWatermarkHook != nil {
				lowWatermarkHook(ch.name, ch.from)
			}
		}
		if err := c.writeWatermarks(ctx, inc, last, ch); err != nil {
			return err
		}
		if ch == nil {
			return nil
		}
		if !early {
			if err := c.queueRead(ctx, inc, ch, t); err != nil {
				return err
			}
		}
		if act := chunkReadHook; act != nil && last != nil {
			if f := act(ch.name, ch.from); f != nil {
				if err := c.awaitReads(ctx); err != nil {
					return err
				}
				f()
			}
		}
	}
	return nil
}

// writeWatermarks writes, in one transaction, last's high watermark and ch's low one (either may
// be nil), on the capture's watermark connection in a goroutine: its commit waits for a WAL flush
// (5 ms on a loaded disk, one a chunk), which the stream spends emitting the chunk before instead.
// One write is in flight at a time (awaitMarks), so the watermarks commit in order; what the
// stream needs from it, last's snapshot, it takes when last's high watermark comes back
// (closeWindow), the write committed by then.
func (c *capturer) writeWatermarks(ctx context.Context, inc *incremental, last, ch *chunk) error {
	if err := c.awaitMarks(ctx); err != nil {
		return err
	}
	if c.markConn == nil {
		conn, err := pgx.ConnectConfig(ctx, c.meta.Config().Copy())
		if err != nil {
			return fmt.Errorf("capture: incremental snapshot: connect for watermarks: %w", err)
		}
		c.markConn = conn
	}
	var marks [][2]string
	if last != nil {
		marks = append(marks, [2]string{last.id + "-close", signalWindowClose})
		last.closeWritten = true
	}
	if ch != nil {
		marks = append(marks, [2]string{ch.id + "-open", signalWindowOpen})
	}
	// A table's last high watermark also asks which of the transactions open across its
	// snapshot are of other databases (holdWindow).
	lookup := last != nil && last.done != "" && last.win != nil
	w := &markWrite{last: last, done: make(chan struct{})}
	stale, conn := inc.stale, c.markConn
	inc.stale, inc.marking = nil, w
	go func() {
		w.snap, w.others, w.err = c.watermarks(ctx, conn, marks, stale, lookup)
		close(w.done)
		c.wake.wake()
	}()
	if ch != nil && !readsEarly(inc) {
		// A table's first read waits for its low watermark's commit (readsEarly).
		return c.awaitMarks(ctx)
	}
	return nil
}

// markWrite is a watermark write in flight (writeWatermarks).
type markWrite struct {
	last   *chunk // the chunk whose high watermark it writes, if any
	snap   snapshot
	others map[uint32]bool
	err    error
	done   chan struct{}
}

// ended says whether the write has ended.
func (w *markWrite) ended() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// awaitMarks waits for the watermark write in flight, if any, and gives its chunk the write's
// snapshot.
func (c *capturer) awaitMarks(ctx context.Context) error {
	inc := c.inc
	if inc == nil || inc.marking == nil {
		return nil
	}
	w := inc.marking
	inc.marking = nil
	<-w.done
	if w.err != nil {
		return w.err
	}
	if last := w.last; last != nil {
		last.closeSnap, last.closeOthers = &w.snap, w.others
		if highWatermarkHook != nil && last.done != "" {
			highWatermarkHook(last.done)
		}
	}
	return nil
}

// closeMarkConn waits for a watermark write in flight (its context is ending) and closes the
// connection. Its error is not the close's: a write still in flight is one the run's end cut short.
func (c *capturer) closeMarkConn(ctx context.Context) {
	if c.markConn == nil {
		return
	}
	_ = c.awaitMarks(ctx)
	c.markConn.Close(context.WithoutCancel(ctx))
	c.markConn = nil
}

// finishSnapshot ends inc, every table read and emitted, deleting its spent watermark rows.
func (c *capturer) finishSnapshot(ctx context.Context, inc *incremental) {
	c.inc = nil
	c.cfg.Metrics.Snapshotting.Store(false)
	if len(inc.stale) > 0 {
		if _, err := c.meta.Exec(ctx, "DELETE FROM "+c.cfg.SignalTable+" WHERE id = ANY($1)", inc.stale); err != nil {
			c.log.Warn("watermark rows not deleted", "err", err)
		}
	}
	c.log.Info("incremental snapshot finished", "id", inc.id)
}

// queueRead starts ch's read of t (startRead) and queues ch behind the chunks that wait for
// their high watermark.
func (c *capturer) queueRead(ctx context.Context, inc *incremental, ch *chunk, t *table) error {
	if err := c.startRead(ctx, inc, ch, t); err != nil {
		return err
	}
	inc.pending = append(inc.pending, ch)
	if n := int64(len(inc.pending)); n > c.cfg.Metrics.SnapshotHeldMax.Load() {
		c.cfg.Metrics.SnapshotHeldMax.Store(n)
	}
	return nil
}

// readsEarly says whether the cursor's next chunk may be read before its low watermark commits:
// every chunk of a table but its first. DBLog reads a chunk only once its low watermark is
// visible, so that everything before the window in the log is in the read. Here a change before
// the window is judged by the read's own snapshot instead (drop, the rule Postgres needs anyway:
// a commit is logged before it is visible): a transaction that commits after the read took its
// snapshot and before the low watermark is invisible to the read, so the stream drops its keys
// from the chunk wherever it meets it; one the stream met before the chunk was pending committed
// before the previous chunk's read ended, and if the read still missed it, the rows it changed
// carry its xid as xmax (heldOpen). So the watermark's commit, a WAL flush, no longer stands
// between two reads (TestChunkReadBeforeItsLowWatermark forces a change into that gap). A
// table's first read stays after its low watermark: its window's opening position is lowered to
// the changes that read did not see (lowerForRead), which must be those before it.
func readsEarly(inc *incremental) bool {
	return inc.lastKey != nil || inc.deferrals > 0
}

// lowWatermarkHook, set by tests alone, runs on the stream's goroutine when a chunk read started
// early (readsEarly), before its low watermark is written.
var lowWatermarkHook func(table string, after []string)

// highWatermarkHook, set by tests alone, runs on the stream's goroutine once a table's last high
// watermark is written, before the stream meets it.
var highWatermarkHook func(table string)

// chunkReadHook, set by tests alone (export_test.go), runs on the stream's goroutine when a chunk
// starts to be read while the chunk before it still waits for its high watermark to come back
// through the stream; after is the key the chunk is read after. The function it returns, if any,
// runs once the read is done, still before the stream goes on: it forces changes into that
// interleaving.
var chunkReadHook func(table string, after []string) func()

// chunkReadingHook, set by tests alone, runs in a chunk's read goroutine once its rows are read,
// before the stream may take them: changes made there meet the chunk while it is being read.
var chunkReadingHook func(table string, after []string)

// newChunk takes a spare buffer or a new one.
func (inc *incremental) newChunk() *chunk {
	var ch *chunk
	if n := len(inc.spare); n > 0 {
		ch, inc.spare = inc.spare[n-1], inc.spare[:n-1]
		rows, keyData, keyEnd, dropped, index, last, lastRaw, keyBuf, formats := ch.rows, ch.keyData[:0], ch.keyEnd, ch.dropped, ch.index, ch.last, ch.lastRaw, ch.keyBuf, ch.formats
		clear(ch.later)
		clear(index)
		later := ch.later[:0]
		*ch = chunk{rows: rows, keyData: keyData, keyEnd: keyEnd, dropped: dropped, index: index, last: last[:0], lastRaw: lastRaw, keyBuf: keyBuf,
			formats: formats, later: later}
	} else {
		ch = &chunk{index: map[string]int{}}
	}
	ch.id = uuid.NewString()
	return ch
}

// nextTable describes the table the cursor reads next (nil when none is left), skipping, with
// an error in the log, tables without a primary key to read them by.
func (c *capturer) nextTable(ctx context.Context, inc *incremental) (*table, error) {
	for len(inc.tables) > 0 {
		name := inc.tables[0]
		if d := inc.described; d != nil && d.qualified() == name {
			// Described for its first chunk: a copy without columns (each read sets them) spares
			// every later chunk a catalog round trip on the stream's goroutine.
			return &table{schema: d.schema, name: d.name, qname: d.qname, topic: d.topic, keyNames: d.keyNames}, nil
		}
		t, err := c.tableFor(ctx, name, 0)
		if err != nil {
			return nil, err
		}
		if len(t.keyNames) > 0 {
			inc.described = &table{schema: t.schema, name: t.name, qname: t.qname, topic: t.topic, keyNames: t.keyNames}
			return t, nil
		}
		// Bad input, not a failure: say so and go on with the other tables.
		c.log.Error("incremental snapshot skips a table without a primary key to read it by (it stays unrecorded in the manifest)", "table", name, "id", inc.id)
		inc.tables, inc.lastKey, inc.maxKey = inc.tables[1:], nil, nil
	}
	return nil, nil
}

// startRead reads the cursor's next chunk of t into ch on the capture's chunk connection, in a
// goroutine, while the stream goes on (its low watermark is written). The stream waits for it
// (awaitReads) before anything that needs the chunk: a change of a captured table (whose key may
// have to be dropped from it), the chunk's watermarks, the next chunk. The goroutine touches only
// ch and t; the cursor moves on the stream's goroutine when the read is taken (advance).
func (c *capturer) startRead(ctx context.Context, inc *incremental, ch *chunk, t *table) error {
	if c.chunkConn == nil {
		conn, err := pgx.ConnectConfig(ctx, chunkConnConfig(c.meta.Config()))
		if err != nil {
			return fmt.Errorf("capture: incremental snapshot: connect for chunk reads: %w", err)
		}
		c.chunkConn, c.chunkStmts = conn, map[string]*pgconn.StatementDescription{}
	}
	ch.name, ch.from, ch.maxKey = inc.tables[0], slices.Clone(inc.lastKey), slices.Clone(inc.maxKey)
	// A table's first chunk opens its window; a resumed table without one (a manifest written
	// before windows were kept) never gets a window, so its snapshot ends no version.
	// A first chunk read again after a deferral keeps the window its first read opened.
	if ch.win, ch.first = inc.window(ch.name), ch.from == nil && inc.deferrals == 0; ch.first {
		ch.win = &window{table: ch.name}
		inc.windows = append(inc.windows, ch.win)
	}
	ch.ready, ch.reading = make(chan error, 1), true
	conn := c.chunkConn
	go func() {
		ch.ready <- c.readChunk(ctx, conn, ch, t)
		c.wake.wake()
	}()
	return nil
}

// chunkConnConfig is the chunk reads' connection: base's, where a chunk read walks the primary
// key and never sorts what is left of the table. Without statistics (a table just loaded, not yet
// analyzed) the planner takes a key range for a few rows and picks a bitmap scan of the whole
// range and a top-N sort, so every chunk read the rest of the table: quadratic, 300 ms a chunk
// at 200,000 rows. Chunk reads are the only statements on this connection.
func chunkConnConfig(base *pgx.ConnConfig) *pgx.ConnConfig {
	cfg := base.Copy()
	cfg.RuntimeParams["enable_sort"] = "off"
	// The chunk query is prepared once (chunkStatement) and planned for each read's bounds, as
	// the unnamed statement was: the plans TestChunkReadWalksThePrimaryKeyWithoutStatistics checks.
	cfg.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	// The read's snapshot must come before its rows (chunkQuery): a parallel append could
	// interleave the branches.
	cfg.RuntimeParams["max_parallel_workers_per_gather"] = "0"
	return cfg
}

// closeChunkConn waits for a read in flight (its context is ending) and closes the connection.
func (c *capturer) closeChunkConn(ctx context.Context) {
	if c.chunkConn == nil {
		return
	}
	if c.inc != nil {
		for _, ch := range c.inc.pending {
			if ch.reading {
				ch.reading = false
				<-ch.ready
			}
		}
	}
	c.chunkConn.Close(context.WithoutCancel(ctx))
	c.chunkConn = nil
}

// awaitReads waits for the chunk reads in flight and moves the cursor past each.
func (c *capturer) awaitReads(ctx context.Context) error {
	if c.inc == nil {
		return nil
	}
	for _, ch := range c.inc.pending {
		if !ch.reading {
			continue
		}
		ch.reading = false
		if err := <-ch.ready; err != nil {
			return err
		}
		if ch.first {
			c.lowerForRead(ch.win, ch)
		}
		for _, d := range ch.later {
			c.drop(ch, d.key, d.xid, d.open)
		}
		clear(ch.later)
		ch.later = ch.later[:0]
		if ch.unprobed && !c.inc.unprobedLogged {
			c.inc.unprobedLogged = true
			c.log.Warn("incremental snapshot: rows locked by several transactions are not probed, the capture's role lacks UPDATE on the table (FOR SHARE needs it): such a row held by an open update can be emitted stale (docs/capture.md, \"Rows held open\")", "table", ch.name)
		}
		c.advance(c.inc, ch)
		if ch.deferred {
			c.logHeld(ctx, c.inc, ch)
		}
	}
	return nil
}

// advance moves the cursor past a chunk read; the position is the chunk's, durable once its rows
// are delivered.
func (c *capturer) advance(inc *incremental, ch *chunk) {
	if cur := int64(ch.n); cur > c.cfg.Metrics.SnapshotChunkMax.Load() {
		c.cfg.Metrics.SnapshotChunkMax.Store(cur)
	}
	switch {
	case ch.deferred:
		// The next read starts at the held row: after the last row of this chunk, or where this
		// one started. It waits a little, longer each time the same row is still held.
		if ch.n > 0 {
			inc.lastKey, inc.deferrals = slices.Clone(ch.last), 0
		}
		inc.maxKey = ch.maxKey
		if inc.deferrals++; inc.deferrals == 1 {
			inc.heldSince, inc.heldLogged = time.Now(), time.Time{}
		}
		inc.retryAt = time.Now().Add(min(10*time.Millisecond<<min(inc.deferrals-1, 7), time.Second))
	case ch.maxKey == nil || ch.n < c.cfg.ChunkSize || slices.Equal(ch.last, ch.maxKey):
		inc.deferrals = 0
		ch.done = ch.name
		inc.tables, inc.lastKey, inc.maxKey = inc.tables[1:], nil, nil
	default:
		inc.deferrals = 0
		inc.lastKey, inc.maxKey = slices.Clone(ch.last), ch.maxKey
	}
	ch.pos = inc.position()
}

// readChunk reads the chunk of ch.name after ch.from up to ch.maxKey (found first when unknown),
// at most ChunkSize rows by primary key, in one snapshot whose in-progress transactions it notes.
func (c *capturer) readChunk(ctx context.Context, conn *pgx.Conn, ch *chunk, t *table) error {
	began := time.Now()
	keyCols := make([]string, len(t.keyNames))
	desc := make([]string, len(t.keyNames))
	for i, k := range t.keyNames {
		keyCols[i] = pgx.Identifier{k}.Sanitize()
		desc[i] = keyCols[i] + " DESC"
	}
	if ch.maxKey == nil && ch.from == nil {
		rr := conn.PgConn().ExecParams(ctx, "SELECT "+strings.Join(keyCols, ", ")+" FROM "+ch.name+" ORDER BY "+strings.Join(desc, ", ")+" LIMIT 1", nil, nil, nil, nil)
		for rr.NextRow() {
			ch.maxKey = textValues(rr.Values())
		}
		if _, err := rr.Close(); err != nil {
			return fmt.Errorf("capture: incremental snapshot of %s: largest key: %w", ch.name, err)
		}
	}
	if ch.maxKey != nil { // nil: an empty table, an empty chunk
		if err := c.readRows(ctx, conn, ch, t, keyCols); err != nil {
			return fmt.Errorf("capture: incremental snapshot of %s: %w", ch.name, err)
		}
	}
	ch.readAt = time.Now()
	c.log.Debug("chunk read", "table", ch.name, "rows", ch.n, "read_ms", time.Since(began).Milliseconds())
	if chunkReadingHook != nil {
		chunkReadingHook(ch.name, ch.from)
	}
	return nil
}

// readRows runs the chunk's keyset query and encodes its rows into ch.
//
// The query also returns the snapshot it reads in (pg_current_snapshot() is the statement's
// snapshot, evaluated once): Postgres writes a commit to the WAL before the transaction becomes
// visible, so a transaction can precede the low watermark in the log and still be invisible to
// the read. Its changes are newer than the chunk although they come before the window (see
// inWindow). One statement, one round trip, no transaction to begin and end.
func (c *capturer) readRows(ctx context.Context, conn *pgx.Conn, ch *chunk, t *table, keyCols []string) error {
	var args [][]byte
	for _, v := range append(slices.Clone(ch.from), ch.maxKey...) {
		args = append(args, []byte(v))
	}
	query := chunkQuery(ch.name, keyCols, ch.from != nil, c.cfg.ChunkSize)
	rr, err := c.execChunk(ctx, conn, query, args, ch, t)
	if err != nil {
		return err
	}
	for _, fd := range rr.FieldDescriptions()[chunkMeta:] {
		t.addResultColumn(fd.Name, fd.DataTypeOID, fd.TypeModifier, fd.Format)
	}
	if err := t.resolveKey(); err != nil {
		rr.Close()
		return err
	}
	ch.t = t
	var cells []cell
	for first := true; rr.NextRow(); first = false {
		vals := rr.Values()
		if first {
			if err := ch.readMeta(vals); err != nil {
				rr.Close()
				return err
			}
			continue
		}
		if ch.heldOpen(vals[2]) {
			// Its row and the rest of the chunk wait for the next read: see heldOpen.
			ch.deferred, ch.heldXmax = true, string(vals[2])
			break
		}
		xmax := vals[2]
		vals = vals[chunkMeta:]
		if string(xmax) != "0" {
			ch.noteLocked(t, vals, xmax)
		}
		cells = queryCells(cells, vals)
		if err := ch.addRow(t, cells); err != nil {
			rr.Close()
			return err
		}
		// The last row's key is where the next chunk starts; kept as bytes (the row's values
		// are gone after NextRow), made strings once the chunk is read.
		ch.lastRaw = slices.Grow(ch.lastRaw[:0], len(t.key))[:len(t.key)]
		for j, ki := range t.key {
			ch.lastRaw[j] = append(ch.lastRaw[j][:0], vals[ki]...)
		}
	}
	if ch.n > 0 {
		ch.last = ch.last[:0]
		for _, v := range ch.lastRaw {
			ch.last = append(ch.last, string(v))
		}
	}
	if _, err := rr.Close(); err != nil {
		return fmt.Errorf("read chunk: %w", err)
	}
	return ch.probeLocked(ctx, conn, keyCols)
}

// execChunk runs the chunk query, prepared once on the chunk connection (chunkStatement), with
// the columns whose binary form is cheaper for Postgres and the capture alike in binary. A
// statement prepared before the table's columns changed fails ("cached plan must not change
// result type"): it is prepared again, once.
func (c *capturer) execChunk(ctx context.Context, conn *pgx.Conn, query string, args [][]byte, ch *chunk, t *table) (*pgconn.ResultReader, error) {
	for retried := false; ; retried = true {
		sd, err := c.chunkStatement(ctx, conn, query)
		if err != nil {
			return nil, fmt.Errorf("read chunk: %w", err)
		}
		if len(sd.Fields) < chunkMeta+1 {
			return nil, fmt.Errorf("read chunk: %d columns", len(sd.Fields))
		}
		ch.formats = chunkFormats(ch.formats[:0], sd.Fields, t.keyNames)
		rr := conn.PgConn().ExecStatement(ctx, sd, args, nil, ch.formats)
		if len(rr.FieldDescriptions()) == len(sd.Fields) {
			return rr, nil
		}
		_, err = rr.Close()
		var pgErr *pgconn.PgError
		if retried || !errors.As(err, &pgErr) || pgErr.Code != "0A000" {
			return nil, fmt.Errorf("read chunk: %w", err)
		}
		delete(c.chunkStmts, query)
		if err := conn.PgConn().Deallocate(ctx, sd.Name); err != nil {
			return nil, fmt.Errorf("read chunk: deallocate %s: %w", sd.Name, err)
		}
	}
}

// chunkStatement is query prepared on the chunk connection, described once: a read then takes
// one round trip instead of two (the unnamed statement was parsed and described for every chunk).
// A table's reads use two texts (its first chunk has no lower bound), so the cache stays small.
func (c *capturer) chunkStatement(ctx context.Context, conn *pgx.Conn, query string) (*pgconn.StatementDescription, error) {
	if sd := c.chunkStmts[query]; sd != nil {
		return sd, nil
	}
	c.chunkPrepared++
	sd, err := conn.PgConn().Prepare(ctx, fmt.Sprintf("fin_chunk_%d", c.chunkPrepared), query, nil)
	if err != nil {
		return nil, err
	}
	c.chunkStmts[query] = sd
	return sd, nil
}

// addRow encodes the chunk's next row and adds its key. The rows share one slice of column spans,
// used for the key and then overwritten: nothing reads a snapshot row's spans after its key is
// made, and a slice of its own a row was 4,096 more arrays a chunk written into cold memory.
func (ch *chunk) addRow(t *table, cells []cell) error {
	if ch.n == len(ch.rows) {
		ch.rows, ch.keyEnd, ch.dropped = append(ch.rows, image{}), append(ch.keyEnd, 0), append(ch.dropped, false)
	}
	img := &ch.rows[ch.n]
	img.spans = ch.spans
	err := t.encode(img, cells, nil)
	if err == nil {
		ch.addKey(t, img)
	}
	ch.spans, img.spans = img.spans, nil
	return err
}

// addKey adds the record key of the chunk's next row, img, and counts the row. The keys share one
// buffer: a chunk's 4,096 rows used to be 4,096 strings and map entries, most never looked up.
func (ch *chunk) addKey(t *table, img *image) {
	ch.keyData = t.appendKey(ch.keyData, img)
	ch.keyEnd[ch.n], ch.dropped[ch.n] = len(ch.keyData), false
	ch.n++
}

// key is the record key of row i.
func (ch *chunk) key(i int) []byte {
	start := 0
	if i > 0 {
		start = ch.keyEnd[i-1]
	}
	return ch.keyData[start:ch.keyEnd[i]]
}

// linearLookups is how many lookups a chunk answers by scanning its keys before it indexes
// them: most windows meet no change of their rows, or a few (a scan of 4,096 keys costs tens of
// microseconds, an index of them a few hundred).
const linearLookups = 8

// find is the row whose record key is key.
func (ch *chunk) find(key string) (int, bool) {
	if !ch.indexed && ch.lookups < linearLookups {
		ch.lookups++
		for i := range ch.n {
			if string(ch.key(i)) == key {
				return i, true
			}
		}
		return 0, false
	}
	if !ch.indexed {
		if ch.index == nil {
			ch.index = make(map[string]int, ch.n)
		}
		for i := range ch.n {
			ch.index[string(ch.key(i))] = i
		}
		ch.indexed = true
	}
	i, ok := ch.index[key]
	return i, ok
}

// lockedRow is a row read whose xmax was set by a transaction that looked ended (heldOpen), or
// by several (a MultiXactId): its key, and the key of the row before it in the chunk.
type lockedRow struct {
	n         int
	key, prev []string
	xmax      string
}

// noteLocked keeps the row about to be added to ch (its values vals, its xmax) for probeLocked.
func (ch *chunk) noteLocked(t *table, vals [][]byte, xmax []byte) {
	r := lockedRow{n: ch.n, xmax: string(xmax)}
	for _, ki := range t.key {
		r.key = append(r.key, string(vals[ki]))
	}
	if ch.n > 0 {
		for _, v := range ch.lastRaw {
			r.prev = append(r.prev, string(v))
		}
	}
	ch.locked = append(ch.locked, r)
}

// probeLocked asks, for the rows whose xmax heldOpen could not judge, whether a transaction
// still changes or holds them: FOR SHARE SKIP LOCKED skips a row whose updater (or FOR UPDATE
// locker) is still open, also inside a MultiXactId, and shares the lock of a key-share or share
// locker. The chunk ends before the first row skipped, as it would before a row heldOpen finds.
// Only such rows are probed (a row lock for the statement's duration, no wait); a row whose
// transaction ended between the read and the probe committed before the high watermark, so the
// stream drops it from the chunk (inWindow: the read did not see it).
func (ch *chunk) probeLocked(ctx context.Context, conn *pgx.Conn, keyCols []string) error {
	if len(ch.locked) == 0 {
		return nil
	}
	var rows []string
	var args [][]byte
	for _, r := range ch.locked {
		ph := make([]string, len(r.key))
		for i, v := range r.key {
			args = append(args, []byte(v))
			ph[i] = fmt.Sprintf("$%d", len(args))
		}
		rows = append(rows, "("+strings.Join(ph, ", ")+")")
	}
	cols := make([]string, len(keyCols))
	for i, k := range keyCols {
		cols[i] = k + "::text"
	}
	rr := conn.PgConn().ExecParams(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM "+ch.name+" WHERE ("+strings.Join(keyCols, ", ")+") IN ("+
		strings.Join(rows, ", ")+") FOR SHARE SKIP LOCKED", args, nil, nil, nil)
	free := map[string]bool{}
	for rr.NextRow() {
		free[strings.Join(textValues(rr.Values()), "\x00")] = true
	}
	if _, err := rr.Close(); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42501" {
			ch.unprobed = true // a role without UPDATE on the table: awaitReads says so
			return nil
		}
		return fmt.Errorf("read chunk: probe %d locked rows: %w", len(ch.locked), err)
	}
	for _, r := range ch.locked {
		if !free[strings.Join(r.key, "\x00")] {
			ch.n, ch.deferred, ch.last = r.n, true, append(ch.last[:0], r.prev...)
			ch.heldXmax, ch.heldMulti = r.xmax, true
			break
		}
	}
	return nil
}

// readMeta takes the read's snapshot and WAL position from its first row, which carries them
// alone (chunkQuery).
func (ch *chunk) readMeta(vals [][]byte) error {
	if vals[0] == nil || vals[1] == nil || vals[2] != nil {
		return errors.New("read chunk: the first row is not the read's snapshot and position")
	}
	var err error
	if ch.snap, err = parseSnapshot(string(vals[0])); err != nil {
		return err
	}
	lsn, err := pglogrepl.ParseLSN(string(vals[1]))
	if err != nil {
		return fmt.Errorf("read chunk: WAL position %q: %w", vals[1], err)
	}
	ch.readLSN = lsn
	return nil
}

// heldOpen says whether a row read (its xmax, as text) was changed or locked by a transaction
// still open when the read took its snapshot. Such a transaction's change record can lie before
// the read's position yet reach the stream after the chunk's window has closed: the chunk's row,
// older, would then follow the change in the log and stay current (TestTransactionOpenAcrossAChunkWindow).
// The row is read again once the transaction has ended. A row locked by several transactions has
// a MultiXactId for xmax, which this cannot see through (docs/capture.md, "Rows held open").
func (ch *chunk) heldOpen(xmax []byte) bool {
	x, err := strconv.ParseUint(string(xmax), 10, 32)
	return err == nil && x != 0 && !ch.snap.visible(uint32(x))
}

// chunkMeta counts the columns a chunk read returns before the table's: the read's snapshot and its
// WAL position (on the read's first row alone, null on the others) and the row's xmax.
const chunkMeta = 3

// chunkFormats are the result formats of a chunk read: binary for the columns binaryEncoderFor
// reads, text for the rest, for the read's snapshot and for the key columns, whose last values
// start the next chunk and are kept in the manifest as text.
func chunkFormats(dst []int16, fields []pgconn.FieldDescription, keyNames []string) []int16 {
	for i, fd := range fields {
		f := int16(pgx.TextFormatCode)
		if i >= chunkMeta && !slices.Contains(keyNames, fd.Name) && binaryEncoderFor(fd.DataTypeOID, fd.TypeModifier) != nil {
			f = pgx.BinaryFormatCode
		}
		dst = append(dst, f)
	}
	return dst
}

// chunkQuery reads the next chunk of table by its key columns: after the key in the first
// parameters (when after), up to the largest key in the following ones.
func chunkQuery(table string, keyCols []string, after bool, limit int) string {
	key := "(" + strings.Join(keyCols, ", ") + ")"
	var conds []string
	n := 0
	bound := func(op string) {
		ph := make([]string, len(keyCols))
		for i := range keyCols {
			n++
			ph[i] = fmt.Sprintf("$%d", n)
		}
		conds = append(conds, key+" "+op+" ("+strings.Join(ph, ", ")+")")
	}
	if after {
		bound(">")
	}
	bound("<=")
	// The read's position is taken once (a materialized CTE), by a one-time filter that runs
	// before the scan: every row's xmax is then read after it (heldOpen), and every commit the
	// statement's snapshot sees lies below it. The snapshot and the position come once, in a
	// first row of their own (the table's columns null), and the rows after it carry nulls in
	// their place: repeated on every row they were a third of its bytes on a busy cluster (the
	// snapshot lists its open transactions) and a tenth of Postgres's CPU for the read
	// (docs/benchmarks.md, "A chunk read's snapshot once"). UNION ALL's branches run in order
	// (parallel plans are off on the chunk connection); readMeta fails on any other first row.
	return "WITH pos AS MATERIALIZED (SELECT pg_current_snapshot()::text AS snap, pg_current_wal_insert_lsn()::text AS lsn) " +
		"SELECT snap, lsn, NULL::text, (NULL::" + table + ").* FROM pos UNION ALL (" +
		"SELECT NULL, NULL, xmax::text, * FROM " + table +
		" WHERE (SELECT lsn FROM pos) IS NOT NULL AND " + strings.Join(conds, " AND ") + " ORDER BY " + strings.Join(keyCols, ", ") + fmt.Sprintf(" LIMIT %d)", limit)
}

// snapshot is a Postgres snapshot (pg_current_snapshot) on 32-bit xids, as pgoutput gives them.
type snapshot struct {
	xmin, xmax uint32
	xip        map[uint32]bool
}

func parseSnapshot(s string) (snapshot, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return snapshot{}, fmt.Errorf("snapshot %q: want xmin:xmax:xip", s)
	}
	var nums []uint32
	for _, p := range append(parts[:2:2], strings.Split(parts[2], ",")...) {
		if p == "" {
			continue
		}
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return snapshot{}, fmt.Errorf("snapshot %q: %w", s, err)
		}
		nums = append(nums, uint32(n)) // the xid without its epoch
	}
	if len(nums) < 2 {
		return snapshot{}, fmt.Errorf("snapshot %q: want xmin:xmax:xip", s)
	}
	out := snapshot{xmin: nums[0], xmax: nums[1], xip: map[uint32]bool{}}
	for _, x := range nums[2:] {
		out.xip[x] = true
	}
	return out, nil
}

// visible says whether the snapshot sees the commits of xid (xids compare modulo 2^32).
func (s snapshot) visible(xid uint32) bool {
	if int32(xid-s.xmin) < 0 {
		return true
	}
	return int32(xid-s.xmax) < 0 && !s.xip[xid]
}

// queryCells turns a query row's text values into cells.
func queryCells(dst []cell, vals [][]byte) []cell {
	dst = dst[:0]
	for _, v := range vals {
		if v == nil {
			dst = append(dst, cell{kind: 'n'})
		} else {
			dst = append(dst, cell{kind: 't', data: v})
		}
	}
	return dst
}

// textValues copies a row's text values.
func textValues(vals [][]byte) []string {
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = string(v)
	}
	return out
}

// watermarks inserts window signals (Debezium's layout) in one transaction, in order, deleting
// spent ones in the same statement so the signal table does not grow with every chunk. It returns
// the statement's snapshot: the transactions open when the watermarks were written; with lookup,
// also those of them that belong to other databases (heldLookup).
func (c *capturer) watermarks(ctx context.Context, conn *pgx.Conn, marks [][2]string, stale []string, lookup bool) (snapshot, map[uint32]bool, error) {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	var values []string
	var args []any
	for _, m := range marks {
		field := "openWindowTimestamp"
		if m[1] == signalWindowClose {
			field = "closeWindowTimestamp"
		}
		args = append(args, m[0], m[1], fmt.Sprintf(`{"%s": "%s"}`, field, now))
		values = append(values, fmt.Sprintf("($%d, $%d, $%d)", len(args)-2, len(args)-1, len(args)))
	}
	sql := "marks AS (INSERT INTO " + c.cfg.SignalTable + " (id, type, data) VALUES " + strings.Join(values, ", ") +
		"), s AS MATERIALIZED (SELECT pg_current_snapshot() AS snap)"
	if lookup {
		sql += ", " + heldXip + " SELECT (SELECT snap::text FROM s), " + heldLookup
	} else {
		sql += " SELECT (SELECT snap::text FROM s), NULL::text[]"
	}
	if len(stale) > 0 {
		args = append(args, stale)
		sql = fmt.Sprintf("spent AS (DELETE FROM %s WHERE id = ANY($%d)), ", c.cfg.SignalTable, len(args)) + sql
	}
	var text string
	var elsewhere []string
	if err := conn.QueryRow(ctx, "WITH "+sql, args...).Scan(&text, &elsewhere); err != nil {
		return snapshot{}, nil, fmt.Errorf("capture: write watermarks to %s: %w", c.cfg.SignalTable, err)
	}
	snap, err := parseSnapshot(text)
	if err != nil || !lookup {
		return snap, nil, err
	}
	others := map[uint32]bool{}
	for _, x := range elsewhere {
		n, err := strconv.ParseUint(x, 10, 32)
		if err != nil {
			return snapshot{}, nil, fmt.Errorf("capture: transaction %q of another database: %w", x, err)
		}
		others[uint32(n)] = true
	}
	return snap, others, nil
}

// signal handles an insert into the signal table, as it comes back through the slot.
func (c *capturer) signal(ctx context.Context, st *streamState) error {
	m := &st.row
	if m.kind != 'I' || !m.hasNew {
		return nil
	}
	get := func(i int) string {
		if i < 0 || i >= len(m.new) || m.new[i].kind != 't' {
			return ""
		}
		return string(m.new[i].data)
	}
	id, kind, data := get(st.signalCols[0]), get(st.signalCols[1]), get(st.signalCols[2])
	inc := c.inc
	switch kind {
	case signalWindowOpen:
		if inc != nil {
			for _, ch := range inc.pending {
				if id == ch.id+"-open" {
					ch.open, ch.openedAt = true, st.src.commit
					if ch.first {
						ch.win.lower(st.src.lsn)
						ch.win.openedAt = st.src.commit
					}
				}
			}
		}
	case signalWindowClose:
		if inc != nil && len(inc.pending) > 0 && id == inc.pending[0].id+"-close" {
			return c.closeWindow(ctx, st)
		}
	case signalExecuteSnapshot:
		return c.executeSnapshot(ctx, id, data)
	default:
		c.log.Debug("signal ignored", "id", id, "type", kind)
	}
	return nil
}

// executeSnapshot acts on Debezium's execute-snapshot signal, once per signal id.
func (c *capturer) executeSnapshot(ctx context.Context, id, data string) error {
	if slices.Contains(c.manifest.Signals, id) {
		return nil // re-delivered after a restart: already taken
	}
	var req struct {
		Collections []string `json:"data-collections"`
		Type        string   `json:"type"`
	}
	if err := json.Unmarshal([]byte(data), &req); err != nil {
		c.log.Error("execute-snapshot signal ignored: its data is not JSON", "id", id, "data", data, "err", err)
		return nil
	}
	if req.Type != "" && !strings.EqualFold(req.Type, "incremental") {
		c.log.Error("execute-snapshot signal ignored: only incremental snapshots are supported", "id", id, "type", req.Type)
		return nil
	}
	var tables []string
	for _, t := range req.Collections {
		if slices.Contains(c.cfg.Tables, t) {
			tables = append(tables, t)
		} else {
			c.log.Error("execute-snapshot signal names a table that is not captured; skipped", "id", id, "table", t, "captured", c.cfg.Tables)
		}
	}
	c.manifest.Signals = append(c.manifest.Signals, id)
	if n := len(c.manifest.Signals); n > 32 {
		c.manifest.Signals = c.manifest.Signals[n-32:]
	}
	if len(tables) == 0 {
		return c.saveManifest(ctx)
	}
	return c.requestSnapshot(ctx, id, "signal "+id, tables, nil)
}

// inWindow drops a streamed row's key from the chunks it is newer than: a chunk whose window is
// open, and a chunk whose read did not see the row's transaction. The latter committed (in the
// log) before the low watermark but became visible only after the read began, so the chunk holds
// the older row. A chunk still being read has neither keys nor snapshot yet: the key waits in
// its later drops, judged as it would be now once the read is taken (awaitReads), so the stream
// goes on during the read instead of waiting for it at every change.
func (c *capturer) inWindow(t *table, xid uint32, imgs ...*image) {
	if c.inc == nil {
		return
	}
	name := ""
	for _, ch := range c.inc.pending {
		if ch.reading {
			if name == "" {
				name = t.qualified()
			}
			if ch.name != name {
				continue
			}
			for _, img := range imgs {
				if img != nil {
					c.keyBuf = t.appendKey(c.keyBuf[:0], img)
					ch.later = append(ch.later, laterDrop{key: string(c.keyBuf), xid: xid, open: ch.open})
				}
			}
			continue
		}
		if ch.t == nil || ch.n == 0 || t.qualified() != ch.t.qualified() {
			continue
		}
		for _, img := range imgs {
			if img != nil {
				c.keyBuf = t.appendKey(c.keyBuf[:0], img)
				c.drop(ch, string(c.keyBuf), xid, ch.open)
			}
		}
	}
}

// drop takes key out of ch when the change (of transaction xid, met with ch's window open or
// not) is newer than ch's row: inside the window, or invisible to the read.
func (c *capturer) drop(ch *chunk, key string, xid uint32, open bool) {
	if ch.t == nil || ch.n == 0 || (!open && ch.snap.visible(xid)) {
		return
	}
	if i, ok := ch.find(key); ok && !ch.dropped[i] {
		ch.dropped[i] = true
		c.cfg.Metrics.SnapshotDropped.Add(1)
	}
}

// mustAwait says whether a change has to wait for the reads in flight before inWindow: a table's
// first read lowers its window to the recent changes it did not see (lowerForRead), which must be
// those before the read, and a chunk's later drops are bounded (maxLater).
func (c *capturer) mustAwait() bool {
	if c.inc == nil {
		return false
	}
	for _, ch := range c.inc.pending {
		if ch.reading && (ch.first || len(ch.later) >= maxLater) {
			return true
		}
	}
	return false
}

// closeWindow emits the first pending chunk's rows that did not change in its window, at the read's
// position (source.lsn just below it; txId the high watermark's) with the low watermark's commit
// time: a row that did not change in the window has held its value since then at least, and
// every change after it in the log committed later (see docs/capture.md; Debezium leaves lsn
// and txId null and stamps the emission time, which can be later than changes that follow).
func (c *capturer) closeWindow(ctx context.Context, st *streamState) error {
	inc := c.inc
	ch := inc.pending[0]
	if m := inc.marking; m != nil && m.last == ch {
		if err := c.awaitMarks(ctx); err != nil { // committed: its high watermark is here
			return err
		}
	}
	var hw *heldWindow
	if ch.done != "" && ch.win != nil {
		var err error
		if hw, err = c.holdWindow(ctx, ch); err != nil {
			return err
		}
	}
	inc.pending = inc.pending[1:]
	// The next read starts before this chunk's rows are emitted, if the last read has ended: this
	// transaction holds watermarks only, so for the chunks it is as if between two transactions.
	// (With none left pending, the snapshot may end: that waits for the commit.)
	if len(inc.pending) > 0 {
		if err := c.nextChunk(ctx); err != nil {
			return err
		}
	}
	src := st.src
	src.snapshot, src.commit = "incremental", ch.openedAt
	emitted := 0
	if ch.t != nil {
		// The rows sit in the log where they were read: just below the read's WAL position, above
		// every commit the read saw, below every change it did not (a held row waits, heldOpen).
		// WAL records start 8-byte aligned, so no change shares that position. The rows of a
		// chunk share their source block and processing time (emitted at once).
		rows := src
		rows.lsn = ch.readLSN - 1
		c.tail = c.env.appendTail(c.tail[:0], ch.t, 'r', &rows, nil, time.Now())
	}
	for i := 0; i < ch.n; i++ {
		if !ch.dropped[i] {
			emitRecord(ctx, c, ch.t, ch.key(i), nil, &ch.rows[i], c.tail, false, st.cur)
			emitted++
		}
		// A read that ends meanwhile is followed by the next at once, not after the emission
		// (several milliseconds a chunk, more when the capture is short of CPU).
		if i%256 == 255 && inc.lastReadEnded() {
			if err := c.nextChunk(ctx); err != nil {
				return err
			}
		}
	}
	c.cfg.Metrics.SnapshotRows.Add(int64(emitted))
	if ch.win != nil {
		ch.win.rows += int64(emitted)
	}
	c.cfg.Metrics.SnapshotChunks.Add(1)
	if ch.t != nil {
		c.log.Debug("chunk emitted", "table", ch.t.qualified(), "rows", ch.n, "window_ms", time.Since(ch.readAt).Milliseconds())
	}
	inc.stale = append(inc.stale, ch.id+"-open", ch.id+"-close")
	p := progress{x: st.cur, pos: ch.pos, completed: ch.done, lsn: src.lsn, window: inc.closeTable(ch, &src)}
	if hw != nil && p.window != nil {
		hw.sw, p.held, p.window = p.window, hw, nil
		c.held, c.probeWait = append(c.held, hw), heldProbeEvery
		c.cfg.Metrics.WindowsHeld.Store(int64(len(c.held)))
	}
	c.progress = append(c.progress, p)
	if ch.done != "" {
		c.log.Info("incremental snapshot of a table emitted; recorded once delivered", "table", ch.done, "id", inc.id)
	}
	inc.spare = append(inc.spare, ch)
	return nil
}

// lastReadEnded says whether the last chunk held has been read and another may be: nextChunk
// would move on.
func (inc *incremental) lastReadEnded() bool {
	n := len(inc.pending)
	if n == 0 || n >= maxPending {
		return false
	}
	last := inc.pending[n-1]
	return !last.closeWritten && (!last.reading || len(last.ready) > 0) && (inc.marking == nil || inc.marking.ended())
}

// closeTable keeps the window of ch's table in ch's position and, when ch completes the table,
// closes the window at ch's high watermark (src) and returns it (nil without a window).
func (inc *incremental) closeTable(ch *chunk, src *source) *bronze.SnapshotWindow {
	w := ch.win
	if w == nil {
		return nil
	}
	if ch.pos != nil && len(ch.pos.Tables) > 0 && ch.pos.Tables[0] == ch.name && ch.done == "" {
		ch.pos.Window = w.position()
	}
	if ch.done == "" {
		return nil
	}
	inc.windows = slices.DeleteFunc(inc.windows, func(o *window) bool { return o == w })
	if w.open == 0 || w.open > src.lsn {
		return nil // cannot happen: its low watermark came back before this high one
	}
	schema, name, _ := strings.Cut(ch.name, ".")
	return &bronze.SnapshotWindow{Schema: schema, Table: name, ID: inc.id, OpenLSN: int64(w.open), CloseLSN: int64(src.lsn),
		TxID: src.txID, OpenedAt: w.openedAt, Rows: w.rows, Gap: inc.gap}
}

// applyProgress records in the manifest the positions whose chunks are delivered (with the
// landed gate, landed), at most once a second unless a table completed.
func (c *capturer) applyProgress(ctx context.Context) error {
	flushed, _, _ := c.track.state()
	n, completed := 0, []string{}
	var windows []*bronze.SnapshotWindow
	var lsn pglogrepl.LSN
	for n < len(c.progress) {
		p := c.progress[n]
		if p.x != nil && (!p.x.committed.Load() || p.x.endLSN > flushed) {
			break
		}
		pos := p.pos
		if pos != nil && c.inc != nil {
			// Tables queued since this chunk was read belong to the position too.
			for _, t := range c.inc.tables {
				if !slices.Contains(pos.Tables, t) {
					pos.Tables = append(pos.Tables, t)
				}
			}
		}
		c.manifest.Incremental = pos
		if p.completed != "" {
			completed = append(completed, p.completed)
			lsn = max(lsn, p.lsn)
		}
		if p.window != nil {
			windows = append(windows, p.window)
		}
		if p.held != nil {
			if w := c.recordHeld(p.held); w != nil {
				windows = append(windows, w)
			}
		}
		c.manifestDirty = true
		n++
	}
	if n > 0 {
		clear(c.progress[:n])
		c.progress = c.progress[n:]
	}
	if len(completed) > 0 {
		c.manifestDirty, c.manifestSaved = false, time.Now()
		for _, w := range windows {
			if err := c.writeWindow(ctx, w); err != nil {
				return err
			}
		}
		if err := c.recordSnapshots(ctx, "incremental", lsn, completed...); err != nil {
			return err
		}
		// Counted once recorded: whoever watches the metric finds the manifest written.
		c.cfg.Metrics.SnapshotsCompleted.Add(int64(len(completed)))
	}
	if c.manifestDirty && time.Since(c.manifestSaved) >= time.Second {
		started, err := c.saveManifestBehind(ctx)
		if started {
			c.manifestDirty, c.manifestSaved = false, time.Now()
		}
		return err
	}
	return nil
}

// Execer runs one statement: *pgx.Conn, *pgxpool.Pool and pgx.Tx satisfy it.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// RequestSnapshot asks for an incremental snapshot of tables by inserting Debezium's
// execute-snapshot signal into signalTable, and returns the signal's id. The Go capture and
// Debezium (signal.data.collection) both act on it when it comes through their slots.
func RequestSnapshot(ctx context.Context, db Execer, signalTable string, tables []string) (string, error) {
	for _, name := range append([]string{signalTable}, tables...) {
		for _, part := range strings.Split(name, ".") {
			if !identifier.MatchString(part) {
				return "", fmt.Errorf("snapshot request: %q is not a plain lower-case Postgres identifier", name)
			}
		}
	}
	if len(tables) == 0 {
		return "", fmt.Errorf("snapshot request: no table named")
	}
	data, err := json.Marshal(map[string]any{"data-collections": tables, "type": "incremental"})
	if err != nil {
		return "", err
	}
	id := uuid.NewString()
	if _, err := db.Exec(ctx, "INSERT INTO "+signalTable+" (id, type, data) VALUES ($1, $2, $3)", id, signalExecuteSnapshot, string(data)); err != nil {
		return "", fmt.Errorf("snapshot request: insert into %s: %w", signalTable, err)
	}
	return id, nil
}
