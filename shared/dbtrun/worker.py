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


# Where an event built under Trims._lazy_events keeps its fields until one is read.
LAZY_FIELDS = "_fin_event_fields"

# The Clock's events (Clock.event); NodeFinished is a debug-level one.
CLOCK_EVENTS = {"ConcurrencyLine", "NodeFinished", "LogHookStartLine", "LogHookEndLine", "FinishedRunningStats"}


class Trims:
    """Seven fixed costs of dbt's own per build and per node, paid in the warm worker's Python
    under the GIL, that do not change what dbt does (docs/dbt.md, "Warm worker"):

    - Jinja compiles a model's, test's and hook's SQL template from source on every build
      (dbt_common get_rendered -> Environment.from_string; dbt caches macros, not these): about
      10 ms of CPU each. Compiling is a pure function of the environment's class and the source,
      so the code objects are kept (bounded) and every build still renders them anew in its own
      context.
    - Every event (about 30 per node, most at debug level) was turned into a protobuf message and
      a formatted, secret-scrubbed console line, which Python's logging then dropped below the
      console's level. A debug event is now dropped before that when no logger takes debug
      lines (DBT_LOG_LEVEL_FILE=debug or --debug bring them all back) and no callback but the
      worker's clock and dbt's own behaviour-change warnings (warnings only) listens.
    - Building an event converted its fields into a protobuf message (ParseDict: about 0.5 ms
      each, ~1,250 events a build after a small load) before fire_event could drop it, so the
      dropped debug events still cost most of what they did. An event now keeps its fields and
      converts them when first read (any attribute but its class's own methods): a dropped event
      never is; one that is logged or sent to a callback is, as before, in fire_event.
    - Each node's two contexts (compiling, running) copy every macro (~600) into the context
      dict from dbt's MacroNamespace, a Mapping whose every item is found by walking its five
      dicts in order through a generator (~48,000 look-ups a build). The copy is now made from
      one dict merged from those five in reverse order (the first holding a name wins, as in
      the walk): the same names and the same macros.
    - Each of those contexts first wraps every macro (~600) in a MacroGenerator bound to it
      (MacroNamespaceBuilder.add_macros: three chained constructors and two method calls per
      macro, ~48,000 wrappings a build, 0.09-0.13 s of CPU). The wrappers are now made in one
      loop that sets the same four attributes on the same class and files each under the same
      names (a duplicate name still raises dbt's own error): the same objects, made cheaper.
    - The secret scrubber read the whole environment for DBT_ENV_SECRET_ values on every line;
      the environment is fixed for a request, so the values are read once per request.
    - Each query result that has a text column became an agate table with a type tester built
      anew (its date types each make a parsedatetime Calendar: about 5 ms a statement). The
      testers are kept per set of text columns, as dbt keeps its own default one for every
      thread to share.
    Each patch checks that the dbt internal it wraps is there and is skipped (with a line on
    stderr) when it is not, so a dbt upgrade costs speed, never a build."""

    def __init__(self, compiled_max: int = 4096):
        self.compiled, self.compiled_max, self.secrets = {}, compiled_max, []
        self.compile_hits = self.compile_misses = self.events_dropped = self.events_unparsed = 0
        self.namespaces_merged = self.macros_wrapped = 0
        self.counted = (0, 0, 0, 0, 0, 0)

    def apply(self) -> None:
        for patch in (self._compile_cache, self._quiet_debug_events, self._lazy_events, self._secrets_once,
                      self._type_testers, self._merged_macro_namespace, self._macro_wrappers):
            try:
                patch()
            except Exception as exc:  # noqa: BLE001 - a missing internal costs speed only
                print(f"fin.dbt_worker: not applied: {patch.__name__}: {exc!r}", file=sys.stderr, flush=True)

    def request(self) -> None:
        """Called once the request's environment is set, before dbt runs."""
        from dbt_common.constants import SECRET_ENV_PREFIX

        self.secrets = [v for k, v in os.environ.items() if k.startswith(SECRET_ENV_PREFIX) and v.strip()]
        self.counted = self._counts()

    def _counts(self) -> tuple:
        return (self.compile_hits, self.compile_misses, self.events_dropped, self.events_unparsed,
                self.namespaces_merged, self.macros_wrapped)

    def __str__(self) -> str:
        """What the trims saved in the request so far, for its timings line."""
        hits, misses, dropped, unparsed, merged, wrapped = (now - then for now, then in zip(self._counts(), self.counted))
        return (f"templates compiled {misses} (reused {hits}), debug events skipped {dropped} (never parsed {unparsed}), "
                f"macro namespaces merged {merged}, macros wrapped {wrapped}")

    def _compile_cache(self) -> None:
        from dbt_common.clients.jinja import MacroFuzzEnvironment

        original, trims = MacroFuzzEnvironment.compile, self

        def compile(self, source, name=None, filename=None, raw=False, defer_init=False):
            if not isinstance(source, str):  # an already parsed template: jinja's own path
                return original(self, source, name, filename, raw, defer_init)
            key = (type(self), source, name, filename, raw, defer_init)
            code = trims.compiled.get(key)
            if code is None:
                trims.compile_misses += 1
                code = original(self, source, name, filename, raw, defer_init)
                if len(trims.compiled) >= trims.compiled_max:
                    trims.compiled.clear()
                trims.compiled[key] = code
            else:
                trims.compile_hits += 1
            return code

        MacroFuzzEnvironment.compile = compile

    def _quiet_debug_events(self) -> None:
        from dbt.tracking import track_behavior_change_warn
        from dbt_common.events.base_types import EventLevel
        from dbt_common.events.event_manager import EventManager

        original, trims = EventManager.fire_event, self

        def fire_event(self, e, level=None, node=None, force_warn_or_error_handling=False):
            if (not force_warn_or_error_handling and (level or e.level_tag()) == EventLevel.DEBUG
                    and type(e).__name__ not in CLOCK_EVENTS
                    and all(lg.level != EventLevel.DEBUG for lg in self.loggers)
                    and all(getattr(cb, "__self__", None).__class__ is Clock or cb is track_behavior_change_warn
                            for cb in self.callbacks)):
                trims.events_dropped += 1
                trims.events_unparsed += LAZY_FIELDS in e.__dict__
                return None
            return original(self, e, level=level, node=node, force_warn_or_error_handling=force_warn_or_error_handling)

        EventManager.fire_event = fire_event

    def _lazy_events(self) -> None:
        from dbt_common.events.base_types import BaseEvent

        init, getattr_, setattr_ = BaseEvent.__init__, BaseEvent.__getattr__, BaseEvent.__setattr__

        def parse(event) -> None:
            # Pops the fields first: BaseEvent.__init__ reads attributes (and so comes back here).
            args, kwargs = event.__dict__.pop(LAZY_FIELDS)
            init(event, *args, **kwargs)

        def __init__(self, *args, **kwargs):
            self.__dict__[LAZY_FIELDS] = (args, kwargs)

        def __getattr__(self, key):  # only for what the instance and its class lack: the fields
            if LAZY_FIELDS in self.__dict__:
                parse(self)
            return getattr_(self, key)

        def __setattr__(self, key, value):
            if LAZY_FIELDS in self.__dict__:
                parse(self)
            setattr_(self, key, value)

        BaseEvent.__init__, BaseEvent.__getattr__, BaseEvent.__setattr__ = __init__, __getattr__, __setattr__

    def _merged_macro_namespace(self) -> None:
        from dbt.context.macros import MacroNamespace
        from dbt.context.manifest import ManifestContext

        original, trims = ManifestContext.to_dict, self
        if not callable(getattr(MacroNamespace, "_search_order", None)):
            raise AttributeError("dbt.context.macros.MacroNamespace._search_order")

        def to_dict(self):
            namespace = self.namespace
            if type(namespace) is not MacroNamespace:  # a test's namespace: dbt's own copy
                return original(self)
            dct = super(ManifestContext, self).to_dict()
            merged = {}
            for names in reversed(list(namespace._search_order())):
                merged.update(names)
            dct.update(merged)
            trims.namespaces_merged += 1
            return dct

        ManifestContext.to_dict = to_dict

    def _macro_wrappers(self) -> None:
        from dbt.clients.jinja import MacroGenerator
        from dbt.context.macros import MacroNamespaceBuilder

        original, add_macro, trims = MacroNamespaceBuilder.add_macros, MacroNamespaceBuilder.add_macro, self
        # The wrapper dbt's constructors make, attribute for attribute: if a dbt upgrade sets
        # others, the trim is not applied.
        probe = MacroGenerator(None, {}, None, None)
        if vars(probe) != {"context": {}, "macro": None, "node": None, "stack": None}:
            raise AttributeError(f"dbt.clients.jinja.MacroGenerator sets {sorted(vars(probe))}")
        new = object.__new__

        def add_macros(self, macros, ctx):
            if type(self) is not MacroNamespaceBuilder:
                return original(self, macros, ctx)
            node, stack, internal = self.node, self.thread_ctx, self.internal_package_names
            search, root = self.search_package, self.root_package
            wrapped = 0
            for macro in macros:
                name, package = macro.name, macro.package_name
                hierarchy = self.internal_packages if package in internal else self.packages
                namespace = hierarchy.get(package)
                if namespace is None:
                    namespace = hierarchy[package] = {}
                elif name in namespace:
                    add_macro(self, macro, ctx)  # raises dbt's DuplicateMacroNameError
                func = new(MacroGenerator)
                func.__dict__.update(context=ctx, macro=macro, node=node, stack=stack)
                namespace[name] = func
                if hierarchy is self.packages:
                    if package == search:
                        self.locals[name] = func
                    elif package == root:
                        self.globals[name] = func
                wrapped += 1
            trims.macros_wrapped += wrapped

        MacroNamespaceBuilder.add_macros = add_macros

    def _secrets_once(self) -> None:
        import dbt_common.events.functions as functions

        if not callable(getattr(functions, "env_secrets", None)):
            raise AttributeError("dbt_common.events.functions.env_secrets")
        functions.env_secrets = lambda: self.secrets


    def _type_testers(self) -> None:
        import dbt_common.clients.agate_helper as agate_helper

        original, kept = agate_helper.build_type_tester, {}

        def build_type_tester(text_columns, string_null_values=("null", "")):
            key = (frozenset(text_columns), None if string_null_values is None else tuple(string_null_values))
            tester = kept.get(key)
            if tester is None:
                if len(kept) >= 1024:
                    kept.clear()
                tester = kept[key] = original(key[0], string_null_values)
            return tester

        agate_helper.build_type_tester = build_type_tester


class profiled:
    """With FIN_DBT_PROFILE set to a folder, profiles each build's dbt run with cProfile (every
    thread, as dbt runs nodes on a pool; each thread's CPU time, not its wait for a busy
    machine) into <folder>/build-<n>.prof, for `python -m pstats`. Off by default: profiling
    doubles dbt's Python time."""

    count = 0

    def __init__(self, folder):
        self.folder, self.profiles = folder, []

    def __enter__(self):
        if not self.folder:
            return self
        import cProfile
        import threading

        def start(*_):
            prof = cProfile.Profile(time.thread_time)  # CPU, not the wait for a busy machine
            self.profiles.append(prof)
            prof.enable()  # replaces this hook for the rest of the thread

        self.main = cProfile.Profile(time.thread_time)
        self.profiles.append(self.main)
        threading.setprofile(start)
        self.main.enable()
        return self

    def __exit__(self, *_):
        if not self.folder:
            return False
        import pstats
        import threading

        threading.setprofile(None)
        for prof in self.profiles:
            prof.disable()
        profiled.count += 1
        os.makedirs(self.folder, exist_ok=True)
        stats = pstats.Stats(*self.profiles)
        stats.dump_stats(os.path.join(self.folder, f"build-{profiled.count}.prof"))
        return False


def main() -> None:
    replies = os.fdopen(int(sys.argv[1]) if len(sys.argv) > 1 else 3, "w", buffering=1)
    base = dict(os.environ)
    from dbt.cli.main import dbtRunner  # the slow import, paid once per worker

    # What the import made lives as long as the worker: keep it out of every garbage
    # collection, those Python runs during a build and the one after it (release_duckdb).
    trims = Trims()
    trims.apply()
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
        trims.request()
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
            with profiled(os.environ.get("FIN_DBT_PROFILE")):
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
        reply["timings"] = f"{clock}; {trims}"
        sys.stdout.flush()
        sys.stderr.flush()
        replies.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    main()
