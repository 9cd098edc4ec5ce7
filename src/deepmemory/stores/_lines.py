r"""The SQL of reading a window of a text file's lines, both dialects side by side.

``read_file`` shows lines ``offset .. offset + limit`` and the file's line count. On
PostgreSQL a file of ``WHOLE_BELOW`` bytes or more is split into lines in the database
and only the window travels back, so reading 100 lines of a 5 MB memory file moves a
few kilobytes, not 5 MB; a smaller file is sent whole (cheaper than splitting it).
SQLite runs in the process: it hands back the text (extracted from the JSON value in
C) and Python splits it, which is cheaper than decoding the whole value.

Lines are those of ``_text.split_lines``: only ``\n`` ends a line, a trailing ``\r``
is not shown, and a final newline does not start an extra empty line.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from deepmemory.backends._text import file_from_value, split_lines
from deepmemory.backends.protocol import LineWindow, Namespace
from deepmemory.stores._sql import (
    BY_FILE,
    FILE_TEXT,
    Dialect,
    Merge,
    Row,
    Step,
    _fresh,
    _step,
    encode_namespace,
)

# Files smaller than this (bytes) come back whole: splitting them in SQL costs more
# than sending them.
WHOLE_BELOW = 64 * 1024
_INT_MAX = 2**31 - 1


def select_lines(
    dialect: Dialect,
    namespace: Namespace,
    key: str,
    offset: int,
    limit: int,
    fresh: str | None = None,
) -> Step[LineWindow | None]:
    """Lines ``offset .. offset + limit`` of the file at ``key``, its line count and size.

    ``None`` if there is no such file (used at or after ``fresh``, if given); a binary
    file comes back with ``binary=True`` and no lines.
    """
    if fresh is None:  # agents read the same files again and again: each step built once
        return _select_lines_once(dialect, namespace, key, offset, limit)
    return _select_lines(dialect, namespace, key, offset, limit, fresh)


def _select_lines(
    dialect: Dialect,
    namespace: Namespace,
    key: str,
    offset: int,
    limit: int,
    fresh: str | None,
) -> Step[LineWindow | None]:
    params: dict[str, Any] = {"ns": encode_namespace(namespace), "key": key}
    if fresh is not None:
        params["fresh"] = fresh
    sql = _lines_sql(dialect, fresh is not None)
    if dialect == "sqlite":

        def finish(rows: list[Row]) -> LineWindow | None:
            if not rows:
                return None
            encoding, size, content, raw = rows[0]
            if encoding != "utf-8":
                return LineWindow([], 0, int(size), binary=True)
            if raw is not None:
                content = file_from_value(json.loads(raw)).content
            lines = split_lines(str(content or ""))
            return LineWindow(lines[offset : offset + limit], len(lines), int(size))

        return _step(dialect, sql, params, finish)
    # Array subscripts are int4: clamp (no file has 2**31 lines, so nothing changes).
    params["first"] = min(offset, _INT_MAX - 1) + 1
    params["last"] = min(offset + limit, _INT_MAX)
    params["whole"] = WHOLE_BELOW

    def finish_pg(rows: list[Row]) -> LineWindow | None:
        if not rows:
            return None
        encoding, size, whole, count, window = rows[0]
        if encoding != "utf-8":
            return LineWindow([], 0, int(size), binary=True)
        if count is None:  # a small file: sent whole, split here
            lines = split_lines(str(whole or ""))
            return LineWindow(lines[offset : offset + limit], len(lines), int(size))
        return LineWindow(list(window or []), int(count), int(size))

    return _step(dialect, sql, params, finish_pg, merge=_BY_WINDOW["fresh" in params])


@functools.lru_cache(maxsize=4096)
def _select_lines_once(
    dialect: Dialect, namespace: Namespace, key: str, offset: int, limit: int
) -> Step[LineWindow | None]:
    # A step is immutable and its ``finish`` pure, so one serves every such read.
    return _select_lines(dialect, namespace, key, offset, limit, None)


@functools.cache
def _lines_sql(dialect: Dialect, with_fresh: bool) -> str:
    """The statement of ``select_lines`` (built once: reads are the hottest call)."""
    where = f"namespace = :ns AND key = :key{_fresh(dialect, '' if with_fresh else None, {})}"
    text = FILE_TEXT[dialect]
    if dialect == "sqlite":
        # json_extract() stops at an escaped NUL: such a value is decoded in Python.
        return (
            f"SELECT encoding, size, CASE WHEN encoding = 'utf-8' THEN {text} END, "
            "CASE WHEN instr(value, '\\u0000') > 0 THEN value END "
            f"FROM deepmemory_items WHERE {where}"
        )
    # The array of lines; a final newline leaves one empty element, not a line.
    count = (
        "CASE WHEN t.c = '' THEN 0 WHEN right(t.c, 1) = chr(10) "
        "THEN cardinality(w.a) - 1 ELSE cardinality(w.a) END"
    )
    window = (
        "ARRAY(SELECT CASE WHEN right(x, 1) = chr(13) THEN left(x, -1) ELSE x END "
        f"FROM unnest(w.a[CAST(:first AS int) : least(CAST(:last AS int), {count})]) "
        "WITH ORDINALITY AS u(x, n) ORDER BY n)"
    )
    split = "(SELECT string_to_array(t.c, chr(10)) AS a) AS w"
    big = "t.size >= CAST(:whole AS bigint)"
    return (
        f"SELECT t.encoding, t.size, CASE WHEN NOT {big} THEN t.c END, "
        f"CASE WHEN {big} THEN (SELECT {count} FROM {split}) END, "
        f"CASE WHEN {big} THEN (SELECT {window} FROM {split}) END "
        f"FROM (SELECT encoding, size, CASE WHEN encoding = 'utf-8' THEN {text} END AS c "
        f"FROM deepmemory_items WHERE {where}) AS t"
    )


# A line read merges as a file read does, each call also with its own window.
_BY_WINDOW = {fresh: Merge((*m.by, "first", "last")) for fresh, m in BY_FILE.items()}
