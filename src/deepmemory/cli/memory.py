"""``deepmemory memory``: a user's long-term memory, for the person who owns it.

The same operations the agent has (``ls``, ``cat`` for read_file, ``write``, ``edit``,
``rm`` for delete, ``grep``, ``glob``), on the same store and namespace, with paths as
the agent names them. ``tree`` shows the hierarchy; ``export`` and ``import`` move
memory between stores as a JSON Lines archive (see ``_archive``); ``history``,
``diff`` and ``restore`` work with a file's revisions (see ``cli.history``); ``prune``
deletes what the prune policy (``ttl_days``, ``max_files``, ``max_bytes``) forgets.

Results are rendered by the same ``render_*`` functions the agent's tools use; only
errors are reworded for a person (``deepmemory memory ls`` instead of ``ls(...)``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Annotated, Any

import typer

from deepmemory.backends._text import human_size
from deepmemory.cli import _archive
from deepmemory.cli import history as _history
from deepmemory.cli._config import (
    MEMORY_PREFIX,
    DbOption,
    JsonOption,
    MaxBytesOption,
    MaxFilesOption,
    TtlDaysOption,
    UserOption,
    check_user,
    config_path,
)
from deepmemory.cli._config import resolve as resolve_settings
from deepmemory.cli._store import (
    MEMORY_MOUNT,
    check_db,
    is_postgres,
    memory_backend,
    memory_path,
    open_store,
)
from deepmemory.cli._terminal import (
    EXIT_USAGE,
    console,
    fail,
    is_tty,
    note,
    plural,
    print_json,
    reports_errors,
    styled,
)
from deepmemory.cli._typed import AsTyped
from deepmemory.middleware.rendering import (
    render_delete,
    render_edit,
    render_glob,
    render_grep,
    render_ls,
    render_move,
    render_recall,
    render_write,
)

if TYPE_CHECKING:  # imported where used, so that `deepmemory --help` stays cheap
    from deepmemory.backends import StoreBackend
    from deepmemory.pruning import PruneReport

memory_app = typer.Typer(name="memory", no_args_is_help=True)


@memory_app.callback()
def _memory_group() -> None:
    """Read and change long-term memory (/memories/) as the agent sees it.

    Paths are as the agent names them (/memories/preferences.txt); the /memories
    prefix may be left out (preferences.txt and /preferences.txt name the same file).
    Memory belongs to one user (--user, DEEPMEMORY_USER, else the OS user name).

    Example:
        deepmemory memory cat preferences.txt --user alice
    """


PathArgument = Annotated[
    str,
    typer.Argument(
        help="Path as the agent sees it (/memories/notes.txt); '/memories' may be left out.",
        show_default=False,
    ),
]
DirArgument = Annotated[
    str,
    typer.Argument(help="Directory, as the agent sees it (default: all of /memories)."),
]
AllUsersOption = Annotated[
    str | None,
    typer.Option(
        "--user",
        "-u",
        help="Only this user's memory (default: every user; DEEPMEMORY_USER is not read here).",
        show_default=False,
    ),
]

# Model-facing hints in backend messages, and what a person types instead.
_FOR_PEOPLE = [
    (re.compile(r"\bls\((['\"])(.*?)\1\)"), r"`deepmemory memory ls \2`"),
    (re.compile(r"\bread_file\((['\"])(.*?)\1\)"), r"`deepmemory memory cat \2`"),
    (re.compile(r"\bpass replace_all=True\b"), "pass --all"),
    (re.compile(r"\buse read_file\b"), "use `deepmemory memory cat`"),
    (re.compile(r"\bwrite_file\b"), "`deepmemory memory write`"),
]


def for_people(message: str) -> str:
    """A backend's model-facing error, reworded for someone at the command line."""
    message = message.removeprefix("Error: ")
    for pattern, replacement in _FOR_PEOPLE:
        message = pattern.sub(replacement, message)
    return message


def _check(error: str | None) -> None:
    if error:
        fail(for_people(error))


def _emit(json_output: bool, items: Sequence[Any], text: Callable[[], str]) -> None:
    """Print a result: its items as JSON for programs, else the text the agent would read."""
    if json_output:
        print_json([dataclasses.asdict(item) for item in items])
    else:
        typer.echo(text())


@contextmanager
def _memory(user: str | None, db: str | None, *, writes: bool = False) -> Iterator[StoreBackend]:
    """The user's memory; only a command that ``writes`` may create the database."""
    settings = resolve_settings(db=db, user=user)
    with open_store(settings.db, settings.index, writes=writes) as store:
        yield memory_backend(store, settings)


def _recalling(backend: StoreBackend) -> StoreBackend:
    if not backend.recalls():
        fail(
            "Searching memory by meaning needs an embedding model: set embed = "
            '"openai:text-embedding-3-small" and embed_dims = 1536 in the config file '
            "(or DEEPMEMORY_EMBED and DEEPMEMORY_EMBED_DIMS). grep finds exact words "
            "without one.",
            EXIT_USAGE,
        )
    return backend


@memory_app.command("ls")
@reports_errors
def ls(
    path: DirArgument = MEMORY_MOUNT,
    user: UserOption = None,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """List a directory: files with their size, subdirectories ending in '/'.

    Example:
        deepmemory memory ls /memories/projects --json
    """
    with _memory(user, db) as backend:
        result = backend.ls(memory_path(path))
    _check(result.error)
    _emit(json_output, result.entries, lambda: render_ls(result))


@memory_app.command("cat")
@reports_errors
def cat(path: PathArgument, user: UserOption = None, db: DbOption = None) -> None:
    """Print a file: numbered and highlighted on a terminal, byte-exact when piped.

    Example:
        deepmemory memory cat /memories/preferences.txt
    """
    with _memory(user, db) as backend:
        (result,) = backend.download_files([memory_path(path)])
    _check(result.error)
    data = result.content or b""
    if not is_tty(sys.stdout):
        typer.echo(data, nl=False)
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        fail(
            f"{result.path!r} is binary ({len(data)} bytes); redirect it to a file: "
            f"deepmemory memory cat {result.path} > FILE"
        )
    from rich.syntax import Syntax

    lexer = Syntax.guess_lexer(PurePosixPath(result.path).name, text)
    numbered = text.removesuffix("\n")  # a final newline ends the last line, starts none
    syntax = Syntax(numbered, lexer, line_numbers=True, word_wrap=True, background_color="default")
    console().print(syntax)


def _stdin_is_tty() -> bool:
    return is_tty(sys.stdin)


def _edit_in_editor(current: bytes, file_name: str) -> bytes | None:
    """The text saved in ``$VISUAL``/``$EDITOR``, or ``None`` if it is unchanged."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not editor:
        fail(
            "stdin is a terminal and neither VISUAL nor EDITOR is set: set one, give the "
            "content as an argument, or pipe it in (... | deepmemory memory write PATH).",
            EXIT_USAGE,
        )
    with tempfile.TemporaryDirectory(prefix="deepmemory-") as tmp:
        draft = Path(tmp) / file_name
        draft.write_bytes(current)
        status = subprocess.call([*shlex.split(editor), str(draft)])
        if status:
            fail(f"The editor {editor!r} exited with status {status}; nothing was written.")
        saved = draft.read_bytes()
    return None if saved == current else saved


def _new_content(user: str | None, db: str | None, vpath: str, content: str | None) -> bytes | None:
    """What ``write`` stores: the argument, stdin, or the editor's text (None: unchanged)."""
    if content is not None:
        return content.encode("utf-8")
    if not _stdin_is_tty():
        return typer.get_binary_stream("stdin").read()
    current = b""  # a new file (or a memory not created yet) starts empty
    settings = resolve_settings(db=db, user=user)
    check_db(settings.db)
    if is_postgres(settings.db) or Path(settings.db).exists():
        with _memory(user, db) as backend:
            (found,) = backend.download_files([vpath])
        current = found.content or b""
    return _edit_in_editor(current, PurePosixPath(vpath).name)


@memory_app.command("write", cls=AsTyped)
@reports_errors
def write(
    path: PathArgument,
    content: Annotated[
        str | None,
        typer.Argument(
            help="The new content (default: stdin, or $EDITOR when stdin is a terminal).",
            show_default=False,
        ),
    ] = None,
    user: UserOption = None,
    db: DbOption = None,
) -> None:
    """Create or replace a file with CONTENT, stdin, or what you write in $EDITOR.

    Example:
        echo "Metric units" | deepmemory memory write preferences.txt
    """
    vpath = memory_path(path)
    data = _new_content(user, db, vpath, content)  # before anything is created
    if data is None:
        note("No changes; nothing was written.")
        return
    with _memory(user, db, writes=True) as backend:
        (result,) = backend.upload_files([(vpath, data)])
    _check(result.error)
    from deepmemory.backends import WriteResult

    typer.echo(render_write(WriteResult(result.path)))


@memory_app.command("edit", cls=AsTyped)
@reports_errors
def edit(
    path: PathArgument,
    old: Annotated[str, typer.Argument(help="Exact text to replace.", show_default=False)],
    new: Annotated[str, typer.Argument(help="Text to put instead.", show_default=False)],
    replace_all: Annotated[
        bool, typer.Option("--all", help="Replace every occurrence, not exactly one.")
    ] = False,
    user: UserOption = None,
    db: DbOption = None,
) -> None:
    """Replace exact text in a file (it must occur exactly once, unless --all).

    Example:
        deepmemory memory edit /memories/preferences.txt "metric" "imperial"
    """
    with _memory(user, db) as backend:
        result = backend.edit(memory_path(path), old, new, replace_all=replace_all)
    _check(result.error)
    typer.echo(render_edit(result))


@memory_app.command("rm")
@reports_errors
def rm(
    path: PathArgument,
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="Delete a directory with everything in it.")
    ] = False,
    user: UserOption = None,
    db: DbOption = None,
) -> None:
    """Delete a file (or, with -r, a directory and everything in it).

    Example:
        deepmemory memory rm /memories/old-notes.txt
    """
    vpath = memory_path(path)
    with _memory(user, db) as backend:
        listing = backend.ls(vpath)
        if listing.error is None and not recursive and vpath != MEMORY_MOUNT:
            fail(
                f"{vpath!r} is a directory of {len(listing.entries)} entries; pass -r to "
                "delete it with everything in it.",
                EXIT_USAGE,
            )
        result = backend.delete(vpath)
    _check(result.error)
    typer.echo(render_delete(result))


@memory_app.command("mv")
@reports_errors
def mv(
    path: PathArgument,
    new_path: Annotated[
        str,
        typer.Argument(help="Where it goes ('/memories' may be left out).", show_default=False),
    ],
    user: UserOption = None,
    db: DbOption = None,
) -> None:
    """Move or rename a file, or a directory with everything in it (never replaces).

    Example:
        deepmemory memory mv notes.txt archive/2026-notes.txt
    """
    with _memory(user, db) as backend:
        result = backend.move(memory_path(path), memory_path(new_path))
    _check(result.error)
    typer.echo(render_move(result))


@memory_app.command("search", cls=AsTyped)
@reports_errors
def search(
    query: Annotated[str, typer.Argument(help="What to look for, in plain words.")],
    path: DirArgument = MEMORY_MOUNT,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many passages.")] = 5,
    json_output: JsonOption = False,
    user: UserOption = None,
    db: DbOption = None,
) -> None:
    """Find passages by meaning (needs an embedder: embed / embed_dims in the config).

    Example:
        deepmemory memory search "what does the user drink in the morning"
    """
    with _memory(user, db) as backend:
        result = _recalling(backend).recall(query, memory_path(path), limit)
    _check(result.error)
    _emit(json_output, result.passages, lambda: render_recall(result))


@memory_app.command("reindex")
@reports_errors
def reindex(path: DirArgument = MEMORY_MOUNT, user: UserOption = None, db: DbOption = None) -> None:
    """Index the files search by meaning does not cover yet (e.g. after embedder errors).

    Example:
        deepmemory memory reindex
    """
    with _memory(user, db) as backend:
        done, failed = _recalling(backend).reindex(memory_path(path))
    typer.echo(f"Indexed {done} file(s) for search by meaning.")
    if failed:
        fail(
            f"{len(failed)} file(s) could not be indexed (the embedder failed), e.g. "
            f"{failed[0]}; run reindex again later.",
        )


@memory_app.command("grep", cls=AsTyped)
@reports_errors
def grep(
    text: Annotated[str, typer.Argument(help="Literal text to find (case-sensitive).")],
    path: DirArgument = MEMORY_MOUNT,
    glob: Annotated[
        str | None,
        typer.Option("--glob", "-g", help="Only files matching this pattern, e.g. '*.md'."),
    ] = None,
    files_only: Annotated[
        bool, typer.Option("--files", "-l", help="Print only the paths of matching files.")
    ] = False,
    count: Annotated[
        bool, typer.Option("--count", "-c", help="Print the number of matches per file.")
    ] = False,
    user: UserOption = None,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Find lines containing TEXT: path:line: text for each match.

    Example:
        deepmemory memory grep "metric" /memories --glob "*.txt"
    """
    with _memory(user, db) as backend:
        result = backend.grep(text, memory_path(path), glob)
    _check(result.error)
    mode = "files_with_matches" if files_only else "count" if count else "content"
    _emit(json_output, result.matches, lambda: render_grep(result, mode))


@memory_app.command("glob")
@reports_errors
def glob(
    pattern: Annotated[str, typer.Argument(help="Pattern: * ** ? {a,b}, e.g. '**/*.md'.")],
    path: DirArgument = MEMORY_MOUNT,
    user: UserOption = None,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """List the files whose path matches PATTERN (without '/', names at any depth).

    Example:
        deepmemory memory glob "*.md" /memories/projects
    """
    with _memory(user, db) as backend:
        result = backend.glob(pattern, memory_path(path))
    _check(result.error)
    _emit(json_output, result.files, lambda: render_glob(result))


def tree_lines(root: str, file_paths: list[str]) -> list[str]:
    """``root`` and the files below it, drawn as a tree (directories first, by name)."""
    nested: dict[str, Any] = {}
    prefix = root.rstrip("/") + "/"
    for file_path in file_paths:
        node = nested
        for part in file_path.removeprefix(prefix).split("/"):
            node = node.setdefault(part, {})
    lines = [typer.style(prefix, fg="blue", bold=True)]

    def draw(node: dict[str, Any], indent: str) -> None:
        names = sorted(node, key=lambda n: (not node[n], n))
        for i, name in enumerate(names):
            last = i == len(names) - 1
            shown = typer.style(name + "/", fg="blue", bold=True) if node[name] else name
            lines.append(f"{indent}{'└── ' if last else '├── '}{shown}")
            draw(node[name], indent + ("    " if last else "│   "))

    draw(nested, "")
    return lines


@memory_app.command("tree")
@reports_errors
def tree(path: DirArgument = MEMORY_MOUNT, user: UserOption = None, db: DbOption = None) -> None:
    """Show the files below a directory as a tree.

    Example:
        deepmemory memory tree
    """
    vpath = memory_path(path)
    with _memory(user, db) as backend:
        listing = backend.ls(vpath)
        if listing.error and vpath != MEMORY_MOUNT:
            _check(listing.error)
        result = backend.glob("**", vpath)
    _check(result.error)
    styled("\n".join(tree_lines(vpath, [f.path for f in result.files])))


@memory_app.command("export")
@reports_errors
def export(
    file: Annotated[str, typer.Argument(help="Archive to write (JSON Lines); '-' for stdout.")],
    user: AllUsersOption = None,
    db: DbOption = None,
) -> None:
    """Save memory (every user's, or one --user's) to a portable JSON Lines archive.

    Byte-exact, timestamps and binary files included; `import` reads it into any store.

    Example:
        deepmemory memory export backup.jsonl --db ./memory.db
    """
    settings = resolve_settings(db=db, user=None)
    files, users = 0, set()
    target = None if file == "-" else Path(file)
    partial = None if target is None else target.with_name(target.name + ".partial")
    # Line by line as the files are read: an export never holds the whole archive.
    with open_store(settings.db) as store, contextlib.ExitStack() as stack:
        out = (
            typer.get_text_stream("stdout")
            if partial is None
            else stack.enter_context(partial.open("w", encoding="utf-8"))
        )
        try:
            namespaces = _archive.memory_namespaces(store, check_user(user) if user else None)
            for entry in _archive.export_files(store, namespaces):
                out.write(entry.to_line() + "\n")
                files += 1
                users.add(entry.namespace)
        except BaseException:
            if partial is not None:
                stack.close()
                partial.unlink(missing_ok=True)  # no half archive left behind
            raise
    if target is not None and partial is not None:
        os.replace(partial, target)  # a reader never sees half an archive
    where = "stdout" if file == "-" else file
    note(f"Exported {plural(files, 'file')} of {plural(len(users), 'user')} to {where}.")


@memory_app.command("import")
@reports_errors
def import_(
    file: Annotated[str, typer.Argument(help="Archive to read (JSON Lines); '-' for stdin.")],
    user: AllUsersOption = None,
    to_user: Annotated[
        str | None,
        typer.Option("--to-user", help="Import the archive's (one user's) memory as this user."),
    ] = None,
    any_namespace: Annotated[
        bool,
        typer.Option(
            "--any-namespace",
            help="Also import lines for namespaces other than users' memory (memories/<user>).",
        ),
    ] = False,
    db: DbOption = None,
) -> None:
    """Load an archive made by `export` into the store, replacing files of the same path.

    Example:
        deepmemory memory import backup.jsonl --db postgresql://localhost/app
    """
    if file == "-":
        text = typer.get_text_stream("stdin").read()
    else:
        text = Path(file).read_text(encoding="utf-8")
    entries = list(_archive.read_archive(text.splitlines(), any_namespace=any_namespace))
    if user is not None:
        entries = [e for e in entries if e.namespace == (MEMORY_PREFIX, check_user(user))]
    namespaces = {e.namespace for e in entries}
    if to_user is not None:
        if len(namespaces) > 1:
            fail(
                f"The archive holds {len(namespaces)} users' memory; choose one with --user "
                "to import it with --to-user.",
                EXIT_USAGE,
            )
        target = (MEMORY_PREFIX, check_user(to_user))
        entries = [dataclasses.replace(e, namespace=target) for e in entries]
    settings = resolve_settings(db=db, user=None)
    with open_store(settings.db, writes=True) as store:
        replaced = sum(_archive.import_file(store, entry) for entry in entries)
    files, users = plural(len(entries), "file"), plural(len(namespaces), "user")
    typer.echo(f"Imported {files} ({replaced} replaced) of {users}.")


def _report_record(report: PruneReport) -> dict[str, Any]:
    """A prune report for programs; each removed file also gets its ``path`` under /memories."""
    record = dataclasses.asdict(report)
    record["removed"] = [{"path": MEMORY_MOUNT + p["key"], **p} for p in record["removed"]]
    return record


@memory_app.command("prune")
@reports_errors
def prune(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be removed; delete nothing.")
    ] = False,
    ttl_days: TtlDaysOption = None,
    max_files: MaxFilesOption = None,
    max_bytes: MaxBytesOption = None,
    user: AllUsersOption = None,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Delete memory not used for --ttl-days, then the least recently used files over the caps.

    A file's last use is its last write or its last read (by the agent or by
    `deepmemory memory`). Options override ttl_days, max_files and
    max_bytes in the config file. Each user's memory is pruned on its own: a summary
    line, then each file removed with its reason and size. Expired files are hidden
    already; this deletes them. Every deletion is a revision: `deepmemory memory
    restore` brings a file back. `deepmemory chat` prunes in the background as it runs.

    Example:
        deepmemory memory prune --ttl-days 90 --max-files 500 --dry-run
    """
    settings = resolve_settings(
        db=db, user=None, ttl_days=ttl_days, max_files=max_files, max_bytes=max_bytes
    )
    policy = settings.policy
    if policy.is_empty:
        fail(
            "Nothing to prune by: pass --ttl-days, --max-files or --max-bytes, or set "
            f"ttl_days, max_files or max_bytes in {config_path()}.",
            EXIT_USAGE,
        )
    with open_store(settings.db) as store:
        namespaces = _archive.memory_namespaces(store, check_user(user) if user else None)
        from deepmemory.pruning import prune_namespace

        reports = [prune_namespace(store, ns, policy, dry_run=dry_run) for ns in namespaces]
    if json_output:
        print_json([_report_record(report) for report in reports])
        return
    if not reports:
        note("No memory to prune: the database holds no user's memory.")
    for report in reports:
        typer.echo(report.summary())
        for pruned in report.removed:
            typer.echo(f"{MEMORY_MOUNT}{pruned.key}  {pruned.reason}  {human_size(pruned.size)}")


_history.register(memory_app)
