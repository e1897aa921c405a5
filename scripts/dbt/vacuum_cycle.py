"""Which row groups DuckDB's checkpoint rewrites, load after load, for a table shaped like the
benchmark's accounts history (scripts/dbt/bench_history.py): a full build's rows, then each load
appends APPEND rows in its own transaction and deletes DELETES of the live rows among the last
100,000 (the touched accounts' current versions), and the file is closed (checkpointed) as the
dbt worker closes it after a build. Prints, per load, the rows stored anew and the live rows of
the table's last row groups.

  vacuum_cycle.py ROWS [LOADS] [APPEND] [DELETES] [update]

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


def main():
    update = sys.argv[-1] == "update"
    given = [int(a) for a in sys.argv[1:] if a != "update"]
    rows, loads, append, deletes = given + [12, 12_500, 9_300][len(given) - 1:]
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "vacuum.duckdb"
        con = duckdb.connect(str(db))
        con.execute("set threads = 1")  # row groups as one writer leaves them, whatever the machine
        con.execute(f"create table t as select i as id, md5(i::varchar) as k, true as current from range({rows}) r(i) order by i")
        con.close()
        print(f"{rows:,} rows: live rows of the last four row groups {groups(db)[-4:]}")
        top, total = rows, 0
        for load in range(1, loads + 1):
            before = layout(db)
            con = duckdb.connect(str(db))
            con.execute("set threads = 1")
            if deletes:
                # a sample of the live rows among the last 100,000 (sampled after the filter:
                # DuckDB samples a table before its where)
                change = "update t set current = false" if update else "delete from t"
                con.execute(f"{change} where id in (select id from (select id from t where id >= {top - 100_000} "
                            f"and current) using sample {deletes} rows (reservoir, {load}))")
            con.execute(f"insert into t select i, md5(i::varchar), true from range({top}, {top + append}) r(i)")
            top += append
            con.close()  # the checkpoint, with DuckDB's vacuum, as when the dbt worker closes the file
            after = layout(db)
            new = [k for k in after if k not in before]
            stored = sum(after[k] for k in new if k[1] == "k")  # rows of the wide column
            flags = sum(after[k] for k in new if k[1] == "current")
            total += stored
            print(f"load {load:>2}: stored anew {stored:>7,} rows ({flags:,} of `current`) in row groups "
                  f"{sorted({k[0] for k in new})}; live rows of the last five {groups(db)[-5:]}", flush=True)
        print(f"{loads} loads of {append:,} rows: {total:,} rows stored anew, "
              f"{total / (loads * append):.1f}x the rows appended")


if __name__ == "__main__":
    main()
