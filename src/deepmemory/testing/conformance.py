"""The backend conformance suite, shipped so any backend can prove itself.

Subclass :class:`BackendConformance` in a test module and provide a fixture ``fs``
returning a :class:`~deepmemory.testing.harness.Harness` around a fresh, empty
backend (parametrize it over sync and async). Every behaviour is written once here.

Example:
    >>> # tests/test_my_backend.py
    >>> # class TestMyBackend(BackendConformance):
    >>> #     @pytest.fixture(params=["sync", "async"])
    >>> #     def fs(self, request): return Harness(MyBackend(), mode=request.param)
"""

from __future__ import annotations

import unicodedata

import pytest

from deepmemory.testing.harness import Harness


def _paths(result: object) -> list[str]:
    entries = getattr(result, "entries", None)
    if entries is None:
        entries = result.files  # type: ignore[attr-defined]
    return [e.path for e in entries]


class BackendConformance:
    """Every operation and every error case, for one backend (``fs`` fixture)."""

    # -- write and read ------------------------------------------------------------------

    def test_a_written_file_reads_back_as_numbered_lines(self, fs: Harness) -> None:
        assert fs.write(fs.p("/notes.txt"), "one\ntwo\nthree\n").error is None
        result = fs.read(fs.p("/notes.txt"))
        assert result.error is None
        assert result.lines == ["one", "two", "three"]
        assert (result.offset, result.total_lines) == (0, 3)

    def test_read_returns_the_window_asked_for(self, fs: Harness) -> None:
        fs.write(fs.p("/n.txt"), "".join(f"line {i}\n" for i in range(1, 101)))
        result = fs.read(fs.p("/n.txt"), offset=10, limit=5)
        assert result.lines == [f"line {i}" for i in range(11, 16)]
        assert (result.offset, result.total_lines) == (10, 100)

    def test_read_past_the_end_says_how_many_lines_there_are(self, fs: Harness) -> None:
        fs.write(fs.p("/n.txt"), "a\nb\n")
        result = fs.read(fs.p("/n.txt"), offset=5)
        assert result.error is not None and "has 2 lines" in result.error

    def test_read_refuses_a_negative_offset_and_a_zero_limit(self, fs: Harness) -> None:
        fs.write(fs.p("/n.txt"), "a\n")
        assert "offset" in fs.read(fs.p("/n.txt"), offset=-1).error
        assert "limit" in fs.read(fs.p("/n.txt"), limit=0).error

    def test_write_replaces_the_whole_file(self, fs: Harness) -> None:
        fs.write(fs.p("/a.txt"), "old content\nmore\n")
        assert fs.write(fs.p("/a.txt"), "new").error is None
        assert fs.read(fs.p("/a.txt")).lines == ["new"]

    def test_an_empty_file_exists_and_has_no_lines(self, fs: Harness) -> None:
        assert fs.write(fs.p("/empty.txt"), "").error is None
        result = fs.read(fs.p("/empty.txt"))
        assert result.error is None and result.total_lines == 0
        assert fs.download_files([fs.p("/empty.txt")])[0].content == b""

    def test_a_file_without_trailing_newline_keeps_its_last_line(self, fs: Harness) -> None:
        fs.write(fs.p("/a.txt"), "x\ny")
        assert fs.read(fs.p("/a.txt")).lines == ["x", "y"]
        assert fs.download_files([fs.p("/a.txt")])[0].content == b"x\ny"

    def test_crlf_content_reads_cleanly_and_is_stored_exactly(self, fs: Harness) -> None:
        fs.write(fs.p("/win.txt"), "a\r\nb\r\n")
        assert fs.read(fs.p("/win.txt")).lines == ["a", "b"]
        assert fs.download_files([fs.p("/win.txt")])[0].content == b"a\r\nb\r\n"
        assert fs.edit(fs.p("/win.txt"), "a\r\n", "c\r\n").error is None
        assert fs.download_files([fs.p("/win.txt")])[0].content == b"c\r\nb\r\n"

    def test_unicode_paths_and_content_round_trip(self, fs: Harness) -> None:
        path = fs.p("/notes/café 日本語.txt")
        assert fs.write(path, "naïve ☕ 🚀\n").error is None
        assert fs.read(path).lines == ["naïve ☕ 🚀"]
        assert path in _paths(fs.ls(fs.p("/notes")))

    def test_nfd_and_nfc_spellings_name_the_same_file(self, fs: Harness) -> None:
        nfc = fs.p("/café.txt")
        fs.write(unicodedata.normalize("NFD", nfc), "x")
        assert fs.read(nfc).lines == ["x"]

    def test_a_missing_file_says_where_to_look(self, fs: Harness) -> None:
        error = fs.read(fs.p("/dir/nope.txt")).error
        assert error is not None
        assert repr(fs.p("/dir/nope.txt")) in error and "ls(" in error

    def test_reading_a_directory_says_it_is_a_directory(self, fs: Harness) -> None:
        fs.write(fs.p("/dir/a.txt"), "x")
        error = fs.read(fs.p("/dir")).error
        assert error is not None and "is a directory" in error

    def test_writing_to_a_directory_path_is_refused(self, fs: Harness) -> None:
        fs.write(fs.p("/dir/a.txt"), "x")
        assert "directory" in fs.write(fs.p("/dir/"), "y").error
        if "dir-write-check" in fs.caps:
            assert "is a directory" in fs.write(fs.p("/dir"), "y").error
        assert fs.read(fs.p("/dir/a.txt")).lines == ["x"]

    def test_text_with_unpaired_surrogates_is_refused_and_nothing_is_stored(
        self, fs: Harness
    ) -> None:
        fs.write(fs.p("/s.txt"), "keep")
        error = fs.write(fs.p("/s.txt"), "bad \ud800 text").error
        assert error is not None and "not valid text" in error
        assert "not valid text" in fs.write(fs.p("/s.txt"), "nul \x00 inside").error
        assert "not valid text" in fs.edit(fs.p("/s.txt"), "keep", "k\x00").error
        assert fs.read(fs.p("/s.txt")).lines == ["keep"]

    @pytest.mark.parametrize(
        "bad",
        [
            "relative.txt",
            "/a/../b.txt",
            "/../etc/passwd",
            "/a\x00b",
            "/a\\b",
            "",
            "/a\nb",
            "/" + "x" * 300,
            "/\uff0e\uff0e/x",
        ],
    )
    def test_malformed_paths_are_refused_with_a_readable_message(
        self, fs: Harness, bad: str
    ) -> None:
        for result in (
            fs.write(bad, "x"),
            fs.read(bad),
            fs.edit(bad, "a", "b"),
            fs.delete(bad),
            fs.ls(bad) if bad else fs.ls("relative"),
            fs.upload_files([(bad, b"x")])[0],
            fs.download_files([bad])[0],
        ):
            assert result.error is not None and result.error.startswith("Error:")

    # -- edit -----------------------------------------------------------------------------

    def test_edit_replaces_a_unique_string(self, fs: Harness) -> None:
        fs.write(fs.p("/i.txt"), "Always be brief.\nUse metric units.\n")
        result = fs.edit(fs.p("/i.txt"), "metric", "imperial")
        assert result.error is None and result.occurrences == 1
        assert fs.read(fs.p("/i.txt")).lines == ["Always be brief.", "Use imperial units."]

    def test_edit_refuses_an_ambiguous_match(self, fs: Harness) -> None:
        fs.write(fs.p("/a.txt"), "x\nx\n")
        error = fs.edit(fs.p("/a.txt"), "x", "y").error
        assert error is not None and "appears 2 times" in error and "replace_all" in error
        assert fs.read(fs.p("/a.txt")).lines == ["x", "x"]

    def test_edit_with_replace_all_replaces_every_occurrence(self, fs: Harness) -> None:
        fs.write(fs.p("/a.txt"), "x\nx\nx\n")
        result = fs.edit(fs.p("/a.txt"), "x", "y", replace_all=True)
        assert result.occurrences == 3
        assert fs.read(fs.p("/a.txt")).lines == ["y", "y", "y"]

    def test_edit_of_a_missing_string_says_to_read_first(self, fs: Harness) -> None:
        fs.write(fs.p("/a.txt"), "hello\n")
        error = fs.edit(fs.p("/a.txt"), "goodbye", "x").error
        assert error is not None and "not found in" in error and "read_file" in error

    def test_edit_refuses_an_empty_old_string(self, fs: Harness) -> None:
        fs.write(fs.p("/a.txt"), "hello\n")
        assert "old_string is empty" in fs.edit(fs.p("/a.txt"), "", "x").error

    def test_edit_of_a_missing_file_or_a_directory_is_an_error(self, fs: Harness) -> None:
        fs.write(fs.p("/d/a.txt"), "x")
        assert "not found" in fs.edit(fs.p("/nope.txt"), "a", "b").error
        assert "is a directory" in fs.edit(fs.p("/d"), "a", "b").error

    def test_edit_can_append_by_repeating_the_last_line(self, fs: Harness) -> None:
        fs.write(fs.p("/log.txt"), "first\n<END>")
        fs.edit(fs.p("/log.txt"), "<END>", "second\n<END>")
        assert fs.read(fs.p("/log.txt")).lines == ["first", "second", "<END>"]

    # -- ls ---------------------------------------------------------------------------------

    def test_ls_lists_direct_children_with_directories_marked(self, fs: Harness) -> None:
        fs.write(fs.p("/a.txt"), "12345")
        fs.write(fs.p("/sub/b.txt"), "x")
        fs.write(fs.p("/sub/deeper/c.txt"), "x")
        entries = fs.ls(fs.p("/") if fs.root else "/").entries
        by_path = {e.path: e for e in entries}
        assert fs.p("/a.txt") in by_path and by_path[fs.p("/a.txt")].size == 5
        assert by_path[fs.p("/sub/")].is_dir
        assert fs.p("/sub/b.txt") not in by_path
        assert _paths(fs.ls(fs.p("/sub"))) == [fs.p("/sub/b.txt"), fs.p("/sub/deeper/")]
        assert _paths(fs.ls(fs.p("/sub/"))) == _paths(fs.ls(fs.p("/sub")))

    def test_ls_of_a_file_or_a_missing_directory_is_an_error(self, fs: Harness) -> None:
        fs.write(fs.p("/a.txt"), "x")
        assert "is a file" in fs.ls(fs.p("/a.txt")).error
        assert "not found" in fs.ls(fs.p("/nowhere")).error

    # -- delete ------------------------------------------------------------------------------

    def test_delete_removes_a_file(self, fs: Harness) -> None:
        fs.write(fs.p("/a.txt"), "x")
        result = fs.delete(fs.p("/a.txt"))
        assert result.error is None and result.deleted == [fs.p("/a.txt")]
        assert "not found" in fs.read(fs.p("/a.txt")).error

    def test_delete_of_a_directory_removes_everything_below_it(self, fs: Harness) -> None:
        fs.write(fs.p("/d/a.txt"), "x")
        fs.write(fs.p("/d/e/b.txt"), "x")
        fs.write(fs.p("/keep.txt"), "x")
        result = fs.delete(fs.p("/d"))
        assert result.error is None
        assert sorted(result.deleted) == [fs.p("/d/a.txt"), fs.p("/d/e/b.txt")]
        assert _paths(fs.glob("**", fs.p("/") if fs.root else "/")) == [fs.p("/keep.txt")]

    def test_delete_of_a_missing_path_is_an_error(self, fs: Harness) -> None:
        assert "not found" in fs.delete(fs.p("/ghost.txt")).error

    def test_delete_of_the_top_of_the_storage_is_refused(self, fs: Harness) -> None:
        fs.write(fs.p("/a.txt"), "x")
        top = fs.root or "/"
        assert "refusing" in fs.delete(top).error
        assert fs.read(fs.p("/a.txt")).error is None

    # -- move --------------------------------------------------------------------------------

    def test_move_renames_a_file_keeping_its_content(self, fs: Harness) -> None:
        fs.write(fs.p("/a.txt"), "one\ntwo\n")
        result = fs.move(fs.p("/a.txt"), fs.p("/notes/b.txt"))
        assert result.error is None
        assert result.moved == [(fs.p("/a.txt"), fs.p("/notes/b.txt"))]
        assert fs.read(fs.p("/notes/b.txt")).lines == ["one", "two"]
        assert "not found" in fs.read(fs.p("/a.txt")).error
        assert fs.edit(fs.p("/notes/b.txt"), "two", "three").error is None

    def test_move_of_a_directory_moves_everything_below_it(self, fs: Harness) -> None:
        fs.write(fs.p("/d/a.txt"), "a")
        fs.write(fs.p("/d/e/b.txt"), "b")
        fs.upload_files([(fs.p("/d/e/c.dat"), b"\x00\xff")])
        fs.write(fs.p("/dx.txt"), "next to it, not in it")
        result = fs.move(fs.p("/d"), fs.p("/z/d2"))
        assert result.error is None
        assert [new for _, new in result.moved] == [
            fs.p("/z/d2/a.txt"),
            fs.p("/z/d2/e/b.txt"),
            fs.p("/z/d2/e/c.dat"),
        ]
        assert _paths(fs.ls(fs.p("/z/d2"))) == [fs.p("/z/d2/a.txt"), fs.p("/z/d2/e/")]
        assert fs.download_files([fs.p("/z/d2/e/c.dat")])[0].content == b"\x00\xff"
        assert [m.path for m in fs.grep("b", fs.p("/z")).matches] == [fs.p("/z/d2/e/b.txt")]
        assert "not found" in fs.ls(fs.p("/d")).error
        assert fs.read(fs.p("/dx.txt")).lines == ["next to it, not in it"]

    def test_move_never_replaces_an_existing_file_or_directory(self, fs: Harness) -> None:
        fs.write(fs.p("/a.txt"), "a")
        fs.write(fs.p("/b.txt"), "b")
        fs.write(fs.p("/d/c.txt"), "c")
        assert "already exists" in fs.move(fs.p("/a.txt"), fs.p("/b.txt")).error
        assert "already exists" in fs.move(fs.p("/a.txt"), fs.p("/d")).error
        assert fs.read(fs.p("/a.txt")).lines == ["a"] and fs.read(fs.p("/b.txt")).lines == ["b"]

    def test_move_errors_name_the_problem(self, fs: Harness) -> None:
        fs.write(fs.p("/d/a.txt"), "a")
        missing = fs.move(fs.p("/ghost.txt"), fs.p("/x.txt")).error
        assert missing is not None and "not found" in missing
        assert "into itself" in fs.move(fs.p("/d"), fs.p("/d/sub")).error
        assert "same path" in fs.move(fs.p("/d/a.txt"), fs.p("/d/a.txt")).error
        assert fs.move(fs.p("/d/a.txt"), fs.p("/../x")).error.startswith("Error")
        assert fs.read(fs.p("/d/a.txt")).lines == ["a"]

    # -- glob --------------------------------------------------------------------------------

    def _tree(self, fs: Harness) -> None:
        for path in ["/a.txt", "/b.md", "/x/c.txt", "/x/y/d.txt", "/x/y/e.md", "/z/a.txt"]:
            fs.write(fs.p(path), "x")

    def test_glob_without_a_slash_matches_names_at_any_depth(self, fs: Harness) -> None:
        self._tree(fs)
        found = _paths(fs.glob("*.txt", fs.root or "/"))
        assert found == [fs.p(p) for p in ["/a.txt", "/x/c.txt", "/x/y/d.txt", "/z/a.txt"]]

    def test_glob_double_star_crosses_directories_and_single_star_does_not(
        self, fs: Harness
    ) -> None:
        self._tree(fs)
        assert _paths(fs.glob("x/*.txt", fs.root or "/")) == [fs.p("/x/c.txt")]
        assert _paths(fs.glob("x/**/*.md", fs.root or "/")) == [fs.p("/x/y/e.md")]
        assert _paths(fs.glob("x/**", fs.root or "/")) == [
            fs.p("/x/c.txt"),
            fs.p("/x/y/d.txt"),
            fs.p("/x/y/e.md"),
        ]

    def test_glob_supports_alternatives_and_classes(self, fs: Harness) -> None:
        self._tree(fs)
        assert _paths(fs.glob("{a,b}.*", fs.root or "/")) == [
            fs.p("/a.txt"),
            fs.p("/b.md"),
            fs.p("/z/a.txt"),
        ]
        assert _paths(fs.glob("[cd].txt", fs.root or "/")) == [fs.p("/x/c.txt"), fs.p("/x/y/d.txt")]

    def test_glob_searches_below_the_given_path_only(self, fs: Harness) -> None:
        self._tree(fs)
        assert _paths(fs.glob("*.txt", fs.p("/x/y"))) == [fs.p("/x/y/d.txt")]
        assert _paths(fs.glob(fs.p("/x/*.txt"))) == [fs.p("/x/c.txt")]

    def test_glob_classes_read_dashes_as_fnmatch_does(self, fs: Harness) -> None:
        for name in ["a.txt", "B.txt", "5.txt", "bc.txt", "-.txt", "x.txt", "c.txt"]:
            fs.write(fs.p(f"/k/{name}"), "x")

        def names(pattern: str) -> list[str]:
            result = fs.glob(pattern, fs.p("/k"))
            assert result.error is None, result.error
            return sorted(f.path.rsplit("/", 1)[1] for f in result.files)

        # A negated class starting with '-': not '-' and not 'x' (no range).
        assert names("[!-x]*.txt") == ["5.txt", "B.txt", "a.txt", "bc.txt", "c.txt"]
        # A '-' right after a range is itself: a to b, '-', or c.
        assert names("[a-b-c].txt") == ["-.txt", "a.txt", "c.txt"]
        assert names("[-x].txt") == names("[x-].txt") == ["-.txt", "x.txt"]

    def test_glob_patterns_match_whatever_unicode_form_they_are_typed_in(self, fs: Harness) -> None:
        fs.write(fs.p("/cafe\u0301.md"), "x")  # stored as café.md (NFC)
        found = [f.path for f in fs.glob("cafe\u0301*", fs.root or "/").files]
        assert found == [fs.p("/caf\u00e9.md")]
        assert [f.path for f in fs.glob("caf\u00e9*", fs.root or "/").files] == found

    def test_glob_treats_regex_characters_literally(self, fs: Harness) -> None:
        fs.write(fs.p("/a+b(1).txt"), "x")
        fs.write(fs.p("/aab1.txt"), "x")
        assert _paths(fs.glob("a+b(1).txt", fs.root or "/")) == [fs.p("/a+b(1).txt")]

    @pytest.mark.parametrize("bad", ["", "../*", "a/../../b", "{a,b", "*a" * 40, "x" * 5000])
    def test_unusable_glob_patterns_are_refused_with_a_message(self, fs: Harness, bad: str) -> None:
        result = fs.glob(bad)
        assert result.error is not None and result.error.startswith("Error:")

    def test_glob_with_no_match_is_empty(self, fs: Harness) -> None:
        self._tree(fs)
        result = fs.glob("*.pdf", fs.root or "/")
        assert result.error is None and result.files == []

    # -- grep --------------------------------------------------------------------------------

    def test_grep_finds_literal_text_with_line_numbers(self, fs: Harness) -> None:
        fs.write(fs.p("/a.txt"), "alpha\nbeta (v1.0)\ngamma\n")
        fs.write(fs.p("/d/b.txt"), "no\nbeta (v1.0) again\n")
        result = fs.grep("beta (v1.0)", fs.root or "/")
        assert [(m.path, m.line, m.text) for m in result.matches] == [
            (fs.p("/a.txt"), 2, "beta (v1.0)"),
            (fs.p("/d/b.txt"), 2, "beta (v1.0) again"),
        ]

    def test_grep_is_literal_not_a_regex(self, fs: Harness) -> None:
        fs.write(fs.p("/a.txt"), "a.c\nabc\n")
        assert [m.text for m in fs.grep("a.c", fs.root or "/").matches] == ["a.c"]

    def test_grep_filters_by_path_and_glob(self, fs: Harness) -> None:
        fs.write(fs.p("/a.txt"), "needle")
        fs.write(fs.p("/a.md"), "needle")
        fs.write(fs.p("/d/b.txt"), "needle")
        assert [m.path for m in fs.grep("needle", fs.p("/d")).matches] == [fs.p("/d/b.txt")]
        found = [m.path for m in fs.grep("needle", fs.root or "/", glob="*.md").matches]
        assert found == [fs.p("/a.md")]
        assert [m.path for m in fs.grep("needle", fs.p("/a.txt")).matches] == [fs.p("/a.txt")]

    def test_grep_skips_binary_files_and_handles_crlf(self, fs: Harness) -> None:
        fs.upload_files([(fs.p("/bin.dat"), b"needle\xff\xfe")])
        fs.write(fs.p("/win.txt"), "x\r\nneedle\r\n")
        result = fs.grep("needle", fs.root or "/")
        assert [(m.path, m.line, m.text) for m in result.matches] == [
            (fs.p("/win.txt"), 2, "needle")
        ]

    @pytest.mark.parametrize("bad", ["", "a\nb", "x" * 20_000])
    def test_unusable_grep_patterns_are_refused_with_a_message(self, fs: Harness, bad: str) -> None:
        result = fs.grep(bad)
        assert result.error is not None and result.error.startswith("Error:")

    # -- upload and download -----------------------------------------------------------------

    def test_uploads_round_trip_byte_exact_including_binary(self, fs: Harness) -> None:
        blobs = {
            fs.p("/t.txt"): "héllo\n".encode(),
            fs.p("/bin/x.dat"): bytes(range(256)),
            fs.p("/bad.txt"): b"abc\xff\xfedef",
        }
        results = fs.upload_files(list(blobs.items()))
        assert all(r.error is None for r in results)
        downloaded = fs.download_files([*blobs, fs.p("/missing")])
        assert [d.content for d in downloaded[:3]] == list(blobs.values())
        assert "not found" in downloaded[3].error

    def test_reading_or_editing_a_binary_file_says_it_is_binary(self, fs: Harness) -> None:
        fs.upload_files([(fs.p("/x.dat"), b"\x00\xff\x10")])
        result = fs.read(fs.p("/x.dat"))
        assert result.binary and "binary" in result.error
        assert "binary" in fs.edit(fs.p("/x.dat"), "a", "b").error
        assert fs.download_files([fs.p("/x.dat")])[0].content == b"\x00\xff\x10"

    # -- scale -------------------------------------------------------------------------------

    def test_a_5_mb_file_is_stored_whole_and_read_in_windows(self, fs: Harness) -> None:
        line = "0123456789" * 10 + "\n"
        content = line * (5 * 1024 * 1024 // len(line) + 1)
        assert fs.write(fs.p("/big.txt"), content).error is None
        assert fs.download_files([fs.p("/big.txt")])[0].content == content.encode()
        result = fs.read(fs.p("/big.txt"), offset=40_000, limit=10)
        assert len(result.lines) == 10 and result.total_lines == content.count("\n")

    def test_a_directory_of_10000_files_lists_completely(self, fs: Harness) -> None:
        files = [(fs.p(f"/many/f{i:05d}.txt"), b"x") for i in range(10_000)]
        assert all(r.error is None for r in fs.upload_files(files))
        entries = fs.ls(fs.p("/many")).entries
        assert len(entries) == 10_000 and entries[0].path == fs.p("/many/f00000.txt")
        assert len(fs.glob("f0999*.txt", fs.p("/many")).files) == 10
