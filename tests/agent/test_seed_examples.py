"""Every code block of the seed document runs with deepmemory and behaves as its prose says.

The blocks are taken from the document itself, with ``deepagents`` replaced by
``deepmemory``, and executed in order in one namespace (as a reader would run them).
The model is a scripted one that makes the tool calls the prose describes.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

import deepmemory.agent
from tests.agent.conftest import final_text, tool_messages
from tests.conftest import postgres_url

SEED = Path(__file__).parent / "seed" / "long-term-memory.md"
SHARED_SEED = Path(__file__).parents[3] / "shared" / "seed" / "long-term-memory.md"


def python_blocks() -> list[str]:
    text = SEED.read_text(encoding="utf-8")
    blocks = re.findall(r"```python[^\n]*\n(.*?)```", text, flags=re.S)
    return [b.replace("deepagents", "deepmemory") for b in blocks]


def run_block(index: int, namespace: dict) -> dict:
    exec(compile(python_blocks()[index], f"seed-block-{index}", "exec"), namespace)
    return namespace


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch, seed_model):
    # The seed creates agents without a model: route that default to the script.
    monkeypatch.setattr(deepmemory.agent, "resolve_model", lambda model=None: seed_model)
    return seed_model


def store_paths(store, namespace=("filesystem",)) -> dict[str, str]:
    return {i.key: i.value["content"] for i in store.search(namespace, limit=1000)}


def test_the_committed_seed_matches_the_shared_one():
    if not SHARED_SEED.exists():
        pytest.skip(
            f"needs the shared seed document at {SHARED_SEED} to compare with the committed "
            "copy (a checkout made outside the project's workspace has none)"
        )
    assert SEED.read_text() == SHARED_SEED.read_text()


def test_the_seed_has_the_blocks_this_file_tests():
    assert len(python_blocks()) == 9


def test_setup_and_path_routing_blocks(scripted):
    ns = run_block(0, {})
    run_block(1, ns)  # writes /draft.txt (thread state) and /memories/report.txt (store)
    store = ns["agent"].store
    assert store_paths(store) == {"/report.txt": "Final report\n"}


def test_cross_thread_persistence_block(scripted):
    ns = run_block(0, {})
    run_block(2, ns)
    # Thread 2 read the file thread 1 wrote: the scripted answer quotes the tool result.
    assert "Prefers concise answers" in scripted.received[-1][-1].text
    assert ns["config1"] != ns["config2"]


def test_a_draft_in_one_thread_does_not_exist_in_another(scripted):
    agent = run_block(0, {})["agent"]
    t1 = {"configurable": {"thread_id": str(uuid.uuid4())}}
    t2 = {"configurable": {"thread_id": str(uuid.uuid4())}}
    agent.invoke({"messages": [{"role": "user", "content": "Write draft to /draft.txt"}]}, t1)
    again = agent.invoke({"messages": [{"role": "user", "content": "Read draft"}]}, t1)
    assert "Draft: first pass" in tool_messages(again)[-1].text
    other = agent.invoke({"messages": [{"role": "user", "content": "Read draft"}]}, t2)
    assert "'/draft.txt' not found" in tool_messages(other)[-1].text


def test_user_preferences_block(scripted):
    agent = run_block(3, run_block(0, {}))["agent"]
    agent.invoke(
        {"messages": [{"role": "user", "content": "I prefer dark mode"}]},
        {"configurable": {"thread_id": "a"}},
    )
    later = agent.invoke(
        {"messages": [{"role": "user", "content": "What theme do I like?"}]},
        {"configurable": {"thread_id": "b"}},
    )
    assert "Theme: dark mode" in final_text(later)
    assert "/memories/user_preferences.txt" in scripted.received[0][0].text


def test_self_improving_instructions_block_edits_the_file_with_edit_file(scripted):
    agent = run_block(4, run_block(0, {}))["agent"]
    agent.invoke(
        {"messages": [{"role": "user", "content": "Start the instructions file"}]},
        {"configurable": {"thread_id": "a"}},
    )
    result = agent.invoke(
        {"messages": [{"role": "user", "content": "please always answer in bullet points"}]},
        {"configurable": {"thread_id": "b"}},
    )
    edits = [m for m in tool_messages(result) if m.name == "edit_file"]
    assert edits and edits[0].text.startswith("Edited '/memories/instructions.txt'")
    assert store_paths(agent.store)["/instructions.txt"] == (
        "Instructions:\n- Be concise\n- Always answer in bullet points\n"
    )


def test_knowledge_base_block(scripted):
    ns = run_block(0, {})
    run_block(5, ns)  # two invokes without thread ids: two separate conversations
    assert "Framework: React" in scripted.received[-1][-1].text


def test_research_projects_block(scripted):
    agent = run_block(6, run_block(0, {}))["research_agent"]
    agent.invoke(
        {"messages": [{"role": "user", "content": "Research the history of tea"}]},
        {"configurable": {"thread_id": "a"}},
    )
    result = agent.invoke(
        {"messages": [{"role": "user", "content": "Where did we leave the research?"}]},
        {"configurable": {"thread_id": "b"}},
    )
    listing, notes = [m.text for m in tool_messages(result)]
    assert "/memories/research/notes.txt" in listing and "/memories/research/sources.txt" in listing
    assert "17th century" in notes


def test_in_memory_store_block(scripted):
    ns = run_block(7, run_block(0, {}))
    agent = ns["agent"]
    agent.invoke({"messages": [{"role": "user", "content": "Save my preferences"}]})
    assert "/preferences.txt" in store_paths(ns["store"])


def test_postgres_store_block_runs_against_the_real_server(scripted, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", postgres_url())
    # langgraph's PostgresStore takes a connection, not connection_string=; ours takes
    # the seed's exact call, so the block imports it from deepmemory.stores.
    code = python_blocks()[8].replace(
        "from langgraph.store.postgres import PostgresStore",
        "from deepmemory.stores import PostgresStore",
    )
    ns = run_block(0, {})
    exec(compile(code, "seed-block-8", "exec"), ns)
    agent, store = ns["agent"], ns["store"]
    store.delete(("filesystem",), "/preferences.txt")  # start clean on the shared server
    agent.invoke(
        {"messages": [{"role": "user", "content": "Save my preferences"}]},
        {"configurable": {"thread_id": str(uuid.uuid4())}},
    )
    later = agent.invoke(
        {"messages": [{"role": "user", "content": "What are my preferences?"}]},
        {"configurable": {"thread_id": str(uuid.uuid4())}},
    )
    assert "Prefers concise answers" in final_text(later)
    store.delete(("filesystem",), "/preferences.txt")
