r"""Glob regexes evaluated by SQLite's own ``GLOB`` operator: exactly, or not at all.

``_match.glob_to_regex`` compiles a glob into a regex over the path relative to the
search directory, using literals, classes (``[^/]`` is ``?``), ``[^/]*`` (``*``),
``(?:.*/)?`` (``**/``: whole directories), ``.*`` (a trailing ``**``), groups ``(?:x|y)``
(braces) and ``(?!)`` (nothing). Calling that matcher from SQL costs ~75 µs a row; GLOB
is far cheaper, but its ``*`` and ``?`` cross ``/`` and it has no alternation. So groups
are multiplied out (at most ``MAX_ALTERNATIVES``, joined by OR) and each alternative
takes the first of these rules that fits, each exact for the reason given:

1. ``(?:.*/)?`` + a part that matches no ``/``: ``name GLOB part``. The part must match
   the last segment, and the directories before it may be anything.
2. No ``[^/]*``: ``rel GLOB p`` for each reading of every ``(?:.*/)?`` as nothing or as
   ``*/``, with ``.*`` as ``*``: each piece becomes a GLOB piece of the same language.
3. No ``(?:.*/)?`` or ``.*``: ``rel GLOB p`` with ``[^/]*`` as ``*``, and as many ``/``
   in ``rel`` as there are literal ``/`` in the regex. Nothing else matches a ``/``, so
   the count leaves none for a ``*`` to take.
4. ``[^/]*`` only after the last ``/`` (``a/**/b/*.md``): ``name GLOB last``, and rule 2
   on the directory part (``rel`` minus ``name``). The prefix matches only text that is
   empty or ends in ``/``, and ``last`` never matches a ``/``: that split is the only one.

Anything else gives None (a ``*`` before a ``**`` as in ``src*/**/x``, more than
``MAX_DEEP`` ``**``, a class range ending in ``]``, ``^`` or ``-``, syntax outside the
subset): the caller runs the Python matcher behind ``sqlite_glob_prefilter``. Pattern
text is always bound as a named parameter, never written into the SQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import product
from typing import TypeAlias

MAX_ALTERNATIVES = 16
MAX_DEEP = 3  # '**' per alternative: rules 2 and 4 write 2**3 GLOBs
STAR, DEEP, REST, NEVER = "[^/]*", "(?:.*/)?", ".*", "(?!)"
_ABSORB = ((DEEP,), (REST,))  # what makes a '(?:.*/)?' just before it redundant
_GLOB_LITERAL = {"*": "[*]", "?": "[?]", "[": "[[]"}  # GLOB has no escape character
_TOKEN = re.compile(
    r"""\(\?:\.\*/\)\? | \(\?!\) | \[\^/\]\* | \.\* | \(\?: | \|   # markers, group syntax
    | \[\^?+(?:\\.|[^\\])(?:\\.|[^\\\]])*\]                   # a class (']' first is a member)
    | \\. | [^\\.*?+{}()\[\]^$|]                             # a literal
    """,
    re.X | re.S,
)

# A token is a literal (a 1-char str), a marker above, a class, or a group: a tuple of
# alternatives, each a tuple of tokens.
_Token: TypeAlias = "str | _Class | tuple[_Seq, ...]"
_Seq: TypeAlias = tuple[_Token, ...]


class _Unsupported(Exception):
    """The regex uses syntax outside ``glob_to_regex``'s subset."""


@dataclass(frozen=True, slots=True)
class _Class:
    negate: bool
    singles: frozenset[str]
    ranges: tuple[tuple[str, str], ...]

    def matches(self, ch: str) -> bool:
        hit = ch in self.singles or any(lo <= ch <= hi for lo, hi in self.ranges)
        return hit != self.negate


@dataclass(slots=True)
class _Params:
    """Named parameters: pattern text never enters the SQL."""

    prefix: str
    values: dict[str, str] = field(default_factory=dict)

    def bind(self, value: str) -> str:
        key = f"{self.prefix}{len(self.values)}"
        self.values[key] = value
        return ":" + key


def _parse(regex: str) -> tuple[_Seq, ...] | None:
    """The top-level alternatives of ``regex``; None for syntax outside the subset."""
    try:
        alternatives, end = _parse_group(regex, 0)
    except _Unsupported:
        return None
    return alternatives if end == len(regex) else None


def _parse_group(regex: str, i: int) -> tuple[tuple[_Seq, ...], int]:
    """The alternatives from ``regex[i]`` up to a ``)`` or the end, and where they stop."""
    alternatives: list[_Seq] = []
    seq: list[_Token] = []
    while i < len(regex) and regex[i] != ")":
        # Anything else (a quantifier on a literal, a bare '.', ...) matches no token.
        token = _TOKEN.match(regex, i)
        if token is None:
            raise _Unsupported(regex)
        text, i = token.group(), token.end()
        if text == "|":
            alternatives.append(tuple(seq))
            seq = []
        elif text == "(?:":
            group, i = _parse_group(regex, i)
            if not regex.startswith(")", i):
                raise _Unsupported(regex)
            seq.append(group)
            i += 1
        elif text.startswith("[") and text != STAR:
            seq.append(_parse_class(text))
        else:
            seq.append(text[-1] if text.startswith("\\") else text)
    return (*alternatives, tuple(seq)), i


def _parse_class(text: str) -> _Class:
    """A class token, read as ``_match`` reads it: an unescaped ``-`` makes a range."""
    negate = text.startswith("[^")
    # (character, escaped): ``_match`` escapes every punctuation member, so a bare '-'
    # between two members is a range and an escaped one is itself.
    members = [
        (esc, True) if esc else (ch, False)
        for esc, ch in re.findall(r"\\(.)|(.)", text[1 + negate : -1], re.S)
    ]
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
    return _Class(negate, frozenset(singles), tuple(ranges))


def _expand(alternatives: Sequence[_Seq]) -> list[_Seq] | None:
    """Every alternative with its groups multiplied out; None beyond ``MAX_ALTERNATIVES``."""
    out: list[_Seq] = []
    for seq in alternatives:
        partial: list[_Seq] = [()]
        for token in seq:
            options = _expand(token) if isinstance(token, tuple) else [(token,)]
            if options is None:
                return None
            partial = [done + option for done in partial for option in options]
            if len(partial) > MAX_ALTERNATIVES:
                return None
        out += partial
    return out if len(out) <= MAX_ALTERNATIVES else None


def _slash_free(seq: Sequence[_Token]) -> bool:
    """Whether no token of ``seq`` can match a ``/``."""
    return all(
        all(_slash_free(alt) for alt in t)
        if isinstance(t, tuple)
        else not t.matches("/")
        if isinstance(t, _Class)
        else t in (STAR, NEVER) or (len(t) == 1 and t != "/")
        for t in seq
    )


def _glob_class(cls: _Class) -> str | None:
    """``cls`` in GLOB syntax, or None for ranges GLOB would read differently."""
    if any(end in "]^-" for pair in cls.ranges for end in pair):
        return None
    if not cls.negate and not cls.ranges and len(cls.singles) == 1:
        return next(_GLOB_LITERAL.get(ch, ch) for ch in cls.singles)
    # GLOB reads ']' as a member only first, '^' as negation only first, '-' as a
    # range unless last: so put them there.
    body = "]" if "]" in cls.singles else ""
    body += "".join(sorted(cls.singles - {"]", "^", "-"}))
    body += "".join(lo + "-" + hi for lo, hi in cls.ranges)
    body += ("^" if "^" in cls.singles else "") + ("-" if "-" in cls.singles else "")
    if not cls.negate and body.startswith("^"):
        body = body[::-1]  # the class is {'^', '-'}: a leading '-' is literal too
    return ("[^" if cls.negate else "[") + body + "]"


def _glob(seq: Sequence[_Token], *, loose: bool = False) -> str | None:
    """GLOB text for ``seq``, ``*`` for ``[^/]*`` and ``.*``; ``loose``: a superset."""
    out: list[str] = []
    for token in seq:
        if isinstance(token, _Class):
            piece = _glob_class(token) or ("?" if loose else None)
        elif isinstance(token, tuple) or token == DEEP:  # a group or '**/'
            piece = "*" if loose else None
        else:
            piece = "*" if token in (STAR, REST) else _GLOB_LITERAL.get(token, token)
        if piece is None:
            return None
        if not (piece == "*" and out[-1:] == ["*"]):
            out.append(piece)
    return "".join(out)


def _compare(expr: str, seq: Sequence[_Token], params: _Params) -> str | None:
    """``expr = text`` when ``seq`` is all literals (an index can serve it), else GLOB.

    ``=`` is as case-sensitive as GLOB under SQLite's default (BINARY) collation.
    """
    if all(isinstance(t, str) and len(t) == 1 for t in seq):
        return f"{expr} = {params.bind(''.join(map(str, seq)))}"
    pattern = _glob(seq)
    return None if pattern is None else f"{expr} GLOB {params.bind(pattern)}"


def _deep_cases(seq: _Seq) -> Iterator[_Seq]:
    """``seq`` with each ``(?:.*/)?`` read as nothing, then as ``.*/``."""
    options = [((), (REST, "/")) if token == DEEP else ((token,),) for token in seq]
    for choice in product(*options):
        yield tuple(token for piece in choice for token in piece)


def _any_of(terms: Sequence[str | None]) -> str | None:
    if any(term is None for term in terms):
        return None
    if len(terms) < 2:
        return terms[0] if terms else "0"
    return "(" + " OR ".join(map(str, terms)) + ")"


def _exact(seq: _Seq, rel: str, name: str, params: _Params) -> str | None:
    """One group-free alternative as exact SQL (the rules of the module docstring)."""
    # '(?:.*/)?' before another one or before '.*' adds nothing.
    seq = tuple(t for i, t in enumerate(seq) if t != DEEP or seq[i + 1 : i + 2] not in _ABSORB)
    if seq[:1] == (DEEP,) and _slash_free(seq[1:]):
        return _compare(name, seq[1:], params)  # rule 1
    if seq.count(DEEP) + (REST in seq) > MAX_DEEP:
        return None
    if STAR not in seq:  # rule 2
        return _any_of([_compare(rel, case, params) for case in _deep_cases(seq)])
    if DEEP not in seq and REST not in seq:  # rule 3
        if not _slash_free([t for t in seq if t != "/"]):
            return None
        slashes = f"length({rel}) - length(replace({rel}, '/', ''))"
        on_rel = _compare(rel, seq, params)
        return None if on_rel is None else f"({on_rel} AND {slashes} = {seq.count('/')})"
    if REST in seq[:-1]:
        return None
    if seq[-1] == REST:  # '.*' is '(?:.*/)?[^/]*'
        seq = seq[:-1] + (DEEP, STAR)
    cut = max(i for i, t in enumerate(seq) if t in ("/", DEEP))  # rule 4
    prefix, last = seq[: cut + 1], seq[cut + 1 :]
    head = prefix[:-1] if prefix[-1] == DEEP else prefix
    if STAR in prefix or not _slash_free(last) or head[-1:] not in ((), ("/",)):
        return None
    dir_part = f"substr({rel}, 1, length({rel}) - length({name}))"
    on_dir = _any_of([_compare(dir_part, case, params) for case in _deep_cases(prefix)])
    on_name = _compare(name, last, params)
    return None if on_dir is None or on_name is None else f"({on_name} AND {on_dir})"


def sqlite_glob_condition(
    regex: str, rel: str, name: str, *, param: str = "g"
) -> tuple[str, dict[str, str]] | None:
    r"""SQL true exactly when ``fullmatch(regex, <rel>)`` is, using GLOB; None if it cannot be.

    ``rel`` and ``name`` are SQL expressions for the relative path and its last segment;
    the patterns come back as parameters ``:g0``, ``:g1``... (prefix ``param``).

    Example:
        >>> sqlite_glob_condition(r"(?:.*/)?[^/]*\.md", "rel", "name")
        ('name GLOB :g0', {'g0': '*.md'})
    """
    parsed = _parse(regex)
    alternatives = None if parsed is None else _expand(parsed)
    if alternatives is None:
        return None
    params = _Params(param)
    terms: list[str | None] = [
        _exact(seq, rel, name, params) for seq in alternatives if NEVER not in seq
    ]
    condition = _any_of(terms)  # each term is one comparison or parenthesised
    return None if condition is None else (condition, params.values)


def sqlite_glob_prefilter(regex: str, rel: str, *, param: str = "p") -> tuple[str, dict[str, str]]:
    r"""GLOB true for every text that fullmatches ``regex`` (a superset), to run before fullmatch.

    Every ``*``, ``**`` and group past the alternative limit becomes GLOB ``*``; the
    literal characters stay. ``1`` (true) when nothing useful is left.

    Example:
        >>> sqlite_glob_prefilter(r"a/(?:.*/)?x[^/]*", "rel")
        ('rel GLOB :p0', {'p0': 'a/*x*'})
    """
    top = _parse(regex)
    alternatives = None if top is None else _expand(top) or list(top)  # groups become '*'
    if alternatives is None or len(alternatives) > MAX_ALTERNATIVES:
        return "1", {}
    params = _Params(param)
    terms: list[str | None] = []
    for seq in alternatives:
        if NEVER in seq:
            continue
        pattern = _glob(seq, loose=True)
        if pattern is None or pattern == "*":
            return "1", {}
        terms.append(f"{rel} GLOB {params.bind(pattern)}")
    return str(_any_of(terms)), params.values


def name_part(regex: str) -> str | None:
    r"""The regex for the file name when ``regex`` is ``(?:.*/)?`` + a part without ``/``.

    Example:
        >>> name_part(r"(?:.*/)?[^/]*\.md"), name_part(r"a/[^/]*\.md")
        ('[^/]*\\.md', None)
    """
    if not regex.startswith(DEEP):
        return None
    part = regex[len(DEEP) :]
    parsed = _parse(part)  # one alternative: '(?:.*/)?a|b' is not '(?:.*/)?(?:a|b)'
    return part if parsed is not None and len(parsed) == 1 and _slash_free(parsed[0]) else None


def fixed_length(regex_part: str) -> int | None:
    r"""How many characters every match of a slash-free part has; None if that varies.

    Example:
        >>> fixed_length(r"f1[^/]\.md"), fixed_length(r"(?:ab|c)[^/]*")
        (6, None)
    """
    parsed = _parse(regex_part)
    return None if parsed is None else _length(parsed)


def _length(alternatives: Sequence[_Seq]) -> int | None:
    lengths: set[int | None] = set()
    for seq in alternatives:
        total: int | None = 0
        for token in seq:
            if isinstance(token, tuple):
                n = _length(token)
            else:  # a class or a literal is one character; a marker has no one length
                n = 1 if isinstance(token, _Class) or len(token) == 1 else None
            total = None if n is None or total is None else total + n
        lengths.add(total)
    return lengths.pop() if len(lengths) == 1 else None
