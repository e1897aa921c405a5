"""The worker's kept answers of Jinja's sandbox (worker.py, Trims._safe_attributes) against
jinja2's own: for objects of every kind the sandbox tells apart (functions, methods, classes,
generators, coroutines, frames, code, plain values, dbt's relations) and an object whose __class__
says it is a function, each attribute asked twice with the trim must get jinja2's answer. A
template reading a function's internals must still be refused. Exits 1 on a difference or when
no answer was reused.

  safe_attributes.py WORKER_DIR
"""

import asyncio
import sys
import types

sys.path.insert(0, sys.argv[1])
import worker  # noqa: E402

import jinja2.sandbox as sandbox  # noqa: E402
from dbt.adapters.duckdb.relation import DuckDBRelation  # noqa: E402

original = sandbox.SandboxedEnvironment.is_safe_attribute


def function():
    return 1


def generator():
    yield 1


async def coroutine():
    return 1


async def async_generator():
    yield 1


class Liar:
    """Says it is a function, as a proxy might: isinstance believes it."""

    __class__ = types.FunctionType


coro = coroutine()
objects = [function, print, str.upper, "text".upper, worker.Trims().apply, str, worker.Trims, generator(), coro,
           async_generator(), function.__code__, sys._getframe(), {"a": 1}, [1], "text", 1, None, Liar(),
           DuckDBRelation.create(database="warehouse", schema="gold", identifier="cut")]
attributes = ["mro", "__class__", "__globals__", "__code__", "func_code", "func_globals", "im_func", "__func__",
              "gi_frame", "gi_code", "cr_frame", "ag_code", "f_locals", "co_code", "_private", "upper", "items",
              "append", "render", "schema", "identifier", "lower", "keys"]

trims = worker.Trims()
trims._safe_attributes()
env = sandbox.SandboxedEnvironment()
differences = 0
for rnd in range(2):
    for obj in objects:
        for attr in attributes:
            want = original(env, obj, attr, None)
            got = env.is_safe_attribute(obj, attr, None)
            if got != want:
                differences += 1
                print(f"round {rnd}: {type(obj).__name__}.{attr}: {got}, jinja2 says {want}")
coro.close()
try:
    env.from_string("{{ f.__globals__.keys() }}").render(f=function)
    differences += 1
    print("a template read a function's __globals__")
except sandbox.SecurityError:
    pass
print(f"answers reused {trims.attribute_checks_reused}, differences {differences}")
sys.exit(1 if differences or not trims.attribute_checks_reused else 0)
