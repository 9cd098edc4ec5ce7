"""Hostile paths, glob and grep patterns against every backend: nothing escapes or crashes.

Every call must either succeed inside the backend's own area or return a readable
``Error: ...`` message; no exception may leave a backend, and nothing may appear
outside a FilesystemBackend's root.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langgraph.store.memory import InMemoryStore

from deepmemory.backends import CompositeBackend, FilesystemBackend, StateBackend, StoreBackend
from deepmemory.stores import PostgresStore, SQLiteStore
from deepmemory.testing.harness import Harness
from tests.conftest import postgres_url

HOSTILE_PATHS = [
    "/memories/../secret",
    "../../etc/passwd",
    "/..",
    "/./../x",
    "/a/\x00/b",
    "\x00",
    "/a\\..\\..\\b",
    "C:\\windows",
    "//server/share",
    "/memories/\u202e/x",
    "/\ufeff/x",
    "/\uff0e\uff0e/etc",
    "/a\u2215b",
    "/" + "a" * 5000,
    "/" + "/".join(["a"] * 2000),
    "~/.ssh/id_rsa",
    "/proc/self/environ",
    "/dev/null/x",
    "file:///etc/passwd",
    " /x",
    "/memories/\x1b[31m",
    "/x\r\n/y",
    "/%2e%2e/%2e%2e/etc",
    "/\udcff",
]
HOSTILE_GLOBS = [
    "../**",
    "/../*",
    "**/../**",
    "{" * 50,
    "}" * 50,
    "[",
    "[!",
    "[/]",
    "*" * 100,
    "(a|b)*",
    "a{1,1000000}",
    "(?=x)",
    "\\",
    "\x00",
    "**/" * 400,
    "{a,{b,{c,{d,{e}}}}}",
    "/memories/" + "*a" * 30 + "b",
    "[[:alpha:]]",
    "a" * 5000,
]
HOSTILE_GREPS = [
    ".*",
    "(a+)+$",
    "[",
    "\\",
    "\x00",
    "%",
    "_",
    "' OR 1=1 --",
    '"; DROP TABLE x; --',
    "a" * 9000,
    "\u0000\u0001",
    "\n",
    "$(rm -rf /)",
    "%_%",
    "\\%",
]

KINDS = ["state", "store-memory", "store-sqlite", "store-postgres", "composite", "filesystem"]


def harness(kind: str, tmp_path: Path) -> Harness:
    if kind == "store-sqlite":
        return Harness(StoreBackend(store=SQLiteStore(tmp_path / "db" / "memory.db")))
    if kind == "store-postgres":
        store = PostgresStore(connection_string=postgres_url())
        return Harness(StoreBackend(store=store, namespace=("hostile", uuid.uuid4().hex)))
    if kind == "state":
        return Harness(StateBackend(), in_graph=True)
    if kind == "store-memory":
        return Harness(StoreBackend(store=InMemoryStore()))
    if kind == "composite":
        backend = CompositeBackend(default=StateBackend(), routes={"/memories/": StoreBackend()})
        return Harness(backend, in_graph=True, store=InMemoryStore())
    return Harness(FilesystemBackend(tmp_path / "root"))


def outside_is_untouched(tmp_path: Path) -> None:
    assert sorted(os.listdir(tmp_path)) in ([], ["root"], ["db"])


def check(result) -> None:
    results = result if isinstance(result, list) else [result]
    for r in results:
        assert r.error is None or r.error.startswith("Error:"), r.error
        if r.error:
            assert "Traceback" not in r.error and len(r.error) < 2000


def every_call(fs: Harness, path: str) -> None:
    check(fs.write(path, "x"))
    check(fs.read(path))
    check(fs.edit(path, "x", "y"))
    check(fs.ls(path))
    check(fs.glob("*", path))
    check(fs.grep("x", path))
    check(fs.upload_files([(path, b"\xff")]))
    check(fs.download_files([path]))
    check(fs.delete(path))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_hostile_paths_get_a_message_and_reach_nothing(kind, path, tmp_path):
    fs = harness(kind, tmp_path)
    every_call(fs, path)
    outside_is_untouched(tmp_path)


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_glob_and_grep_patterns_get_a_message_or_an_answer(kind, tmp_path):
    fs = harness(kind, tmp_path)
    fs.write("/memories/a.txt", "needle")
    for pattern in HOSTILE_GLOBS:
        check(fs.glob(pattern))
        check(fs.grep("needle", "/", glob=pattern))
    for literal in HOSTILE_GREPS:
        result = fs.grep(literal)
        check(result)
        assert all(literal in m.text for m in result.matches)


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(path=st.text(max_size=80), pattern=st.text(max_size=40))
def test_any_text_as_path_or_pattern_is_handled(kind, path, pattern, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("h")
    fs = harness(kind, tmp_path)
    every_call(fs, path)
    check(fs.glob(pattern))
    check(fs.grep(pattern))
    outside_is_untouched(tmp_path)
