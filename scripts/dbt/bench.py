"""Benchmark: an incremental dbt build after 1% new changes, beside a full refresh of the same
data in the same run (target: the incremental build takes at most 15% of the full refresh).

  bench.py WORKDIR [TRANSACTIONS]       (FIN_BENCH_DBT_COLD=1: a fresh dbt process per build)

dbt runs the way shared/dbtrun runs it: one warm worker (shared/dbtrun/worker.py) serves every
build. Each build is reported in wall time, dbt's own elapsed time and CPU time (the CPU ratio
barely depends on other load on the machine), with the time outside dbt's run and the models'
and tests' node times; both builds' run results are left in WORKDIR.

RAW events for ~1,000,000 transactions (with their account balance updates, before and after
images, as the capture emits them) are generated inside DuckDB, with balances that really are the
running sums of the postings, so every dbt test passes on them.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[2]
DBT = str(Path(sys.executable).with_name("dbt"))
START_US = 1_795_000_000_000_000  # 2026-11-18
STEP_US = 2_500_000  # one transaction every 2.5 s: 1M transactions span about 29 days

# The RAW tables as the loader writes them: one row per change event, each table's events in log
# order with their Kafka offsets (one partition per topic).
GENERATE = """
create schema if not exists raw;
create or replace table raw.{table} as
select 'fin.public.{table}' as topic, 0 as "partition", "offset", key, op, lsn, tx_id, commit_ts_us, event_ts_ms,
    snapshot, 'public' as source_schema, '{table}' as source_table, before :: json as before, after :: json as after,
    _object_key, _loaded_at
from ({events});
"""

# Debezium's BEGIN and END of every streamed transaction (docs/capture.md), in commit order on one
# partition, each in the load of its transaction's events: what gold.cut reads.
METADATA = """
create or replace table raw.transaction_metadata as
with streamed as (
    select tx_id, commit_ts_us - commit_ts_us % 1000 as commit_ms_us, lsn, _object_key, _loaded_at
    from (select * from raw.customers union all select * from raw.accounts union all select * from raw.transactions)
    where snapshot = 'false'
),
txs as (
    select tx_id, commit_ms_us, min(lsn) - 1 as begin_lsn, max(lsn) + 1 as end_lsn, count(*) as events,
        max(_object_key) as _object_key, max(_loaded_at) as _loaded_at,
        row_number() over (order by max(lsn)) as n
    from streamed group by tx_id, commit_ms_us
)
select 'fin.transaction_metadata' as topic, 0 as "partition", 2 * n - 2 + b.is_end as "offset",
    json_object('id', tx_id || ':' || case when b.is_end = 1 then end_lsn else begin_lsn end) :: varchar as key,
    case when b.is_end = 1 then 'END' else 'BEGIN' end as op,
    case when b.is_end = 1 then end_lsn else begin_lsn end as lsn, tx_id, commit_ms_us as commit_ts_us,
    commit_ms_us // 1000 as event_ts_ms, null as snapshot, null as source_schema, null as source_table,
    null::json as before,
    json_object('status', case when b.is_end = 1 then 'END' else 'BEGIN' end,
        'event_count', case when b.is_end = 1 then events end, 'ts_ms', commit_ms_us // 1000) as after,
    _object_key, _loaded_at
from txs, (select 0 as is_end union all select 1) as b
"""

# A UUIDv7's text as Postgres prints it (shared/database/migrations/0040_uuidv7.sql): 48 bits of
# Unix ms, version 7, the sub-ms fraction in 12 bits, variant 10, then 62 bits that are random in
# the database and here a hash of the row's number and kind, so every run makes the same ids. The
# time first matters: DuckDB's zone maps keep a string's first 8 bytes, so ids that share them
# (as sequential made-up ones did) let no lookup skip a row group.
UUID7 = """
create or replace temp macro uuid7(us, seed, kind) as lower(
    substr(lpad(to_hex(us // 1000), 12, '0'), 1, 8) || '-' || substr(lpad(to_hex(us // 1000), 12, '0'), 9, 4)
    || '-7' || lpad(to_hex((us % 1000) * 4096 // 1000), 3, '0') || '-'
    || substr(to_hex((hash(seed, kind) >> 2) | 9223372036854775808::ubigint), 1, 4) || '-'
    || substr(to_hex((hash(seed, kind) >> 2) | 9223372036854775808::ubigint), 5, 12))
"""

ISO = "strftime(make_timestamp({us}), '%Y-%m-%dT%H:%M:%S.%fZ')"


def generate(con, n: int, accounts: int, batch_size: int = 0, batches: int = 1):
    """Writes the RAW tables: batch 0 is n transactions, then `batches` loads of batch_size more
    each (default: one load of n/100, 1% new changes), the first with 1% of the customers
    updated. _loaded_at and _object_key ('bronze/bench-<batch>') tell the loads apart; every
    load is later than the last commit it holds.

    Built for 10M transactions (32.5M events): everything per row that needs a sort or a window
    (balances, versions, offsets, the before image's updated_at) is computed on narrow tables
    first, and the JSON images, as the capture writes them (compact, keys in column order), are
    concatenated from text in one pass over rows already in log order."""
    batch_size = batch_size or max(n // 100, 1)
    extra = batch_size * batches
    customers = accounts // 2
    loads_us = max(START_US + 40 * 86400 * 1_000_000, START_US + (n + extra) * STEP_US + 86400 * 1_000_000)
    snap_iso = ISO.format(us=START_US - 1_000_000)
    con.execute(f"""
    create or replace temp table txn as
    select
        i,
        case when i < {n} then 0 else 1 + (i - {n}) // {batch_size} end as batch,
        case when h % 4 < 2 then 'DEPOSIT' when h % 4 = 2 then 'WITHDRAWAL' else 'TRANSFER' end as kind,
        a as acct,
        (a + 1 + (h >> 20) % ({accounts} - 1)) % {accounts} as rel,
        cast(cast((h >> 8) % 50000 + 100 as decimal(18,0)) * 0.01 as decimal(18,2)) as amount,
        {START_US} + i * {STEP_US} as commit_us
    from (select i, hash(i) as h, hash(i * 31 + 7) % {accounts} as a from range({n + extra}) t(i));

    create or replace temp table legs as
    with raw_legs as (
        select i, batch, acct as account, case kind when 'DEPOSIT' then amount else -amount end as delta, commit_us
        from txn
        union all
        select i, batch, rel, amount, commit_us from txn where kind = 'TRANSFER'
    ),
    numbered as (
        select *,
            -- shared/bank updates the accounts in id order, then inserts the ledger row
            100000000 + i * 16 + row_number() over (partition by i order by account) as lsn,
            sum(delta) over (partition by account order by i rows unbounded preceding) as balance,
            row_number() over (partition by account order by i) + 1 as version,
            lag(commit_us) over (partition by account order by i) as before_us
        from raw_legs
    )
    select *, {accounts} + row_number() over (order by lsn) - 1 as "offset"
    from numbered order by lsn;
    """)
    con.execute(UUID7)
    # Ids as the database makes them (UUIDv7 of the row's insert time), in the order of the row
    # numbers (shared/bank updates accounts in id order): customer c at 4c ms, account a at 2a + 1,
    # after its customer (a // 2), from a minute before the snapshot; a transaction at its commit.
    # The accounts' and customers' are made once, into lists looked up by number: the change log
    # names an account five times a row, and uuid7 costs about 6x a lookup.
    made_ms = START_US // 1000 - 60_000
    con.execute(f"""
    create or replace temp table ids as select
        (select list(uuid7(({made_ms} + 2 * a + 1) * 1000, a, 'account') order by a) from range({accounts}) t(a)) as accounts,
        (select list(uuid7(({made_ms} + 4 * c) * 1000, c, 'customer') order by c) from range({customers}) t(c)) as customers
    """)
    acct_id = "(select accounts from ids)[cast({0} as bigint) + 1]"
    cust_id = "(select customers from ids)[cast({0} as bigint) + 1]"
    txn_id = "id"
    account_image = lambda bal, ver, upd: f"""'{{"account_id":"' || {acct_id.format('account')}
        || '","customer_id":"' || {cust_id.format('account // 2')}
        || '","account_type":"CHECKING","currency":"USD","nickname":null,"balance":"' || cast(cast({bal} as decimal(18,2)) as varchar)
        || '","status":"ACTIVE","created_at":"' || {snap_iso} || '","updated_at":"' || {upd} || '","version":' || ({ver}) || '}}'"""
    tail = lambda load: f"""'bronze/bench-' || {load} as _object_key,
        timezone('UTC', make_timestamp({loads_us} + {load} * 3600000000::bigint)) as _loaded_at"""
    snapshot_accounts = f"""
        select account as "offset", '{{"account_id":"' || {acct_id.format('account')} || '"}}' as key,
            'r' as op, 1000 + account as lsn, 1 as tx_id, {START_US - 1_000_000} as commit_ts_us,
            {START_US // 1000 - 1000} as event_ts_ms, 'true' as snapshot, null as before, {account_image('0', 1, snap_iso)} as after,
            {tail(0)}
        from range({accounts}) t(account)"""
    updates = f"""
        select "offset", '{{"account_id":"' || {acct_id.format('account')} || '"}}' as key,
            'u' as op, lsn, 1000 + i as tx_id, commit_us as commit_ts_us, commit_us // 1000 + 5 as event_ts_ms,
            'false' as snapshot,
            {account_image('balance - delta', 'version - 1', f"coalesce({ISO.format(us='before_us')}, {snap_iso})")} as before,
            {account_image('balance', 'version', ISO.format(us='commit_us'))} as after,
            {tail('batch')}
        from legs"""
    transactions = f"""
        select i as "offset", '{{"transaction_id":"' || {txn_id} || '"}}' as key,
            'c' as op, 100000000 + i * 16 + 8 as lsn, 1000 + i as tx_id, commit_us as commit_ts_us,
            commit_us // 1000 + 5 as event_ts_ms, 'false' as snapshot, null as before,
            '{{"transaction_id":"' || {txn_id} || '","account_id":"' || {acct_id.format('acct')}
            || '","transaction_type":"' || kind || '","amount":"' || cast(amount as varchar) || '","currency":"USD","related_account_id":'
            || case when kind = 'TRANSFER' then '"' || {acct_id.format('rel')} || '"' else 'null' end
            || ',"status":"COMPLETED","description":"bench","category":null,"reverses_transaction_id":null,"created_at":"'
            || iso || '","updated_at":"' || iso || '","version":1}}' as after,
            {tail('batch')}
        from (select *, {ISO.format(us='commit_us')} as iso, uuid7(commit_us, i, 'transaction') as id from txn order by i)"""
    customer_image = lambda city, ver, upd: f"""json_object('customer_id', {cust_id.format('c')}, 'first_name', 'Bench',
        'last_name', 'Customer ' || c, 'email', 'c' || c || '@example.com', 'address_line', '1 Main St',
        'city', {city}, 'postal_code', '12345', 'country', 'US', 'closed_at', null,
        'created_at', {ISO.format(us=START_US - 2_000_000)}, 'updated_at', {upd}, 'version', {ver})"""
    moved_us = START_US + (n + extra) * STEP_US
    customers_sql = f"""
        select row_number() over (order by lsn) - 1 as "offset", *
        from (
            select json_object('customer_id', {cust_id.format('c')}) :: varchar as key, 'r' as op, 500 + c as lsn,
                1 as tx_id, {START_US - 2_000_000} as commit_ts_us, {START_US // 1000 - 2000} as event_ts_ms,
                'true' as snapshot, null::json as before, {customer_image("'Springfield'", 1, ISO.format(us=START_US - 2_000_000))} as after,
                {tail(0)}
            from range({customers}) t(c)
            union all
            select json_object('customer_id', {cust_id.format('c')}) :: varchar, 'u', {100000000 + (n + extra) * 16} + c,
                5000000 + c, {moved_us} + c, {moved_us // 1000} + c, 'false',
                {customer_image("'Springfield'", 1, ISO.format(us=START_US - 2_000_000))},
                {customer_image("'Shelbyville'", 2, ISO.format(us=f'{moved_us} + c'))},
                {tail(1)}
            from range(0, {customers}, 100) t(c))
        order by lsn"""
    for table, events in (("customers", customers_sql), ("accounts", f"{snapshot_accounts} union all {updates}"),
                          ("transactions", transactions)):
        con.execute(GENERATE.format(table=table, events=events))
    con.execute(METADATA)
    # no incremental snapshot completed: the capture's window records, none
    con.execute("create table if not exists raw.snapshot_windows as select * from raw.customers limit 0")


class Worker:
    """Runs dbt the way shared/dbtrun does: one warm worker process (shared/dbtrun/worker.py)
    with dbt imported, one request per build; or, with cold=True, a fresh `dbt` process per build
    (the runner's fallback, and what it did before the worker)."""

    def __init__(self, workdir: Path, db: Path, cold: bool, project: Path = ROOT / "dbt"):
        self.workdir, self.cold, self.project = workdir, cold, project
        # As the local runtime runs it: no log file of dbt's own and one dbt thread per core (at
        # most 4), unless the environment says otherwise.
        defaults = {"DBT_LOG_LEVEL_FILE": "none", "DBT_THREADS": str(min(len(os.sched_getaffinity(0)), 4))}
        self.env = {**defaults, **os.environ, "WAREHOUSE_PATH": str(db), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
                    "DBT_USE_COLORS": "false"}
        self.proc, self.timings = None, ""
        if not cold:
            replies_r, replies_w = os.pipe()
            self.proc = subprocess.Popen(
                [sys.executable, "-u", str(ROOT / "shared" / "dbtrun" / "worker.py"), str(replies_w)],
                cwd=self.project, env=self.env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, text=True, pass_fds=(replies_w,))
            os.close(replies_w)
            self.replies = os.fdopen(replies_r)

    def args(self, *extra: str) -> list[str]:
        return ["build", "--project-dir", str(self.project), "--profiles-dir", str(self.project),
                "--target-path", str(self.workdir / "target"), "--log-path", str(self.workdir / "logs"),
                "--target", "duckdb", *extra]

    def cpu(self) -> float:
        """CPU seconds dbt has used so far (user + system, all its threads): unlike wall time,
        barely affected by other work on the machine."""
        if self.cold:
            ru = resource.getrusage(resource.RUSAGE_CHILDREN)
            return ru.ru_utime + ru.ru_stime
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def build(self, *extra: str) -> tuple[float, float, dict]:
        """Runs dbt build; returns (wall seconds, CPU seconds, run_results)."""
        cpu = self.cpu()
        started = time.monotonic()
        if self.cold:
            proc = subprocess.run([DBT, *self.args(*extra)], cwd=self.project, env=self.env,
                                  capture_output=True, text=True)
            ok, why = proc.returncode == 0, proc.stdout[-3000:]
        else:
            self.proc.stdin.write(json.dumps({"args": self.args(*extra), "env": self.env,
                                              "run_results": str(self.workdir / "target" / "run_results.json")}) + "\n")
            self.proc.stdin.flush()
            reply = json.loads(self.replies.readline() or '{"success": false, "error": "the worker died"}')
            ok, why = reply["success"], reply["error"]
            self.timings = reply.get("timings", "")
        wall = time.monotonic() - started
        cpu = self.cpu() - cpu
        results = self.workdir / "target" / "run_results.json"
        if not results.exists():
            sys.exit(f"dbt build {' '.join(extra)} wrote no {results}: {why}")
        rr = json.loads(results.read_text())
        if not ok:
            # status and message tell a test that found rows ("fail") from one that could not run
            # ("error", e.g. DuckDB out of memory)
            bad = "\n".join(f"  {r['status']}: {r['unique_id']}: {r.get('message') or ''}"
                             for r in rr["results"] if r["status"] in ("error", "fail"))
            sys.exit(f"dbt build {' '.join(extra)} failed:\n{bad}\n{why}")
        return wall, cpu, rr

    def close(self):
        if self.proc:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


def phases(wall: float, cpu: float, rr: dict) -> str:
    """Where a build's time went: outside dbt's run (start-up, parsing), and inside it the
    models' and the tests' node times (summed over dbt's threads, so they overlap)."""
    node = lambda kind: sum(r["execution_time"] for r in rr["results"] if r["unique_id"].startswith(kind))
    built = sum(1 for r in rr["results"] if r["unique_id"].startswith("model.") and r["status"] == "success")
    tests = sum(1 for r in rr["results"] if r["unique_id"].startswith("test."))
    return (f"{wall:7.1f}s wall, {rr['elapsed_time']:7.1f}s in dbt, {cpu:6.1f}s CPU ({wall - rr['elapsed_time']:4.1f}s start-up and "
            f"parsing; node times: {built} models {node('model.'):5.1f}s, {tests} tests {node('test.'):5.1f}s)")


def main():
    workdir = Path(sys.argv[1]).resolve()
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    db = workdir / "warehouse.duckdb"

    started = time.monotonic()
    con = duckdb.connect(str(db))
    generate(con, n, accounts=20_000)
    counts = {t: con.execute(f"select count(*), count(*) filter (where _object_key = 'bronze/bench-1') from raw.{t}").fetchone()
              for t in ("customers", "accounts", "transactions", "transaction_metadata")}
    # Set the second load aside, so the first build sees only the first.
    con.execute("create schema if not exists bench")
    for t in counts:
        con.execute(f"create or replace table bench.{t} as select * from raw.{t} where _object_key = 'bronze/bench-1'")
        con.execute(f"delete from raw.{t} where _object_key = 'bronze/bench-1'")
    con.close()
    total = sum(c[0] for t, c in counts.items() if t != "transaction_metadata")
    new = sum(c[1] for t, c in counts.items() if t != "transaction_metadata")
    print(f"generated {total:,} RAW change events ({counts['transactions'][0]:,} transactions) in "
          f"{time.monotonic() - started:.0f}s; the second load holds {new:,} ({100 * new / (total - new):.1f}% new)")

    cold = os.environ.get("FIN_BENCH_DBT_COLD") == "1"
    dbt = Worker(workdir, db, cold)
    print(f"dbt runs {'as a fresh process per build' if cold else 'in one warm worker (shared/dbtrun/worker.py)'}; "
          f"DBT_THREADS={dbt.env['DBT_THREADS']}")
    try:
        print(f"first build (all RAW rows):         {phases(*dbt.build())}")

        con = duckdb.connect(str(db))
        for t in counts:
            con.execute(f"insert into raw.{t} select * from bench.{t}")
        con.close()

        inc_wall, inc_cpu, inc = dbt.build()
        full_wall, full_cpu, full = dbt.build("--full-refresh")
    finally:
        dbt.close()
    print(f"incremental dbt build after 1%:     {phases(inc_wall, inc_cpu, inc)}")
    print(f"reference: dbt build --full-refresh {phases(full_wall, full_cpu, full)}")
    print(f"ratio incremental / full refresh:   {inc_wall / full_wall:7.1%} wall, "
          f"{inc['elapsed_time'] / full['elapsed_time']:7.1%} in dbt, {inc_cpu / full_cpu:7.1%} CPU (target <= 15%); "
          f"load average {os.getloadavg()[0]:.1f}")
    for name, rr in (("incremental", inc), ("full-refresh", full)):
        (workdir / f"run_results.{name}.json").write_text(json.dumps(rr))


if __name__ == "__main__":
    main()
