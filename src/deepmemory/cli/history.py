"""``deepmemory memory history | diff | restore``: a memory file's revisions.

Every write, edit and delete of a memory file, by the agent or by ``deepmemory
memory``, is a numbered revision recorded with when and by which thread, user and
assistant (see :mod:`deepmemory.history`). These commands list a file's revisions,
diff two of them (or one and the file now), and restore one, which is itself a new
revision, so a restore is undone the same way. They are registered on the
``memory`` sub-app by ``cli.memory``.
"""

from __future__ import annotations

import dataclasses
import posixpath
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from deepmemory import paths
from deepmemory.backends.protocol import Author, Namespace, Revision
from deepmemory.cli._config import DbOption, JsonOption, Settings, UserOption
from deepmemory.cli._config import resolve as resolve_settings
from deepmemory.cli._store import MEMORY_MOUNT, Store, memory_path, open_store
from deepmemory.cli._terminal import (
    EXIT_USAGE,
    fail,
    is_tty,
    note,
    print_json,
    reports_errors,
    styled,
)
from deepmemory.errors import InvalidPathError

FileArgument = Annotated[
    str,
    typer.Argument(
        help="File as the agent sees it (/memories/notes.txt); '/memories' may be left out.",
        show_default=False,
    ),
]
RevisionArgument = Annotated[
    int, typer.Argument(help="Revision number (see `deepmemory memory history`).", min=1)
]

_DIFF_COLOURS = {"+": "green", "-": "red", "@": "cyan"}


@dataclasses.dataclass(frozen=True, slots=True)
class _File:
    """One memory file of one user, in an open store."""

    store: Store
    namespace: Namespace
    key: str
    path: str
    settings: Settings


@contextmanager
def _memory_file(path: str, user: str | None, db: str | None) -> Iterator[_File]:
    settings = resolve_settings(db=db, user=user)
    vpath = memory_path(path)
    try:
        vpath = paths.validate_file(vpath)
    except InvalidPathError as exc:
        fail(str(exc).removeprefix("Error: "), EXIT_USAGE)
    if vpath == MEMORY_MOUNT:
        fail("Give a file below /memories, such as /memories/notes.txt.", EXIT_USAGE)
    with open_store(settings.db) as store:
        yield _File(store, settings.namespace, vpath[len(MEMORY_MOUNT) :], vpath, settings)


def _author(revision: Revision) -> str:
    parts = [
        f"{label} {value}"
        for label, value in (
            ("thread", revision.thread_id),
            ("user", revision.user),
            ("assistant", revision.assistant),
        )
        if value
    ]
    return ", ".join(parts) or "-"


def history_lines(revisions: list[Revision]) -> list[str]:
    """A table of revisions, oldest first: number, time (UTC), change, size, author."""
    rows = [("REV", "WHEN (UTC)", "CHANGE", "SIZE", "BY")]
    for r in revisions:
        when = r.created_at[:19].replace("T", " ")
        size = "-" if r.size is None else str(r.size)
        rows.append((str(r.number), when, r.op, size, _author(r)))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return [
        f"{row[0]:>{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  "
        f"{row[3]:>{widths[3]}}  {row[4]}"
        for row in rows
    ]


@reports_errors
def history(
    path: FileArgument,
    user: UserOption = None,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """List a file's revisions, oldest first: when, what changed it, its size, and by whom.

    Example:
        deepmemory memory history /memories/instructions.txt
    """
    with _memory_file(path, user, db) as file:
        revisions = file.store.history(file.namespace, file.key)
    if not revisions:
        fail(
            f"No revisions of {file.path!r} are recorded. Use `deepmemory memory ls "
            f"{posixpath.dirname(file.path)}` to see what exists."
        )
    if json_output:
        print_json([dataclasses.asdict(r) for r in revisions])
        return
    header, *rows = history_lines(revisions)
    styled("\n".join([typer.style(header, bold=True), *rows]))


@reports_errors
def diff(
    path: FileArgument,
    old: RevisionArgument,
    new: Annotated[
        int | None,
        typer.Argument(help="Revision to compare with (default: the file now).", min=1),
    ] = None,
    user: UserOption = None,
    db: DbOption = None,
) -> None:
    """Show what changed from revision OLD to revision NEW (or to the file now), as a unified diff.

    Example:
        deepmemory memory diff /memories/instructions.txt 1 2
    """
    with _memory_file(path, user, db) as file:
        text = file.store.diff(file.namespace, file.key, old, new, path=file.path)
    if not text:
        note("No differences.")
        return
    if not is_tty(sys.stdout):
        typer.echo(text, nl=False)
        return
    lines = text.splitlines()
    shown = [typer.style(line, bold=True) for line in lines[:2]]
    shown += [typer.style(line, fg=_DIFF_COLOURS.get(line[:1])) for line in lines[2:]]
    styled("\n".join(shown))


@reports_errors
def restore(
    path: FileArgument,
    number: RevisionArgument,
    user: UserOption = None,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Put back a file's content as of revision NUMBER (recorded as a new revision).

    A deleted file comes back by restoring the revision before its deletion.

    Example:
        deepmemory memory restore /memories/instructions.txt 1
    """
    with _memory_file(path, user, db) as file:
        author = Author(user=file.settings.user)
        revision = file.store.restore(
            file.namespace, file.key, number, author=author, path=file.path
        )
    if json_output:
        print_json(dataclasses.asdict(revision))
        return
    typer.echo(
        f"Restored {file.path!r} to revision {number} (recorded as revision {revision.number})."
    )


def register(app: typer.Typer) -> None:
    """Add the three commands to the ``memory`` sub-app."""
    app.command("history")(history)
    app.command("diff")(diff)
    app.command("restore")(restore)
