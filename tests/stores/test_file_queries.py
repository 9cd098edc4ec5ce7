"""Our stores answer SupportsFileQueries in the database, exactly as the reference scan does."""

from __future__ import annotations

import asyncio
import base64

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepmemory.backends import _scan
from deepmemory.backends._match import compile_glob
from deepmemory.backends.protocol import FileInfo, StoredFile, SupportsFileQueries
from deepmemory.stores import _sql

NS = ("acme",)


def put(store, key, content, namespace=NS, encoding="utf-8"):
    return store.file_put(
        namespace, key, StoredFile(content, encoding, "c0", "m0"), expected_version=None
    )


def regex(pattern, base="/"):
    return compile_glob(pattern, base).regex


def test_our_stores_implement_the_file_query_protocol(store):
    assert isinstance(store, SupportsFileQueries)


def test_a_file_reads_back_with_its_version(store):
    version = put(store, "/a.txt", "hello")
    file = store.file_get(NS, "/a.txt")
    assert (file.content, file.encoding, file.version) == ("hello", "utf-8", version)
    assert store.file_get(NS, "/b.txt") is None


def test_an_unconditional_write_keeps_the_creation_time_and_bumps_the_version(store):
    first = put(store, "/a.txt", "one")
    second = store.file_put(
        NS, "/a.txt", StoredFile("two", "utf-8", "c1", "m1"), expected_version=None
    )
    file = store.file_get(NS, "/a.txt")
    assert second > first and file.version == second
    assert (file.content, file.created_at, file.modified_at) == ("two", "c0", "m1")


def test_compare_and_swap_writes_only_over_the_version_it_read(store):
    version = put(store, "/a.txt", "one")
    newer = store.file_put(NS, "/a.txt", StoredFile("two"), expected_version=version)
    assert newer is not None and newer > version
    assert store.file_put(NS, "/a.txt", StoredFile("stale"), expected_version=version) is None
    assert store.file_get(NS, "/a.txt").content == "two"


def test_expected_version_zero_creates_only_a_missing_file(store):
    assert store.file_put(NS, "/new.txt", StoredFile("x"), expected_version=0) is not None
    assert store.file_put(NS, "/new.txt", StoredFile("y"), expected_version=0) is None
    assert store.file_get(NS, "/new.txt").content == "x"
    assert store.file_put(NS, "/gone.txt", StoredFile("z"), expected_version=5) is None
    assert store.file_get(NS, "/gone.txt") is None


def test_a_deleted_and_recreated_file_never_reuses_a_version(store):
    old = put(store, "/a.txt", "one")
    store.file_delete_tree(NS, "/a.txt")
    put(store, "/a.txt", "two")
    assert store.file_put(NS, "/a.txt", StoredFile("lost update"), expected_version=old) is None


def test_a_namespace_never_sees_a_longer_namespace_that_starts_with_it(store):
    put(store, "/secret.txt", "alice's secret", namespace=("acme", "alice"))
    put(store, "/d/x.txt", "alice's secret", namespace=("acme", "alice"))
    assert store.file_get(NS, "/secret.txt") is None
    assert store.file_list_dir(NS, "/") == []
    assert not store.file_is_dir(NS, "/d")
    assert store.file_glob(NS, "/", regex("**")) == []
    assert store.file_grep(NS, "/", "secret", None) == []
    assert store.file_delete_tree(NS, "/d") == []
    assert store.file_get(("acme", "alice"), "/d/x.txt") is not None


@pytest.mark.parametrize("wild", ["_", "%"])
def test_underscore_and_percent_are_plain_characters(store, wild):
    put(store, f"/a{wild}b/one.txt", f"x{wild}y")
    put(store, "/axb/two.txt", "xzy")
    put(store, "/k.txt", "xzy", namespace=(f"ac{wild}e",))
    put(store, "/k.txt", f"x{wild}y", namespace=("acxe",))
    assert [f.path for f in store.file_list_dir(NS, f"/a{wild}b")] == [f"/a{wild}b/one.txt"]
    assert [f.path for f in store.file_glob(NS, f"/a{wild}b", regex("*"))] == [f"/a{wild}b/one.txt"]
    assert [m.path for m in store.file_grep(NS, "/", f"x{wild}y", None)] == [f"/a{wild}b/one.txt"]
    assert [m.path for m in store.file_grep(("acxe",), "/", f"x{wild}y", None)] == ["/k.txt"]
    assert store.file_grep((f"ac{wild}e",), "/", f"x{wild}y", None) == []
    assert store.file_delete_tree(NS, f"/a{wild}b") == [f"/a{wild}b/one.txt"]
    assert store.file_is_dir(NS, "/axb")


def test_list_dir_gives_files_with_size_and_subdirectories(store):
    put(store, "/d/a.txt", "héllo")
    put(store, "/d/sub/deep/x.txt", "x")
    put(store, "/d/sub/y.txt", "y")
    put(store, "/d.txt", "not inside")
    put(store, "/d0/z.txt", "not inside")
    put(store, "/d/other/z.txt", "z")
    assert store.file_list_dir(NS, "/d") == [
        FileInfo("/d/a.txt", False, 6, "m0"),
        FileInfo("/d/other/", True),
        FileInfo("/d/sub/", True),
    ]
    assert [e.path for e in store.file_list_dir(NS, "/")] == ["/d.txt", "/d/", "/d0/"]
    assert store.file_list_dir(NS, "/nowhere") == []


def test_list_dir_never_reads_file_contents():
    for dialect in ("sqlite", "postgres"):
        sql, _ = _sql.list_dir(dialect, NS, "/d").query
        assert "value" not in sql and "grep_text" not in sql


def test_a_file_hides_a_directory_of_the_same_name_in_listings(store):
    put(store, "/a", "file")
    put(store, "/a/b.txt", "below")
    assert store.file_list_dir(NS, "/") == [FileInfo("/a", False, 4, "m0")]
    assert store.file_is_dir(NS, "/a") and not store.file_is_dir(NS, "/a/b.txt")


def test_glob_matches_relative_paths_below_the_directory(store):
    for key in ["/src/a.py", "/src/pkg/b.py", "/src/pkg/c.txt", "/srcx/d.py", "/e.py"]:
        put(store, key, "x")
    paths = lambda found: [f.path for f in found]  # noqa: E731
    assert paths(store.file_glob(NS, "/", regex("**/*.py"))) == [
        "/e.py",
        "/src/a.py",
        "/src/pkg/b.py",
        "/srcx/d.py",
    ]
    assert paths(store.file_glob(NS, "/", regex("src/*.py"))) == ["/src/a.py"]
    assert paths(store.file_glob(NS, "/", regex("src/**/*.{py,txt}"))) == [
        "/src/a.py",
        "/src/pkg/b.py",
        "/src/pkg/c.txt",
    ]
    assert paths(store.file_glob(NS, "/src", regex("*.py", "/src"))) == [
        "/src/a.py",
        "/src/pkg/b.py",
    ]
    assert store.file_glob(NS, "/src", regex("pkg/c.txt", "/src"))[0].size == 1


def test_glob_and_grep_take_the_path_above_the_mount_into_account(store):
    put(store, "/notes/a.md", "todo: x")
    put(store, "/b.md", "todo: y")
    found = store.file_glob(NS, "/", regex("memories/notes/*.md"), rel_prefix="memories/")
    assert [f.path for f in found] == ["/notes/a.md"]
    assert store.file_glob(NS, "/", regex("other/**"), rel_prefix="memories/") == []
    matches = store.file_grep(NS, "/", "todo", regex("memories/*.md"), rel_prefix="memories/")
    assert [m.path for m in matches] == ["/b.md"]


def test_grep_numbers_lines_as_read_does(store):
    put(store, "/crlf.txt", "one\r\ntwo needle\r\nthree\r\n")
    put(store, "/lf.txt", "needle\n\nneedle again\n")
    put(store, "/cr.txt", "needle\r")
    matches = store.file_grep(NS, "/", "needle", None)
    assert [(m.path, m.line, m.text) for m in matches] == [
        ("/cr.txt", 1, "needle"),
        ("/crlf.txt", 2, "two needle"),
        ("/lf.txt", 1, "needle"),
        ("/lf.txt", 3, "needle again"),
    ]
    assert store.file_grep(NS, "/", "needle\r", None) == []


@pytest.mark.parametrize("literal", ["é", "日本", "ü x", '"q"', "a'b", "\\n", "x" * 40, "  "])
def test_grep_finds_short_long_unicode_and_quoted_literals(store, literal):
    put(store, "/hit.txt", f"before\nxx {literal} yy\nafter")
    put(store, "/miss.txt", "nothing here")
    assert [(m.path, m.line) for m in store.file_grep(NS, "/", literal, None)] == [("/hit.txt", 2)]


def test_grep_is_case_sensitive(store):
    put(store, "/a.txt", "Needle")
    assert store.file_grep(NS, "/", "needle", None) == []
    assert len(store.file_grep(NS, "/", "Needle", None)) == 1


def test_grep_skips_binary_files_and_honours_the_glob(store):
    put(store, "/bin.dat", base64.b64encode(b"needle\x00\xff").decode(), encoding="base64")
    put(store, "/a.py", "needle")
    put(store, "/a.txt", "needle")
    assert [m.path for m in store.file_grep(NS, "/", "needle", None)] == ["/a.py", "/a.txt"]
    assert [m.path for m in store.file_grep(NS, "/", "needle", regex("*.py"))] == ["/a.py"]
    assert store.file_grep(NS, "/", "bmVlZGxl", None) == []


def test_binary_files_round_trip_with_their_real_size(store):
    data = bytes(range(256))
    put(store, "/b.bin", base64.b64encode(data).decode(), encoding="base64")
    file = store.file_get(NS, "/b.bin")
    assert file.encoding == "base64" and base64.b64decode(file.content) == data
    assert store.file_list_dir(NS, "/")[0].size == 256


def test_delete_tree_removes_a_file_and_everything_below_it_only(store):
    for key in ["/a", "/a/b.txt", "/a/c/d.txt", "/a.txt", "/ab/e.txt", "/a0"]:
        put(store, key, "x")
    assert store.file_delete_tree(NS, "/a") == ["/a", "/a/b.txt", "/a/c/d.txt"]
    assert [e.path for e in store.file_list_dir(NS, "/")] == ["/a.txt", "/a0", "/ab/"]
    assert store.file_delete_tree(NS, "/missing") == []


def test_items_written_with_plain_put_are_files_and_files_are_items(store):
    store.put(NS, "/plain.txt", {"content": "from put\n", "encoding": "utf-8"})
    store.put(NS, "/old.txt", {"content": ["line one", "needle two"]})
    assert store.file_get(NS, "/plain.txt").content == "from put\n"
    assert [(m.path, m.line) for m in store.file_grep(NS, "/", "needle", None)] == [("/old.txt", 2)]
    assert store.file_list_dir(NS, "/")[1] == FileInfo("/plain.txt", False, 9, None)
    put(store, "/file.txt", "from file_put")
    value = store.get(NS, "/file.txt").value
    assert value == {
        "content": "from file_put",
        "encoding": "utf-8",
        "created_at": "c0",
        "modified_at": "m0",
    }


def test_every_file_method_has_an_async_twin_with_the_same_answer(store):
    put(store, "/d/a.txt", "needle\n")
    put(store, "/d/e/b.txt", "hay")

    async def both():
        return [
            await store.afile_get(NS, "/d/a.txt"),
            await store.afile_list_dir(NS, "/d"),
            await store.afile_is_dir(NS, "/d/e"),
            await store.afile_glob(NS, "/", regex("**/*.txt")),
            await store.afile_grep(NS, "/", "needle", None),
        ]

    sync = [
        store.file_get(NS, "/d/a.txt"),
        store.file_list_dir(NS, "/d"),
        store.file_is_dir(NS, "/d/e"),
        store.file_glob(NS, "/", regex("**/*.txt")),
        store.file_grep(NS, "/", "needle", None),
    ]
    assert asyncio.run(both()) == sync
    version = asyncio.run(store.afile_put(NS, "/x", StoredFile("1"), expected_version=0))
    assert asyncio.run(store.afile_put(NS, "/x", StoredFile("2"), expected_version=version))
    assert asyncio.run(store.afile_delete_tree(NS, "/d")) == ["/d/a.txt", "/d/e/b.txt"]


# -- the database agrees with the reference scan on generated trees ------------------------

_segment = st.text(alphabet="ab_%.-0é", min_size=1, max_size=3).filter(
    lambda s: s not in (".", "..")
)
_keys = st.lists(st.lists(_segment, min_size=1, max_size=3), min_size=1, max_size=12).map(
    lambda parts: sorted({"/" + "/".join(p) for p in parts})
)
_content = st.text(alphabet="ab_%\r\n é", max_size=30)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(keys=_keys, contents=st.lists(_content, min_size=12, max_size=12), data=st.data())
def test_file_queries_agree_with_the_reference_scan(store, keys, contents, data):
    store.file_delete_tree(NS, "/")
    files = {k: StoredFile(c, "utf-8", "c", "m") for k, c in zip(keys, contents, strict=False)}
    for key, file in files.items():
        store.file_put(NS, key, file, expected_version=None)
    items = sorted(files.items())
    dirs = ["/"] + sorted({k.rsplit("/", 1)[0] or "/" for k in keys}) + [keys[0]]
    dir_key = data.draw(st.sampled_from(dirs))
    literal = data.draw(st.text(alphabet="ab_%\r é", min_size=1, max_size=4))
    pattern = data.draw(st.sampled_from(["*", "**", "a*", "**/a*", "*_*/**", "?", "%*", "**/*.b"]))
    glob_regex = regex(pattern, dir_key)
    assert store.file_list_dir(NS, dir_key) == _scan.list_dir(items, dir_key)
    assert store.file_is_dir(NS, dir_key) == _scan.is_dir(files, dir_key)
    assert store.file_glob(NS, dir_key, glob_regex) == _scan.glob(items, dir_key, glob_regex)
    assert store.file_grep(NS, dir_key, literal, None) == _scan.grep(items, dir_key, literal, None)
    assert store.file_grep(NS, dir_key, literal, glob_regex) == _scan.grep(
        items, dir_key, literal, glob_regex
    )
    assert store.file_delete_tree(NS, dir_key) == sorted(_scan.tree_keys(files, dir_key))


def test_grep_reads_at_most_one_match_more_than_it_answers(store, monkeypatch):
    """The store is asked for one line (SQLite: one file) more than a grep answers, so
    a grep never reads or sends every match of a large memory; the result says there
    were more, and so does the tool."""
    from deepmemory.backends import StoreBackend, _match
    from deepmemory.middleware.rendering import render_grep

    monkeypatch.setattr(_match, "MAX_GREP_MATCHES", 5)
    for k in range(20):
        put(store, f"/g/{k:02d}.txt", "a needle\nhay\nanother needle\n")
    sent = store.file_grep(NS, "/", "needle", None)
    assert 6 <= len(sent) <= 12 and len({m.path for m in sent}) <= 6, len(sent)
    result = StoreBackend(store=store, namespace=NS).grep("needle")
    assert result.truncated and [(m.path, m.line) for m in result.matches] == [
        ("/g/00.txt", 1),
        ("/g/00.txt", 3),
        ("/g/01.txt", 1),
        ("/g/01.txt", 3),
        ("/g/02.txt", 1),
    ]
    for mode in ("content", "files_with_matches", "count"):
        assert "stopped at 5 matching lines; there are more" in render_grep(result, mode)
    assert not StoreBackend(store=store, namespace=NS).grep("needle", "/g/00.txt").truncated
