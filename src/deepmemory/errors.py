"""The exception hierarchy and every message the model reads.

Two readers, two channels:

* The **model** reads tool results. Outcomes it must act on (a missing file, an
  ambiguous edit, a conflict) are *returned* as results whose ``error`` holds one of
  the messages built below; the file tools render them as the tool message. Every
  message names the path as the model wrote it and says what to do next. None of
  them mentions host paths, SQL or Python.
* The **developer** reads exceptions. ``ConfigError`` is raised when deepmemory is
  set up wrongly (no store for a StoreBackend, no model chosen) and says how to fix it.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable


class DeepMemoryError(Exception):
    """Base class for every error deepmemory raises."""


class InvalidPathError(DeepMemoryError, ValueError):
    """A path that is malformed or leaves its root; ``str(err)`` is the model-facing message."""


class KeyRefusedError(InvalidPathError):
    """A storage refused a path of its own (a storage key such as ``/notes.txt``).

    A route's storage knows only its keys; the backend mounting it reports
    ``message(path)`` with the path the model wrote (``/memories/notes.txt``).
    """

    def __init__(self, key: str, message: Callable[[str], str]) -> None:
        super().__init__(message(key))
        self.key = key
        self.message = message


class ConflictError(DeepMemoryError):
    """The file changed since it was read."""


class ConfigError(DeepMemoryError):
    """A mistake in how the application set deepmemory up."""


def _parent(path: str) -> str:
    parent = posixpath.dirname(path.rstrip("/")) or "/"
    return parent


def outside_mount(path: str, mount: str) -> str:
    """A path given to a backend that serves only the paths below ``mount``."""
    return (
        f"Error: {path!r} is outside {mount!r}, the only directory this storage holds. "
        f"Use a path below {mount + '/'!r}."
    )


def not_found(path: str) -> str:
    """The file does not exist."""
    return f"Error: {path!r} not found. Use ls({_parent(path)!r}) to see what exists."


def dir_not_found(path: str) -> str:
    """The directory does not exist."""
    return f"Error: directory {path!r} not found. Use ls({_parent(path)!r}) to see what exists."


def is_directory(path: str, tool: str | None = None) -> str:
    """A file operation (the model's ``tool``, if it was one) was given a directory."""
    used = f", so {tool} cannot use it" if tool else ""
    return (
        f"Error: {path!r} is a directory, not a file{used}. "
        f"Use ls({path!r}) to list it, or give the path of a file inside it."
    )


def leads_outside(path: str, done: str) -> str:
    """A path that a symbolic link leads out of the directory on disk holding the files."""
    return (
        f"Error: {path!r} leads outside the allowed directory (through a symbolic link), "
        f"so it cannot be {done}."
    )


def below_a_file(path: str, verb: str) -> str:
    """A path below a file: a part of its directory path is a file, not a directory."""
    return (
        f"Error: cannot {verb} {path!r}: a part of its directory path is a file. "
        "Choose another path (ls shows what exists)."
    )


def is_file(path: str) -> str:
    """Ls was given a file."""
    return f"Error: {path!r} is a file, not a directory. Use read_file({path!r}) to read it."


def string_not_found(path: str, old_string: str) -> str:
    """The edit's old_string is not in the file."""
    shown = old_string if len(old_string) <= 200 else old_string[:200] + "..."
    return (
        f"Error: old_string {shown!r} was not found in {path!r}. The match must be exact, "
        "including whitespace and line breaks; use read_file to see the current text."
    )


def string_not_unique(path: str, count: int) -> str:
    """The edit's old_string matches more than once."""
    return (
        f"Error: old_string appears {count} times in {path!r}. Add surrounding lines to "
        "old_string so it matches exactly once, or pass replace_all=True to replace every one."
    )


def empty_old_string(path: str) -> str:
    """The edit's old_string is empty."""
    return (
        f"Error: old_string is empty, so there is nothing to replace in {path!r}. "
        "Give the exact text to replace, or use write_file to replace the whole file."
    )


def binary_file(path: str, size: int) -> str:
    """Read or edit was given a binary file."""
    return (
        f"Error: {path!r} holds {size} bytes of binary (non-UTF-8) data, which cannot be "
        "shown or edited as text. It is kept unchanged; write_file would replace it."
    )


def invalid_text(path: str) -> str:
    """The text cannot be stored as UTF-8 (lone surrogates)."""
    return (
        f"Error: the content for {path!r} is not valid text (it holds NUL characters or "
        "unpaired surrogates). Remove them and try again; nothing was written."
    )


def conflict(path: str) -> str:
    """A concurrent writer changed the file and the edit could not be re-applied."""
    return (
        f"Error: {path!r} was changed by someone else while you were editing it, and your "
        "old_string is no longer in it. Use read_file to see the current text, then edit again."
    )


def read_only(path: str) -> str:
    """A write was refused because the path is read-only for the model."""
    return f"Error: {path!r} is read-only; it cannot be written, edited or deleted."


def bad_offset(offset: object) -> str:
    """A read's offset that is not a line number."""
    return f"Error: offset must be 0 or more, not {offset!r}."


def bad_limit(limit: object) -> str:
    """A read's limit that is not a positive number of lines."""
    return f"Error: limit must be 1 or more, not {limit!r}."


def offset_past_end(path: str, offset: int, total: int) -> str:
    """A read starting after the file's last line."""
    return (
        f"Error: offset {offset} is past the end of {path!r}, which has "
        f"{count(total, 'line')}. Use an offset below {total}."
    )


def delete_top(path: str) -> str:
    """A delete of a storage's own top directory (everything in it)."""
    return (
        f"Error: refusing to delete {path!r}, the top of this storage, with "
        "everything in it. Delete the files or subdirectories you mean one by one."
    )


def already_exists(path: str) -> str:
    """A move onto a path that is taken."""
    return (
        f"Error: {path!r} already exists; a move never replaces anything. Choose another "
        "name, or delete it first if it should go."
    )


def bad_move(old: str, new: str, why: str) -> str:
    """A move that cannot be made as asked."""
    return f"Error: cannot move {old!r} to {new!r}: {why}."


def recall_failed(exc: BaseException) -> str:
    """The embedder failed while a search by meaning embedded its query."""
    return (
        f"Error: searching by meaning failed: the embedding model did not answer "
        f"({type(exc).__name__}). Use grep for exact words meanwhile; nothing was changed."
    )


def invalid_glob(pattern: str, reason: str) -> str:
    """A glob pattern that cannot be used."""
    return f"Error: invalid glob pattern {pattern!r}: {reason}."


def tool_failed(tool: str, exc: BaseException) -> str:
    """An unexpected failure inside a tool, reduced to one line for the model."""
    kind = type(exc).__name__
    return (
        f"Error: {tool} failed unexpectedly ({kind}). Nothing further was changed by this "
        "call; you may retry once, or continue without it."
    )


def count(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless ``n`` is 1: "1 line", "3 lines"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
