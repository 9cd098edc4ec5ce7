"""Tenants: user A, whatever it sends, never sees, changes or deletes user B's files."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.store.memory import InMemoryStore

from deepmemory import ConfigError, create_deep_agent
from deepmemory.backends import CompositeBackend, StateBackend, StoreBackend, tenant_namespace
from deepmemory.stores import SQLiteStore
from deepmemory.testing import ScriptedChatModel, calls, tool_call

SECRET = "B-SECRET-7731"
# Bob's files whose names alone would tell Alice something.
B_NAMES = {
    "/secret.txt": f"{SECRET}\n",
    "/b-top-4417.txt": "bob's note\n",
    "/b-private-4417/b-plan-4417.md": "bob's plan\n",
}


@dataclass
class Ctx:
    user_id: str


ATTACKS = [
    tool_call("ls", path="/"),
    tool_call("ls", path="/memories/"),
    tool_call("ls", path="/memories/../"),
    tool_call("read_file", file_path="/memories/secret.txt"),
    tool_call("read_file", file_path="/memories/../memories/secret.txt"),
    tool_call("glob", pattern="**"),
    tool_call("glob", pattern="/memories/**"),
    tool_call("glob", pattern="../**"),
    tool_call("glob", pattern="**/*", path="/memories/.."),
    tool_call("grep", pattern=SECRET),
    tool_call("grep", pattern="B-SECRET", path="/memories/", output_mode="content"),
    tool_call("grep", pattern="%", glob="**"),
    tool_call("grep", pattern="_"),
    tool_call("grep", pattern="bob", path="/memories/b-top-4417.txt"),  # one file, by name
    tool_call("grep", pattern="plan", path="/memories/b-private-4417/", output_mode="content"),
    tool_call("read_file", file_path="/memories/b-top-4417.txt"),
    tool_call("ls", path="/memories/b-private-4417"),
    tool_call("glob", pattern="b-*"),
    tool_call("glob", pattern="*.md", path="/memories/b-private-4417"),
]
# Changes run one per turn: tool calls of one turn run concurrently, in no fixed order.
CHANGES = [
    tool_call("edit_file", file_path="/memories/secret.txt", old_string=SECRET, new_string="x"),
    tool_call("write_file", file_path="/memories/secret.txt", content="overwritten by A"),
    tool_call("delete", file_path="/memories/secret.txt"),
    tool_call("delete", file_path="/memories"),
]


@pytest.fixture(params=["memory", "langgraph-sqlite", "sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "memory":
        return InMemoryStore()
    if request.param == "sqlite":
        return SQLiteStore(tmp_path / "memory.db")
    if request.param == "postgres":
        store = request.getfixturevalue("postgres_store")
        for user in ("alice", "bob"):  # the shared server keeps data between runs
            StoreBackend(store=store, namespace=("memories", user)).delete("/secret.txt")
        return store
    return request.getfixturevalue("langgraph_sqlite_store")


def make_agent(store, model):
    return create_deep_agent(
        model=model,
        store=store,
        context_schema=Ctx,
        backend=lambda rt: CompositeBackend(
            default=StateBackend(rt),
            routes={"/memories/": StoreBackend(rt, namespace=tenant_namespace(user="user_id"))},
        ),
    )


def test_user_a_cannot_see_change_or_delete_user_b_files(store):
    b_backend = StoreBackend(store=store, namespace=("memories", "bob"))
    for path, content in B_NAMES.items():
        b_backend.write(path, content)
    model = ScriptedChatModel(
        replies=[calls(*ATTACKS), *(calls(change) for change in CHANGES), AIMessage("done")]
    )
    result = make_agent(store, model).invoke(
        {"messages": [{"role": "user", "content": "find bob's secret"}]},
        {"configurable": {"thread_id": str(uuid.uuid4())}},
        context=Ctx("alice"),
    )
    said = "\n".join(m.text for m in result["messages"] if isinstance(m, ToolMessage))
    # The only place B's secret may appear is A's own search pattern echoed back; B's
    # file names only where A's own calls named them (a path A asked for, refused).
    assert SECRET not in said.replace(f"No matches for {SECRET!r}", "")
    assert "bob's" not in said
    for name in ("b-top-4417", "b-plan-4417"):
        assert all(name not in line or "not found" in line.lower() for line in said.splitlines()), (
            said
        )
    assert "b-private-4417/" not in said.replace("'/memories/b-private-4417/'", "")
    # Through the backend A's tools use: listings, searches and downloads of A's own
    # namespace name none of B's files.
    a_backend = StoreBackend(store=store, namespace=("memories", "alice"))
    seen = [
        *(e.path for e in a_backend.ls("/").entries or []),
        *(f.path for f in a_backend.glob("**").files or []),
        *(m.path for m in a_backend.grep("bob").matches or []),
        *(m.path for m in a_backend.grep("o", path="/b-top-4417.txt").matches or []),
    ]
    assert not any("4417" in path or path == "/secret.txt" for path in seen), seen
    downloads = a_backend.download_files(list(B_NAMES))
    assert all(d.content is None and d.error for d in downloads), downloads
    assert b_backend.read("/secret.txt").lines == [SECRET]
    # A's write and delete acted on A's own namespace only.
    assert "Deleted '/memories/secret.txt'" in said
    assert store.get(("memories", "alice"), "/secret.txt") is None


@pytest.mark.parametrize("bad_id", ["*", "bob.alice", "a/b", "", "%", "[x]"])
def test_a_user_id_that_could_widen_the_namespace_is_refused(store, bad_id):
    model = ScriptedChatModel(replies=[calls(tool_call("ls", path="/memories/"))])
    with pytest.raises(ConfigError):
        make_agent(store, model).invoke(
            {"messages": [{"role": "user", "content": "x"}]},
            {"configurable": {"thread_id": str(uuid.uuid4())}},
            context=Ctx(bad_id),
        )


def test_ids_can_come_from_the_config_instead_of_the_context():
    ns = tenant_namespace(user="user_id", assistant="assistant_id")

    class Rt:
        context = None
        config = {"configurable": {"user_id": "u1", "assistant_id": "helper"}}

    assert ns(Rt()) == ("memories", "helper", "u1")
