#!/usr/bin/env python3
"""Holds the project's overrides of dbt materializations to the dbt they were written against:
dbt/macros/checks.sql's `materialization test` (it copies dbt's `materialization test, default`
for column_checks tests and hands every other test to it; dbt-snowflake's own test
materialization calls it in turn) and dbt/macros/views.sql's `materialization view` for DuckDB
(it leaves an unchanged view as it is, replaces a changed one, and hands a table in its place,
hooks, grants, contracts and full refreshes to dbt's `materialization view, default`). A dbt
upgrade that changes what an override stands beside would make it diverge without any test
failing, so each override's comment records, per installed block of the materialization it
overrides, its package, file and sha256 ("upstream ..." lines), and this script compares them
with the installed packages'.

  .venv/bin/python scripts/dbt/materialization.py --check [FILE]  fail when they differ (20-lint)
  .venv/bin/python scripts/dbt/materialization.py --record [FILE] rewrite the upstream lines
(without FILE: every override)
"""
import hashlib
import importlib.metadata
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OVERRIDES = [os.path.join(ROOT, "dbt", "macros", name) for name in ("checks.sql", "views.sql")]
DECLARED = re.compile(r"\{%-?\s*materialization\s+(\w+)\s*,")
BLOCK = r"\{{%-?\s*materialization\s+{}\s*,.*?\{{%-?\s*endmaterialization\s*-?%\}}"
UPSTREAM = re.compile(r"^    upstream (\S+) (\S+) (\S+) ([0-9a-f]{64})$", re.M)
RECHECK = {"test": """\
Re-check the override (`materialization test` in dbt/macros/checks.sql) against each file named:
its column_checks branch runs dbt's 'main' statement itself (get_test_sql's arguments, sql_header,
limit, store_failures, what it returns) and hands every other test to dbt.materialization_test_default;
dbt-snowflake's must still call materialization_test_default unqualified, or the override never
runs on Snowflake (docs/dbt.md, "Tests"). Then run scripts/test.d/40-dbt.sh and record the new
hashes: .venv/bin/python scripts/dbt/materialization.py --record""",
           "view": """\
Re-check the override (`materialization view` in dbt/macros/views.sql) against each file named:
what it leaves to dbt.materialization_view_default (hooks, grants, contracts, SQL headers, full
refreshes, a table in the view's place) must still be all of dbt's steps it does not do itself,
and what it returns must still be what dbt's returns. Then run scripts/test.d/40-dbt.sh and record the new hashes:
.venv/bin/python scripts/dbt/materialization.py --record"""}


def installed(kind):
    """Every `materialization <kind>` block of the installed dbt packages:
    {(package, file, n): (version, sha256, path on disk)}."""
    pattern, found = re.compile(BLOCK.format(kind), re.S), {}
    for dist in importlib.metadata.distributions():
        for f in dist.files or []:
            name = str(f)
            if not (name.startswith("dbt/include/") and name.endswith(".sql")):
                continue
            with open(f.locate(), encoding="utf-8") as src:
                blocks = pattern.findall(src.read())
            for n, block in enumerate(blocks):
                key = (dist.metadata["Name"], name, n)
                found[key] = (dist.version, hashlib.sha256(block.encode()).hexdigest(), str(f.locate()))
    if not found:
        sys.exit(f"no dbt package with a {kind} materialization is installed here: run scripts/venv.sh")
    return found


def recorded(text):
    """The upstream lines of the override's comment: {(package, file, n): (version, sha256)}."""
    out = {}
    for package, version, where, digest in UPSTREAM.findall(text):
        name, _, n = where.partition("#")
        out[(package, name, int(n or 0))] = (version, digest)
    return out


def lines(blocks):
    """The upstream lines recording blocks, sorted."""
    return "".join(f"    upstream {p} {v} {f}{'#%d' % n if n else ''} {d}\n"
                   for (p, f, n), (v, d, _) in sorted(blocks.items()))


def differences(want, have, kind):
    out = []
    for key in sorted(want.keys() | have.keys()):
        (package, name, _), was, now = key, want.get(key), have.get(key)
        if was is None:
            out.append(f"{package} {now[0]} {now[2]}: a {kind} materialization the override was not written against")
        elif now is None:
            out.append(f"{package} {was[0]} {name}: recorded, no longer installed")
        elif was[1] != now[1]:
            out.append(f"{package} {now[2]}: changed from {was[0]}'s (sha256 {was[1][:12]}...) to {now[0]}'s ({now[1][:12]}...)")
    return out


def main():
    args = sys.argv[1:]
    if args[:1] not in (["--check"], ["--record"]) or len(args) > 2:
        sys.exit(__doc__)
    for path in args[1:] or OVERRIDES:
        one(args[0], path)


def one(action, path):
    """--check or --record the override in path."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    declared = DECLARED.search(text)
    if not declared:
        sys.exit(f"{path} overrides no materialization")
    kind = declared.group(1)
    have = installed(kind)
    if action == "--record":
        found = list(UPSTREAM.finditer(text))
        if not found:
            sys.exit(f"{path} has no 'upstream' lines to replace")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text[:found[0].start()] + lines(have) + text[found[-1].end() + 1:])
        print(f"recorded {len(have)} {kind} materializations in {os.path.relpath(path, ROOT)}")
        return
    want = recorded(text)
    if not want:
        sys.exit(f"{path} records no upstream {kind} materialization ('    upstream <package> <version> <file> <sha256>' lines)")
    diffs = differences(want, have, kind)
    if diffs:
        sys.exit(f"dbt's {kind} materializations differ from those {os.path.relpath(path, ROOT)}'s override was written against:\n  "
                 + "\n  ".join(diffs) + "\n" + RECHECK[kind])
    print(f"the installed {kind} materializations are the ones {os.path.relpath(path, ROOT)}'s override was written against: "
          + ", ".join(f"{p} {v}" for (p, _, _), (v, _, _) in sorted(have.items())))


if __name__ == "__main__":
    main()
