"""The conformance suite against every backend, sync and async."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from langgraph.store.memory import InMemoryStore

from deepmemory.backends import (
    CompositeBackend,
    FilesystemBackend,
    LimitsBackend,
    ReadOnlyBackend,
    StateBackend,
    StoreBackend,
)
from deepmemory.stores import SQLiteStore
from deepmemory.testing.conformance import BackendConformance
from deepmemory.testing.harness import Harness

GENERIC = frozenset()  # plain BaseStores cannot check "is this a directory" cheaply on write

KINDS = [
    "state",
    "store-memory",
    "store-langgraph-sqlite",
    "composite-route",
    "composite-default",
    "filesystem",
    "policy-wrapped",
    "store-sqlite",
    "store-postgres",
]


def make_harness(kind: str, mode: str, tmp_path: Path, request: pytest.FixtureRequest) -> Harness:
    if kind == "state":
        return Harness(StateBackend(), mode=mode, in_graph=True)
    if kind == "store-memory":
        return Harness(StoreBackend(store=InMemoryStore()), mode=mode, caps=GENERIC)
    if kind == "store-langgraph-sqlite":
        store = request.getfixturevalue("langgraph_sqlite_store")
        return Harness(StoreBackend(store=store), mode=mode, caps=GENERIC)
    if kind.startswith("composite"):
        store = InMemoryStore()
        backend = CompositeBackend(default=StateBackend(), routes={"/memories/": StoreBackend()})
        root = "/memories" if kind == "composite-route" else ""
        caps = GENERIC if root else frozenset({"dir-write-check"})
        return Harness(backend, mode=mode, in_graph=True, store=store, root=root, caps=caps)
    if kind == "store-sqlite":
        return Harness(StoreBackend(store=SQLiteStore(tmp_path / "memory.db")), mode=mode)
    if kind == "store-postgres":
        store = request.getfixturevalue("postgres_store")
        namespace = ("conformance", uuid.uuid4().hex)
        return Harness(StoreBackend(store=store, namespace=namespace), mode=mode)
    if kind == "policy-wrapped":
        # Policies around a store: everything outside /locked behaves as the store does.
        inner = ReadOnlyBackend(StoreBackend(store=InMemoryStore()), prefixes=["/locked"])
        backend = LimitsBackend(inner, max_file_bytes=8 * 1024 * 1024)
        return Harness(backend, mode=mode, caps=GENERIC)
    if kind == "filesystem":
        return Harness(FilesystemBackend(tmp_path / "root"), mode=mode)
    raise AssertionError(kind)


class TestConformance(BackendConformance):
    @pytest.fixture(
        params=[(k, m) for k in KINDS for m in ("sync", "async")], ids=lambda p: f"{p[0]}-{p[1]}"
    )
    def fs(self, request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
        kind, mode = request.param
        return make_harness(kind, mode, tmp_path, request)
