"""Glob patterns and grep filters, compiled once and used by every backend and store.

Glob language (what models already use): ``*`` and ``?`` stay within one path segment,
``**`` crosses directories (``a/**/b`` also matches ``a/b``), ``[abc]``/``[!a-z]``
classes, ``{x,y}`` alternatives. A pattern without ``/`` matches the file name at any
depth. A pattern is matched against the path *relative to the search directory*; one
starting with ``/`` is taken from the root. ``..`` segments are refused.

The regex produced uses only constructs that Python ``re`` and PostgreSQL's ``~``
both understand, so stores can evaluate it inside the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from deepmemory import errors

MAX_PATTERN_CHARS = 1000
MAX_WILDCARDS = 32
MAX_BRACE_DEPTH = 8
MAX_GREP_CHARS = 10_000


class PatternError(ValueError):
    """A glob pattern that cannot be compiled; ``str(err)`` is the model-facing message."""


def _escape(ch: str) -> str:
    # Escape ASCII punctuation only: backslash-escaped punctuation is literal in both
    # Python re and PostgreSQL ARE, and letters must never be escaped (\d, \w...).
    if ch.isascii() and not ch.isalnum() and ch != "/":
        return "\\" + ch
    return ch


def _class(pattern: str, i: int) -> tuple[str, int] | None:
    """Translate ``[...]`` starting at ``pattern[i] == '['``; None if unterminated."""
    j = i + 1
    negate = j < len(pattern) and pattern[j] in "!^"
    if negate:
        j += 1
    start = j
    if j < len(pattern) and pattern[j] == "]":
        j += 1
    while j < len(pattern) and pattern[j] != "]":
        j += 1
    if j >= len(pattern):
        return None
    body = pattern[start:j]
    if "/" in body:
        return None
    parts = []
    for ch in body:
        parts.append("\\" + ch if ch in "\\^[]" else ch)
    return ("[^/" if negate else "[") + "".join(parts) + "]", j + 1


@lru_cache(maxsize=512)
def glob_to_regex(pattern: str) -> str:
    """Compile a relative glob pattern into an anchored regex string.

    Example:
        >>> re.fullmatch(glob_to_regex("**/*.txt"), "a/b/c.txt") is not None
        True
    """
    out: list[str] = []
    depth = 0
    wildcards = 0
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            wildcards += 1
            if pattern.startswith("**", i):
                j = i
                while j < n and pattern[j] == "*":
                    j += 1
                at_start = i == 0 or pattern[i - 1] == "/"
                if at_start and j < n and pattern[j] == "/":
                    out.append("(?:.*/)?")
                    i = j + 1
                    continue
                if at_start and j == n:
                    out.append(".*")
                    i = j
                    continue
                out.append("[^/]*")
                i = j
                continue
            out.append("[^/]*")
            while i < n and pattern[i] == "*":
                i += 1
            continue
        if ch == "?":
            wildcards += 1
            out.append("[^/]")
        elif ch == "[":
            translated = _class(pattern, i)
            if translated is None:
                out.append("\\[")
            else:
                out.append(translated[0])
                i = translated[1]
                continue
        elif ch == "{":
            depth += 1
            if depth > MAX_BRACE_DEPTH:
                raise PatternError(errors.invalid_glob(pattern, "braces nest too deeply"))
            out.append("(?:")
        elif ch == "}" and depth > 0:
            depth -= 1
            out.append(")")
        elif ch == "," and depth > 0:
            out.append("|")
        else:
            out.append(_escape(ch))
        i += 1
        if wildcards > MAX_WILDCARDS:
            raise PatternError(
                errors.invalid_glob(pattern, f"it has more than {MAX_WILDCARDS} wildcards")
            )
    if depth:
        raise PatternError(errors.invalid_glob(pattern, "a '{' is never closed"))
    return "".join(out)


@dataclass(frozen=True, slots=True)
class GlobQuery:
    """A validated glob: the directory to search and the regex for paths relative to it."""

    base: str
    regex: str
    compiled: re.Pattern[str]

    def matches(self, path: str) -> bool:
        """Whether a normalised virtual path below ``base`` matches."""
        rel = relative_to(path, self.base)
        return rel is not None and self.compiled.fullmatch(rel) is not None


def relative_to(path: str, base: str) -> str | None:
    """``path`` relative to directory ``base`` (no leading slash), or None if outside."""
    if base == "/":
        return path[1:]
    if path.startswith(base + "/"):
        return path[len(base) + 1 :]
    return None


def compile_glob(pattern: object, base: str) -> GlobQuery:
    """Validate ``pattern`` for a search under normalised directory ``base``.

    Raises:
        PatternError: with a message for the model.
    """
    if not isinstance(pattern, str) or pattern == "":
        raise PatternError(errors.invalid_glob(str(pattern), "it is empty"))
    if len(pattern) > MAX_PATTERN_CHARS:
        raise PatternError(
            errors.invalid_glob(pattern[:50] + "...", f"it is over {MAX_PATTERN_CHARS} chars")
        )
    if any(ord(c) < 0x20 or c == "\x7f" or c == "\\" for c in pattern):
        raise PatternError(
            errors.invalid_glob(pattern, "it contains a control character or backslash")
        )
    rel = pattern
    if rel.startswith("/"):
        rel = rel.lstrip("/")
        prefix = base.lstrip("/")
        if prefix:
            if not (rel + "/").startswith(prefix + "/"):
                # An absolute pattern outside the search directory matches nothing here.
                return GlobQuery(base, "(?!)", re.compile("(?!)"))
            rel = rel[len(prefix) :].lstrip("/")
        if rel == "":
            rel = "**"
    segments = rel.split("/")
    if ".." in segments:
        raise PatternError(errors.invalid_glob(pattern, "'..' segments are not allowed"))
    if "/" not in rel and not pattern.startswith("/"):
        rel = "**/" + rel
    regex = glob_to_regex(rel)
    return GlobQuery(base, regex, re.compile(regex))


def check_grep_pattern(pattern: object) -> str | None:
    """The model-facing error for an unusable grep literal, or None if it is fine."""
    if not isinstance(pattern, str) or pattern == "":
        return "Error: grep needs a non-empty pattern (it searches for literal text)."
    if len(pattern) > MAX_GREP_CHARS:
        return f"Error: the grep pattern is over {MAX_GREP_CHARS} characters; search for less."
    if "\n" in pattern:
        return "Error: grep matches within one line; the pattern cannot contain a line break."
    if any(ord(c) < 0x20 and c != "\t" for c in pattern):
        return "Error: the grep pattern contains a control character; search for plain text."
    return None
