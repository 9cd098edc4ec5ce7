r"""The one place a virtual path is normalised and validated.

Every backend method calls :func:`validate` (or :func:`validate_dir`) first, and
routing in ``CompositeBackend`` is decided on its result, so no path reaches storage
or a route table without passing here.

The normal form:

* absolute, ``/``-separated, no empty, ``.`` or ``..`` segments, no trailing ``/``
  (except the root ``/`` itself);
* Unicode NFC. A path is refused when its compatibility form (NFKC) would read
  differently in a way that matters: a segment that becomes ``.``/``..`` or a
  character that becomes ``/`` or ``\\`` (for example the fullwidth solidus);
* no control characters (C0, DEL, C1), no format or separator characters (zero-width,
  bidi overrides, U+2028/U+2029), no backslash, no NUL;
* at most ``MAX_PATH_CHARS`` characters and ``MAX_SEGMENT_BYTES`` UTF-8 bytes a segment.

``..`` is refused outright rather than resolved: a model never needs it in a virtual
filesystem, and refusing it means ``/memories/../secret`` cannot reach another route.
"""

from __future__ import annotations

import functools
import unicodedata

from deepmemory.errors import InvalidPathError

MAX_PATH_CHARS = 1024
MAX_SEGMENT_BYTES = 255

_FORBIDDEN_FOLDED = ("/", "\\")
_INVISIBLE = {"Cf", "Zl", "Zp"}


def _refuse(path: object, why: str, hint: str = "") -> InvalidPathError:
    shown = repr(path) if len(repr(path)) <= 120 else repr(path)[:117] + "..."
    msg = f"Error: invalid path {shown}: {why}."
    if hint:
        msg += f" {hint}"
    return InvalidPathError(msg)


def _check_chars(path: str) -> None:
    if path.isascii() and path.isprintable() and "\\" not in path:
        return  # The common case: nothing below can refuse it.
    for ch in path:
        code = ord(ch)
        if code < 0x20 or 0x7F <= code < 0xA0:
            raise _refuse(path, f"it contains the control character U+{code:04X}")
        if ch == "\\":
            raise _refuse(path, "it contains a backslash", "Use '/' to separate directories.")
        if 0xD800 <= code <= 0xDFFF:
            raise _refuse(path, "it contains an unpaired surrogate character")
        if unicodedata.category(ch) in _INVISIBLE:
            # Zero-width, bidi-override and line-separator characters make two different
            # paths look the same (``instruc\u200btions.txt``): refuse them.
            raise _refuse(path, f"it contains the invisible or format character U+{code:04X}")


def validate(path: object, *, allow_root: bool = True) -> str:
    """Return the normal form of a virtual path, or raise ``InvalidPathError``.

    Example:
        >>> validate("/memories//notes.txt")
        '/memories/notes.txt'
    """
    if not isinstance(path, str):
        raise _refuse(path, "a path must be a string such as '/notes.txt'")
    if len(path) <= _CACHED_CHARS:
        # Agents name the same few paths over and over: each is checked once. A
        # refused path raises, and lru_cache keeps no exception, so it is checked again.
        return _validated(str.__str__(path), allow_root)
    return _validate(path, allow_root)


# Paths up to this long have their normal form cached (at most ~1 MB of paths).
_CACHED_CHARS = 256


@functools.lru_cache(maxsize=4096)
def _validated(path: str, allow_root: bool) -> str:
    return _validate(path, allow_root)


def _validate(path: str, allow_root: bool) -> str:
    if path == "":
        raise _refuse(path, "it is empty", "Give an absolute path such as '/notes.txt'.")
    if len(path) > MAX_PATH_CHARS:
        raise _refuse(path, f"it is longer than {MAX_PATH_CHARS} characters")
    _check_chars(path)
    if not path.startswith("/"):
        raise _refuse(
            path, "it is relative", f"Use an absolute path starting with '/', e.g. '/{path}'."
        )
    ascii = path.isascii()  # ASCII is its own NFC and NFKC form
    if not ascii:
        path = unicodedata.normalize("NFC", path)
    segments = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            raise _refuse(path, "'..' segments are not allowed", "Write the full absolute path.")
        folded = segment if ascii else unicodedata.normalize("NFKC", segment)
        if folded in (".", "..") or any(c in folded for c in _FORBIDDEN_FOLDED):
            raise _refuse(
                path,
                f"the segment {segment!r} reads as {folded!r} once Unicode is normalised",
            )
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise _refuse(path, f"a segment is longer than {MAX_SEGMENT_BYTES} bytes")
        segments.append(segment)
    if not segments:
        if not allow_root:
            raise _refuse(path, "it names the root directory, not a file")
        return "/"
    return "/" + "/".join(segments)


def validate_file(path: object) -> str:
    """Validate a path that must name a file (not the root, no trailing slash)."""
    if isinstance(path, str) and len(path) > 1 and path.endswith("/"):
        raise _refuse(
            path,
            "it ends with '/', so it names a directory",
            "Give a file path such as '/memories/notes.txt'.",
        )
    return validate(path, allow_root=False)


def validate_dir(path: object) -> str:
    """Validate a directory path; ``None`` or ``""`` mean the root."""
    if path is None or path == "":
        return "/"
    return validate(path)


def as_dir_prefix(path: str) -> str:
    """``/a/b`` -> ``/a/b/``; ``/`` stays ``/``."""
    return path if path.endswith("/") else path + "/"


def is_within(path: str, directory: str) -> bool:
    """Whether ``path`` is ``directory`` or below it (both normalised)."""
    return directory == "/" or path == directory or path.startswith(as_dir_prefix(directory))


def parent(path: str) -> str:
    """The parent directory of a normalised path."""
    head = path.rsplit("/", 1)[0]
    return head or "/"
