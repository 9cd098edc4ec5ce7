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

import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

from deepmemory import errors

MAX_PATTERN_CHARS = 1000
MAX_WILDCARDS = 32
MAX_BRACE_DEPTH = 8
MAX_GREP_CHARS = 10_000
# A grep answers at most this many matching lines (its result then says there are
# more); stores are asked for one more, so they never read or send the rest.
MAX_GREP_MATCHES = 10_000
NEVER = "(?!)"  # a regex that matches nothing


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
    # As fnmatch reads a class: X-Y is a range; a '-' first, last or right after a
    # range is itself. Every character is escaped, so both regex engines agree.
    parts = []
    k = 0
    while k < len(body):
        if k + 2 < len(body) and body[k + 1] == "-":
            lo, hi = body[k], body[k + 2]
            if lo > hi or lo <= "/" <= hi:
                raise PatternError(
                    errors.invalid_glob(
                        pattern, f"the range {lo}-{hi} in [{body}] is reversed or spans '/'"
                    )
                )
            parts.append(f"{_class_char(lo)}-{_class_char(hi)}")
            k += 3
        else:
            parts.append(_class_char(body[k]))
            k += 1
    return ("[^/" if negate else "[") + "".join(parts) + "]", j + 1


def _class_char(ch: str) -> str:
    """One character inside a regex class, literal in Python ``re`` and PostgreSQL ARE."""
    return "\\" + ch if ch.isascii() and not ch.isalnum() else ch


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

    def matches(self, path: str) -> bool:
        """Whether a normalised virtual path below ``base`` matches."""
        rel = relative_to(path, self.base)
        return rel is not None and fullmatch(self.regex, rel)


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
    # Paths are stored in NFC (``paths``): a pattern typed in NFD must find them too.
    pattern = unicodedata.normalize("NFC", pattern)
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
                return GlobQuery(base, NEVER)
            rel = rel[len(prefix) :].lstrip("/")
        if rel == "":
            rel = "**"
    segments = rel.split("/")
    if ".." in segments:
        raise PatternError(errors.invalid_glob(pattern, "'..' segments are not allowed"))
    if "/" not in rel and not pattern.startswith("/"):
        rel = "**/" + rel
    return GlobQuery(base, glob_to_regex(rel))


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


# -- matching without backtracking ------------------------------------------------------
#
# Python's ``re`` backtracks: ``[^/]*a[^/]*a[^/]*a[^/]*b`` against a long name takes
# seconds to minutes. The regexes above use a tiny subset of regex syntax, so they are
# matched here by simulating a Thompson NFA instead: time linear in the text for a
# given pattern, whatever the pattern. (PostgreSQL's engine needs no such help.)


class _State:
    __slots__ = ("test", "out", "alt")

    def __init__(self, test: Callable[[str], bool] | None = None) -> None:
        self.test = test  # None: a split (epsilon) state, or the final state
        self.out: _State | None = None
        self.alt: _State | None = None


_Frag = tuple[_State, list[tuple[_State, str]]]


def _patch(outs: list[tuple[_State, str]], target: _State) -> None:
    for state, attr in outs:
        setattr(state, attr, target)


class _Parser:
    """Regex (our subset) -> NFA fragments."""

    def __init__(self, regex: str) -> None:
        self.regex = regex
        self.i = 0

    def peek(self) -> str:
        return self.regex[self.i] if self.i < len(self.regex) else ""

    def alternation(self) -> _Frag:
        frags = [self.sequence()]
        while self.peek() == "|":
            self.i += 1
            frags.append(self.sequence())
        frag = frags[0]
        for other in frags[1:]:
            split = _State()
            split.out, split.alt = frag[0], other[0]
            frag = (split, frag[1] + other[1])
        return frag

    def sequence(self) -> _Frag:
        start = _State()  # an epsilon state heads every sequence, even an empty one
        outs: list[tuple[_State, str]] = [(start, "out")]
        while self.peek() not in ("", "|", ")"):
            frag = self.quantified()
            _patch(outs, frag[0])
            outs = frag[1]
        return start, outs

    def quantified(self) -> _Frag:
        frag = self.atom()
        op = self.peek()
        if op == "*":
            self.i += 1
            split = _State()
            split.out = frag[0]
            _patch(frag[1], split)
            return split, [(split, "alt")]
        if op == "?":
            self.i += 1
            split = _State()
            split.out = frag[0]
            return split, [*frag[1], (split, "alt")]
        return frag

    def atom(self) -> _Frag:
        ch = self.peek()
        if self.regex.startswith("(?!)", self.i):
            self.i += 4
            dead = _State(lambda c: False)
            return dead, [(dead, "out")]
        if self.regex.startswith("(?:", self.i):
            self.i += 3
            frag = self.alternation()
            self.i += 1  # ")"
            return frag
        if ch == "[":
            return self.char(self.char_class())
        self.i += 1
        if ch == ".":
            return self.char(lambda c: True)
        if ch == "\\":
            ch = self.peek()
            self.i += 1
        return self.char(ch.__eq__)

    def char_class(self) -> Callable[[str], bool]:
        self.i += 1  # "["
        negate = self.peek() == "^"
        if negate:
            self.i += 1
        # (character, escaped): only an unescaped '-' between two members is a range.
        members: list[tuple[str, bool]] = []
        while self.peek() != "]" or not members:
            ch, escaped = self.peek(), False
            if ch == "\\":
                self.i += 1
                ch, escaped = self.peek(), True
            members.append((ch, escaped))
            self.i += 1
        self.i += 1  # "]"
        singles: set[str] = set()
        ranges: list[tuple[str, str]] = []
        k = 0
        while k < len(members):
            if k + 2 < len(members) and members[k + 1] == ("-", False):
                ranges.append((members[k][0], members[k + 2][0]))
                k += 3
            else:
                singles.add(members[k][0])
                k += 1

        def test(c: str) -> bool:
            hit = c in singles or any(lo <= c <= hi for lo, hi in ranges)
            return hit != negate

        return test

    @staticmethod
    def char(test: Callable[[str], bool]) -> _Frag:
        state = _State(test)
        return state, [(state, "out")]


@lru_cache(maxsize=512)
def _compile_nfa(regex: str) -> _State:
    start, outs = _Parser(regex).alternation()
    _patch(outs, _State())  # the final state: no test, no way out
    return start


def _closure(states: Iterable[_State]) -> list[_State]:
    seen: set[int] = set()
    stack = list(states)
    found = []
    while stack:
        state = stack.pop()
        if id(state) in seen:
            continue
        seen.add(id(state))
        if state.test is None and (state.out is not None or state.alt is not None):
            stack.extend(s for s in (state.out, state.alt) if s is not None)
        else:
            found.append(state)
    return found


def fullmatch(regex: str, text: str) -> bool:
    """Whether ``text`` matches ``regex`` (from ``glob_to_regex``) entirely, in linear time."""
    current = _closure([_compile_nfa(regex)])
    for c in text:
        current = _closure(s.out for s in current if s.test is not None and s.test(c) and s.out)
        if not current:
            return False
    return any(s.test is None and s.out is None and s.alt is None for s in current)
