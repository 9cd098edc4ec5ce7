"""The database behind the command, and the memory backend over it.

``--db`` names a SQLite file (``SQLiteStore``) or, starting with ``postgresql://``, a
PostgreSQL database (``PostgresStore``; a ``schema=NAME`` URL parameter picks the schema
its tables live in, ``public`` by default). Both hold memories and, through their
``checkpointer()``, the conversations' thread state.

The memory of user U is the namespace ``("memories", U)``. The agent sees it as
``/memories/`` (a ``CompositeBackend`` routes that prefix to a ``StoreBackend``; all
other paths are the thread's scratch space), and ``deepmemory memory`` commands reach
the very same backend, mounted at ``/memories``, so both name files alike. Both carry
the user's prune policy (``Settings.policy``), so a file expired by ``ttl_days`` is
gone from both at once, deleted or not.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, cast
from urllib.parse import unquote

from deepmemory.cli._config import Settings
from deepmemory.cli._terminal import note_if_done
from deepmemory.errors import ConfigError

if TYPE_CHECKING:  # imported where used, so that `deepmemory --help` stays cheap
    from langgraph.store.base import IndexConfig

    from deepmemory.backends import CompositeBackend, StoreBackend
    from deepmemory.stores import PostgresStore, SQLiteStore

MEMORY_MOUNT = "/memories"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
SCHEMA_PARAMETER = "schema"  # ours, not libpq's: taken out of the URL before connecting

Store: TypeAlias = "SQLiteStore | PostgresStore"


def is_postgres(db: str) -> bool:
    """Whether ``db`` is a PostgreSQL URL rather than a SQLite file."""
    return db.startswith(POSTGRES_SCHEMES)


def shown_db(db: str) -> str:
    """``db`` fit to print: a URL without its password (user info or query)."""
    if "://" not in db:  # a file (any URL is masked, even one we refuse)
        return db
    scheme, rest = db.split("://", 1)
    at = _user_info_end(rest)
    user, colon, _ = rest[: max(at, 0)].partition(":")
    if colon:
        rest = f"{user}:***{rest[at:]}"
    return f"{scheme}://" + re.sub(r"([?&]password=)[^&]*", r"\1***", rest)


def _user_info_end(rest: str) -> int:
    """Where ``user:password`` ends (its ``@``) in a URL after ``scheme://``; -1: none.

    Looked for before the path, else before the query: a password may hold a ``?``,
    ``#`` or ``/`` (libpq takes them), a query value an ``@``.
    """
    for stop in ("/", "?"):
        end = rest.find(stop)
        at = rest.rfind("@", 0, end if end >= 0 else len(rest))
        if at >= 0:
            return at
    return -1


def check_db(db: str) -> None:
    """Refuse a ``--db`` that is a URL of anything but PostgreSQL (never a file of that name)."""
    if "://" in db and not is_postgres(db):
        scheme = db.split("://", 1)[0]
        raise ConfigError(
            f"--db {shown_db(db)!r}: {scheme!r} databases are not supported. Give a SQLite "
            "file (such as ./memory.db) or a PostgreSQL URL (postgresql://user@host/dbname)."
        )
    if is_postgres(db):
        postgres_target(db)


def postgres_target(db: str) -> tuple[str, str]:
    """The URL to connect to and the schema to work in, from a ``--db`` PostgreSQL URL.

    ``schema=NAME`` (percent-encoded like any URL parameter) is taken out; the rest of
    the URL stays exactly as written (``postgresql:///db``, ``sslmode=...``), for libpq.
    """
    scheme, rest = db.split("://", 1)
    at = _user_info_end(rest)
    head, mark, query = rest.partition("?") if at < 0 else _after(rest, at)
    kept: list[str] = []
    names: list[str] = []
    for field in query.split("&") if query else []:
        key, _, value = field.partition("=")
        if unquote(key) == SCHEMA_PARAMETER:
            names.append(unquote(value))
        else:
            kept.append(field)
    if len(names) > 1:
        raise ConfigError(
            f"--db {shown_db(db)!r}: give schema= once (it names the one schema the tables live in)."
        )
    if names and not names[0]:
        raise ConfigError(
            f"--db {shown_db(db)!r}: schema= needs a schema name (such as ?schema=app), "
            "or leave it out for 'public'."
        )
    url = f"{scheme}://{head}" + (mark + "&".join(kept) if kept else "")
    return url, names[0] if names else "public"


def _after(rest: str, at: int) -> tuple[str, str, str]:
    """``rest`` split at its query's ``?``, looked for after the user info only.

    (A password may hold a ``?``.)
    """
    head, mark, query = rest[at:].partition("?")
    return rest[:at] + head, mark, query


@contextmanager
def open_store(
    db: str, index: dict[str, Any] | None = None, *, writes: bool = False
) -> Iterator[Store]:
    """The store named by ``db`` (with ``index``: recall by meaning), closed on exit.

    A SQLite file that does not exist is created (with its folders) only for a command
    that ``writes``: kept and said if the command succeeds, removed with the folders
    made for it if it fails, so a mistake leaves nothing behind. A command that only
    reads gets an empty memory for the while (nothing on disk) and, if it succeeds,
    says there is no memory there yet.
    """
    check_db(db)
    config = cast("IndexConfig | None", index)
    file = Path(db)
    if is_postgres(db):
        from deepmemory.stores import PostgresStore

        url, schema = postgres_target(db)
        with PostgresStore(connection_string=url, schema=schema, index=config) as postgres:
            yield postgres
        return
    from deepmemory.stores import SQLiteStore

    if file.exists():
        with SQLiteStore(db, index=config) as store:
            yield store
        return
    if not writes:
        with tempfile.TemporaryDirectory(prefix="deepmemory-empty-") as empty:
            with SQLiteStore(Path(empty) / "memory.db", index=config) as store:
                yield store
        note_if_done(
            f"No memory yet: {db} does not exist (the first command that saves creates it)."
        )
        return
    made = [p for p in file.absolute().parents if not p.exists()]
    store = SQLiteStore(db, index=config)
    succeeded = False
    try:
        yield store
        succeeded = True
    finally:
        store.close()
        if succeeded:
            note_if_done(f"Created {db} (a new memory).")
        else:
            for leftover in (file, *(file.with_name(file.name + x) for x in ("-wal", "-shm"))):
                leftover.unlink(missing_ok=True)
            for folder in made:  # deepest first
                with contextlib.suppress(OSError):
                    folder.rmdir()


def _user_memory(store: Store, settings: Settings) -> StoreBackend:
    from deepmemory.backends import StoreBackend

    return StoreBackend(store=store, namespace=settings.namespace, prune=settings.policy)


def memory_backend(store: Store, settings: Settings) -> StoreBackend:
    """The user's memory, serving paths below ``/memories`` as the agent names them."""
    return _user_memory(store, settings).mounted(MEMORY_MOUNT)


def agent_backend(store: Store, settings: Settings) -> CompositeBackend:
    """The agent's files: ``/memories/`` in the store, everything else in the thread.

    The model's writes to memory are held to ``LimitsBackend``'s defaults (1 MiB a
    file, 100 MiB in all); ``deepmemory memory write`` and ``import`` are not.
    """
    from deepmemory.backends import CompositeBackend, LimitsBackend, StateBackend

    memory = LimitsBackend(_user_memory(store, settings))
    return CompositeBackend(default=StateBackend(), routes={MEMORY_MOUNT + "/": memory})


def memory_path(path: str) -> str:
    """A path as the agent sees it: ``/memories/x`` stays, ``/x`` and ``x`` gain the prefix.

    ``/``, ``/memories`` and ``""`` all name the top of the memory.
    """
    if path in ("", "/", MEMORY_MOUNT, MEMORY_MOUNT + "/"):
        return MEMORY_MOUNT
    if path.startswith(MEMORY_MOUNT + "/"):
        return path
    return MEMORY_MOUNT + "/" + path.lstrip("/")
