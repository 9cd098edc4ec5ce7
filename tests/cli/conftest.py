"""Fixtures of the CLI tests: a clean environment, the fake model server, the command.

Every test gets its own HOME and XDG directories (so no real config or database is
touched) and none of the variables that would change what the command does. The
model is ``openai:gpt-4.1`` talking real HTTP to ``tests.fakes.openai_server``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from deepmemory.cli import app
from tests.fakes.openai_server import FakeOpenAIServer, last_user_text, tool_results_since_user

DEEPMEMORY = Path(sys.executable).parent / "deepmemory"
API_KEY = "test-key"
MODEL = "openai:gpt-4.1"

# Settings that would send the client elsewhere, pick another model, database or user.
FOREIGN_ENV = [
    "DEEPMEMORY_MODEL",
    "DEEPMEMORY_DB",
    "DEEPMEMORY_USER",
    "DEEPMEMORY_BASE_URL",
    "DEEPMEMORY_THREAD",
    "DEEPMEMORY_CONFIG",
    "DEEPMEMORY_DEBUG",
    "DEEPMEMORY_EMBED",
    "DEEPMEMORY_EMBED_DIMS",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_API_BASE",
    "OPENAI_ORG_ID",
    "OPENAI_ORGANIZATION",
    "OPENAI_PROJECT_ID",
    "OPENAI_PROXY",
    "ANTHROPIC_API_KEY",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "LANGSMITH_TRACING",
    "LANGCHAIN_TRACING_V2",
    "VISUAL",
    "EDITOR",
]

SAVE = "Remember that I prefer metric units"
ASK = "Which units do I prefer?"
STORY = "Tell me a long story"
PREFERENCE = "Prefers metric units\n"
SAVED = "Saved your preference to /memories/preferences.txt."
RECALL = "From memory: "
STORY_TEXT = "Once " + "upon a time " * 150 + "The end."


def policy(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Any:
    """A model that saves a preference, recalls it, tells a long story, or echoes."""
    if messages[-1]["role"] == "tool":
        calls = [c["function"]["name"] for c in messages[-2].get("tool_calls", [])]
        if calls == ["write_file"]:
            return SAVED
        return RECALL + tool_results_since_user(messages)[-1]
    user = last_user_text(messages)
    if user == SAVE:
        return [("write_file", {"file_path": "/memories/preferences.txt", "content": PREFERENCE})]
    if user == ASK:
        return [("read_file", {"file_path": "/memories/preferences.txt"})]
    if user == STORY:
        return STORY_TEXT
    return f"Hello! {user}"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HOME and XDG directories, and none of the variables above."""
    for name in FOREIGN_ENV:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    return home


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(policy, api_key=API_KEY) as fake:
        yield fake
    assert not fake.policy_errors, fake.policy_errors
    assert not fake.server_errors, fake.server_errors


@pytest.fixture
def model_env(
    home: Path, server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> FakeOpenAIServer:
    """The model is openai:gpt-4.1 on the fake server (for CliRunner and subprocesses)."""
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("DEEPMEMORY_MODEL", MODEL)
    return server


@pytest.fixture
def db(home: Path) -> Path:
    """A SQLite database file of this test."""
    return home / "memory.db"


def deepmemory(
    *args: object, input: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the installed command in a new process with this test's environment."""
    return subprocess.run(
        [str(DEEPMEMORY), *map(str, args)],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ),
    )


def invoke(*args: object, input: str | bytes | None = None) -> Result:
    """Run the command in this process (typer's CliRunner); stdout and stderr apart."""
    result = CliRunner().invoke(app, [str(a) for a in args], input=input)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def one_error_line(text: str) -> str:
    """The single ``error: ...`` line of stderr (fails if there is not exactly one line)."""
    lines = text.splitlines()
    assert len(lines) == 1, text
    assert lines[0].startswith("error: "), text
    assert "Traceback" not in text
    return lines[0]
