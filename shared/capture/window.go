package capture

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

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

// heldInOtherDatabases counts the transactions $1 (xids as text) that belong to another database
// of the cluster: held by a backend connected to it (pg_locks, and pg_stat_activity's datid, which
// any role may read), or prepared there. A snapshot's xip lists the whole cluster's transactions.
const heldInOtherDatabases = `SELECT count(DISTINCT x) FROM (
	SELECT l.transactionid::text AS x FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
	WHERE l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted AND l.transactionid::text = ANY($1)
		AND a.datid <> (SELECT oid FROM pg_database WHERE datname = current_database())
	UNION ALL
	SELECT transaction::text FROM pg_prepared_xacts WHERE transaction::text = ANY($1) AND database <> current_database()) o`

// lowerIfHeld lowers w to the slot's restart_lsn when a transaction of this database may have
// been open across the table's whole snapshot (heldAcross). A transaction of another database
// cannot have changed the table: on a cluster shared by several databases (other applications,
// or every engineer's test databases here) one is nearly always open, and lowering for it made
// the window end nothing (TestLakeThatMissedSharedSlotChangesIsSnapshottedAgain failed so in 2 to
// 4 runs of 10 under load; TestTransactionOfAnotherDatabaseLeavesTheWindow). A transaction found
// nowhere has just ended and counts as this database's.
func (c *capturer) lowerIfHeld(ctx context.Context, w *window, closeSnap *snapshot) error {
	held, unknown := w.heldAcross(closeSnap)
	if !unknown && len(held) == 0 {
		return nil
	}
	if !unknown {
		xids := make([]string, len(held))
		for i, x := range held {
			xids[i] = strconv.FormatUint(uint64(x), 10)
		}
		var elsewhere int
		if err := c.meta.QueryRow(ctx, heldInOtherDatabases, xids).Scan(&elsewhere); err != nil {
			c.log.Warn("snapshot window: the databases of the transactions open across it are unknown; it opens at the slot's restart_lsn", "table", w.table, "err", err)
		} else if elsewhere == len(xids) {
			return nil
		}
	}
	return c.lowerToSlot(ctx, w)
}

// lowerToSlot lowers w to the slot's restart_lsn: Postgres keeps it at or below the first change
// of every transaction that commits after the slot's confirmed position, which the capture has
// not moved past the high watermark being handled. A lower opening position ends fewer keys.
func (c *capturer) lowerToSlot(ctx context.Context, w *window) error {
	var text string
	if err := c.meta.QueryRow(ctx, "SELECT restart_lsn::text FROM pg_replication_slots WHERE slot_name = $1", c.cfg.Slot).Scan(&text); err != nil {
		return fmt.Errorf("capture: snapshot window of %s: read slot %s's restart_lsn: %w", w.table, c.cfg.Slot, err)
	}
	lsn, err := pglogrepl.ParseLSN(text)
	if err != nil {
		return fmt.Errorf("capture: snapshot window of %s: restart_lsn %q: %w", w.table, text, err)
	}
	c.log.Info("snapshot window opened at the slot's restart_lsn: a transaction open across the table's snapshot may have changed it before", "table", w.table, "open_lsn", w.open.String(), "restart_lsn", text)
	w.lower(lsn)
	return nil
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
	if err := c.cfg.Manifest.Write(ctx, key, body); err != nil {
		return fmt.Errorf("capture: write snapshot window %s: %w", key, err)
	}
	c.log.Info("snapshot window written beside the data", "table", w.Schema+"."+w.Table, "key", key,
		"open_lsn", pglogrepl.LSN(w.OpenLSN).String(), "close_lsn", pglogrepl.LSN(w.CloseLSN).String(), "rows", w.Rows)
	return nil
}
