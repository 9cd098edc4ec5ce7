"""The memory map: the model sees what long-term memory holds, bounded, and kept fresh."""

from __future__ import annotations

import asyncio
import uuid

from langchain_core.messages import AIMessage
from langgraph.store.memory import InMemoryStore

from deepmemory import FilesystemMiddleware, create_deep_agent
from deepmemory.backends import CompositeBackend, ReadOnlyBackend, StateBackend, StoreBackend
from deepmemory.stores import SQLiteStore
from deepmemory.testing import ScriptedChatModel, calls, tool_call


def agent_for(store, replies, **kwargs):
    model = ScriptedChatModel(replies=replies)
    agent = create_deep_agent(
        model=model,
        store=store,
        backend=lambda rt: CompositeBackend(
            default=StateBackend(rt),
            routes={
                "/memories/": StoreBackend(rt),
                "/memories/policies/": ReadOnlyBackend(StoreBackend(rt, namespace=("p",))),
            },
        ),
        **kwargs,
    )
    return agent, model


def ask(agent, text="hi"):
    return agent.invoke(
        {"messages": [{"role": "user", "content": text}]},
        {"configurable": {"thread_id": str(uuid.uuid4())}},
    )


def test_the_system_message_maps_memory_with_sizes_and_first_lines(tmp_path):
    store = SQLiteStore(tmp_path / "m.db")
    memory = StoreBackend(store=store)
    memory.write("/preferences.txt", "Prefers tea over coffee\nand more\n")
    memory.write("/research/tea/notes.txt", "Tea history notes\n")
    StoreBackend(store=store, namespace=("p",)).write("/rules.txt", "Be kind\n")
    agent, model = agent_for(store, [AIMessage("ok")])
    ask(agent)
    system = model.received[0][0].text
    assert "### What your long-term memory holds now (3 files)" in system
    assert "- /memories/preferences.txt (33 B): Prefers tea over coffee" in system
    assert "- /memories/research/tea/notes.txt (18 B): Tea history notes" in system
    assert "- /memories/policies/rules.txt (8 B): Be kind" in system
    assert "/memories/instructions.txt: standing instructions" in system  # the seed's advice


def test_the_map_follows_edits_made_during_the_run():
    store = InMemoryStore()
    agent, model = agent_for(
        store,
        [
            calls(tool_call("write_file", file_path="/memories/new.txt", content="Fresh\n")),
            AIMessage("ok"),
        ],
    )
    ask(agent)
    assert "/memories/new.txt" not in model.received[0][0].text
    assert "- /memories/new.txt (6 B): Fresh" in model.received[1][0].text


def test_a_large_memory_is_cut_to_the_budget_with_a_note(tmp_path):
    store = SQLiteStore(tmp_path / "m.db")
    StoreBackend(store=store).upload_files(
        [(f"/notes/n{i:03d}.txt", f"note number {i}\n".encode()) for i in range(300)]
    )
    agent, model = agent_for(store, [AIMessage("ok")])
    ask(agent)
    system = model.received[0][0].text
    section = system[system.index("### What your long-term memory holds now") :]
    assert "(300 files)" in section
    assert "more files: use ls or glob on /memories/ to see them." in section
    assert len(section) < 800 * 4 + 200
    assert section.count("\n- /memories/notes/") <= 40


def test_an_empty_memory_says_so_and_the_map_can_be_turned_off():
    agent, model = agent_for(InMemoryStore(), [AIMessage("ok")])
    ask(agent)
    assert "Nothing yet under /memories/." in model.received[0][0].text
    quiet = FilesystemMiddleware(
        backend=CompositeBackend(default=StateBackend(), routes={"/memories/": StoreBackend()}),
        memory_map=False,
    )
    model = ScriptedChatModel(replies=[AIMessage("ok")])
    from langchain.agents import create_agent

    graph = create_agent(model, [], middleware=[quiet], store=InMemoryStore())
    graph.invoke({"messages": [{"role": "user", "content": "x"}]})
    assert "What your long-term memory holds" not in model.received[0][0].text
    assert "### Long-term memory" in model.received[0][0].text


def test_the_map_is_built_in_async_runs_too():
    store = InMemoryStore()
    StoreBackend(store=store).write("/a.txt", "Alpha\n")
    agent, model = agent_for(store, [AIMessage("ok")])
    asyncio.run(
        agent.ainvoke(
            {"messages": [{"role": "user", "content": "x"}]},
            {"configurable": {"thread_id": "t"}},
        )
    )
    assert "- /memories/a.txt (6 B): Alpha" in model.received[0][0].text
