"""deepmemory inside deepagents: our ``StoreBackend`` answers as deepagents' own does,
through our stores' fast paths, without losing edits, and inside deepagents' agent."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from deepagents import create_deep_agent
from deepagents.backends import CompositeBackend, StateBackend
from deepagents.backends.store import StoreBackend as TheirStoreBackend
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.graph import END, START, StateGraph
from langgraph.store.memory import InMemoryStore
from typing_extensions import TypedDict

from deepmemory.backends import StoreBackend as OurFileBackend
from deepmemory.integrations.deepagents import StoreBackend
from deepmemory.testing import ScriptedChatModel, calls, tool_call

NS = ("users", "alice")

FILES = {
    "/notes.md": "# Notes\nbuy coffee\nCall Bob\n",
    "/a/b.py": "print('coffee')\n",
    "/a/c/d.py": "x = 1\n",
    "/a/c/e.txt": "coffee beans\nno match\ncoffee again",
    "/crlf.txt": "one\r\ntwo coffee\r\n",
    "/empty.txt": "",
}


def _pair(store: Any) -> tuple[StoreBackend, TheirStoreBackend]:
    """Ours over ``store``, and deepagents' own over an InMemoryStore, same files."""
    ours = StoreBackend(store=store, namespace=lambda _rt: NS)
    theirs = TheirStoreBackend(store=InMemoryStore(), namespace=lambda _rt: NS)
    for backend in (ours, theirs):
        for path, content in FILES.items():
            assert backend.write(path, content).error is None
    return ours, theirs


def _no_paging(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a fast path paged the namespace through search()")

    monkeypatch.setattr(store, "search", refuse)
    monkeypatch.setattr(store, "asearch", refuse)


def _files(result: Any) -> Any:
    """A listing without times (the two sides wrote at different instants)."""
    entries = result.entries if hasattr(result, "entries") else result.matches
    return result.error, [(e["path"], e.get("is_dir"), e.get("size")) for e in entries or []]


CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("ls", ("/",), {}),
    ("ls", ("/a",), {}),
    ("ls", ("/a/c/",), {}),
    ("ls", ("/missing",), {}),
    ("glob", ("*.py",), {}),
    ("glob", ("**/*.txt",), {}),
    ("glob", ("c/*",), {"path": "/a"}),
    ("glob", ("*.md",), {"path": "/notes.md"}),
    ("glob", ("[",), {}),
    ("grep", ("coffee",), {}),
    ("grep", ("coffee",), {"path": "/a"}),
    ("grep", ("coffee",), {"glob": "*.txt"}),
    ("grep", ("coffee",), {"path": "/notes.md"}),
    ("grep", ("coffee",), {"max_count": 2}),
    ("grep", ("zzz",), {}),
    ("read", ("/notes.md",), {}),
    ("read", ("/notes.md", 1, 1), {}),
    ("read", ("/notes.md", 9), {}),
    ("read", ("/crlf.txt",), {}),
    ("read", ("/empty.txt",), {}),
    ("read", ("/missing.md",), {}),
]


def _comparable(name: str, result: Any) -> Any:
    if name in ("ls", "glob"):
        return _files(result)
    if name == "grep":
        # Order is the store's (insertion order in InMemoryStore, by path in ours); a
        # CRLF line is shown as read_file shows it, without its "\r".
        matches = sorted(
            (m["path"], m["line"], m["text"].rstrip("\r")) for m in result.matches or []
        )
        return result.error, matches, getattr(result, "truncated", None)
    data = result.file_data or {}
    return result.error, data.get("content"), result.total_lines, result.next_offset


@pytest.mark.parametrize(("name", "args", "kwargs"), CALLS)
def test_answers_as_deepagents_own_backend_without_paging_the_namespace(
    store: Any, monkeypatch: pytest.MonkeyPatch, name: str, args: Any, kwargs: Any
) -> None:
    ours, theirs = _pair(store)
    _no_paging(store, monkeypatch)

    def comparable(result: Any) -> Any:
        found = _comparable(name, result)
        if "max_count" in kwargs:  # the first N in the store's order: how many, and flagged
            return found[0], len(found[1]), found[2]
        return found

    expected = comparable(getattr(theirs, name)(*args, **kwargs))
    assert comparable(getattr(ours, name)(*args, **kwargs)) == expected
    assert comparable(asyncio.run(getattr(ours, "a" + name)(*args, **kwargs))) == expected


def test_edits_deletes_uploads_and_downloads_answer_as_deepagents(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, theirs = _pair(store)
    _no_paging(store, monkeypatch)
    for old, new, every in [
        ("buy coffee", "buy tea", False),
        ("coffee", "tea", True),
        ("absent", "x", False),
        ("e", "E", False),
        ("", "x", False),
        ("Call Bob\n\n", "x", False),
    ]:
        a, b = ours.edit("/notes.md", old, new, every), theirs.edit("/notes.md", old, new, every)
        assert (a.error, a.occurrences) == (b.error, b.occurrences)
    assert ours.edit("/missing", "a", "b").error == theirs.edit("/missing", "a", "b").error
    assert ours.read("/notes.md").file_data["content"] == "# Notes\nbuy tea\nCall Bob\n"
    blob = bytes(range(256))
    assert ours.upload_files([("/bin.dat", blob), ("/t.txt", b"hi")])[0].error is None
    theirs.upload_files([("/bin.dat", blob), ("/t.txt", b"hi")])
    got = ours.download_files(["/bin.dat", "/t.txt", "/nope"])
    assert [(r.content, r.error) for r in got] == [
        (r.content, r.error) for r in theirs.download_files(["/bin.dat", "/t.txt", "/nope"])
    ]
    assert ours.edit("/bin.dat", "a", "b").error == theirs.edit("/bin.dat", "a", "b").error
    # A binary file's size: its bytes here, its base64 text's length in deepagents.
    assert [e["size"] for e in ours.ls("/").entries if e["path"] == "/bin.dat"] == [256]
    for path in ("/a", "/notes.md", "/missing", "/bin.dat"):
        assert (ours.delete(path).error is None) == (theirs.delete(path).error is None)
    assert _files(ours.ls("/")) == _files(theirs.ls("/"))
    assert store.get(NS, "/a/c/d.py") is None


def test_concurrent_edits_through_compare_and_swap_lose_nothing(store: Any) -> None:
    """``replace_all`` edits skip the one-statement path: each is a read, then a write
    that lands only if the version still holds. Eight threads, 20 edits each."""
    backend = StoreBackend(store=store, namespace=lambda _rt: NS)
    lines = [f"slot-{t}-{i}: todo todo" for t in range(8) for i in range(20)]
    backend.write("/list.md", "\n".join(lines) + "\n")

    def worker(t: int) -> None:
        for i in range(20):
            result = backend.edit(
                "/list.md", f"slot-{t}-{i}: todo todo", f"slot-{t}-{i}: done", True
            )
            assert result.error is None, result.error

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    content = backend.read("/list.md", 0, 1000).file_data["content"]
    assert content.count(": done") == 160 and "todo" not in content


def test_concurrent_async_edits_lose_nothing(store: Any) -> None:
    backend = StoreBackend(store=store, namespace=lambda _rt: NS)
    backend.write("/list.md", "".join(f"slot-{i}: todo\n" for i in range(100)))

    async def run() -> list[Any]:
        return await asyncio.gather(
            *(backend.aedit("/list.md", f"slot-{i}: todo", f"slot-{i}: done") for i in range(100)),
            *(
                backend.aedit("/list.md", f"slot-{i}: done", f"slot-{i}: DONE", True)
                for i in range(50)
            ),
        )

    asyncio.run(run())
    content = backend.read("/list.md", 0, 1000).file_data["content"]
    assert "todo" not in content and content.count("slot-") == 100


def test_changes_are_recorded_in_history_as_the_runs_thread(store: Any) -> None:
    backend = StoreBackend(store=store, namespace=lambda _rt: NS)

    class State(TypedDict):
        step: str

    def node(state: State) -> State:
        backend.write("/h.md", "one\n")
        backend.edit("/h.md", "one", "two")
        backend.edit("/h.md", "two", "three", True)
        backend.delete("/h.md")
        return state

    graph = StateGraph(State)
    graph.add_node("work", node)
    graph.add_edge(START, "work")
    graph.add_edge("work", END)
    graph.compile().invoke({"step": ""}, config={"configurable": {"thread_id": "t-42"}})
    revisions = store.history(NS, "/h.md")
    assert [r.op for r in revisions] == ["write", "edit", "edit", "delete"]
    assert {r.thread_id for r in revisions} == {"t-42"}


def test_items_written_by_either_side_read_back_through_the_other(store: Any) -> None:
    theirs = TheirStoreBackend(store=store, namespace=lambda _rt: NS)
    theirs.write("/theirs.md", "from deepagents\n")
    store.put(NS, "/legacy.md", {"content": ["old", "layout"], "created_at": "2025-01-01"})
    ours = OurFileBackend(store=store, namespace=NS)
    assert ours.read("/theirs.md").lines == ["from deepagents"]
    assert ours.read("/legacy.md").lines == ["old", "layout"]
    ours.write("/ours.md", "from deepmemory\n")
    assert theirs.read("/ours.md").file_data["content"] == "from deepmemory\n"
    ours_in_deepagents = StoreBackend(store=store, namespace=lambda _rt: NS)
    assert ours_in_deepagents.read("/legacy.md").file_data["content"] == "old\nlayout"
    assert [m["path"] for m in ours_in_deepagents.grep("layout").matches] == ["/legacy.md"]


def test_memories_persist_across_threads_in_deepagents_own_agent(store: Any) -> None:
    def policy(messages: list[BaseMessage]) -> AIMessage:
        if isinstance(messages[-1], ToolMessage):
            return AIMessage("Done.")
        if "remember" in str(messages[-1].content):
            path, content = "/memories/prefs.md", "likes espresso\n"
            return calls(tool_call("write_file", file_path=path, content=content))
        return calls(tool_call("read_file", file_path="/memories/prefs.md"))

    memories = StoreBackend(store=store, namespace=lambda _rt: NS)
    agent = create_deep_agent(
        model=ScriptedChatModel(replies=policy),
        backend=CompositeBackend(default=StateBackend(), routes={"/memories/": memories}),
    )
    for text in ("remember: espresso", "what do I like?"):
        config = {"configurable": {"thread_id": str(uuid.uuid4())}}
        out = agent.invoke({"messages": [HumanMessage(text)]}, config=config)
    tool_outputs = [m.content for m in out["messages"] if isinstance(m, ToolMessage)]
    assert any("likes espresso" in str(c) for c in tool_outputs)
    assert store.get(NS, "/prefs.md").value["content"] == "likes espresso\n"


AGENT_WORKER = """
import sys
from deepagents import create_deep_agent
from deepagents.backends import CompositeBackend, StateBackend
from langchain_core.messages import AIMessage, ToolMessage
from deepmemory.integrations.deepagents import StoreBackend
from deepmemory.stores import PostgresStore, SQLiteStore
from deepmemory.testing import ScriptedChatModel, calls, tool_call

kind, target, schema, worker, count = sys.argv[1:6]
store = SQLiteStore(target) if kind == "sqlite" else PostgresStore(target, schema=schema)
memories = StoreBackend(store=store, namespace=lambda rt: ("team",))

def policy(messages):
    done = [m for m in messages if isinstance(m, ToolMessage)]
    if done and ("rror" in str(done[-1].content)):
        sys.exit(f"edit {len(done)} failed: {done[-1].content}")
    if len(done) == int(count):
        return AIMessage("Done.")
    new = f"p{worker}-{len(done)}\\n<END>"
    return calls(tool_call("edit_file", file_path="/memories/log.md", old_string="<END>", new_string=new))

agent = create_deep_agent(
    model=ScriptedChatModel(replies=policy),
    backend=CompositeBackend(default=StateBackend(), routes={"/memories/": memories}),
)
print("ready", flush=True)
sys.stdin.readline()  # every worker starts on the same signal
agent.invoke({"messages": [{"role": "user", "content": "append"}]},
             config={"configurable": {"thread_id": f"w{worker}"}, "recursion_limit": 10_000})
store.close()
"""


@pytest.mark.slow
def test_two_processes_appending_through_deepagents_edit_file_tool_lose_nothing(
    make_store: Any, store_kind: str, tmp_path: Path
) -> None:
    """Two OS processes, each a deepagents agent making 200 ``edit_file`` appends to one
    memory file through deepagents' own tool: all 400 land, each process's in order."""
    store = make_store(store_kind)
    store.put(("team",), "/log.md", {"content": "<END>", "encoding": "utf-8"})
    if store_kind == "sqlite":
        target, schema = str(store.path), ""
    else:
        target, schema = store.connection_string, store.schema
    script = tmp_path / "agent_worker.py"
    script.write_text(AGENT_WORKER)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), store_kind, target, schema, str(w), "200"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for w in range(2)
    ]
    for proc in workers:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "ready", proc.communicate()[1]
    for proc in workers:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in workers:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    lines = store.get(("team",), "/log.md").value["content"].split("\n")
    assert lines[-1] == "<END>"
    for w in range(2):
        assert [line for line in lines if line.startswith(f"p{w}-")] == [
            f"p{w}-{n}" for n in range(200)
        ]
    assert len(lines) == 401
