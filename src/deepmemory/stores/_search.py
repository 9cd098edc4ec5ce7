r"""Glob and grep inside the database, at the cost of their answer.

Both take a directory and a full-match regex over the path relative to it
(``_match.compile_glob``), and choose where to read from:

* a regex with a literal start (``notes/2026-*``) reads the key range of that start;
* a pattern naming files at any depth of the whole memory (``**/f1?.md``) reads the
  name indexes: names of the pattern's length from its literal start when every match
  has one length (m007), else names from its literal start (m004);
* anything else reads the key range of the directory, and nothing outside it.

The regex is then tested by the database itself: PostgreSQL's ``~``; on SQLite the
exact ``GLOB`` translation of ``_patterns``, or, for the few patterns without one, a
``GLOB`` that keeps every match followed by our Python matcher (``regexp``).
"""

from __future__ import annotations

import re
from typing import Any

from deepmemory.backends import _match, _scan
from deepmemory.backends.protocol import FileInfo, GrepMatch, Namespace, StoredFile
from deepmemory.stores._patterns import (
    fixed_length,
    name_part,
    sqlite_glob_condition,
    sqlite_glob_prefilter,
)
from deepmemory.stores._sql import (
    FILE_TEXT,
    Dialect,
    Row,
    Step,
    _fresh,
    _step,
    encode_namespace,
    prefix_end,
    regex_literal_prefix,
    window,
)
from deepmemory.stores.migrations import NAME_SQL

_RANGE = "key > :lo AND key >= :first AND key < :past"
_NAME = {"sqlite": f"({NAME_SQL})", "postgres": "name"}  # the indexed expressions


def regex_condition(dialect: Dialect, regex: str, params: dict[str, Any]) -> str:
    """SQL true exactly when the relative path fully matches ``regex`` (params added)."""
    if dialect == "postgres":
        params["pattern"] = f"^(?:{regex})$"
        return "(CAST(:rel_prefix AS text) || substr(key, :start)) ~ :pattern"
    rel = "(:rel_prefix || substr(key, :start))"
    exact = sqlite_glob_condition(regex, rel, _NAME["sqlite"])
    if exact is not None:
        condition, values = exact
        params.update(values)
        return condition
    # regexp(): _match.fullmatch (linear time), registered per connection; only for
    # the rows the GLOB superset lets through.
    prefilter, values = sqlite_glob_prefilter(regex, rel)
    params.update(values)
    params["pattern"] = regex
    return f"{prefilter} AND regexp(:pattern, {rel})"


def _name_narrowing(dialect: Dialect, regex: str, params: dict[str, Any]) -> tuple[str, str] | None:
    """(table clause, condition) reading only names the pattern can match; None: no help."""
    part = name_part(regex)
    if part is None:
        return None
    start = regex_literal_prefix(part)
    length = fixed_length(part)
    if length is None and not start:
        return None  # "**/*.md": every name is a candidate
    name = _NAME[dialect]
    condition = f"{name} >= :name_first"
    params["name_first"] = start
    if start:
        params["name_past"] = prefix_end(start)
        condition += f" AND {name} < :name_past"
    index = "deepmemory_items_name"
    if length is not None:
        params["name_length"] = length
        condition = f"length({name}) = :name_length AND {condition}"
        index += "_length"
    # Without statistics SQLite would pick the key index; PostgreSQL needs no hint.
    hint = f" INDEXED BY {index}" if dialect == "sqlite" else ""
    return hint, condition


def glob_files(
    dialect: Dialect,
    namespace: Namespace,
    dir_key: str,
    regex: str,
    rel_prefix: str,
    fresh: str | None = None,
) -> Step[list[FileInfo]] | None:
    """Files below ``dir_key`` whose relative path fully matches ``regex``; None: none can."""
    keys = window(dir_key, regex, rel_prefix)
    if keys is None:
        return None
    params: dict[str, Any] = {"ns": encode_namespace(namespace), "rel_prefix": rel_prefix}
    where = f"namespace = :ns AND {_RANGE}"
    hint = ""
    whole_memory = dir_key == "/" and keys["first"] == keys["lo"]
    narrowed = _name_narrowing(dialect, regex, params) if whole_memory else None
    if narrowed is not None:
        hint, condition = narrowed
        where = f"namespace = :ns AND {condition} AND {_RANGE}"
    where += _fresh(dialect, fresh, params) + " AND " + regex_condition(dialect, regex, params)
    sql = f"SELECT key, size, modified_at FROM deepmemory_items{hint} WHERE {where} ORDER BY key"
    return _step(
        dialect,
        sql,
        params | keys,
        lambda rows: [FileInfo(r[0], False, *r[1:]) for r in rows],
        custom_plan=True,
    )


def grep_files(
    dialect: Dialect,
    namespace: Namespace,
    dir_key: str,
    literal: str,
    glob_regex: str | None,
    rel_prefix: str,
    fresh: str | None = None,
) -> Step[list[GrepMatch]] | None:
    """Matching lines of text files below ``dir_key``, found through the grep index.

    SQLite: FTS5 trigram ``MATCH`` narrows to files containing the literal (``instr``
    alone when it is under 3 characters); lines are split in Python as ``split_lines``
    does. PostgreSQL: ``LIKE`` over the ``pg_trgm`` index, lines split in SQL.
    """
    keys = window(dir_key, glob_regex, rel_prefix)
    if keys is None:
        return None
    params: dict[str, Any] = {
        "ns": encode_namespace(namespace),
        "literal": literal,
        "rel_prefix": rel_prefix,
    }
    table = "i" if dialect == "sqlite" else "deepmemory_items"  # SQLite aliases it below
    where = [f"namespace = :ns AND {_RANGE}{_fresh(dialect, fresh, params, table)}"]
    if glob_regex is not None:
        where.append(regex_condition(dialect, glob_regex, params))
    if dialect == "sqlite":
        where.append("instr(i.grep_text, :literal) > 0")
        source = "deepmemory_items AS i"
        if len(literal) >= 3:
            # CROSS JOIN makes SQLite start from the index's matches, then fetch by rowid.
            params["fts"] = '"' + literal.replace('"', '""') + '"'
            source = f"deepmemory_items_fts AS f CROSS JOIN {source} ON i.id = f.rowid"
            where.append("deepmemory_items_fts MATCH :fts")
        # Every file that holds the literal has a line that does (a pattern has no line
        # break): one file more than a grep answers tells there are more.
        params["files"] = _match.MAX_GREP_MATCHES + 1
        sql = (
            f"SELECT key, i.grep_text FROM {source} WHERE {' AND '.join(where)} "
            "ORDER BY key LIMIT :files"
        )

        def finish(rows: list[Row]) -> list[GrepMatch]:
            files = [(r[0], StoredFile(str(r[1]))) for r in rows]
            return _scan.grep(files, dir_key, literal, None, rel_prefix)

        return _step(dialect, sql, params | keys, finish, custom_plan=True)
    text = FILE_TEXT[dialect]  # the indexed expression
    params["like"] = "%" + re.sub(r"([\\%_])", r"\\\1", literal) + "%"
    where += ["encoding = 'utf-8'", f"{text} LIKE :like ESCAPE '\\'", "strpos(line, :literal) > 0"]
    sql = (
        "SELECT key, n, line FROM deepmemory_items CROSS JOIN LATERAL ("
        "SELECT n, CASE WHEN right(raw, 1) = chr(13) THEN left(raw, -1) ELSE raw END AS line "
        f"FROM unnest(string_to_array({text}, chr(10))) WITH ORDINALITY AS u(raw, n)) AS lines "
        f"WHERE {' AND '.join(where)} ORDER BY key, n LIMIT :lines"
    )
    params["lines"] = _match.MAX_GREP_MATCHES + 1  # one more than a grep answers: "more"
    return _step(
        dialect, sql, params | keys, lambda rows: [GrepMatch(*r) for r in rows], custom_plan=True
    )
