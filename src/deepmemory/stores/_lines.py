r"""The SQL of reading a window of a text file's lines, both dialects side by side.

``read_file`` shows lines ``offset .. offset + limit`` and the file's line count. On
PostgreSQL the file is split into lines in the database and only the window travels
back, so reading 100 lines of a 5 MB memory file moves a few kilobytes, not 5 MB.
SQLite runs in the process: it hands back the text (extracted from the JSON value in
C) and Python splits it, which is cheaper than decoding the whole value.

Lines are those of ``_text.split_lines``: only ``\n`` ends a line, a trailing ``\r``
is not shown, and a final newline does not start an extra empty line.
"""

from __future__ import annotations

import json
from typing import Any

from deepmemory.backends._text import file_from_value, split_lines
from deepmemory.backends.protocol import LineWindow, Namespace
from deepmemory.stores._sql import Dialect, Row, Step, _fresh, _step, encode_namespace

_TEXT = {
    "sqlite": "COALESCE(text_override, json_extract(value, '$.content'))",
    "postgres": "COALESCE(text_override, value ->> 'content')",
}


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
    params: dict[str, Any] = {"ns": encode_namespace(namespace), "key": key}
    where = f"namespace = :ns AND key = :key{_fresh(dialect, fresh, params)}"
    text = _TEXT[dialect]
    if dialect == "sqlite":
        # json_extract() stops at an escaped NUL: such a value is decoded in Python.
        sql = (
            f"SELECT encoding, size, CASE WHEN encoding = 'utf-8' THEN {text} END, "
            "CASE WHEN instr(value, '\\u0000') > 0 THEN value END "
            f"FROM deepmemory_items WHERE {where}"
        )

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
    params |= {"first": offset + 1, "last": offset + limit}  # 1-based, inclusive
    # The array of lines; a final newline leaves one empty element, not a line.
    lines = "string_to_array(t.c, chr(10))"
    total = (
        f"CASE WHEN t.c = '' THEN 0 WHEN right(t.c, 1) = chr(10) "
        f"THEN cardinality({lines}) - 1 ELSE cardinality({lines}) END"
    )
    sql = (
        "SELECT t.encoding, t.size, w.total, ARRAY(SELECT CASE WHEN right(x, 1) = chr(13) "
        "THEN left(x, -1) ELSE x END FROM unnest(w.a[CAST(:first AS int) : least(CAST(:last AS int), w.total)]) "
        "WITH ORDINALITY AS u(x, n) ORDER BY n) "
        f"FROM (SELECT encoding, size, CASE WHEN encoding = 'utf-8' THEN {text} END AS c "
        f"FROM deepmemory_items WHERE {where}) AS t "
        f"CROSS JOIN LATERAL (SELECT {lines} AS a, {total} AS total) AS w"
    )

    def finish_pg(rows: list[Row]) -> LineWindow | None:
        if not rows:
            return None
        encoding, size, count, window = rows[0]
        if encoding != "utf-8":
            return LineWindow([], 0, int(size), binary=True)
        return LineWindow(list(window or []), int(count or 0), int(size))

    return _step(dialect, sql, params, finish_pg)
