"""Every ```python block of README.md runs as written.

Each block runs twice, each time in a new process whose working directory is a new
empty folder, against a fake OpenAI server on loopback (``DEEPMEMORY_MODEL`` is
``openai:gpt-4.1``). A block that reads ``DATABASE_URL`` gets the test server's URL
and a schema of its own per run (``DATABASE_SCHEMA``); without a server it is skipped,
except under ``CI=true``. ``CHECKS`` adds what each section's example must show.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from deepmemory.stores import SQLiteStore
from tests.cli.conftest import API_KEY, FOREIGN_ENV, MODEL
from tests.fakes.openai_server import FakeOpenAIServer, RecordedRequest, last_user_text, text_of
from tests.stores.conftest import drop_schema, pg_url  # noqa: F401 (pg_url: a fixture, asked for by name)

README = Path(__file__).parents[1] / "README.md"
PREFERENCE = "Prefers tea\n"
WROTE = "Wrote '/memories/preferences.txt'."


@dataclass(frozen=True)
class Block:
    """A python block of the README and the heading it is under."""

    index: int
    heading: str
    code: str

    @property
    def id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.heading.lower()).strip("-")
        return f"{self.index}-{slug}"

    @property
    def needs_postgres(self) -> bool:
        code = (line.split("#", 1)[0] for line in self.code.splitlines())
        return any("DATABASE_URL" in line for line in code)


def python_blocks(text: str) -> list[Block]:
    """The README's ```python blocks in order; headings inside code blocks do not count."""
    blocks: list[Block] = []
    heading, fence = "", None
    lines: list[str] = []
    for line in text.splitlines():
        if fence is None:
            if line.startswith("```"):
                fence, lines = line[3:].strip(), []
            elif line.startswith("#"):
                heading = line.lstrip("#").strip()
        elif line.startswith("```"):
            if fence == "python":
                blocks.append(Block(len(blocks) + 1, heading, "\n".join(lines) + "\n"))
            fence = None
        else:
            lines.append(line)
    assert fence is None, "README.md has an unclosed code block"
    return blocks


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


def policy(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Any:
    """A model that saves a preference when asked to (or told so by its prompt), then
    reports the tool's answer; anything else gets a greeting."""
    if messages[-1]["role"] == "tool":
        return f"Done: {text_of(messages[-1])}"
    offered = {tool["function"]["name"] for tool in tools}
    system = " ".join(text_of(m) for m in messages if m["role"] in ("system", "developer"))
    user = last_user_text(messages)
    asked = "remember" in user.lower() or "Save user preferences" in system
    if asked and "write_file" in offered:
        return [("write_file", {"file_path": "/memories/preferences.txt", "content": PREFERENCE})]
    return f"Hello! {user}"


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(policy, api_key=API_KEY) as fake:
        yield fake
    assert not fake.policy_errors, fake.policy_errors
    assert not fake.server_errors, fake.server_errors


@dataclass
class Run:
    """One run of a block: its folder, its output, the model requests it made."""

    folder: Path
    stdout: str
    requests: list[RecordedRequest]
    schema: str | None
    url: str | None


# -- what each section's example must show, beyond exiting 0 ---------------------------


def saved_through_the_agent(run: Run) -> None:
    tool_results = [text_of(m) for r in run.requests for m in r.messages if m["role"] == "tool"]
    assert WROTE in tool_results, tool_results


def stores_example(run: Run) -> None:
    assert (run.folder / "memory.db").is_file()
    assert run.requests == []  # building an agent calls no model


def postgres_example(run: Run) -> None:
    assert run.stdout == PREFERENCE * 2
    assert run.url is not None and run.schema is not None
    with psycopg.connect(run.url) as conn:
        tables = {
            name
            for (name,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (run.schema,)
            )
        }
    assert {"deepmemory_items", "checkpoints"} <= tables, tables


def integration_examples(run: Run) -> None:
    if not run.requests:  # the LangGraph graph: no model
        assert run.stdout == "1\n2\n"
        return
    assert run.stdout == f"Done: {WROTE}\n['/preferences.txt']\n"
    saved_through_the_agent(run)


def deepagents_example(run: Run) -> None:
    assert "'path': '/prefs.md', 'line': 1, 'text': 'Prefers short answers'" in run.stdout
    assert "['write', 'edit']" in run.stdout


def deepagents_route_example(run: Run) -> None:
    lines = run.stdout.splitlines()
    assert lines[0] == "['1. read the code', '2. fix the bug']"
    assert lines[1] == "['2. fix the bug']"
    assert lines[2].startswith("Error")
    assert "passwd" not in str(list(run.folder.rglob("*")))


def claude_memory_tool_example(run: Run) -> None:
    created, view = run.stdout.split("\n", 1)
    assert created == "File created successfully at: /memories/prefs.md"
    assert view.splitlines()[-1].split() == ["6B", "/memories/prefs.md"]


def recall_example(run: Run) -> None:
    [request] = run.requests
    assert "semantic_search" in request.tool_names


def history_example(run: Run) -> None:
    assert "-Be concise." in run.stdout and "+Be verbose." in run.stdout
    assert "memories/alice: would remove 0 files" in run.stdout
    with SQLiteStore(run.folder / "memory.db") as store:
        restored = store.file_get(("memories", "alice"), "/instructions.txt")
    assert restored is not None and restored.content == "Be concise.\n"


CHECKS: dict[str, Callable[[Run], None]] = {
    "Use": saved_through_the_agent,
    "Stores": stores_example,
    "PostgreSQL deployment": postgres_example,
    "In an existing LangGraph or LangChain app": integration_examples,
    "Using deepmemory with deepagents": deepagents_example,
    "deepagents' backends as deepmemory routes": deepagents_route_example,
    "Claude's memory tool": claude_memory_tool_example,
    "Recall by meaning": recall_example,
    "History and forgetting": history_example,
}


def child_env(home: Path, server: FakeOpenAIServer) -> dict[str, str]:
    """This process's environment, less anything that would pick another model, server,
    database or home, plus the fake model."""
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV}
    for name in ("DATABASE_URL", "DATABASE_SCHEMA", "PYTHONSTARTUP"):
        env.pop(name, None)
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        OPENAI_API_KEY=API_KEY,
        OPENAI_BASE_URL=server.base_url,
        DEEPMEMORY_MODEL=MODEL,
    )
    return env


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_the_readme_python_block_runs_twice_in_a_fresh_folder(
    block: Block, tmp_path: Path, server: FakeOpenAIServer, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_url") if block.needs_postgres else None
    check = CHECKS.get(block.heading)
    for attempt in (1, 2):
        folder = tmp_path / f"run{attempt}"
        (folder / "home").mkdir(parents=True)
        env = child_env(folder / "home", server)
        schema = f"readme_{uuid.uuid4().hex[:12]}" if url else None
        if url and schema:
            env.update(DATABASE_URL=url, DATABASE_SCHEMA=schema)
        seen = len(server.chat_requests)
        try:
            done = subprocess.run(
                [sys.executable, "-c", block.code],
                cwd=folder,
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert done.returncode == 0, (
                f"README block {block.id} failed on run {attempt} "
                f"(exit {done.returncode}):\n{done.stderr}"
            )
            if check is not None:
                check(Run(folder, done.stdout, server.chat_requests[seen:], schema, url))
        finally:
            if url and schema:
                drop_schema(url, schema)


def test_every_section_with_checks_still_has_a_python_block() -> None:
    assert set(CHECKS) <= {b.heading for b in BLOCKS}


def test_postgres_blocks_are_recognised_by_the_url_they_read() -> None:
    assert [b.heading for b in BLOCKS if b.needs_postgres] == ["PostgreSQL deployment"]
