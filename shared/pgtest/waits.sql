-- What the backends of database :'database' wait for on the cluster: each transaction id one of
-- them waits for, with the backend holding it (a new logical slot waits for every transaction
-- that held an id when its creation began, in any database). One line a wait; none: no wait.
-- Read by pgtest.Waits and by scripts/lib.sh (psql -v database=NAME -f); keep it one query.
SELECT format('pid %s (%s) waits for xid %s of pid %s (database %s, %s, application %s, open %s s: %s)',
    w.pid, wa.backend_type, w.transactionid, h.pid, coalesce(ha.datname::text, '?'), coalesce(ha.state, '?'),
    coalesce(ha.application_name, ''), coalesce(extract(epoch FROM now() - ha.xact_start)::int::text, '?'),
    left(regexp_replace(coalesce(ha.query, ''), '\s+', ' ', 'g'), 120))
FROM pg_locks w
JOIN pg_stat_activity wa ON wa.pid = w.pid
JOIN pg_locks h ON h.locktype = 'transactionid' AND h.transactionid = w.transactionid AND h.granted
    AND h.mode = 'ExclusiveLock'
LEFT JOIN pg_stat_activity ha ON ha.pid = h.pid
WHERE w.locktype = 'transactionid' AND NOT w.granted AND wa.datname = :'database'
ORDER BY w.pid, h.pid;
