"""A background sweep deletes expired memories while agent turns on the same store carry on.

Real SQLite files and PostgreSQL; the agent is driven by a scripted model; time is a
``ManualClock``. The sweep deletes in small batches (one short transaction each), so
turns interleave with it instead of waiting for it.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from psycopg import sql

from deepmemory import create_deep_agent
from deepmemory.backends import CompositeBackend, StateBackend, StoreBackend
from deepmemory.backends.protocol import StoredFile
from deepmemory.clock import ManualClock, use_clock
from deepmemory.pruning import PrunePolicy, Sweeper
from deepmemory.stores import PostgresStore, SQLiteStore
from deepmemory.testing import ScriptedChatModel, calls, tool_call
from tests.conftest import postgres_url

NS = ("memories", "alice")
POLICY = PrunePolicy(ttl=timedelta(days=30))
EXPIRED = 2000


def policy(messages: list[BaseMessage]) -> AIMessage:
    """``note N``: write /memories/notes/N.md and read it back; then answer with the read."""
    asked = max(i for i, m in enumerate(messages) if isinstance(m, HumanMessage))
    n = re.search(r"note (\d+)", messages[asked].text).group(1)  # type: ignore[union-attr]
    path = f"/memories/notes/{n}.md"
    done = [m for m in messages[asked:] if isinstance(m, ToolMessage)]
    if not done:
        return calls(tool_call("write_file", file_path=path, content=f"note {n}\n"))
    if len(done) == 1:
        return calls(tool_call("read_file", file_path=path))
    return AIMessage(done[-1].text)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "sqlite":
        with SQLiteStore(tmp_path / "memory.db") as store:
            yield store
        return
    url, schema = postgres_url(), f"deepmemory_sweep_{uuid.uuid4().hex[:10]}"
    with PostgresStore(url, schema=schema) as store:
        yield store
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def test_agent_turns_carry_on_while_a_sweep_deletes_expired_memories(store: Any) -> None:
    with use_clock(ManualClock(datetime(2026, 1, 1, tzinfo=UTC))) as clock:
        assert isinstance(clock, ManualClock)
        old = [(f"/old/{i:04}.md", StoredFile(f"old {i}\n")) for i in range(EXPIRED)]
        store.file_put_many(NS, old)
        clock.advance(timedelta(days=31))

        agent = create_deep_agent(
            model=ScriptedChatModel(replies=policy),
            store=store,
            backend=lambda rt: CompositeBackend(
                default=StateBackend(rt),
                routes={"/memories/": StoreBackend(rt, namespace=NS, prune=POLICY)},
            ),
        )
        batches: list[float] = []
        sweeper = Sweeper(
            store,
            POLICY,
            namespaces=[NS],
            every=timedelta(hours=1),
            batch_size=10,
            on_batch=lambda keys: batches.append(time.monotonic()),
        )
        turns: list[tuple[float, str]] = []

        def turn(n: int) -> None:
            config = {"configurable": {"thread_id": f"t{n}"}}
            result = agent.invoke({"messages": [{"role": "user", "content": f"note {n}"}]}, config)
            turns.append((time.monotonic(), str(result["messages"][-1].text)))

        turn(0)  # warm up: the first turn of a process builds the graph
        with sweeper:  # the first sweep starts at once, in its own thread
            while not sweeper.last_reports and len(turns) < 400:
                turn(len(turns))
        n = len(turns)
        assert sweeper.last_error is None
        [report] = sweeper.last_reports
        assert len(report.removed) == EXPIRED and report.changed_since == []
        # Turns finished while the sweep was between its first and last batch.
        during = [t for t, _ in turns if batches[0] < t < batches[-1]]
        assert during, (len(turns), len(batches))
        assert all(reply.endswith(f"note {i}") for i, (_, reply) in enumerate(turns))
        # Every note written during the sweep is still there; every old file is gone.
        fs = StoreBackend(store=store, namespace=NS).mounted("/memories")
        assert len(fs.glob("**", "/memories/notes").files) == n
        assert fs.ls("/memories/old").error is not None


def test_a_sweeper_that_fails_keeps_running_and_says_why(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "memory.db")
    store.close()  # every sweep now fails
    sweeper = Sweeper(store, POLICY, namespaces=[NS], every=timedelta(milliseconds=10))
    with sweeper:
        deadline = time.monotonic() + 10
        while sweeper.last_error is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sweeper.running
    assert "closed" in str(sweeper.last_error)
    assert not sweeper.running


def test_sweeping_every_namespace_under_a_prefix(tmp_path: Path) -> None:
    with (
        SQLiteStore(tmp_path / "memory.db") as store,
        use_clock(ManualClock(datetime(2026, 1, 1, tzinfo=UTC))) as clock,
    ):
        assert isinstance(clock, ManualClock)
        for user in ("alice", "bob"):
            store.file_put_many(("memories", user), [("/a.md", StoredFile("a\n"))])
        store.file_put_many(("other",), [("/a.md", StoredFile("a\n"))])
        clock.advance(timedelta(days=31))
        reports = Sweeper(store, POLICY, prefix=("memories",)).sweep()
        assert sorted((r.namespace, len(r.removed)) for r in reports) == [
            (("memories", "alice"), 1),
            (("memories", "bob"), 1),
        ]
        assert store.file_get(("other",), "/a.md") is not None


def test_a_sweeper_stopped_at_once_returns_promptly_after_looking(tmp_path: Path) -> None:
    """The first sweep always runs; stop() cancels it before its next batch of deletes."""
    with (
        SQLiteStore(tmp_path / "memory.db") as store,
        use_clock(ManualClock(datetime(2026, 1, 1, tzinfo=UTC))) as clock,
    ):
        assert isinstance(clock, ManualClock)
        store.file_put_many(NS, [("/a.md", StoredFile("a\n"))])
        clock.advance(timedelta(days=31))
        sweeper = Sweeper(store, POLICY, namespaces=[NS]).start()
        sweeper.stop()
        assert not sweeper.running
        assert [r.namespace for r in sweeper.last_reports] == [NS]
        assert sweeper.last_error is None
        # stop() cancels the background sweep only: a sweep asked for directly runs.
        [report] = sweeper.sweep()
        assert store.file_get(NS, "/a.md") is None and report.changed_since == []


def explorer(messages: list[BaseMessage]) -> AIMessage:
    """Write a memory, then (after the clock moved) look for it with every tool."""
    asked = max(i for i, m in enumerate(messages) if isinstance(m, HumanMessage))
    done = [m for m in messages[asked:] if isinstance(m, ToolMessage)]
    if "remember" in messages[asked].text:
        plan = [tool_call("write_file", file_path="/memories/tea.md", content="green tea\n")]
    else:
        plan = [
            tool_call("ls", path="/memories"),
            tool_call("read_file", file_path="/memories/tea.md"),
            tool_call("glob", pattern="**/*.md", path="/memories"),
            tool_call("grep", pattern="tea", path="/memories"),
            tool_call("edit_file", file_path="/memories/tea.md", old_string="g", new_string="G"),
        ]
    if len(done) < len(plan):
        return calls(plan[len(done)])
    return AIMessage("\n---\n".join(m.text for m in done))


def test_an_expired_memory_is_gone_from_every_tool_the_model_has(tmp_path: Path) -> None:
    with (
        SQLiteStore(tmp_path / "memory.db") as store,
        use_clock(ManualClock(datetime(2026, 1, 1, tzinfo=UTC))) as clock,
    ):
        assert isinstance(clock, ManualClock)
        agent = create_deep_agent(
            model=ScriptedChatModel(replies=explorer),
            store=store,
            backend=lambda rt: CompositeBackend(
                default=StateBackend(rt),
                routes={"/memories/": StoreBackend(rt, namespace=NS, ttl=timedelta(days=30))},
            ),
        )

        def say(text: str) -> list[str]:
            turn = {"messages": [{"role": "user", "content": text}]}
            result = agent.invoke(turn, {"configurable": {"thread_id": str(uuid.uuid4())}})
            return str(result["messages"][-1].text).split("\n---\n")

        say("remember that I like green tea")
        clock.advance(timedelta(days=29))
        ls, read, glob, grep, edit = say("what do you know?")
        assert "tea.md" in ls and "green tea" in read and "tea.md" in glob and "tea" in grep
        clock.advance(timedelta(days=31))  # 31 days since the write (and the edit above)
        ls, read, glob, grep, edit = say("what do you know now?")
        assert "tea.md" not in ls + glob + grep
        assert "not found" in read and "not found" in edit
        assert store.get(NS, "/tea.md") is not None  # hidden; a prune deletes it
