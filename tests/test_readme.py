"""The README's Python examples run as written (in a temporary directory)."""

from __future__ import annotations

from pathlib import Path

import pytest

README = Path(__file__).parents[1] / "README.md"


def python_blocks(heading: str) -> list[str]:
    section = README.read_text(encoding="utf-8").split(f"### {heading}\n", 1)[1]
    section = section.split("\n## ", 1)[0].split("\n### ", 1)[0]
    return [part.split("```", 1)[0] for part in section.split("```python\n")[1:]]


def test_the_history_and_forgetting_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    [block] = python_blocks("History and forgetting")
    namespace: dict[str, object] = {}
    exec(compile(block, "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "-Be concise." in out and "+Be verbose." in out
    assert "memories/alice: would remove 0 files" in out
    store = namespace["store"]
    assert store.file_get(("memories", "alice"), "/instructions.txt").content == "Be concise.\n"  # type: ignore[attr-defined]
    store.close()  # type: ignore[attr-defined]


def test_the_deepagents_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    [block] = python_blocks("Using deepmemory with deepagents")
    namespace: dict[str, object] = {}
    exec(compile(block, "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "'path': '/prefs.md', 'line': 1, 'text': 'Prefers short answers'" in out
    assert "['write', 'edit']" in out
    namespace["store"].close()  # type: ignore[attr-defined]


def test_the_deepagents_route_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    [block] = python_blocks("deepagents' backends as deepmemory routes")
    exec(compile(block, "README.md", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "['1. read the code', '2. fix the bug']"
    assert lines[1] == "['2. fix the bug']"
    assert lines[2].startswith("Error") and "passwd" not in str(list(tmp_path.rglob("*")))
