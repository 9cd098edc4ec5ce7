"""``deepmemory memory export`` / ``import``: a JSON Lines archive, byte-exact between stores.

Files keep their bytes (binary, NUL, CRLF, empty, any Unicode) and their timestamps;
the same files give the same archive from InMemory, SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langgraph.store.memory import InMemoryStore

from deepmemory.backends import StoreBackend
from deepmemory.cli import _archive
from deepmemory.stores import PostgresStore, SQLiteStore
from tests.cli.conftest import invoke, one_error_line
from tests.conftest import postgres_url

FILES = {
    "/preferences.txt": b"Metric units\nConcise answers\n",
    "/notes/ünïcødé.md": "Grüße, 世界 🌍\n".encode(),
    "/notes/deep/crlf.txt": b"one\r\ntwo\r\n",
    "/empty.txt": b"",
    "/nul.txt": b"before\x00after\n",
    "/image.png": bytes(range(256)) + b"\x89PNG\xff\xfe",
}


def fill(store, user: str, files: dict[str, bytes] = FILES) -> None:
    backend = StoreBackend(store=store, namespace=("memories", user))
    results = backend.upload_files(list(files.items()))
    assert [r.error for r in results] == [None] * len(files)


def stamps(store, user: str) -> dict[str, tuple[str, str]]:
    items = store.search(("memories", user), limit=1000)
    return {i.key: (i.value["created_at"], i.value["modified_at"]) for i in items}


def contents(store, user: str) -> dict[str, bytes]:
    backend = StoreBackend(store=store, namespace=("memories", user))
    results = backend.download_files(list(FILES))
    return {path: r.content for path, r in zip(FILES, results, strict=True)}


def export(db, *args: object) -> str:
    result = invoke("memory", "export", "-", "--db", db, *args)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_an_archive_from_sqlite_imports_into_postgresql_and_exports_again_identically(
    home, tmp_path
):
    url = postgres_url()
    user = f"archive-{uuid.uuid4().hex[:12]}"
    sqlite_db = tmp_path / "memory.db"
    with SQLiteStore(sqlite_db) as store:
        fill(store, user)
        written = stamps(store, user)
    archive = tmp_path / "memory.jsonl"
    exported = invoke("memory", "export", archive, "--db", sqlite_db, "--user", user)
    assert exported.exit_code == 0, exported.stderr
    assert exported.stderr == f"Exported 6 files of 1 user to {archive}.\n"
    try:
        imported = invoke("memory", "import", archive, "--db", url)
        assert imported.exit_code == 0, imported.stderr
        assert imported.stdout == "Imported 6 files (0 replaced) of 1 user.\n"
        again = tmp_path / "again.jsonl"
        assert invoke("memory", "export", again, "--db", url, "--user", user).exit_code == 0
        assert again.read_bytes() == archive.read_bytes()
        with PostgresStore(connection_string=url) as pg:
            assert contents(pg, user) == FILES
            assert stamps(pg, user) == written
    finally:
        with PostgresStore(connection_string=url) as pg:
            for key in stamps(pg, user):
                pg.delete(("memories", user), key)


def test_an_archive_round_trips_through_an_in_memory_store_with_bytes_and_timestamps(tmp_path):
    source = InMemoryStore()
    fill(source, "alice")
    archive = [f.to_line() for f in _archive.export_files(source, [("memories", "alice")])]
    target = InMemoryStore()
    for entry in _archive.read_archive(archive):
        assert _archive.import_file(target, entry) is False
    assert contents(target, "alice") == FILES
    assert stamps(target, "alice") == stamps(source, "alice")
    again = [f.to_line() for f in _archive.export_files(target, [("memories", "alice")])]
    assert again == archive


def test_each_line_holds_one_file_sorted_by_namespace_then_path_with_text_as_text(db):
    with SQLiteStore(db) as store:
        fill(store, "bob", {"/b.txt": b"b", "/a.bin": b"\xff"})
        fill(store, "alice", {"/z.txt": b"z\n"})
    lines = [json.loads(line) for line in export(db).splitlines()]
    assert [(r["namespace"], r["path"], r["encoding"], r["content"]) for r in lines] == [
        (["memories", "alice"], "/z.txt", "utf-8", "z\n"),
        (["memories", "bob"], "/a.bin", "base64", "/w=="),
        (["memories", "bob"], "/b.txt", "utf-8", "b"),
    ]
    assert all(r["created_at"] and r["modified_at"] for r in lines)
    assert [line for line in export(db, "--user", "bob").splitlines()] == export(db).splitlines()[
        1:
    ]


def test_importing_over_existing_files_replaces_them_with_the_archived_timestamps(db, tmp_path):
    with SQLiteStore(db) as store:
        fill(store, "alice", {"/p.txt": b"old"})
    archive = tmp_path / "a.jsonl"
    record = {
        "namespace": ["memories", "alice"],
        "path": "/p.txt",
        "encoding": "utf-8",
        "content": "new",
        "created_at": "2020-01-02T03:04:05+00:00",
        "modified_at": "2021-01-02T03:04:05+00:00",
    }
    archive.write_text(json.dumps(record) + "\n")
    result = invoke("memory", "import", archive, "--db", db)
    assert result.stdout == "Imported 1 file (1 replaced) of 1 user.\n"
    with SQLiteStore(db) as store:
        assert store.get(("memories", "alice"), "/p.txt").value == {
            k: record[k] for k in ("content", "encoding", "created_at", "modified_at")
        }


def test_import_to_another_user_and_from_stdin(db, tmp_path):
    with SQLiteStore(db) as store:
        fill(store, "alice", {"/p.txt": b"alice's"})
    archive = export(db, "--user", "alice")
    result = invoke("memory", "import", "-", "--db", db, "--to-user", "carol", input=archive)
    assert result.exit_code == 0, result.stderr
    carol = invoke("memory", "cat", "p.txt", "--db", db, "--user", "carol")
    assert carol.stdout == "alice's"


def test_import_to_another_user_needs_an_archive_of_one_user(db):
    with SQLiteStore(db) as store:
        fill(store, "alice", {"/p.txt": b"a"})
        fill(store, "bob", {"/p.txt": b"b"})
    result = invoke("memory", "import", "-", "--db", db, "--to-user", "carol", input=export(db))
    assert result.exit_code == 2
    assert "--user" in one_error_line(result.stderr)


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("not json", "is not JSON"),
        ('{"namespace": ["memories", "a"], "path": "/x"}', "has no 'encoding'"),
        (
            '{"namespace": ["memories", "a.b"], "path": "/x", "encoding": "utf-8", "content": ""}',
            "unusable namespace",
        ),
        (
            '{"namespace": ["memories", "a"], "path": "/../x", "encoding": "utf-8", "content": ""}',
            "invalid path",
        ),
        (
            '{"namespace": ["memories", "a"], "path": "/x", "encoding": "base64", "content": "!!"}',
            "not valid base64",
        ),
    ],
)
def test_a_bad_line_fails_the_import_in_one_line_naming_it_and_nothing_is_imported(db, line, why):
    good = '{"namespace": ["memories", "a"], "path": "/ok", "encoding": "utf-8", "content": "x"}'
    result = invoke("memory", "import", "-", "--db", db, input=f"{good}\n{line}\n")
    assert result.exit_code == 1
    message = one_error_line(result.stderr)
    assert message.startswith("error: Line 2 of the archive") and why in message
    assert export(db) == ""


def test_import_writes_only_users_memory_unless_told_otherwise(db):
    """An archive line for another namespace (an application's own data) is refused,
    and nothing of the archive is written; --any-namespace lets it through."""
    good = '{"namespace": ["memories", "a"], "path": "/ok", "encoding": "utf-8", "content": "x"}'
    other = (
        '{"namespace": ["app", "config"], "path": "/flags", "encoding": "utf-8", "content": "on"}'
    )
    refused = invoke("memory", "import", "-", "--db", db, input=f"{good}\n{other}\n")
    assert refused.exit_code == 1
    message = one_error_line(refused.stderr)
    assert "Line 2" in message and "['app', 'config']" in message and "--any-namespace" in message
    assert export(db) == ""
    with SQLiteStore(db) as store:
        assert store.get(("app", "config"), "/flags") is None
    allowed = invoke(
        "memory", "import", "-", "--db", db, "--any-namespace", input=f"{good}\n{other}\n"
    )
    assert allowed.exit_code == 0, allowed.stderr
    with SQLiteStore(db) as store:
        assert store.get(("app", "config"), "/flags").value["content"] == "on"


def test_importing_a_missing_archive_is_one_line(db, tmp_path):
    result = invoke("memory", "import", tmp_path / "nope.jsonl", "--db", db)
    assert result.exit_code == 1
    assert "No such file or directory" in one_error_line(result.stderr)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=300) | st.text(max_size=100).map(lambda t: t.encode("utf-8")))
def test_any_content_survives_sqlite_export_import_export_byte_exact(tmp_path_factory, data):
    base = tmp_path_factory.mktemp("roundtrip")
    with SQLiteStore(base / "a.db") as first, SQLiteStore(base / "b.db") as second:
        fill(first, "u", {"/f": data})
        archive = [f.to_line() for f in _archive.export_files(first, [("memories", "u")])]
        for entry in _archive.read_archive(archive):
            _archive.import_file(second, entry)
        (downloaded,) = StoreBackend(store=second, namespace=("memories", "u")).download_files(
            ["/f"]
        )
        assert downloaded.content == data
        again = [f.to_line() for f in _archive.export_files(second, [("memories", "u")])]
        assert again == archive


def test_export_holds_one_file_at_a_time_not_the_archive(db, tmp_path):
    """40 files of 256 KB (10 MB of memory): the export's peak of Python memory stays
    near one file's size, and the archive is complete."""
    import tracemalloc

    big = {f"/big/{k:02d}.txt": (f"{k:02d}" * 128 + "\n").encode() * 1000 for k in range(40)}
    with SQLiteStore(db) as store:
        fill(store, "alice", big)
    target = tmp_path / "backup.jsonl"
    tracemalloc.start()
    try:
        result = invoke("memory", "export", target, "--db", db)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.exit_code == 0, result.stderr
    lines = target.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["path"] for line in lines] == sorted(big)
    assert peak < 4 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
    assert not list(tmp_path.glob("*.partial"))
