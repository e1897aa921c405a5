"""A warm dbt worker: one Python process with dbt imported that runs one dbt command per request.

Importing dbt and its adapter costs 2-3 s of CPU per process, more than an incremental build of
the project takes on DuckDB, so the runner (shared/dbtrun) keeps this process and sends it each
scheduled build instead of starting `dbt` every time. dbt's documented programmatic entry point,
dbtRunner, runs each command as the CLI would: it reads profiles.yml and the environment anew,
partial-parses from the target path, and closes its warehouse connections at the end (so the
local DuckDB file is free between runs).

Protocol (one JSON object per line):
  stdin  <- {"args": ["build", ...], "env": {"NAME": "value", ...}, "run_results": "path"}
  fd 3   -> {"success": true|false, "error": "why dbt could not run, empty when it ran"}
(fd 3 unless another is given as the first argument). With run_results, the worker writes dbt's
run results there and no other artifact. dbt's console output goes to
stdout/stderr as usual. The process ends when stdin closes.
"""

import gc
import json
import os
import sys


def release_duckdb() -> None:
    """Closes the DuckDB file dbt-duckdb keeps open in the process (a class-level environment that
    outlives the invocation), so other processes (the API's history reads, `fin sql`) can open it
    between runs, as they could after a `dbt` process exited."""
    manager = sys.modules.get("dbt.adapters.duckdb.connections")
    if manager is None:
        return
    cls = manager.DuckDBConnectionManager
    env = cls._ENV
    cls.close_all_connections()
    if env is not None:
        env.close()
    gc.collect()


def main() -> None:
    replies = os.fdopen(int(sys.argv[1]) if len(sys.argv) > 1 else 3, "w", buffering=1)
    base = dict(os.environ)
    from dbt.cli.main import dbtRunner  # the slow import, paid once per worker

    # What the import made lives as long as the worker: keep it out of every garbage
    # collection, those Python runs during a build and the one after it (release_duckdb).
    gc.freeze()

    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        # Each run sees the worker's own environment plus exactly this request's variables.
        os.environ.clear()
        os.environ.update(base)
        os.environ.update(req.get("env") or {})
        args = list(req["args"])
        results = req.get("run_results")
        if results:
            # dbt would also rewrite manifest.json (twice) and graph.gpickle on every build,
            # about half a second of a small incremental build; the runner reads run_results
            # only. The partial-parse cache is written either way.
            args.append("--no-write-json")
        try:
            res = dbtRunner().invoke(args)
            if results and hasattr(res.result, "write"):
                res.result.write(results)
            # success is False both when a node failed (run_results.json says which) and when
            # dbt could not run (exception set, as the CLI's exit code 2).
            reply = {"success": bool(res.success), "error": repr(res.exception) if res.exception else ""}
        except BaseException as exc:  # noqa: BLE001 - a SystemExit from click must not end the worker
            reply = {"success": False, "error": f"{type(exc).__name__}: {exc}"}
        try:
            release_duckdb()
        except Exception as exc:  # noqa: BLE001 - a file left open must fail loudly, not silently
            reply = {"success": False, "error": f"close the DuckDB warehouse after the run: {exc!r}"}
        sys.stdout.flush()
        sys.stderr.flush()
        replies.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    main()
