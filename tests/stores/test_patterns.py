"""Globs evaluated by SQLite's GLOB agree with the Python matcher, ``_match.fullmatch``."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from deepmemory.backends._match import PatternError, compile_glob, fullmatch, glob_to_regex
from deepmemory.stores._patterns import (
    fixed_length,
    name_part,
    sqlite_glob_condition,
    sqlite_glob_prefilter,
)

_DB = sqlite3.connect(":memory:")


def _holds(condition: str, params: dict[str, str], rel: str) -> bool:
    bound = {**params, "rel": rel, "name": rel.rsplit("/", 1)[-1]}
    return bool(_DB.execute(f"SELECT {condition}", bound).fetchone()[0])


def _agrees(regex: str, rel: str) -> bool:
    """Assert that what SQLite computes agrees with fullmatch; whether it was exact."""
    expected = fullmatch(regex, rel)
    exact = sqlite_glob_condition(regex, ":rel", ":name")
    if exact is not None:
        assert _holds(*exact, rel) == expected, (regex, rel, exact)
    if expected:
        assert _holds(*sqlite_glob_prefilter(regex, ":rel"), rel), (regex, rel)
    part = name_part(regex)
    if part is not None:
        name = rel.rsplit("/", 1)[-1]
        assert fullmatch(part, name) == expected, (regex, rel, part)
        length = fixed_length(part)
        if expected and length is not None:
            assert len(name) == length, (part, name)
    return exact is not None


# -- a grammar of globs, each drawn with a text that (nearly) matches it -----------------

# (glob text, the text it matches)
_LITERALS = [
    ("a", "a"),
    ("b", "b"),
    (".", "."),
    ("-", "-"),
    ("_", "_"),
    ("é", "é"),
    ("f1", "f1"),
    ("md", "md"),
    ("]", "]"),
    ("^", "^"),
    ("[*]", "*"),
    ("[?]", "?"),
    ("[[]", "["),
]
# Glob classes; drawn texts take characters from _CHARS: members, others and '/'.
_CLASSES = [
    "[ab]",
    "[!a]",
    "[^b]",
    "[a-c]",
    "[!a-c.]",
    "[.-]",
    "[-a]",
    "[]a]",
    "[!]]",
    "[!-]",
    "[+--]",
    "[é-ü]",
    "[!^]",
    "[]-a]",
    "[].]",
    "[a^]",
    "[+a-]",
    "[!#z-]",
]
_CHARS = "abcd.-]^é+/x*"
_SEGMENT = st.text(alphabet="ab.f1/", max_size=3)  # '/' now and then: a near miss
_DIRS = st.lists(st.sampled_from(["a", "b", "f1", "a.b", ""]), max_size=3).map(
    lambda dirs: "".join(d + "/" for d in dirs)
)
_KINDS = ["literal", "literal", "*", "?", "/", "/", "**/", "**", "class", "braces"]


@st.composite
def _glob_and_text(draw: st.DrawFn, depth: int = 0) -> tuple[str, str]:
    globs: list[str] = []
    texts: list[str] = []
    for _ in range(draw(st.integers(0, 5 if depth == 0 else 3))):
        kind = draw(st.sampled_from(_KINDS if depth < 2 else _KINDS[:-1]))
        if kind == "literal":
            glob, text = draw(st.sampled_from(_LITERALS))
        elif kind == "*":
            glob, text = "*", draw(_SEGMENT)
        elif kind == "?":
            glob, text = "?", draw(st.sampled_from(_CHARS))
        elif kind == "/":
            glob, text = "/", "/"
        elif kind == "**/":
            glob, text = "**/", draw(_DIRS)
        elif kind == "**":
            glob, text = "**", draw(st.text(alphabet="ab./", max_size=5))
        elif kind == "class":
            glob, text = draw(st.sampled_from(_CLASSES)), draw(st.sampled_from(_CHARS))
        else:
            options = draw(st.lists(_glob_and_text(depth + 1), min_size=1, max_size=3))
            glob = "{" + ",".join(g for g, _ in options) + "}"
            text = draw(st.sampled_from([t for _, t in options]))
        globs.append(glob)
        texts.append(text)
    return "".join(globs), "".join(texts)


@st.composite
def _glob_and_path(draw: st.DrawFn) -> tuple[str, str]:
    glob, text = draw(_glob_and_text())
    change = draw(st.sampled_from(["none", "none", "slash", "slash", "drop", "add", "other"]))
    at = draw(st.integers(0, len(text)))
    if change == "slash":  # an extra '/' is what a '*' that crosses directories accepts
        text = text[:at] + "/" + text[at:]
    elif change == "drop":
        text = text[:at] + text[at + 1 :]
    elif change == "add":
        text = text[:at] + draw(st.sampled_from(_CHARS)) + text[at:]
    elif change == "other":
        text = "".join(draw(st.lists(st.sampled_from(["a", "b", ".", "/", "f1", "md"]))))
    return glob, text


@settings(max_examples=600, deadline=None)
@given(_glob_and_path())
def test_the_glob_condition_is_exact_and_the_prefilter_a_superset(glob_and_path):
    glob, path = glob_and_path
    try:
        regexes = [glob_to_regex(glob), compile_glob(glob, "/").regex]
    except PatternError:
        assume(False)
    for regex in regexes:
        exact = _agrees(regex, path)
        event(f"exact={exact} match={fullmatch(regex, path)}")  # --hypothesis-show-statistics


# -- the shapes agents write -------------------------------------------------------------

_PATHS = [
    "f1x.md",
    "a/f1x.md",
    "a/b/f1/.md",
    "f1/x.md",
    "notes/a.txt",
    "notes/x/a.txt",
    "notes/.txt",
    "a/b/c.md",
    "a/b/x/c.md",
    "a/x/y/b/c.md",
    "a/xb/c.md",
    "a/b/c/d.md",
    "b/z.md",
    "c/b/z.md",
    "x.md",
    "y.md",
    "d/y.md",
    "milestone-1.md",
    "d/milestone-.md",
    "milestone/x.md",
    "[draft].md",
    "d/[draft].md",
    "srcx/y/x.md",
    "src/x.md",
    "a1.md",
    "e4.md",
    "",
]


@pytest.mark.parametrize(
    ("glob", "exact"),
    [
        ("**/f1?.md", True),
        ("*.md", True),
        ("notes/*.txt", True),
        ("a/**/b/*.md", True),
        ("**", True),
        ("a/**", True),
        ("{a,b}/*.md", True),
        ("[!x]*.md", True),
        ("milestone-*.md", True),
        ("[[]draft].md", True),
        ("a/**/b/**/*.md", True),
        ("src*/**/x.md", False),  # a '*' before a '**'
        ("{a,b,c,d,e}{1,2,3,4}.md", False),  # 20 alternatives
    ],
)
def test_common_shapes_translate_exactly_or_fall_back(glob, exact):
    regex = compile_glob(glob, "/").regex
    assert (sqlite_glob_condition(regex, ":rel", ":name") is not None) is exact
    assert any(fullmatch(regex, path) for path in _PATHS)  # each shape is really tested
    for path in _PATHS:
        _agrees(regex, path)


def test_a_name_glob_is_one_comparison_on_the_name():
    regex = compile_glob("**/f1?.md", "/").regex
    assert sqlite_glob_condition(regex, "rel", "name") == ("name GLOB :g0", {"g0": "f1[^/].md"})
    assert sqlite_glob_condition(compile_glob("*.md", "/").regex, "rel", "name", param="q") == (
        "name GLOB :q0",
        {"q0": "*.md"},
    )
    assert sqlite_glob_condition(compile_glob("x.md", "/").regex, "rel", "name") == (
        "name = :g0",
        {"g0": "x.md"},
    )


def test_a_star_that_must_not_cross_a_directory_counts_the_slashes():
    regex = compile_glob("notes/*.txt", "/").regex
    condition = sqlite_glob_condition(regex, ":rel", ":name")
    assert condition is not None
    assert _holds(*condition, "notes/a.txt")
    assert not _holds(*condition, "notes/x/a.txt")  # GLOB alone would accept it


def test_pattern_text_is_bound_never_written_into_the_sql():
    glob = "x' OR 1=1 OR 'y*/*.md"
    condition = sqlite_glob_condition(compile_glob(glob, "/").regex, ":rel", ":name")
    assert condition is not None
    sql, params = condition
    assert "1=1" not in sql and "1=1" in "".join(params.values())
    assert _holds(sql, params, "x' OR 1=1 OR 'yz/a.md")
    assert not _holds(sql, params, "a/b.md")


def test_a_pattern_that_matches_nothing_is_false():
    regex = compile_glob("/elsewhere/*.md", "/here").regex
    assert sqlite_glob_condition(regex, ":rel", ":name") == ("0", {})
    assert sqlite_glob_prefilter(regex, ":rel") == ("0", {})


def test_the_prefilter_keeps_the_literal_characters():
    assert sqlite_glob_prefilter(r"a/(?:.*/)?x(?:.*/)?y[^/]*z", "rel") == (
        "rel GLOB :p0",
        {"p0": "a/*x*y*z"},
    )
    assert sqlite_glob_prefilter(r"(?:a|b)/[^/]*\.md", "rel") == (
        "(rel GLOB :p0 OR rel GLOB :p1)",
        {"p0": "a/*.md", "p1": "b/*.md"},
    )
    assert sqlite_glob_prefilter(".*", "rel") == ("1", {})
    assert sqlite_glob_prefilter("(?:a", "rel") == ("1", {})  # not our subset


@pytest.mark.parametrize("glob_class", _CLASSES)
def test_every_class_means_in_glob_what_it_means_to_the_matcher(glob_class):
    regex = glob_to_regex(glob_class)
    # A range ending in '-' or ']' is one GLOB would read differently: left to Python.
    exact = glob_class not in ("[+--]", "[]-a]")
    assert (sqlite_glob_condition(regex, ":rel", ":name") is not None) is exact
    for ch in _CHARS + "!#AZ[\\`":
        _agrees(regex, ch)


@pytest.mark.parametrize(
    "regex", [r"x(?:.*/)?y[^/]*", r"x(?:.*/)?[^/]*", r"(?:.*/)?x/[^/]*(?:.*/)?y", r"[^/]*\.md"]
)
def test_written_regexes_outside_what_globs_produce_stay_exact(regex):
    for path in ["xy", "xa/y", "x/y", "xz/yb", "x/a/y", "x/ab/y", "x", "x/", "a.md", "a/b.md"]:
        _agrees(regex, path)


def test_syntax_outside_the_subset_is_not_translated():
    for regex in ["a+", "(?:a", "a)", ".", "a{2}", "(?=a)", "[ab"]:
        assert sqlite_glob_condition(regex, "rel", "name") is None, regex


@pytest.mark.parametrize(
    ("regex", "part", "length"),
    [
        (r"(?:.*/)?f1[^/]\.md", r"f1[^/]\.md", 6),
        (r"(?:.*/)?[^/]*\.md", r"[^/]*\.md", None),
        (r"(?:.*/)?(?:ab|cd)\.md", r"(?:ab|cd)\.md", 5),
        (r"(?:.*/)?(?:ab|c)\.md", r"(?:ab|c)\.md", None),
        (r"(?:.*/)?[^/x]", "[^/x]", 1),
        (r"notes/[^/]*\.txt", None, None),
        (r"(?:.*/)?a/b", None, None),
        (r"(?:.*/)?(?:a|b/c)", None, None),
        (r"(?:.*/)?(?:.*/)?a", None, None),
        (".*", None, None),
    ],
)
def test_name_part_and_fixed_length_answer_as_documented(regex, part, length):
    assert name_part(regex) == part
    if part is not None:
        assert fixed_length(part) == length
