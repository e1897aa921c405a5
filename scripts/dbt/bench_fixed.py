"""Benchmark: the fixed cost of a small incremental dbt build (issue 16, freshness). A warehouse of
TRANSACTIONS transactions (scripts/dbt/bench.py's generator, 2,000 accounts), then LOADS loads of
LOAD_SIZE transactions each, each followed by an incremental build through the warm worker
(shared/dbtrun/worker.py), as the stack builds after loads. Prints each build's wall time, CPU
time (the worker's, all its threads: compare these on a busy machine) and node times.

  bench_fixed.py WORKDIR [TRANSACTIONS [LOAD_SIZE [LOADS]]]     (defaults 30000 1500 4)

The generated warehouse is kept in WORKDIR/base.duckdb and reused by the next run in the same
WORKDIR, so runs of two checkouts can alternate on the same data: run each checkout's own copy
of this script (it uses the worker and dbt project beside it).
"""

import shutil
import sys
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402 - the generator and the worker driver of the 1% benchmark

TABLES = ("customers", "accounts", "transactions", "transaction_metadata")


def main():
    work = Path(sys.argv[1]).resolve()
    given = [int(a) for a in sys.argv[2:5]]
    n, size, loads = given + [30000, 1500, 4][len(given):]
    base, db = work / "base.duckdb", work / "warehouse.duckdb"
    work.mkdir(parents=True, exist_ok=True)
    if not base.exists():
        con = duckdb.connect(str(base))
        bench.generate(con, n, accounts=2000, batch_size=size, batches=loads)
        con.execute("create schema if not exists bench")
        for t in TABLES:  # every load but the first is set aside until its turn
            con.execute(f"create or replace table bench.{t} as select * from raw.{t} where _object_key <> 'bronze/bench-0'")
            con.execute(f"delete from raw.{t} where _object_key <> 'bronze/bench-0'")
        con.close()
    shutil.copy(base, db)
    shutil.rmtree(work / "target", ignore_errors=True)
    dbt = bench.Worker(work, db, False)
    try:
        print(f"first build:       {bench.phases(*dbt.build())}", flush=True)
        for load in range(1, loads + 1):
            con = duckdb.connect(str(db))
            for t in TABLES:
                con.execute(f"insert into raw.{t} select * from bench.{t} where _object_key = 'bronze/bench-{load}'")
            con.close()
            print(f"after load {load}:      {bench.phases(*dbt.build())}", flush=True)
    finally:
        dbt.close()


if __name__ == "__main__":
    main()
