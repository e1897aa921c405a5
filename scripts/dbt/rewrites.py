"""What each incremental build of the real models stores anew, load after load, on a history
bench_history.py built: rows moved (the values of each table's first column, a key column no
model updates: a row inserted, or rewritten whole by DuckDB's vacuum merging row groups at the
close's checkpoint) and column values rewritten (every column: also the columns of the row
groups an update touched, which the checkpoint rewrites for that row group).

  rewrites.py WAREHOUSE WORKDIR [LOADS] [MODEL ...]

WAREHOUSE is a built history with its loads set aside in schema bench (bench_history.py's cache:
`<size>-<key>.duckdb`); it is copied to WORKDIR and never written. With MODELs, they are first
rebuilt with `dbt build --full-refresh --select MODEL ...` from this checkout's dbt project (the
warehouse's other models stay as the cache built them), so a change of those models' write pattern
is compared on the same history. Then LOADS loads (default 10) are released and built
incrementally as bench_history.py's rounds do (`dbt build`, the warm worker, the file closed
after each build), and for each load the tables that stored anything are printed, the largest
first, with the totals over the loads at the end; every table's figures per load are kept in
WORKDIR/rewrites.json.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import ROOT, Worker, phases  # noqa: E402
from bench_history import layout, release  # noqa: E402


def stored(before: dict, after: dict) -> dict[str, tuple[int, int, int]]:
    """Per table: (rows moved, column values rewritten, row groups touched) between two layouts."""
    out = {}
    for table, segments in after.items():
        new = [k for k in segments if k not in before.get(table, {})]
        if not new:
            continue
        first = min(k[1] for k in segments)
        out[table] = (sum(segments[k] for k in new if k[1] == first), sum(segments[k] for k in new),
                      len({k[0] for k in new}))
    return out


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    source, workdir = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    loads = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    models = sys.argv[4:]
    shutil.rmtree(workdir, ignore_errors=True)
    project = workdir / "dbt"
    shutil.copytree(ROOT / "dbt", project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    db = workdir / "warehouse.duckdb"
    shutil.copyfile(source, db)
    worker = Worker(workdir, db, cold=False, project=project)
    totals: dict[str, list[int]] = {}
    per_load = []
    try:
        if models:
            print(f"full refresh of {' '.join(models)}: {phases(*worker.build('--full-refresh', '--select', *models))}",
                  flush=True)
        for load in range(1, loads + 1):
            release(db, load)
            before = layout(db)
            wall, cpu, rr = worker.build()
            found = stored(before, layout(db))
            per_load.append(found)
            for table, (rows, values, _) in found.items():
                t = totals.setdefault(table, [0, 0])
                t[0] += rows
                t[1] += values
            shown = sorted(found.items(), key=lambda kv: -kv[1][1])[:8]
            print(f"load {load:>2} ({wall:5.1f}s wall, {cpu:5.1f}s CPU): " + "; ".join(
                f"{t} {r:,} rows / {v:,} values ({g} row groups)" for t, (r, v, g) in shown), flush=True)
    finally:
        worker.close()
        (workdir / "rewrites.json").write_text(json.dumps(per_load))
    print(f"over {loads} loads, rows moved / column values rewritten:")
    for table, (rows, values) in sorted(totals.items(), key=lambda kv: -kv[1][1]):
        print(f"  {table:45} {rows:>10,} {values:>12,}")
    print(f"  {'all tables':45} {sum(t[0] for t in totals.values()):>10,} {sum(t[1] for t in totals.values()):>12,}")


if __name__ == "__main__":
    main()
