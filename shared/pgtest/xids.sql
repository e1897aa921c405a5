-- The open transactions of the cluster that hold a transaction id and have been open for a second
-- or more, oldest first, at most 20: what holds a new logical slot for long (the many short ones
-- of a busy neighbour come and go). One line each. Read by pgtest.OpenXids and by scripts/lib.sh
-- (psql -f); keep it one query.
SELECT format('pid %s (database %s, %s, application %s, xid %s, open %s s: %s)',
    pid, coalesce(datname::text, '?'), coalesce(state, '?'), coalesce(application_name, ''), backend_xid,
    coalesce(extract(epoch FROM now() - xact_start)::int::text, '?'), left(regexp_replace(coalesce(query, ''), '\s+', ' ', 'g'), 120))
FROM pg_stat_activity
WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid() AND xact_start < now() - interval '1 second'
ORDER BY xact_start
LIMIT 20;
