"""A warm dbt worker: one Python process with dbt imported that runs one dbt command per request.

Importing dbt and its adapter costs 2-3 s of CPU per process, more than an incremental build of
the project takes on DuckDB, so the runner (shared/dbtrun) keeps this process and sends it each
scheduled build instead of starting `dbt` every time. dbt's documented programmatic entry point,
dbtRunner, runs each command as the CLI would: it reads profiles.yml and the environment anew,
partial-parses from the target path, and closes its warehouse connections at the end (so the
local DuckDB file is free between runs).

Protocol (one JSON object per line):
  stdin  <- {"args": ["build", ...], "env": {"NAME": "value", ...}, "run_results": "path"}
  fd 3   -> {"success": true|false, "error": "why dbt could not run, empty when it ran",
             "timings": "where the request's time went (Clock)"}
(fd 3 unless another is given as the first argument). With run_results, the worker writes dbt's
run results there and no other artifact. dbt's console output goes to
stdout/stderr as usual. The process ends when stdin closes.
"""

import gc
import json
import os
import sys
import time


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


# Flags of a build that choose what it runs, not what the project is: left out of the parse.
SELECTION_FLAGS = {"--select": True, "-s": True, "--exclude": True, "--selector": True, "--indirect-selection": True,
                   "--full-refresh": False}


def parse_args(args: list) -> list:
    """The `dbt parse` command line that makes the manifest a build with args runs on. Quiet: the
    build's console output (the runner keeps it as the build's log) holds that build only."""
    out, skipping = ["parse", "--quiet"], False
    for a in args[1:]:
        if a in SELECTION_FLAGS:
            skipping = SELECTION_FLAGS[a]
            continue
        if skipping and not a.startswith("-"):
            continue
        skipping = False
        out.append(a)
    return out


# Variables that change with every invocation and that the project does not read: in Lambda the
# runtime sets the trace id in the process environment, which the runner hands to dbt.
PER_INVOCATION_ENV = {"_X_AMZN_TRACE_ID"}


# The folders dbt reads, by dbt_project.yml's key, with dbt's defaults (dbt/config/project.py);
# docs-paths defaults to every folder of sources, which the others already cover.
PROJECT_PATHS = {"model-paths": ["models"], "seed-paths": ["seeds"], "test-paths": ["tests"],
                 "analysis-paths": ["analyses"], "macro-paths": ["macros"], "snapshot-paths": ["snapshots"],
                 "function-paths": ["functions"], "docs-paths": [], "asset-paths": []}


def _plain_paths(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and "{" not in v for v in value)


class ProjectFiles:
    """Which files a parse of the project reads: every file at the top of the project folder
    (dbt_project.yml, packages.yml, selectors.yml, ...), everything under the folders
    dbt_project.yml names (models, macros, tests, ... and the installed packages), and the
    profiles folder's profiles.yml; not its target, logs, or anything else kept beside it. Read
    from dbt_project.yml again whenever that file changes; a project whose paths are not plain
    lists of names (Jinja, a key spelled another way) has its whole folder fingerprinted."""

    def __init__(self):
        self.stamp, self.dirs = None, None

    def folders(self, project: str):
        """The folders under project that dbt reads, or None for the whole project."""
        path = os.path.join(project, "dbt_project.yml")
        try:
            st = os.stat(path)
        except OSError:
            return None
        stamp = (path, st.st_size, st.st_mtime_ns)
        if stamp != self.stamp:
            self.stamp, self.dirs = stamp, self._read(path)
        return self.dirs

    @staticmethod
    def _read(path: str):
        import yaml  # dbt's own dependency

        try:
            with open(path) as f:
                cfg = yaml.safe_load(f)
        except (OSError, yaml.YAMLError):
            return None
        if not isinstance(cfg, dict):
            return None
        if "source-paths" in cfg and "model-paths" not in cfg:
            cfg["model-paths"] = cfg["source-paths"]  # dbt's old name for it
        dirs = []
        for key, default in PROJECT_PATHS.items():
            value = cfg.get(key, default)
            if not _plain_paths(value):
                return None
            dirs += value
        install = cfg.get("packages-install-path", "dbt_packages")
        if not _plain_paths([install]):
            return None
        return sorted(set(dirs + [install]))


def _walk(root: str, files: list, skip=lambda path, d: False) -> None:
    for path, subdirs, names in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not skip(path, d))
        for n in sorted(names):
            _stat(os.path.join(path, n), files)


def _stat(path: str, files: list) -> None:
    try:
        st = os.stat(path)
    except OSError:
        return
    files.append((path, st.st_size, st.st_mtime_ns))


def fingerprint(parse: list, project_files: ProjectFiles) -> tuple:
    """What the parsed manifest depends on: the parse's flags, the environment (env_var() in the
    project and profiles) and the files dbt reads (name, size, modification time), so an edited
    model is parsed again on the next build."""
    flag = {a: parse[i + 1] for i, a in enumerate(parse[:-1]) if a in ("--project-dir", "--profiles-dir")}
    project = flag.get("--project-dir", os.getcwd())
    files = []
    dirs = project_files.folders(project)
    if dirs is None:
        _walk(project, files, lambda path, d: path == project and d in ("target", "logs") or d.startswith("."))
    else:
        for n in sorted(os.listdir(project)):
            if os.path.isfile(os.path.join(project, n)):
                _stat(os.path.join(project, n), files)
        for d in dirs:
            _walk(os.path.join(project, d), files)
    _stat(os.path.join(flag.get("--profiles-dir", project), "profiles.yml"), files)
    env = sorted((k, v) for k, v in os.environ.items() if k not in PER_INVOCATION_ENV)
    return tuple(parse), tuple(env), tuple(files)


class Manifests:
    """The project parsed once and reused by every build until the project, the profiles, the
    environment or the flags change: dbt's partial parse still reads and checks its cache on
    every invocation (0.13 s of CPU per build on this project, 0.46 s of wall time on a busy
    machine), the fingerprint costs about a millisecond; dbtRunner takes a parsed manifest
    (dbt's documented reuse of objects). A build that fails drops it, so the next one parses
    anew."""

    def __init__(self, runner):
        self.runner, self.key, self.manifest, self.files = runner, None, None, ProjectFiles()

    def get(self, args: list):
        parse = parse_args(args)
        key = fingerprint(parse, self.files)
        if key != self.key:
            why = "no manifest yet"
            if self.key is not None:
                changed = [n for n, (a, b) in enumerate(zip(key, self.key)) if a != b]
                diff = sorted(str(f[0]) for f in set(key[2]) ^ set(self.key[2]))
                why = "changed: " + ", ".join(["flags", "environment", "files"][n] for n in changed)
                why += (" " + " ".join(diff[:5])) if diff else ""
            print(f"fin.dbt_worker: parsing the project ({why})", flush=True)
            self.drop()
            res = self.runner().invoke(parse)
            if not res.success or res.result is None:
                return None  # the build parses itself and reports why
            self.key, self.manifest = key, res.result
            gc.freeze()  # the manifest lives as long as the worker, like the import
        return self.manifest

    def drop(self) -> None:
        if self.manifest is not None:
            gc.unfreeze()  # let the collector free the old manifest; the next parse freezes again
        self.key, self.manifest = None, None


class Clock:
    """Where the time of one request went, for its log (wall and CPU seconds of each part). dbt's
    part is split at the events that open and close its run (its own elapsed time), and its
    project hooks: the adapter's set-up before the first hook (schemas, relation cache), the
    nodes, the on-run-end hook, closing the connections. What dbt's elapsed time leaves out is
    the runner's fixed cost per build."""

    def __init__(self):
        self.parts, self.last = [], (time.time(), time.process_time())
        self.start, self.ended_hooks, self.node_done = self.last[0], "", None

    def mark(self, name: str, now=None) -> None:
        now = now or (time.time(), time.process_time())
        self.parts.append((name, now[0] - self.last[0], now[1] - self.last[1]))
        self.last = now

    def event(self, msg) -> None:
        """A dbt event callback (dbt/task/runnable.py execute_with_hooks, run.py safe_run_hooks)."""
        name, data = msg.info.name, msg.data
        # getattr: another dbt's events may lack a field; a timing must never fail a build.
        index, total, hook = getattr(data, "index", 0), getattr(data, "total", -1), getattr(data, "statement", "")
        if name == "ConcurrencyLine":
            self.mark("before its run")
        elif name == "NodeFinished":
            self.node_done = (time.time(), time.process_time())
        elif name == "LogHookStartLine" and index == 1 and ".on-run-start." in hook:
            self.mark("set-up")
        elif name == "LogHookEndLine" and index == total:
            self.ended_hooks = "on-run-start" if ".on-run-start." in hook else "on-run-end"
            if self.ended_hooks == "on-run-end" and self.node_done:
                self.mark("nodes", self.node_done)  # the hook's SQL is compiled before its start line
            self.mark(self.ended_hooks + " hooks")
        elif name == "FinishedRunningStats":
            self.mark("closing" if self.ended_hooks == "on-run-end" else "nodes and closing")

    def __str__(self) -> str:
        parts = ", ".join(f"{name} {took:.3f} s (cpu {cpu:.3f})" for name, took, cpu in self.parts)
        return f"request {self.last[0] - self.start:.3f} s: {parts}"


def main() -> None:
    replies = os.fdopen(int(sys.argv[1]) if len(sys.argv) > 1 else 3, "w", buffering=1)
    base = dict(os.environ)
    from dbt.cli.main import dbtRunner  # the slow import, paid once per worker

    # What the import made lives as long as the worker: keep it out of every garbage
    # collection, those Python runs during a build and the one after it (release_duckdb).
    gc.freeze()
    manifests = Manifests(dbtRunner)

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
            # only. The partial-parse cache is written whenever the worker parses (Manifests).
            args.append("--no-write-json")
        clock = Clock()
        try:
            manifest = manifests.get(args) if args and args[0] == "build" else None
            clock.mark("project")
            res = dbtRunner(manifest=manifest, callbacks=[clock.event]).invoke(args)
            clock.mark("dbt after its run")
            if not res.success:
                manifests.drop()
            if results and hasattr(res.result, "write"):
                res.result.write(results)
            clock.mark("results")
            # success is False both when a node failed (run_results.json says which) and when
            # dbt could not run (exception set, as the CLI's exit code 2).
            reply = {"success": bool(res.success), "error": repr(res.exception) if res.exception else ""}
        except BaseException as exc:  # noqa: BLE001 - a SystemExit from click must not end the worker
            manifests.drop()
            reply = {"success": False, "error": f"{type(exc).__name__}: {exc}"}
        try:
            release_duckdb()
        except Exception as exc:  # noqa: BLE001 - a file left open must fail loudly, not silently
            reply = {"success": False, "error": f"close the DuckDB warehouse after the run: {exc!r}"}
        clock.mark("close")
        # In the reply, not on stdout: the runner may read the reply before the last of stdout.
        reply["timings"] = str(clock)
        sys.stdout.flush()
        sys.stderr.flush()
        replies.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    main()
