"""dbt's CLI with one interleaving forced: a schema listed lazily by a node's thread is read by
another thread while the listing is half done (check.py runs its dbt commands through it).

dbt caches each schema's relations. The schemas of the project's own models are listed before any
node runs; any other schema (the sources' RAW) is listed on its first look-up (dbt-adapters
BaseAdapter.list_relations), and the listing adds its relations to the cache one by one, the first
add marking the whole schema cached. A thread looking a relation up in between finds the schema
cached and the relation missing: load_relation returns None for a table that exists. In the flake
this reproduces, fct_postings was listing RAW while fct_transactions looked up
raw.transaction_metadata, took the "no metadata yet" branch and built 0 rows (a window of a few
milliseconds, hit under a load of about 20).

Here the first node thread to list a schema lazily stops for HOLD_S seconds after its first add,
and a thread that asks meanwhile waits for that add: every model or test that looks the schema up
in that window (the models that start together once the cut is built, under any load) reads it
half-listed. Listings on the main thread (the on-run-start hooks, before any node runs) are left
alone: nothing can read concurrently, and then nothing waits. Commands that run no hooks (compile,
docs generate: they only render SQL) run as plain dbt."""

from __future__ import annotations

import re
import sys
import threading
import time

HOLD_S = 15.0


def say(line: str) -> None:
    print(f"listing_race: {line}", file=sys.stderr, flush=True)


def force_half_listed_reads() -> None:
    import inspect

    from dbt.adapters.base.impl import BaseAdapter
    from dbt.adapters.cache import RelationsCache

    # A dbt that no longer looks relations up this way would make the hold below a no-op and the
    # checks run through it prove nothing: stop instead.
    for fn, call in ((BaseAdapter.get_relation, "self.list_relations("), (BaseAdapter.list_relations, "self.cache.add(")):
        if call not in inspect.getsource(fn):
            raise SystemExit(f"listing_race.py: dbt's {fn.__qualname__} no longer calls {call}...): "
                             "compare it with this wrapper and dbt/macros/relations_cache.sql")

    lock = threading.Lock()
    listings: dict = {}  # (database, schema) lowercased -> the listing under way from a node thread
    lister = threading.local()  # the key this thread is listing, if it lists one
    list_relations, add = BaseAdapter.list_relations, RelationsCache.add

    def key_of(database, schema) -> tuple:
        return ((database or "").lower(), (schema or "").lower())

    def held_list_relations(self, database, schema):
        if threading.current_thread() is threading.main_thread():
            return list_relations(self, database, schema)
        key = key_of(database, schema)
        with lock:
            listing = listings.get(key)
            if listing is None:
                if (database, schema) in self.cache:
                    return list_relations(self, database, schema)
                listing = listings[key] = {"added": threading.Event(), "state": "listing"}
                mine = True
            else:
                mine = False
        if mine:
            lister.key = key
            try:
                return list_relations(self, database, schema)
            finally:
                lister.key = None
                listing["state"] = "done"
                listing["added"].set()
        listing["added"].wait(HOLD_S)
        if listing["state"] == "held":
            say(f"{threading.current_thread().name} reads {'.'.join(key)} half-listed")
        return list_relations(self, database, schema)

    def held_add(self, relation):
        add(self, relation)
        key = getattr(lister, "key", None)
        if key is None or key != key_of(relation.database, relation.schema):
            return
        listing = listings[key]
        if listing["state"] == "listing":
            listing["state"] = "held"
            listing["added"].set()
            say(f"{threading.current_thread().name} listing {'.'.join(key)} holds {HOLD_S:.0f}s after its first add")
            time.sleep(HOLD_S)

    BaseAdapter.list_relations = held_list_relations
    RelationsCache.add = held_add


# The commands that run the project's on-run-start hooks (dbt/macros/relations_cache.sql).
HOOKED = {"build", "run", "test", "seed", "snapshot", "retry"}

if __name__ == "__main__":
    if next((a for a in sys.argv[1:] if not a.startswith("-")), None) in HOOKED:
        force_half_listed_reads()
    from dbt.cli.main import cli

    sys.argv[0] = re.sub(r"(-script\.pyw|\.exe)?$", "", sys.argv[0])
    sys.exit(cli())
