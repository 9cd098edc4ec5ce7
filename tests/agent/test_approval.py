"""Writes under a protected prefix pause for a human who sees the diff and decides."""

from __future__ import annotations

import uuid

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.store.memory import InMemoryStore
from langgraph.types import Command

from deepmemory import create_deep_agent
from deepmemory.backends import CompositeBackend, StateBackend, StoreBackend
from deepmemory.testing import ScriptedChatModel, calls, tool_call

INSTRUCTIONS = "/memories/instructions.txt"


def agent_with(store, replies):
    return create_deep_agent(
        model=ScriptedChatModel(replies=replies),
        store=store,
        backend=lambda rt: CompositeBackend(
            default=StateBackend(rt), routes={"/memories/": StoreBackend(rt)}
        ),
        approve_writes=[INSTRUCTIONS],
    )


def stored(store):
    item = store.get(("filesystem",), "/instructions.txt")
    return item.value["content"] if item else None


@pytest.fixture
def store():
    store = InMemoryStore()
    StoreBackend(store=store).write("/instructions.txt", "- Be concise\n")
    return store


def edit_call():
    return calls(
        tool_call(
            "edit_file",
            file_path=INSTRUCTIONS,
            old_string="- Be concise\n",
            new_string="- Be concise\n- Use bullet points\n",
        )
    )


def test_a_protected_edit_pauses_and_shows_the_diff(store):
    agent = agent_with(store, [edit_call(), AIMessage("done")])
    config = {"configurable": {"thread_id": str(uuid.uuid4())}}
    paused = agent.invoke({"messages": [{"role": "user", "content": "always bullets"}]}, config)
    request = paused["__interrupt__"][0].value
    description = request["action_requests"][0]["description"]
    assert "+- Use bullet points" in description and " - Be concise" in description
    assert stored(store) == "- Be concise\n"


@pytest.mark.parametrize(
    "decision, expected, model_sees",
    [
        ({"type": "approve"}, "- Be concise\n- Use bullet points\n", "Edited"),
        (
            {
                "type": "edit",
                "edited_action": {
                    "name": "edit_file",
                    "args": {
                        "file_path": INSTRUCTIONS,
                        "old_string": "- Be concise\n",
                        "new_string": "- Be concise\n- Use numbered lists\n",
                    },
                },
            },
            "- Be concise\n- Use numbered lists\n",
            "Edited",
        ),
        ({"type": "reject", "message": "keep it as is"}, "- Be concise\n", "keep it as is"),
    ],
)
def test_resuming_with_approve_edit_or_reject_does_what_each_says(
    store, decision, expected, model_sees
):
    agent = agent_with(store, [edit_call(), AIMessage("done")])
    config = {"configurable": {"thread_id": str(uuid.uuid4())}}
    agent.invoke({"messages": [{"role": "user", "content": "always bullets"}]}, config)
    result = agent.invoke(Command(resume={"decisions": [decision]}), config)
    assert stored(store) == expected
    tool_text = [m.text for m in result["messages"] if isinstance(m, ToolMessage)]
    assert model_sees in tool_text[-1]
    assert result["messages"][-1].text == "done"


def test_writes_elsewhere_do_not_pause(store):
    agent = agent_with(
        store,
        [
            calls(tool_call("write_file", file_path="/memories/notes.txt", content="n")),
            AIMessage("ok"),
        ],
    )
    result = agent.invoke(
        {"messages": [{"role": "user", "content": "note"}]},
        {"configurable": {"thread_id": str(uuid.uuid4())}},
    )
    assert "__interrupt__" not in result
    assert store.get(("filesystem",), "/notes.txt").value["content"] == "n"


def test_a_new_protected_file_shows_its_whole_content_as_added():
    store = InMemoryStore()
    agent = agent_with(
        store, [calls(tool_call("write_file", file_path=INSTRUCTIONS, content="- Be kind\n"))]
    )
    paused = agent.invoke(
        {"messages": [{"role": "user", "content": "x"}]},
        {"configurable": {"thread_id": str(uuid.uuid4())}},
    )
    description = paused["__interrupt__"][0].value["action_requests"][0]["description"]
    assert "--- /dev/null" in description and "+- Be kind" in description
