"""paths.validate: the one gate every path passes, tested by table and by property."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from deepmemory import paths
from deepmemory.errors import InvalidPathError


@pytest.mark.parametrize(
    "raw, normal",
    [
        ("/", "/"),
        ("/a", "/a"),
        ("/a/", "/a"),
        ("//a//b/", "/a/b"),
        ("/a/./b", "/a/b"),
        ("/caf\u0065\u0301.txt", "/caf\u00e9.txt"),
    ],
)
def test_valid_paths_normalise(raw, normal):
    assert paths.validate(raw) == normal


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "a",
        "./a",
        "/..",
        "/a/../b",
        "/a/..",
        "/a\\b",
        "/a\x00",
        "/a\x1fb",
        "/a\x7f",
        "/a\u0085",
        "/\uff0e\uff0e/x",
        "/a\uff0fb",
        "/" + "a" * 256,
        "/" + "a/" * 600,
        None,
        3,
    ],
)
def test_hostile_paths_are_refused_with_a_message(raw):
    with pytest.raises(InvalidPathError, match="^Error: invalid path"):
        paths.validate(raw)


def test_a_file_path_cannot_be_the_root_or_end_in_a_slash():
    for raw in ("/", "/a/"):
        with pytest.raises(InvalidPathError):
            paths.validate_file(raw)


@given(st.text(max_size=300))
def test_any_text_either_normalises_to_a_safe_path_or_is_refused(raw):
    try:
        normal = paths.validate(raw)
    except InvalidPathError as exc:
        assert str(exc).startswith("Error:")
        return
    assert normal.startswith("/")
    assert ".." not in normal.split("/") and "\\" not in normal and "\x00" not in normal
    assert normal == unicodedata.normalize("NFC", normal)
    assert paths.validate(normal) == normal  # idempotent


# Mostly valid paths and their near misses: absolute (now and then relative or with a
# doubled or trailing slash), segments that are plain, dotted, NFD or NFC, '..', '.',
# empty, fullwidth dots that read as '..', a backslash.
_GOOD = ["a", "b", "memories", "notes.txt", "\u00e9", "e\u0301", "a-b", "x y", ".a", ".", ""]
_BAD = ["..", "\uff0e\uff0e", "a\\b", "\u2024\u2024"]
_PIECES = st.sampled_from(_GOOD * 6 + _BAD)


@st.composite
def near_paths(draw: st.DrawFn) -> str:
    lead = draw(st.sampled_from(["/", "/", "/", "/", "//", ""]))
    trail = draw(st.sampled_from(["", "", "", "/"]))
    return lead + "/".join(draw(st.lists(_PIECES, max_size=6))) + trail


def _expected(raw: str) -> str | None:
    """The normal form by the documented rules, written independently; None: refused."""
    if not raw.startswith("/") or "\\" in raw:
        return None
    segments = [s for s in unicodedata.normalize("NFC", raw).split("/") if s not in ("", ".")]
    for segment in segments:
        folded = unicodedata.normalize("NFKC", segment)
        if segment == ".." or folded in (".", "..") or "/" in folded:
            return None
    return "/" + "/".join(segments)


@given(near_paths())
def test_near_valid_paths_normalise_exactly_as_documented(raw):
    expected = _expected(raw)
    event("valid" if expected is not None else "refused")
    if expected is None:
        with pytest.raises(InvalidPathError, match="^Error: invalid path"):
            paths.validate(raw)
    else:
        assert paths.validate(raw) == expected
        assert paths.validate(expected) == expected


@given(st.lists(st.sampled_from(["a", "b", "..", ".", "", "memories", "\u00e9"]), max_size=8))
def test_no_combination_of_segments_climbs_out_of_a_directory(segments):
    raw = "/memories/" + "/".join(segments)
    try:
        normal = paths.validate(raw)
    except InvalidPathError:
        return
    assert paths.is_within(normal, "/memories")


# -- glob matching: linear time, and the same answers as Python's re ----------------------

import re  # noqa: E402

from deepmemory.backends._match import PatternError, compile_glob, fullmatch, glob_to_regex  # noqa: E402


@given(
    st.text(alphabet="ab*?/[]!{},.-", min_size=1, max_size=12),
    st.text(alphabet="ab/.-", max_size=12),
)
def test_the_linear_matcher_agrees_with_python_re(pattern, name):
    try:
        regex = compile_glob(pattern, "/").regex
    except PatternError:
        return
    assert fullmatch(regex, name) == (re.fullmatch(regex, name) is not None)


def test_a_pathological_glob_is_answered_without_backtracking():
    # Python's re needs minutes for this; the NFA simulation is linear in the name.
    regex = glob_to_regex("*a*a*a*a*a*a*a*b")
    assert not fullmatch(regex, "a" * 255)
    assert fullmatch(regex, "a" * 254 + "b")


@pytest.mark.parametrize("bad", ["[z-a]", "[.-0]", "x[!--0]"])
def test_reversed_ranges_and_ranges_across_a_slash_are_refused(bad):
    with pytest.raises(PatternError, match="reversed or spans"):
        compile_glob(bad, "/")


@pytest.mark.parametrize("invisible", ["\u200b", "\u202e", "\u2028", "\ufeff", "\u2060"])
def test_invisible_characters_that_make_two_paths_look_alike_are_refused(invisible):
    with pytest.raises(InvalidPathError, match="invisible or format character"):
        paths.validate(f"/memories/instruc{invisible}tions.txt")
