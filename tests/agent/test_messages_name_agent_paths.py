"""Every message the agent (or a user) reads names the agent's paths, in plain words.

A route's backend stores the agent's ``/memories/preferences.txt`` under the key
``/preferences.txt``; that key is the backend's business. Each case below provokes one
result or error of the file operations on a routed path, through a ``CompositeBackend``
whose ``/memories/`` route is each kind of backend, and checks the text as the tools
render it: a path it names is the agent's (``/memories/...``), never a bare storage
key, and it uses none of the internal words (``download``, ``seed``, ...). The last
tests run the same through ``create_deep_agent`` and check the tool messages and the
system prompt the model reads.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, SystemMessage, ToolMessage
from langgraph.store.memory import InMemoryStore

from deepmemory import create_deep_agent
from deepmemory.backends import (
    CompositeBackend,
    FilesystemBackend,
    LimitsBackend,
    ReadOnlyBackend,
    StateBackend,
    StoreBackend,
    StoredFile,
)
from deepmemory.clock import ManualClock, use_clock
from deepmemory.middleware.rendering import (
    render_delete,
    render_edit,
    render_glob,
    render_grep,
    render_ls,
    render_move,
    render_read,
    render_write,
)
from deepmemory.pruning import PrunePolicy
from deepmemory.stores import SQLiteStore
from deepmemory.testing import ScriptedChatModel, calls, tool_call
from deepmemory.testing.harness import Harness

MOUNT = "/memories"
# Words of our code and of deepagents' API, not of the agent's or the user's world.
INTERNAL_WORDS = ("download", "upload", "seed", "storage key", "namespace")
# Paths outside memory that a message may name (the thread's scratch space, the root).
OTHER_PATHS = {"/", "/scratch", "/scratch/moved.txt"}

# A path a message names: after a quote, a bracket or a space, up to a quote or a space.
_NAMED_PATH = re.compile(r"""(?:^|[\s'"(\[])(/[^\s'"(),:\]]*)""", re.MULTILINE)


def _keys(agent_path: str) -> list[str]:
    """What a route could store ``agent_path`` under: each tail of it after the root."""
    parts = agent_path.strip("/").split("/")
    return ["/" + "/".join(parts[i:]) for i in range(1, len(parts))]


def leaks(message: str, agent_paths: Iterable[str] = ()) -> list[str]:
    """What is wrong with ``message``: internal words, paths that are not the agent's."""
    found = [f"says {w!r}" for w in INTERNAL_WORDS if re.search(rf"\b{w}", message, re.I)]
    for path in _NAMED_PATH.findall(message):
        if path not in OTHER_PATHS and not path.startswith(MOUNT):
            found.append(f"names {path!r}, not an agent path")
    for agent_path in agent_paths:
        for key in _keys(agent_path):
            # The key on its own: not the tail of a longer path, not the head of a name.
            if re.search(rf"(?<![\w./-]){re.escape(key)}(?![\w.-])", message):
                found.append(f"names the storage key {key!r} of {agent_path!r}")
    return sorted(set(found))


# -- the route kinds -------------------------------------------------------------------


def _route(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    if kind == "store-memory":
        return StoreBackend(store=InMemoryStore())
    if kind == "store-langgraph-sqlite":
        return StoreBackend(store=request.getfixturevalue("langgraph_sqlite_store"))
    if kind == "store-sqlite":
        return StoreBackend(store=SQLiteStore(tmp_path / "memory.db"))
    if kind == "store-postgres":
        namespace = ("messages", uuid.uuid4().hex)
        return StoreBackend(store=request.getfixturevalue("postgres_store"), namespace=namespace)
    if kind == "filesystem":
        return FilesystemBackend(tmp_path / "disk")
    if kind == "policy-wrapped":
        inner = ReadOnlyBackend(StoreBackend(store=InMemoryStore()), prefixes=["/memories/locked"])
        return LimitsBackend(inner, max_file_bytes=1024 * 1024)
    if kind.startswith("deepagents"):
        from deepagents.backends import FilesystemBackend as TheirFilesystemBackend
        from deepagents.backends.store import StoreBackend as TheirStoreBackend

        from deepmemory.integrations.deepagents import DeepAgentsBackend

        if kind == "deepagents-filesystem":
            (tmp_path / "theirs").mkdir()
            return DeepAgentsBackend(TheirFilesystemBackend(root_dir=tmp_path / "theirs"))
        store = InMemoryStore()
        return DeepAgentsBackend(TheirStoreBackend(store=store, namespace=lambda _rt: ("da",)))
    raise AssertionError(kind)


KINDS = [
    "store-memory",
    "store-langgraph-sqlite",
    "store-sqlite",
    "store-postgres",
    "filesystem",
    "policy-wrapped",
    "deepagents-filesystem",
    "deepagents-store",
]


def _routed(route: Any, mode: str, **more: Any) -> Harness:
    backend = CompositeBackend(default=StateBackend(), routes={"/memories/": route, **more})
    return Harness(backend, mode=mode, in_graph=True)


@pytest.fixture(
    params=[(k, m) for k in KINDS for m in ("sync", "async")], ids=lambda p: f"{p[0]}-{p[1]}"
)
def fs(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    kind, mode = request.param
    if kind == "store-postgres":
        request.getfixturevalue("postgres_store")  # skips without a server (fails under CI)
    return _routed(_route(kind, tmp_path, request), mode)


# -- the cases: each provokes one message, as the tool renders it ----------------------

PREFS = "/memories/preferences.txt"
NOTE = "/memories/notes/a.txt"
PLAN = "/memories/project/plan.md"
BINARY = "/memories/bin.dat"
EMPTY = "/memories/empty.txt"
GONE = "/memories/old/one.txt"

# (name, the agent path the message must name or None, the call)
Case = tuple[str, str | None, Callable[[Harness], str]]


def _download(fs: Harness, path: str) -> str:
    (result,) = fs.download_files([path])
    return str(result.error)


def _upload(fs: Harness, path: str, data: bytes) -> str:
    (result,) = fs.upload_files([(path, data)])
    return str(result.error)


CASES: list[Case] = [
    # read
    (
        "read a missing file",
        "/memories/todo.txt",
        lambda fs: render_read(fs.read("/memories/todo.txt")),
    ),
    (
        "read a missing file in a directory",
        "/memories/notes/missing.txt",
        lambda fs: render_read(fs.read("/memories/notes/missing.txt")),
    ),
    ("read past the end", PREFS, lambda fs: render_read(fs.read(PREFS, offset=50))),
    ("read with a negative offset", None, lambda fs: render_read(fs.read(PREFS, offset=-1))),
    ("read with a zero limit", None, lambda fs: render_read(fs.read(PREFS, limit=0))),
    ("read a directory", "/memories/notes", lambda fs: render_read(fs.read("/memories/notes"))),
    ("read a binary file", BINARY, lambda fs: render_read(fs.read(BINARY))),
    ("read an empty file", EMPTY, lambda fs: render_read(fs.read(EMPTY))),
    (
        "read a directory path with a slash",
        "/memories/notes/",
        lambda fs: render_read(fs.read("/memories/notes/")),
    ),
    # write
    ("write over an existing file", NOTE, lambda fs: render_write(fs.write(NOTE, "alpha\n"))),
    (
        "write a new file",
        "/memories/new.txt",
        lambda fs: render_write(fs.write("/memories/new.txt", "fresh\n")),
    ),
    ("write text with NUL", NOTE, lambda fs: render_write(fs.write(NOTE, "a\x00b"))),
    ("write the route's top", MOUNT, lambda fs: render_write(fs.write(MOUNT, "x"))),
    # edit
    ("edit with no match", PREFS, lambda fs: render_edit(fs.edit(PREFS, "coffee", "tea"))),
    (
        "edit with several matches",
        PREFS,
        lambda fs: render_edit(fs.edit(PREFS, "Prefers", "Likes")),
    ),
    ("edit with an empty old_string", PREFS, lambda fs: render_edit(fs.edit(PREFS, "", "x"))),
    (
        "edit a missing file",
        "/memories/todo.txt",
        lambda fs: render_edit(fs.edit("/memories/todo.txt", "a", "b")),
    ),
    (
        "edit a directory",
        "/memories/notes",
        lambda fs: render_edit(fs.edit("/memories/notes", "a", "b")),
    ),
    ("edit a binary file", BINARY, lambda fs: render_edit(fs.edit(BINARY, "a", "b"))),
    ("edit to NUL text", NOTE, lambda fs: render_edit(fs.edit(NOTE, "alpha", "\x00"))),
    ("edit that lands", PLAN, lambda fs: render_edit(fs.edit(PLAN, "step one", "step 1"))),
    # ls
    (
        "ls a missing directory",
        "/memories/nowhere",
        lambda fs: render_ls(fs.ls("/memories/nowhere")),
    ),
    ("ls a file", PREFS, lambda fs: render_ls(fs.ls(PREFS))),
    ("ls a directory", NOTE, lambda fs: render_ls(fs.ls("/memories/notes"))),
    ("ls the route", PREFS, lambda fs: render_ls(fs.ls(MOUNT))),
    # glob and grep
    ("glob that finds", NOTE, lambda fs: render_glob(fs.glob("**/*.txt", MOUNT))),
    ("glob that finds nothing", None, lambda fs: render_glob(fs.glob("*.pdf", MOUNT))),
    ("glob with an unclosed brace", None, lambda fs: render_glob(fs.glob("{a,b", MOUNT))),
    ("glob with '..'", None, lambda fs: render_glob(fs.glob("../*", MOUNT))),
    ("glob with an empty pattern", None, lambda fs: render_glob(fs.glob("", MOUNT))),
    (
        "glob in an invalid directory",
        None,
        lambda fs: render_glob(fs.glob("*", "/memories/../etc")),
    ),
    ("grep that finds", PREFS, lambda fs: render_grep(fs.grep("tea", MOUNT), "content")),
    ("grep counts", PREFS, lambda fs: render_grep(fs.grep("tea", MOUNT), "count")),
    (
        "grep in one file",
        PREFS,
        lambda fs: render_grep(fs.grep("tea", PREFS), "files_with_matches"),
    ),
    ("grep that finds nothing", None, lambda fs: render_grep(fs.grep("zebra", MOUNT), "content")),
    ("grep with an empty pattern", None, lambda fs: render_grep(fs.grep("", MOUNT), "content")),
    ("grep with a line break", None, lambda fs: render_grep(fs.grep("a\nb", MOUNT), "content")),
    (
        "grep with a bad glob",
        None,
        lambda fs: render_grep(fs.grep("tea", MOUNT, glob="{a"), "content"),
    ),
    # invalid paths, as each tool meets them
    ("read a path with NUL", None, lambda fs: render_read(fs.read("/memories/a\x00b.txt"))),
    ("write a path with '..'", None, lambda fs: render_write(fs.write("/memories/../x.txt", "x"))),
    (
        "edit a path with a backslash",
        None,
        lambda fs: render_edit(fs.edit("/memories/a\\b.txt", "a", "b")),
    ),
    (
        "ls a path with a zero-width space",
        None,
        lambda fs: render_ls(fs.ls("/memories/\u200bnotes")),
    ),
    ("delete a relative path", None, lambda fs: render_delete(fs.delete("memories/a.txt"))),
    # reading and writing whole files (export, import)
    (
        "read bytes of a missing file",
        "/memories/todo.txt",
        lambda fs: _download(fs, "/memories/todo.txt"),
    ),
    ("read bytes of a directory", "/memories/notes", lambda fs: _download(fs, "/memories/notes")),
    ("write bytes at the route's top", MOUNT, lambda fs: _upload(fs, MOUNT, b"x")),
    (
        "write bytes at a directory path",
        "/memories/notes/",
        lambda fs: _upload(fs, "/memories/notes/", b"x"),
    ),
    # move
    (
        "move a missing file",
        "/memories/todo.txt",
        lambda fs: render_move(fs.move("/memories/todo.txt", "/memories/done.txt")),
    ),
    ("move onto an existing file", PREFS, lambda fs: render_move(fs.move(NOTE, PREFS))),
    (
        "move into itself",
        "/memories/notes",
        lambda fs: render_move(fs.move("/memories/notes", "/memories/notes/sub")),
    ),
    ("move onto itself", NOTE, lambda fs: render_move(fs.move(NOTE, NOTE))),
    ("move out of memory", NOTE, lambda fs: render_move(fs.move(NOTE, "/scratch/moved.txt"))),
    ("move the route's top", MOUNT, lambda fs: render_move(fs.move(MOUNT, "/memories2"))),
    (
        "move that lands",
        "/memories/project/plan-v2.md",
        lambda fs: render_move(fs.move(PLAN, "/memories/project/plan-v2.md")),
    ),
    # delete
    (
        "delete a missing file",
        "/memories/todo.txt",
        lambda fs: render_delete(fs.delete("/memories/todo.txt")),
    ),
    ("delete the route's top", MOUNT, lambda fs: render_delete(fs.delete(MOUNT))),
    ("delete a directory", "/memories/old", lambda fs: render_delete(fs.delete("/memories/old"))),
    # last, as they may leave odd files behind where a backend cannot refuse them
    (
        "write over a directory",
        "/memories/notes",
        lambda fs: render_write(fs.write("/memories/notes", "x")),
    ),
    (
        "write below a file",
        "/memories/preferences.txt/deeper.txt",
        lambda fs: render_write(fs.write("/memories/preferences.txt/deeper.txt", "x")),
    ),
    (
        "move below a file",
        "/memories/empty.txt/inside.txt",
        lambda fs: render_move(fs.move("/memories/new.txt", "/memories/empty.txt/inside.txt")),
    ),
]

# Every agent path the cases touch: none of their storage keys may show.
AGENT_PATHS = sorted(
    {PREFS, NOTE, PLAN, BINARY, EMPTY, GONE, "/memories/old/two.txt"}
    | {path for _, path, _ in CASES if path and path != MOUNT}
)


def _fill(fs: Harness) -> None:
    for path, content in [
        (PREFS, "Prefers tea\nPrefers tea in the morning\n"),
        (NOTE, "alpha\n"),
        (PLAN, "step one\n"),
        (EMPTY, ""),
        (GONE, "x\n"),
        ("/memories/old/two.txt", "y\n"),
    ]:
        assert fs.write(path, content).error is None, path
    assert fs.upload_files([(BINARY, b"\x00\xff\x10")])[0].error is None


def check(said: Iterable[tuple[str, str | None, str]], agent_paths: Iterable[str]) -> None:
    """Fail listing every message that leaks, or that does not name its path."""
    paths = list(agent_paths)
    problems = []
    for name, path, message in said:
        wrong = leaks(message, paths)
        if path is not None and path not in message:
            wrong.append(f"does not name {path!r}")
        if wrong:
            problems.append(f"{name}: {message!r}\n    " + "; ".join(wrong))
    assert not problems, "\n".join(problems)


def test_every_message_on_a_routed_path_names_the_agent_path(fs: Harness) -> None:
    _fill(fs)
    check([(name, path, call(fs)) for name, path, call in CASES], AGENT_PATHS)


def test_the_checker_catches_a_storage_key_and_an_internal_word() -> None:
    assert leaks("Error: '/preferences.txt' not found.", [PREFS])
    assert leaks("Error: '/notes/a.txt' is gone. Use ls('/notes').", [NOTE])
    assert leaks("so download cannot use it")
    assert not leaks("Error: '/memories/preferences.txt' not found. Use ls('/memories').", [PREFS])
    assert not leaks("/memories/notes/a.txt:1: alpha", [NOTE])


# -- policies around a route -----------------------------------------------------------


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_size_limits_and_read_only_areas_name_the_agent_path(mode: str) -> None:
    store = InMemoryStore()
    StoreBackend(store=store, namespace=("policies",)).write("/rules.txt", "be kind\n")
    limited = LimitsBackend(StoreBackend(store=store), max_file_bytes=40, max_total_bytes=60)
    fs = _routed(
        limited,
        mode,
        **{
            "/memories/policies/": ReadOnlyBackend(
                StoreBackend(store=store, namespace=("policies",))
            )
        },
    )
    assert fs.write("/memories/a.txt", "x" * 30).error is None
    rules = "/memories/policies/rules.txt"
    said = [
        (
            "write over the file limit",
            "/memories/big.txt",
            render_write(fs.write("/memories/big.txt", "x" * 41)),
        ),
        (
            "write over the total",
            "/memories/b.txt",
            render_write(fs.write("/memories/b.txt", "y" * 31)),
        ),
        (
            "edit over the file limit",
            "/memories/a.txt",
            render_edit(fs.edit("/memories/a.txt", "x", "x" * 20, replace_all=True)),
        ),
        ("bytes over the file limit", "/memories/c.bin", _upload(fs, "/memories/c.bin", b"z" * 41)),
        ("write read-only", rules, render_write(fs.write(rules, "be mean"))),
        ("edit read-only", rules, render_edit(fs.edit(rules, "kind", "mean"))),
        ("delete read-only", rules, render_delete(fs.delete(rules))),
        ("move read-only", rules, render_move(fs.move(rules, "/memories/policies/old.txt"))),
        (
            "bytes into read-only",
            "/memories/policies/new.txt",
            _upload(fs, "/memories/policies/new.txt", b"x"),
        ),
        ("read in read-only", None, render_read(fs.read(rules))),
    ]
    check(said, ["/memories/a.txt", "/memories/b.txt", "/memories/big.txt", rules])


# -- outcomes of our stores: a lost compare-and-swap, expiry -------------------------------


def _interfering(store: SQLiteStore) -> SQLiteStore:
    """``store`` whose next ``file_get`` is followed by another writer's rewrite."""
    armed = [True]
    plain_get, plain_aget = store.file_get, store.afile_get

    def rewrite(namespace: Any, key: str, file: StoredFile | None) -> None:
        if armed[0] and file is not None:
            armed[0] = False
            other = StoredFile("rewritten by another thread\n")
            store.file_put(namespace, key, other, expected_version=None)

    def file_get(namespace: Any, key: str) -> StoredFile | None:
        file = plain_get(namespace, key)
        rewrite(namespace, key, file)
        return file

    async def afile_get(namespace: Any, key: str) -> StoredFile | None:
        file = await plain_aget(namespace, key)
        rewrite(namespace, key, file)
        return file

    store.file_get = file_get  # type: ignore[method-assign]
    store.afile_get = afile_get  # type: ignore[method-assign]
    return store


def test_a_conflict_names_the_agent_path(mode: str, tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "memory.db")
    fs = _routed(StoreBackend(store=store), mode)
    assert fs.write(PREFS, "tea tea\n").error is None
    _interfering(store)
    said = render_edit(fs.edit(PREFS, "tea", "coffee", replace_all=True))
    assert "changed by someone else" in said
    check([("lost compare-and-swap", PREFS, said)], [PREFS])


@pytest.mark.parametrize("engine", ["memory", "sqlite"])
def test_an_expired_file_is_missing_under_its_agent_path(
    mode: str, engine: str, tmp_path: Path
) -> None:
    store = InMemoryStore() if engine == "memory" else SQLiteStore(tmp_path / "memory.db")
    fs = _routed(StoreBackend(store=store, prune=PrunePolicy(ttl=timedelta(days=30))), mode)
    with use_clock(ManualClock()) as clock:
        assert fs.write(NOTE, "alpha\n").error is None
        clock.advance(timedelta(days=31))
        said = [
            ("read an expired file", NOTE, render_read(fs.read(NOTE))),
            ("edit an expired file", NOTE, render_edit(fs.edit(NOTE, "alpha", "beta"))),
            ("ls an expired directory", "/memories/notes", render_ls(fs.ls("/memories/notes"))),
            ("grep expired files", None, render_grep(fs.grep("alpha", MOUNT), "content")),
        ]
    check(said, [NOTE])


# -- a real directory as a route: what the disk refuses -------------------------------------


def test_what_a_directory_on_disk_refuses_names_the_agent_path(mode: str, tmp_path: Path) -> None:
    root, outside = tmp_path / "disk", tmp_path / "elsewhere"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("secret\n")
    os.symlink(outside, root / "link")
    fs = _routed(FilesystemBackend(root), mode)
    assert fs.write("/memories/plain.txt", "x\n").error is None
    assert fs.write("/memories/other.txt", "y\n").error is None
    said = [
        (
            "write through a link out",
            "/memories/link/new.txt",
            render_write(fs.write("/memories/link/new.txt", "x")),
        ),
        (
            "delete through a link out",
            "/memories/link/secret.txt",
            render_delete(fs.delete("/memories/link/secret.txt")),
        ),
        (
            "write below a file",
            "/memories/plain.txt/x.txt",
            render_write(fs.write("/memories/plain.txt/x.txt", "x")),
        ),
        (
            "move to below a file",
            "/memories/plain.txt/z.txt",
            render_move(fs.move("/memories/other.txt", "/memories/plain.txt/z.txt")),
        ),
        (
            "read through a link out",
            "/memories/link/secret.txt",
            render_read(fs.read("/memories/link/secret.txt")),
        ),
    ]
    assert all(m.startswith("Error") for _, _, m in said), said
    check(said, ["/memories/plain.txt", "/memories/other.txt", *(p for _, p, _ in said)])


# -- end to end: what the model reads ---------------------------------------------------------


def _agent_script(tmp_path: Path) -> tuple[list[tuple[dict[str, Any], str | None]], list[str]]:
    """The tool calls of the script, each with the agent path its message must name."""
    rules = "/memories/policies/rules.txt"
    plan: list[tuple[dict[str, Any], str | None]] = [
        (tool_call("write_file", file_path=PREFS, content="Prefers tea\nPrefers tea\n"), PREFS),
        (tool_call("write_file", file_path=PREFS, content="Prefers tea\nPrefers tea\n"), PREFS),
        (tool_call("read_file", file_path="/memories/todo.txt"), "/memories/todo.txt"),
        (tool_call("read_file", file_path=PREFS, offset=40), PREFS),
        (tool_call("read_file", file_path=PREFS, offset=-1), None),
        (tool_call("edit_file", file_path=PREFS, old_string="coffee", new_string="x"), PREFS),
        (tool_call("edit_file", file_path=PREFS, old_string="tea", new_string="x"), PREFS),
        (
            tool_call("edit_file", file_path="/memories/todo.txt", old_string="a", new_string="b"),
            "/memories/todo.txt",
        ),
        (
            tool_call("write_file", file_path="/memories/notes/a.txt", content="alpha\n"),
            "/memories/notes/a.txt",
        ),
        (tool_call("write_file", file_path="/memories/notes", content="x"), "/memories/notes"),
        (tool_call("read_file", file_path="/memories/notes"), "/memories/notes"),
        (
            tool_call("write_file", file_path="/memories/big.txt", content="x" * 301),
            "/memories/big.txt",
        ),
        (tool_call("write_file", file_path=rules, content="be mean"), rules),
        (tool_call("edit_file", file_path=rules, old_string="kind", new_string="mean"), rules),
        (tool_call("delete", file_path=rules), rules),
        (tool_call("read_file", file_path=rules), None),
        (
            tool_call("write_file", file_path="/memories/disk/plain.txt/x.txt", content="x"),
            "/memories/disk/plain.txt/x.txt",
        ),
        (tool_call("write_file", file_path="/memories/a\x00b.txt", content="x"), None),
        (tool_call("ls", path="/memories/nowhere"), "/memories/nowhere"),
        (tool_call("ls", path=PREFS), PREFS),
        (tool_call("ls", path="/memories"), PREFS),
        (tool_call("glob", pattern="{a,b", path="/memories"), None),
        (tool_call("glob", pattern="**/*.txt", path="/memories"), PREFS),
        (tool_call("grep", pattern="", path="/memories"), None),
        (tool_call("grep", pattern="tea", path="/memories", output_mode="content"), PREFS),
        (tool_call("delete", file_path="/memories/todo.txt"), "/memories/todo.txt"),
        (tool_call("delete", file_path="/memories"), MOUNT),
        (tool_call("semantic_search", query=""), None),
    ]
    paths = [PREFS, "/memories/todo.txt", "/memories/notes/a.txt", "/memories/big.txt", rules]
    paths += ["/memories/disk/plain.txt", "/memories/disk/plain.txt/x.txt"]
    return plan, paths


def test_the_model_reads_agent_paths_in_every_tool_message(mode: str, tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "memory.db")
    StoreBackend(store=store, namespace=("policies",)).write("/rules.txt", "be kind\n")
    (tmp_path / "disk").mkdir()
    (tmp_path / "disk" / "plain.txt").write_text("on disk\n")
    backend = CompositeBackend(
        default=StateBackend(),
        routes={
            "/memories/": LimitsBackend(StoreBackend(), max_file_bytes=300),
            "/memories/policies/": ReadOnlyBackend(StoreBackend(namespace=("policies",))),
            "/memories/disk/": FilesystemBackend(tmp_path / "disk"),
        },
    )
    plan, paths = _agent_script(tmp_path)
    model = ScriptedChatModel(
        replies=[calls(call) for call, _ in plan]
        + [calls(tool_call("ls", path="/")), AIMessage("done")]
    )
    agent = create_deep_agent(model=model, store=store, backend=backend)
    config = {"configurable": {"thread_id": str(uuid.uuid4())}}
    question = {"messages": [{"role": "user", "content": "tidy my memory"}]}
    if mode == "sync":
        result = agent.invoke(question, config)
    else:
        result = asyncio.run(agent.ainvoke(question, config))
    said = [m.text for m in result["messages"] if isinstance(m, ToolMessage)]
    assert len(said) == len(plan) + 1
    names = [f"{call['name']}({call['args']})" for call, _ in plan]
    check(zip(names, [p for _, p in plan], said, strict=False), paths)
    # Every outcome is one the model can act on: nothing failed unexpectedly.
    assert not [m for m in said if "failed unexpectedly" in m], said
    # The system prompt, with its map of what memory holds, names agent paths too.
    prompts = [
        m.text for received in model.received for m in received if isinstance(m, SystemMessage)
    ]
    assert any(PREFS in p for p in prompts)
    check([(f"system prompt {i}", None, p) for i, p in enumerate(prompts)], paths)
