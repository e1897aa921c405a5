"""Which row groups DuckDB's checkpoint rewrites, load after load, for a table shaped like the
benchmark's accounts history (scripts/dbt/bench_history.py): a full build's rows, then each load
appends APPEND rows in its own transaction and deletes DELETES of the live rows among the last
100,000 (the touched accounts' current versions), and the file is closed (checkpointed) as the
dbt worker closes it after a build. Prints, per load, the rows stored anew and the live rows of
the table's last row groups.

  vacuum_cycle.py ROWS [LOADS] [APPEND] [DELETES] [update]

(DELETES 0: a table only appended to, as the change logs and, in the benchmark, fct_transactions.)

With `update`, those rows are not deleted but updated in place (their flag `current` set false),
as the histories now close a version (history_closing in dbt/macros/incremental.sql).

DuckDB 1.5's vacuum (RowGroupCollection::ScheduleVacuumTasks) merges k+1 adjacent row groups into
k (k <= 3) when their live rows fit in k row groups of 122,880, greedily from the first such
window, except a window reaching the last row group that does not fill the k groups (or twice
the first one's rows); a load's appends start a row group of their own. With the accounts
history's rows after the full refreshes of 1M and 10M transactions (1,269,781 and 12,516,146:
last row groups of 40,981 and 105,266) this shows why the 10M build's close rewrote row groups
99-102 and the 1M one's did not, and how deleting the closed versions kept that window fitting
load after load. A narrow table (2 columns and the flag), so the rows, not the seconds, are the
figure; runs in a scratch file under TMPDIR.

  vacuum_cycle.py daily DAYS [LOADS] [TOUCHED] [update]

The same for a table shaped like gold.fct_daily_account_balances: a row per account (20,000) and
day, DAYS days in day order after a full refresh (the benchmark's 100,000 transactions span 4
days, 1,000,000 span 30, 10,000,000 span 290), each load 25,000 s of the generator's time
(10,000 transactions 2.5 s apart), starting where the full refresh's last day ends (08:33, 09:33
and 19:34). Each load rewrites
TOUCHED accounts (default 9,300, the benchmark's) from the last day held, L: their row of L is
deleted and inserted again (main's replace_from) or, with `update`, updated in place (its balance
column); when the load reaches a new day, every account gets a row for it (the touched ones
rewritten, the others carried forward).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import duckdb


def layout(db: Path) -> dict[tuple, int]:
    """The stored segments (row group, column, block, offset -> rows)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {r[:4]: r[4] for r in con.execute(
            "select row_group_id, column_name, block_id, block_offset, count from pragma_storage_info('t') "
            "where block_id >= 0 and segment_type <> 'VALIDITY'").fetchall()}
    finally:
        con.close()


def groups(db: Path) -> list[int]:
    """Each row group's live rows (its stored rows less the deleted ones: what the vacuum
    counts), from the row ids each covers."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return [r[0] for r in con.execute(
            "with g as (select row_group_id, sum(count) as n from pragma_storage_info('t') "
            "where column_path = '[0]' group by row_group_id), "
            "r as (select row_group_id, sum(n) over (order by row_group_id) - n as lo, "
            "sum(n) over (order by row_group_id) as hi from g) "
            "select count(t.rowid) from r left join t on t.rowid >= r.lo and t.rowid < r.hi "
            "group by r.row_group_id order by r.row_group_id").fetchall()]
    finally:
        con.close()


def cycle(db: Path, loads: int, create: str, load_sql, unit: int, changing: str):
    """Creates t with create, then for each load runs load_sql(load) in one connection and closes
    the file; prints what each checkpoint stored anew: rows (of the wide column k: inserted, or
    rewritten whole by the vacuum's merges) and the values of the column an update changes
    (changing) stored anew in the other row groups (the checkpoint rewrites an updated column of
    every row group it touches), and the totals, the rows as a multiple of unit rows a load."""
    con = duckdb.connect(str(db))
    con.execute("set threads = 1")  # row groups as one writer leaves them, whatever the machine
    con.execute(create)
    con.close()
    print(f"{sum(groups(db)):,} rows: live rows of the last four row groups {groups(db)[-4:]}")
    total = columns = 0
    for load in range(1, loads + 1):
        before = layout(db)
        con = duckdb.connect(str(db))
        con.execute("set threads = 1")
        for sql in load_sql(load):
            con.execute(sql)
        con.close()  # the checkpoint, with DuckDB's vacuum, as when the dbt worker closes the file
        after = layout(db)
        new = [k for k in after if k not in before]
        stored = sum(after[k] for k in new if k[1] == "k")  # rows of the wide column
        moved = {k[0] for k in new if k[1] == "k"}
        # in the row groups whose rows stayed (a constant segment has no block: not counted)
        column = sum(after[k] for k in new if k[1] == changing and k[0] not in moved)
        total += stored
        columns += column
        print(f"load {load:>2}: stored anew {stored:>7,} rows and {column:>7,} values of `{changing}` in row groups "
              f"{sorted({k[0] for k in new})}; live rows of the last five {groups(db)[-5:]}", flush=True)
    print(f"{loads} loads: {total:,} rows stored anew, {total / (loads * unit):.1f}x {unit:,} rows a load; "
          f"{columns:,} values of `{changing}` rewritten beside them")


def history(db: Path, args: list[str], update: bool):
    given = [int(a) for a in args]
    rows, loads, append, deletes = given + [12, 12_500, 9_300][len(given) - 1:]
    state = {"top": rows}

    def load_sql(load):
        top = state["top"]
        state["top"] += append
        if deletes:
            # a sample of the live rows among the last 100,000 (sampled after the filter:
            # DuckDB samples a table before its where)
            change = "update t set current = false" if update else "delete from t"
            yield (f"{change} where id in (select id from (select id from t where id >= {top - 100_000} "
                   f"and current) using sample {deletes} rows (reservoir, {load}))")
        yield f"insert into t select i, md5(i::varchar), true from range({top}, {top + append}) r(i)"

    cycle(db, loads, f"create table t as select i as id, md5(i::varchar) as k, true as current from range({rows}) r(i) "
          "order by i", load_sql, append, "current")


ACCOUNTS = 20_000
LOAD_HOURS = 10_000 * 2.5 / 3600  # one load of the benchmark: 10,000 transactions 2.5 s apart


def daily(db: Path, args: list[str], update: bool):
    given = [int(a) for a in args]
    days, loads, touched = given + [14, 9_300][len(given) - 1:]
    # where the full refresh's last day ends (bench.py: START_US is 11:06 UTC, a transaction each
    # 2.5 s): 100,000 transactions end at 08:33 of their 4th day, 1,000,000 at 09:33 of their
    # 30th, 10,000,000 at 19:34 of their 290th
    state = {"last": days - 1, "hour": {4: 8.55, 30: 9.55, 290: 19.56}.get(days, 9.0)}

    def load_sql(load):
        last, hour = state["last"], state["hour"] + LOAD_HOURS
        new_last = last + int(hour // 24)
        state["last"], state["hour"] = new_last, hour % 24
        pick = (f"select a from (select a from range({ACCOUNTS}) r(a)) "
                f"using sample {touched} rows (reservoir, {load})")
        yield f"create or replace temp table touched as {pick}"
        row = "select a, d, md5(a::varchar || '@' || d::varchar) as k, {bal} as bal from range({acct}) r(a), range({lo}, {hi}) s(d)"
        if update:
            yield f"update t set bal = bal + {load} where d = {last} and a in (select a from touched)"
        else:
            yield f"delete from t where d >= {last} and a in (select a from touched)"
            yield ("insert into t " + row.format(bal=load, acct=ACCOUNTS, lo=last, hi=last + 1)
                   + " where a in (select a from touched)")
        if new_last > last:
            yield "insert into t " + row.format(bal=load, acct=ACCOUNTS, lo=last + 1, hi=new_last + 1) + " order by d, a"

    cycle(db, loads, "create table t as select a, d, md5(a::varchar || '@' || d::varchar) as k, 0 as bal "
          f"from range({ACCOUNTS}) r(a), range({days}) s(d) order by d, a", load_sql, touched, "bal")


def main():
    update = sys.argv[-1] == "update"
    args = [a for a in sys.argv[1:] if a != "update"]
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "vacuum.duckdb"
        if args and args[0] == "daily":
            daily(db, args[1:], update)
        else:
            history(db, args, update)


if __name__ == "__main__":
    main()
