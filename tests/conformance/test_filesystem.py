"""FilesystemBackend stays inside its root: no path, '..' or symlink leads out."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deepmemory.backends import FilesystemBackend


@pytest.fixture
def planted(tmp_path: Path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("TOP SECRET\n")
    os.symlink(outside, root / "link-dir")
    os.symlink(outside / "secret.txt", root / "link-file.txt")
    (root / "ok.txt").write_text("fine\n")
    return FilesystemBackend(root), outside


def test_symlinks_out_of_the_root_cannot_be_read_or_listed(planted):
    backend, _ = planted
    assert backend.read("/link-file.txt").error is not None
    assert backend.read("/link-dir/secret.txt").error is not None
    assert [e.path for e in backend.ls("/").entries] == ["/ok.txt"]
    assert backend.ls("/link-dir").error is not None


def test_glob_and_grep_never_reach_behind_a_symlink(planted):
    backend, _ = planted
    assert [f.path for f in backend.glob("**").files] == ["/ok.txt"]
    assert backend.grep("SECRET").matches == []
    assert backend.download_files(["/link-file.txt"])[0].content is None


def test_writes_through_a_symlink_are_refused_and_touch_nothing_outside(planted):
    backend, outside = planted
    assert "outside" in backend.write("/link-dir/new.txt", "x").error
    assert "outside" in backend.write("/link-file.txt", "x").error
    assert backend.edit("/link-file.txt", "TOP", "NO").error is not None
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "TOP SECRET\n"


def test_deleting_a_symlink_removes_the_link_not_its_target(planted):
    backend, outside = planted
    assert backend.delete("/link-dir").error is None
    assert (outside / "secret.txt").exists()


def test_a_write_where_a_parent_is_a_file_is_an_error_not_a_crash(planted):
    backend, _ = planted
    error = backend.write("/ok.txt/child.txt", "x").error
    assert error is not None and error.startswith("Error:")


def test_a_delete_through_a_symlinked_parent_is_refused(planted):
    backend, outside = planted
    os.symlink(outside / "secret.txt", outside / "innerlink")
    assert "outside" in backend.delete("/link-dir/innerlink").error
    assert (outside / "innerlink").is_symlink()


def test_concurrent_edits_of_one_file_all_land(tmp_path: Path):
    from concurrent.futures import ThreadPoolExecutor

    backend = FilesystemBackend(tmp_path / "root")
    backend.write("/log.txt", "<END>")

    def append(worker: int) -> list[str | None]:
        return [backend.edit("/log.txt", "<END>", f"w{worker}-{i}\n<END>").error for i in range(50)]

    with ThreadPoolExecutor(8) as pool:
        errors = [e for result in pool.map(append, range(8)) for e in result]
    assert errors == [None] * 400
    lines = backend.read("/log.txt", limit=10_000).lines
    assert sorted(lines[:-1]) == sorted(f"w{w}-{i}" for w in range(8) for i in range(50))
    assert [e.path for e in backend.ls("/").entries] == ["/log.txt"]  # no lock or temp files
