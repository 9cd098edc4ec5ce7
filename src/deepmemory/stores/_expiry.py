"""The SQL of expiry and pruning (schema: ``migrations`` m005), both dialects side by side.

A file's *last use* is its last write (``updated_at``) or, where reads refresh it,
its last read (``deepmemory_reads.accessed_at``), whichever is later
(``_sql.last_used``). Expiry is
not stored: a backend with a time to live passes the cut-off (now minus the TTL) and
every file query of it (``_sql``'s ``fresh`` parameter) leaves out files last used
before it, so an expired file is gone from ls, glob, grep and read at once; its row
stays until a prune deletes it. The TTL can then change at any time and applies to
every file at once.

Pruning reads each file's key, size, last use and version (never its content) and
deletes the chosen ones with a compare-and-swap on the version: a file written or
edited after it was chosen is kept.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypeVar

from deepmemory.backends.protocol import FileUsage, Namespace
from deepmemory.stores._sql import (
    TEXT_PARAM,
    TIME_PARAM,
    Dialect,
    Row,
    Step,
    _decode_time,
    _fresh,
    _step,
    last_used,
)
from deepmemory.stores._sql import encode_namespace as _ns

T = TypeVar("T")


def touch_file(
    dialect: Dialect, namespace: Namespace, key: str, now: str, stale: str, fresh: str | None
) -> Step[None]:
    """Record a read of ``key`` at ``now`` if its last use is before ``stale``.

    Skipping reads of files used recently keeps most reads free of a write; an
    expired file (last used before ``fresh``) is not revived by a read.
    """
    time, text = TIME_PARAM[dialect].format, TEXT_PARAM[dialect].format
    params: dict[str, Any] = {"ns": _ns(namespace), "key": key, "now": now, "stale": stale}
    sql = (
        "INSERT INTO deepmemory_reads (namespace, key, accessed_at) "
        f"SELECT {text(':ns')}, {text(':key')}, {time(':now')} WHERE EXISTS "
        "(SELECT 1 FROM deepmemory_items WHERE namespace = :ns AND key = :key "
        f"AND {last_used(dialect)} < {time(':stale')}{_fresh(dialect, fresh, params)}) "
        "ON CONFLICT (namespace, key) DO UPDATE SET accessed_at = excluded.accessed_at"
    )
    return _step(dialect, sql, params, lambda rows: None, write=True)


def _usage(row: Row) -> FileUsage:
    used = row[2] if isinstance(row[2], str) else _decode_time(row[2]).isoformat()
    return FileUsage(row[0], int(row[1] or 0), used, int(row[3]))


def file_usage(dialect: Dialect, namespace: Namespace) -> Step[list[FileUsage]]:
    """Every file of ``namespace``: key, size, last use, version; contents are not read."""
    used = last_used(dialect)
    if dialect == "postgres":  # as text in the stores' ISO format, so it compares as text
        used = f"to_char({used} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
    sql = (
        f"SELECT key, size, {used}, version FROM deepmemory_items "
        "WHERE namespace = :ns AND key >= '/' AND key < '0' ORDER BY key"
    )
    return _step(dialect, sql, {"ns": _ns(namespace)}, lambda rows: [_usage(r) for r in rows])


def discard_files(
    dialect: Dialect, namespace: Namespace, victims: Sequence[FileUsage]
) -> list[Step[list[str]]]:
    """Delete each of ``victims`` unless it changed since it was chosen (one step each).

    Each step ends ``RETURNING key`` so history can record the delete (a trigger,
    m005, forgets the file's reads).
    """
    steps: list[Step[list[str]]] = []
    for victim in victims:
        params: dict[str, Any] = {"ns": _ns(namespace), "key": victim.key}
        params["version"] = victim.version
        sql = (
            "DELETE FROM deepmemory_items WHERE namespace = :ns AND key = :key "
            "AND version = :version RETURNING key"
        )
        steps.append(_step(dialect, sql, params, lambda rows: [r[0] for r in rows], write=True))
    return steps


def is_stale(
    dialect: Dialect, namespace: Namespace, key: str, stale: str, fresh: str | None
) -> Step[bool]:
    """Whether a read of ``key`` now must be recorded (``touch_file`` would write)."""
    params: dict[str, Any] = {"ns": _ns(namespace), "key": key, "stale": stale}
    sql = (
        "SELECT EXISTS (SELECT 1 FROM deepmemory_items WHERE namespace = :ns AND key = :key "
        f"AND {last_used(dialect)} < {TIME_PARAM[dialect].format(':stale')}"
        f"{_fresh(dialect, fresh, params)})"
    )
    return _step(dialect, sql, params, lambda rows: bool(rows[0][0]))


def touching(read: Step[T], touch: Step[None]) -> Step[T]:
    """PostgreSQL: ``read`` (a SELECT) and ``touch`` in one statement.

    The insert runs in a CTE; the select sees the rows as they were. It writes (and
    locks a row of ``deepmemory_reads``) only when the file's last use is stale.
    """
    (read_sql, params), (touch_sql, touch_params) = read.query, touch.query
    sql = f"WITH touch AS ({touch_sql} RETURNING 1) {read_sql}"
    return Step((sql, params | touch_params), read.finish, write=True)


def file_space(
    dialect: Dialect, namespace: Namespace, keys: Sequence[str], fresh: str | None
) -> tuple[Step[tuple[int, int]], Step[dict[str, int]]]:
    """Bytes held by the files of ``namespace`` (and its count rows); sizes of ``keys``.

    The sizes are those of ``keys`` that exist and are not expired. For size limits: the total is kept by triggers (``deepmemory_space``, m014), so
    reading it costs the same at 100 and at 100,000 files. It counts every stored file,
    expired ones too until pruned (``visible_space`` leaves those out).
    """
    params: dict[str, Any] = {"ns": _ns(namespace)}
    total = "SELECT COALESCE(sum(bytes), 0), count(*) FROM deepmemory_space WHERE namespace = :ns"
    listed = params | {"keys": json.dumps(list(keys)) if dialect == "sqlite" else list(keys)}
    used = _fresh(dialect, fresh, listed)
    among = "IN (SELECT value FROM json_each(:keys))" if dialect == "sqlite" else "= ANY(:keys)"
    sizes = f"SELECT key, size FROM deepmemory_items WHERE namespace = :ns AND key {among}{used}"
    return (
        _step(dialect, total, params, lambda rows: (int(rows[0][0]), int(rows[0][1]))),
        _step(dialect, sizes, listed, lambda rows: {r[0]: int(r[1] or 0) for r in rows}),
    )


def visible_space(dialect: Dialect, namespace: Namespace, fresh: str) -> Step[int]:
    """Bytes held by the files of ``namespace`` not expired at ``fresh``.

    A sum over every file: needed only where expired files might make the difference.
    """
    params: dict[str, Any] = {"ns": _ns(namespace)}
    used = _fresh(dialect, fresh, params)
    total = (
        "SELECT COALESCE(sum(size), 0) FROM deepmemory_items "
        f"WHERE namespace = :ns AND key >= '/' AND key < '0'{used}"
    )
    return _step(dialect, total, params, lambda rows: int(rows[0][0]))


def fold_space(namespace: Namespace | None = None) -> Step[None]:
    """PostgreSQL: fold finished transactions' byte counts into one row per namespace.

    Of ``namespace``, or of every one. Rows of transactions still running are not visible, and rows another fold holds
    are skipped (``SKIP LOCKED``): this never waits on a writer, and the sum per
    namespace is unchanged.
    """
    params: dict[str, Any] = {}
    only = ""
    if namespace is not None:
        params["ns"] = _ns(namespace)
        only = " AND namespace = :ns"
    sql = (
        "WITH old AS (DELETE FROM deepmemory_space WHERE (namespace, txid) IN "
        f"(SELECT namespace, txid FROM deepmemory_space WHERE txid <> 0{only} "
        "FOR UPDATE SKIP LOCKED) RETURNING namespace, bytes) "
        "INSERT INTO deepmemory_space (namespace, txid, bytes) "
        "SELECT namespace, 0, sum(bytes) FROM old GROUP BY namespace ORDER BY namespace "
        "ON CONFLICT (namespace, txid) DO UPDATE "
        "SET bytes = deepmemory_space.bytes + excluded.bytes"
    )
    return _step("postgres", sql, params, lambda rows: None, write=True)
