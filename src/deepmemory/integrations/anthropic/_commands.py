"""The memory tool's commands, written once over any deepmemory backend.

Claude's memory tool (``memory_20250818``) works on a ``/memories`` directory with six
commands: ``view``, ``create``, ``str_replace``, ``insert``, ``delete`` and ``rename``.
Each answers here in the words of the SDK's reference implementation
(``BetaLocalFilesystemMemoryTool``): the same result texts, the same ``ToolError``
texts, the same validation. Where the reference would leak a host path or let an OS
error escape (a file used as a directory, a directory moved into itself, a name the
OS refuses), these refuse with a plain message instead.

Paths follow the reference's rules: anything starting with ``/memories``, the rest
taken relative to it (``..`` and ``.`` resolved, escaping refused), then handed to the
backend as they are, so the backend serves ``/memories`` (a store-backed one is
mounted there: ``StoreBackend(...).mounted("/memories")``). One difference is inherent
to a virtual filesystem: it has no empty directories, so a directory exists exactly
while a file lies below it (the reference keeps a folder after its last file goes).
A directory view shows each directory's size as the bytes of the files below it (the
reference shows its inode size).

Each command is a generator of backend calls (``backends._base``): ``MemoryTool``
drives it with the backend's sync methods, ``AsyncMemoryTool`` and the agent
middleware with the async ones, so they cannot drift apart. The text transformations
are pure functions, shared with the diffs shown for approval.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from anthropic.lib.tools import ToolError

from deepmemory import errors, paths
from deepmemory.backends._base import Call, Op
from deepmemory.backends.protocol import DownloadResult, FileInfo, FilesUpdate

ROOT = "/memories"
MAX_LINES = 999_999
NUMBER_WIDTH = len(str(MAX_LINES))
COMMANDS = ("view", "create", "str_replace", "insert", "delete", "rename")


def resolve(path: object) -> str:
    """The virtual path ``path`` names under the reference's rules.

    Example:
        >>> resolve("/memories/notes/../todo.md")
        '/memories/todo.md'

    Raises:
        ToolError: the path is outside ``/memories``, escapes it, or is not a valid path.
    """
    if not isinstance(path, str) or not path.startswith(ROOT):
        raise ToolError(f"Path must start with /memories, got: {path}")
    rest = path[len(ROOT) :].lstrip("/")
    vpath = posixpath.normpath(f"{ROOT}/{rest}") if rest else ROOT
    if not paths.is_within(vpath, ROOT):
        raise ToolError(f"Path {path} would escape /memories directory")
    try:
        return paths.validate(vpath)
    except errors.InvalidPathError as exc:
        raise ToolError(str(exc)) from None


def _numbered(lines: Sequence[str], first: int) -> str:
    return "\n".join(f"{str(n).rjust(NUMBER_WIDTH)}\t{line}" for n, line in enumerate(lines, first))


def _size(n: int) -> str:
    """``1536`` -> ``1.5K``, as the reference writes sizes."""
    if n == 0:
        return "0B"
    unit = min((n.bit_length() - 1) // 10, 3)
    value = n / 1024**unit
    shown = str(int(value)) if value == int(value) else f"{value:.1f}"
    return shown + "BKMG"[unit]


def _missing(path: str) -> str:
    return f"The path {path} does not exist. Please provide a valid path."


def _inside_a_file(path: str, blocker: str) -> str:
    return f"The path {path} is inside {blocker}, which is a file, not a directory."


def render_file(path: str, content: str, view_range: object) -> str:
    """What ``view`` shows of a file: numbered lines, all or ``view_range`` of them."""
    lines = content.split("\n")
    if len(lines) > MAX_LINES:
        raise ToolError(f"File {path} exceeds maximum line limit of 999,999 lines.")
    first, shown = 1, lines
    if isinstance(view_range, Sequence) and len(view_range) == 2:
        start = max(1, view_range[0]) - 1
        end = len(lines) if view_range[1] == -1 else view_range[1]
        first, shown = start + 1, lines[start:end]
    return f"Here's the content of {path} with line numbers:\n" + _numbered(shown, first)


@dataclass
class _Dir:
    size: int = 0
    files: dict[str, int] = field(default_factory=dict)
    dirs: dict[str, _Dir] = field(default_factory=dict)

    def children(self) -> list[tuple[str, int | _Dir]]:
        found: list[tuple[str, int | _Dir]] = [*self.files.items(), *self.dirs.items()]
        return sorted((c for c in found if not c[0].startswith(".")), key=lambda c: c[0])


def render_dir(path: str, vpath: str, files: Sequence[FileInfo]) -> str:
    """What ``view`` shows of a directory: two levels, hidden names left out."""
    top = _Dir()
    for info in files:
        if not info.path.startswith(vpath + "/"):
            continue
        *parents, name = info.path[len(vpath) + 1 :].split("/")
        size = info.size or 0
        node = top
        node.size += size
        for part in parents:
            node = node.dirs.setdefault(part, _Dir())
            node.size += size
        node.files[name] = size
    rows = [f"{_size(top.size)}\t{path}"]
    for name, child in top.children():
        if isinstance(child, int):
            rows.append(f"{_size(child)}\t{path}/{name}")
            continue
        rows.append(f"{_size(child.size)}\t{path}/{name}/")
        for inner, grandchild in child.children():
            if isinstance(grandchild, int):
                rows.append(f"{_size(grandchild)}\t{path}/{name}/{inner}")
            else:
                rows.append(f"{_size(grandchild.size)}\t{path}/{name}/{inner}/")
    header = (
        f"Here're the files and directories up to 2 levels deep in {path}, excluding hidden items:"
    )
    return header + "\n" + "\n".join(rows)


def replaced(path: str, content: str, old_str: str, new_str: str) -> tuple[str, str]:
    """The text after ``str_replace``, and its answer (a snippet around the change)."""
    count = content.count(old_str)
    if count == 0:
        raise ToolError(
            f"No replacement was performed, old_str `{old_str}` did not appear verbatim in {path}."
        )
    if count > 1:
        lines, start = [], 0
        while (at := content.find(old_str, start)) != -1:
            lines.append(content.count("\n", 0, at) + 1)
            start = at + 1
        raise ToolError(
            f"No replacement was performed. Multiple occurrences of old_str `{old_str}` in "
            f"lines: {', '.join(map(str, lines))}. Please ensure it is unique"
        )
    line = content.count("\n", 0, content.find(old_str))
    after = content.replace(old_str, new_str)
    rows = after.split("\n")
    first, last = max(0, line - 2), min(len(rows), line + 3)
    return after, (
        "The memory file has been edited. Here is the snippet showing the change (with "
        "line numbers):\n" + _numbered(rows[first:last], first + 1)
    )


def inserted(content: str, insert_line: int, insert_text: str) -> str:
    """The text after ``insert`` puts ``insert_text`` after line ``insert_line``."""
    lines = content.split("\n")
    if lines[-1] == "":
        lines.pop()
    if insert_line < 0 or insert_line > len(lines):
        raise ToolError(
            f"Invalid `insert_line` parameter: {insert_line}. "
            f"It should be within the range [0, {len(lines)}]."
        )
    lines.insert(insert_line, insert_text.rstrip("\n"))
    after = "\n".join(lines)
    return after if after.endswith("\n") else after + "\n"


def _ancestors(vpath: str) -> list[str]:
    """The directories between ``/memories`` and ``vpath``, outermost first."""
    found = []
    parent = paths.parent(vpath)
    while parent != ROOT and paths.is_within(parent, ROOT):
        found.append(parent)
        parent = paths.parent(parent)
    return found[::-1]


def _file_among(found: Sequence[DownloadResult], candidates: Sequence[str]) -> str | None:
    return next((c for c, d in zip(candidates, found, strict=True) if d.content is not None), None)


class Commands:
    """One call's commands over a backend, each a generator of backend calls.

    ``files_update`` collects the thread-state changes the calls made (a
    ``StateBackend``), for the agent middleware to apply.
    """

    def __init__(self) -> None:
        self.files_update: FilesUpdate = {}

    def _done(self, result: Any) -> None:
        """Keep a write's state changes; its refusal is the model's answer."""
        if getattr(result, "files_update", None):
            self.files_update.update(result.files_update)
        if result.error:
            raise ToolError(result.error)

    def _text(self, vpath: str, path: str) -> Op[str | None]:
        """The file's text, or ``None`` if no file is there."""
        (found,) = yield Call("download_files", ([vpath],))
        if found.content is None:
            return None
        try:
            return str(found.content.decode("utf-8"))
        except UnicodeDecodeError:
            raise ToolError(
                f"The file {path} holds binary data, not UTF-8 text, so the memory tool "
                "cannot show or edit it."
            ) from None

    def _is_dir(self, vpath: str) -> Op[bool]:
        if vpath == ROOT:
            return True  # it always exists, empty or not
        listing = yield Call("ls", (vpath,))
        return bool(listing.entries)

    def _exists(self, vpath: str) -> Op[bool]:
        (found,) = yield Call("download_files", ([vpath],))
        return found.content is not None or (yield from self._is_dir(vpath))

    def _file_text(self, vpath: str, path: str) -> Op[str]:
        """The text of a file that must exist (``str_replace``, ``insert``)."""
        content = None if vpath == ROOT else (yield from self._text(vpath, path))
        if content is not None:
            return content
        if (yield from self._is_dir(vpath)):
            raise ToolError(f"The path {path} is not a file.")
        raise ToolError(_missing(path))

    def run(self, args: Mapping[str, Any]) -> Op[str]:
        """The command ``args["command"]``, with the arguments Claude sends."""
        command = args.get("command")
        if command == "view":
            return (yield from self.view(args.get("path"), args.get("view_range")))
        if command == "create":
            return (yield from self.create(args.get("path"), args.get("file_text")))
        if command == "str_replace":
            old_str, new_str = args.get("old_str"), args.get("new_str")
            return (yield from self.str_replace(args.get("path"), old_str, new_str))
        if command == "insert":
            line, text = args.get("insert_line"), args.get("insert_text")
            return (yield from self.insert(args.get("path"), line, text))
        if command == "delete":
            return (yield from self.delete(args.get("path")))
        if command == "rename":
            return (yield from self.rename(args.get("old_path"), args.get("new_path")))
        raise ToolError(f"Unknown command: {command}. Use one of: {', '.join(COMMANDS)}.")

    def view(self, path: Any, view_range: Any = None) -> Op[str]:
        """A file's numbered lines, or a directory's contents two levels deep."""
        vpath = resolve(path)
        if vpath != ROOT:
            content = yield from self._text(vpath, path)
            if content is not None:
                return render_file(path, content, view_range)
        found = yield Call("glob", ("**", vpath))
        if found.error:
            raise ToolError(found.error)
        if not found.files and vpath != ROOT:
            raise ToolError(_missing(path))
        return render_dir(path, vpath, found.files)

    def create(self, path: Any, file_text: Any) -> Op[str]:
        """A new file; never replaces a file or a directory."""
        vpath = resolve(path)
        taken = f"File {path} already exists"
        if vpath == ROOT:
            raise ToolError(taken)
        parents = _ancestors(vpath)
        found = yield Call("download_files", ([vpath, *parents],))
        if found[0].content is not None:
            raise ToolError(taken)
        blocker = _file_among(found[1:], parents)
        if blocker is not None:
            raise ToolError(_inside_a_file(path, blocker))
        if (yield from self._is_dir(vpath)):
            raise ToolError(taken)
        self._done((yield Call("write", (vpath, file_text))))
        return f"File created successfully at: {path}"

    def str_replace(self, path: Any, old_str: Any, new_str: Any) -> Op[str]:
        """Replace the one occurrence of ``old_str``."""
        vpath = resolve(path)
        content = yield from self._file_text(vpath, path)
        after, answer = replaced(path, content, old_str, new_str)
        if old_str:
            # An edit, not a write of ``after``: it lands only while old_str is still
            # there once, so a concurrent change is never overwritten.
            self._done((yield Call("edit", (vpath, old_str, new_str))))
        else:  # "" occurs once only in an empty file, which becomes new_str
            self._done((yield Call("write", (vpath, after))))
        return answer

    def insert(self, path: Any, insert_line: Any, insert_text: Any) -> Op[str]:
        """Insert ``insert_text`` as line ``insert_line + 1``."""
        vpath = resolve(path)
        content = yield from self._file_text(vpath, path)
        after = inserted(content, insert_line, insert_text)
        if content:
            # The whole old text as old_string: a compare-and-swap, where a write would
            # silently drop a change made since the file was read.
            self._done((yield Call("edit", (vpath, content, after))))
        else:
            self._done((yield Call("write", (vpath, after))))
        return f"The file {path} has been edited."

    def delete(self, path: Any) -> Op[str]:
        """Delete a file, or a directory with everything below it."""
        vpath = resolve(path)
        if vpath == ROOT:
            raise ToolError("Cannot delete the /memories directory itself")
        result = yield Call("delete", (vpath,))
        if result.error == errors.not_found(vpath):
            raise ToolError(f"The path {path} does not exist")
        self._done(result)
        return f"Successfully deleted {path}"

    def rename(self, old_path: Any, new_path: Any) -> Op[str]:
        """Move a file or a directory to a path that is free (one backend ``move``)."""
        old, new = resolve(old_path), resolve(new_path)
        if old == ROOT:
            raise ToolError("Cannot rename the /memories directory itself")
        taken = f"The destination {new_path} already exists"
        if new == ROOT:
            raise ToolError(taken)
        parents = _ancestors(new)
        found = yield Call("download_files", ([new, *parents],))
        if found[0].content is not None or (yield from self._is_dir(new)):
            raise ToolError(taken)
        gone = f"The path {old_path} does not exist"
        blocker = _file_among(found[1:], parents)
        if blocker is not None or paths.is_within(new, old):
            # Refusals of a move that cannot be made; a missing source is the news first.
            if not (yield from self._exists(old)):
                raise ToolError(gone)
            if blocker is not None:
                raise ToolError(_inside_a_file(new_path, blocker))
            raise ToolError(f"Cannot move {old_path} into itself ({new_path}).")
        result = yield Call("move", (old, new))
        if result.error == errors.not_found(old):
            raise ToolError(gone)
        if result.error and "already exists" in result.error:
            raise ToolError(taken)  # created since it was checked
        self._done(result)
        return f"Successfully renamed {old_path} to {new_path}"

    def clear(self) -> Op[str]:
        """Delete everything below ``/memories`` (``clear_all_memory``)."""
        found = yield Call("glob", ("**", ROOT))
        if found.error:
            raise ToolError(found.error)
        tops = sorted({ROOT + "/" + f.path[len(ROOT) + 1 :].split("/")[0] for f in found.files})
        problems = []
        for top in tops:
            result = yield Call("delete", (top,))
            try:
                self._done(result)
            except ToolError as exc:
                problems.append(str(exc))
        if problems:
            raise ToolError("\n".join(problems))
        return "All memory cleared"


def targets(args: Mapping[str, Any]) -> list[str]:
    """The paths a memory call would change (none for ``view``), for approval."""
    command = str(args.get("command"))
    keys = {"rename": ("old_path", "new_path"), "view": ()}.get(command, ("path",))
    found = []
    for key in keys:
        try:
            found.append(resolve(args.get(key)))
        except ToolError:
            continue  # the call will be refused: nothing to approve
    return found
