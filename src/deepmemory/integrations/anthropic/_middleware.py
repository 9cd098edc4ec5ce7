"""Claude's native memory tool in LangChain agents, executed on a deepmemory backend.

``ClaudeMemoryMiddleware(backend=...)`` adds a ``memory`` tool to an agent
(``create_deep_agent(middleware=[...])`` or ``langchain.agents.create_agent``). For a
Claude model (``ChatAnthropic``) each model call binds the server-tool spec
``{"type": "memory_20250818", "name": "memory"}`` in its place, so Claude uses the memory
behaviour it was trained on; its ``memory`` tool calls then run here, through the
commands of ``_commands`` on the backend bound to the tool call, as the file tools
bind theirs (thread-state changes come back as a ``files`` update). Any other model
sees an ordinary function tool with the same arguments.

Writes go through the backend's own ``write``, ``edit``, ``delete`` and ``move``, so
policy wrappers (``ReadOnlyBackend``, ``LimitsBackend``) refuse them as they refuse the
file tools' writes; the tool registers itself with ``approve_writes`` so protected
paths pause for a human, with a diff, whichever tool writes to them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

from anthropic.lib.tools import ToolError
from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain.tools import ToolRuntime
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.types import Command

from deepmemory import errors
from deepmemory.backends._base import run_async, run_sync
from deepmemory.backends.store import StoreBackend
from deepmemory.integrations.anthropic._commands import (
    ROOT,
    Commands,
    inserted,
    replaced,
    targets,
)
from deepmemory.middleware.approval import (
    WriteTool,
    deletion,
    register_write_tool,
    unified_diff,
)
from deepmemory.middleware.filesystem import (
    BackendSpec,
    FilesystemMiddleware,
    FilesystemState,
    resolve_backend,
)

logger = logging.getLogger("deepmemory")

TOOL_NAME = "memory"
MEMORY_TOOL_SPEC: dict[str, Any] = {"type": "memory_20250818", "name": TOOL_NAME}

MEMORY_PROMPT = """## Memory

You have a `memory` tool over a /memories directory that is kept between conversations.
- Before starting a task, view /memories and read what is relevant: earlier sessions may have left progress, decisions or preferences there.
- As you work, record what you learn and where you stand (progress, decisions, open questions) in memory files, and keep them current; do not wait until the end.
- Your context may be cut off at any moment: assume anything not written to /memories will be lost.
- Keep /memories organised: one topic per file under a clear name; update or rename files instead of adding near-duplicates, and delete what is no longer true."""

TOOL_DESCRIPTION = """Your persistent memory: a /memories directory kept between conversations.
Commands (`command`), with their arguments:
- view: `path` (a directory shows two levels; a file shows numbered lines, `view_range` [first, last] limits them, -1 meaning the end)
- create: `path`, `file_text` (a new file; an existing one is never replaced)
- str_replace: `path`, `old_str` (must occur exactly once), `new_str`
- insert: `path`, `insert_line` (0 inserts before the first line), `insert_text`
- delete: `path` (a file, or a directory with everything in it)
- rename: `old_path`, `new_path` (a file or directory, to a path not yet taken)"""

MemoryCommand = Literal["view", "create", "str_replace", "insert", "delete", "rename"]


def _answer(runtime: ToolRuntime, text: str, update: Mapping[str, Any], *, failed: bool) -> Any:
    message = ToolMessage(
        text,
        tool_call_id=runtime.tool_call_id or "",
        name=TOOL_NAME,
        status="error" if failed else "success",
    )
    if not update:
        return message
    return Command(update={"files": dict(update), "messages": [message]})


def _refused(runtime: ToolRuntime, exc: Exception) -> Any:
    """The model's answer to a command that failed; a set-up mistake is raised."""
    if isinstance(exc, errors.ConfigError):
        raise exc
    if isinstance(exc, ToolError | errors.InvalidPathError):
        text = str(exc)
    else:
        logger.error("deepmemory tool %s failed", TOOL_NAME, exc_info=exc)
        text = errors.tool_failed(TOOL_NAME, exc)
    return _answer(runtime, text, {}, failed=True)


def build_memory_tool(spec: BackendSpec) -> BaseTool:
    """The ``memory`` tool over a backend spec (an instance, or a factory of the runtime)."""

    def memory(
        runtime: ToolRuntime,
        command: MemoryCommand,
        path: str | None = None,
        view_range: list[int] | None = None,
        file_text: str | None = None,
        old_str: str | None = None,
        new_str: str | None = None,
        insert_line: int | None = None,
        insert_text: str | None = None,
        old_path: str | None = None,
        new_path: str | None = None,
    ) -> Any:
        args = {k: v for k, v in locals().items() if k != "runtime"}  # as the model sent them
        commands = Commands()
        try:
            text = run_sync(commands.run(args), resolve_backend(spec, runtime))
        except Exception as exc:
            return _refused(runtime, exc)
        return _answer(runtime, text, commands.files_update, failed=False)

    async def amemory(runtime: ToolRuntime, **args: Any) -> Any:
        # The arguments' schema is read from ``memory``; the same ones arrive here.
        commands = Commands()
        try:
            text = await run_async(commands.run(args), resolve_backend(spec, runtime))
        except Exception as exc:
            return _refused(runtime, exc)
        return _answer(runtime, text, commands.files_update, failed=False)

    return StructuredTool.from_function(
        func=memory, coroutine=amemory, name=TOOL_NAME, description=TOOL_DESCRIPTION
    )


class ClaudeMemoryMiddleware(AgentMiddleware[FilesystemState, Any]):
    """Claude's memory tool (``memory_20250818``) over a deepmemory backend.

    ``backend`` serves ``/memories`` (default: ``StoreBackend()`` mounted there, the
    agent's store in its default namespace, as a ``/memories/`` route keeps it).
    ``system_prompt`` replaces the memory guidance added to the system prompt ("" adds
    none).

    Example:
        >>> from deepmemory.backends import CompositeBackend, StateBackend, StoreBackend
        >>> backend = CompositeBackend(
        ...     default=StateBackend(), routes={"/memories/": StoreBackend()}
        ... )
        >>> middleware = ClaudeMemoryMiddleware(backend=backend)
        >>> # create_deep_agent(model=ChatAnthropic(...), backend=backend, middleware=[middleware])
    """

    state_schema = FilesystemState

    def __init__(
        self,
        *,
        backend: BackendSpec = None,
        system_prompt: str | None = None,
        cache_control: Mapping[str, Any] | None = None,
    ) -> None:
        self.backend = backend if backend is not None else StoreBackend().mounted(ROOT)
        self.system_prompt = MEMORY_PROMPT if system_prompt is None else system_prompt
        self.spec = {
            **MEMORY_TOOL_SPEC,
            **({"cache_control": cache_control} if cache_control else {}),
        }
        self.tools: list[BaseTool] = [build_memory_tool(self.backend)]

    def _request(self, request: ModelRequest[Any]) -> ModelRequest[Any]:
        tools = list(request.tools)
        ours = [t for t in tools if isinstance(t, BaseTool) and t.name == TOOL_NAME]
        if ours and isinstance(request.model, ChatAnthropic):
            # Claude gets the server tool it was trained on; the calls still run here.
            tools = [t for t in tools if t not in ours] + [self.spec]
        request = request.override(tools=tools)
        if not self.system_prompt:
            return request
        return FilesystemMiddleware._with(request, self.system_prompt)  # appended, as its own

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelResponse[Any]:
        """Bind the memory tool the model knows, and add the memory guidance."""
        return handler(self._request(request))

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any]:
        """Async ``wrap_model_call``."""
        return await handler(self._request(request))


def proposed_change(args: dict[str, Any], before: str | None) -> str:
    """What a memory call would do to its file, for the reviewer of a paused call."""
    command = args.get("command")
    try:
        found = targets(args)
        path = found[0] if found else str(args.get("path"))
        if command == "rename":
            return f"Rename {args.get('old_path')} to {args.get('new_path')}."
        if command == "delete":
            return deletion(path, before)
        if command == "create":
            if before is not None:
                raise ToolError(f"File {path} already exists")
            return unified_diff(path, None, str(args.get("file_text") or ""))
        if before is None:
            raise ToolError(f"The path {path} does not exist. Please provide a valid path.")
        if command == "str_replace":
            after = replaced(path, before, str(args.get("old_str")), str(args.get("new_str")))[0]
        else:
            after = inserted(before, int(args["insert_line"]), str(args.get("insert_text")))
        return unified_diff(path, before, after)
    except (ToolError, KeyError, TypeError, ValueError) as exc:
        return f"memory {command}: {exc}. The call will fail without changes."


register_write_tool(WriteTool(TOOL_NAME, targets, proposed_change))

__all__ = ["MEMORY_PROMPT", "MEMORY_TOOL_SPEC", "ClaudeMemoryMiddleware", "build_memory_tool"]
