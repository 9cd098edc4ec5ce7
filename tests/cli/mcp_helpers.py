"""Clients of ``deepmemory mcp`` for tests/cli/test_mcp.py: stdio and HTTP sessions.

Servers are the installed command in new processes (``stdio_session``, ``http_server``);
clients are the official SDK's ``ClientSession`` over its stdio and streamable HTTP
clients. ``agent_texts`` replays calls through the agent's own file tools.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import httpx2
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from deepmemory.cli._config import Settings
from deepmemory.cli._store import agent_backend
from deepmemory.middleware.filesystem import build_file_tools
from deepmemory.stores import SQLiteStore
from tests.cli.conftest import DEEPMEMORY


def server_params(*args: object) -> StdioServerParameters:
    return StdioServerParameters(
        command=str(DEEPMEMORY), args=["mcp", *map(str, args)], env=dict(os.environ)
    )


@asynccontextmanager
async def stdio_session(*args: object) -> AsyncIterator[ClientSession]:
    """A client session with ``deepmemory mcp ARGS`` started as a new process."""
    with open(os.devnull, "w") as errlog:
        async with (
            stdio_client(server_params(*args), errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session


def run(main: Callable[[], Awaitable[Any]]) -> Any:
    return anyio.run(main)


def text(result: Any) -> str:
    [block] = result.content
    return str(block.text)


async def call(session: ClientSession, name: str, **arguments: Any) -> tuple[str, bool]:
    """A tool's text and whether it is an error."""
    result = await session.call_tool(name, arguments)
    return text(result), result.is_error


async def ok(session: ClientSession, name: str, **arguments: Any) -> str:
    answer, failed = await call(session, name, **arguments)
    assert not failed, answer
    return answer


def agent_texts(db: Path, user: str, script: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """What the agent's own file tools say for ``script``, on a database of their own."""
    runtime = SimpleNamespace(
        state={"files": {}}, context=None, store=None, config={}, tool_call_id="call-1"
    )
    settings = Settings(db=str(db), user=user, model=None, base_url=None)

    async def replay() -> list[str]:
        with SQLiteStore(db) as store:
            tools = {t.name: t for t in build_file_tools(agent_backend(store, settings))}
            return [await tools[name].coroutine(runtime, **args) for name, args in script]

    return list(run(replay))


@contextmanager
def http_server(*args: object) -> Iterator[str]:
    """``deepmemory mcp --http 127.0.0.1:0 ARGS`` in a new process; yields its URL."""
    process = subprocess.Popen(
        [str(DEEPMEMORY), "mcp", "--http", "127.0.0.1:0", *map(str, args)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    lines: list[str] = []
    found = threading.Event()

    def drain() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if "http://" in line:
                found.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        deadline = time.monotonic() + 30
        while not found.wait(0.05):
            assert process.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "".join(lines)
        match = re.search(r"http://127\.0\.0\.1:\d+/mcp", "".join(lines))
        assert match, lines
        yield match.group(0)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert "Traceback" not in "".join(lines), "".join(lines)


@asynccontextmanager
async def http_session(url: str, token: str | None) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as client,
        streamable_http_client(url, http_client=client) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def post_initialize(url: str, authorization: str | None) -> int:
    """The HTTP status of a bare ``initialize`` POST."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "curl", "version": "1"},
        },
    }
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if authorization:
        headers["Authorization"] = authorization
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


class Failing:
    """A memory whose grep, downloads and change tokens fail as a broken disk would."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.mount = inner.mount

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def agrep(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk /var/lib/secret.db failed")

    async def adownload_files(self, *args: Any, **kwargs: Any) -> Any:
        raise OSError("disk /var/lib/secret.db failed")

    async def achanges(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk /var/lib/secret.db failed")
