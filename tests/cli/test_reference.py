"""docs/cli.md is the ``--help`` of every command, regenerated: it must not be stale."""

from __future__ import annotations

import shlex
from pathlib import Path

from deepmemory.cli._reference import command_paths, reference
from tests.cli.conftest import invoke

DOC = Path(__file__).parents[2] / "docs" / "cli.md"


def test_the_cli_reference_in_docs_is_the_current_help_of_every_command():
    assert DOC.read_text(encoding="utf-8") == reference(), (
        "docs/cli.md is stale: run python -m deepmemory.cli._reference > docs/cli.md"
    )


def test_the_reference_covers_every_command():
    text = DOC.read_text(encoding="utf-8")
    for path in command_paths():
        assert f"## {' '.join(('deepmemory', *path))}\n" in text


def readme_commands() -> list[list[str]]:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Command line", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [line.split("  #", 1)[0].strip() for line in block.splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("deepmemory ")]


def test_the_readme_command_line_examples_run(model_env, db, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEEPMEMORY_DB", str(db))
    monkeypatch.setenv("DEEPMEMORY_USER", "alice")
    assert invoke("memory", "write", "preferences.txt", "Metric units\n").exit_code == 0
    commands = readme_commands()
    assert len(commands) >= 6
    for args in commands:
        if args[0] == "chat":  # interactive: tests/cli/test_chat_terminal.py drives it
            continue
        result = invoke(*args)
        assert result.exit_code == 0, (args, result.stderr)
    assert (tmp_path / "backup.jsonl").read_text().count("\n") == 1
