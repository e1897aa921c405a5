"""Property test: an incremental build equals a full refresh, whatever the change log and however
it is split into loads, on DuckDB.

  property.py WORKDIR [SEED ...]     (default seeds: FIN_DBT_PROPERTY_SEEDS, else "1 2")

For each seed: one generated change log (raw_events.Log: an initial snapshot taken while rows
existed that were never streamed, updates of one row twice in one transaction, deletes and
re-inserts, changes and deletes made while nothing was capturing followed by a re-snapshot (the
initial kind, or online incremental snapshots of every table with their windows, changes streamed
inside the chunks' windows, sometimes after one killed mid-way), a one-table snapshot, snapshot read
times later than the commits that follow them and earlier than those before them, a redelivered
event at a new offset, days without activity) is cut into random loads, some events put in two
loads (one object loaded under two keys), and the loads applied in random order (late older
versions; the ledger rows and transaction boundaries of the object with the most transfers a load
before its balance updates: a torn transaction). dbt runs incrementally after each load, and after
each build every account's current balance in gold.dim_accounts must equal the sum of its postings
in gold.fct_postings, and its last closing balance in gold.fct_daily_account_balances must be
that balance (gold is a consistent cut; an account with a posting made in a gap waits
until that posting is in gold); then every test runs on every row, the
relations are kept, dbt builds with --full-refresh, and every relation must be equal (all columns
but _built_at). The histories' versions and the postings must be the ones the generator knows
the log holds (a re-read of an unchanged row is no version and no posting; a row deleted while
nothing captured ends with a delete at the snapshot that no longer read it, or at the window of
the incremental snapshot that has no event of it).

dbt runs in this process (dbtRunner, the project parsed once), as the dbt-runner's warm worker
does. Prints one line per check and "N passed, N failed"; exits 1 on any failure.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import check
import raw_events

sys.path.insert(0, str(check.ROOT / "shared" / "dbtrun"))
from worker import release_duckdb  # noqa: E402 - the runner's own way to let go of the file


def generate(seed: int) -> raw_events.Log:
    """A change log with every case the models must get right (see the module doc)."""
    rnd = random.Random(seed)
    log = raw_events.Log(start=datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc))
    customers, accounts, txns = [], [], []
    balance = lambda a: Decimal(log.rows["accounts"][a]["balance"])  # noqa: E731

    def clock_us() -> int:
        return int(log.clock.timestamp() * 1_000_000)

    def snapshot():
        # Read times from a second before the last commit (another host's clock) to three seconds
        # after it, so commits streamed right after the snapshot are often earlier than its reads.
        base = clock_us()
        log.snapshot(lambda i: base + rnd.randint(-1_000_000, 3_000_000))
        log.tick(0.25)
        # the customer read last is updated at once: a commit earlier than the read before it
        last_read = max((e for e in log.events if e["op"] == "r" and e["source_table"] == "customers"),
                        key=lambda e: (e["lsn"], e["commit_ts_us"]), default=None)
        if last_read and last_read["commit_ts_us"] > clock_us():
            update_customer(json.loads(last_read["after"])["customer_id"])

    def add_customer():
        name = f"c{len(customers)}"
        customers.append(log.new_customer(name, name.title(), rnd.choice(["Ng", "Okafor", "Silva"])))

    def add_account():
        owner = rnd.choice([c for c in customers if c in log.rows["customers"]])
        aid = log.new_account(f"a{len(accounts)}", owner, rnd.choice(["CHECKING", "SAVINGS"]))
        accounts.append(aid)

    def post():
        live = [a for a in accounts if a in log.rows["accounts"]]
        if len(live) < 2:
            return
        kind = rnd.choice(["DEPOSIT", "DEPOSIT", "WITHDRAWAL", "TRANSFER"])
        src = rnd.choice(live)
        amount = Decimal(rnd.randint(1, 20000)) / 100
        if kind != "DEPOSIT" and balance(src) < amount:
            kind = "DEPOSIT"
        related = rnd.choice([a for a in live if a != src]) if kind == "TRANSFER" else None
        txns.append(log.post(f"t{len(txns)}", kind, src, str(amount), related=related))

    def reverse():
        done = [t for t in txns if log.rows["transactions"][t]["status"] == "COMPLETED"
                and not log.rows["transactions"][t]["reverses_transaction_id"]]
        if done:
            orig = log.rows["transactions"][rnd.choice(done)]
            payer = orig["related_account_id"] if orig["transaction_type"] == "TRANSFER" else orig["account_id"]
            if orig["transaction_type"] == "WITHDRAWAL" or balance(payer) >= Decimal(orig["amount"]):
                txns.append(log.reverse(f"t{len(txns)}", orig["transaction_id"]))

    def update_customer(cid: str | None = None):
        cid = cid or rnd.choice([c for c in customers if c in log.rows["customers"]])
        log.update_customer(cid, city=rnd.choice(["Lagos", "Porto", "Hanoi", "Quito"]))

    def update_twice_in_one_transaction():
        cid = rnd.choice([c for c in customers if c in log.rows["customers"]])
        log.change("customers", "u", cid, last_name=rnd.choice(["Ng", "Okafor"]))
        log.change("customers", "u", cid, email=f"{cid[:8]}@example.org")
        log.commit()

    def delete_and_reinsert():
        # only customers without accounts and accounts without postings are ever deleted
        owners = {log.rows["accounts"][a]["customer_id"] for a in log.rows["accounts"]}
        free = [c for c in customers if c in log.rows["customers"] and c not in owners]
        used = {log.rows["transactions"][t][f] for t in txns for f in ("account_id", "related_account_id")}
        idle = [a for a in accounts if a in log.rows["accounts"] and a not in used]
        if free and rnd.random() < 0.5:
            cid = rnd.choice(free)
            first, last = log.rows["customers"][cid]["first_name"], log.rows["customers"][cid]["last_name"]
            log.delete_customer(cid)
            if rnd.random() < 0.7:
                log.tick(rnd.choice([1, 3600]))
                log.new_customer(first.lower(), first, last)
        elif idle:
            aid = rnd.choice(idle)
            owner = log.rows["accounts"][aid]["customer_id"]
            log.delete_account(aid)
            if rnd.random() < 0.5:
                log.new_account(f"a{accounts.index(aid)}", owner)

    ops = [add_customer, add_account, post, post, post, post, reverse, update_customer,
           update_twice_in_one_transaction, delete_and_reinsert]

    def incremental(tables, complete=True, gap=None):
        # online: streamed changes (inserts, updates, deletes, postings) inside every chunk's window
        for t in tables:
            log.incremental_snapshot(t, rnd.randint(2, 4),
                                     lambda i: [rnd.choice(ops)() for _ in range(rnd.randint(0, 2))], complete, gap)

    # Rows that existed before anything captured, then the initial snapshot.
    log.capturing = False
    for _ in range(3):
        add_customer()
    for _ in range(3):
        add_account()
    for _ in range(4):
        post()
    log.capturing = True
    snapshot()
    for phase in range(4):
        for _ in range(rnd.randint(8, 14)):
            rnd.choice(ops)()
        if rnd.random() < 0.6 or phase == 3:
            # nothing captures for a while (a dropped slot), then everything is read again; a
            # customer deleted meanwhile must end in the history
            add_customer()
            gap_from = log.lsn  # every change up to here was delivered
            log.capturing = False
            log.delete_customer(customers[-1])
            # and one seen long before, whose key no later load may bring back into a batch
            owners = {log.rows["accounts"][a]["customer_id"] for a in log.rows["accounts"]}
            older = [c for c in customers[:-1] if c in log.rows["customers"] and c not in owners]
            if older:
                log.delete_customer(rnd.choice(older))
            initial = rnd.random() < 0.4 and phase != 3
            # postings too: an incremental snapshot reads accounts before transactions, so the
            # balances read hold postings read later (balances_match_postings places them in the gap)
            gap = [update_customer, add_customer, add_account, delete_and_reinsert, post, post]
            for _ in range(rnd.randint(1 if initial else 3, 6)):
                rnd.choice(gap)()
            log.capturing = True
            gap_to = log.lsn  # streaming resumes here
            if initial:
                snapshot()
            else:
                # or another destination took the slot's changes: an incremental snapshot of
                # every table, sometimes killed mid-way first (its rows alone end nothing)
                if rnd.random() < 0.5:
                    incremental([rnd.choice(raw_events.TABLES)], complete=False, gap=(gap_from, gap_to))
                incremental(raw_events.TABLES, gap=(gap_from, gap_to))
        elif rnd.random() < 0.5:
            # `fin snapshot --table`: one table, nothing missed; it re-reads and ends nothing
            incremental([rnd.choice(raw_events.TABLES)])
        # days without activity
        log.tick(rnd.choice([3600, 86400, 2 * 86400 + 7]))
    # a capture restart redelivers some events at new offsets
    for e in rnd.sample([e for e in log.events if e["op"] != "r" and not e.get("_raw")], 3) + \
            [e for e in log.events if e.get("_raw") == raw_events.WINDOWS][:1]:  # and a window record
        dup = dict(e, offset=log.offsets[e["source_table"]])
        log.offsets[e["source_table"]] += 1
        log.events.append(dup)
    return log


# Accounts whose current balance in gold differs from the sum of their postings in gold (a torn
# transaction in gold): none, after any build.
GOLD_BALANCES_DIFFER = """
    select coalesce(a.account_id, p.account_id), a.balance, p.total
    from (select account_id, balance from gold.dim_accounts where is_current and not is_deleted) as a
    full join (select account_id, sum(amount) as total from gold.fct_postings group by 1) as p
        on a.account_id = p.account_id
    where coalesce(a.balance, 0) <> coalesce(p.total, 0)
    order by 1
"""


# Accounts whose last closing balance in gold.fct_daily_account_balances differs from their current
# balance in gold.dim_accounts (the daily balances follow the cut too), and deleted accounts with a
# day from their delete on (their days end the day before; seeds 3 and 4 delete an account a day
# after it opened): none, after any build.
DAILY_BALANCES_DIFFER = """
    with deleted as (
        select account_id, cast(timezone('UTC', effective_from) as date) as deleted_on
        from gold.dim_accounts where is_current and is_deleted
    )
    select coalesce(a.account_id, d.account_id), a.balance, d.closing_balance
    from (select account_id, balance from gold.dim_accounts where is_current and not is_deleted) as a
    full join (select account_id, closing_balance from gold.fct_daily_account_balances
               where account_id not in (select account_id from deleted)
               qualify balance_date = max(balance_date) over (partition by account_id)) as d
        on a.account_id = d.account_id
    where a.balance is distinct from d.closing_balance
    union all
    select d.account_id, null, d.closing_balance
    from gold.fct_daily_account_balances as d
    inner join deleted on d.account_id = deleted.account_id and d.balance_date >= deleted.deleted_on
    order by 1
"""


def gap_posting_missing(db, account_id: str, gap_postings: dict) -> bool:
    """A posting made in a gap is first read by the incremental snapshot that repairs it, at the
    transactions' chunk position (or first met as an update streamed before that read), after
    the accounts' reads whose balances already include it (docs/dbt.md, Known gaps): until it is
    in gold, the account's balance in gold runs ahead of its postings. Such an account is
    checked once all its gap postings are in gold."""
    ids = gap_postings.get(account_id)
    if not ids:
        return False
    held = {r[0] for r in check.duckdb_rows(db, "select distinct transaction_id from gold.fct_postings where transaction_id in ("
                                            + ", ".join(f"'{t}'" for t in sorted(ids)) + ")")}
    return not ids <= held


def loads(rnd: random.Random, events: list) -> list:
    """The change events cut into 3-6 objects of consecutive events, a few events also in a second
    object; each snapshot window record an object of its own, as the capture writes it (so it
    often loads after its rows, with builds between); the objects in random order."""
    windows = [[e] for e in events if e.get("_raw") == raw_events.WINDOWS]
    events = [e for e in events if e.get("_raw") != raw_events.WINDOWS]
    n = rnd.randint(3, 6)
    cuts = sorted(rnd.sample(range(1, len(events)), n - 1))
    chunks = [events[a:b] for a, b in zip([0] + cuts, cuts + [len(events)])]
    for e in rnd.sample(events, 3):
        rnd.choice(chunks).append(e)
    chunks += windows
    rnd.shuffle(chunks)
    # Torn arrivals, as the three topics land at their own pace: the object with the most
    # transfers loads its ledger rows and transaction boundaries first and its accounts' balance
    # updates (and everything else) in the next load.
    transfers = lambda c: sum(1 for e in c if not e.get("_raw") and e["source_table"] == "transactions" and e["op"] == "c"  # noqa: E731
                              and json.loads(e["after"])["transaction_type"] == "TRANSFER")
    i = max(range(len(chunks)), key=lambda i: transfers(chunks[i]))
    ledger = [e for e in chunks[i] if e.get("source_table") == "transactions" or e.get("_raw") == raw_events.METADATA]
    chunks[i:i + 1] = [ledger, [e for e in chunks[i] if e not in ledger]]
    return [c for c in chunks if c]


class Dbt:
    """dbt in this process, the project parsed once."""

    def __init__(self, workdir: Path):
        from dbt.cli.main import dbtRunner

        self.workdir = workdir
        self.common = ["--profiles-dir", str(check.DBT_DIR), "--target-path", str(workdir / "target"),
                       "--log-path", str(workdir / "logs"), "--quiet"]
        os.chdir(check.DBT_DIR)
        res = dbtRunner().invoke(["parse", *self.common])
        if not res.success:
            raise SystemExit(f"dbt parse failed: {res.exception}")
        self.runner = dbtRunner(manifest=res.result)

    def __call__(self, *args: str) -> tuple[bool, list]:
        started = time.monotonic()
        try:
            res = self.runner.invoke([*args, *self.common])
        finally:
            release_duckdb()
        bad = sorted(r.node.name for r in (res.result or []) if str(r.status) in ("error", "fail"))
        print(f"  dbt {' '.join(args)}: {'ok' if res.success else 'FAILED'} in {time.monotonic() - started:.1f}s",
              flush=True)
        if res.exception:
            bad.append(repr(res.exception))
        return bool(res.success), bad


def run_seed(dbt: Dbt, workdir: Path, seed: int):
    log = generate(seed)
    events = log.take()
    rnd = random.Random(seed * 7919)
    seed_dir = workdir / f"seed-{seed}"
    seed_dir.mkdir()
    # the same file name in every seed: DuckDB names the database after it, and the parsed
    # project names relations by database
    db = seed_dir / "warehouse.duckdb"
    os.environ.update({"DBT_TARGET": "duckdb", "WAREHOUSE_PATH": str(db), "DBT_THREADS": "1"})
    raw = raw_events.DuckDBRaw(str(db))
    raw.create()
    raw.close()
    objects = loads(rnd, events)
    torn: list = []
    daily: list = []
    # postings made in a gap, first met as an incremental snapshot's reads (no streamed insert),
    # or as an update streamed before the snapshot read the row (its reversal or new category)
    streamed = {json.loads(e["key"])["transaction_id"] for e in events
                if not e.get("_raw") and e["source_table"] == "transactions" and e["op"] == "c"}
    first = {}
    for e in sorted((e for e in events if not e.get("_raw") and e["source_table"] == "transactions"),
                    key=lambda e: e["lsn"]):
        first.setdefault(json.loads(e["key"])["transaction_id"], e)
    gap_postings = {}
    for e in events:
        if not e.get("_raw") and e["source_table"] == "transactions" and (
                e["snapshot"] == "incremental" or first[json.loads(e["key"])["transaction_id"]] is e and e["op"] == "u"):
            image = json.loads(e["after"])
            if image["transaction_id"] not in streamed:
                for a in (image["account_id"], image["related_account_id"]):
                    gap_postings.setdefault(a, set()).add(image["transaction_id"])
    loaded_at = datetime(2026, 12, 1, 0, 0, tzinfo=timezone.utc)
    for i, chunk in enumerate(objects):
        raw = raw_events.DuckDBRaw(str(db))
        raw.load(chunk, loaded_at + timedelta(minutes=i), f"bronze/seed-{seed}/object-{i}")
        raw.close()
        ok, bad = dbt("run")
        if not ok:
            check.check(f"seed {seed}: incremental run after load {i + 1} of {len(objects)}", False, f"failed: {bad}")
            return
        torn.extend(f"after load {i + 1}: {row}" for row in check.duckdb_rows(db, GOLD_BALANCES_DIFFER)
                    if not gap_posting_missing(db, row[0], gap_postings))
        daily.extend(f"after load {i + 1}: {row}" for row in check.duckdb_rows(db, DAILY_BALANCES_DIFFER))
    check.check(f"seed {seed}: after every build, each account's current balance in gold equals the sum of "
                "its postings in gold", not torn, "; ".join(torn[:3]) + f" ({len(torn)} in all)")
    check.check(f"seed {seed}: after every build, each account's last closing balance in "
                "gold.fct_daily_account_balances is its current balance in gold", not daily,
                "; ".join(daily[:3]) + f" ({len(daily)} in all)")
    want = max(e["lsn"] for e in events if e.get("_raw") == raw_events.METADATA and e["op"] == "END")
    got = check.duckdb_rows(db, "select lsn from gold.cut")
    check.check(f"seed {seed}: once everything is loaded the cut is the last END", got == [(want,)],
                f"gold.cut {got}, last END {want}")
    name = f"seed {seed} ({len(events)} events, {len(objects)} loads)"
    ok, bad = dbt("test", "--vars", "{test_all_rows: true}")
    check.check(f"{name}: every test passes on every row built incrementally", ok, f"failed: {bad}")
    fetch = lambda sql: check.duckdb_rows(db, sql)  # noqa: E731
    incremental = check.snapshot_relations(fetch)
    checkpoints_sql = "select account_id, lsn, tx_id, total, counted_to from silver.balance_checkpoints"
    kept = {r[0]: r[1:] for r in fetch(checkpoints_sql)}
    # first_lsn, kept run by run, is a version of the account: never below its first version (a
    # late event only moves the first down), or the balance test would take a first update for
    # a later one
    first_version = {k: min(v) for (t, k), v in log.versions.items() if t == "accounts"}
    below = [(a, lsn, first_version.get(a))
             for a, lsn in fetch("select account_id, first_lsn from silver.balance_checkpoints")
             if lsn is not None and lsn < first_version.get(a, lsn)]
    check.check(f"{name}: each checkpoint's first_lsn is at or above its account's first version", not below,
                "; ".join(f"{a}: first_lsn {lsn}, first version {v}" for a, lsn, v in below[:3]))
    ok, bad = dbt("build", "--full-refresh")
    check.check(f"{name}: full refresh passes every model and test", ok, f"failed: {bad}")
    check.compare_relations(f"{name}: incremental runs equal a full refresh", incremental,
                            check.snapshot_relations(fetch))
    # Each run added its postings to the checkpoints it kept; where the full refresh checks an
    # account at the same version, it must have summed the same (the others moved on since).
    full = {r[0]: r[1:] for r in fetch(checkpoints_sql)}
    same = [a for a in kept if a in full and kept[a][:2] == full[a][:2]]
    wrong = [a for a in same if kept[a] != full[a]]
    check.check(f"{name}: checkpoints summed run by run equal the full sums at the same version",
                bool(same) and not wrong, f"{len(same)} compared of {len(kept)} kept; " + "; ".join(
                    f"{a}: runs {kept[a]}, full {full[a]}" for a in wrong[:3]))

    for table, key in (("customers", "customer_id"), ("accounts", "account_id")):
        got: dict = {}
        for k, lsn in fetch(f"select {key}, lsn from silver.{table}_history order by lsn"):
            got.setdefault(k, []).append(lsn)
        want = {k: v for (t, k), v in log.versions.items() if t == table}
        wrong = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
        check.check(f"{name}: {table} history holds exactly the log's versions", not wrong,
                    "; ".join(f"{k}: history {got.get(k)}, log {want.get(k)}" for k in wrong[:3]))
    got = dict(fetch("select transaction_id, min(lsn) from gold.fct_postings group by 1"))
    want = {k: v[0] for (t, k), v in log.versions.items() if t == "transactions"}
    wrong = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
    check.check(f"{name}: each transaction posts once, at its first version", not wrong,
                "; ".join(f"{k}: posted at {got.get(k)}, first version {want.get(k)}" for k in wrong[:3]))
    clamped = fetch("select count(*) from silver.customers_history where op = 'r' and committed_at > valid_from")[0][0]
    check.check(f"{name}: a snapshot read later than the commit after it was clamped", clamped > 0,
                "the log has no such read: the race was not generated")
    inferred = fetch("select count(*) from silver.customers_history where snapshot = 'inferred'")[0][0]
    check.check(f"{name}: a customer deleted while nothing captured ends at the next snapshot", inferred > 0,
                "no delete was inferred")
    windows = fetch("select count(*) from silver.customers_history h where snapshot = 'inferred' "
                    "and lsn in (select lsn from raw.snapshot_windows)")[0][0]
    check.check(f"{name}: a customer deleted while another destination took the changes ends at its "
                "incremental snapshot's window", windows > 0, "no delete was inferred from a window")
    gap = fetch("select count(*) from gold.fct_postings p inner join silver.stg_transactions_changes c "
                "on c.transaction_id = p.transaction_id and c.lsn = p.lsn and c.op = 'r' and c.snapshot = 'incremental'")[0][0]
    check.check(f"{name}: postings made in a gap, first read by an incremental snapshot, are in the ledger "
                "(balances_match_postings places them in the gap)", gap > 0, "the log has no such posting")
    days = fetch("select count(*) from (select account_id from gold.fct_daily_account_balances "
                 "where account_id not in (select account_id from silver.accounts_history where is_deleted) "
                 "group by account_id having count(*) <> max(balance_date) - min(balance_date) + 1)")[0][0]
    check.check(f"{name}: every account has a balance on every day from its first to its last", days == 0,
                f"{days} accounts miss days")


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    workdir = Path(sys.argv[1]).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in (sys.argv[2:] or os.environ.get("FIN_DBT_PROPERTY_SEEDS", "1 2").split())]
    dbt = Dbt(workdir)
    for seed in seeds:
        run_seed(dbt, workdir, seed)
    passed = sum(1 for _, ok, _ in check.results if ok)
    print(f"{passed} passed, {len(check.results) - passed} failed")
    sys.exit(0 if passed == len(check.results) else 1)


if __name__ == "__main__":
    main()
