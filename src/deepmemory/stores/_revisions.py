"""The SQL of revision history (schema: ``migrations`` m003), both dialects side by side.

Every change of a file (a key starting with ``/``) made while history is on adds a
row to ``deepmemory_revisions``: the file's value *as of* that change (``NULL`` for a
delete), when, which operation, and who (thread, user, assistant) when known.
Numbers come from ``deepmemory_revision_heads``, one counter per file that is never
deleted, so a number is never reused: not after a delete, not after pruning.

A revision is written with its change, never after it:

* **PostgreSQL: in the same statement.** The write becomes the first CTE of ``WITH w
  AS (write), head AS (bump the counter FROM w), r AS (insert the revision FROM
  head), p AS (prune)``. A compare-and-swap that does not land returns no row, so
  nothing is recorded. ``ON CONFLICT DO UPDATE`` locks the counter row, so
  concurrent writers of one file (already queued on the item's row) get
  consecutive numbers.
* **SQLite: in the same transaction.** The write, then (``Step.then``, given its rows)
  the counter, the revision and the prune, inside the write's ``BEGIN IMMEDIATE``;
  SQLite runs one writer at a time.

Retention (:class:`Retention`): ``keep_revisions`` newest per file (``0`` turns
recording off, ``None`` keeps every one) and ``keep_days``. A write prunes the
written file's own revisions beyond them (an index range, in the same statement or
transaction); ``prune_history()`` prunes every file. A delete prunes nothing, so a
deleted file's last content stays restorable until the file is written again or
``prune_history()`` runs. Reads, listings, globs and greps never touch these tables.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from deepmemory import clock
from deepmemory.backends._text import file_from_value
from deepmemory.backends.protocol import Author, Namespace, Revision, RevisionOp, StoredFile
from deepmemory.errors import ConfigError
from deepmemory.stores._sql import (
    CAS_ROW,
    SELECT_VERSIONS,
    TEXT_PARAM,
    TIME_PARAM,
    Dialect,
    Merge,
    Row,
    Step,
    _decode_value,
    _render,
    _step,
    cas_many,
    encode_namespace,
)

T = TypeVar("T")

DEFAULT_KEEP_REVISIONS = 50

_COLUMNS = "namespace, key, revision, op, value, size, created_at, thread_id, user_id, assistant_id"
_DELETE_COLUMNS = "namespace, key, revision, op, created_at, thread_id, user_id, assistant_id"
_HEAD_INSERT = "INSERT INTO deepmemory_revision_heads (namespace, key, revision)"
_BUMP = (
    "ON CONFLICT (namespace, key) DO UPDATE SET revision = deepmemory_revision_heads.revision + 1"
)


@dataclass(frozen=True, slots=True)
class Retention:
    """How much history a store keeps per file.

    Example:
        >>> Retention(keep_revisions=10, keep_days=30).records
        True
        >>> Retention(keep_revisions=0).records  # history off
        False
    """

    keep_revisions: int | None = DEFAULT_KEEP_REVISIONS
    keep_days: float | None = None

    def __post_init__(self) -> None:
        keep = self.keep_revisions
        if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 0):
            raise ConfigError(
                f"keep_revisions must be a whole number >= 0 (0 turns history off) or None "
                f"(keep every revision), not {keep!r}."
            )
        days = self.keep_days
        if days is not None and (
            isinstance(days, bool) or not isinstance(days, int | float) or not days > 0
        ):
            raise ConfigError(f"keep_days must be a number of days > 0 or None, not {days!r}.")

    @property
    def records(self) -> bool:
        """Whether writes record revisions at all."""
        return self.keep_revisions != 0

    def cutoff(self) -> str | None:
        """Revisions made before this instant (ISO 8601 UTC) are past ``keep_days``."""
        if self.keep_days is None:
            return None
        return _iso(clock.now() - timedelta(days=self.keep_days))


_iso = clock.iso


def _params(op: RevisionOp, author: Author | None, retention: Retention) -> dict[str, Any]:
    author = author or Author()
    return {
        "rev_op": op,
        "rev_now": clock.now_iso(),
        "rev_thread": author.thread_id,
        "rev_user": author.user,
        "rev_assistant": author.assistant,
        "rev_keep": retention.keep_revisions,
        "rev_cutoff": retention.cutoff(),
    }


def _expired(dialect: Dialect, retention: Retention, head: str) -> str | None:
    """SQL true for a revision past retention (``head``: SQL of its file's last number)."""
    conditions = []
    if retention.keep_revisions is not None:
        conditions.append(f"revision <= {head} - :rev_keep")
    if retention.keep_days is not None:
        conditions.append(f"created_at < {TIME_PARAM[dialect].format(':rev_cutoff')}")
    return " OR ".join(conditions) or None


def _author_values(dialect: Dialect) -> str:
    return ", ".join(
        TEXT_PARAM[dialect].format(f":rev_{n}") for n in ("thread", "user", "assistant")
    )


def record_write(
    dialect: Dialect,
    step: Step[T],
    op: RevisionOp,
    author: Author | None,
    retention: Retention,
) -> Step[T]:
    """``step`` (a write of ``:ns``/``:key`` ending ``RETURNING _sql.WRITTEN``) recording a revision.

    The revision's value and size are those of the row as written (an edit computed
    in SQL has no value in its parameters; a write keeps the file's created_at).
    """
    sql, params = step.query
    params = params | _params(op, author, retention)
    text, time = TEXT_PARAM[dialect].format, TIME_PARAM[dialect].format
    value, size = "w.value", "w.size"  # PostgreSQL: the write's RETURNING row
    if dialect == "sqlite":  # the row just written, in the same transaction
        row = "FROM deepmemory_items WHERE namespace = :ns AND key = :key"
        value, size = f"(SELECT value {row})", f"(SELECT size {row})"
    revision = (
        f"INSERT INTO deepmemory_revisions ({_COLUMNS}) SELECT {text(':ns')}, {text(':key')}, "
        f"revision, {text(':rev_op')}, {value}, {size}, "
        f"{time(':rev_now')}, {_author_values(dialect)} FROM {{source}}"
    )
    if dialect == "postgres":
        head = f"{_HEAD_INSERT} SELECT {text(':ns')}, {text(':key')}, 1 FROM w {_BUMP} RETURNING revision"
        source = "head CROSS JOIN w"
        parts = [
            f"w AS ({sql})",
            f"head AS ({_render(dialect, head, {})[0]})",
            f"r AS ({_render(dialect, revision.format(source=source), {})[0]})",
        ]
        expired = _expired(dialect, retention, "(SELECT revision FROM head)")
        if expired:
            prune = (
                "DELETE FROM deepmemory_revisions WHERE namespace = :ns AND key = :key "
                f"AND ({expired})"
            )
            parts.append(f"p AS ({_render(dialect, prune, {})[0]})")
        sql = f"WITH {', '.join(parts)} SELECT version FROM w"
        merge = None if step.merge is None else _recorded_many(retention)
        return Step((sql, params), step.finish, True, merge=merge)
    where = "WHERE namespace = :ns AND key = :key"
    follow = [
        (f"{_HEAD_INSERT} VALUES (:ns, :key, 1) {_BUMP}", params),
        (revision.format(source=f"deepmemory_revision_heads {where}"), params),
    ]
    expired = _expired(
        dialect, retention, f"(SELECT revision FROM deepmemory_revision_heads {where})"
    )
    if expired:
        follow.append((f"DELETE FROM deepmemory_revisions {where} AND ({expired})", params))
    return Step((sql, params), step.finish, True, lambda rows: follow if rows else [])


@functools.cache
def _recorded_many(retention: Retention) -> Merge:
    """PostgreSQL: concurrent compare-and-swap writes in one statement (``cas_many``).

    Each records its revision as ``record_write`` does.
    """
    head = (
        f"{_HEAD_INSERT} SELECT CAST(:ns AS text), w.key, 1 FROM w {_BUMP} "
        "RETURNING key AS _hkey, revision AS _head"
    )
    revision = (
        f"INSERT INTO deepmemory_revisions ({_COLUMNS}) SELECT CAST(:ns AS text), w.key, "
        "_head, CAST(:rev_op AS text), w.value, w.size, CAST(w._rev_now AS timestamptz), "
        f"{_author_values('postgres')} FROM w JOIN head ON _hkey = w.key"
    )
    ctes = f", head AS ({head}), r AS ({revision})"
    expired = _expired("postgres", retention, "_head")
    if expired:
        ctes += (
            ", p AS (DELETE FROM deepmemory_revisions USING head WHERE namespace = :ns "
            f"AND key = _hkey AND ({expired}))"
        )
    return Merge((*CAS_ROW, "rev_now"), cas_many(SELECT_VERSIONS, ("rev_now",), ctes))


def record_delete(
    dialect: Dialect, step: Step[T], author: Author | None, retention: Retention
) -> Step[T]:
    """``step`` (a delete in ``:ns`` ending ``RETURNING key``) recording a revision per key."""
    sql, params = step.query
    params = params | _params("delete", author, retention)
    text, time = TEXT_PARAM[dialect].format, TIME_PARAM[dialect].format
    values = f"'delete', {time(':rev_now')}, {_author_values(dialect)}"
    if dialect == "postgres":
        head = f"{_HEAD_INSERT} SELECT {text(':ns')}, key, 1 FROM d {_BUMP} RETURNING key, revision"
        revision = (
            f"INSERT INTO deepmemory_revisions ({_DELETE_COLUMNS}) "
            f"SELECT {text(':ns')}, key, revision, {values} FROM head"
        )
        parts = [f"d AS ({sql})", f"head AS ({_render(dialect, head, {})[0]})"]
        parts.append(f"r AS ({_render(dialect, revision, {})[0]})")
        return Step((f"WITH {', '.join(parts)} SELECT key FROM d", params), step.finish, True)
    keys = "SELECT value FROM json_each(:rev_keys)"
    follow = [
        # WHERE true: SQLite's parser needs it before ON CONFLICT in INSERT ... SELECT.
        f"{_HEAD_INSERT} SELECT :ns, value, 1 FROM json_each(:rev_keys) WHERE true {_BUMP}",
        f"INSERT INTO deepmemory_revisions ({_DELETE_COLUMNS}) SELECT namespace, key, revision, "
        f"{values} FROM deepmemory_revision_heads WHERE namespace = :ns AND key IN ({keys})",
    ]

    def then(rows: list[Row]) -> list[tuple[str, dict[str, Any]]]:
        if not rows:
            return []
        with_keys = params | {"rev_keys": json.dumps([row[0] for row in rows])}
        return [(statement, with_keys) for statement in follow]

    return Step((sql, params), step.finish, True, then)


def _revision(row: Row) -> Revision:
    number, op, created, size, thread, user, assistant = row
    created_at = created if isinstance(created, str) else _iso(created)  # timestamptz
    return Revision(
        int(number), op, created_at, None if size is None else int(size), thread, user, assistant
    )


def select_history(dialect: Dialect, namespace: Namespace, key: str) -> Step[list[Revision]]:
    """Every revision of one file, oldest first (content not read)."""
    params = {"ns": encode_namespace(namespace), "key": key}
    sql = (
        "SELECT revision, op, created_at, size, thread_id, user_id, assistant_id "
        "FROM deepmemory_revisions WHERE namespace = :ns AND key = :key ORDER BY revision"
    )
    return _step(dialect, sql, params, lambda rows: [_revision(r) for r in rows])


def select_revision(
    dialect: Dialect, namespace: Namespace, key: str, number: int
) -> Step[StoredFile | None]:
    """The file as of one revision; ``None`` if there is no such revision or it is a delete."""
    params = {"ns": encode_namespace(namespace), "key": key, "number": number}
    sql = (
        "SELECT value FROM deepmemory_revisions "
        "WHERE namespace = :ns AND key = :key AND revision = :number"
    )

    def finish(rows: list[Row]) -> StoredFile | None:
        if not rows or rows[0][0] is None:
            return None
        return file_from_value(_decode_value(dialect, rows[0][0]))

    return _step(dialect, sql, params, finish)


def prune(dialect: Dialect, retention: Retention) -> Step[int] | None:
    """Delete every revision past retention; ``None`` if retention keeps everything."""
    head = (
        "(SELECT h.revision FROM deepmemory_revision_heads AS h "
        "WHERE h.namespace = deepmemory_revisions.namespace AND h.key = deepmemory_revisions.key)"
    )
    expired = _expired(dialect, retention, head)
    if expired is None:
        return None
    params = {"rev_keep": retention.keep_revisions, "rev_cutoff": retention.cutoff()}
    sql = f"DELETE FROM deepmemory_revisions WHERE {expired} RETURNING 1"
    if dialect == "postgres":
        sql = f"WITH p AS ({sql}) SELECT count(*) FROM p"
        return _step(dialect, sql, params, lambda rows: int(rows[0][0]), write=True)
    return _step(dialect, sql, params, len, write=True)
