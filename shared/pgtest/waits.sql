-- What a logical slot being created in database :'database' waits for on the cluster: each
-- transaction id it waits for, with the backend holding it (a new logical slot waits for every
-- transaction that held an id when its creation began, in any database). Only slot creations (a
-- walsender, or pg_create_logical_replication_slot): an ordinary row lock wait between the
-- database's own transactions is progress a wait must still see stall. One line a wait.
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
    AND (wa.backend_type = 'walsender' OR wa.query ILIKE '%pg_create_logical_replication_slot%')
ORDER BY w.pid, h.pid;
