package capture

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pglogrepl"

	"github.com/fin-orchestrator/fin-orchestrator/shared/bronze"
)

// The window of a table's incremental snapshot: from a position no later than any event that
// stands for a row the snapshot did not emit, to the last chunk's high watermark. Every row the
// table held meanwhile has an event inside it (read, or streamed and dropped from its chunk), so
// the destination can end the keys without one: rows deleted while another destination consumed
// the slot (bronze.SnapshotWindow, docs/capture.md).
//
// The opening position is the first chunk's low watermark, lowered to the lsn of every change
// of the table the stream meets from the first read on: pgoutput sends a transaction at its
// commit, with the lsns of its changes, which can be older than a watermark committed before it.
// A transaction sent just before the first read but not yet visible to it (a commit is logged
// before it becomes visible) lowers it too: the stream keeps the last recentRuns transactions'
// first change of each table for that.

// window is a table's snapshot window while its chunks are read.
type window struct {
	table    string
	open     pglogrepl.LSN // 0 until the first chunk's low watermark comes back
	openedAt time.Time     // the first low watermark's commit time
	rows     int64         // r events emitted
	first    *snapshot     // the first read's snapshot (nil: unknown, a resumed snapshot)
}

// heldAcross returns the transactions open at the first read that were still open when the last
// chunk's high watermark was written (closeSnap); unknown when that cannot be told (no close
// snapshot). Such a transaction's changes can sit in the log before the opening position and
// reach the stream after the window closed: an insert held so would stand before the window, and
// its row be taken as deleted (TestTransactionOpenAcrossAChunkWindow). Every transaction the first
// read did not see and that started before it is in its xip (all of closeSnap's when the first
// read's snapshot is unknown, a resumed snapshot).
func (w *window) heldAcross(closeSnap *snapshot) (held []uint32, unknown bool) {
	if closeSnap == nil {
		return nil, true
	}
	for x := range closeSnap.xip {
		if w.first == nil || w.first.xip[x] {
			held = append(held, x)
		}
	}
	return held, false
}

// heldLookup is the part of the high watermark's statement that, for a table's last chunk, finds
// the transactions of its snapshot (s.snap) that belong to another database of the cluster: held
// by a backend connected to it (pg_locks, and pg_stat_activity's datid, which any role may read),
// or prepared there. A snapshot's xip lists the whole cluster's transactions, and one of another
// database cannot have changed the table. Asked in the same statement as the snapshot (asked at
// the window's close instead, it missed those that had ended in between): one that ends within
// the statement is found nowhere and counts as this database's, so holdWindow waits for it.
const heldLookup = `ARRAY(SELECT l.transactionid::text FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted AND l.transactionid::text IN (SELECT x FROM xip)
			AND a.datid <> (SELECT oid FROM pg_database WHERE datname = current_database())
		UNION SELECT transaction::text FROM pg_prepared_xacts WHERE transaction::text IN (SELECT x FROM xip) AND database <> current_database())`

// heldXip is the xids (without their epoch, as pg_locks shows them) of the snapshot s.snap.
const heldXip = `xip AS (SELECT (x::text::bigint % 4294967296)::text AS x FROM s, pg_snapshot_xip(s.snap) x)`

// The transactions a table's window waits for are bounded by c.maxHeld: past it the window opens
// at the slot's restart_lsn instead, and the log says so. That fallback gives up ending the keys
// deleted in the gap whose last event lies past the restart_lsn, while holding one more
// transaction costs only a map entry and one more xid in the probe's list (probeHeld). So the
// bound is what the server itself allows: every backend that can hold a transaction id, and every
// prepared transaction (heldBoundSQL, read at start), which a database's open transactions
// cannot exceed; the fallback is left for a window whose close snapshot is unknown. It was a
// fixed 64, which a pool of a hundred idle-in-transaction sessions passed.
const heldBoundSQL = `current_setting('max_connections')::int + current_setting('max_prepared_transactions')::int +
	current_setting('autovacuum_max_workers')::int + current_setting('max_worker_processes')::int`

// maxHeld, when above 0, is the bound instead of the server's: for a test only
// (TestWindowPastMaxHeldOpensAtTheSlotsRestartLSN sets it low, not to open hundreds of
// connections).
var maxHeld = 0

// A transaction of this database open across a table's whole snapshot (heldAcross) may have
// inserted a row before the window's opening position that reaches the stream only after the
// window closed (TestTransactionOpenAcrossAChunkWindow). Its changes of the table will lower the
// window (noteChange), so the window is not written until the stream has passed the end of every
// such transaction: held, the window waits in c.held while streaming and the next tables' chunks
// go on. A held transaction's commit comes through the stream; one that aborts, or commits
// without a change of a published table, never does (pgoutput skips empty transactions), so the
// capture asks Postgres which have ended (probeHeld) and writes a marker into the log in the same
// statement: when the marker comes back, every transaction that had ended before it has passed.
// Until then the manifest keeps the window lowered to the slot's restart_lsn at its close
// (cautious), which a capture killed meanwhile writes when it starts again: Postgres keeps
// restart_lsn at or below the first change of every transaction that commits after the slot's
// confirmed position, which had not moved past the high watermark.

// heldWindow is a table's window whose close waits for transactions held across its snapshot.
type heldWindow struct {
	w        *window
	sw       *bronze.SnapshotWindow // the window as written once released (its OpenLSN then)
	xids     map[uint32]bool        // the held transactions the stream has not passed the end of
	cautious pglogrepl.LSN          // the slot's restart_lsn at the close
	recorded bool                   // its table's snapshot is in the manifest, with the cautious window
}

// heldProbe is a marker in flight: the held transactions that had ended when it was written.
type heldProbe struct {
	id    string
	ended []uint32
}

// heldMarker is the prefix of the capture's held-transaction markers (logical decoding messages).
const heldMarker = "fin-capture-held"

// holdWindow decides how the window of ch, the last chunk of its table, closes: at once when no
// transaction of this database was open across the table's whole snapshot; held (the returned
// heldWindow) until the stream passes the end of those that were; at the slot's restart_lsn when
// that cannot be known (no close snapshot) or too many were (c.maxHeld). A resumed snapshot does
// not know its first read's open transactions: it holds for every one of this database open at
// its close (heldAcross), a superset.
func (c *capturer) holdWindow(ctx context.Context, ch *chunk) (*heldWindow, error) {
	w := ch.win
	held, unknown := w.heldAcross(ch.closeSnap)
	xids := map[uint32]bool{}
	for _, x := range held {
		if !ch.closeOthers[x] {
			xids[x] = true
		}
	}
	if !unknown && len(xids) == 0 {
		return nil, nil
	}
	restart, err := c.slotRestart(ctx, w)
	if err != nil {
		return nil, err
	}
	if unknown || len(xids) > c.maxHeld {
		c.log.Info("snapshot window opened at the slot's restart_lsn: a transaction open across the table's snapshot may have changed it before",
			"table", w.table, "open_lsn", w.open.String(), "restart_lsn", restart.String(), "held", len(xids), "max_held", c.maxHeld)
		w.lower(restart)
		return nil, nil
	}
	c.log.Info("snapshot window held until the transactions open across the table's snapshot have ended", "table", w.table, "held", len(xids),
		"max_held", c.maxHeld, "xids", slices.Sorted(maps.Keys(xids)))
	return &heldWindow{w: w, xids: xids, cautious: restart}, nil
}

// slotRestart is the slot's restart_lsn.
func (c *capturer) slotRestart(ctx context.Context, w *window) (pglogrepl.LSN, error) {
	var text string
	if err := c.meta.QueryRow(ctx, "SELECT restart_lsn::text FROM pg_replication_slots WHERE slot_name = $1", c.cfg.Slot).Scan(&text); err != nil {
		return 0, fmt.Errorf("capture: snapshot window of %s: read slot %s's restart_lsn: %w", w.table, c.cfg.Slot, err)
	}
	lsn, err := pglogrepl.ParseLSN(text)
	if err != nil {
		return 0, fmt.Errorf("capture: snapshot window of %s: restart_lsn %q: %w", w.table, text, err)
	}
	return lsn, nil
}

// heldEnded takes xid off the held windows: the stream has passed its end.
func (c *capturer) heldEnded(xid uint32) {
	for _, hw := range c.held {
		delete(hw.xids, xid)
	}
}

// How often the capture asks which held transactions have ended: every heldProbeEvery at first,
// doubling while none has, up to heldProbeMax (a session left idle in a transaction for hours
// costs a lookup every few seconds).
const (
	heldProbeEvery = 250 * time.Millisecond
	heldProbeMax   = 5 * time.Second
)

// probeHeld asks which held transactions have ended (no backend holds their id's lock, none is
// prepared: a transaction's lock goes after its commit is in the log) and, if any has, writes a
// marker into the log in the same statement; its transaction commits after theirs.
func (c *capturer) probeHeld(ctx context.Context) error {
	if c.probe != nil || time.Since(c.probedAt) < max(c.probeWait, heldProbeEvery) {
		return nil
	}
	var xids []string
	for _, hw := range c.held {
		for x := range hw.xids {
			xids = append(xids, strconv.FormatUint(uint64(x), 10))
		}
	}
	if len(xids) == 0 {
		return nil
	}
	c.probedAt = time.Now()
	id := uuid.NewString()
	var ended []string
	err := c.meta.QueryRow(ctx, `WITH ended AS (SELECT ARRAY(SELECT x FROM unnest($1::text[]) x EXCEPT
			(SELECT transactionid::text FROM pg_locks WHERE locktype = 'transactionid' AND mode = 'ExclusiveLock' AND granted AND transactionid::text = ANY($1)
			UNION SELECT transaction::text FROM pg_prepared_xacts WHERE transaction::text = ANY($1))) AS xids)
		SELECT xids, CASE WHEN cardinality(xids) > 0 THEN pg_logical_emit_message(true, '`+heldMarker+`', $2)::text END FROM ended`,
		xids, id).Scan(&ended, nil)
	if err != nil {
		return fmt.Errorf("capture: ask which transactions held across a snapshot window have ended: %w", err)
	}
	if len(ended) == 0 {
		c.probeWait = min(2*max(c.probeWait, heldProbeEvery), heldProbeMax)
		return nil
	}
	c.probeWait = heldProbeEvery
	p := &heldProbe{id: id}
	for _, x := range ended {
		n, err := strconv.ParseUint(x, 10, 32)
		if err != nil {
			return fmt.Errorf("capture: held transaction %q: %w", x, err)
		}
		p.ended = append(p.ended, uint32(n))
	}
	c.probe = p
	return nil
}

// heldMarked handles a held-transaction marker met in the stream: everything that ended before it
// was written has passed.
func (c *capturer) heldMarked(content []byte) {
	if c.probe == nil || string(content) != c.probe.id {
		return // another run's, or another capture's
	}
	for _, x := range c.probe.ended {
		c.heldEnded(x)
	}
	c.probe = nil
}

// releaseHeld writes the held windows whose transactions have all passed and whose table's
// snapshot the manifest records (before that, applyProgress writes them with it), and takes their
// cautious form out of the manifest.
func (c *capturer) releaseHeld(ctx context.Context) error {
	n := 0
	for _, hw := range c.held {
		if len(hw.xids) > 0 || !hw.recorded {
			c.held[n] = hw
			n++
			continue
		}
		hw.sw.OpenLSN = int64(hw.w.open)
		if err := c.writeWindow(ctx, hw.sw); err != nil {
			return err
		}
		c.manifest.HeldWindows = slices.DeleteFunc(c.manifest.HeldWindows, func(o bronze.SnapshotWindow) bool {
			return o.ID == hw.sw.ID && o.Schema == hw.sw.Schema && o.Table == hw.sw.Table && o.CloseLSN == hw.sw.CloseLSN
		})
		c.manifestDirty, c.manifestSaved = false, time.Now()
		if err := c.saveManifest(ctx); err != nil {
			return err
		}
	}
	if n < len(c.held) {
		clear(c.held[n:])
		c.held = c.held[:n]
		c.cfg.Metrics.WindowsHeld.Store(int64(n))
	}
	return nil
}

// recordHeld is applyProgress meeting the completion of a held window's table: a window whose
// transactions have passed is written now, with the others it returns; one still held goes into
// the manifest in its cautious form, written by the next start should the capture stop first.
func (c *capturer) recordHeld(hw *heldWindow) *bronze.SnapshotWindow {
	hw.recorded = true
	if len(hw.xids) == 0 {
		c.held = slices.DeleteFunc(c.held, func(o *heldWindow) bool { return o == hw })
		c.cfg.Metrics.WindowsHeld.Store(int64(len(c.held)))
		hw.sw.OpenLSN = int64(hw.w.open)
		return hw.sw
	}
	cautious := *hw.sw
	cautious.OpenLSN = min(int64(hw.w.open), int64(hw.cautious))
	c.manifest.HeldWindows = append(c.manifest.HeldWindows, cautious)
	return nil
}

// writeHeldWindows writes, at start, the windows a stopped capture held: in their cautious form.
func (c *capturer) writeHeldWindows(ctx context.Context) error {
	if len(c.manifest.HeldWindows) == 0 {
		return nil
	}
	for i := range c.manifest.HeldWindows {
		w := c.manifest.HeldWindows[i]
		c.log.Info("snapshot window held by the last run written opening at the slot's restart_lsn of its close", "table", w.Schema+"."+w.Table)
		if err := c.writeWindow(ctx, &w); err != nil {
			return err
		}
	}
	c.manifest.HeldWindows = nil
	return c.saveManifest(ctx)
}

func (w *window) lower(lsn pglogrepl.LSN) {
	if lsn != 0 && (w.open == 0 || lsn < w.open) {
		w.open = lsn
	}
}

// WindowPosition is a running table snapshot's window as the manifest keeps it, so a resumed
// snapshot still covers what its first run read.
type WindowPosition struct {
	OpenLSN  string    `json:"open_lsn,omitempty"`
	OpenedAt time.Time `json:"opened_at"`
	Rows     int64     `json:"rows"`
}

func (w *window) position() *WindowPosition {
	p := &WindowPosition{OpenedAt: w.openedAt, Rows: w.rows}
	if w.open != 0 {
		p.OpenLSN = w.open.String()
	}
	return p
}

func windowFrom(p *WindowPosition) *window {
	w := &window{openedAt: p.OpenedAt, rows: p.Rows}
	if lsn, err := pglogrepl.ParseLSN(p.OpenLSN); err == nil {
		w.open = lsn
	}
	return w
}

// recentRuns is how many recent (transaction, table) runs of changes the stream remembers: far
// more than transactions can be committed but not yet visible at one moment.
const recentRuns = 64

type recentRun struct {
	table string
	xid   uint32
	lsn   pglogrepl.LSN // the run's first change
}

// noteChange remembers a change of t and lowers the windows of t's running snapshots to it.
func (c *capturer) noteChange(t *table, xid uint32, lsn pglogrepl.LSN) {
	name := t.qualified()
	if last := &c.recent[(c.recentN+recentRuns-1)%recentRuns]; c.recentN == 0 || last.xid != xid || last.table != name {
		c.recent[c.recentN%recentRuns] = recentRun{table: name, xid: xid, lsn: lsn}
		c.recentN++
	}
	if c.inc != nil {
		for _, w := range c.inc.windows {
			if w.table == name {
				w.lower(lsn)
			}
		}
	}
	for _, hw := range c.held {
		if hw.xids[xid] && hw.w.table == name {
			hw.w.lower(lsn)
		}
	}
}

// lowerForRead lowers the window of the table whose first chunk ch is to the recent changes of
// it that ch's read did not see (all of them for an empty read, which kept no snapshot).
func (c *capturer) lowerForRead(w *window, ch *chunk) {
	if ch.snap.xip != nil {
		s := ch.snap
		w.first = &s
	}
	for i := 0; i < min(c.recentN, recentRuns); i++ {
		r := c.recent[i]
		if r.table == ch.name && (ch.n == 0 || !ch.snap.visible(r.xid)) {
			w.lower(r.lsn)
		}
	}
}

// writeWindow puts a completed table snapshot's window beside the data, before the manifest
// records the snapshot: a crash in between snapshots the table again, and the window stays true.
func (c *capturer) writeWindow(ctx context.Context, w *bronze.SnapshotWindow) error {
	if c.cfg.Manifest == nil {
		return nil
	}
	w.TopicPrefix = c.cfg.TopicPrefix
	s := c.manifest.Source
	w.Source = bronze.SourceID(strings.Join([]string{s.SystemID, s.Database, s.Slot, s.Publication}, "/"))
	key, body, err := w.Object()
	if err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	if err := c.writeStore(ctx, key, body); err != nil {
		return fmt.Errorf("capture: write snapshot window %s: %w", key, err)
	}
	c.log.Info("snapshot window written beside the data", "table", w.Schema+"."+w.Table, "key", key,
		"open_lsn", pglogrepl.LSN(w.OpenLSN).String(), "close_lsn", pglogrepl.LSN(w.CloseLSN).String(), "rows", w.Rows)
	return nil
}
