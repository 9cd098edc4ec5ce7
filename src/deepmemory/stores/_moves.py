"""The SQL of a move: a file, or a directory with everything below it, in one step.

A move renames rows in place (``UPDATE ... SET key``): contents, times and TTLs stay,
each row gets a new version (so a compare-and-swap made against the old file fails
and re-reads, and change tokens see the move), and the row keeps its identity, so
SQLite's grep index follows it through its update trigger. Nothing is replaced: the
statement moves nothing if any row, expired or not, lies at or below the destination
(checked in the same statement; a writer racing to create the destination makes the
move fail with a unique violation, which the store reports as "exists"). Semantic
index vectors move with their items.

With history on, each moved file gets a ``move`` revision at its old path (no
content, as a delete) and one at its new path (its content), in the same statement on
PostgreSQL and the same transaction on SQLite, as writes record theirs
(``_revisions``).
"""

from __future__ import annotations

import json
from typing import Any

from deepmemory.backends.protocol import Author, Namespace
from deepmemory.stores._revisions import (
    _COLUMNS,
    _DELETE_COLUMNS,
    _HEAD_INSERT,
    Retention,
    _author_values,
    _params,
)
from deepmemory.stores._sql import (
    _NEXT_VERSION,
    _NOW,
    TEXT_PARAM,
    TIME_PARAM,
    Dialect,
    Query,
    Row,
    Step,
    _fresh,
    _step,
    dir_prefix,
    encode_namespace,
    last_used,
    prefix_end,
)

_BUMP = (
    "ON CONFLICT (namespace, key) DO UPDATE SET revision = deepmemory_revision_heads.revision + 1"
)


def _tree(column: str, key: str, lo: str, hi: str) -> str:
    """SQL: ``column`` is the key ``key`` or below it (one index range)."""
    return f"{column} >= {key} AND {column} < {hi} AND ({column} = {key} OR {column} > {lo})"


def move_tree(
    dialect: Dialect,
    namespace: Namespace,
    key: str,
    new_key: str,
    fresh: str | None,
    author: Author | None,
    retention: Retention,
) -> Step[list[tuple[str, str]]]:
    """Move ``key`` and every key below it to ``new_key``: the (old, new) keys, sorted.

    ``[]`` when nothing moved: no live file there, or the destination is taken (the
    caller tells them apart).
    """
    lo, new_lo = dir_prefix(key), dir_prefix(new_key)
    params: dict[str, Any] = {
        "ns": encode_namespace(namespace),
        "key": key,
        "lo": lo,
        "hi": prefix_end(lo),
        "new": new_key,
        "new_lo": new_lo,
        "new_hi": prefix_end(new_lo),
        "new_parent": new_key.rsplit("/", 1)[0] or "/",
        "cut": len(key) + 1,  # where the part below ``key`` starts (1-based)
        "new_cut": len(new_key) + 1,
        "now": _params("move", author, retention)["rev_now"],
    }
    text = TEXT_PARAM[dialect].format
    taken = "SELECT 1 FROM deepmemory_items AS d WHERE d.namespace = :ns AND " + _tree(
        "d.key", text(":new"), text(":new_lo"), text(":new_hi")
    )
    source = _tree("key", text(":key"), text(":lo"), text(":hi"))
    # The files to move (and their versions, for their vectors), if the way is free.
    chosen = (
        "SELECT key, version FROM deepmemory_items "
        f"WHERE namespace = :ns AND {source}{_fresh(dialect, fresh, params)} "
        f"AND NOT EXISTS ({taken})"
    )
    renamed = f"{text(':new')} || substr({{column}}, :cut)"
    moved_columns = (
        f"key = {renamed.format(column='i.key')}, "
        f"parent = CASE WHEN i.key = {text(':key')} THEN {text(':new_parent')} "
        f"ELSE {renamed.format(column='i.parent')} END, "
        f"updated_at = {_NOW[dialect]}, version = {_NEXT_VERSION[dialect]}"
    )
    records = retention.records and key.startswith("/")
    if records:
        params |= _params("move", author, retention)

    if dialect == "postgres":
        parts = [
            f"o AS ({chosen})",
            f"m AS (UPDATE deepmemory_items AS i SET {moved_columns} FROM o "
            "WHERE i.namespace = :ns AND i.key = o.key RETURNING i.key, i.value, i.size, i.version)",
            # Vectors stamped with the old version follow their item (stale ones stay stale).
            "v AS (UPDATE deepmemory_vectors AS vec SET key = m.key, version = CASE "
            "WHEN vec.version = o.version THEN m.version ELSE vec.version END "
            f"FROM o JOIN m ON m.key = {renamed.format(column='o.key')} "
            "WHERE vec.namespace = :ns AND vec.key = o.key)",
            # Passages for recall by meaning (``_passages``) follow the same way.
            "p AS (UPDATE deepmemory_passages AS p SET key = m.key "
            f"FROM o JOIN m ON m.key = {renamed.format(column='o.key')} "
            "WHERE p.namespace = :ns AND p.key = o.key)",
            "pf AS (UPDATE deepmemory_passage_files AS pf SET key = m.key, version = CASE "
            "WHEN pf.version = o.version THEN m.version ELSE pf.version END "
            f"FROM o JOIN m ON m.key = {renamed.format(column='o.key')} "
            "WHERE pf.namespace = :ns AND pf.key = o.key)",
        ]
        if records:
            parts += _pg_revisions()
        sql = f"WITH {', '.join(parts)} SELECT key FROM m"

        def new_pairs(rows: list[Row]) -> list[tuple[str, str]]:
            return sorted((key + row[0][len(new_key) :], row[0]) for row in rows)

        return _step(dialect, sql, params, new_pairs, write=True)

    # SQLite: one writer at a time (this step takes the write lock), so the files
    # chosen are exactly those the statements that follow move.
    old_key = "json_extract(value, '$[0]')"
    olds = f"SELECT {old_key} FROM json_each(:moved)"

    def restamped(table: str) -> str:
        """Rows of ``table`` follow their file; stamped with its old version, its new one."""
        return (
            f"UPDATE {table} SET version = CASE WHEN version = (SELECT "
            "json_extract(j.value, '$[1]') FROM json_each(:moved) AS j "
            f"WHERE json_extract(j.value, '$[0]') = {table}.key) "
            "THEN (SELECT i.version FROM deepmemory_items AS i WHERE i.namespace = :ns "
            f"AND i.key = {renamed.format(column=table + '.key')}) ELSE version END, "
            f"key = {renamed.format(column='key')} WHERE namespace = :ns AND key IN ({olds})"
        )

    follow = [
        f"UPDATE deepmemory_items AS i SET {moved_columns} "
        f"WHERE i.namespace = :ns AND i.key IN ({olds})",
        restamped("deepmemory_vectors"),
        restamped("deepmemory_passage_files"),
        f"UPDATE deepmemory_passages SET key = {renamed.format(column='key')} "
        f"WHERE namespace = :ns AND key IN ({olds})",
    ]
    if records:
        follow += _sqlite_revisions(old_key, renamed.format(column=old_key))

    def then(rows: list[Row]) -> list[Query]:
        if not rows:
            return []
        moved = params | {"moved": json.dumps([[row[0], row[1]] for row in rows])}
        return [(statement, moved) for statement in follow]

    def old_pairs(rows: list[Row]) -> list[tuple[str, str]]:
        return sorted((row[0], new_key + row[0][len(key) :]) for row in rows)

    return _step(dialect, chosen, params, old_pairs, write=True, then=then)


def _pg_revisions() -> list[str]:
    """The CTEs recording a ``move`` revision at each old key (``o``) and new one (``m``)."""
    time = TIME_PARAM["postgres"].format(":rev_now")
    author = _author_values("postgres")
    return [
        f"ho AS ({_HEAD_INSERT} SELECT CAST(:ns AS text), o.key, 1 FROM o "
        f"JOIN m ON m.key = CAST(:new AS text) || substr(o.key, :cut) {_BUMP} "
        "RETURNING key, revision)",
        f"ro AS (INSERT INTO deepmemory_revisions ({_DELETE_COLUMNS}) SELECT CAST(:ns AS text), "
        f"key, revision, 'move', {time}, {author} FROM ho)",
        f"hn AS ({_HEAD_INSERT} SELECT CAST(:ns AS text), m.key, 1 FROM m {_BUMP} "
        "RETURNING key AS _hkey, revision AS _head)",
        f"rn AS (INSERT INTO deepmemory_revisions ({_COLUMNS}) SELECT CAST(:ns AS text), "
        f"m.key, _head, 'move', m.value, m.size, {time}, {author} "
        "FROM hn JOIN m ON m.key = _hkey)",
    ]


def _sqlite_revisions(old_key: str, new_key: str) -> list[str]:
    """The statements recording a ``move`` revision at each old key and each new one.

    ``old_key`` / ``new_key``: SQL of a moved file's keys from a row of ``:moved``.
    """
    author = _author_values("sqlite")
    heads = "deepmemory_revision_heads"
    olds, news = (f"SELECT {k} FROM json_each(:moved)" for k in (old_key, new_key))
    return [
        # WHERE true: SQLite's parser needs it before ON CONFLICT in INSERT ... SELECT.
        f"{_HEAD_INSERT} SELECT :ns, {old_key}, 1 FROM json_each(:moved) WHERE true {_BUMP}",
        f"INSERT INTO deepmemory_revisions ({_DELETE_COLUMNS}) SELECT namespace, key, revision, "
        f"'move', :rev_now, {author} FROM {heads} WHERE namespace = :ns AND key IN ({olds})",
        f"{_HEAD_INSERT} SELECT :ns, {new_key}, 1 FROM json_each(:moved) WHERE true {_BUMP}",
        f"INSERT INTO deepmemory_revisions ({_COLUMNS}) SELECT h.namespace, h.key, h.revision, "
        f"'move', i.value, i.size, :rev_now, {author} FROM {heads} AS h "
        "JOIN deepmemory_items AS i ON i.namespace = h.namespace AND i.key = h.key "
        f"WHERE h.namespace = :ns AND h.key IN ({news})",
    ]


def purge_expired(dialect: Dialect, namespace: Namespace, key: str, fresh: str) -> Step[None]:
    """Delete the expired files at or below ``key`` (not shown, so not in a move's way)."""
    lo = dir_prefix(key)
    params: dict[str, Any] = {"ns": encode_namespace(namespace), "key": key, "lo": lo}
    params |= {"hi": prefix_end(lo), "fresh": fresh}
    bound = TIME_PARAM[dialect].format(":fresh")
    text = TEXT_PARAM[dialect].format
    sql = (
        "DELETE FROM deepmemory_items WHERE namespace = :ns AND "
        f"{_tree('key', text(':key'), text(':lo'), text(':hi'))} AND {last_used(dialect)} < {bound}"
    )
    return _step(dialect, sql, params, lambda rows: None, write=True)
