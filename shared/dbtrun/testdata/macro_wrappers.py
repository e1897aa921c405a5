"""The worker's macro wrappers (worker.py, Trims._macro_wrappers) against dbt's own: the project
parsed, each namespace built by dbt's MacroNamespaceBuilder.add_macros and by the trim, for a node
of the project, of dbt's package and of the adapter's, must file the same names in the same order
under globals, locals, packages and internal packages, each a MacroGenerator with the same
attributes (the same macro, node, stack and context of its own build). Exits 1 on a difference
or when the trim wrapped nothing.

  macro_wrappers.py WORKER_DIR PROJECT_DIR WORK_DIR
"""

import os
import sys

worker_dir, project, work = sys.argv[1:4]
sys.path.insert(0, worker_dir)
import worker  # noqa: E402

from dbt.adapters.factory import get_adapter_package_names  # noqa: E402
from dbt.cli.main import dbtRunner  # noqa: E402
from dbt.clients.jinja import MacroStack  # noqa: E402
from dbt.context.macros import MacroNamespaceBuilder  # noqa: E402

os.environ.setdefault("WAREHOUSE_PATH", os.path.join(work, "warehouse.duckdb"))
res = dbtRunner().invoke(["parse", "--quiet", "--project-dir", project, "--profiles-dir", project,
                          "--target-path", os.path.join(work, "target"), "--log-path", os.path.join(work, "logs"),
                          "--target", "duckdb"])
if not res.success:
    sys.exit(f"dbt parse: {res.exception}")
macros = res.result.get_macros_by_package()
internal = get_adapter_package_names("duckdb")
dbts = MacroNamespaceBuilder.add_macros
trims = worker.Trims()
trims._macro_wrappers()
trimmed = MacroNamespaceBuilder.add_macros
if trimmed is dbts:
    sys.exit("the trim did not replace MacroNamespaceBuilder.add_macros")


def build(search, add_macros):
    """A namespace as a node's context builds it, with its own context, node and stack."""
    MacroNamespaceBuilder.add_macros = add_macros
    own = {"context": {"probe": search}, "node": object(), "stack": MacroStack()}
    builder = MacroNamespaceBuilder(res.result.metadata.project_name, search, own["stack"], internal, own["node"])
    builder.build_namespace(macros, own["context"])
    return builder, {id(v): k for k, v in own.items()}


def flat(part, found):
    return {(p, n): f for p, fs in found.items() for n, f in fs.items()} if part.endswith("packages") else found


def attributes(wrapper, own):
    return {k: own.get(id(v), v) for k, v in vars(wrapper).items()}


differences = 0
for search in (res.result.metadata.project_name, "dbt", internal[0]):
    (a, own_a), (b, own_b) = build(search, dbts), build(search, trimmed)
    for part in ("globals", "locals", "packages", "internal_packages"):
        fa, fb = flat(part, getattr(a, part)), flat(part, getattr(b, part))
        if list(fa) != list(fb):
            differences += 1
            print(f"{search}: {part}: names differ: {sorted(map(str, set(fa) ^ set(fb)))[:5]}")
        for name in fa.keys() & fb.keys():
            x, y = fa[name], fb[name]
            if type(x) is not type(y) or attributes(x, own_a) != attributes(y, own_b):
                differences += 1
                print(f"{search}: {part} {name}: {type(x).__name__} {attributes(x, own_a)} != "
                      f"{type(y).__name__} {attributes(y, own_b)}")
    print(f"{search}: {sum(map(len, a.packages.values()))} + {sum(map(len, a.internal_packages.values()))} macros, "
          f"{len(a.locals)} local, {len(a.globals)} global")
print(f"macros wrapped {trims.macros_wrapped}, differences {differences}")
sys.exit(1 if differences or not trims.macros_wrapped else 0)
