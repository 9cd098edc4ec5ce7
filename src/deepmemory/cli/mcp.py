"""``deepmemory mcp``: the user's memory, served to MCP clients (Claude Desktop, Claude Code).

The server is ``deepmemory.integrations.mcp`` (the ``mcp`` extra), imported inside the
command so that the CLI starts without the SDK. Each user's backend is the one
``deepmemory memory`` uses (``_store.memory_backend``: same store, namespace and prune
policy), under the size limits the agent's writes have (``LimitsBackend``), since an
MCP client is a model too.

Whose memory: over stdio, ``--user``'s. Over HTTP, each request's bearer token's:
``--token`` serves ``--user``, and ``[mcp.tokens]`` in the config file maps more
tokens to their users (see ``_config``). Without any token the HTTP server answers
anyone who can connect, so it only binds a loopback address.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer

from deepmemory.backends import LimitsBackend
from deepmemory.cli._config import (
    DbOption,
    Settings,
    UserOption,
    check_token,
    config_path,
    mcp_tokens,
    read_config,
)
from deepmemory.cli._config import resolve as resolve_settings
from deepmemory.cli._store import Store, memory_backend, open_store, shown_db
from deepmemory.cli._terminal import EXIT_USAGE, fail, note, reports_errors
from deepmemory.errors import ConfigError

DEFAULT_HOST = "127.0.0.1"
INSTALL = "pip install 'deepmemory[mcp]'"
# The SDK and what it needs: a missing one means the extra is not installed.
_SDK_MODULES = {"mcp", "mcp_types", "uvicorn", "starlette", "sse_starlette", "httpx2", "anyio"}

HttpOption = Annotated[
    str | None,
    typer.Option(
        "--http",
        envvar="DEEPMEMORY_MCP_HTTP",
        metavar="[HOST:]PORT",
        help="Serve streamable HTTP at http://HOST:PORT/mcp instead of stdio. HOST defaults "
        "to 127.0.0.1; one that is not loopback needs a token. Port 0 picks a free port.",
        show_default=False,
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="DEEPMEMORY_MCP_TOKEN",
        help="With --http: require 'Authorization: Bearer TOKEN' (401 otherwise); the token "
        "serves --user. \\[mcp.tokens] in the config file maps more tokens to users. Prefer the "
        "variable: other users can see options in `ps`.",
        show_default=False,
    ),
]


@reports_errors
def mcp(
    ctx: typer.Context,
    http: HttpOption = None,
    token: TokenOption = None,
    user: UserOption = None,
    db: DbOption = None,
) -> None:
    r"""Serve your memory to MCP clients: the agent's file tools on /memories/.

    Tools ls, read_file, write_file, edit_file, delete, glob and grep; memory files
    as resources (memory:///memories/PATH); the prompt 'memory' with the agent's
    memory guidelines. Over stdio (the client starts this command) the memory is
    --user's; over --http, each bearer token's user's (401 without a token when one
    is set). Needs the MCP SDK: pip install 'deepmemory\[mcp]'.

    Example:
        claude mcp add deepmemory -- deepmemory mcp --user alice
    """
    try:
        from deepmemory.integrations import mcp as integration
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in _SDK_MODULES:
            raise
        fail(f"`deepmemory mcp` needs the official MCP SDK: {INSTALL}", EXIT_USAGE)
    address = None if http is None else parse_address(http)
    if token is not None and address is None:
        source = ctx.get_parameter_source("token")
        if source is not None and source.name == "COMMANDLINE":  # typer vendors click's enum
            fail(
                "--token only applies with --http: over stdio the client starts the server.",
                EXIT_USAGE,
            )
        token = None  # DEEPMEMORY_MCP_TOKEN set for HTTP servers: nothing to do over stdio
    settings = resolve_settings(db=db, user=user)
    tokens = _tokens(settings, token) if address is not None else {}
    if address is not None and not tokens and not is_loopback(address[0]):
        fail(
            f"Refusing to serve memory on {address[0]!r} without a token: anyone who can "
            "reach it could read and change it. Pass --token (or set DEEPMEMORY_MCP_TOKEN, "
            f"or add [mcp.tokens] to {config_path()}), or serve on 127.0.0.1.",
            EXIT_USAGE,
        )
    with open_store(settings.db, settings.index, writes=True) as store:

        def backend_for(name: str) -> Any:
            return LimitsBackend(memory_backend(store, dataclasses.replace(settings, user=name)))

        server = integration.MemoryServer(
            backend_for, user=None if tokens else settings.user, tokens=tokens or None
        )
        where = shown_db(settings.db)
        if address is None:
            note(f"Serving the memory of {settings.user!r} ({where}) over stdio.")
            asyncio.run(_serving(store, server.serve_stdio))
            return
        host, port = address
        users = sorted(set(tokens.values())) if tokens else [settings.user]
        whose = ", ".join(map(repr, users))
        auth = "a bearer token required" if tokens else "no token: loopback only"
        with integration.listen(host, port) as sock:
            url = f"http://{_in_url(host)}:{sock.getsockname()[1]}/mcp"
            note(f"Serving the memory of {whose} ({where}) at {url} ({auth}). Ctrl-C stops.")
            asyncio.run(_serving(store, lambda: server.serve_http(sock, host=host)))


async def _serving(store: Store, serve: Callable[[], Awaitable[None]]) -> None:
    try:
        await serve()
    finally:
        await store.aclose()  # this loop's connections (PostgreSQL's async pool)


def _tokens(settings: Settings, token: str | None) -> dict[str, str]:
    """Token -> user: the config file's ``[mcp.tokens]``, and ``--token`` for ``--user``."""
    tokens = mcp_tokens(read_config())
    if token is None:
        return tokens
    check_token(token, "--token (DEEPMEMORY_MCP_TOKEN)")
    if tokens.get(token, settings.user) != settings.user:
        raise ConfigError(
            f"--token is also in [mcp.tokens] of {str(config_path())!r}, for another user "
            f"than {settings.user!r}: pass that user with --user, or another token."
        )
    return tokens | {token: settings.user}


def parse_address(text: str) -> tuple[str, int]:
    """``--http``'s ``HOST:PORT``, ``[IPV6]:PORT`` or ``PORT`` as ``(host, port)``."""
    host, colon, port = text.strip().rpartition(":")
    if not colon:
        host = DEFAULT_HOST
    elif host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        host = ""  # an IPv6 address needs brackets
    if not host or not port.isdigit() or int(port) > 65535:
        fail(
            f"--http takes HOST:PORT (such as 127.0.0.1:8765, [::1]:8765) or PORT, not {text!r}.",
            EXIT_USAGE,
        )
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def _in_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host
