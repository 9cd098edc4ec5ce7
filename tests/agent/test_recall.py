"""The agent recalls by meaning: ``semantic_search`` over /memories/ on SQLite and
PostgreSQL, offered only where the store has an embedder, isolated per user."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.store.memory import InMemoryStore

from deepmemory import create_deep_agent
from deepmemory.backends import CompositeBackend, StateBackend, StoreBackend, tenant_namespace
from deepmemory.stores import PostgresStore, SQLiteStore
from deepmemory.testing import ScriptedChatModel, calls, tool_call
from tests.conftest import postgres_url
from tests.fakes.synonyms import DIMS, SynonymEmbeddings
from tests.stores.conftest import drop_schema

FACT = "Alice drinks an espresso every dawn before work."


def long_file() -> str:
    rows = []
    for n in range(1, 801):
        rows.append(FACT if n == 400 else f"Meeting note {n}: the quarterly report needs review.")
        if n % 10 == 0:
            rows.append("")
    return "\n".join(rows) + "\n"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    index = {"dims": DIMS, "embed": SynonymEmbeddings()}
    if request.param == "sqlite":
        made: Any = SQLiteStore(tmp_path / "memory.db", index=index)
        yield made
        made.close()
        return
    url, schema = postgres_url(), f"t_{uuid.uuid4().hex[:12]}"
    made = PostgresStore(url, schema=schema, index=index)
    yield made
    made.close()
    drop_schema(url, schema)


def agent_for(store: Any, replies: list[Any], **kwargs: Any) -> tuple[Any, ScriptedChatModel]:
    model = ScriptedChatModel(replies=replies)
    agent = create_deep_agent(
        model=model,
        store=store,
        backend=CompositeBackend(
            default=StateBackend(), routes={"/memories/": StoreBackend(**kwargs)}
        ),
    )
    return agent, model


def said(result: dict) -> list[str]:
    return [m.text for m in result["messages"] if isinstance(m, ToolMessage)]


def run(agent: Any, thread: str = "t1", context: Any = None) -> dict:
    return agent.invoke(
        {"messages": [{"role": "user", "content": "go"}]},
        {"configurable": {"thread_id": thread}},
        context=context,
    )


def test_a_passage_deep_in_a_long_file_is_recalled_by_meaning_through_the_tool(store) -> None:
    agent, model = agent_for(
        store,
        [
            calls(tool_call("write_file", file_path="/memories/journal.md", content=long_file())),
            calls(tool_call("semantic_search", query="morning coffee")),
            calls(tool_call("grep", pattern="coffee", path="/memories/")),
            calls(
                tool_call(
                    "edit_file", file_path="/memories/journal.md", old_string=FACT, new_string="-"
                ),
                tool_call("write_file", file_path="/memories/habits.md", content=FACT + "\n"),
            ),
            calls(tool_call("semantic_search", query="morning coffee", limit=1)),
            AIMessage("done"),
        ],
    )
    texts = said(run(agent))
    fact_line = long_file().split("\n").index(FACT) + 1
    first = texts[1].split("\n")[0]
    assert first.startswith("/memories/journal.md lines ")
    start, end = (int(n) for n in first.split(" lines ")[1].split(" ")[0].split("-"))
    assert start <= fact_line <= end and end - start < 25
    assert "espresso" in texts[1] and f"offset={start - 1}" in texts[1]
    assert texts[2] == "No matches for 'coffee'."
    assert texts[-1].startswith("/memories/habits.md lines 1-1")
    assert "semantic_search" in model.offered[0]
    assert "semantic_search" in model.received[0][0].text  # the prompt says when to use it


def test_the_tool_is_not_offered_without_an_embedder() -> None:
    agent, model = agent_for(InMemoryStore(), [AIMessage("hi")])
    run(agent)
    assert "semantic_search" not in model.offered[0]
    assert "semantic_search" not in model.received[0][0].text


def test_one_user_never_recalls_another_users_passages(store) -> None:
    namespace = tenant_namespace(user="user_id")
    write = calls(tool_call("write_file", file_path="/memories/me.md", content=FACT + "\n"))
    agent, _ = agent_for(store, [write, AIMessage("ok")], namespace=namespace)
    run(agent, "a", context={"user_id": "alice"})
    search = calls(tool_call("semantic_search", query="espresso at dawn"))
    agent, _ = agent_for(store, [search, AIMessage("ok")], namespace=namespace)
    texts = said(run(agent, "b", context={"user_id": "bob"}))
    assert texts == ["No passages found for 'espresso at dawn'."]
    agent, _ = agent_for(store, [search, AIMessage("ok")], namespace=namespace)
    texts = said(run(agent, "c", context={"user_id": "alice"}))
    assert texts[0].startswith("/memories/me.md lines 1-1")


def test_a_failing_embedder_never_loses_a_write_and_the_tool_says_so(tmp_path: Path) -> None:
    embedder = SynonymEmbeddings()
    store = SQLiteStore(tmp_path / "m.db", index={"dims": DIMS, "embed": embedder})
    try:
        embedder.fail = True
        agent, _ = agent_for(
            store,
            [
                calls(tool_call("write_file", file_path="/memories/a.md", content=FACT)),
                calls(tool_call("read_file", file_path="/memories/a.md")),
                calls(tool_call("semantic_search", query="coffee")),
                AIMessage("ok"),
            ],
        )
        texts = said(run(agent))
        assert texts[0] == "Wrote '/memories/a.md'." and FACT in texts[1]
        assert "searching by meaning failed" in texts[2]
        embedder.fail = False
        agent, _ = agent_for(
            store, [calls(tool_call("semantic_search", query="coffee")), AIMessage("ok")]
        )
        texts = said(run(agent, "t2"))
        assert "No passages found" in texts[0] and "not indexed" in texts[0]
        assert store.file_reindex(("filesystem",)) == (1, [])
        agent, _ = agent_for(
            store, [calls(tool_call("semantic_search", query="coffee")), AIMessage("ok")]
        )
        assert said(run(agent, "t3"))[0].startswith("/memories/a.md lines 1-1")
    finally:
        store.close()
