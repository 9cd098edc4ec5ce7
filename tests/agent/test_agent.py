"""create_deep_agent end to end: tools as the model sees them, subagents, approvals, models."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.store.memory import InMemoryStore
from langgraph.types import Command

import deepmemory.agent
from deepmemory import ConfigError, create_deep_agent
from deepmemory.backends import CompositeBackend, StateBackend, StoreBackend
from deepmemory.testing import ScriptedChatModel, calls, tool_call


def cfg(thread: str | None = None) -> dict:
    return {"configurable": {"thread_id": thread or str(uuid.uuid4())}}


def ask(text: str) -> dict:
    return {"messages": [{"role": "user", "content": text}]}


def tools_said(result: dict) -> list[str]:
    return [m.text for m in result["messages"] if isinstance(m, ToolMessage)]


def memory_agent(replies, **kwargs):
    store = kwargs.pop("store", None) or InMemoryStore()
    return create_deep_agent(
        model=ScriptedChatModel(replies=replies),
        store=store,
        backend=CompositeBackend(default=StateBackend(), routes={"/memories/": StoreBackend()}),
        **kwargs,
    ), store


def test_plain_instances_work_as_well_as_factories():
    agent, store = memory_agent(
        [
            calls(tool_call("write_file", file_path="/memories/a.txt", content="hi")),
            AIMessage("ok"),
        ]
    )
    agent.invoke(ask("save"), cfg())
    assert store.get(("filesystem",), "/a.txt").value["content"] == "hi"


def test_read_file_shows_numbered_lines_and_how_to_page_on():
    content = "".join(f"row {i}\n" for i in range(1, 1201))
    agent, _ = memory_agent(
        [
            calls(tool_call("write_file", file_path="/memories/big.txt", content=content)),
            calls(tool_call("read_file", file_path="/memories/big.txt")),
            calls(tool_call("read_file", file_path="/memories/big.txt", offset=1195, limit=10)),
            AIMessage("done"),
        ]
    )
    said = tools_said(agent.invoke(ask("go"), cfg()))
    first = said[1].splitlines()
    assert first[0] == "     1\trow 1"
    assert said[1].endswith("Call read_file with offset=500 to read on.]")
    assert said[2].splitlines()[0] == "  1196\trow 1196" and "offset=" not in said[2]


def test_long_lines_are_cut_in_the_view_only_and_the_model_is_told():
    agent, store = memory_agent(
        [
            calls(tool_call("write_file", file_path="/memories/wide.txt", content="x" * 5000)),
            calls(tool_call("read_file", file_path="/memories/wide.txt")),
            AIMessage("done"),
        ]
    )
    said = tools_said(agent.invoke(ask("go"), cfg()))
    assert "[line truncated: 5000 characters]" in said[1] and "cut in this view only" in said[1]
    assert len(store.get(("filesystem",), "/wide.txt").value["content"]) == 5000


def test_every_failure_reaches_the_model_as_a_message_and_the_run_goes_on():
    agent, _ = memory_agent(
        [
            calls(
                tool_call("read_file", file_path="/memories/missing.txt"),
                tool_call("read_file", file_path="notes.txt"),
                tool_call("ls", path="/memories/../etc"),
                tool_call(
                    "edit_file", file_path="/memories/missing.txt", old_string="a", new_string="b"
                ),
                tool_call("write_file", file_path="/dir/", content="x"),
                tool_call("grep", pattern=""),
                tool_call("glob", pattern="../*"),
                tool_call("read_file", file_path="/memories/a\x00b"),
                tool_call("delete", file_path="/memories"),
            ),
            AIMessage("recovered"),
        ]
    )
    result = agent.invoke(ask("go"), cfg())
    said = tools_said(result)
    assert len(said) == 9 and all(s.startswith("Error:") for s in said)
    assert "'/memories/missing.txt' not found" in said[0]  # the full path, route included
    assert result["messages"][-1].text == "recovered"


def test_an_unexpected_failure_in_storage_is_one_line_for_the_model():
    class BrokenStore(InMemoryStore):
        def batch(self, ops):
            raise RuntimeError("disk on fire at /var/lib/secret")

    agent, _ = memory_agent(
        [
            calls(tool_call("read_file", file_path="/memories/a.txt")),
            AIMessage("ok"),
        ],
        store=BrokenStore(),
    )
    said = tools_said(agent.invoke(ask("go"), cfg()))
    assert said == [said[0]] and said[0].startswith("Error: read_file failed unexpectedly")
    assert "/var/lib/secret" not in said[0]


def test_arguments_of_the_wrong_type_come_back_as_a_message():
    agent, _ = memory_agent(
        [
            calls(tool_call("read_file", file_path="/memories/a.txt", offset="abc")),
            AIMessage("ok"),
        ]
    )
    result = agent.invoke(ask("go"), cfg())
    assert "offset" in tools_said(result)[0]
    assert result["messages"][-1].text == "ok"


def test_ls_of_the_root_shows_routes_and_the_thread_files():
    agent = create_deep_agent(
        model=ScriptedChatModel(
            replies=[
                calls(tool_call("write_file", file_path="/draft.txt", content="d")),
                calls(tool_call("ls", path="/"), tool_call("ls", path="/memories/")),
                AIMessage("ok"),
            ]
        ),
        store=InMemoryStore(),
        backend=CompositeBackend(
            default=StateBackend(),
            routes={
                "/memories/": StoreBackend(),
                "/memories/policies/": StoreBackend(namespace=("policies",)),
            },
        ),
    )
    said = tools_said(agent.invoke(ask("go"), cfg()))
    assert said[1].splitlines() == ["/draft.txt (1 B)", "/memories/"]
    assert said[2].splitlines() == ["/memories/policies/"]


def test_a_subagent_writes_memory_and_its_deletions_reach_the_parent():
    store = InMemoryStore()
    model = ScriptedChatModel(
        replies=[
            calls(tool_call("write_file", file_path="/scratch.txt", content="temp")),
            calls(
                tool_call(
                    "task",
                    description="Save the summary and clean up",
                    subagent_type="general-purpose",
                )
            ),
            # the subagent's turns:
            calls(
                tool_call("read_file", file_path="/scratch.txt"),
                tool_call("write_file", file_path="/memories/summary.txt", content="summary"),
                tool_call("delete", file_path="/scratch.txt"),
            ),
            AIMessage("Saved the summary and removed the scratch file."),
            # back in the parent:
            calls(tool_call("ls", path="/")),
            AIMessage("all done"),
        ]
    )
    agent = create_deep_agent(
        model=model,
        store=store,
        backend=lambda rt: CompositeBackend(
            default=StateBackend(rt), routes={"/memories/": StoreBackend(rt)}
        ),
    )
    config = cfg()
    result = agent.invoke(ask("go"), config)
    said = tools_said(result)
    assert said[1] == "Saved the summary and removed the scratch file."
    assert said[2].splitlines() == ["/memories/"]
    assert store.get(("filesystem",), "/summary.txt").value["content"] == "summary"
    assert "/scratch.txt" not in agent.get_state(config).values.get("files", {})


def test_a_custom_subagent_gets_its_own_prompt_and_tools():
    def lookup(term: str) -> str:
        """Look a term up."""
        return f"definition of {term}"

    model = ScriptedChatModel(
        replies=[
            calls(tool_call("task", description="define tea", subagent_type="glossary")),
            calls(tool_call("lookup", term="tea")),
            AIMessage("tea: a drink"),
            AIMessage("the glossary says: tea is a drink"),
        ]
    )
    agent = create_deep_agent(
        model=model,
        subagents=[
            {
                "name": "glossary",
                "description": "Defines terms.",
                "system_prompt": "You are a glossary.",
                "tools": [lookup],
            }
        ],
    )
    result = agent.invoke(ask("what is tea"), cfg())
    assert tools_said(result) == ["tea: a drink"]
    assert "You are a glossary." in model.received[1][0].text
    assert "definition of tea" in model.received[2][-1].text


def test_an_unknown_subagent_type_lists_the_known_ones():
    agent = create_deep_agent(
        model=ScriptedChatModel(
            replies=[
                calls(tool_call("task", description="x", subagent_type="nope")),
                AIMessage("ok"),
            ]
        )
    )
    said = tools_said(agent.invoke(ask("go"), cfg()))
    assert "no subagent type 'nope'" in said[0] and "general-purpose" in said[0]


def _approval_agent(store):
    model = ScriptedChatModel(
        replies=[
            calls(
                tool_call("write_file", file_path="/memories/instructions.txt", content="be brief")
            ),
            AIMessage("finished"),
        ]
    )
    agent, _ = memory_agent(model.replies, store=store, interrupt_on={"write_file": True})
    return agent


@pytest.mark.parametrize(
    "decision, expected",
    [
        ({"type": "approve"}, "be brief"),
        (
            {
                "type": "edit",
                "edited_action": {
                    "name": "write_file",
                    "args": {"file_path": "/memories/instructions.txt", "content": "be kind"},
                },
            },
            "be kind",
        ),
        ({"type": "reject", "message": "not now"}, None),
    ],
)
def test_interrupt_on_pauses_for_approval_and_resumes_as_decided(decision, expected):
    store = InMemoryStore()
    agent = _approval_agent(store)
    config = cfg()
    paused = agent.invoke(ask("remember"), config)
    request = paused["__interrupt__"][0].value
    assert request["action_requests"][0]["name"] == "write_file"
    assert store.get(("filesystem",), "/instructions.txt") is None
    agent.invoke(Command(resume={"decisions": [decision]}), config)
    item = store.get(("filesystem",), "/instructions.txt")
    assert (item.value["content"] if item else None) == expected


def test_long_histories_are_summarized(monkeypatch):
    monkeypatch.setattr(deepmemory.agent, "SUMMARIZE_AT_TOKENS", 300)
    monkeypatch.setattr(deepmemory.agent, "KEEP_MESSAGES", 2)
    model = ScriptedChatModel(
        replies=lambda msgs: AIMessage(
            "SUMMARY OF EARLIER TALK" if "Messages to summarize" in msgs[-1].text else "reply " * 50
        )
    )
    agent = create_deep_agent(model=model)
    config = cfg()
    for i in range(6):
        agent.invoke(ask(f"message {i} " + "words " * 40), config)
    messages = agent.get_state(config).values["messages"]
    assert any("SUMMARY OF EARLIER TALK" in m.text for m in messages)
    assert len(messages) < 12


def test_a_todo_list_is_kept_in_state():
    todos = [{"content": "plan", "status": "in_progress"}]
    agent = create_deep_agent(
        model=ScriptedChatModel(
            replies=[
                calls(tool_call("write_todos", todos=todos)),
                AIMessage("ok"),
            ]
        )
    )
    config = cfg()
    agent.invoke(ask("go"), config)
    assert agent.get_state(config).values["todos"] == todos


def test_thread_files_survive_between_turns_without_a_checkpointer_argument():
    agent = create_deep_agent(
        model=ScriptedChatModel(
            replies=[
                calls(tool_call("write_file", file_path="/notes.txt", content="n")),
                AIMessage("a"),
                calls(tool_call("read_file", file_path="/notes.txt")),
                AIMessage("b"),
            ]
        )
    )
    config = cfg()
    agent.invoke(ask("one"), config)
    assert tools_said(agent.invoke(ask("two"), config))[-1] == "     1\tn"


def test_async_runs_share_memory_across_threads():
    agent, store = memory_agent(
        [
            calls(tool_call("write_file", file_path="/memories/p.txt", content="tea")),
            AIMessage("a"),
            calls(tool_call("read_file", file_path="/memories/p.txt")),
            AIMessage("b"),
        ]
    )

    async def go():
        await agent.ainvoke(ask("save"), cfg())
        return await agent.ainvoke(ask("read"), cfg())

    assert tools_said(asyncio.run(go())) == ["     1\ttea"]


def test_a_namespace_callable_scopes_memory_per_user():
    from dataclasses import dataclass

    @dataclass
    class Ctx:
        user_id: str

    store = InMemoryStore()
    model = ScriptedChatModel(
        replies=[
            calls(tool_call("write_file", file_path="/memories/p.txt", content="alice likes tea")),
            AIMessage("a"),
            calls(tool_call("read_file", file_path="/memories/p.txt")),
            AIMessage("b"),
        ]
    )
    agent = create_deep_agent(
        model=model,
        store=store,
        context_schema=Ctx,
        backend=lambda rt: CompositeBackend(
            default=StateBackend(rt),
            routes={
                "/memories/": StoreBackend(rt, namespace=lambda r: ("users", r.context.user_id))
            },
        ),
    )
    agent.invoke(ask("save"), cfg(), context=Ctx("alice"))
    bob = agent.invoke(ask("read"), cfg(), context=Ctx("bob"))
    assert "not found" in tools_said(bob)[0]
    assert store.get(("users", "alice"), "/p.txt").value["content"] == "alice likes tea"


def test_no_model_and_no_key_fails_at_creation_with_one_clear_message(monkeypatch):
    for var in ("DEEPMEMORY_MODEL", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError, match="No chat model chosen.*DEEPMEMORY_MODEL"):
        create_deep_agent()


def test_the_model_comes_from_the_environment_when_not_given(monkeypatch):
    monkeypatch.delenv("DEEPMEMORY_MODEL", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert deepmemory.agent.resolve_model(None).model_name == "gpt-4.1"
    monkeypatch.setenv("DEEPMEMORY_MODEL", "openai:gpt-4o-mini")
    assert deepmemory.agent.resolve_model(None).model_name == "gpt-4o-mini"


def test_a_store_backend_without_a_store_tells_the_developer_what_to_pass():
    agent = create_deep_agent(
        model=ScriptedChatModel(replies=[calls(tool_call("ls", path="/memories/"))]),
        backend=CompositeBackend(default=StateBackend(), routes={"/memories/": StoreBackend()}),
    )
    with pytest.raises(ConfigError, match="pass store="):
        agent.invoke(ask("go"), cfg())


def test_a_turn_interrupted_between_tool_calls_and_results_leaves_a_usable_thread():
    model = ScriptedChatModel(replies=[AIMessage("fresh start")])
    agent = create_deep_agent(model=model)
    config = cfg()
    dangling = calls(tool_call("write_file", file_path="/a.txt", content="x"))
    agent.update_state(config, {"messages": [{"role": "user", "content": "hi"}, dangling]})
    agent.invoke(ask("again"), config)
    sent = model.received[0]
    position = next(i for i, m in enumerate(sent) if getattr(m, "tool_calls", None))
    follow = sent[position + 1]
    assert isinstance(follow, ToolMessage) and "interrupted before it ran" in follow.text
    assert follow.tool_call_id == dangling.tool_calls[0]["id"]


def test_a_subagent_that_fails_becomes_a_message_and_the_parent_goes_on():
    class Exploding:
        def invoke(self, payload, config):
            raise RuntimeError("boom at /secret/host/path")

        async def ainvoke(self, payload, config):
            raise RuntimeError("boom")

    agent = create_deep_agent(
        model=ScriptedChatModel(
            replies=[
                calls(tool_call("task", description="x", subagent_type="fragile")),
                AIMessage("carried on"),
            ]
        ),
        subagents=[{"name": "fragile", "description": "breaks", "runnable": Exploding()}],
    )
    result = agent.invoke(ask("go"), cfg())
    said = tools_said(result)
    assert said[0].startswith("Error: the 'fragile' subagent failed (RuntimeError)")
    assert "/secret" not in said[0] and result["messages"][-1].text == "carried on"


def test_tenant_ids_in_the_config_reach_the_memory_map_and_approvals():
    from deepmemory.backends import tenant_namespace

    store = InMemoryStore()
    StoreBackend(store=store, namespace=("memories", "alice")).write(
        "/instructions.txt", "Be brief\n"
    )
    model = ScriptedChatModel(
        replies=[
            calls(
                tool_call(
                    "edit_file",
                    file_path="/memories/instructions.txt",
                    old_string="Be brief",
                    new_string="Be kind",
                )
            ),
            AIMessage("ok"),
        ]
    )
    agent = create_deep_agent(
        model=model,
        store=store,
        approve_writes=["/memories/instructions.txt"],
        backend=lambda rt: CompositeBackend(
            default=StateBackend(rt),
            routes={"/memories/": StoreBackend(rt, namespace=tenant_namespace(user="user_id"))},
        ),
    )
    config = {"configurable": {"thread_id": str(uuid.uuid4()), "user_id": "alice"}}
    paused = agent.invoke(ask("kinder please"), config)
    assert "- /memories/instructions.txt (9 B): Be brief" in model.received[0][0].text
    description = paused["__interrupt__"][0].value["action_requests"][0]["description"]
    assert "-Be brief" in description and "+Be kind" in description


@pytest.mark.parametrize("as_dict", [False, True], ids=["dataclass", "dict"])
def test_a_run_with_a_context_prints_no_serializer_warnings(as_dict):
    """Every tool of the agent takes the injected runtime; with a context (a dataclass or
    a dict) and a context_schema, no call may print pydantic's serializer warnings."""
    import warnings
    from dataclasses import dataclass

    from langgraph.store.memory import InMemoryStore

    from deepmemory.backends import CompositeBackend, StateBackend, StoreBackend, tenant_namespace
    from deepmemory.testing import ScriptedChatModel, calls, tool_call

    @dataclass
    class Ctx:
        user_id: str

    agent = create_deep_agent(
        model=ScriptedChatModel(
            replies=[
                calls(
                    tool_call("write_file", file_path="/memories/a.md", content="x\n"),
                    tool_call("ls", path="/memories/"),
                    tool_call("read_file", file_path="/memories/a.md"),
                    tool_call("grep", pattern="x"),
                    tool_call("glob", pattern="*"),
                ),
                AIMessage("done"),
            ]
        ),
        store=InMemoryStore(),
        context_schema=Ctx,
        backend=lambda rt: CompositeBackend(
            default=StateBackend(rt),
            routes={"/memories/": StoreBackend(rt, namespace=tenant_namespace(user="user_id"))},
        ),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        agent.invoke(
            {"messages": [{"role": "user", "content": "note x"}]},
            {"configurable": {"thread_id": "warn"}},
            context={"user_id": "alice"} if as_dict else Ctx("alice"),
        )
    assert [str(w.message)[:120] for w in caught if "serializ" in str(w.message).lower()] == []


def test_messages_count_one_thing_in_the_singular():
    from deepmemory import errors
    from deepmemory.backends.protocol import DeleteResult
    from deepmemory.middleware.approval import deletion
    from deepmemory.middleware.rendering import render_delete

    assert "which has 1 line." in errors.offset_past_end("/a.md", 5, 1)
    assert "which has 3 lines." in errors.offset_past_end("/a.md", 5, 3)
    assert deletion("/a.md", "only\n") == "Delete /a.md (1 line)."
    one = DeleteResult("/d", deleted=["/d", "/d/a.md"])
    assert render_delete(one) == "Deleted '/d' and 2 files in it."
    assert errors.count(1, "file") == "1 file" and errors.count(0, "file") == "0 files"
