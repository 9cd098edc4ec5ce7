"""The SQL of the memory map, both dialects side by side (schema: ``migrations`` m006).

The memory map shows the files changed last and how many there are, on every model
call. Its cost must follow what it shows, not the size of the memory:

* ``recent_files``: one statement walking the ``(namespace, version)`` index from the
  newest version down (every write takes a new version from the database's counter,
  so this is "last changed first") and stopping after ``limit`` files, with the first
  characters of each file's text for its summary, plus a count of the files that
  stops at ``COUNT_CAP``.
* ``changes``: a token the map is cached under. It is the namespace's number of
  deletes (``deepmemory_deletions``) and its newest ``limit`` versions, read from the
  same index. A write gives a file a version above every committed one, so it enters
  the newest versions; on PostgreSQL a write that takes its version before another
  but commits after it still changes the token once it commits, unless ``limit``
  newer writes landed meanwhile, in which case the map does not show it either.
"""

from __future__ import annotations

import json
from typing import Any

from deepmemory.backends._text import file_from_value, split_lines
from deepmemory.backends.protocol import Namespace, RecentFile, RecentResult
from deepmemory.stores._sql import (
    FILE_TEXT,
    Dialect,
    Row,
    Step,
    _fresh,
    _step,
    dir_prefix,
    encode_namespace,
    prefix_end,
)

# The count stops here: counting every file of a huge memory on each rebuild would
# cost what the memory holds. The map then says "more than".
COUNT_CAP = 10_000
# Characters of each file's text sent for its summary line.
HEAD_CHARS = 400

# SQLite without statistics would read the key index and sort; the version index
# yields the newest first and stops at the limit.
_BY_VERSION = {"sqlite": " INDEXED BY deepmemory_items_version", "postgres": ""}
_LEFT = {"sqlite": "substr({}, 1, :head)", "postgres": "left({}, :head)"}


def recent_files(
    dialect: Dialect, namespace: Namespace, dir_key: str, limit: int, fresh: str | None
) -> Step[RecentResult]:
    """The ``limit`` files below ``dir_key`` changed last, newest first, and their count."""
    lo = dir_prefix(dir_key)
    params: dict[str, Any] = {"ns": encode_namespace(namespace), "lo": lo, "hi": prefix_end(lo)}
    params |= {"limit": limit, "cap": COUNT_CAP, "head": HEAD_CHARS, "lo_len": len(lo)}
    used = _fresh(dialect, fresh, params)
    # Below the directory, written so that no key index is chosen for it: the rows
    # must come from the version index, newest first.
    below = "substr(key, 1, :lo_len) = :lo AND key <> :lo"
    head = "CASE WHEN encoding = 'utf-8' THEN " + _LEFT[dialect].format(FILE_TEXT[dialect])
    head += " END"
    raw = "NULL"
    if dialect == "sqlite":  # json_extract() stops at an escaped NUL: decode those here
        raw = "CASE WHEN instr(value, '\\u0000') > 0 THEN value END"
    sql = (
        "SELECT c.n, r.key, r.size, r.modified_at, r.encoding, r.head, r.raw FROM "
        "(SELECT count(*) AS n FROM (SELECT 1 FROM deepmemory_items "
        f"WHERE namespace = :ns AND key > :lo AND key < :hi{used} LIMIT :cap) AS k) AS c "
        f"LEFT JOIN (SELECT key, size, modified_at, encoding, version, {head} AS head, "
        f"{raw} AS raw FROM deepmemory_items{_BY_VERSION[dialect]} "
        f"WHERE namespace = :ns AND {below}{used} ORDER BY version DESC LIMIT :limit) AS r "
        "ON 1 = 1 ORDER BY r.version DESC"
    )

    def finish(rows: list[Row]) -> RecentResult:
        total = int(rows[0][0]) if rows else 0
        files = [_recent(row) for row in rows if row[1] is not None]
        return RecentResult(dir_key, files, total, total >= COUNT_CAP)

    return _step(dialect, sql, params, finish, custom_plan=True)


def _recent(row: Row) -> RecentFile:
    _, key, size, modified_at, encoding, head, raw = row
    if encoding != "utf-8":
        return RecentFile(key, int(size or 0), modified_at, None)
    if raw is not None:
        head = file_from_value(json.loads(raw)).content[:HEAD_CHARS]
    lines = split_lines(str(head or ""))
    return RecentFile(key, int(size or 0), modified_at, lines[0] if lines else "")


def changes(dialect: Dialect, namespace: Namespace, limit: int) -> Step[tuple[Any, ...]]:
    """The namespace's change token: its delete count and its newest ``limit`` versions."""
    params = {"ns": encode_namespace(namespace), "limit": limit}
    sql = (
        # A sum: on PostgreSQL each deleting transaction counts in a row of its own.
        "SELECT 0, n FROM (SELECT sum(deletes) AS n FROM deepmemory_deletions "
        "WHERE namespace = :ns) AS d WHERE n IS NOT NULL UNION ALL "
        f"SELECT 1, version FROM (SELECT version FROM deepmemory_items{_BY_VERSION[dialect]} "
        "WHERE namespace = :ns ORDER BY version DESC LIMIT :limit) AS v"
    )
    return _step(
        dialect, sql, params, lambda rows: tuple(sorted((int(a), int(b)) for a, b in rows))
    )


def fold_deletions() -> Step[None]:
    """PostgreSQL: fold finished transactions' delete counts into one row per namespace.

    Rows of transactions still running are skipped (``SKIP LOCKED``), so this never
    waits on a writer; the sum per namespace, the change token's part, is unchanged.
    """
    sql = (
        "WITH old AS (DELETE FROM deepmemory_deletions WHERE (namespace, txid) IN "
        "(SELECT namespace, txid FROM deepmemory_deletions WHERE txid <> 0 "
        "FOR UPDATE SKIP LOCKED) RETURNING namespace, deletes) "
        "INSERT INTO deepmemory_deletions (namespace, txid, deletes) "
        "SELECT namespace, 0, sum(deletes) FROM old GROUP BY namespace "
        "ON CONFLICT (namespace, txid) DO UPDATE "
        "SET deletes = deepmemory_deletions.deletes + excluded.deletes"
    )
    return _step("postgres", sql, {}, lambda rows: None, write=True)
