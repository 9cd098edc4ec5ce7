"""Agents configured with an OpenAI model talk real HTTP to a fake chat-completions server.

The model is ``"openai:gpt-4.1"`` (or a ``ChatOpenAI``) pointed by ``OPENAI_BASE_URL``
at ``tests.fakes.openai_server`` on 127.0.0.1, so the whole path runs for real:
``init_chat_model`` -> ``langchain-openai`` -> the ``openai`` SDK -> HTTP (JSON and SSE)
-> the fake's policy, which acts out the seed's cross-thread memory scenario.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from langchain_core.exceptions import ModelAPIError, ModelAuthenticationError
from langchain_core.messages import AIMessage, AIMessageChunk, ToolMessage
from langchain_openai import ChatOpenAI
from langgraph.store.memory import InMemoryStore

from deepmemory import ConfigError, create_deep_agent
from deepmemory.backends import CompositeBackend, StateBackend, StoreBackend
from tests.fakes.openai_server import (
    FakeOpenAIServer,
    RecordedRequest,
    last_user_text,
    tool_results_since_user,
)

API_KEY = "test-key"
SAVE = "Save my preferences to /memories/preferences.txt"
ASK = "What are my preferences?"
PREFERENCES = "Prefers concise answers\nUses metric units\n"
SAVED_ANSWER = "Saved your preferences to /memories/preferences.txt."
RECALL_PREFIX = "Here is what I remember: "

FILE_TOOLS = ["ls", "read_file", "write_file", "edit_file", "delete", "glob", "grep"]
ARGUMENTS = {
    "ls": {"path"},
    "read_file": {"file_path", "offset", "limit"},
    "write_file": {"file_path", "content"},
    "edit_file": {"file_path", "old_string", "new_string", "replace_all"},
    "glob": {"pattern", "path"},
    "grep": {"pattern", "path", "glob", "output_mode"},
}

# Settings that would send the client elsewhere (a proxy, another base URL, a gateway)
# or pick another model; cleared so the test sees only what it sets.
FOREIGN_ENV = [
    "OPENAI_API_BASE",
    "OPENAI_ORG_ID",
    "OPENAI_ORGANIZATION",
    "OPENAI_PROJECT_ID",
    "OPENAI_PROXY",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "LANGSMITH_GATEWAY",
    "LANGSMITH_GATEWAY_API_KEY",
    "LANGSMITH_TRACING",
    "LANGCHAIN_TRACING_V2",
    "DEEPMEMORY_MODEL",
    "ANTHROPIC_API_KEY",
]


def seed_policy(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Any:
    """What a good model does for the seed's cross-thread scenario, in OpenAI terms."""
    if messages[-1]["role"] == "tool":
        calls = [c["function"]["name"] for c in messages[-2].get("tool_calls", [])]
        if calls == ["write_file"]:
            return SAVED_ANSWER
        return RECALL_PREFIX + " | ".join(tool_results_since_user(messages))
    user = last_user_text(messages)
    if user.startswith("Save my preferences"):
        return [("write_file", {"file_path": "/memories/preferences.txt", "content": PREFERENCES})]
    if user.startswith("What are my preferences"):
        return [("read_file", {"file_path": "/memories/preferences.txt"})]
    return "I have nothing to do for that."


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(seed_policy, api_key=API_KEY) as fake:
        yield fake
    assert not fake.policy_errors, fake.policy_errors
    assert not fake.server_errors, fake.server_errors


@pytest.fixture
def openai_env(monkeypatch: pytest.MonkeyPatch, server: FakeOpenAIServer) -> FakeOpenAIServer:
    """OPENAI_API_KEY and OPENAI_BASE_URL point at the fake (undone after the test)."""
    for name in FOREIGN_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    return server


def memory_backend(rt: Any) -> CompositeBackend:
    return CompositeBackend(default=StateBackend(rt), routes={"/memories/": StoreBackend(rt)})


def make_agent(model: Any = "openai:gpt-4.1") -> Any:
    return create_deep_agent(model=model, store=InMemoryStore(), backend=memory_backend)


def new_thread() -> dict[str, Any]:
    return {"configurable": {"thread_id": str(uuid.uuid4())}}


def says(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def stored(agent: Any) -> dict[str, str]:
    return {i.key: i.value["content"] for i in agent.store.search(("filesystem",), limit=100)}


def assert_cross_thread_conversation(server: FakeOpenAIServer, answer: str) -> None:
    """The four requests of the scenario, as the model received them."""
    save, after_write, ask, after_read = server.chat_requests  # exactly four model calls
    assert last_user_text(save.messages) == SAVE
    write_call = after_write.messages[-2]["tool_calls"][0]
    assert write_call["function"]["name"] == "write_file"
    assert json.loads(write_call["function"]["arguments"])["content"] == PREFERENCES
    assert after_write.messages[-1]["role"] == "tool"
    assert after_write.messages[-1]["tool_call_id"] == write_call["id"]
    assert "/memories/preferences.txt" in after_write.messages[-1]["content"]
    # Thread 2 starts fresh: the model sees nothing of thread 1's conversation.
    assert [m["role"] for m in ask.messages] == ["system", "user"]
    assert last_user_text(ask.messages) == ASK
    read_call = after_read.messages[-2]["tool_calls"][0]
    assert read_call["function"]["name"] == "read_file"
    assert json.loads(read_call["function"]["arguments"]) == {
        "file_path": "/memories/preferences.txt"
    }
    tool_result = after_read.messages[-1]
    assert tool_result["role"] == "tool" and tool_result["tool_call_id"] == read_call["id"]
    assert "Prefers concise answers" in tool_result["content"]
    assert "Uses metric units" in tool_result["content"]
    # The final answer quotes what the server was sent as the tool result.
    assert answer == RECALL_PREFIX + tool_result["content"]


# -- the cross-thread scenario over HTTP ------------------------------------------------


def test_an_agent_from_a_model_string_remembers_preferences_across_threads_over_http(
    openai_env,
):
    agent = make_agent()
    first = agent.invoke(says(SAVE), new_thread())
    assert first["messages"][-1].text == SAVED_ANSWER
    later = agent.invoke(says(ASK), new_thread())
    assert stored(agent) == {"/preferences.txt": PREFERENCES}
    assert_cross_thread_conversation(openai_env, later["messages"][-1].text)
    assert "Prefers concise answers" in later["messages"][-1].text


def test_each_request_carries_the_configured_key_and_model_without_streaming(openai_env):
    agent = make_agent()
    agent.invoke(says(SAVE), new_thread())
    for request in openai_env.chat_requests:
        assert request.method == "POST"
        assert request.headers["authorization"] == f"Bearer {API_KEY}"
        assert request.body["model"] == "gpt-4.1"
        assert not request.stream


def test_the_model_is_offered_the_file_tools_with_their_argument_names(openai_env):
    agent = make_agent()
    agent.invoke(says(SAVE), new_thread())
    agent.invoke(says(ASK), new_thread())
    offered = [sorted(r.tool_names) for r in openai_env.chat_requests]
    assert all(names == offered[0] for names in offered)  # the same tools on every call
    request = openai_env.chat_requests[0]
    assert set(FILE_TOOLS + ["write_todos", "task"]) <= set(request.tool_names)
    for name, arguments in ARGUMENTS.items():
        assert arguments <= set(request.tool_parameters(name)["properties"]), name
    every_argument = {
        a for n in request.tool_names for a in request.tool_parameters(n)["properties"]
    }
    assert {
        "file_path",
        "old_string",
        "new_string",
        "replace_all",
        "pattern",
        "path",
        "glob",
        "output_mode",
        "offset",
        "limit",
        "content",
    } <= every_argument
    assert "file_path" in request.tool_parameters("read_file")["required"]
    assert "file_path" in request.tool_parameters("delete")["properties"]
    assert {"description", "subagent_type"} <= set(request.tool_parameters("task")["properties"])


def test_the_system_prompt_sent_to_the_model_explains_the_memories_directory(openai_env):
    agent = make_agent()
    agent.invoke(says(ASK), new_thread())
    request: RecordedRequest = openai_env.chat_requests[0]
    assert request.messages[0]["role"] == "system"
    prompt = request.system_prompt
    assert "/memories/" in prompt
    assert "persist across conversations" in prompt
    for name in FILE_TOOLS:
        assert f"`{name}`" in prompt


def test_ainvoke_remembers_preferences_across_threads_over_http(openai_env):
    agent = make_agent()

    async def conversation() -> tuple[dict, dict]:
        first = await agent.ainvoke(says(SAVE), new_thread())
        return first, await agent.ainvoke(says(ASK), new_thread())

    first, later = asyncio.run(conversation())
    assert first["messages"][-1].text == SAVED_ANSWER
    assert stored(agent) == {"/preferences.txt": PREFERENCES}
    assert_cross_thread_conversation(openai_env, later["messages"][-1].text)


# -- streaming -----------------------------------------------------------------------------


def model_chunks(parts: list[tuple[Any, dict]]) -> list[AIMessageChunk]:
    return [m for m, meta in parts if isinstance(m, AIMessageChunk)]


def test_stream_messages_mode_gets_the_answer_from_the_server_token_by_token(openai_env):
    agent = make_agent()  # the model string: "messages" mode alone makes it stream
    list(agent.stream(says(SAVE), new_thread(), stream_mode="messages"))
    parts = list(agent.stream(says(ASK), new_thread(), stream_mode="messages"))

    assert all(r.stream for r in openai_env.chat_requests)  # every model call was SSE
    assert stored(agent) == {"/preferences.txt": PREFERENCES}
    chunks = model_chunks(parts)
    call_pieces = [c for chunk in chunks for c in chunk.tool_call_chunks]
    assert len(call_pieces) > 2  # the read_file call arrived in pieces ...
    assert call_pieces[0]["name"] == "read_file"
    assert "".join(c["args"] for c in call_pieces) == '{"file_path": "/memories/preferences.txt"}'
    tool_results = [m for m, meta in parts if isinstance(m, ToolMessage)]
    assert "Prefers concise answers" in tool_results[0].text
    answer_pieces = [c.text for c in chunks if c.text]
    assert len(answer_pieces) > 5  # ... and so did the answer, token by token
    assert_cross_thread_conversation(openai_env, "".join(answer_pieces))


def test_a_streaming_chat_openai_object_streams_through_invoke_astream_and_reports_usage(
    openai_env, monkeypatch
):
    monkeypatch.delenv("OPENAI_BASE_URL")  # everything comes from the object itself
    model = ChatOpenAI(
        model="gpt-4.1",
        streaming=True,
        stream_usage=True,
        base_url=openai_env.base_url,
        api_key=API_KEY,
    )
    agent = make_agent(model)
    first = agent.invoke(says(SAVE), new_thread())

    async def ask() -> list[tuple[Any, dict]]:
        return [p async for p in agent.astream(says(ASK), new_thread(), stream_mode="messages")]

    parts = asyncio.run(ask())
    for request in openai_env.chat_requests:
        assert request.stream
        assert request.body["stream_options"] == {"include_usage": True}
    final = first["messages"][-1]
    assert isinstance(final, AIMessage) and final.text == SAVED_ANSWER
    assert final.usage_metadata and final.usage_metadata["total_tokens"] > 0
    chunks = model_chunks(parts)
    assert any(c.usage_metadata for c in chunks)  # the usage chunk came through the stream
    answer_pieces = [c.text for c in chunks if c.text]
    assert len(answer_pieces) > 5
    assert_cross_thread_conversation(openai_env, "".join(answer_pieces))


# -- choosing the model from the environment ---------------------------------------------


def test_with_no_model_deepmemory_model_chooses_openai_on_the_configured_server(
    openai_env, monkeypatch
):
    monkeypatch.setenv("DEEPMEMORY_MODEL", "openai:gpt-4.1")
    agent = make_agent(model=None)
    agent.invoke(says(SAVE), new_thread())
    later = agent.invoke(says(ASK), new_thread())
    assert_cross_thread_conversation(openai_env, later["messages"][-1].text)
    assert {r.body["model"] for r in openai_env.chat_requests} == {"gpt-4.1"}


def test_with_no_model_and_only_an_openai_key_the_default_openai_model_is_used(openai_env):
    agent = make_agent(model=None)
    result = agent.invoke(says(SAVE), new_thread())
    assert result["messages"][-1].text == SAVED_ANSWER
    assert {r.body["model"] for r in openai_env.chat_requests} == {"gpt-4.1"}


# -- errors the caller sees ----------------------------------------------------------------


def test_a_rejected_api_key_reaches_the_caller_as_an_authentication_error(openai_env, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "wrong-key")
    agent = make_agent()
    with pytest.raises(openai.AuthenticationError) as caught:
        agent.invoke(says(SAVE), new_thread())
    error = caught.value
    assert isinstance(error, ModelAuthenticationError)  # catchable without naming openai
    assert error.status_code == 401
    assert str(error).startswith("Error code: 401 - Incorrect API key provided: wrong-key.")
    assert len(openai_env.chat_requests) == 1  # a 401 is not retried
    assert stored(agent) == {}


def test_a_scripted_401_reaches_the_caller_with_the_servers_message(openai_env):
    openai_env.fail(401, "Your organization has been deactivated.", code="account_deactivated")
    with pytest.raises(ModelAuthenticationError, match="Your organization has been deactivated"):
        make_agent().invoke(says(SAVE), new_thread())


def test_a_server_error_is_retried_then_reaches_the_caller_as_an_api_error(openai_env):
    openai_env.fail(500, times=None, retry_after_ms=1)
    agent = make_agent()
    with pytest.raises(openai.InternalServerError) as caught:
        agent.invoke(says(SAVE), new_thread())
    error = caught.value
    assert isinstance(error, ModelAPIError)
    assert error.status_code == 500
    assert str(error) == (
        "Error code: 500 - The server had an error while processing your request. Sorry about that!"
    )
    assert len(openai_env.chat_requests) == 3  # the openai SDK's two retries, then give up


def test_a_server_error_while_streaming_reaches_the_caller_after_the_tool_ran(openai_env):
    openai_env.fail(500, "The engine is overloaded.", skip=1, times=None, retry=False)
    agent = make_agent()
    with pytest.raises(openai.InternalServerError, match="The engine is overloaded"):
        list(agent.stream(says(SAVE), new_thread(), stream_mode="messages"))
    assert len(openai_env.chat_requests) == 2  # x-should-retry: false is honoured
    assert stored(agent) == {"/preferences.txt": PREFERENCES}  # the write happened first


def test_a_run_stopped_by_a_server_error_resumes_in_its_thread_once_the_server_recovers(
    openai_env,
):
    openai_env.fail(500, skip=1, times=None, retry=False)
    agent = make_agent()
    thread = new_thread()
    with pytest.raises(openai.InternalServerError):
        agent.invoke(says(SAVE), thread)
    openai_env.clear_failures()
    resumed = agent.invoke(None, thread)  # continue from the checkpoint, no new input
    assert resumed["messages"][-1].text == SAVED_ANSWER
    assert [m.type for m in resumed["messages"]] == ["human", "ai", "tool", "ai"]
    assert stored(agent) == {"/preferences.txt": PREFERENCES}


def test_a_model_string_without_an_api_key_fails_at_creation_naming_the_variable(
    openai_env, monkeypatch
):
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        make_agent()
    assert openai_env.requests == []


# -- the fake itself, through the plain openai SDK -----------------------------------------


def test_the_fake_server_lists_models_and_streams_usage_in_the_openai_wire_format(server):
    client = openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0)
    assert [m.id for m in client.models.list()] == ["gpt-4.1"]
    stream = client.chat.completions.create(
        model="gpt-4.1",
        messages=[{"role": "user", "content": SAVE}],
        stream=True,
        stream_options={"include_usage": True},
        tools=[{"type": "function", "function": {"name": "write_file", "parameters": {}}}],
    )
    events = list(stream)
    assert events[-1].choices == [] and events[-1].usage.total_tokens > 0
    assert events[-2].choices[0].finish_reason == "tool_calls"
    pieces = [
        e.choices[0].delta.tool_calls[0] for e in events[:-2] if e.choices[0].delta.tool_calls
    ]
    assert pieces[0].id and pieces[0].function.name == "write_file"
    arguments = "".join(p.function.arguments for p in pieces)
    assert json.loads(arguments) == {
        "file_path": "/memories/preferences.txt",
        "content": PREFERENCES,
    }
    client.close()
    assert server.chat_requests[0].tool_names == ["write_file"]
