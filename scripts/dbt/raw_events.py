"""RAW change events for the dbt project's tests: the loader's table contract, a scenario of
changes written as Debezium would emit them, and writers for DuckDB and Snowflake (fakesnow).

The scenario is built by replaying operations on an in-memory copy of the OLTP rows, so every
event's before/after image, log position and commit time follow from the operations, and the
checks can derive the expected history from the same events instead of hard-coding it.
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal

TABLES = ("customers", "accounts", "transactions")
# The capture's records of completed incremental snapshots (bronze.SnapshotWindow) load like a
# table's events: each event names its RAW table in "_raw", else its source_table.
WINDOWS = "snapshot_windows"
# Debezium's transaction metadata (fin.transaction_metadata): a BEGIN and an END row per streamed
# transaction, in commit order on one partition, as the landing lands them (docs/landing.md).
METADATA = "transaction_metadata"
RAW_TABLES = TABLES + (WINDOWS, METADATA)

# The RAW tables' columns (the loader's contract), in order, with DuckDB and Snowflake types.
COLUMNS = [
    ("topic", "VARCHAR", "VARCHAR"),
    ("partition", "INTEGER", "INTEGER"),
    ("offset", "BIGINT", "BIGINT"),
    ("key", "VARCHAR", "VARCHAR"),
    ("op", "VARCHAR", "VARCHAR"),
    ("lsn", "BIGINT", "BIGINT"),
    ("tx_id", "BIGINT", "BIGINT"),
    ("commit_ts_us", "BIGINT", "BIGINT"),
    ("event_ts_ms", "BIGINT", "BIGINT"),
    ("snapshot", "VARCHAR", "VARCHAR"),
    ("source_schema", "VARCHAR", "VARCHAR"),
    ("source_table", "VARCHAR", "VARCHAR"),
    ("before", "JSON", "VARIANT"),
    ("after", "JSON", "VARIANT"),
    ("_object_key", "VARCHAR", "VARCHAR"),
    ("_loaded_at", "TIMESTAMPTZ", "TIMESTAMP_TZ"),
]

KEYS = {"customers": "customer_id", "accounts": "account_id", "transactions": "transaction_id"}


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def money(d: Decimal) -> str:
    return str(d.quantize(Decimal("0.01")))


@dataclass
class Log:
    """A Postgres change log in miniature: transactions of row changes, with lsn, txId, commit
    time, and the Kafka offset each event gets on its topic (one partition per topic)."""

    start: datetime
    rows: dict = field(default_factory=lambda: {t: {} for t in TABLES})
    events: list = field(default_factory=list)
    lsn: int = 0x1000000
    tx_id: int = 700
    clock: datetime | None = None
    offsets: dict = field(default_factory=lambda: {t: 0 for t in TABLES + (METADATA,)})
    # What the history must hold: {(table, key): [lsn of each version]}, and the row image the
    # captured log last showed for each key (None after a delete). Changes made while capturing is
    # False reach the rows but not the log, as when nothing was capturing.
    versions: dict = field(default_factory=dict)
    captured: dict = field(default_factory=dict)
    capturing: bool = True
    _pending: list = field(default_factory=list)
    _ns: uuid.UUID = uuid.UUID("5b0c3a57-95a7-4bd8-9f1f-3b9b2d7d6e00")

    def __post_init__(self):
        self.clock = self.start

    def uuid(self, name: str) -> str:
        return str(uuid.uuid5(self._ns, name))

    def tick(self, seconds: float = 1.0):
        self.clock += timedelta(seconds=seconds)

    def change(self, table: str, op: str, key: str, **values):
        """Stage one row change in the current transaction; op r/c/u/d like Debezium."""
        rows = self.rows[table]
        before = copy.deepcopy(rows.get(key))
        if op == "d":
            after = None
            del rows[key]
        else:
            row = copy.deepcopy(before) if (before and op == "u") else {}
            row.update(values)
            if op == "u":
                row["updated_at"] = iso(self.clock)
                row["version"] = before["version"] + 1
            rows[key] = row
            after = copy.deepcopy(row)
        self.lsn += 0x100
        self._pending.append((table, op, key, None if op in ("c", "r") else before, after, self.lsn))

    def commit(self, snapshot: bool = False):
        """Commit the staged changes as one transaction: they share txId and commit time."""
        self.tx_id += 1
        commit_us = int(self.clock.timestamp() * 1_000_000)
        streamed = self.capturing and not snapshot and self._pending
        if streamed:
            self.boundary("BEGIN", self._pending[0][5] - 0x10, commit_us, None)
        for table, op, key, before, after, lsn in self._pending:
            if self.capturing:
                self.emit(table, op, key, before, after, lsn, commit_us, "true" if snapshot else "false")
        if streamed:
            self.lsn += 0x100  # the end of the commit record
            counts = {}
            for table, *_ in self._pending:
                counts[table] = counts.get(table, 0) + 1
            self.boundary("END", self.lsn, commit_us, counts)
        self._pending = []
        self.tick(0.25)

    def emit(self, table: str, op: str, key: str, before, after, lsn: int, commit_us: int, snapshot: str):
        """One change event on its table's topic; records the version it makes, if any: every
        streamed change is one, a snapshot read only when the row differs from the last one the
        log showed."""
        last = self.captured.get((table, key))
        if op != "r" or last is None or last != after:
            self.versions.setdefault((table, key), []).append(lsn)
        self.captured[(table, key)] = copy.deepcopy(after)
        offset = self.offsets[table]
        self.offsets[table] += 1
        self.events.append({
            "topic": f"fin.public.{table}", "partition": 0, "offset": offset,
            "key": json.dumps({KEYS[table]: key}), "op": op, "lsn": lsn, "tx_id": self.tx_id,
            "commit_ts_us": commit_us, "event_ts_ms": commit_us // 1000 + 3,
            "snapshot": snapshot, "source_schema": "public", "source_table": table,
            "before": None if before is None else json.dumps(before),
            "after": None if after is None else json.dumps(after),
        })

    def boundary(self, status: str, lsn: int, commit_us: int, counts: dict | None):
        """A BEGIN or END record of the current transaction on the metadata topic, as the landing
        lands it: tx_id and lsn from the id, commit time from ts_ms (milliseconds), the record in
        after. Debezium's ts_ms drops the microseconds the change events carry."""
        ts_ms = commit_us // 1000
        record = {"status": status, "id": f"{self.tx_id}:{lsn}", "ts_ms": ts_ms,
                  "event_count": None if counts is None else sum(counts.values()),
                  "data_collections": None if counts is None else [
                      {"data_collection": f"public.{t}", "event_count": n} for t, n in counts.items()]}
        offset = self.offsets[METADATA]
        self.offsets[METADATA] += 1
        self.events.append({
            "_raw": METADATA, "topic": f"fin.{METADATA}", "partition": 0, "offset": offset,
            "key": json.dumps({"id": record["id"]}), "op": status, "lsn": lsn, "tx_id": self.tx_id,
            "commit_ts_us": ts_ms * 1000, "event_ts_ms": ts_ms, "snapshot": None,
            "source_schema": None, "source_table": None, "before": None, "after": json.dumps(record),
        })

    def snapshot(self, read_us):
        """A snapshot of every table as Debezium takes one: every row an op r event at one
        position (the slot's consistent point) in one transaction, source.snapshot marking the
        first row, each table's first and last, and the very last; read_us(i) is the time the
        i-th row was read, which real captures stamp instead of a commit time. Tables are read
        in TABLES order, rows by key, each table's rows at consecutive offsets of its topic."""
        self.lsn += 0x100
        self.tx_id += 1
        rows = [(t, k) for t in TABLES for k in sorted(self.rows[t])]
        for i, (t, k) in enumerate(rows):
            if i == len(rows) - 1:
                marker = "last"
            elif i == 0:
                marker = "first"
            elif rows[i + 1][0] != t:
                marker = "last_in_data_collection"
            elif rows[i - 1][0] != t:
                marker = "first_in_data_collection"
            else:
                marker = "true"
            self.emit(t, "r", k, None, copy.deepcopy(self.rows[t][k]), self.lsn, read_us(i), marker)
        # A key the log had alive that the snapshot did not read was deleted meanwhile; the history
        # can tell when the table's rows carry both markers (two rows or more).
        for (t, k), image in list(self.captured.items()):
            if image is not None and k not in self.rows[t] and len(self.rows[t]) >= 2:
                self.versions.setdefault((t, k), []).append(self.lsn)
                self.captured[(t, k)] = None

    def incremental_snapshot(self, table: str, chunk: int, between, complete: bool = True, gap=None):
        """An online incremental snapshot of one table, as the Go capture takes it: chunks of
        rows by key up to the largest key at the start, each read between a low and a high
        watermark (signal-table rows, never events); between(i) runs streamed changes inside
        the i-th chunk's window. A chunk row whose key changed in its window is dropped (the
        streamed event is newer); the rest are op r events at the high watermark's position,
        stamped with the low watermark's commit time. When complete, the capture's window record
        (raw.snapshot_windows) follows: a key the log had alive before the window and without an
        event inside it was deleted meanwhile and ends at the window's close. Not complete: the
        capture was stopped mid-way and its rows are all there is (no record, nothing ends).
        gap: (from, to), what the destination missed before this snapshot (bronze.Gap): the
        record says so, as the capture's does for a snapshot it takes because of one."""
        self.lsn += 0x100
        self.tx_id += 1
        open_lsn, opened_us = self.lsn, int(self.clock.timestamp() * 1_000_000)
        self.tick(0.05)
        start, keys = len(self.events), sorted(self.rows[table])
        max_key, last, rows, i = (keys[-1] if keys else None), None, 0, 0
        while max_key is not None:
            self.lsn += 0x100
            self.tx_id += 1
            low_us = int(self.clock.timestamp() * 1_000_000)
            read = sorted(k for k in self.rows[table] if (last is None or k > last) and k <= max_key)[:chunk]
            images = {k: copy.deepcopy(self.rows[table][k]) for k in read}
            mark = len(self.events)
            between(i)
            changed = {json.loads(e["key"])[KEYS[table]] for e in self.events[mark:] if e["source_table"] == table}
            self.lsn += 0x100  # the high watermark
            self.tx_id += 1
            for k in read:
                if k not in changed:
                    self.emit(table, "r", k, None, images[k], self.lsn, low_us, "incremental")
                    rows += 1
            self.tick(0.05)
            i += 1
            if len(read) < chunk or read[-1] == max_key:
                break
            last = read[-1]
            if not complete and i == 1:
                return
        if not complete:
            return
        close_lsn = self.lsn if max_key is not None else self.lsn + 0x100
        self.lsn = close_lsn
        inside = {json.loads(e["key"])[KEYS[table]] for e in self.events[start:] if e["source_table"] == table}
        for (t, k), image in list(self.captured.items()):
            if t == table and image is not None and k not in inside:
                self.versions.setdefault((t, k), []).append(close_lsn)
                self.captured[(t, k)] = None
        window = {"id": self.uuid(f"snapshot-{open_lsn}"), "table": f"public.{table}",
                  "open_lsn": open_lsn, "close_lsn": close_lsn, "rows": rows,
                  "opened_at": iso(datetime.fromtimestamp(opened_us / 1e6, timezone.utc))}
        if gap:
            window.update(gap_from_lsn=gap[0], gap_to_lsn=gap[1])
        self.events.append({
            "_raw": WINDOWS, "topic": f"fin.public.{table}.{WINDOWS}", "partition": 0, "offset": open_lsn,
            "key": json.dumps({"table": f"public.{table}", "open_lsn": open_lsn, "close_lsn": close_lsn}),
            "op": "c", "lsn": close_lsn, "tx_id": self.tx_id, "commit_ts_us": opened_us,
            "event_ts_ms": opened_us // 1000, "snapshot": "incremental", "source_schema": "public",
            "source_table": table, "before": None, "after": json.dumps(window),
        })

    # The bank's operations, as shared/bank performs them in one database transaction.

    def new_customer(self, name: str, first: str, last: str, op: str = "c") -> str:
        cid = self.uuid("customer-" + name)
        now = iso(self.clock)
        self.change("customers", op, cid, customer_id=cid, first_name=first, last_name=last,
                    email=f"{first}.{last}@example.com".lower(), address_line="1 Main St",
                    city="Springfield", postal_code="12345", country="US", closed_at=None,
                    created_at=now, updated_at=now, version=1)
        self.commit(snapshot=(op == "r"))
        return cid

    def update_customer(self, cid: str, **values):
        self.change("customers", "u", cid, **values)
        self.commit()

    def delete_customer(self, cid: str):
        self.change("customers", "d", cid)
        self.commit()

    def delete_account(self, aid: str):
        self.change("accounts", "d", aid)
        self.commit()

    def new_account(self, name: str, cid: str, account_type: str = "CHECKING") -> str:
        aid = self.uuid("account-" + name)
        now = iso(self.clock)
        self.change("accounts", "c", aid, account_id=aid, customer_id=cid, account_type=account_type,
                    currency="USD", nickname=None, balance="0.00", status="ACTIVE",
                    created_at=now, updated_at=now, version=1)
        self.commit()
        return aid

    def update_account(self, aid: str, **values):
        self.change("accounts", "u", aid, **values)
        self.commit()

    def post(self, name: str, kind: str, account: str, amount: str, related: str | None = None,
             reverses: str | None = None) -> str:
        """Deposit, withdrawal or transfer: balance updates then the ledger row, one commit."""
        tid = self.uuid("transaction-" + name)
        amt = Decimal(amount)
        deltas = {"DEPOSIT": {account: amt}, "WITHDRAWAL": {account: -amt},
                  "TRANSFER": {account: -amt, related: amt}}[kind]
        for aid in sorted(deltas):  # shared/bank locks and updates in id order
            bal = Decimal(self.rows["accounts"][aid]["balance"]) + deltas[aid]
            self.change("accounts", "u", aid, balance=money(bal))
        now = iso(self.clock)
        self.change("transactions", "c", tid, transaction_id=tid, account_id=account,
                    transaction_type=kind, amount=amount, currency="USD", related_account_id=related,
                    status="COMPLETED", description=name, category=None,
                    reverses_transaction_id=reverses, created_at=now, updated_at=now, version=1)
        self.commit()
        return tid

    def reverse(self, name: str, tid: str) -> str:
        """shared/bank.Reverse: the compensating posting and the original marked REVERSED."""
        orig = self.rows["transactions"][tid]
        kind, account, related = orig["transaction_type"], orig["account_id"], orig["related_account_id"]
        if kind == "TRANSFER":
            account, related = related, account
        else:
            kind = {"DEPOSIT": "WITHDRAWAL", "WITHDRAWAL": "DEPOSIT"}[kind]
        rid = self.uuid("transaction-" + name)
        amt = Decimal(orig["amount"])
        deltas = {"DEPOSIT": {account: amt}, "WITHDRAWAL": {account: -amt},
                  "TRANSFER": {account: -amt, related: amt}}[kind]
        for aid in sorted(deltas):
            bal = Decimal(self.rows["accounts"][aid]["balance"]) + deltas[aid]
            self.change("accounts", "u", aid, balance=money(bal))
        now = iso(self.clock)
        self.change("transactions", "c", rid, transaction_id=rid, account_id=account,
                    transaction_type=kind, amount=orig["amount"], currency="USD",
                    related_account_id=related, status="COMPLETED", description=name,
                    category=None, reverses_transaction_id=tid, created_at=now, updated_at=now,
                    version=1)
        self.change("transactions", "u", tid, status="REVERSED")
        self.commit()
        return rid

    def take(self) -> list:
        """The events since the last take: one loader batch."""
        out, self.events = self.events, []
        return out


def scenario(start: datetime | None = None):
    """Two loads of changes. Between them dbt runs once; the second load holds several changes of
    one key, a delete followed by a re-insert, a reversal and a redelivered (duplicate) event."""
    log = Log(start=start or datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc))
    ada = log.new_customer("ada", "Ada", "Lovelace", op="r")
    bob = log.new_customer("bob", "Bob", "Builder")
    cy = log.new_customer("cy", "Cy", "Young")
    log.update_customer(bob, city="Shelbyville")
    log.update_customer(bob, email="bob@builder.example")
    log.delete_customer(cy)  # never held an account
    a1 = log.new_account("ada-checking", ada)
    a2 = log.new_account("ada-savings", ada, "SAVINGS")
    b1 = log.new_account("bob-checking", bob)
    log.post("t1", "DEPOSIT", a1, "100.00")
    t2 = log.post("t2", "TRANSFER", a1, "30.50", related=a2)
    t3 = log.post("t3", "WITHDRAWAL", a2, "10.00")
    log.post("t4", "DEPOSIT", b1, "0.10")
    first = log.take()

    log.tick(86400)  # the next day: daily balances carry forward over it
    log.update_customer(ada, last_name="King")
    log.update_customer(ada, city="London", country="GB")
    log.update_customer(ada, address_line="12 St James's Sq")
    cy2 = log.new_customer("cy", "Cy", "Young")  # the same key re-inserted
    assert cy2 == cy
    log.update_account(a1, nickname="everyday")
    log.post("t5", "DEPOSIT", a1, "5.25")
    log.reverse("t6-reverses-t3", t3)
    log.reverse("t7-reverses-t2", t2)
    log.update_account(b1, status="INACTIVE")
    second = log.take()
    # A capture restart redelivers the last account event at a new offset.
    dup = dict(next(e for e in reversed(second) if e["source_table"] == "accounts"))
    dup["offset"] = log.offsets["accounts"]
    log.offsets["accounts"] += 1
    second.append(dup)
    return log, first, second


def two_accounts(log: Log, name: str, last: str, deposit: str) -> tuple[str, str]:
    """A customer (first name name.title()) with two accounts, name-a and name-b, and a deposit of
    50.00 to the first, named deposit: the ids of the two accounts."""
    cid = log.new_customer(name, name.title(), last)
    a = log.new_account(f"{name}-a", cid)
    b = log.new_account(f"{name}-b", cid)
    log.post(deposit, "DEPOSIT", a, "50.00")
    return a, b


def broken(start: datetime | None = None) -> list:
    """Purpose-broken money: an amount with three decimals, a transfer without its destination,
    and an account balance that does not match its postings."""
    log = Log(start=start or datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc))
    a, b = two_accounts(log, "dee", "Broken", "ok")
    events = log.take()
    # amount "12.345" (not exact money) on a deposit; balance moved as if it were 12.35
    log.post("three-decimals", "DEPOSIT", b, "12.35")
    ev = log.take()
    for e in ev:
        if e["source_table"] == "transactions":
            after = json.loads(e["after"])
            after["amount"] = "12.345"
            e["after"] = json.dumps(after)
    events += ev
    # a transfer whose destination leg is missing from the event
    log.post("no-destination", "TRANSFER", a, "5.00", related=b)
    ev = log.take()
    for e in ev:
        if e["source_table"] == "transactions":
            after = json.loads(e["after"])
            after["related_account_id"] = None
            e["after"] = json.dumps(after)
    events += ev
    # a balance a cent off its postings (then a deposit: the balance test checks a version once
    # its own transaction's posting, or a later version, shows the ledger is loaded up to it)
    log.update_account(a, balance=money(Decimal(log.rows["accounts"][a]["balance"]) + Decimal("0.01")))
    log.post("after-the-cent", "DEPOSIT", a, "1.00")
    return events + log.take()


def later_deposit(cent_off: bool, start: datetime | None = None) -> tuple[list, list, list]:
    """Three loads: two accounts with a deposit each; then (the checkpoint path of
    balances_match_postings checks it from where the first build left the account) two deposits
    on the first, its balance a cent off its postings if cent_off, right otherwise; then a
    deposit on the second account only (a build that posts nothing to the first)."""
    log = Log(start=start or datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc))
    eve = log.new_customer("eve", "Eve", "Later")
    a = log.new_account("eve-a", eve)
    b = log.new_account("eve-b", eve)
    log.post("first", "DEPOSIT", a, "50.00")
    log.post("first-b", "DEPOSIT", b, "5.00")
    first = log.take()
    if cent_off:
        log.update_account(a, balance=money(Decimal(log.rows["accounts"][a]["balance"]) + Decimal("0.01")))
    log.post("second", "DEPOSIT", a, "1.00")
    log.post("third", "DEPOSIT", a, "2.00")
    second = log.take()
    log.post("fourth-b", "DEPOSIT", b, "3.00")
    return first, second, log.take()


def gap_reread(lose_gap_posting: bool, start: datetime | None = None) -> tuple[list, list, list]:
    """Three loads around a gap, as 66-lost-lake.sh met it under load: an account with a deposit;
    then a deposit made while another destination took the slot's changes, the incremental
    snapshot that repairs the gap reading customers and accounts (the account's balance holds the
    gap's deposit: a version of its own) and a deposit streamed after it; then the snapshot of
    transactions, which reads the gap's deposit (left out if lose_gap_posting: lost from the
    lake), and a deposit streamed after it, which moves gold's cut past the snapshot. A build
    between the second and third loads sees the balance before the posting."""
    log = Log(start=start or datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc))
    gil = log.new_customer("gil", "Gil", "Gap")
    a = log.new_account("gil-a", gil)
    log.post("before", "DEPOSIT", a, "10.00")
    first = log.take()
    gap_from = log.lsn
    log.capturing = False
    gap_deposit = log.post("in-the-gap", "DEPOSIT", a, "7.00")
    log.capturing = True
    gap = (gap_from, log.lsn)
    for table in ("customers", "accounts"):
        log.incremental_snapshot(table, 4, lambda i: None, gap=gap)
    log.post("after-the-gap", "DEPOSIT", a, "1.00")
    second = log.take()
    log.incremental_snapshot("transactions", 4, lambda i: None, gap=gap)
    log.post("after-the-snapshot", "DEPOSIT", a, "1.00")  # a transaction after it: the cut passes it
    third = [e for e in log.take() if not (lose_gap_posting and e.get("source_table") == "transactions"
                                           and not e.get("_raw") and json.loads(e["key"])["transaction_id"] == gap_deposit)]
    return first, second, third


def gap_streamed(lose_gap_posting: bool, start: datetime | None = None) -> list:
    """Loads around a gap whose account is never re-read as a version of its own (66-lost-lake.sh
    with landing batches of 10,000): an account with a deposit; a deposit made while another
    destination took the slot's changes (and a second account opened and paid into, both missed);
    then, as the snapshot that repairs the gap reads customers, a deposit streamed to each account,
    whose balance holds the gap's deposit (for the second, its first event), so the
    accounts' snapshot reads the row unchanged (no version) and only the transactions' snapshot,
    later, reads the gap's deposit. Each table's snapshot is a load of its own (the customers'
    window with the accounts'), so builds run while the streamed balance is loaded and the gap's
    posting is not, the first before any window names the gap; the last load (the
    transactions' snapshot and a deposit after it, which moves gold's cut past it) lacks the
    gap's posting if lose_gap_posting (lost from the lake)."""
    log = Log(start=start or datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc))
    ivy = log.new_customer("ivy", "Ivy", "Streamed")
    a = log.new_account("ivy-a", ivy)
    log.post("before", "DEPOSIT", a, "10.00")
    loads = [log.take()]
    gap_from = log.lsn
    log.capturing = False
    gap_deposit = log.post("in-the-gap", "DEPOSIT", a, "7.00")
    b = log.new_account("ivy-b", ivy)  # its insert missed too: its first event is the update below
    log.post("in-the-gap-b", "DEPOSIT", b, "3.00")
    log.capturing = True
    gap = (gap_from, log.lsn)

    def deposits(i):
        log.post("while-customers-are-read", "DEPOSIT", a, "2.00")
        log.post("while-customers-are-read-b", "DEPOSIT", b, "4.00")

    log.incremental_snapshot("customers", 4, deposits, gap=gap)
    customers = log.take()
    loads.append([e for e in customers if e.get("_raw") != WINDOWS])  # before any window of the gap
    log.incremental_snapshot("accounts", 4, lambda i: None, gap=gap)
    loads.append([e for e in customers if e.get("_raw") == WINDOWS] + log.take())
    log.incremental_snapshot("transactions", 4, lambda i: None, gap=gap)
    log.post("after-the-snapshot", "DEPOSIT", a, "1.00")
    loads.append([e for e in log.take() if not (lose_gap_posting and e.get("source_table") == "transactions"
                                                and not e.get("_raw")
                                                and json.loads(e["key"])["transaction_id"] == gap_deposit)])
    return loads


def gap_update(during: str, change: str, start: datetime | None = None) -> tuple[Log, list, str]:
    """Three loads around a gap whose transfer is updated before the snapshot that repairs the gap
    reads it (property seeds 4 and 50): two accounts with a deposit; then a transfer made while
    another destination took the slot's changes, the incremental snapshots of customers, accounts
    and transactions that repair the gap (a deposit to the first account streamed while customers
    are read), and the transfer changed inside the window of the snapshot of table `during`:
    change "reverse" (shared/bank.Reverse, which moves both balances) or "describe"
    (bank.Describe: a new category, no balance moves); then a deposit streamed after them, in a
    load of its own, so a build checks the balances that hold the transfer before it.
    during "transactions": the chunk holding the transfer drops it (changed in its window), so
    the update is all the log shows of the transfer; "accounts": the transactions' chunk reads it
    later. Returns the log, the three loads and the transfer's id."""
    log = Log(start=start or datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc))
    a, b = two_accounts(log, "hal", "Gap", "before")
    first = log.take()
    gap_from = log.lsn
    log.capturing = False
    transfer = log.post("in-the-gap", "TRANSFER", a, "20.00", related=b)
    log.capturing = True
    gap = (gap_from, log.lsn)

    def update(i):
        if change == "reverse":
            log.reverse("reverses-the-gap", transfer)
        else:
            log.change("transactions", "u", transfer, category="rent")
            log.commit()

    def deposit(i):
        # the balance streamed after the gap holds the transfer, and the account is not re-read
        # (unchanged since): its version below the update is the one a build checks
        log.post("while-customers-are-read", "DEPOSIT", a, "2.00")

    for table in TABLES:
        log.incremental_snapshot(table, 4, update if table == during else deposit if table == "customers"
                                 else (lambda i: None), gap=gap)
    second = log.take()
    log.post("after-the-gap", "DEPOSIT", a, "1.00")
    return log, [first, second, log.take()], transfer


class DuckDBRaw:
    """RAW tables in a DuckDB file, as the local loader makes them."""

    def __init__(self, path: str):
        import duckdb

        self.con = duckdb.connect(path)

    def create(self):
        self.con.execute("create schema if not exists raw")
        cols = ", ".join(f'"{n}" {t}' for n, t, _ in COLUMNS)
        for t in RAW_TABLES:
            self.con.execute(f"create table if not exists raw.{t} ({cols})")

    def load(self, events: list, loaded_at: datetime, object_key: str = "fixture"):
        names = [n for n, _, _ in COLUMNS]
        placeholders = ", ".join("?" for _ in names)
        quoted = ", ".join(f'"{n}"' for n in names)
        for t in RAW_TABLES:
            rows = [[e.get(n) for n in names[:-2]] + [object_key, loaded_at]
                    for e in events if e.get("_raw", e["source_table"]) == t]
            if rows:
                self.con.executemany(f"insert into raw.{t} ({quoted}) values ({placeholders})", rows)

    def close(self):
        self.con.close()


class SnowflakeRaw:
    """RAW tables in Snowflake (here: a fakesnow server), as the Snowflake loader makes them."""

    def __init__(self, **connect_args):
        import snowflake.connector

        self.con = snowflake.connector.connect(**connect_args)
        self.cur = self.con.cursor()

    def create(self):
        self.cur.execute("create schema if not exists raw")
        cols = ", ".join(f"{n} {t}" for n, _, t in COLUMNS)
        for t in RAW_TABLES:
            self.cur.execute(f"create table if not exists raw.{t} ({cols})")

    def load(self, events: list, loaded_at: datetime, object_key: str = "fixture"):
        names = [n for n, _, _ in COLUMNS]
        for t in RAW_TABLES:
            for e in (e for e in events if e.get("_raw", e["source_table"]) == t):
                values = [e.get(n) for n in names[:-2]] + [object_key, loaded_at.isoformat()]
                select = ", ".join(
                    "parse_json(%s)" if n in ("before", "after") else
                    "to_timestamp_tz(%s)" if n == "_loaded_at" else "%s" for n in names)
                self.cur.execute(f"insert into raw.{t} select {select}", values)

    def close(self):
        self.con.close()


def main(argv: list) -> None:
    """raw_events.py duckdb PATH scenario|broken: writes fixture RAW tables into a DuckDB file
    (the scenario's two loads, or the purpose-broken money events) for tests outside Python."""
    if len(argv) != 3 or argv[0] != "duckdb" or argv[2] not in ("scenario", "broken"):
        raise SystemExit("usage: raw_events.py duckdb PATH scenario|broken")
    raw = DuckDBRaw(argv[1])
    raw.create()
    if argv[2] == "broken":
        raw.load(broken(), datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc), "bronze/broken")
    else:
        _, first, second = scenario()
        raw.load(first, datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc), "bronze/load-1")
        raw.load(second, datetime(2026, 11, 25, 11, 0, tzinfo=timezone.utc), "bronze/load-2")
    raw.close()


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
