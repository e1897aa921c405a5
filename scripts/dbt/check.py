"""Checks the dbt project against real warehouses with fixture change events.

  check.py duckdb WORKDIR      SCD2 history across two runs, incremental == full refresh,
                               money tests failing on purpose-broken data, dbt docs generate
  check.py snowflake WORKDIR   the same models with dbt-snowflake against a fakesnow server

Expected history is derived from the fixture's own events (raw_events.py), never written out by
hand. Every dbt command runs through listing_race.py, so a build whose threads look RAW up while
dbt is still listing it reads it half-listed (the race behind a flake of incremental == full
refresh; dbt/macros/relations_cache.sql). Prints one line per check and "N passed, N failed" at
the end; exits 1 on any failure.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import raw_events

ROOT = Path(__file__).resolve().parents[2]
DBT_DIR = ROOT / "dbt"
# dbt's CLI with RAW's listing half done whenever two node threads look it up (listing_race.py):
# the interleaving behind a flake of "incremental runs equal a full refresh", forced in every build.
DBT = [sys.executable, str(Path(__file__).with_name("listing_race.py"))]
LOAD_1 = datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc)
LOAD_2 = datetime(2026, 11, 25, 11, 0, tzinfo=timezone.utc)
LOAD_3 = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)

results: list[tuple[str, bool, str]] = []


def check(name: str, ok: bool, detail: str = ""):
    results.append((name, ok, detail))
    print(f"{'PASS' if ok else 'FAIL'} {name}" + ("" if ok else f": {detail}"), flush=True)


def dbt(workdir: Path, env: dict, *args: str) -> tuple[int, dict]:
    """Runs dbt in dbt/ and returns its exit code and {node name: status} from run_results.json."""
    target = workdir / "target"
    cmd = [*DBT, *args, "--profiles-dir", str(DBT_DIR), "--target-path", str(target),
           "--log-path", str(workdir / "logs")]
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=DBT_DIR, env={**os.environ, **env}, capture_output=True, text=True)
    took = time.monotonic() - started
    statuses = {}
    rr = target / "run_results.json"
    if rr.exists():
        for r in json.loads(rr.read_text())["results"]:
            statuses[r["unique_id"].split(".")[-2] if r["unique_id"].startswith("test.")
                     else r["unique_id"].split(".")[-1]] = r["status"]
    print(f"  dbt {' '.join(args)}: exit {proc.returncode} in {took:.1f}s", flush=True)
    if proc.returncode != 0:
        (workdir / "last-dbt-output.txt").write_text(proc.stdout + proc.stderr)
    return proc.returncode, statuses


def manifest(workdir: Path) -> dict:
    """The project's models from the manifest of the last dbt command, by unique id."""
    nodes = json.loads((workdir / "target" / "manifest.json").read_text())["nodes"]
    return {k: v for k, v in nodes.items() if v["resource_type"] == "model"}


def catalog_comment_sql(table: str, column: str | None) -> str:
    """DuckDB's comment on a table or view (column None) or on one of its columns."""
    if column is None:
        return (f"select comment from duckdb_tables() where table_name = '{table}' "
                f"union all select comment from duckdb_views() where view_name = '{table}'")
    return f"select comment from duckdb_columns() where table_name = '{table}' and column_name = '{column}'"


def failed(statuses: dict) -> list[str]:
    return sorted(n for n, s in statuses.items() if s in ("fail", "error"))


def expected_history(events: list, table: str) -> dict:
    """{key: [(lsn, valid_from_us, valid_to_us|None, is_deleted, image)]} from the change events:
    versions ordered by lsn then offset, a redelivered (key, lsn) counted once."""
    key_field = raw_events.KEYS[table]
    per_key: dict = {}
    for e in sorted((e for e in events if e["source_table"] == table), key=lambda e: (e["lsn"], e["offset"])):
        image = json.loads(e["before"] if e["op"] == "d" else e["after"])
        versions = per_key.setdefault(image[key_field], [])
        if versions and versions[-1][0] == e["lsn"]:
            continue
        versions.append([e["lsn"], e["commit_ts_us"], None, e["op"] == "d", image])
    for versions in per_key.values():
        for v, nxt in zip(versions, versions[1:]):
            v[2] = nxt[1]
    return per_key


def us(t) -> int | None:
    return None if t is None else int(t)


def compare_history(name: str, rows: list, expected: dict, field: str):
    """rows: (key, lsn, valid_from, valid_to, is_deleted, is_current, field value)."""
    got = {}
    for key, lsn, vf, vt, deleted, current, value in rows:
        got.setdefault(key, []).append((int(lsn), us(vf), us(vt), bool(deleted), bool(current),
                                        None if value is None else str(value)))
    want = {}
    for key, versions in expected.items():
        want[key] = [(lsn, vf, vt, deleted, vt is None, None if img.get(field) is None else str(img[field]))
                     for lsn, vf, vt, deleted, img in versions]
    for key in sorted(set(got) | set(want)):
        g, w = sorted(got.get(key, [])), want.get(key, [])
        if g != w:
            check(name, False, f"key {key}: warehouse has {g}, the change log says {w}")
            return
    check(name, True)


def duckdb_execute(path: Path, *statements: str):
    """Runs statements on the DuckDB file at path, writing."""
    import duckdb

    con = duckdb.connect(str(path))
    try:
        for sql in statements:
            con.execute(sql)
    finally:
        con.close()


def duckdb_rows(path: Path, sql: str) -> list:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


# Times as microseconds since the epoch, computed by the warehouse ({us} is its function).
HISTORY_SQL = {
    "customers": "select customer_id, lsn, {us}(effective_from), {us}(effective_to), is_deleted, is_current, last_name from gold.dim_customers",
    "accounts": "select account_id, lsn, {us}(effective_from), {us}(effective_to), is_deleted, is_current, balance from gold.dim_accounts",
}
FIELD = {"customers": "last_name", "accounts": "balance"}
US = {"duckdb": "epoch_us({})", "snowflake": "extract(epoch_microsecond from {})"}


def history_sql(table: str, dialect: str) -> str:
    return re.sub(r"\{us\}\((\w+)\)", lambda m: US[dialect].format(m.group(1)), HISTORY_SQL[table])

# Every relation the project builds, compared row for row between incremental and full refresh.
RELATIONS = ["silver.stg_customers_changes", "silver.stg_accounts_changes", "silver.stg_transactions_changes",
             "silver.stg_customers", "silver.stg_accounts", "silver.stg_transactions",
             "silver.customers_history", "silver.accounts_history",
             "silver.customers_in_cut", "silver.accounts_in_cut", "gold.dim_customers", "gold.dim_accounts",
             "gold.fct_transactions", "gold.fct_postings", "gold.fct_daily_account_balances"]


def normalized(rows) -> list:
    return sorted(tuple(None if v is None else str(v) for v in r) for r in rows)


BUILT_AT = set(RELATIONS)


def snapshot_relations(fetch) -> dict:
    # _built_at is when a row was written: the one column where the two builds must differ.
    return {r: sorted(map(repr, fetch(f"select * exclude (_built_at) from {r}" if r in BUILT_AT else f"select * from {r}"))) for r in RELATIONS}


def compare_relations(name: str, a: dict, b: dict):
    diffs = [r for r in RELATIONS if a[r] != b[r]]
    check(name, not diffs, "differ after an incremental run and a full refresh: " + ", ".join(
        f"{r} ({len(a[r])} vs {len(b[r])} rows)" for r in diffs))


def duckdb_daily_balances(workdir: Path, *loads) -> list:
    """fct_daily_account_balances built by dbt-duckdb from the same loads, for comparison."""
    db = workdir / "compare.duckdb"
    raw = raw_events.DuckDBRaw(str(db))
    raw.create()
    for i, events in enumerate(loads):
        raw.load(events, [LOAD_1, LOAD_2, LOAD_3][i], f"bronze/load-{i + 1}")
    raw.close()
    dbt(workdir / "duckdb", {"DBT_TARGET": "duckdb", "WAREHOUSE_PATH": str(db)}, "run")
    return duckdb_rows(db, "select * exclude (_built_at) from gold.fct_daily_account_balances")


def load_raw(db: Path, events: list, loaded_at: datetime, object_key: str, create: bool = False):
    """Loads events into the RAW tables of the DuckDB file db (creating them first if create)."""
    raw = raw_events.DuckDBRaw(str(db))
    if create:
        raw.create()
    raw.load(events, loaded_at, object_key)
    raw.close()


def run_duckdb(workdir: Path):
    log, first, second = raw_events.scenario()
    db = workdir / "warehouse.duckdb"
    env = {"DBT_TARGET": "duckdb", "WAREHOUSE_PATH": str(db)}
    load_raw(db, first, LOAD_1, "bronze/load-1", create=True)

    code, st = dbt(workdir, env, "build")
    check("duckdb: first build passes every model and test", code == 0, f"failed: {failed(st)}")
    for table in ("customers", "accounts"):
        compare_history(f"duckdb: {table} history after the first load",
                        duckdb_rows(db, history_sql(table, "duckdb")), expected_history(first, table), FIELD[table])

    raw = raw_events.DuckDBRaw(str(db))
    raw.load(second, LOAD_2, "bronze/load-2")
    raw.close()
    logged = (workdir / "logs" / "dbt.log").stat().st_size
    code, st = dbt(workdir, env, "build")
    check("duckdb: incremental build passes every model and test", code == 0, f"failed: {failed(st)}")
    touched_keys_computed_once(workdir, logged)
    cut_read_once(workdir, logged)
    for table in ("customers", "accounts"):
        compare_history(f"duckdb: {table} history has every version after an incremental run",
                        duckdb_rows(db, history_sql(table, "duckdb")),
                        expected_history(first + second, table), FIELD[table])
    ada = log.uuid("customer-ada")
    n = duckdb_rows(db, f"select count(*) from gold.dim_customers where customer_id = '{ada}' and effective_from >= '2026-11-25'")[0][0]
    check("duckdb: three changes of one customer between two runs are three versions", n == 3, f"got {n}")
    cy = log.uuid("customer-cy")
    got = duckdb_rows(db, f"select is_deleted, is_current from gold.dim_customers where customer_id = '{cy}' order by lsn")
    check("duckdb: a deleted and re-inserted customer has insert, delete, new version",
          got == [(False, False), (True, False), (False, True)], f"got {got}")

    incremental = snapshot_relations(lambda sql: duckdb_rows(db, sql))
    code, st = dbt(workdir, env, "build", "--full-refresh")
    check("duckdb: full refresh passes", code == 0, f"failed: {failed(st)}")
    compare_relations("duckdb: incremental runs equal a full refresh", incremental,
                      snapshot_relations(lambda sql: duckdb_rows(db, sql)))
    log_order(db, "a full refresh")

    # persist_docs (dbt/macros/duckdb_catalog.sql writes only the comments that differ): the
    # model docs are in the catalog after a full refresh, on tables and on the gold views, and an
    # incremental build puts back a comment that no longer matches them.
    models = {n["name"]: n for n in manifest(workdir).values()}
    documented = (("accounts_history", None), ("stg_accounts_changes", "lsn"), ("dim_accounts", "balance"),
                  ("dim_accounts", None))

    def docs_in_catalog(when: str):
        for table, column in documented:
            want = models[table]["description"] if column is None else models[table]["columns"][column]["description"]
            got = duckdb_rows(db, catalog_comment_sql(table, column))
            check(f"duckdb: {when}, the docs of {table}{'.' + column if column else ''} are its comment in the catalog",
                  bool(want) and got == [(want,)], f"catalog has {got}, docs say {want!r}")

    docs_in_catalog("after a full refresh")
    duckdb_execute(db, "comment on column silver.stg_accounts_changes.lsn is 'stale'",
                   "comment on table silver.accounts_history is 'stale'", "comment on view gold.dim_accounts is 'stale'")
    code, st = dbt(workdir, env, "build", "--select", "stg_accounts_changes", "accounts_history", "dim_accounts")
    check("duckdb: an incremental build after comments went stale passes", code == 0, f"failed: {failed(st)}")
    docs_in_catalog("after an incremental build")

    # on_schema_change='fail' (the same macro file's one-query check): a target whose columns
    # no longer match the model fails the incremental build instead of loading into it.
    for change, undo in (("add column stray integer", "drop column stray"),
                         ("alter column lsn type varchar", "alter column lsn type bigint")):
        duckdb_execute(db, f"alter table silver.stg_customers_changes {change}")
        code, st = dbt(workdir, env, "build", "--select", "stg_customers_changes")
        out = (workdir / "last-dbt-output.txt").read_text() if code else ""
        check(f"duckdb: an incremental model whose table changed ({change}) fails its build",
              code != 0 and st.get("stg_customers_changes") == "error" and "out of sync" in out, f"exit {code}, {st}")
        duckdb_execute(db, f"alter table silver.stg_customers_changes {undo}")

    code, _ = dbt(workdir, env, "docs", "generate")
    check("duckdb: dbt docs generate", code == 0 and (workdir / "target" / "catalog.json").exists())

    bad = workdir / "broken.duckdb"
    raw = raw_events.DuckDBRaw(str(bad))
    raw.create()
    raw.load(raw_events.broken(), LOAD_1, "bronze/broken")
    raw.close()
    benv = {"DBT_TARGET": "duckdb", "WAREHOUSE_PATH": str(bad)}
    code, st = dbt(workdir, benv, "run")
    check("broken money: every model still builds", code == 0, f"failed: {failed(st)}")
    code, st = dbt(workdir, benv, "test")
    bad_tests = failed(st)
    check("broken money: dbt test fails", code != 0)
    for want in ("column_checks_stg_transactions_changes", "transfer_legs_net_to_zero",
                 "balances_match_postings"):
        check(f"broken money: {want} fails", any(t.startswith(want) for t in bad_tests),
              f"failing tests were {bad_tests}")
    # the folded column checks name the column, the check and a failing row
    msg = messages(workdir).get("column_checks_stg_transactions_changes", "")
    check("broken money: the failure names the amount that is not exact money",
          re.search(r"amount not_null: 1 row \(e\.g\. [0-9a-f-]+@\d+\)", msg) is not None, f"message {msg!r}")
    later_balances(workdir)
    gap_reread_balances(workdir)
    gap_streamed_balances(workdir)
    gap_update_postings(workdir)
    daily_balances_follow_the_change(workdir)
    history_reads_current_rows_apart(workdir)
    histories_close_in_place(workdir)
    daily_balances_change_in_place(workdir)


def scan_filters(db: Path, sql: str) -> list[tuple[str, dict]]:
    """Runs sql on the DuckDB file with DuckDB's profiler and returns each table scan's table
    and extra_info (its filters, and the join filters DuckDB pushed into it at run time)."""
    import duckdb

    out = db.with_suffix(".profile.json")
    con = duckdb.connect(str(db))
    try:
        con.execute(f"set enable_profiling = 'json'; set profiling_output = '{out}'")
        con.execute(sql).fetchall()
        con.execute("pragma disable_profiling")
    finally:
        con.close()
    scans = []

    def walk(node):
        info = node.get("extra_info") or {}
        if "SCAN" in (node.get("operator_name") or node.get("operator_type") or "").upper() and "Table" in info:
            scans.append((info["Table"], info))
        for child in node.get("children", []):
            walk(child)
    walk(json.loads(out.read_text()))
    return scans


def history_reads_current_rows_apart(workdir: Path):
    """accounts_history's incremental build finds each batch key's current version through
    is_current, read on its own (scd2_history's current_rows): joined with the batch's keys in
    the scan, DuckDB pushed the keys' least and greatest into it and compared every version's key
    with them before is_current chose the few (0.23 s of CPU at 12.5 M versions, the largest
    growth with history of that model). Run on a load's batch, the history's is_current scans
    carry no join filter on the key."""
    log, first, second = raw_events.scenario()
    db = workdir / "current-apart.duckdb"
    env = {"DBT_TARGET": "duckdb", "WAREHOUSE_PATH": str(db)}
    load_raw(db, first, LOAD_1, "bronze/load-1", create=True)
    code, st = dbt(workdir, env, "run", "--select", "stg_accounts_changes", "accounts_history")
    raw = raw_events.DuckDBRaw(str(db))
    raw.load(second, LOAD_2, "bronze/load-2")
    raw.close()
    code2, st2 = dbt(workdir, env, "run", "--select", "stg_accounts_changes")
    code3, _ = dbt(workdir, env, "compile", "--select", "accounts_history")
    ok = code == 0 and code2 == 0 and code3 == 0
    check("duckdb: accounts_history compiles on a load's batch", ok, f"failed: {failed(st)} {failed(st2)}")
    if not ok:
        return
    sql = (workdir / "target" / "compiled" / "fin_orchestrator" / "models" / "history" / "accounts_history.sql").read_text()
    current = [info for table, info in scan_filters(db, sql)
               if table.endswith("accounts_history") and "is_current" in str(info.get("Filters", ""))]
    pushed = [info for info in current
              if any("account_id" in str(v) for k, v in info.items() if "filter" in k.lower())]
    check("duckdb: accounts_history reads the current versions without a join filter on the key",
          bool(current) and not pushed, f"is_current scans {current}")


# The histories and the versions within the cut, with their version key: an incremental build
# closes a version (valid_to, is_current) in place (history_closing in dbt/macros/incremental.sql).
CLOSED_IN_PLACE = (("silver.accounts_history", "version_key"), ("silver.customers_history", "version_key"),
                   ("silver.accounts_in_cut", "account_version_key"),
                   ("silver.customers_in_cut", "customer_version_key"))


def histories_close_in_place(workdir: Path):
    """A version the incremental build closes keeps its row (its rowid): updated in place, not
    deleted and inserted again. Deleted rows in the recent row groups made DuckDB's vacuum at
    checkpoint merge the table's last three or four row groups whole, build after build
    (docs/dbt.md, What grows with history)."""
    log, first, second = raw_events.scenario()
    db = workdir / "in-place.duckdb"
    env = {"DBT_TARGET": "duckdb", "WAREHOUSE_PATH": str(db)}
    load_raw(db, first, LOAD_1, "bronze/load-1", create=True)
    code, st = dbt(workdir, env, "run")
    rows = lambda table, key: {r[0]: r[1:] for r in duckdb_rows(db, f"select {key}, rowid, is_current from {table}")}
    before = {table: rows(table, key) for table, key in CLOSED_IN_PLACE}
    raw = raw_events.DuckDBRaw(str(db))
    raw.load(second, LOAD_2, "bronze/load-2")
    raw.close()
    code2, st2 = dbt(workdir, env, "run")
    check("duckdb: two runs for the versions closed in place", code == 0 and code2 == 0,
          f"failed: {failed(st)} {failed(st2)}")
    for table, key in CLOSED_IN_PLACE:
        after = rows(table, key)
        closed = [k for k, (_, current) in before[table].items() if current and k in after and not after[k][1]]
        moved = [k for k in closed if after[k][0] != before[table][k][0]]
        check(f"duckdb: the incremental build closes {table}'s versions in place",
              bool(closed) and not moved, f"{len(closed)} closed, {len(moved)} of them rewritten elsewhere: {moved[:3]}")


def daily_balances_change_in_place(workdir: Path):
    """A row of fct_daily_account_balances an incremental build changes keeps its place (its
    rowid: updated, not deleted and inserted again at the table's end), and a row the batch holds
    unchanged is not written at all (it keeps the _built_at of the build that wrote it). Two
    loads: the second posts again to one account on the first load's day (its row of that day
    changes) and, the next day, to another, which rewrites that account from the first day (its
    row of that day comes out the same); a third account, written first, does not change. The
    strategy's delete and insert moved every row of the batch, and those deletes in the recent
    row groups made DuckDB's vacuum rewrite them whole, load after load (docs/dbt.md, What grows
    with history)."""
    log = raw_events.Log(start=datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc))
    owner = log.new_customer("ines", "Ines", "Inplace")
    still = log.new_account("still", owner)
    same = log.new_account("same-day", owner)
    next_day = log.new_account("next-day", owner)
    log.post("in-place-0", "DEPOSIT", still, "1.00")
    log.post("in-place-1", "DEPOSIT", same, "10.00")
    log.post("in-place-2", "DEPOSIT", next_day, "4.00")
    first = log.take()
    log.tick(3600)
    log.post("in-place-3", "DEPOSIT", same, "2.50")
    log.tick(86400)
    log.post("in-place-4", "DEPOSIT", next_day, "1.00")
    second = log.take()
    db = workdir / "daily-in-place.duckdb"
    env = {"DBT_TARGET": "duckdb", "WAREHOUSE_PATH": str(db)}
    load_raw(db, first, LOAD_1, "bronze/in-place-1", create=True)
    code, st = dbt(workdir, env, "build")
    table = "gold.fct_daily_account_balances"

    def rows():
        got = duckdb_rows(db, f"select account_day_key, rowid, _built_at, * exclude (_built_at) from {table}")
        return {r[0]: (r[1], r[2], r[3:]) for r in got}
    before = rows()
    load_raw(db, second, LOAD_2, "bronze/in-place-2")
    code2, st2 = dbt(workdir, env, "build")
    check("daily in place: two builds pass", code == 0 and code2 == 0, f"failed: {failed(st)} {failed(st2)}")
    after = rows()
    kept = [k for k in before if k in after]
    changed = [k for k in kept if after[k][2] != before[k][2]]
    moved = [k for k in kept if after[k][0] != before[k][0]]
    rewritten = [k for k in kept if k not in changed and after[k][1] != before[k][1]]
    check("daily in place: the incremental build changes a day's row in place and leaves the same ones",
          changed == [f"{same}@2026-11-24"] and not moved and not rewritten,
          f"changed {changed} of {len(kept)}; moved (deleted and inserted again): {moved}; "
          f"the same but written again: {rewritten}")


# Tables whose reads and deletes are bounded by lsn: the warehouse skips a block by its lsn range
# only when the table's rows are in log order (a window's partitions order them by key).
LOG_ORDER = ("silver.stg_accounts_changes", "silver.stg_customers_changes", "silver.stg_transactions_changes",
             "silver.accounts_history", "silver.customers_history", "silver.accounts_in_cut",
             "silver.customers_in_cut", "gold.fct_postings")


def log_order(db: Path, when: str):
    for table in LOG_ORDER:
        back = duckdb_rows(db, f"select count(*) from (select lsn < lag(lsn) over (order by rowid) as back "
                               f"from {table}) as t where back")[0][0]
        check(f"duckdb: {when} writes {table} in log order", back == 0, f"{back} rows below the row before them")


def later_balances(workdir: Path):
    """balances_match_postings on an incremental build checks from each account's checkpoint
    (silver.balance_checkpoints): it fails on a balance a cent off its postings that entered
    after the checkpoint, it does read the checkpoint (one made wrong fails a build whose
    balances are right), and a failed build takes no checkpoint, so the next build, though it
    posts only to another account, fails again. A warehouse built before its first posting
    (the checkpoints empty, not missing) takes its checkpoints from the first build that posts."""
    for name, cent_off, tamper, empty_first in (
            ("a balance a cent off, checked from its checkpoint", True, False, False),
            ("a checkpoint a cent off, balances right", False, True, False),
            ("balances right, checked from their checkpoints", False, False, False),
            ("balances right, first built before any posting", False, False, True)):
        db = workdir / f"later-{cent_off}-{tamper}-{empty_first}.duckdb"
        env = {"DBT_TARGET": "duckdb", "WAREHOUSE_PATH": str(db)}
        loads = raw_events.later_deposit(cent_off)
        want_fail = cent_off or tamper
        held_sql = "select account_id, lsn from silver.balance_checkpoints order by account_id"
        held = []
        if empty_first:
            raw = raw_events.DuckDBRaw(str(db))
            raw.create()
            raw.close()
            code, st = dbt(workdir, env, "build")
            check(f"{name}: the build of an empty RAW passes", code == 0, f"exit {code}, failed: {failed(st)}")
        for i, (events, at) in enumerate(zip(loads, (LOAD_1, LOAD_2, LOAD_2 + timedelta(hours=1)))):
            raw = raw_events.DuckDBRaw(str(db))
            if i == 0 and not empty_first:
                raw.create()
            raw.load(events, at, f"bronze/later-{i + 1}")
            raw.close()
            code, st = dbt(workdir, env, "build")
            tests = failed(st)
            if i == 0:
                held = duckdb_rows(db, held_sql)
                check(f"{name}: the first build passes and takes a checkpoint per account",
                      code == 0 and len(held) == 2, f"exit {code}, failed: {tests}, checkpoints {held}")
                if tamper:
                    duckdb_execute(db, "update silver.balance_checkpoints set total = total + 0.01"
                                   " where lsn = (select min(lsn) from silver.balance_checkpoints)")
                continue
            if i == 1 and not want_fail:
                first_versions_read(workdir, db, name)
            build = "the incremental build" if i == 1 else "the next, posting to the other account only,"
            check(f"{name}: {build} {'fails' if want_fail else 'passes'}",
                  (code != 0) == want_fail and all(t.startswith("balances_match_postings") for t in tests)
                  and bool(tests) == want_fail, f"exit {code}, failing: {tests}")
        now = duckdb_rows(db, held_sql)
        moved = sum(1 for a, b in zip(held, now) if b[1] > a[1])
        check(f"{name}: the checkpoints {'stayed' if want_fail else 'moved on'}",
              moved == (0 if want_fail else 2), f"first {held}, now {now}")


def first_versions_read(workdir: Path, db: Path, name: str):
    """balances_match_postings asks whether an account's first update in range is its first version
    (its insert missed): it read every version of every account the build posted to to find
    each one's first (5.9 M versions at 10 M transactions), though the checkpoints know a version
    of each already (first_lsn). The accounts it still looks up, from the build's compiled test,
    are none when every account posted to has a checkpoint below the build's versions."""
    sql = next((workdir / "target" / "compiled").rglob("balances_match_postings_*.sql")).read_text()
    body = sql[sql.index("with affected as"):sql.index("\nselect\n    c.account_id, c.lsn, c.tx_id")]
    looked_up = duckdb_rows(db, body + "\nselect account_id from first_versions")
    check(f"{name}: the incremental build looks up no first version the checkpoints know", not looked_up,
          f"looked up {looked_up}")


def build_log(workdir: Path, logged: int) -> str:
    """The debug log of the build whose log starts at offset logged."""
    with open(workdir / "logs" / "dbt.log", "rb") as f:
        f.seek(logged)
        return f.read().decode()


def cut_read_once(workdir: Path, logged: int):
    """cut_lsn() is asked by every node that takes rows up to the cut (the *_in_cut models, the
    facts, the checkpoints and the tests within the cut): the build's cut is read once per build
    (once_per_build in dbt/macros/cut.sql), at most once per dbt thread (threads that ask at
    the same moment each read it), not once per node (8 reads)."""
    n = build_log(workdir, logged).count("select max(lsn) as cut_lsn from")
    threads = int(os.environ.get("DBT_THREADS", "4"))
    check("duckdb: an incremental build reads its cut's position once per dbt thread at most", 1 <= n <= threads,
          f"read {n} times by {threads} threads")


def touched_keys_computed_once(workdir: Path, logged: int):
    """dimension_in_cut reads the keys it rewrites (starts) for two constants and for the batch:
    on DuckDB they are computed once per *_in_cut model, into a temporary table, not three times.
    Counted in the statements of the build whose log starts at offset logged."""
    n = build_log(workdir, logged).count("-- per key the history wrote since")
    check("duckdb: an incremental build computes each *_in_cut model's touched keys once", n == 2,
          f"computed {n} times by accounts_in_cut and customers_in_cut together")


def daily_balances_follow_the_change(workdir: Path):
    """An incremental build of fct_daily_account_balances rewrites only the accounts whose
    versions or postings entered gold, and carries every other account forward from its row on
    the last day it held: after a load that deletes one account later the same day and posts to
    another two days later, the third (quiet) account's row of the first day is the one the first
    build wrote, its two new days carry its balance, the deleted account's row is gone (named in
    the batch though it has no row left), the busy account's first day, rewritten the same, is
    not written again (daily_balances_change_in_place), and every relation equals a full refresh."""
    log = raw_events.Log(start=datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc))
    owner = log.new_customer("quinn", "Quinn", "Quiet")
    busy = log.new_account("busy", owner)
    quiet = log.new_account("quiet", owner)
    idle = log.new_account("idle", owner)
    log.post("busy-1", "DEPOSIT", busy, "10.00")
    log.post("quiet-1", "DEPOSIT", quiet, "7.00")
    first = log.take()
    log.tick(3600)
    log.delete_account(idle)
    log.tick(2 * 86400)
    log.post("busy-2", "DEPOSIT", busy, "5.00")
    second = log.take()
    db = workdir / "daily-follows.duckdb"
    env = {"DBT_TARGET": "duckdb", "WAREHOUSE_PATH": str(db)}
    load_raw(db, first, LOAD_1, "bronze/daily-1", create=True)
    code, st = dbt(workdir, env, "build")
    check("daily follows the change: the first build passes", code == 0, f"exit {code}, failed: {failed(st)}")
    load_raw(db, second, LOAD_2, "bronze/daily-2")
    code, st = dbt(workdir, env, "build")
    check("daily follows the change: the incremental build passes", code == 0, f"exit {code}, failed: {failed(st)}")
    # (account, day, closing balance, postings, written by this build)
    got = duckdb_rows(db, """
        select account_id, cast(balance_date as varchar), cast(closing_balance as varchar), postings,
            _built_at = (select max(_built_at) from gold.fct_daily_account_balances)
        from gold.fct_daily_account_balances order by 1, 2""")
    want = sorted([
        (busy, "2026-11-24", "10.00", 1, False), (busy, "2026-11-25", "10.00", 0, True),
        (busy, "2026-11-26", "15.00", 1, True),
        (quiet, "2026-11-24", "7.00", 1, False), (quiet, "2026-11-25", "7.00", 0, True),
        (quiet, "2026-11-26", "7.00", 0, True)])
    check("daily follows the change: only the accounts that changed are rewritten, the quiet one carried "
          "forward, the deleted one's day gone", got == want, f"got {got}, want {want}")
    incremental = snapshot_relations(lambda sql: duckdb_rows(db, sql))
    code, st = dbt(workdir, env, "build", "--full-refresh")
    check("daily follows the change: full refresh passes", code == 0, f"failed: {failed(st)}")
    compare_relations("daily follows the change: incremental runs equal a full refresh", incremental,
                      snapshot_relations(lambda sql: duckdb_rows(db, sql)))


def gap_reread_balances(workdir: Path):
    """balances_match_postings and a balance re-read in a gap (raw_events.gap_reread): the build
    that has the account's re-read and a later streamed posting, but not yet the gap's posting
    (the transactions' snapshot comes after), leaves the account for later instead of failing;
    once the transactions' window is loaded the account is checked, and a gap posting lost from
    the lake fails it."""
    for lose in (False, True):
        db = workdir / f"gap-reread-{lose}.duckdb"
        env = {"DBT_TARGET": "duckdb", "WAREHOUSE_PATH": str(db)}
        for i, events in enumerate(raw_events.gap_reread(lose)):
            raw = raw_events.DuckDBRaw(str(db))
            if i == 0:
                raw.create()
            raw.load(events, LOAD_1 + timedelta(minutes=i), f"bronze/gap-reread-{i + 1}")
            raw.close()
            if lose and i == 0:
                continue  # the case without a loss built the first two loads apart; here, the third
            code, st = dbt(workdir, env, "build")
            want_fail = lose and i == 2
            what = ["the first build", "the build before the gap's posting is loaded",
                    "the build with the transactions' snapshot" + (" lacking the gap's posting" if lose else "")][i]
            check(f"gap re-read{' (gap posting lost)' if lose else ''}: {what} {'fails' if want_fail else 'passes'}",
                  (code != 0) == want_fail and all(t.startswith("balances_match_postings") for t in failed(st)),
                  f"exit {code}, failing: {failed(st)}")


def gap_streamed_balances(workdir: Path):
    """balances_match_postings and a balance streamed after a gap, never re-read as a version
    (raw_events.gap_streamed): every build before the transactions' window, the first before any
    window of the gap is loaded, leaves the account for later instead of failing (its balance
    holds the gap's posting, which only the transactions' snapshot reads); the build with the
    transactions' snapshot checks it, and fails when the gap's posting was lost from the lake."""
    for lose in (False, True):
        db = workdir / f"gap-streamed-{lose}.duckdb"
        env = {"DBT_TARGET": "duckdb", "WAREHOUSE_PATH": str(db)}
        loads = raw_events.gap_streamed(lose)
        for i, events in enumerate(loads):
            load_raw(db, events, LOAD_1 + timedelta(minutes=i), f"bronze/gap-streamed-{i + 1}", create=i == 0)
            code, st = dbt(workdir, env, "build")
            want_fail = lose and i == len(loads) - 1
            what = ["the first build", "the build with the customers' reads and the streamed balance",
                    "the build with the windows of customers and accounts",
                    "the build with the transactions' snapshot" + (" lacking the gap's posting" if lose else "")][i]
            check(f"gap streamed{' (gap posting lost)' if lose else ''}: {what} {'fails' if want_fail else 'passes'}",
                  (code != 0) == want_fail and all(t.startswith("balances_match_postings") for t in failed(st)),
                  f"exit {code}, failing: {failed(st)}")


def gap_update_postings(workdir: Path):
    """A transfer made in a gap and updated before the snapshot that repairs the gap reads it
    (raw_events.gap_update): it posts once, at that update (its first event), whether the update
    is all the log shows of it or its row is read after it, and every build passes:
    balances_match_postings places the posting by the gap, so the accounts' balances re-read in
    the snapshot (which hold the transfer) match before the next posting."""
    for during, change in (("transactions", "reverse"), ("accounts", "reverse"), ("transactions", "describe")):
        log, loads, transfer = raw_events.gap_update(during, change)
        db = workdir / f"gap-update-{during}-{change}.duckdb"
        env = {"DBT_TARGET": "duckdb", "WAREHOUSE_PATH": str(db)}
        name = f"gap transfer {change}d in the {during} snapshot"
        for i, events in enumerate(loads):
            load_raw(db, events, LOAD_1 + timedelta(minutes=i), f"bronze/gap-update-{i + 1}", create=i == 0)
            code, st = dbt(workdir, env, "build")
            check(f"{name}: build {i + 1} passes every model and test", code == 0, f"exit {code}, failing: {failed(st)}")
        got = duckdb_rows(db, f"select leg, lsn from gold.fct_postings where transaction_id = '{transfer}' order by leg")
        first = log.versions[("transactions", transfer)][0]
        check(f"{name}: the transfer posts both legs once, at its first event", got == [(1, first), (2, first)],
              f"postings (leg, lsn) {got}, first event at {first}")
        torn = duckdb_rows(db, """
            select a.account_id, a.balance, sum(p.amount)
            from gold.dim_accounts as a left join gold.fct_postings as p on a.account_id = p.account_id
            where a.is_current group by a.account_id, a.balance having a.balance <> coalesce(sum(p.amount), 0)""")
        check(f"{name}: each account's balance in gold is the sum of its postings", not torn, f"differ: {torn}")


# fct_postings' full refresh of POSTINGS_TRANSACTIONS generated transactions within
# POSTINGS_MEMORY: found by a window, one partition per transaction, each one's first event did
# not fit in 128MB (that window does not spill); found by each one's least lsn, an aggregate that
# spills, it fits in 64MB (docs/benchmarks.md).
POSTINGS_TRANSACTIONS = 200_000
POSTINGS_MEMORY = "96MB"


def run_postings_memory(workdir: Path):
    """fct_postings' full refresh runs within a small memory limit: its parents are built first
    at the project's limit, then the model alone under DUCKDB_MEMORY_LIMIT (DuckDB's limit is
    the whole database's, so only a build of the model alone gives it the limit)."""
    import bench  # scripts/dbt/bench.py's generator, as dbt-history.sh makes its histories
    import duckdb

    db = workdir / "postings-memory.duckdb"
    con = duckdb.connect(str(db))
    bench.generate(con, POSTINGS_TRANSACTIONS, accounts=2_000)
    con.close()
    env = {"DBT_TARGET": "duckdb", "WAREHOUSE_PATH": str(db)}
    code, st = dbt(workdir, env, "run", "--select", "+fct_postings", "--exclude", "fct_postings")
    check("postings memory: fct_postings' parents build", code == 0, f"exit {code}, failing: {failed(st)}")
    code, st = dbt(workdir, {**env, "DUCKDB_MEMORY_LIMIT": POSTINGS_MEMORY}, "run", "--select", "fct_postings", "--full-refresh")
    rows = duckdb_rows(db, "select count(*) from gold.fct_postings")[0][0] if code == 0 else 0
    why = [line.strip() for line in (workdir / "last-dbt-output.txt").read_text().splitlines() if "Error" in line] if code else []
    check(f"postings memory: fct_postings' full refresh of {POSTINGS_TRANSACTIONS:,} transactions fits in {POSTINGS_MEMORY}",
          code == 0 and st.get("fct_postings") == "success" and rows > POSTINGS_TRANSACTIONS,
          f"exit {code}, {rows} postings: {'; '.join(why)[:400]}")


def bronze_key(source: str, table: str, first: int, last: int) -> str:
    """A bronze object key as the landing writes it (shared/bronze Key), of Kafka source source."""
    return f"bronze/{table}/dt=2026-11-25/fin.{table}-0-{first}-{last}-{source}.parquet"


# The cut a build computed (silver.build_cut), published to gold.cut only by a build of all of gold
BUILD_CUT = "select lsn from silver.build_cut"


def loads_after(start: datetime):
    """Load times a minute apart from start: each load after a build must carry a later _loaded_at
    than every row the build saw (the loader's contract), or the incremental models never read it."""
    return (start + timedelta(minutes=i) for i in itertools.count())


def run_cut_sources(workdir: Path):
    """gold.cut when a new Kafka source (a replaced cluster, the local broker after a restart)
    restarts the metadata topic's offsets at 0 and streams again from the slot's confirmed
    position: the cut moves on once the new source's run from offset 0 is loaded, and holds
    while its offset 0 is missing, while it has a hole, or while an older source has one."""
    _, first, second = raw_events.scenario()
    later = loads_after(LOAD_2)
    db = workdir / "cut-sources.duckdb"
    env = {"DBT_TARGET": "duckdb", "WAREHOUSE_PATH": str(db)}
    md = lambda events: [e for e in events if e.get("_raw") == raw_events.METADATA]  # noqa: E731
    last_end = lambda events: max(e["lsn"] for e in md(events) if e["op"] == "END")  # noqa: E731
    old, new = "0a1b2c3d", "4e5f6a7b"
    first_md = md(first)
    raw = raw_events.DuckDBRaw(str(db))
    raw.create()
    raw.load(first, LOAD_1, bronze_key(old, "all", 0, len(first_md) - 1))
    raw.close()
    code, st = dbt(workdir, env, "build", "--select", "+cut", "--indirect-selection", "cautious")
    check("cut: the first build of gold.cut passes", code == 0, f"failed: {failed(st)}")
    cut = lambda: duckdb_rows(db, BUILD_CUT)[0][0]  # noqa: E731
    first_cut = cut()
    check("cut: after the first load the cut is its last END", first_cut == last_end(first),
          f"{first_cut} vs {last_end(first)}")

    # The new source re-sends the last transaction of the old one (the slot was confirmed before
    # it), then the rest, its metadata at offsets from 0.
    resent = [dict(e, offset=i) for i, e in enumerate(first_md[-2:] + md(second))]
    assert resent[0]["op"] == "BEGIN" and resent[1]["op"] == "END" and resent[1]["lsn"] == first_cut
    raw = raw_events.DuckDBRaw(str(db))
    raw.load([e for e in second if e.get("_raw") != raw_events.METADATA], next(later), bronze_key(new, "events", 0, 99))
    raw.load(resent[2:], next(later), bronze_key(new, "metadata", 2, len(resent) - 1))
    raw.close()

    def build(what: str, want: int):
        code, st = dbt(workdir, env, "build", "--select", "+cut", "--indirect-selection", "cautious")
        check(f"cut: {what}", code == 0 and cut() == want, f"exit {code} {failed(st)}, cut {cut()}, want {want}")

    build("holds while the new source's offset 0 is missing", first_cut)
    raw = raw_events.DuckDBRaw(str(db))
    raw.load(resent[:1], next(later), bronze_key(new, "metadata", 0, 0))
    raw.close()
    build("holds while the new source has a hole (offset 1)", first_cut)
    stray = dict(resent[-1], offset=len(first_md) + 3)
    raw = raw_events.DuckDBRaw(str(db))
    raw.load(resent[1:2], next(later), bronze_key(new, "metadata", 1, 1))
    raw.load([stray], next(later), bronze_key(old, "metadata", stray["offset"], stray["offset"]))
    raw.close()
    build("holds while the old source has a hole", first_cut)
    # The old source's missing offsets arrive (it had carried the new source's first transactions
    # too before it stopped): its run is whole again. RAW is append-only, so the hole is filled,
    # not the stray record deleted (the cut's progress, cut_marks, keeps what it has read).
    filler = [dict(e, offset=len(first_md) + i) for i, e in enumerate(resent[2:5])]
    raw = raw_events.DuckDBRaw(str(db))
    raw.load(filler, next(later), bronze_key(old, "metadata", len(first_md), len(first_md) + 2))
    raw.close()
    build("moves to the new source's last END once its run from offset 0 is loaded", last_end(second))
    raw = raw_events.DuckDBRaw(str(db))
    raw.load([dict(resent[1], offset=0)], next(later), bronze_key("9c8d7e6f", "metadata", 0, 0))
    raw.close()
    build("never moves backwards (a newer source holding only an older END)", last_end(second))


def run_cut_marks_after_full_refresh(workdir: Path):
    """A full refresh passes nothing, so cut_marks then holds every metadata record; the next
    build drops the passed ones before carrying them (cut_marks.sql, dropped_held: 10M
    transactions ran out of memory at 512MB before). It must end where builds incremental
    throughout end: the same cut and the same records held."""
    _, first, second = raw_events.scenario()
    source = "2b3c4d5e"
    build = lambda env, *extra: dbt(workdir, env, "build", "--select", "+cut", "--indirect-selection", "cautious", *extra)  # noqa: E731
    records = "select source_id, md_offset, op, tx_id, lsn, commit_ts_us, event_count from silver.cut_marks where kind = 'record' order by all"
    ends = {}
    for how in ("incremental", "full refresh"):
        db = workdir / f"cut-marks-{how.replace(' ', '-')}.duckdb"
        env = {"DBT_TARGET": "duckdb", "WAREHOUSE_PATH": str(db)}
        raw = raw_events.DuckDBRaw(str(db))
        raw.create()
        raw.load(first, LOAD_1, bronze_key(source, "all", 0, 99))
        raw.close()
        codes = [build(env)[0]] if how == "incremental" else []
        raw = raw_events.DuckDBRaw(str(db))
        raw.load(second, LOAD_2, bronze_key(source, "all", 100, 199))
        raw.close()
        codes.append(build(env, *(["--full-refresh"] if how == "full refresh" else []))[0])
        held_before = len(duckdb_rows(db, records))
        codes.append(build(env)[0])
        ends[how] = (codes, held_before, duckdb_rows(db, BUILD_CUT), duckdb_rows(db, records))
    (codes_i, _, cut_i, rec_i), (codes_f, all_held, cut_f, rec_f) = ends["incremental"], ends["full refresh"]
    check("cut_marks: builds after a full refresh pass", set(codes_i + codes_f) == {0}, f"{codes_i} {codes_f}")
    check("cut_marks: a full refresh holds every record, the next build only those the cut needs",
          all_held == sum(1 for e in first + second if e.get("_raw") == raw_events.METADATA) and len(rec_f) < all_held,
          f"{all_held} then {len(rec_f)}")
    check("cut_marks: after a full refresh the next build ends as incremental builds do",
          cut_f == cut_i and rec_f == rec_i, f"cut {cut_f} vs {cut_i}; records {rec_f} vs {rec_i}")


def run_cut_old_tail(workdir: Path):
    """gold.cut when an older source's last metadata object is landed but not loaded yet while a
    newer source's run from offset 0 is: the old source's transactions whose END is missing have
    their events in RAW, and the cut stays below them until the END is loaded."""
    _, first, second = raw_events.scenario()
    later = loads_after(LOAD_2)
    db = workdir / "cut-old-tail.duckdb"
    env = {"DBT_TARGET": "duckdb", "WAREHOUSE_PATH": str(db)}
    md = lambda events: [e for e in events if e.get("_raw") == raw_events.METADATA]  # noqa: E731
    first_md, old, new = md(first), "1c2d3e4f", "5a6b7c8d"
    tail = first_md[-2:]  # the last transaction's BEGIN and END, the old source's last object
    assert [e["op"] for e in tail] == ["BEGIN", "END"]
    raw = raw_events.DuckDBRaw(str(db))
    raw.create()
    raw.load([e for e in first if e not in tail], LOAD_1, bronze_key(old, "all", 0, len(first_md) - 3))
    # the slot was confirmed past the old source's last END: the new one starts after it
    raw.load([dict(e, offset=i) for i, e in enumerate(md(second))], next(later), bronze_key(new, "metadata", 0, 99))
    raw.load([e for e in second if e.get("_raw") != raw_events.METADATA], next(later), bronze_key(new, "events", 0, 99))
    raw.close()
    code, st = dbt(workdir, env, "build", "--select", "+cut", "--indirect-selection", "cautious")
    cut = duckdb_rows(db, BUILD_CUT)[0][0] if code == 0 else None
    below = max(e["lsn"] for e in first_md[:-2] if e["op"] == "END")
    check("cut: stays below an older source's transaction whose END is not loaded yet",
          code == 0 and cut == below, f"exit {code} {failed(st)}, cut {cut}, want {below}")
    raw = raw_events.DuckDBRaw(str(db))
    raw.load(tail, next(later), bronze_key(old, "metadata", len(first_md) - 2, len(first_md) - 1))
    raw.close()
    code, st = dbt(workdir, env, "build", "--select", "+cut", "--indirect-selection", "cautious")
    cut = duckdb_rows(db, BUILD_CUT)[0][0] if code == 0 else None
    want = max(e["lsn"] for e in md(second) if e["op"] == "END")
    check("cut: moves to the last END once it is", code == 0 and cut == want, f"exit {code}, cut {cut}, want {want}")


def run_cut_selective(workdir: Path):
    """gold.cut under builds that follow loads: a build selects only what is downstream of the
    RAW tables its loads named, so a staged change log it leaves alone can lack rows RAW already
    holds. The cut counts a transaction whole only in the staged logs gold reads, so a build
    selected for the metadata alone holds the cut, and gold's balances still equal its postings."""
    _, first, second = raw_events.scenario()
    db = workdir / "cut-selective.duckdb"
    env = {"DBT_TARGET": "duckdb", "WAREHOUSE_PATH": str(db)}
    md = lambda events: [e for e in events if e.get("_raw") == raw_events.METADATA]  # noqa: E731
    last_end = lambda events: max(e["lsn"] for e in md(events) if e["op"] == "END")  # noqa: E731
    cut = lambda: duckdb_rows(db, "select lsn from gold.cut")[0][0]  # noqa: E731
    src = "7d6c5b4a"
    raw = raw_events.DuckDBRaw(str(db))
    raw.create()
    raw.load(first, LOAD_1, bronze_key(src, "all", 0, len(md(first)) - 1))
    raw.close()
    # The first build on a new warehouse follows the first load, of one table: the other staged
    # logs do not exist yet, and the cut builds and holds instead of failing.
    code, st = dbt(workdir, env, "build", "--select", "source:raw.transactions+")
    check("cut selective: a first build for one table's load builds the cut and holds it at 0",
          st.get("cut") == "success" and duckdb_rows(db, BUILD_CUT)[0][0] == 0, f"exit {code}, cut {st.get('cut')}")
    code, st = dbt(workdir, env, "build")
    check("cut selective: the first build passes", code == 0 and cut() == last_end(first),
          f"exit {code} {failed(st)}, cut {cut() if code == 0 else None}, want {last_end(first)}")
    # The second load's events and metadata are both in RAW, but the build asked for is the one a
    # metadata load requests: the staged logs of the other tables are not rebuilt.
    raw = raw_events.DuckDBRaw(str(db))
    raw.load(second, LOAD_2, bronze_key(src, "all", len(md(first)), len(md(first)) + len(md(second)) - 1))
    raw.close()
    code, st = dbt(workdir, env, "build", "--select", "source:raw.transaction_metadata+")
    check("cut selective: a metadata-only build holds the cut below what gold has not staged",
          code == 0 and cut() == last_end(first), f"exit {code} {failed(st)}, cut {cut()}, want {last_end(first)}")
    torn = duckdb_rows(db, """
        with posted as (select account_id, sum(amount) as total from gold.fct_postings group by account_id)
        select count(*) from gold.dim_accounts as a left join posted as p on a.account_id = p.account_id
        where a.is_current and a.balance <> coalesce(p.total, 0)""")[0][0]
    check("cut selective: after it every current balance in gold equals its postings", torn == 0,
          f"{torn} accounts differ")
    code, st = dbt(workdir, env, "build", "--select",
                   "source:raw.customers+ source:raw.accounts+ source:raw.transactions+")
    check("cut selective: the build for the events' tables moves the cut on", code == 0 and cut() == last_end(second),
          f"exit {code} {failed(st)}, cut {cut()}, want {last_end(second)}")


# Readers' view of gold as of gold.cut: accounts whose current balance in gold.dim_accounts differs
# from the sum of their postings in gold.fct_postings, the postings filtered by {postings}.
READER_TORN = """
    with posted as (select account_id, sum(amount) as total from gold.fct_postings where {postings} group by account_id)
    select count(*) from gold.dim_accounts as a left join posted as p on a.account_id = p.account_id
    where a.is_current and a.balance <> coalesce(p.total, 0)"""
AS_OF_CUT = "end_lsn <= (select lsn from gold.cut)"


def run_cut_publish(workdir: Path):
    """gold.cut is published last: a build stopped between models (a model failing after others
    committed, or the tables built from the cut left out) publishes nothing, and readers, who go
    by gold.cut, still see the previous cut whole while silver.build_cut and fct_postings are ahead."""
    _, first, second = raw_events.scenario()
    db = workdir / "cut-publish.duckdb"
    env = {"DBT_TARGET": "duckdb", "WAREHOUSE_PATH": str(db)}
    ends = lambda events: max(e["lsn"] for e in events if e.get("_raw") == raw_events.METADATA and e["op"] == "END")  # noqa: E731
    published = lambda: duckdb_rows(db, "select lsn from gold.cut")  # noqa: E731
    computed = lambda: duckdb_rows(db, BUILD_CUT)[0][0]  # noqa: E731
    raw = raw_events.DuckDBRaw(str(db))
    raw.create()
    raw.load(first, LOAD_1, "bronze/load-1")
    raw.close()
    code, st = dbt(workdir, env, "build")
    check("cut publish: a build that passes publishes its cut", code == 0 and published() == [(ends(first),)],
          f"exit {code} {failed(st)}, gold.cut {published()}, want {ends(first)}")

    raw = raw_events.DuckDBRaw(str(db))
    raw.load(second, LOAD_2, "bronze/load-2")
    raw.close()
    # fct_transactions fails (on_schema_change) after the computed cut and fct_postings committed
    duckdb_execute(db, "alter table gold.fct_transactions add column stray integer")
    code, st = dbt(workdir, env, "build")
    ahead = duckdb_rows(db, f"select count(*) from gold.fct_postings where not ({AS_OF_CUT})")[0][0]
    check("cut publish: a build stopped by a failing model publishes nothing",
          code != 0 and st.get("fct_transactions") == "error" and st.get("fct_postings") == "success"
          and computed() == ends(second) and published() == [(ends(first),)] and ahead > 0,
          f"exit {code}, {st.get('fct_transactions')}, computed {computed()}, gold.cut {published()}, "
          f"want {ends(first)}, postings above it {ahead}")
    above = duckdb_rows(db, "select count(*) from gold.dim_accounts where lsn > (select lsn from gold.cut)")[0][0]
    torn = duckdb_rows(db, READER_TORN.format(postings=AS_OF_CUT))[0][0]
    check("cut publish: meanwhile readers see the previous cut whole (dim_* and the postings as of gold.cut)",
          above == 0 and torn == 0, f"{above} versions above gold.cut, {torn} balances off")
    unfiltered = duckdb_rows(db, READER_TORN.format(postings="true"))[0][0]
    check("cut publish: (the postings the build committed are ahead of it: read without the cut, gold is torn)",
          unfiltered > 0, "no account differs: the stop did not fall between two models")
    duckdb_execute(db, "alter table gold.fct_transactions drop column stray")

    code, st = dbt(workdir, env, "build", "--exclude", "fct_daily_account_balances")
    check("cut publish: a build leaving out a table built from the cut publishes nothing",
          code == 0 and published() == [(ends(first),)], f"exit {code} {failed(st)}, gold.cut {published()}")
    code, st = dbt(workdir, env, "build")
    torn = duckdb_rows(db, READER_TORN.format(postings="true"))[0][0]
    check("cut publish: the next whole build publishes, and gold is whole at it",
          code == 0 and published() == [(ends(second),)] and torn == 0,
          f"exit {code} {failed(st)}, gold.cut {published()}, want {ends(second)}, {torn} balances off")


def messages(workdir: Path) -> dict:
    """{test name: dbt's message} of the failed tests of the last dbt command."""
    rr = json.loads((workdir / "target" / "run_results.json").read_text())["results"]
    return {r["unique_id"].split(".")[-2]: r["message"] or "" for r in rr
            if r["unique_id"].startswith("test.") and r["status"] in ("fail", "error")}


def run_relationships_in_cut(workdir: Path):
    """The relationships between the latest-version tables check the rows within the build's cut
    only: the tables land through their own topics at their own pace, so a build can hold an
    account before its customer (the defect seen in CI, where such a build failed and gold
    stopped until the retry). An account whose customer's object is not loaded yet is beyond the
    cut and passes; an account whose customer is truly missing fails once it is within the cut,
    even when its row was written builds before (its transaction's END loaded late), naming the
    column, the check and the missing customer."""
    log = raw_events.Log(start=datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc))
    fay = log.new_customer("fay", "Fay", "Ahead")
    ahead = log.new_account("fay-checking", fay)
    log.post("fay-deposit", "DEPOSIT", ahead, "10.00")
    log.capturing = False  # a customer the log never shows: the account's parent is truly missing
    ghost = log.new_customer("ghost", "Gus", "Ghost")
    log.capturing = True
    orphan = log.new_account("ghost-checking", ghost)
    events = log.take()
    md = [e for e in events if e.get("_raw") == raw_events.METADATA]
    orphan_end = md[-1]
    assert orphan_end["op"] == "END" and orphan_end["tx_id"] == max(e["tx_id"] for e in md)
    customers = [e for e in events if e["source_table"] == "customers"]
    first = [e for e in events if e not in customers and e is not orphan_end]
    db = workdir / "relationships-in-cut.duckdb"
    env = {"DBT_TARGET": "duckdb", "WAREHOUSE_PATH": str(db)}
    later = loads_after(LOAD_1)
    published = lambda: duckdb_rows(db, "select lsn from gold.cut")  # noqa: E731

    # 1. The accounts and transactions topics ahead of the customers topic.
    raw = raw_events.DuckDBRaw(str(db))
    raw.create()
    raw.load(first, next(later), "bronze/ahead")
    raw.close()
    code, st = dbt(workdir, env, "build")
    staged = duckdb_rows(db, f"""select (select count(*) from silver.stg_accounts where account_id = '{ahead}'),
        (select count(*) from silver.stg_customers where customer_id = '{fay}')""")[0]
    check("relationships in cut: an account loaded ahead of its customer (beyond the cut) passes",
          code == 0 and st.get("relationships_in_cut_stg_accounts") == "pass" and staged == (1, 0),
          f"exit {code}, failed {failed(st)}, {messages(workdir)}, account and customer staged: {staged}")

    # 2. The customer arrives: the account enters the cut with its parent; the orphan's
    # transaction has no END loaded yet, so it stays beyond the cut.
    raw = raw_events.DuckDBRaw(str(db))
    raw.load(customers, next(later), "bronze/customers")
    raw.close()
    code, st = dbt(workdir, env, "build")
    within = duckdb_rows(db, f"""select count(*) from silver.accounts_in_cut where account_id = '{ahead}'""")[0][0]
    check("relationships in cut: once its customer is loaded the account is within the cut and passes",
          code == 0 and within > 0 and published() and published()[0][0] < orphan_end["lsn"],
          f"exit {code}, failed {failed(st)}, {messages(workdir)}, versions in cut {within}, gold.cut {published()}")
    before = published()

    # 3. The orphan's END arrives alone: its account row, written two builds ago, enters the cut.
    raw = raw_events.DuckDBRaw(str(db))
    raw.load([orphan_end], next(later), "bronze/orphan-end")
    raw.close()
    code, st = dbt(workdir, env, "build")
    msg = messages(workdir).get("relationships_in_cut_stg_accounts", "")
    check("relationships in cut: an account whose customer is missing fails once within the cut, naming it",
          code != 0 and failed(st) == ["relationships_in_cut_stg_accounts"]
          and "customer_id relationships to stg_customers.customer_id: 1 row" in msg and ghost in msg,
          f"exit {code}, failed {failed(st)}, message {msg!r}")
    check("relationships in cut: that build publishes nothing", published() == before,
          f"gold.cut {published()}, was {before}")
    code, st = dbt(workdir, env, "test", "--vars", "{test_all_rows: true}")
    check("relationships in cut: a check of every row fails on it too",
          code != 0 and failed(st) == ["relationships_in_cut_stg_accounts"], f"exit {code}, failed {failed(st)}")


def start_fakesnow(workdir: Path) -> tuple[subprocess.Popen, int]:
    """A fakesnow server on a free port (it picks one and prints it)."""
    logf = open(workdir / "fakesnow.log", "w+")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("fakesnow")), "-s", "--host", "127.0.0.1"],
                            stdout=logf, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        m = re.search(r"running on http://127\.0\.0\.1:(\d+)", (workdir / "fakesnow.log").read_text())
        if m:
            return proc, int(m.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("fakesnow did not start; see " + str(workdir / "fakesnow.log"))


def run_snowflake(workdir: Path):
    proc, port = start_fakesnow(workdir)
    try:
        connect = dict(user="dbt", password="fakesnow", account="fakesnow", database="FIN",
                       schema="PUBLIC", host="127.0.0.1", port=port, protocol="http")
        env = {"DBT_TARGET": "snowflake", "SNOWFLAKE_HOST": "127.0.0.1", "SNOWFLAKE_PORT": str(port),
               "SNOWFLAKE_PROTOCOL": "http", "SNOWFLAKE_PASSWORD": "fakesnow", "SNOWFLAKE_DATABASE": "FIN",
               "SNOWFLAKE_THREADS": "1"}
        log, first, second = raw_events.scenario()
        raw = raw_events.SnowflakeRaw(**connect)
        raw.cur.execute("create database if not exists FIN")
        raw.create()
        raw.load(first, LOAD_1, "bronze/load-1")

        def fetch(sql):
            return raw.cur.execute(sql).fetchall()

        # fakesnow cannot ALTER COLUMN ... COMMENT (persist_docs), create the schema-qualified
        # temporary view dbt-snowflake stages a MERGE's batch in, nor write in an explicit
        # transaction: var fakesnow stages in a transient table and leaves out begin/commit
        # (dbt/macros/cross_db.sql); the statements are otherwise Snowflake's.
        no_docs = ("--vars", "{persist_docs: false, fakesnow: true}")
        code, st = dbt(workdir, env, "build", *no_docs)
        check("snowflake: first build passes every model and test", code == 0, f"failed: {failed(st)}")
        for table in ("customers", "accounts"):
            compare_history(f"snowflake: {table} history after the first load",
                            fetch(history_sql(table, "snowflake")), expected_history(first, table), FIELD[table])

        raw.load(second, LOAD_2, "bronze/load-2")
        code, st = dbt(workdir, env, "build", *no_docs)
        check("snowflake: incremental build (MERGE, delete+insert of history ranges) passes every model and test",
              code == 0, f"failed: {failed(st)}")
        for table in ("customers", "accounts"):
            compare_history(f"snowflake: {table} history has every version after an incremental run",
                            fetch(history_sql(table, "snowflake")), expected_history(first + second, table),
                            FIELD[table])
        # a deposit the same day: the account's row of that day changes in place (replace_from's
        # update ... from)
        log.post("t8", "DEPOSIT", log.uuid("account-ada-checking"), "1.00")
        third = log.take()
        raw.load(third, LOAD_3, "bronze/load-3")
        day = "(select max(balance_date) from gold.fct_daily_account_balances)"
        before = fetch(f"select account_day_key, closing_balance from gold.fct_daily_account_balances where balance_date = {day}")
        code, st = dbt(workdir, env, "build", *no_docs)
        after = dict(fetch(f"select account_day_key, closing_balance from gold.fct_daily_account_balances where balance_date = {day}"))
        changed = [k for k, v in before if after.get(k) != v]
        check("snowflake: an incremental build that changes a day's balance (update in place) passes",
              code == 0 and len(changed) == 1, f"failed: {failed(st)}, changed {changed}")
        incremental = snapshot_relations(fetch)
        code, st = dbt(workdir, env, "build", "--full-refresh", *no_docs)
        check("snowflake: full refresh passes every model and test", code == 0, f"failed: {failed(st)}")
        compare_relations("snowflake: incremental runs equal a full refresh", incremental, snapshot_relations(fetch))
        got = normalized(fetch("select * exclude (_built_at) from gold.fct_daily_account_balances"))
        want = normalized(duckdb_daily_balances(workdir, first, second, third))
        check("snowflake: daily balances equal DuckDB's for the same events", got == want,
              f"snowflake {got} duckdb {want}")
        # Snowflake compares quoted names case-sensitively and stores unquoted ones in upper case;
        # fakesnow (DuckDB) matches "valid_to" to VALID_TO, so a column quoted as a model's config
        # spells it runs here and fails on Snowflake ("invalid identifier"). Every quoted column
        # of a table alias in the statements dbt ran must be spelled as stored.
        sql = (workdir / "logs" / "dbt.log").read_text()
        lower = sorted(set(re.findall(r'\b[a-z_]+\.("[^"]*[a-z][^"]*")', sql)))
        check("snowflake: the statements quote columns as Snowflake stores them (upper case)", not lower,
              f"quoted in lower case: {lower[:5]}")
        raw.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("duckdb", "snowflake"):
        raise SystemExit(__doc__)
    workdir = Path(sys.argv[2]).resolve()
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    {"duckdb": lambda w: (run_duckdb(w), run_cut_sources(w), run_cut_old_tail(w), run_cut_selective(w),
                          run_cut_publish(w), run_relationships_in_cut(w),
                          run_cut_marks_after_full_refresh(w), run_postings_memory(w)), "snowflake": run_snowflake}[sys.argv[1]](workdir)
    passed = sum(1 for _, ok, _ in results if ok)
    print(f"{passed} passed, {len(results) - passed} failed")
    sys.exit(0 if passed == len(results) else 1)


if __name__ == "__main__":
    main()
