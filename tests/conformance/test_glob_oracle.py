"""Glob answers equal an independent oracle on every engine, for generated patterns.

The oracle is Python's ``fnmatch`` applied segment by segment: ``*``, ``?`` and
classes never cross a ``/`` (each segment is matched alone), a ``**`` segment stands
for any number of directories (at the end of a pattern, for at least one segment),
and a pattern without ``/`` matches file names at any depth. Patterns and paths are
compared in NFC, as paths are stored. The strategies produce mostly valid patterns
over the characters that make globs hard (``-``, ``]``, ``!`` inside classes, dots,
NFD and NFC forms of the same letter) and some near misses (``..`` segments, reversed
ranges, unterminated classes); a pattern the glob language refuses must come back as
an ``Error:`` message, never as an exception.
"""

from __future__ import annotations

import fnmatch
import unicodedata
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langgraph.store.memory import InMemoryStore

from deepmemory.backends import StoreBackend
from deepmemory.backends._match import PatternError, compile_glob
from deepmemory.stores import PostgresStore, SQLiteStore
from tests.conftest import postgres_url

# Names mix the characters glob classes treat specially; "e\u0301" is written in NFD
# and stored as "é".
NAMES = ["a", "b", "-", "]", "!", "a-b", "b]", "!a", ".a", "a.b", "é", "e\u0301x", "ab", "x"]
DIRS = ["", "/a", "/b", "/a/b", "/-", "/é", "/a/-/b"]
FILES = sorted({f"{d}/{n}" for d in DIRS for n in NAMES})


@pytest.fixture(scope="module", params=["memory", "sqlite", "postgres"])
def backend(request, tmp_path_factory) -> Iterator[StoreBackend]:
    store = (
        InMemoryStore()
        if request.param == "memory"
        else SQLiteStore(tmp_path_factory.mktemp("oracle") / "memory.db")
        if request.param == "sqlite"
        else PostgresStore(connection_string=postgres_url())
    )
    fs = StoreBackend(store=store, namespace=("glob-oracle", uuid.uuid4().hex))
    for path in FILES:
        assert fs.write(path, "x\n").error is None, path
    yield fs
    if request.param != "memory":
        store.close()


STORED = sorted({unicodedata.normalize("NFC", p) for p in FILES})


def oracle(pattern: str) -> list[str]:
    """The stored paths ``pattern`` matches from the root, by fnmatch per segment."""
    pattern = unicodedata.normalize("NFC", pattern)
    parts = pattern.split("/") if "/" in pattern else ["**", pattern]
    return [p for p in STORED if _segments(parts, p[1:].split("/"))]


def _segments(parts: list[str], names: list[str]) -> bool:
    if not parts:
        return not names
    if len(parts[0]) > 1 and parts[0] == "*" * len(parts[0]):  # '**' (or more stars)
        rest = parts[1:]
        least = 0 if rest else 1  # a trailing '**' stands for at least one segment
        return any(_segments(rest, names[k:]) for k in range(least, len(names) + 1))
    return (
        bool(names) and fnmatch.fnmatchcase(names[0], parts[0]) and _segments(parts[1:], names[1:])
    )


_CLASSES = st.sampled_from(
    ["[a-b]", "[!a]", "[!-x]", "[-a]", "[a-]", "[]a]", "[!]]", "[a-b-c]", "[.-]", "[é]", "[!é-]"]
)
_PIECES = st.one_of(
    st.sampled_from(["a", "b", "-", "]", "!", ".", "é", "e\u0301", "x", "ab", "a-b"]),
    st.sampled_from(["*", "?", "*", "[", "[!", "]"]),
    _CLASSES,
)
_SEGMENT = st.lists(_PIECES, min_size=1, max_size=4).map("".join)
_NEAR_MISS = st.sampled_from(["..", "[z-a]", "[!b-a]", "a/../b"])


@st.composite
def glob_patterns(draw: st.DrawFn) -> str:
    """Mostly valid globs, sometimes a near miss."""
    if draw(st.integers(0, 19)) == 0:
        return draw(_NEAR_MISS)
    segments = draw(
        st.lists(st.one_of(_SEGMENT, _SEGMENT, _SEGMENT, st.just("**")), min_size=1, max_size=3)
    )
    return "/".join(segments)


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(pattern=glob_patterns())
def test_glob_answers_equal_the_oracle(backend, pattern):
    result = backend.glob(pattern, "/")
    try:
        compile_glob(pattern, "/")
    except PatternError:
        assert result.files == [] and (result.error or "").startswith("Error:"), result
        return
    assert result.error is None, result.error
    assert sorted(f.path for f in result.files) == oracle(pattern), pattern


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(pattern=glob_patterns(), literal=st.text(max_size=6))
def test_no_glob_or_grep_pattern_makes_a_backend_raise(backend, pattern, literal):
    for result in (
        backend.glob(pattern, "/a"),
        backend.grep(literal or "x", "/", glob=pattern),
        backend.grep(literal, "/a"),
    ):
        assert result.error is None or result.error.startswith("Error:"), result.error


def test_the_oracle_reads_classes_as_fnmatch_and_depth_as_documented():
    one_char = [p for p in STORED if len(p.rsplit("/", 1)[1]) == 1]
    assert oracle("[!-x]") == [p for p in one_char if p.rsplit("/", 1)[1] not in "-x"]
    assert "/a/b/a" in oracle("a/**") and "/a" not in oracle("a/**")
    assert "/a/b" in oracle("a/**/b") and "/a/-/b/b" in oracle("a/**/b")
