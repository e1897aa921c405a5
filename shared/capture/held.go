package capture

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// A chunk read stops before a row that a transaction still open changed or locked, and reads it
// again later (heldOpen, probeLocked): an idle session that updated a row and never committed
// stalls its table's snapshot for as long as it stays open. That is logged, once the same row has
// held the reads up for heldLogAfter and then every heldLogEvery, with the backend to end.
const (
	heldLogAfter = 5 * time.Second
	heldLogEvery = 30 * time.Second
)

// heldRowHolders names the holders of the transactions $1 (xids as text): the backend whose
// transaction it is (pg_locks, which any role may read: every transaction holds the lock on its
// own id) with what it is doing (pg_stat_activity, empty where the role may not see it), and a
// prepared transaction, which no backend holds.
const heldRowHolders = `SELECT l.pid::text, coalesce(a.datname::text, ''), coalesce(a.state, ''), coalesce(a.application_name, ''),
		coalesce(a.usename::text, ''), coalesce(a.xact_start::text, ''), coalesce(left(a.query, 200), '')
	FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
	WHERE l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted AND l.transactionid::text = ANY($1)
	UNION ALL
	SELECT 'none', database::text, 'prepared (pg_prepared_xacts)', gid, owner::text, prepared::text, ''
	FROM pg_prepared_xacts WHERE transaction::text = ANY($1)`

// logHeld logs, rate-limited, which table and key range a deferred read (ch) waits for and which
// transaction holds it. The lookup is best effort: a failure is logged, the snapshot goes on.
func (c *capturer) logHeld(ctx context.Context, inc *incremental, ch *chunk) {
	now := time.Now()
	if now.Sub(inc.heldSince) < heldLogAfter || now.Sub(inc.heldLogged) < heldLogEvery {
		return
	}
	inc.heldLogged = now
	xids := []string{ch.heldXmax}
	if ch.heldMulti {
		// Several lockers: the row's xmax is a MultiXactId, whose members are the transactions.
		// (SQL cannot tell a MultiXactId from an xid; heldRowHolders keeps only transactions
		// still running, so a finished locker's xid read as a MultiXactId names nobody stale.)
		var members []string
		if err := c.meta.QueryRow(ctx, "SELECT coalesce(array_agg(xid::text), '{}') FROM pg_get_multixact_members($1::text::xid)", ch.heldXmax).Scan(&members); err == nil {
			xids = append(xids, members...)
		}
	}
	holders, err := c.heldBy(ctx, xids)
	if err != nil {
		holders = "not found: " + err.Error()
	}
	after := "the start"
	if inc.lastKey != nil {
		after = strings.Join(inc.lastKey, ",")
	}
	c.log.Warn("incremental snapshot waits for a row an open transaction holds: the table's snapshot goes on when that transaction ends (commit, roll back, or pg_terminate_backend(pid))",
		"table", ch.name, "after_key", after, "up_to_key", strings.Join(ch.maxKey, ","), "waiting", now.Sub(inc.heldSince).Round(time.Second).String(),
		"retries", inc.deferrals, "xmax", ch.heldXmax, "held_by", holders)
}

// heldBy describes the holders of xids, one "pid=... state=..." per holder.
func (c *capturer) heldBy(ctx context.Context, xids []string) (string, error) {
	rows, err := c.meta.Query(ctx, heldRowHolders, xids)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var pid, db, state, app, user, since, query string
		if err := rows.Scan(&pid, &db, &state, &app, &user, &since, &query); err != nil {
			return "", err
		}
		out = append(out, fmt.Sprintf("pid=%s database=%q state=%q application=%q user=%q xact_start=%q query=%q", pid, db, state, app, user, since, query))
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	if len(out) == 0 {
		return "no open transaction with that id (it has just ended)", nil
	}
	return strings.Join(out, "; "), nil
}
