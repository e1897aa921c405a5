package capture_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/fin-orchestrator/fin-orchestrator/shared/capture"
)

// stallReport says what the capture and the cluster were doing when a wait on the capture gave
// up: its positions, the slot, its walsender, every transaction open on the cluster (any
// database: a slot's decoding and snapshots are cluster-wide), the capture's goroutines and the
// end of its log.
func (h *harness) stallReport(m *capture.Metrics, logs *logBuffer) string {
	var b strings.Builder
	fmt.Fprintf(&b, "capture: received %s confirmed %s server %s events %d snapshotting %v chunks %d rows %d completed %d\n",
		lsn(m.ReceivedLSN.Load()), lsn(m.ConfirmedLSN.Load()), lsn(m.ServerLSN.Load()), m.Events.Load(), m.Snapshotting.Load(),
		m.SnapshotChunks.Load(), m.SnapshotRows.Load(), m.SnapshotsCompleted.Load())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	query := func(title, sql string, args ...any) {
		rows, err := h.db.Pool.Query(ctx, sql, args...)
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", title, err)
			return
		}
		defer rows.Close()
		fmt.Fprintf(&b, "%s:\n", title)
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				fmt.Fprintf(&b, "  %v\n", err)
				return
			}
			fmt.Fprintf(&b, "  %v\n", vals)
		}
	}
	query("slot (active, restart_lsn, confirmed_flush_lsn, server WAL, WAL behind restart)", `SELECT active, restart_lsn::text, confirmed_flush_lsn::text,
		pg_current_wal_lsn()::text, pg_size_pretty(pg_current_wal_lsn() - restart_lsn) FROM pg_replication_slots WHERE slot_name = $1`, h.cfg.Slot)
	query("walsender (state, sent, write, flush)", `SELECT r.state, r.sent_lsn::text, r.write_lsn::text, r.flush_lsn::text
		FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE s.slot_name = $1`, h.cfg.Slot)
	query("open transactions on the cluster (db, pid, app, state, xid, xmin, age, wait, query)", `SELECT datname, pid, application_name, state,
		backend_xid::text, backend_xmin::text, round(extract(epoch FROM clock_timestamp() - xact_start)::numeric, 1),
		coalesce(wait_event_type || ':' || wait_event, ''), left(regexp_replace(query, '\s+', ' ', 'g'), 120)
		FROM pg_stat_activity WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() ORDER BY xact_start`)
	var dump bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&dump, 1)
	b.WriteString("capture goroutines:\n")
	for _, g := range strings.Split(dump.String(), "\n\n") {
		if strings.Contains(g, "shared/capture.") {
			b.WriteString(g + "\n\n")
		}
	}
	if logs != nil {
		l := logs.String()
		b.WriteString("log tail:\n" + l[max(0, len(l)-4000):])
	}
	return b.String()
}

func lsn(v uint64) string { return fmt.Sprintf("%X/%X", v>>32, uint32(v)) }
