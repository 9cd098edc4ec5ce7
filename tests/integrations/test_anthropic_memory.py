"""Claude's memory tool over deepmemory backends: the SDK's tool classes and the agent middleware.

The differential tests drive one seeded random sequence of memory commands through the
SDK's own ``BetaLocalFilesystemMemoryTool`` (a temporary folder) and through ours (our
SQLite and PostgreSQL stores) and require the same answer to every command. The agent
tests run ``ChatAnthropic`` over real HTTP against a fake Messages API on loopback.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from anthropic.lib.tools import ToolError
from anthropic.tools.memory import (
    BetaAsyncLocalFilesystemMemoryTool,
    BetaLocalFilesystemMemoryTool,
)
from langchain.agents import create_agent
from langchain_anthropic import ChatAnthropic
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from deepmemory import create_deep_agent
from deepmemory.backends import (
    CompositeBackend,
    LimitsBackend,
    ReadOnlyBackend,
    StateBackend,
    StoreBackend,
)
from deepmemory.integrations.anthropic import (
    MEMORY_PROMPT,
    AsyncMemoryTool,
    ClaudeMemoryMiddleware,
    MemoryTool,
)
from deepmemory.middleware.approval import approve_writes
from deepmemory.stores import PostgresStore, SQLiteStore
from deepmemory.testing import ScriptedChatModel, calls, tool_call
from tests.conftest import postgres_url
from tests.fakes.anthropic_server import (
    FakeAnthropicServer,
    last_user_text,
    tool_results,
    tool_results_since_user,
)

MEMORY_SPEC = {"type": "memory_20250818", "name": "memory"}
STEPS = 600

# -- the random command sequence ----------------------------------------------------------

WORDS = ["alpha", "beta", "gamma", "delta", "alpha beta", "é", "日本", "  ", "x"]
NAMES = ["a.txt", "b.md", "notes.txt", ".secret", "c"]
DIRS = ["", "notes/", "notes/deep/", "projects/", ".hidden/", "notes/deep/deeper/"]
ODD_PATHS = [
    "/memories",
    "/memories/",
    "/memories//notes/a.txt",
    "/memories/./a.txt",
    "/memories/notes/../a.txt",
    "/memories/notes/deep/../../b.md",
    "/memories/../etc/passwd",
    "/memories/notes/../../x.txt",
    "/etc/passwd",
    "memories/a.txt",
    "",
    "/memoriesX/a.txt",
    "/memories/a.txt/inner.txt",
    "/memories/notes/",
]


def files_of(root: Path) -> dict[str, bytes]:
    """Every file below the reference's root, as ``/memories/...`` paths."""
    return {
        "/memories/" + p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def dirs_of(root: Path) -> list[str]:
    return ["/memories/" + p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_dir()]


def prune_empty_dirs(root: Path) -> None:
    """Remove the reference's empty directories: a virtual filesystem has none.

    Directories exist in ours only while a file lies below them; on a host folder they
    outlive their last file. Pruning after every command keeps the two worlds alike.
    """
    for current, _, _ in sorted(os.walk(root), key=lambda w: -len(w[0])):
        if Path(current) != root and not os.listdir(current):
            os.rmdir(current)


def text(rng: random.Random) -> str:
    lines = [" ".join(rng.choices(WORDS, k=rng.randint(1, 3))) for _ in range(rng.randint(0, 6))]
    body = rng.choice(["\n", "\n", "\r\n"]).join(lines)
    return body + rng.choice(["", "\n", "\n\n"])


def a_path(rng: random.Random, root: Path) -> str:
    files, dirs = list(files_of(root)), dirs_of(root)
    roll = rng.random()
    if roll < 0.35 and files:
        return rng.choice(files)
    if roll < 0.5 and dirs:
        return rng.choice(dirs) + rng.choice(["", "/", "/sub", "/sub/x.md"])
    if roll < 0.55 and files:
        return rng.choice(files) + rng.choice(["/inner.txt", "/d/inner.txt"])  # below a file
    if roll < 0.65:
        return rng.choice(ODD_PATHS)
    return "/memories/" + rng.choice(DIRS) + rng.choice(NAMES)


def an_old_str(rng: random.Random, content: str) -> str:
    roll = rng.random()
    if roll < 0.5 and content:
        start = rng.randrange(len(content))
        return content[start : start + rng.randint(1, 12)]
    if roll < 0.8:
        return rng.choice(WORDS)
    return rng.choice(["nowhere", "", "\n"])


def a_command(rng: random.Random, root: Path) -> dict[str, Any]:
    kind = rng.choices(
        ["view", "create", "str_replace", "insert", "delete", "rename", "clear"],
        weights=[22, 24, 16, 14, 8, 14, 0.4],
    )[0]
    path = a_path(rng, root)
    if kind == "view":
        command: dict[str, Any] = {"command": "view", "path": path}
        if rng.random() < 0.5:
            start, end = rng.randint(-1, 8), rng.choice([-1, -2, 0, 2, 5, 9, 40])
            command["view_range"] = [start, end]
        return command
    if kind == "create":
        return {"command": "create", "path": path, "file_text": text(rng)}
    if kind in ("str_replace", "insert"):
        real = files_of(root)
        if real and rng.random() < 0.7:
            path = rng.choice(list(real))
        content = real.get(path, b"").decode("utf-8", "replace")
        if kind == "insert":
            lines = content.count("\n") + 1
            return {
                "command": "insert",
                "path": path,
                "insert_line": rng.randint(-1, lines + 1),
                "insert_text": text(rng) or "one line",
            }
        new_str = rng.choice(["", "omega", "two\nlines", "alpha"])
        return {
            "command": "str_replace",
            "path": path,
            "old_str": an_old_str(rng, content),
            "new_str": new_str,
        }
    if kind in ("rename", "delete") and rng.random() < 0.05:
        path = rng.choice(["/memories", "/memories/"])
    if kind == "delete":
        return {"command": "delete", "path": path}
    if kind == "rename":
        inside = rng.random() < 0.1  # a directory into itself, or a file used as one
        new_path = path.rstrip("/") + "/sub/x.md" if inside else a_path(rng, root)
        return {"command": "rename", "old_path": path, "new_path": new_path}
    return {"command": "clear"}


# -- comparing answers ----------------------------------------------------------------------

Outcome = tuple[str, str]
VIEW_HEADER = "Here're the files and directories up to 2 levels deep in "


def outcome_of(run: Callable[[], Any]) -> Outcome:
    try:
        return "ok", str(run())
    except ToolError as exc:
        return "refused", str(exc.content)
    except Exception as exc:
        return "raised", f"{type(exc).__name__}: {exc}"


async def aoutcome_of(run: Callable[[], Awaitable[Any]]) -> Outcome:
    try:
        return "ok", str(await run())
    except ToolError as exc:
        return "refused", str(exc.content)
    except Exception as exc:
        return "raised", f"{type(exc).__name__}: {exc}"


def without_dir_sizes(answer: str) -> str:
    """A directory view with its directories' sizes masked (the only thing allowed to differ).

    The reference shows a directory's inode size (4.0K); ours, the bytes of the files
    below it. File sizes are compared as they are.
    """
    if not answer.startswith(VIEW_HEADER):
        return answer
    header, *rows = answer.split("\n")
    masked = []
    for i, row in enumerate(rows):
        size, _, shown = row.partition("\t")
        masked.append(("<dir>" if i == 0 or shown.endswith("/") else size) + "\t" + shown)
    return "\n".join([header, *masked])


def check_same(step: int, command: dict[str, Any], theirs: Outcome, ours: Outcome, tmp: Path):
    where = f"step {step}: {command!r}"
    if theirs[0] == "raised":
        # The reference lets an OS error escape (with host paths); ours refuses cleanly.
        assert ours[0] == "refused", f"{where}: reference raised {theirs[1]!r}, ours {ours!r}"
        assert str(tmp) not in ours[1] and "Errno" not in ours[1], where
        return
    assert (ours[0], without_dir_sizes(ours[1])) == (theirs[0], without_dir_sizes(theirs[1])), (
        f"{where}\nreference: {theirs!r}\nours:      {ours!r}"
    )


def stored_files(backend: Any) -> dict[str, bytes]:
    found = backend.glob("**", "/memories")
    assert found.error is None, found.error
    names = [f.path for f in found.files]
    return {d.path: d.content for d in backend.download_files(names)}


def run_sync_sequence(seed: int, reference: Any, ours: MemoryTool, backend: Any, tmp: Path):
    rng = random.Random(seed)
    root = Path(reference.memory_root)
    seen: set[str] = set()
    for step in range(STEPS):
        command = a_command(rng, root)
        if command["command"] == "clear":
            theirs = outcome_of(reference.clear_all_memory)
            mine = outcome_of(ours.clear_all_memory)
        else:
            theirs = outcome_of(lambda c=command: reference.call(c))
            mine = outcome_of(lambda c=command: ours.call(c))
        prune_empty_dirs(root)
        check_same(step, command, theirs, mine, tmp)
        assert stored_files(backend) == files_of(root), f"step {step}: {command!r}"
        seen.add(f"{command['command']}:{theirs[0]}:{theirs[1][:80]}")
    return seen


async def run_async_sequence(
    seed: int, reference: Any, ours: AsyncMemoryTool, backend: Any, tmp: Path
) -> set[str]:
    rng = random.Random(seed)
    root = Path(str(reference.memory_root))
    await reference._ensure_memory_root()
    seen: set[str] = set()
    for step in range(STEPS):
        command = a_command(rng, root)
        if command["command"] == "clear":
            theirs = await aoutcome_of(reference.clear_all_memory)
            mine = await aoutcome_of(ours.clear_all_memory)
        else:
            theirs = await aoutcome_of(lambda c=command: reference.call(c))
            mine = await aoutcome_of(lambda c=command: ours.call(c))
        prune_empty_dirs(root)
        check_same(step, command, theirs, mine, tmp)
        assert stored_files(backend) == files_of(root), f"step {step}: {command!r}"
        seen.add(f"{command['command']}:{theirs[0]}:{theirs[1][:80]}")
    return seen


EXPECTED_CASES = [
    "view:ok:Here're the files and directories",
    "view:ok:Here's the content of /memories/",
    "view:refused:The path /memories/",
    "*:refused:Path must start with /memories, got: ",
    "*:refused:Path /memories/notes/../../x.txt would escape /memories directory",
    "create:ok:File created successfully at: /memories/",
    "create:refused:File /memories",
    "create:raised:NotADirectoryError",
    "str_replace:ok:The memory file has been edited.",
    "str_replace:refused:No replacement was performed, old_str",
    "str_replace:refused:No replacement was performed. Multiple occurrences",
    "str_replace:refused:The path /memories/",
    "insert:ok:The file /memories/",
    "insert:refused:Invalid `insert_line` parameter: ",
    "delete:ok:Successfully deleted /memories/",
    "delete:refused:Cannot delete the /memories directory itself",
    "delete:refused:The path /memories/",
    "rename:ok:Successfully renamed /memories/",
    "rename:refused:The destination /memories",
    "rename:refused:Cannot rename the /memories directory itself",
    "rename:refused:The path /memories/",
    "rename:raised:",
]


def covers_the_interesting_cases(seen: set[str]) -> None:
    """The sequence really met each case the reference distinguishes."""

    def met(case: str, answer: str) -> bool:
        if case.startswith("*:"):  # by any command
            return answer.split(":", 1)[1].startswith(case[2:])
        return answer.startswith(case)

    missing = [case for case in EXPECTED_CASES if not any(met(case, s) for s in seen)]
    assert not missing, missing


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "m.db")
    yield store
    store.close()


@pytest.fixture(scope="module")
def pg_store() -> Iterator[PostgresStore]:
    store = PostgresStore(connection_string=postgres_url())
    yield store
    store.close()


def memory_backend(store: Any) -> StoreBackend:
    """A fresh namespace of ``store``, mounted where Claude looks: ``/memories``."""
    namespace = ("memtest", uuid.uuid4().hex)
    return StoreBackend(store=store, namespace=namespace).mounted("/memories")


SEED = 20250818


def test_every_command_answers_as_the_sdk_reference_does_on_sqlite(tmp_path, sqlite_store):
    backend = memory_backend(sqlite_store)
    reference = BetaLocalFilesystemMemoryTool(str(tmp_path / "ref"))
    seen = run_sync_sequence(SEED, reference, MemoryTool(backend), backend, tmp_path)
    covers_the_interesting_cases(seen)


def test_every_command_answers_as_the_sdk_async_reference_does_on_sqlite(tmp_path, sqlite_store):
    backend = memory_backend(sqlite_store)
    reference = BetaAsyncLocalFilesystemMemoryTool(str(tmp_path / "ref"))
    tool = AsyncMemoryTool(backend)
    seen = asyncio.run(run_async_sequence(SEED + 1, reference, tool, backend, tmp_path))
    covers_the_interesting_cases(seen)


@pytest.mark.postgres
def test_every_command_answers_as_the_sdk_reference_does_on_postgres(tmp_path, pg_store):
    backend = memory_backend(pg_store)
    reference = BetaLocalFilesystemMemoryTool(str(tmp_path / "ref"))
    try:
        seen = run_sync_sequence(SEED + 2, reference, MemoryTool(backend), backend, tmp_path)
    finally:
        MemoryTool(backend).clear_all_memory()
    covers_the_interesting_cases(seen)


@pytest.mark.postgres
def test_every_command_answers_as_the_sdk_async_reference_does_on_postgres(tmp_path, pg_store):
    backend = memory_backend(pg_store)
    reference = BetaAsyncLocalFilesystemMemoryTool(str(tmp_path / "ref"))
    tool = AsyncMemoryTool(backend)
    try:
        seen = asyncio.run(run_async_sequence(SEED + 3, reference, tool, backend, tmp_path))
    finally:
        MemoryTool(backend).clear_all_memory()
    covers_the_interesting_cases(seen)


# -- the tool classes, directly -------------------------------------------------------------


def test_the_tools_are_the_sdks_memory_tools_with_its_spec(sqlite_store):
    from anthropic.lib.tools import BetaAbstractMemoryTool, BetaAsyncAbstractMemoryTool

    backend = memory_backend(sqlite_store)
    assert isinstance(MemoryTool(backend), BetaAbstractMemoryTool)
    assert isinstance(AsyncMemoryTool(backend), BetaAsyncAbstractMemoryTool)
    assert MemoryTool(backend).to_dict() == MEMORY_SPEC
    cached = MemoryTool(backend, cache_control={"type": "ephemeral"}).to_dict()
    assert cached == {**MEMORY_SPEC, "cache_control": {"type": "ephemeral"}}


def test_clearing_all_memory_empties_only_this_memory(sqlite_store):
    backend = memory_backend(sqlite_store)
    neighbour = memory_backend(sqlite_store)
    tool = MemoryTool(backend)
    tool.call({"command": "create", "path": "/memories/a/b.txt", "file_text": "x"})
    tool.call({"command": "create", "path": "/memories/c.txt", "file_text": "y"})
    MemoryTool(neighbour).call({"command": "create", "path": "/memories/d.txt", "file_text": "z"})
    assert tool.clear_all_memory() == "All memory cleared"
    assert stored_files(backend) == {}
    assert stored_files(neighbour) == {"/memories/d.txt": b"z"}
    assert asyncio.run(AsyncMemoryTool(neighbour).clear_all_memory()) == "All memory cleared"
    assert stored_files(neighbour) == {}


def test_a_directory_moves_with_everything_below_it(sqlite_store):
    backend = memory_backend(sqlite_store)
    tool = MemoryTool(backend)
    tool.call({"command": "create", "path": "/memories/p/a.txt", "file_text": "1"})
    tool.call({"command": "create", "path": "/memories/p/q/b.txt", "file_text": "2"})
    answer = tool.call(
        {"command": "rename", "old_path": "/memories/p", "new_path": "/memories/r/s"}
    )
    assert answer == "Successfully renamed /memories/p to /memories/r/s"
    assert stored_files(backend) == {"/memories/r/s/a.txt": b"1", "/memories/r/s/q/b.txt": b"2"}


def test_refusals_name_no_host_path_and_no_os_error(sqlite_store):
    backend = memory_backend(sqlite_store)
    tool = MemoryTool(backend)
    tool.call({"command": "create", "path": "/memories/f.txt", "file_text": "x"})
    tool.call({"command": "create", "path": "/memories/d/g.txt", "file_text": "y"})
    refused = [
        {"command": "create", "path": "/memories/f.txt/h.txt", "file_text": "z"},
        {"command": "rename", "old_path": "/memories/d", "new_path": "/memories/d/e"},
        {"command": "rename", "old_path": "/memories/d/g.txt", "new_path": "/memories/f.txt/g"},
        {"command": "create", "path": "/memories/" + "n" * 300, "file_text": "z"},
        {"command": "create", "path": "/memories/bad\x00name", "file_text": "z"},
    ]
    for command in refused:
        with pytest.raises(ToolError) as caught:
            tool.call(command)
        assert "Errno" not in str(caught.value) and "/tmp" not in str(caught.value)
    assert stored_files(backend) == {"/memories/f.txt": b"x", "/memories/d/g.txt": b"y"}


# -- the agent middleware, through ChatAnthropic and real HTTP -------------------------------


def chat_model(server: FakeAnthropicServer, **options: Any) -> ChatAnthropic:
    return ChatAnthropic(
        model="claude-sonnet-4-5", base_url=server.base_url, api_key="test", **options
    )


class Script:
    """A fake Claude that makes the planned memory calls, one per turn, then says done."""

    def __init__(self, *turns: list[dict[str, Any]]) -> None:
        self.turns = [list(t) for t in turns]
        self.turn = -1
        self.last_user = None

    def __call__(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Any:
        user = last_user_text(messages)
        if user != self.last_user:  # a new user turn
            self.last_user, self.turn = user, self.turn + 1
        done = len(tool_results_since_user(messages))
        plan = self.turns[self.turn]
        if done < len(plan):
            return [("memory", plan[done])]
        return "Done."


def thread(name: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": f"{name}-{uuid.uuid4().hex}"}}


@pytest.mark.parametrize("streaming", [False, True])
def test_claudes_memory_calls_in_a_deep_agent_land_in_the_store_and_outlive_the_thread(
    tmp_path, streaming
):
    store = SQLiteStore(tmp_path / "m.db")
    backend = CompositeBackend(
        default=StateBackend(), routes={"/memories/": StoreBackend(namespace=("alice",))}
    )
    script = Script(
        [
            {"command": "view", "path": "/memories"},
            {"command": "create", "path": "/memories/prefs.md", "file_text": "- tea\n"},
            {
                "command": "str_replace",
                "path": "/memories/prefs.md",
                "old_str": "tea",
                "new_str": "green tea",
            },
        ],
        [
            {"command": "view", "path": "/memories"},
            {"command": "view", "path": "/memories/prefs.md"},
        ],
    )
    with FakeAnthropicServer(script) as server:
        agent = create_deep_agent(
            model=chat_model(server, streaming=streaming),
            store=store,
            backend=backend,
            middleware=[ClaudeMemoryMiddleware(backend=backend)],
        )
        agent.invoke({"messages": [{"role": "user", "content": "I like tea"}]}, thread("one"))
        assert StoreBackend(store=store, namespace=("alice",)).read("/prefs.md").lines == [
            "- green tea"
        ]
        agent.invoke({"messages": [{"role": "user", "content": "What do I like?"}]}, thread("two"))
        requests = server.message_requests
        assert not server.policy_errors and not server.server_errors

    first = requests[0]
    assert MEMORY_SPEC in first.tools
    assert "memory" not in [t.get("name") for t in first.tools if t != MEMORY_SPEC]
    assert "context-management-2025-06-27" in first.betas
    assert MEMORY_PROMPT in first.system_prompt
    # The new thread's calls read what the first thread's calls stored.
    results = tool_results(requests[-1].messages)
    assert [r["content"] for r in results] == [
        "Here're the files and directories up to 2 levels deep in /memories, excluding "
        "hidden items:\n12B\t/memories\n12B\t/memories/prefs.md",
        "Here's the content of /memories/prefs.md with line numbers:\n"
        "     1\t- green tea\n     2\t",
    ]
    assert not any(r.get("is_error") for r in results)
    store.close()


def test_the_model_sees_refusals_as_error_results(tmp_path):
    store = SQLiteStore(tmp_path / "m.db")
    backend = StoreBackend(store=store, namespace=("bob",)).mounted("/memories")
    script = Script([{"command": "view", "path": "/memories/missing.txt"}])
    with FakeAnthropicServer(script) as server:
        agent = create_agent(
            chat_model(server), middleware=[ClaudeMemoryMiddleware(backend=backend)]
        )
        agent.invoke({"messages": [{"role": "user", "content": "look"}]})
        [result] = tool_results(server.message_requests[-1].messages)
    assert result["is_error"] is True
    assert result["content"] == (
        "The path /memories/missing.txt does not exist. Please provide a valid path."
    )
    store.close()


def test_plain_create_agent_with_the_middleware_keeps_memory_in_the_store(tmp_path):
    store = SQLiteStore(tmp_path / "m.db")
    backend = StoreBackend(store=store, namespace=("carol",)).mounted("/memories")
    script = Script(
        [
            {"command": "create", "path": "/memories/notes/a.md", "file_text": "one\n"},
            {
                "command": "insert",
                "path": "/memories/notes/a.md",
                "insert_line": 0,
                "insert_text": "zero",
            },
            {"command": "rename", "old_path": "/memories/notes", "new_path": "/memories/kept"},
        ],
        [{"command": "view", "path": "/memories/kept/a.md"}],
    )
    with FakeAnthropicServer(script) as server:
        agent = create_agent(
            chat_model(server),
            middleware=[ClaudeMemoryMiddleware(backend=backend)],
            checkpointer=InMemorySaver(),
        )
        agent.invoke({"messages": [{"role": "user", "content": "note it"}]}, thread("a"))
        agent.invoke({"messages": [{"role": "user", "content": "read it"}]}, thread("b"))
        requests = server.message_requests
    assert MEMORY_SPEC in requests[0].tools
    assert tool_results(requests[-1].messages)[-1]["content"] == (
        "Here's the content of /memories/kept/a.md with line numbers:\n"
        "     1\tzero\n     2\tone\n     3\t"
    )
    assert stored_files(backend) == {"/memories/kept/a.md": b"zero\none\n"}
    store.close()


async def _arun(agent: Any, text: str, config: dict[str, Any]) -> Any:
    return await agent.ainvoke({"messages": [{"role": "user", "content": text}]}, config)


def test_the_middleware_runs_async_and_on_thread_state_too():
    script = Script(
        [
            {"command": "create", "path": "/memories/t.md", "file_text": "scratch"},
            {"command": "view", "path": "/memories"},
        ]
    )
    with FakeAnthropicServer(script) as server:
        agent = create_agent(
            chat_model(server),
            middleware=[ClaudeMemoryMiddleware(backend=StateBackend())],
            checkpointer=InMemorySaver(),
        )
        config = thread("state")
        asyncio.run(_arun(agent, "remember", config))
        results = tool_results(server.message_requests[-1].messages)
    assert agent.get_state(config).values["files"]["/memories/t.md"]["content"] == "scratch"
    assert results[-1]["content"].endswith("\t/memories/t.md")


def test_with_a_model_other_than_claude_the_tool_is_an_ordinary_function_tool(tmp_path):
    store = SQLiteStore(tmp_path / "m.db")
    backend = StoreBackend(store=store, namespace=("dan",)).mounted("/memories")
    model = ScriptedChatModel(
        replies=[
            calls(tool_call("memory", command="create", path="/memories/x.md", file_text="hi")),
            calls(tool_call("memory", command="view", path="/memories/x.md")),
        ]
    )
    agent = create_agent(model, middleware=[ClaudeMemoryMiddleware(backend=backend)])
    out = agent.invoke({"messages": [{"role": "user", "content": "go"}]})
    assert out["messages"][-2].content == (
        "Here's the content of /memories/x.md with line numbers:\n     1\thi"
    )
    store.close()


# -- policies: approvals, limits, read-only areas ---------------------------------------------


def deep_agent(server: FakeAnthropicServer, store: Any, route: Any, **options: Any) -> Any:
    backend = CompositeBackend(default=StateBackend(), routes={"/memories/": route})
    return create_deep_agent(
        model=chat_model(server),
        store=store,
        backend=backend,
        middleware=[ClaudeMemoryMiddleware(backend=backend)],
        **options,
    )


@pytest.mark.parametrize(
    "call, shown",
    [
        (
            {"command": "create", "path": "/memories/rules/style.md", "file_text": "- bullets\n"},
            "+- bullets",
        ),
        (
            {
                "command": "str_replace",
                "path": "/memories/rules/tone.md",
                "old_str": "formal",
                "new_str": "casual",
            },
            "+- casual",
        ),
    ],
)
def test_approve_writes_pauses_a_memory_write_on_a_protected_path(tmp_path, call, shown):
    store = SQLiteStore(tmp_path / "m.db")
    StoreBackend(store=store).write("/rules/tone.md", "- formal\n")
    script = Script([call])
    with FakeAnthropicServer(script) as server:
        agent = deep_agent(server, store, StoreBackend(), approve_writes=["/memories/rules/"])
        config = thread("approve")
        paused = agent.invoke({"messages": [{"role": "user", "content": "style"}]}, config)
        request = paused["__interrupt__"][0].value
        [action] = request["action_requests"]
        assert action["name"] == "memory" and shown in action["description"]
        assert StoreBackend(store=store).read("/rules/style.md").error  # nothing written yet
        assert StoreBackend(store=store).read("/rules/tone.md").lines == ["- formal"]
        agent.invoke(Command(resume={"decisions": [{"type": "approve"}]}), config)
    after = StoreBackend(store=store).download_files(["/rules/style.md", "/rules/tone.md"])
    assert [d.content for d in after] == (
        [b"- bullets\n", b"- formal\n"] if call["command"] == "create" else [None, b"- casual\n"]
    )
    store.close()


def test_approval_leaves_memory_reads_and_other_paths_alone(tmp_path):
    store = SQLiteStore(tmp_path / "m.db")
    script = Script(
        [
            {"command": "view", "path": "/memories/rules"},
            {"command": "create", "path": "/memories/free.md", "file_text": "ok"},
            {
                "command": "rename",
                "old_path": "/memories/free.md",
                "new_path": "/memories/rules/x.md",
            },
        ]
    )
    with FakeAnthropicServer(script) as server:
        agent = deep_agent(server, store, StoreBackend(), approve_writes=["/memories/rules/"])
        paused = agent.invoke({"messages": [{"role": "user", "content": "go"}]}, thread("r"))
    [action] = paused["__interrupt__"][0].value["action_requests"]
    assert action["args"]["command"] == "rename"  # a move onto a protected path pauses too
    assert StoreBackend(store=store).read("/free.md").lines == ["ok"]
    store.close()


def test_approve_writes_knows_the_memory_tool():
    entries = approve_writes(["/memories/rules/"], StateBackend())
    assert {"write_file", "edit_file", "delete", "memory"} <= set(entries)


def test_a_size_limit_refuses_an_oversized_memory_file(tmp_path):
    store = SQLiteStore(tmp_path / "m.db")
    route = LimitsBackend(StoreBackend(), max_file_bytes=100)
    script = Script([{"command": "create", "path": "/memories/big.md", "file_text": "x" * 500}])
    with FakeAnthropicServer(script) as server:
        agent = deep_agent(server, store, route)
        agent.invoke({"messages": [{"role": "user", "content": "save"}]}, thread("big"))
        [result] = tool_results(server.message_requests[-1].messages)
    assert result["is_error"] is True and "over the 100-byte limit" in result["content"]
    assert StoreBackend(store=store).read("/big.md").error
    store.close()


def test_a_read_only_area_refuses_memory_writes(tmp_path):
    store = SQLiteStore(tmp_path / "m.db")
    StoreBackend(store=store).write("/policies/p.md", "rule\n")
    route = ReadOnlyBackend(StoreBackend(), prefixes=["/memories/policies"])
    script = Script(
        [
            {"command": "create", "path": "/memories/policies/new.md", "file_text": "x"},
            {
                "command": "str_replace",
                "path": "/memories/policies/p.md",
                "old_str": "rule",
                "new_str": "none",
            },
            {"command": "delete", "path": "/memories/policies/p.md"},
            {
                "command": "rename",
                "old_path": "/memories/policies/p.md",
                "new_path": "/memories/p.md",
            },
            {"command": "view", "path": "/memories/policies/p.md"},
        ]
    )
    with FakeAnthropicServer(script) as server:
        agent = deep_agent(server, store, route)
        agent.invoke({"messages": [{"role": "user", "content": "change"}]}, thread("ro"))
        results = tool_results(server.message_requests[-1].messages)
    assert [r["is_error"] for r in results] == [True, True, True, True, False]
    assert all("read-only" in r["content"] for r in results[:4])
    assert stored_files(StoreBackend(store=store).mounted("/memories")) == {
        "/memories/policies/p.md": b"rule\n"
    }
    store.close()


# -- the README example ----------------------------------------------------------------------


def test_the_readme_example_runs(tmp_path, monkeypatch, capsys):
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Claude's memory tool\n", 1)[1].split("\n### ", 1)[0]
    [block] = [part.split("```", 1)[0] for part in section.split("```python\n")[1:]]
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec(compile(block, "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "File created successfully at: /memories/prefs.md" in out
    assert re.search(r"\t/memories/prefs\.md$", out, re.M)
    namespace["store"].close()


def test_the_docstring_examples_run():
    import doctest

    from deepmemory.integrations.anthropic import _commands, _middleware, _tools

    for module in (_commands, _tools, _middleware):
        assert doctest.testmod(module).failed == 0, module.__name__
