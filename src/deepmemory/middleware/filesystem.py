"""The file tools the model sees, and the system-prompt section that explains them.

Tool names and arguments are the ones models already know from other deep-agent
harnesses: ``ls(path)``, ``read_file(file_path, offset, limit)``,
``write_file(file_path, content)``, ``edit_file(file_path, old_string, new_string,
replace_all)``, ``delete(file_path)``, ``glob(pattern, path)`` and
``grep(pattern, path, glob, output_mode)``.

Each tool resolves the backend for its call (a backend instance is bound to the tool
runtime; a factory ``lambda rt: ...`` is called with it), runs one backend operation
and renders the result as text. No exception leaves a tool: outcomes the model must act
on come back as messages, and anything unexpected is logged and reduced to one line.
Changes to thread state come back as a ``Command`` updating the ``files`` channel.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Annotated, Any, Literal, NotRequired

from langchain.agents.middleware import AgentMiddleware, AgentState, ModelRequest, ModelResponse
from langchain.tools import ToolRuntime
from langchain_core.messages import SystemMessage, ToolMessage
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.config import get_config
from langgraph.types import Command

from deepmemory import errors
from deepmemory.backends.state import StateBackend, merge_files
from deepmemory.middleware.memory_map import MapCache, abuild_map, build_map, memory_roots
from deepmemory.middleware.rendering import (
    render_delete,
    render_edit,
    render_glob,
    render_grep,
    render_ls,
    render_read,
    render_recall,
    render_write,
)

# Any context and state: unparameterised, pydantic types the injected runtime's context as
# None and warns on every call whose run has a context (a dict, a dataclass).
AnyRuntime = ToolRuntime[Any, Any]

logger = logging.getLogger("deepmemory")

BackendSpec = Any  # a backend instance, or a callable taking the tool runtime
GrepMode = Literal["files_with_matches", "content", "count"]

READ_LIMIT = 500


class FilesystemState(AgentState[Any]):
    """Agent state with the thread's files (``None`` in an update deletes a file)."""

    files: Annotated[NotRequired[dict[str, Any]], merge_files]


def run_config() -> Any:
    """The config of the run in progress (``{}`` outside a run)."""
    try:
        return get_config()
    except RuntimeError:
        return {}


def _with_config(runtime: Any) -> Any:
    """A model call's runtime, plus the run's config (tenant ids may live there)."""
    if getattr(runtime, "config", None) is not None:
        return runtime
    return SimpleNamespace(
        state=getattr(runtime, "state", None),
        store=getattr(runtime, "store", None),
        context=getattr(runtime, "context", None),
        config=run_config(),
    )


def resolve_backend(spec: BackendSpec, runtime: Any) -> Any:
    """The backend for one tool call: bind an instance, or call a factory with the runtime."""
    backend = spec if hasattr(spec, "bind") else spec(runtime)
    return backend.bind(runtime)


# -- rendering: every result becomes the text the model reads ---------------------------

LS_DESCRIPTION = """List the files and directories directly inside a directory.
Use it to see what exists before reading or writing. `path` is an absolute path such as "/" or "/memories/". Directories end with "/"; files show their size."""

READ_DESCRIPTION = """Read a text file. Returns numbered lines (like `cat -n`).
- `file_path` must be absolute, e.g. "/memories/preferences.txt".
- Large files come in windows: `offset` is the 0-based line to start at, `limit` the number of lines (default 500). When more lines remain, the result says which offset to use next.
- Read a file before editing it, so that your `old_string` matches exactly."""

WRITE_DESCRIPTION = """Create a file, or replace its whole content.
- `file_path` must be absolute; parent directories are created as needed.
- To change part of an existing file, prefer `edit_file`: it keeps the rest intact."""

EDIT_DESCRIPTION = """Replace exact text in a file.
- `old_string` must match the file exactly, including whitespace and line breaks (copy it from read_file output without the line-number prefix), and must occur exactly once unless `replace_all` is true.
- If `old_string` occurs several times, add surrounding lines to make it unique, or set `replace_all` to true to replace every occurrence.
- To append, use the file's last line(s) as `old_string` and repeat them in `new_string` followed by the new text."""

DELETE_DESCRIPTION = """Delete a file, or a directory with everything in it.
Deleting cannot be undone here: make sure the path is the one you mean."""

GLOB_DESCRIPTION = """Find files by name pattern.
- `*` matches within a name, `**` across directories, `?` one character, `{a,b}` either alternative; e.g. "**/*.md", "/memories/research/*.txt".
- A pattern without "/" matches file names at any depth.
- `path` limits the search to one directory (default: everywhere)."""

GREP_DESCRIPTION = """Search file contents for literal text (not a regular expression; case-sensitive).
- `path`: a directory (or a single file) to search; default everywhere.
- `glob`: only search files whose path matches this pattern, e.g. "*.md".
- `output_mode`: "files_with_matches" (default: the paths), "content" (path:line: text for each matching line), or "count" (matches per file)."""


RECALL_DESCRIPTION = """Search memory files by meaning, not by exact words: finds passages about the same thing even when they use other words (a note on "espresso" for the query "coffee").
- `query`: what you are looking for, in plain words.
- `path`: the directory to search (default "/memories/").
- Results come best first: each gives the file, its line range and the passage. Use `read_file` with `offset` at the passage's first line minus one to read around it.
Use `grep` instead when you know the exact text (a name, a number, a phrase)."""

RECALL_PROMPT = """
To find what you stored without knowing its exact wording, use `semantic_search` (by meaning); use `grep` for exact text such as names, numbers or phrases."""

FILESYSTEM_PROMPT = """## Files

You have a virtual filesystem, used through the tools `ls`, `read_file`, `write_file`, `edit_file`, `delete`, `glob` and `grep`. All paths are absolute and start with "/".
Use files to keep notes, drafts and intermediate results instead of holding everything in the conversation."""

MEMORY_PROMPT = """

### Long-term memory
Files under {routes} are your long-term memory: they persist across conversations and restarts, and you will find them again in future threads.{scratch}
Where to keep what:
- {first}preferences.txt: the user's preferences and settings, as they state them.
- {first}instructions.txt: standing instructions and feedback ("always do X", "I prefer Y"); update it with `edit_file` when the user gives new feedback, and follow it.
- {first}knowledge/: facts learned over time (projects, people, decisions), one topic per file.
- {first}research/<topic>/: research in progress (sources.txt, notes.txt, report.md), so it can continue in a later conversation.
Make the first line of every memory file a one-line summary of it. At the start of a task that may depend on what you learned before, read the relevant files. Keep memory tidy: update files with `edit_file` rather than piling up near-duplicates, and delete what is no longer true."""

# Where the agent also has files of its own thread (the file tools' default backend).
SCRATCH_NOTE = (
    " Every other path is scratch space for this conversation only and is gone when it ends."
)

MEMORY_MAP_TOKENS = 800
MAP_UNAVAILABLE = "(Your long-term memory could not be listed just now: use ls to see it.)"


class FilesystemMiddleware(AgentMiddleware[FilesystemState, Any]):
    """Adds the file tools and their system-prompt section to an agent.

    With a persistent route (``/memories/``), the section also explains long-term
    memory and, unless ``memory_map=False``, maps what it holds now (see
    ``memory_map``), within ``memory_map_tokens``.

    Example:
        >>> from deepmemory.backends import StateBackend
        >>> middleware = FilesystemMiddleware(backend=StateBackend())
    """

    state_schema = FilesystemState

    def __init__(
        self,
        *,
        backend: BackendSpec = None,
        system_prompt: str | None = None,
        memory_map: bool = True,
        memory_map_tokens: int = MEMORY_MAP_TOKENS,
    ) -> None:
        self.backend = backend if backend is not None else StateBackend()
        self.system_prompt = system_prompt
        self.memory_map = memory_map
        self.memory_map_tokens = memory_map_tokens
        self.map_cache = MapCache()
        self.tools: list[BaseTool] = [
            *build_file_tools(self.backend),
            build_recall_tool(self.backend),
        ]

    def _plan(self, runtime: Any) -> tuple[str, Any, list[str], bool]:
        """The prompt text, the backend and roots to map (roots empty: no map), recall.

        The last: whether the backend searches by meaning (else ``semantic_search`` is
        withheld from the model).
        """
        try:
            backend = resolve_backend(self.backend, _with_config(runtime))
        except Exception:  # a factory that needs more than the model call's runtime
            return self.system_prompt or FILESYSTEM_PROMPT, None, [], False
        recalls = _can_recall(backend)
        if self.system_prompt is not None:
            return self.system_prompt, None, [], recalls
        roots = memory_roots(backend)
        if not roots:
            return FILESYSTEM_PROMPT, None, [], recalls
        text = FILESYSTEM_PROMPT + MEMORY_PROMPT.format(
            routes=", ".join(roots), first=roots[0], scratch=SCRATCH_NOTE
        )
        if recalls:
            text += RECALL_PROMPT
        return text, backend, roots if self.memory_map else [], recalls

    @staticmethod
    def _with(request: ModelRequest[Any], section: str) -> ModelRequest[Any]:
        current = request.system_message
        base = current.text if current is not None else ""
        text = f"{base}\n\n{section}" if base else section
        return request.override(system_message=SystemMessage(text))

    @staticmethod
    def _offered(request: ModelRequest[Any], recalls: bool) -> ModelRequest[Any]:
        """The request without ``semantic_search`` where nothing is searched by meaning."""
        if recalls:
            return request
        tools = [t for t in request.tools if getattr(t, "name", None) != RECALL_TOOL]
        return request if len(tools) == len(request.tools) else request.override(tools=tools)

    def _request(self, request: ModelRequest[Any]) -> ModelRequest[Any]:
        text, backend, roots, recalls = self._plan(request.runtime)
        request = self._offered(request, recalls)
        if roots:
            try:
                text += "\n\n" + build_map(backend, roots, self.memory_map_tokens, self.map_cache)
            except Exception:  # the map is a convenience: never fail a model call for it
                logger.warning("deepmemory: could not build the memory map", exc_info=True)
                text += "\n\n" + MAP_UNAVAILABLE
        return self._with(request, text)

    async def _arequest(self, request: ModelRequest[Any]) -> ModelRequest[Any]:
        text, backend, roots, recalls = self._plan(request.runtime)
        request = self._offered(request, recalls)
        if roots:
            try:
                text += "\n\n" + await abuild_map(
                    backend, roots, self.memory_map_tokens, self.map_cache
                )
            except Exception:
                logger.warning("deepmemory: could not build the memory map", exc_info=True)
                text += "\n\n" + MAP_UNAVAILABLE
        return self._with(request, text)

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelResponse[Any]:
        """Append the filesystem section (and the memory map) to the system prompt."""
        return handler(self._request(request))

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any]:
        """Async ``wrap_model_call``."""
        return await handler(await self._arequest(request))


def _reply(runtime: AnyRuntime, text: str, update: dict[str, Any] | None) -> Any:
    if not update:
        return text
    message = ToolMessage(text, tool_call_id=runtime.tool_call_id or "")
    return Command(update={"files": update, "messages": [message]})


def _guard(name: str, call: Callable[..., Any]) -> Callable[..., Any]:
    """No exception leaves a tool: model-facing errors pass through, others are logged."""

    def safe(*args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        except errors.InvalidPathError as exc:
            return str(exc)
        except errors.ConfigError:
            raise  # the application's set-up is wrong: the developer must see it
        except Exception as exc:
            logger.exception("deepmemory tool %s failed", name)
            return errors.tool_failed(name, exc)

    return safe


def _aguard(name: str, call: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def safe(*args: Any, **kwargs: Any) -> Any:
        try:
            return await call(*args, **kwargs)
        except errors.InvalidPathError as exc:
            return str(exc)
        except errors.ConfigError:
            raise
        except Exception as exc:
            logger.exception("deepmemory tool %s failed", name)
            return errors.tool_failed(name, exc)

    return safe


def build_file_tools(spec: BackendSpec) -> list[BaseTool]:
    """The seven file tools over one backend spec (instance or factory)."""

    def b(runtime: AnyRuntime) -> Any:
        return resolve_backend(spec, runtime)

    def ls(runtime: AnyRuntime, path: str = "/") -> str:
        return render_ls(b(runtime).ls(path))

    async def als(runtime: AnyRuntime, path: str = "/") -> str:
        return render_ls(await b(runtime).als(path))

    def read_file(
        runtime: AnyRuntime, file_path: str, offset: int = 0, limit: int = READ_LIMIT
    ) -> str:
        return render_read(b(runtime).read(file_path, offset, limit))

    async def aread_file(
        runtime: AnyRuntime, file_path: str, offset: int = 0, limit: int = READ_LIMIT
    ) -> str:
        return render_read(await b(runtime).aread(file_path, offset, limit))

    def write_file(runtime: AnyRuntime, file_path: str, content: str) -> Any:
        result = b(runtime).write(file_path, content)
        return _reply(runtime, render_write(result), result.files_update)

    async def awrite_file(runtime: AnyRuntime, file_path: str, content: str) -> Any:
        result = await b(runtime).awrite(file_path, content)
        return _reply(runtime, render_write(result), result.files_update)

    def edit_file(
        runtime: AnyRuntime,
        file_path: str,
        old_string: str,
        new_string: str,
        replace_all: bool = False,
    ) -> Any:
        result = b(runtime).edit(file_path, old_string, new_string, replace_all=replace_all)
        return _reply(runtime, render_edit(result), result.files_update)

    async def aedit_file(
        runtime: AnyRuntime,
        file_path: str,
        old_string: str,
        new_string: str,
        replace_all: bool = False,
    ) -> Any:
        result = await b(runtime).aedit(file_path, old_string, new_string, replace_all=replace_all)
        return _reply(runtime, render_edit(result), result.files_update)

    def delete(runtime: AnyRuntime, file_path: str) -> Any:
        result = b(runtime).delete(file_path)
        return _reply(runtime, render_delete(result), result.files_update)

    async def adelete(runtime: AnyRuntime, file_path: str) -> Any:
        result = await b(runtime).adelete(file_path)
        return _reply(runtime, render_delete(result), result.files_update)

    def glob(runtime: AnyRuntime, pattern: str, path: str | None = None) -> str:
        return render_glob(b(runtime).glob(pattern, path))

    async def aglob(runtime: AnyRuntime, pattern: str, path: str | None = None) -> str:
        return render_glob(await b(runtime).aglob(pattern, path))

    def grep(
        runtime: AnyRuntime,
        pattern: str,
        path: str | None = None,
        glob: str | None = None,
        output_mode: GrepMode = "files_with_matches",
    ) -> str:
        return render_grep(b(runtime).grep(pattern, path, glob), output_mode)

    async def agrep(
        runtime: AnyRuntime,
        pattern: str,
        path: str | None = None,
        glob: str | None = None,
        output_mode: GrepMode = "files_with_matches",
    ) -> str:
        return render_grep(await b(runtime).agrep(pattern, path, glob), output_mode)

    table: list[tuple[str, Callable[..., Any], Callable[..., Awaitable[Any]], str]] = [
        ("ls", ls, als, LS_DESCRIPTION),
        ("read_file", read_file, aread_file, READ_DESCRIPTION),
        ("write_file", write_file, awrite_file, WRITE_DESCRIPTION),
        ("edit_file", edit_file, aedit_file, EDIT_DESCRIPTION),
        ("delete", delete, adelete, DELETE_DESCRIPTION),
        ("glob", glob, aglob, GLOB_DESCRIPTION),
        ("grep", grep, agrep, GREP_DESCRIPTION),
    ]
    tools: list[BaseTool] = []
    for name, func, coroutine, description in table:
        tool = StructuredTool.from_function(
            func=func, coroutine=coroutine, name=name, description=description
        )
        tool.func = _guard(name, func)
        tool.coroutine = _aguard(name, coroutine)
        tools.append(tool)
    return tools


RECALL_TOOL = "semantic_search"


def _can_recall(backend: Any) -> bool:
    try:
        return bool(backend.recalls())
    except Exception:  # a backend without the notion, or one that cannot say now
        return False


def build_recall_tool(spec: BackendSpec) -> BaseTool:
    """``semantic_search``: the passages of memory files closest in meaning to a query."""

    def b(runtime: AnyRuntime) -> Any:
        return resolve_backend(spec, runtime)

    def semantic_search(
        runtime: AnyRuntime, query: str, path: str = "/memories/", limit: int = 5
    ) -> str:
        return render_recall(b(runtime).recall(query, path, limit))

    async def asemantic_search(
        runtime: AnyRuntime, query: str, path: str = "/memories/", limit: int = 5
    ) -> str:
        return render_recall(await b(runtime).arecall(query, path, limit))

    tool = StructuredTool.from_function(
        func=semantic_search,
        coroutine=asemantic_search,
        name=RECALL_TOOL,
        description=RECALL_DESCRIPTION,
    )
    tool.func = _guard(RECALL_TOOL, semantic_search)
    tool.coroutine = _aguard(RECALL_TOOL, asemantic_search)
    return tool
