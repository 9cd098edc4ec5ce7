"""An MCP server over a user's long-term memory: what ``deepmemory mcp`` runs.

Built on the official MCP SDK's low-level ``Server``. What a client gets:

* **Tools**: the agent's seven file tools, ``ls``, ``read_file``, ``write_file``,
  ``edit_file``, ``delete``, ``glob`` and ``grep``. Names, descriptions and argument
  schemas come from :func:`~deepmemory.middleware.filesystem.build_file_tools`, texts
  from its ``render_*`` functions: an MCP client's model reads what our agent reads. A
  result with ``error`` set, a refused path, bad arguments and any unexpected exception
  are tool errors (``isError``) with our usual ``Error: ...`` messages; none ends the
  session.
* **Resources**: every memory file as ``memory:///memories/<path>`` (percent-encoded
  where needed), read as text, or base64 when it is not UTF-8.
* **Prompt** ``memory``: the agent's memory guidelines and its memory map (what
  memory holds now). The guidelines are also the server's ``instructions``.

Whose memory a call reaches is never a tool argument. ``MemoryServer(user=...)``
serves one user (stdio, or HTTP on loopback without tokens); ``tokens=`` (token ->
user) makes HTTP answer 401 to any request without ``Authorization: Bearer <token>``
of the table, and serves each request the memory of its token's user. Each user's
backend comes from ``backend_for(user)``, the caller's choice (the CLI passes the
backend of ``deepmemory memory``, under the agent's size limits).
"""

from __future__ import annotations

import base64
import hmac
import logging
import mimetypes
import socket
from collections.abc import Awaitable, Callable, Mapping
from importlib import metadata
from typing import Any
from urllib.parse import quote, unquote

import uvicorn
from mcp import types
from mcp.server import Server, ServerRequestContext
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError
from pydantic import AnyHttpUrl, BaseModel, ValidationError
from starlette.applications import Starlette

from deepmemory import errors, paths
from deepmemory.backends.protocol import FileInfo, LsResult
from deepmemory.backends.state import StateBackend
from deepmemory.middleware.filesystem import (
    FILESYSTEM_PROMPT,
    MAP_UNAVAILABLE,
    MEMORY_MAP_TOKENS,
    MEMORY_PROMPT,
    build_file_tools,
)
from deepmemory.middleware.memory_map import abuild_map
from deepmemory.middleware.rendering import (
    render_delete,
    render_edit,
    render_glob,
    render_grep,
    render_ls,
    render_read,
    render_write,
)

logger = logging.getLogger("deepmemory")

BackendFactory = Callable[[str], Any]  # user -> that user's memory backend
Context = ServerRequestContext[Any, Any]
Run = Callable[[Any, dict[str, Any]], Awaitable[tuple[str, str | None]]]

SCHEME = "memory://"
PROMPT_NAME = "memory"
RESOURCES_PER_PAGE = 500
_SHOWN_CHARS = 120  # of a URI or tool name quoted back in a message


# -- the tools: one backend call each, rendered as the agent's tools render it ------------


async def _ls(backend: Any, args: dict[str, Any]) -> tuple[str, str | None]:
    result = _root_listing(backend, args["path"])
    if result is None:
        result = await backend.als(args["path"])
    return render_ls(result), result.error


def _root_listing(backend: Any, path: object) -> LsResult | None:
    """``ls("/")`` (the tool's default): the mount, as the agent's ``ls("/")`` shows it."""
    try:
        vpath = paths.validate(path)
    except errors.InvalidPathError:
        return None  # the backend answers with the path's message
    mount = str(backend.mount)
    if vpath == mount or not paths.is_within(mount, vpath):
        return None
    return LsResult(path=vpath, entries=[FileInfo(path=mount + "/", is_dir=True)])


async def _read_file(backend: Any, args: dict[str, Any]) -> tuple[str, str | None]:
    result = await backend.aread(args["file_path"], args["offset"], args["limit"])
    return render_read(result), result.error


async def _write_file(backend: Any, args: dict[str, Any]) -> tuple[str, str | None]:
    result = await backend.awrite(args["file_path"], args["content"])
    return render_write(result), result.error


async def _edit_file(backend: Any, args: dict[str, Any]) -> tuple[str, str | None]:
    result = await backend.aedit(
        args["file_path"], args["old_string"], args["new_string"], replace_all=args["replace_all"]
    )
    return render_edit(result), result.error


async def _delete(backend: Any, args: dict[str, Any]) -> tuple[str, str | None]:
    result = await backend.adelete(args["file_path"])
    return render_delete(result), result.error


async def _glob(backend: Any, args: dict[str, Any]) -> tuple[str, str | None]:
    result = await backend.aglob(args["pattern"], args["path"])
    return render_glob(result), result.error


async def _grep(backend: Any, args: dict[str, Any]) -> tuple[str, str | None]:
    result = await backend.agrep(args["pattern"], args["path"], args["glob"])
    return render_grep(result, args["output_mode"]), result.error


_READS = types.ToolAnnotations(read_only_hint=True, open_world_hint=False)
_CHANGES = types.ToolAnnotations(destructive_hint=True, open_world_hint=False)
_WRITES = types.ToolAnnotations(destructive_hint=True, idempotent_hint=True, open_world_hint=False)
TOOLS: dict[str, tuple[Run, types.ToolAnnotations]] = {
    "ls": (_ls, _READS),
    "read_file": (_read_file, _READS),
    "write_file": (_write_file, _WRITES),
    "edit_file": (_edit_file, _CHANGES),
    "delete": (_delete, _WRITES),
    "glob": (_glob, _READS),
    "grep": (_grep, _READS),
}


def _argument_models() -> dict[str, type[BaseModel]]:
    """Each tool's arguments as the agent's tool declares them (names, defaults, types)."""
    models: dict[str, type[BaseModel]] = {}
    for tool in build_file_tools(StateBackend()):  # the backend is unused: schemas only
        schema = tool.tool_call_schema
        if tool.name in TOOLS and isinstance(schema, type) and issubclass(schema, BaseModel):
            models[tool.name] = schema
    return models


def _bad_arguments(name: str, exc: ValidationError, model: type[BaseModel]) -> str:
    problems = "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors()
    )
    return (
        f"Error: invalid arguments for {name}: {problems}. Its arguments are "
        f"{', '.join(model.model_fields)}."
    )


def _shown(text: str) -> str:
    return repr(text) if len(text) <= _SHOWN_CHARS else repr(text[:_SHOWN_CHARS]) + "..."


def guidelines(root: str) -> str:
    """The memory guidelines the agent's system prompt carries, for memory under ``root``."""
    # Over MCP there is no scratch space: every path outside the memory is refused.
    return FILESYSTEM_PROMPT + MEMORY_PROMPT.format(routes=root, first=root, scratch="")


# -- resources --------------------------------------------------------------------------


def resource_uri(path: str) -> str:
    """The URI of the memory file at ``path`` (``/memories/a b.md``: ``memory:///memories/a%20b.md``)."""
    return SCHEME + quote(path, safe="/")


def resource_path(uri: str) -> str:
    """The path a ``memory://`` URI names (not yet validated: the backend does that).

    Raises:
        MCPError: ``uri`` is not a ``memory:///...`` URI.
    """
    if not uri.startswith(SCHEME + "/"):
        raise MCPError(
            types.INVALID_PARAMS,
            f"Error: {_shown(uri)} is not a memory resource; memory files are "
            f"{SCHEME}/memories/<path> (see resources/list).",
        )
    return unquote(uri.removeprefix(SCHEME))


def _mime_type(path: str) -> str | None:
    return mimetypes.guess_type(path)[0]


class _TokenTable:
    """The ``TokenVerifier`` of ``tokens``: a token of the table is its user's credential."""

    def __init__(self, tokens: Mapping[str, str]) -> None:
        self._tokens = [(token.encode(), user) for token, user in tokens.items()]

    async def verify_token(self, token: str) -> AccessToken | None:
        given = token.encode("utf-8", "surrogateescape")
        owner = None
        for known, user in self._tokens:  # every token compared, in constant time
            if hmac.compare_digest(known, given):
                owner = user
        if owner is None:
            return None
        return AccessToken(token=token, client_id=owner, subject=owner, scopes=[])


# -- the server ---------------------------------------------------------------------------


class MemoryServer:
    """An MCP server over each user's memory (see the module docstring).

    Example:
        >>> from deepmemory.backends import StoreBackend
        >>> from deepmemory.stores import SQLiteStore
        >>> store = SQLiteStore(":memory:")
        >>> memory = lambda user: StoreBackend(
        ...     store=store, namespace=("memories", user)
        ... ).mounted("/memories")
        >>> server = MemoryServer(memory, user="alice")  # then: await server.serve_stdio()
    """

    def __init__(
        self,
        backend_for: BackendFactory,
        *,
        user: str | None = None,
        tokens: Mapping[str, str] | None = None,
    ) -> None:
        if (user is None) == (not tokens):
            raise errors.ConfigError(
                "MemoryServer serves one user= or the users of tokens=, not both or neither."
            )
        self.backend_for = backend_for
        self.user = user
        self.tokens = dict(tokens) if tokens else None
        self._backends: dict[str, Any] = {}
        anyone = user if user is not None else next(iter((self.tokens or {}).values()))
        self.root = str(self._backend_of(anyone).mount) + "/"
        self._arguments = _argument_models()
        self._tools = [self._declare(name) for name in TOOLS]
        self.server: Server[Any] = Server(
            "deepmemory",
            version=_version(),
            instructions=guidelines(self.root),
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_list_resources=self._list_resources,
            on_list_resource_templates=self._list_resource_templates,
            on_read_resource=self._read_resource,
            on_list_prompts=self._list_prompts,
            on_get_prompt=self._get_prompt,
        )

    # -- whose memory ---------------------------------------------------------------------

    def _backend_of(self, user: str) -> Any:
        backend = self._backends.get(user)
        if backend is None:
            backend = self._backends[user] = self.backend_for(user)
        return backend

    def user_of(self, ctx: Context) -> str:
        """The user a request acts for: the server's, or its bearer token's."""
        if self.tokens is None:
            assert self.user is not None
            return self.user
        scope = getattr(ctx.request, "scope", None) or {}
        caller = scope.get("user")
        if isinstance(caller, AuthenticatedUser) and caller.access_token.subject:
            return caller.access_token.subject
        # Unreachable behind the SDK's bearer middleware (it answers 401 first).
        raise PermissionError("the request carries no valid bearer token")

    def _backend(self, ctx: Context) -> Any:
        return self._backend_of(self.user_of(ctx))

    # -- tools ----------------------------------------------------------------------------

    def _declare(self, name: str) -> types.Tool:
        model = self._arguments[name]
        schema = model.model_json_schema()
        description = schema.pop("description", None)
        schema.pop("title", None)
        return types.Tool(
            name=name, description=description, input_schema=schema, annotations=TOOLS[name][1]
        )

    async def _list_tools(
        self, ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=self._tools)

    async def _call_tool(
        self, ctx: Context, params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        text, failed = await self.call(ctx, params.name, params.arguments or {})
        return types.CallToolResult(content=[types.TextContent(text=text)], is_error=failed)

    async def call(self, ctx: Context, name: str, arguments: dict[str, Any]) -> tuple[str, bool]:
        """Run tool ``name``: its text, and whether it is an error. Never raises."""
        if name not in TOOLS:
            return f"Error: unknown tool {_shown(name)}; the tools are {', '.join(TOOLS)}.", True
        model = self._arguments[name]
        try:
            args = model.model_validate(arguments).model_dump()
        except ValidationError as exc:
            return _bad_arguments(name, exc, model), True
        try:
            text, error = await TOOLS[name][0](self._backend(ctx), args)
        except errors.InvalidPathError as exc:
            return str(exc), True
        except Exception as exc:
            logger.exception("deepmemory MCP tool %s failed", name)
            return errors.tool_failed(name, exc), True
        return text, error is not None

    # -- resources ------------------------------------------------------------------------

    async def _list_resources(
        self, ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        cursor = (params.cursor if params is not None else None) or "0"
        if not (cursor.isascii() and cursor.isdigit()):
            raise MCPError(types.INVALID_PARAMS, f"Error: invalid cursor {_shown(cursor)}.")
        start = int(cursor)
        result = await self._guarded("list the memory", self._backend(ctx).aglob("**", None))
        if result.error:
            raise MCPError(types.INTERNAL_ERROR, result.error)
        files = [f for f in result.files if not f.is_dir]
        page = files[start : start + RESOURCES_PER_PAGE]
        more = start + RESOURCES_PER_PAGE < len(files)
        return types.ListResourcesResult(
            resources=[
                types.Resource(
                    name=f.path, uri=resource_uri(f.path), size=f.size, mime_type=_mime_type(f.path)
                )
                for f in page
            ],
            next_cursor=str(start + RESOURCES_PER_PAGE) if more else None,
        )

    async def _list_resource_templates(
        self, ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        template = types.ResourceTemplate(
            name="memory file",
            uri_template=f"{SCHEME}{self.root}{{path}}",
            description=f"A file of long-term memory, by its path below {self.root}.",
        )
        return types.ListResourceTemplatesResult(resource_templates=[template])

    async def _read_resource(
        self, ctx: Context, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        path = resource_path(params.uri)
        backend = self._backend(ctx)
        (result,) = await self._guarded("read the resource", backend.adownload_files([path]))
        if result.error:
            raise MCPError(types.INVALID_PARAMS, result.error)
        data: bytes = result.content or b""
        mime_type = _mime_type(path)
        contents: types.TextResourceContents | types.BlobResourceContents
        try:
            contents = types.TextResourceContents(
                uri=params.uri, mime_type=mime_type or "text/plain", text=data.decode("utf-8")
            )
        except UnicodeDecodeError:
            blob = base64.b64encode(data).decode("ascii")
            contents = types.BlobResourceContents(
                uri=params.uri, mime_type=mime_type or "application/octet-stream", blob=blob
            )
        return types.ReadResourceResult(contents=[contents])

    @staticmethod
    async def _guarded(what: str, pending: Awaitable[Any]) -> Any:
        """``pending``'s result; an unexpected exception becomes one clean protocol error."""
        try:
            return await pending
        except MCPError:
            raise
        except errors.InvalidPathError as exc:
            raise MCPError(types.INVALID_PARAMS, str(exc)) from None
        except Exception as exc:
            logger.exception("deepmemory MCP server could not %s", what)
            message = f"Error: could not {what} ({type(exc).__name__}); you may retry once."
            raise MCPError(types.INTERNAL_ERROR, message) from None

    # -- the prompt -----------------------------------------------------------------------

    async def _list_prompts(
        self, ctx: Context, params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        prompt = types.Prompt(
            name=PROMPT_NAME,
            description="How to use your long-term memory (the deepmemory agent's guidelines), "
            "and what it holds now.",
        )
        return types.ListPromptsResult(prompts=[prompt])

    async def _get_prompt(
        self, ctx: Context, params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        if params.name != PROMPT_NAME:
            raise MCPError(
                types.INVALID_PARAMS,
                f"Error: unknown prompt {_shown(params.name)}; the prompt is {PROMPT_NAME!r}.",
            )
        text = guidelines(self.root)
        try:
            text += "\n\n" + await abuild_map(self._backend(ctx), [self.root], MEMORY_MAP_TOKENS)
        except Exception:  # the map is a convenience: the guidelines still go out
            logger.warning("deepmemory: could not build the memory map", exc_info=True)
            text += "\n\n" + MAP_UNAVAILABLE
        message = types.PromptMessage(role="user", content=types.TextContent(text=text))
        return types.GetPromptResult(description="Your long-term memory", messages=[message])

    # -- transports -----------------------------------------------------------------------

    async def serve_stdio(self) -> None:
        """Serve one client over this process's stdin and stdout until stdin closes."""
        async with stdio_server() as (read, write):
            await self.server.run(read, write, self.server.create_initialization_options())

    def http_app(self, *, host: str) -> Starlette:
        """The streamable HTTP app (endpoint ``/mcp``), behind bearer auth with ``tokens``.

        ``host`` is the address served; on loopback the SDK also checks ``Host`` and
        ``Origin`` headers against DNS rebinding.
        """
        if self.tokens is None:
            return self.server.streamable_http_app(host=host)
        # A resource server with a fixed token table: no OAuth routes are served, so the
        # issuer URL (required by AuthSettings) is never published or used.
        auth = AuthSettings(issuer_url=AnyHttpUrl("http://localhost"), resource_server_url=None)
        return self.server.streamable_http_app(
            host=host, auth=auth, token_verifier=_TokenTable(self.tokens)
        )

    async def serve_http(self, sock: socket.socket, *, host: str) -> None:
        """Serve streamable HTTP on the listening socket ``sock`` (see :func:`listen`)."""
        config = uvicorn.Config(
            self.http_app(host=host),
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=5,
        )
        await uvicorn.Server(config).serve(sockets=[sock])


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port`` (port 0: a free one, see ``getsockname()``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family)


def _version() -> str:
    try:
        return metadata.version("deepmemory")
    except metadata.PackageNotFoundError:
        return ""
