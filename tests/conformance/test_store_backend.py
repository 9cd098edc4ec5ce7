"""StoreBackend over plain LangGraph stores: exact namespaces, compatible item layout."""

from __future__ import annotations

import pytest
from langgraph.store.memory import InMemoryStore

from deepmemory.backends import StoreBackend, validate_namespace
from deepmemory.errors import ConfigError


@pytest.fixture(params=["memory", "langgraph-sqlite"])
def store(request):
    if request.param == "memory":
        return InMemoryStore()
    return request.getfixturevalue("langgraph_sqlite_store")


def test_a_namespace_never_sees_a_longer_namespace_that_starts_with_it(store):
    acme = StoreBackend(store=store, namespace=("acme",))
    alice = StoreBackend(store=store, namespace=("acme", "alice"))
    alice.write("/secret.txt", "alice's")
    assert acme.ls("/").entries == []
    assert acme.glob("**").files == [] and acme.grep("alice").matches == []
    assert "not found" in acme.delete("/secret.txt").error
    assert alice.read("/secret.txt").lines == ["alice's"]


def test_items_use_the_layout_other_harnesses_read_and_write(store):
    StoreBackend(store=store).write("/p.txt", "x")
    value = store.get(("filesystem",), "/p.txt").value
    assert set(value) == {"content", "encoding", "created_at", "modified_at"}
    assert value["encoding"] == "utf-8"


def test_memories_in_the_older_list_of_lines_layout_read_back(store):
    store.put(
        ("filesystem",), "/old.txt", {"content": ["a", "b"], "created_at": "", "modified_at": ""}
    )
    assert StoreBackend(store=store).read("/old.txt").lines == ["a", "b"]


def test_rewriting_and_uploading_keep_the_creation_time(store):
    backend = StoreBackend(store=store)
    backend.write("/p.txt", "one")
    created = store.get(("filesystem",), "/p.txt").value["created_at"]
    backend.write("/p.txt", "two")
    backend.upload_files([("/p.txt", b"three")])
    backend.edit("/p.txt", "three", "four")
    value = store.get(("filesystem",), "/p.txt").value
    assert value["created_at"] == created and value["modified_at"] > created


def test_the_whole_namespace_is_read_in_one_search_call():
    class Counting(InMemoryStore):
        searches = 0

        def batch(self, ops):
            Counting.searches += sum(type(op).__name__ == "SearchOp" for op in ops)
            return super().batch(ops)

    store = Counting()
    backend = StoreBackend(store=store)
    backend.upload_files([(f"/d/f{i}.txt", b"x") for i in range(500)])
    Counting.searches = 0
    assert len(backend.ls("/d").entries) == 500
    assert Counting.searches == 1


@pytest.mark.parametrize(
    "bad", [(), ("a.b",), ("*",), ("a", ""), ("x/y",), ("langgraph",), ("a%",)]
)
def test_namespaces_that_could_widen_are_refused(bad):
    with pytest.raises(ConfigError):
        validate_namespace(bad)


def test_a_callable_namespace_is_checked_when_it_is_used():
    backend = StoreBackend(store=InMemoryStore(), namespace=lambda rt: ("users", "*"))
    with pytest.raises(ConfigError, match="widen"):
        backend.ls("/")
