package capture

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Online incremental snapshots, with the DBLog watermark algorithm as Debezium implements it.
//
// The stream goroutine reads a table in chunks of ChunkSize rows by primary key (keyset
// pagination, up to the largest key the table had when its snapshot began). For each chunk it
// inserts a low watermark (<id>-open) into the signal table, reads the chunk, and inserts a high
// watermark (<id>-close). Both come back through the slot in commit order. Between them (the
// window) every streamed change of the table drops its key from the chunk: the streamed event is
// newer than the chunk's row, or as new. At the high watermark the rows left are emitted (op
// "r", source.snapshot "incremental"), inside the high watermark's transaction, so the slot is
// confirmed past it only once they are delivered. Only one chunk is ever held; no lock is taken
// and no other slot is used.

// Signal types of Debezium's signal table.
const (
	signalExecuteSnapshot = "execute-snapshot"
	signalWindowOpen      = "snapshot-window-open"
	signalWindowClose     = "snapshot-window-close"
)

// incremental is the running incremental snapshot.
type incremental struct {
	id     string
	tables []string // left to read; the first is being read
	// lastKey is the key of the last row of the last chunk emitted; maxKey the largest key of
	// the first table when its snapshot began.
	lastKey, maxKey []string

	window   string    // the chunk awaiting its watermarks ("" when none)
	open     bool      // its low watermark has come back
	openedAt time.Time // the low watermark's commit time
	snap     snapshot  // the chunk read's snapshot
	readAt   time.Time // when the high watermark was written
	t        *table
	rows     []image // the chunk, in key order; reused from chunk to chunk
	keys     []string
	dropped  []bool
	index    map[string]int
	n        int
	chunkKey []string // key of the chunk's last row
	atEnd    bool     // the chunk reaches the end of the table
	stale    []string // watermark rows to delete with the next insert
}

// progress is a position reached by an emitted chunk, durable once its transaction is delivered.
type progress struct {
	x         *txn // nil: durable as soon as everything before it is
	pos       *IncrementalPosition
	completed string // a table whose last chunk this was
	lsn       pglogrepl.LSN
}

func (inc *incremental) position() *IncrementalPosition {
	if len(inc.tables) == 0 {
		return nil
	}
	return &IncrementalPosition{ID: inc.id, Tables: slices.Clone(inc.tables), LastKey: slices.Clone(inc.lastKey), MaxKey: slices.Clone(inc.maxKey)}
}

// requestSnapshot queues tables for an incremental snapshot (joining a running one) and records
// the request in the manifest before the signal that asked for it is confirmed.
func (c *capturer) requestSnapshot(ctx context.Context, id, reason string, tables []string) error {
	if c.inc == nil {
		c.inc = &incremental{id: id, index: map[string]int{}}
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
	for _, t := range added {
		if !slices.Contains(c.manifest.Incremental.Tables, t) {
			c.manifest.Incremental.Tables = append(c.manifest.Incremental.Tables, t)
		}
	}
	return c.saveManifest(ctx)
}

// resumeSnapshot continues the incremental snapshot the manifest records.
func (c *capturer) resumeSnapshot(p *IncrementalPosition) {
	c.inc = &incremental{id: p.ID, tables: slices.Clone(p.Tables), lastKey: slices.Clone(p.LastKey), maxKey: slices.Clone(p.MaxKey), index: map[string]int{}}
	c.cfg.Metrics.Snapshotting.Store(true)
	c.log.Info("incremental snapshot resumed from the destination manifest", "id", p.ID, "tables", p.Tables, "after_key", p.LastKey)
}

// nextChunk reads the next chunk between its watermarks, unless one is already waiting for them.
func (c *capturer) nextChunk(ctx context.Context) error {
	inc := c.inc
	for inc != nil && inc.window == "" {
		if len(inc.tables) == 0 {
			c.inc = nil
			c.cfg.Metrics.Snapshotting.Store(false)
			if len(inc.stale) > 0 {
				if _, err := c.meta.Exec(ctx, "DELETE FROM "+c.cfg.SignalTable+" WHERE id = ANY($1)", inc.stale); err != nil {
					c.log.Warn("watermark rows not deleted", "err", err)
				}
			}
			c.log.Info("incremental snapshot finished", "id", inc.id)
			return nil
		}
		done, err := c.readChunk(ctx, inc)
		if err != nil {
			return err
		}
		if done { // an empty table (or none left to read): complete now
			c.tableDone(inc, nil, 0)
		}
	}
	return nil
}

// readChunk writes the low watermark, reads the chunk and writes the high watermark. It reports
// done when the table has no rows left to read.
func (c *capturer) readChunk(ctx context.Context, inc *incremental) (done bool, err error) {
	name := inc.tables[0]
	t, err := c.tableFor(ctx, name, 0)
	if err != nil {
		return false, err
	}
	if len(t.keyNames) == 0 {
		// Bad input, not a failure: say so and go on with the other tables.
		c.log.Error("incremental snapshot skips a table without a primary key to read it by (it stays unrecorded in the manifest)", "table", name, "id", inc.id)
		inc.tables, inc.lastKey, inc.maxKey = inc.tables[1:], nil, nil
		return false, nil
	}
	keyCols := make([]string, len(t.keyNames))
	desc := make([]string, len(t.keyNames))
	for i, k := range t.keyNames {
		keyCols[i] = pgx.Identifier{k}.Sanitize()
		desc[i] = keyCols[i] + " DESC"
	}
	key := "(" + strings.Join(keyCols, ", ") + ")"
	if inc.maxKey == nil && inc.lastKey == nil {
		rr := c.meta.PgConn().ExecParams(ctx, "SELECT "+strings.Join(keyCols, ", ")+" FROM "+name+" ORDER BY "+strings.Join(desc, ", ")+" LIMIT 1", nil, nil, nil, nil)
		for rr.NextRow() {
			inc.maxKey = textValues(rr.Values())
		}
		if _, err := rr.Close(); err != nil {
			return false, fmt.Errorf("capture: incremental snapshot of %s: largest key: %w", name, err)
		}
		if inc.maxKey == nil {
			return true, nil
		}
	}
	var conds []string
	var args [][]byte
	bound := func(op string, vals []string) {
		ph := make([]string, len(vals))
		for i, v := range vals {
			args = append(args, []byte(v))
			ph[i] = fmt.Sprintf("$%d", len(args))
		}
		conds = append(conds, key+" "+op+" ("+strings.Join(ph, ", ")+")")
	}
	if inc.lastKey != nil {
		bound(">", inc.lastKey)
	}
	bound("<=", inc.maxKey)
	query := "SELECT * FROM " + name + " WHERE " + strings.Join(conds, " AND ") + " ORDER BY " + strings.Join(keyCols, ", ") + fmt.Sprintf(" LIMIT %d", c.cfg.ChunkSize)

	id := uuid.NewString()
	began := time.Now()
	if err := c.watermark(ctx, id+"-open", signalWindowOpen, inc.stale); err != nil {
		return false, err
	}
	inc.stale = nil
	// The chunk is read in a snapshot whose in-progress transactions are known: Postgres writes a
	// commit to the WAL before the transaction becomes visible, so a transaction can precede the
	// low watermark in the log and still be invisible to the read. Its changes are newer than the
	// chunk although they come before the window (see inWindow).
	tx, err := c.meta.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return false, fmt.Errorf("capture: incremental snapshot of %s: %w", name, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var snap string
	if err := tx.QueryRow(ctx, "SELECT pg_current_snapshot()::text").Scan(&snap); err != nil {
		return false, fmt.Errorf("capture: incremental snapshot of %s: %w", name, err)
	}
	if inc.snap, err = parseSnapshot(snap); err != nil {
		return false, fmt.Errorf("capture: incremental snapshot of %s: %w", name, err)
	}
	rr := tx.Conn().PgConn().ExecParams(ctx, query, args, nil, nil, nil)
	if len(rr.FieldDescriptions()) == 0 {
		_, err := rr.Close()
		return false, fmt.Errorf("capture: incremental snapshot of %s: read chunk: %w", name, err)
	}
	for _, fd := range rr.FieldDescriptions() {
		t.addColumn(fd.Name, fd.DataTypeOID, fd.TypeModifier)
	}
	if err := t.resolveKey(); err != nil {
		rr.Close()
		return false, fmt.Errorf("capture: incremental snapshot: %w", err)
	}
	inc.t, inc.n = t, 0
	clear(inc.index)
	var cells []cell
	for rr.NextRow() {
		if inc.n == len(inc.rows) {
			inc.rows, inc.keys, inc.dropped = append(inc.rows, image{}), append(inc.keys, ""), append(inc.dropped, false)
		}
		cells = queryCells(cells, rr.Values())
		img := &inc.rows[inc.n]
		if err := t.encode(img, cells, nil); err != nil {
			rr.Close()
			return false, fmt.Errorf("capture: incremental snapshot: %w", err)
		}
		k := string(t.appendKey(nil, img))
		inc.keys[inc.n], inc.dropped[inc.n] = k, false
		inc.index[k] = inc.n
		inc.n++
		vals := rr.Values() // the last row's key is where the next chunk starts
		inc.chunkKey = inc.chunkKey[:0]
		for _, ki := range t.key {
			inc.chunkKey = append(inc.chunkKey, string(vals[ki]))
		}
	}
	if _, err := rr.Close(); err != nil {
		return false, fmt.Errorf("capture: incremental snapshot of %s: read chunk: %w", name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("capture: incremental snapshot of %s: %w", name, err)
	}
	if inc.n == 0 {
		// Nothing left up to the largest key (rows deleted since): the table is done. The open
		// watermark written for it is deleted with the next one.
		inc.stale = append(inc.stale, id+"-open")
		return true, nil
	}
	inc.atEnd = inc.n < c.cfg.ChunkSize || slices.Equal(inc.chunkKey, inc.maxKey)
	if cur := int64(inc.n); cur > c.cfg.Metrics.SnapshotChunkMax.Load() {
		c.cfg.Metrics.SnapshotChunkMax.Store(cur)
	}
	if err := c.watermark(ctx, id+"-close", signalWindowClose, nil); err != nil {
		return false, err
	}
	inc.window, inc.open, inc.readAt = id, false, time.Now()
	c.log.Debug("chunk read", "table", name, "rows", inc.n, "read_ms", time.Since(began).Milliseconds())
	return false, nil
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

// watermark inserts a window signal (Debezium's layout), deleting spent ones in the same
// statement so the signal table does not grow with every chunk.
func (c *capturer) watermark(ctx context.Context, id, kind string, stale []string) error {
	field := "openWindowTimestamp"
	if kind == signalWindowClose {
		field = "closeWindowTimestamp"
	}
	data := fmt.Sprintf(`{"%s": "%s"}`, field, time.Now().UTC().Format(time.RFC3339Nano))
	sql := "INSERT INTO " + c.cfg.SignalTable + " (id, type, data) VALUES ($1, $2, $3)"
	args := []any{id, kind, data}
	if len(stale) > 0 {
		sql = "WITH spent AS (DELETE FROM " + c.cfg.SignalTable + " WHERE id = ANY($4)) " + sql
		args = append(args, stale)
	}
	if _, err := c.meta.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("capture: write %s watermark to %s: %w", kind, c.cfg.SignalTable, err)
	}
	return nil
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
		if inc != nil && inc.window != "" && id == inc.window+"-open" {
			inc.open, inc.openedAt = true, st.src.commit
		}
	case signalWindowClose:
		if inc != nil && inc.window != "" && id == inc.window+"-close" {
			c.closeWindow(ctx, st)
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
	return c.requestSnapshot(ctx, id, "signal "+id, tables)
}

// inWindow drops a streamed row's key from the chunk waiting in the window.
//
// A change before the window drops a key too when its transaction was invisible to the chunk's
// read: it committed (in the log) before the low watermark but became visible after the read
// began, so the chunk holds the older row.
func (c *capturer) inWindow(t *table, xid uint32, imgs ...*image) {
	inc := c.inc
	if inc == nil || inc.window == "" || inc.t == nil || t.qualified() != inc.t.qualified() {
		return
	}
	if !inc.open && inc.snap.visible(xid) {
		return
	}
	for _, img := range imgs {
		if img == nil {
			continue
		}
		c.keyBuf = t.appendKey(c.keyBuf[:0], img)
		if i, ok := inc.index[string(c.keyBuf)]; ok && !inc.dropped[i] {
			inc.dropped[i] = true
			c.cfg.Metrics.SnapshotDropped.Add(1)
		}
	}
}

// closeWindow emits the chunk's rows that did not change in the window, at the high
// watermark's position (source.lsn and txId the watermark's, as Debezium gives them) but with
// the low watermark's commit time: a row that did not change in the window has held its value
// since then at least, and every change after it in the log committed later (see
// docs/capture.md; Debezium stamps the emission time, which can be later than changes that
// follow).
func (c *capturer) closeWindow(ctx context.Context, st *streamState) {
	inc := c.inc
	src := st.src
	src.snapshot, src.commit = "incremental", inc.openedAt
	for i := 0; i < inc.n; i++ {
		if inc.dropped[i] {
			continue
		}
		c.emit(ctx, inc.t, 'r', nil, &inc.rows[i], &src, st.cur)
		c.cfg.Metrics.SnapshotRows.Add(1)
	}
	c.cfg.Metrics.SnapshotChunks.Add(1)
	c.log.Debug("chunk emitted", "table", inc.t.qualified(), "rows", inc.n, "window_ms", time.Since(inc.readAt).Milliseconds())
	inc.stale = append(inc.stale, inc.window+"-open", inc.window+"-close")
	inc.window, inc.open = "", false
	inc.lastKey = slices.Clone(inc.chunkKey)
	if inc.atEnd {
		c.tableDone(inc, st.cur, src.lsn)
		return
	}
	c.progress = append(c.progress, progress{x: st.cur, pos: inc.position(), lsn: src.lsn})
}

// tableDone moves to the next table; the completion is recorded once x is delivered.
func (c *capturer) tableDone(inc *incremental, x *txn, lsn pglogrepl.LSN) {
	done := inc.tables[0]
	inc.tables = inc.tables[1:]
	inc.lastKey, inc.maxKey, inc.t = nil, nil, nil
	c.progress = append(c.progress, progress{x: x, pos: inc.position(), completed: done, lsn: lsn})
	c.log.Info("incremental snapshot of a table emitted; recorded once delivered", "table", done, "id", inc.id)
}

// applyProgress records in the manifest the positions whose chunks are delivered (with the
// landed gate, landed), at most once a second unless a table completed.
func (c *capturer) applyProgress(ctx context.Context) error {
	flushed, _, _ := c.track.state()
	n, completed := 0, []string{}
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
		c.manifestDirty = true
		n++
	}
	if n > 0 {
		clear(c.progress[:n])
		c.progress = c.progress[n:]
	}
	if len(completed) > 0 {
		c.cfg.Metrics.SnapshotsCompleted.Add(int64(len(completed)))
		c.manifestDirty, c.manifestSaved = false, time.Now()
		return c.recordSnapshots(ctx, "incremental", lsn, completed...)
	}
	if c.manifestDirty && time.Since(c.manifestSaved) >= time.Second {
		c.manifestDirty, c.manifestSaved = false, time.Now()
		return c.saveManifest(ctx)
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
