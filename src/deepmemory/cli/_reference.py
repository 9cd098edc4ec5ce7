"""The CLI reference (docs/cli.md), generated from the ``--help`` of every command.

Run ``python -m deepmemory.cli._reference > docs/cli.md``; ``tests/cli`` fails when
the file is stale. Help is rendered 100 columns wide without colour, so the output
does not depend on the terminal it is generated in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import typer
from typer.testing import CliRunner

from deepmemory.cli import app

WIDTH = 100
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

HEADER = """# deepmemory command-line reference

Generated from the `--help` of every command by
`python -m deepmemory.cli._reference > docs/cli.md`; a test fails when it is stale.
Every option can also be set through the environment variable shown with it.
"""


def command_paths(command: Any = None, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command's path below the root (``()``, ``("memory",)``, ``("memory", "ls")``...)."""
    command = command or typer.main.get_command(app)
    yield path
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from command_paths(sub, (*path, name))


def help_text(path: tuple[str, ...]) -> str:
    """The ``--help`` of one command, as plain text."""
    env = {"COLUMNS": str(WIDTH), "TERMINAL_WIDTH": str(WIDTH), "NO_COLOR": "1"}
    result = CliRunner().invoke(app, [*path, "--help"], env=env, color=False)
    if result.exit_code != 0:
        raise RuntimeError(f"deepmemory {' '.join(path)} --help failed: {result.output}")
    lines = [_ANSI.sub("", line).rstrip() for line in result.output.splitlines()]
    return "\n".join(lines).strip("\n")


def reference() -> str:
    """The whole reference document (Markdown)."""
    parts = [HEADER]
    for path in command_paths():
        title = " ".join(("deepmemory", *path))
        parts.append(f"## {title}\n\n```text\n{help_text(path)}\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    print(reference(), end="")
