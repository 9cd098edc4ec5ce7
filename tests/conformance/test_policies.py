"""Read-only areas and size limits, directly and as the model meets them."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.store.memory import InMemoryStore

from deepmemory import create_deep_agent
from deepmemory.backends import (
    CompositeBackend,
    LimitsBackend,
    ReadOnlyBackend,
    StateBackend,
    StoreBackend,
)
from deepmemory.testing import ScriptedChatModel, calls, tool_call
from deepmemory.testing.harness import Harness


@pytest.fixture(params=["sync", "async"])
def mode(request) -> str:
    return request.param


def test_a_read_only_area_can_be_read_but_not_changed(mode):
    store = InMemoryStore()
    StoreBackend(store=store, namespace=("policies",)).write("/rules.txt", "be kind")
    backend = CompositeBackend(
        default=StateBackend(),
        routes={
            "/memories/": StoreBackend(),
            "/memories/policies/": ReadOnlyBackend(StoreBackend(namespace=("policies",))),
        },
    )
    fs = Harness(backend, mode=mode, in_graph=True, store=store)
    assert fs.read("/memories/policies/rules.txt").lines == ["be kind"]
    for result in (
        fs.write("/memories/policies/rules.txt", "be mean"),
        fs.edit("/memories/policies/rules.txt", "kind", "mean"),
        fs.delete("/memories/policies/rules.txt"),
        fs.upload_files([("/memories/policies/new.txt", b"x")])[0],
        fs.move("/memories/policies/rules.txt", "/memories/policies/old.txt"),
    ):
        assert "is read-only" in result.error
    assert fs.write("/memories/notes.txt", "ok").error is None
    assert fs.read("/memories/policies/rules.txt").lines == ["be kind"]
    assert [f.path for f in fs.glob("**", "/memories").files] == [
        "/memories/notes.txt",
        "/memories/policies/rules.txt",
    ]


def test_read_only_prefixes_lock_only_their_part(mode):
    backend = ReadOnlyBackend(StoreBackend(store=InMemoryStore()), prefixes=["/locked"])
    fs = Harness(backend, mode=mode)
    assert fs.write("/open.txt", "x").error is None
    assert "read-only" in fs.write("/locked/a.txt", "x").error
    results = fs.upload_files([("/locked/b", b"1"), ("/c", b"2")])
    assert "read-only" in results[0].error and results[1].error is None
    assert fs.write("/locked-not/x.txt", "x").error is None
    assert "read-only" in fs.move("/open.txt", "/locked/open.txt").error
    assert "read-only" in fs.move("/locked/a.txt", "/free.txt").error
    assert fs.move("/open.txt", "/moved.txt").error is None


def test_a_file_over_the_size_limit_is_refused_and_nothing_changes(mode):
    backend = LimitsBackend(StoreBackend(store=InMemoryStore()), max_file_bytes=100)
    fs = Harness(backend, mode=mode)
    fs.write("/a.txt", "small")
    error = fs.write("/a.txt", "x" * 101).error
    assert "101 bytes, over the 100-byte limit" in error
    assert fs.read("/a.txt").lines == ["small"]
    assert "over the 100-byte limit" in fs.edit("/a.txt", "small", "y" * 200).error
    assert "over the 100-byte limit" in fs.upload_files([("/b", b"z" * 101)])[0].error


def test_the_total_of_a_memory_is_capped_across_files_and_within_one_upload(mode):
    backend = LimitsBackend(
        StoreBackend(store=InMemoryStore()), max_file_bytes=1000, max_total_bytes=250
    )
    fs = Harness(backend, mode=mode)
    assert fs.write("/a.txt", "a" * 100).error is None
    assert fs.write("/a.txt", "a" * 200).error is None  # replacing counts the new size only
    assert "over its 250-byte limit" in fs.write("/b.txt", "b" * 100).error
    results = fs.upload_files([("/c", b"c" * 30), ("/d", b"d" * 30)])
    assert results[0].error is None and "250-byte limit" in results[1].error
    assert fs.read("/b.txt").error is not None


def test_the_model_is_told_about_limits_and_read_only_memory():
    store = InMemoryStore()
    model = ScriptedChatModel(
        replies=[
            calls(
                tool_call("write_file", file_path="/memories/huge.txt", content="x" * 2000),
                tool_call("write_file", file_path="/memories/policies/p.txt", content="x"),
            ),
            AIMessage("ok"),
        ]
    )
    agent = create_deep_agent(
        model=model,
        store=store,
        backend=CompositeBackend(
            default=StateBackend(),
            routes={
                "/memories/": LimitsBackend(StoreBackend(), max_file_bytes=1000),
                "/memories/policies/": ReadOnlyBackend(StoreBackend(namespace=("p",))),
            },
        ),
    )
    result = agent.invoke(
        {"messages": [{"role": "user", "content": "go"}]},
        {"configurable": {"thread_id": str(uuid.uuid4())}},
    )
    said = [m.text for m in result["messages"] if isinstance(m, ToolMessage)]
    assert "over the 1,000-byte limit" in said[0] and "is read-only" in said[1]
    assert store.search(("filesystem",)) == [] and store.search(("p",)) == []


def test_a_memoryview_upload_counts_its_real_size():
    fs = Harness(LimitsBackend(StoreBackend(store=InMemoryStore()), max_file_bytes=10))
    assert "over the 10-byte limit" in fs.upload_files([("/m", memoryview(b"x" * 11))])[0].error


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_limits_on_our_stores_sum_sizes_in_the_database(kind, tmp_path, request, monkeypatch):
    """The total is one SUM query, not a listing of every file (which would cost O(files))."""
    from deepmemory.stores import SQLiteStore

    if kind == "sqlite":
        store = SQLiteStore(tmp_path / "m.db")
    else:
        store = request.getfixturevalue("postgres_store")  # shared: a namespace of our own
    namespace = ("limits", kind, uuid.uuid4().hex)
    try:
        inner = StoreBackend(store=store, namespace=namespace).mounted("/memories")
        backend = LimitsBackend(inner, max_file_bytes=1000, max_total_bytes=25)
        assert backend.write("/memories/a.txt", "x" * 10).error is None
        assert backend.write("/memories/b.txt", "y" * 10).error is None

        def no_listing(*args, **kwargs):
            raise AssertionError("LimitsBackend listed every file")

        monkeypatch.setattr(type(inner), "glob", no_listing)
        monkeypatch.setattr(type(inner), "aglob", no_listing)
        assert backend.write("/memories/a.txt", "x" * 15).error is None  # replaces 10 bytes
        assert "25" in backend.write("/memories/c.txt", "z" * 1).error
        assert asyncio.run(backend.awrite("/memories/b.txt", "y" * 10)).error is None
        results = backend.upload_files([("/memories/d.txt", b"1"), ("/memories/b.txt", b"")])
        assert [r.error is None for r in results] == [False, True]  # d over; b shrinks to 0
        assert "25" in backend.edit("/memories/a.txt", "x", "xx", replace_all=True).error
    finally:
        if kind == "sqlite":
            store.close()
