"""The SQL both stores run, written once; the SQLite and PostgreSQL strings side by side.

Every builder returns a :class:`Step`: a query ``(sql, params)`` with named parameters
(``:name``, rendered as ``%(name)s`` for psycopg) and a pure ``finish`` that turns the
rows into the result. ``_base.SQLStore`` runs steps through its engine's ``_execute``
(sync) or ``_aexecute`` (async), so each operation has one body for both modes.

Layout (see ``migrations``): one row per item in ``deepmemory_items``, namespaces
stored as their labels joined with ``.`` (LangGraph forbids ``.`` in labels). Keys are
compared byte-wise (SQLite ``BINARY``, PostgreSQL ``COLLATE "C"``), so "every key below
``/a``" is the index range ``'/a/' < key < '/a0'`` (``0`` follows ``/``), and a
namespace prefix is ``ns = 'a' OR 'a.' < ns < 'a/'``. Ranges need no ``LIKE``, so
``_`` and ``%`` in keys and namespaces are plain characters (the one ``LIKE``, grep on
PostgreSQL, escapes them). File queries see only keys starting with ``/`` and only
their exact namespace.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from langgraph.store.base import (
    GetOp,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    validate_op_namespace,
)

from deepmemory import clock
from deepmemory.backends._text import file_from_value, stored_size
from deepmemory.backends.protocol import FileInfo, Namespace, StoredFile

Dialect = Literal["sqlite", "postgres"]
Row = Sequence[Any]
Query = tuple[str, dict[str, Any]]
T = TypeVar("T")

_ITEM_COLUMNS = "namespace, key, value, created_at, updated_at"
_FILE_COLUMNS = "parent = :parent, encoding = :encoding, size = :size, "
_FILE_COLUMNS += "modified_at = :modified_at, text_override = :text_override"
_NEXT_VERSION = {
    "sqlite": "(SELECT version + 1 FROM deepmemory_clock WHERE id = 1)",
    "postgres": "nextval('deepmemory_versions')",
}
_VALUE = {"sqlite": ":value", "postgres": "CAST(:value AS jsonb)"}
# A parameter used where PostgreSQL cannot infer its type (a SELECT list, a comparison).
TEXT_PARAM = {"sqlite": "{}", "postgres": "CAST({} AS text)"}
TIME_PARAM = {"sqlite": "{}", "postgres": "CAST({} AS timestamptz)"}
# A text file's text: the content in the value, or the older layout's joined lines.
FILE_TEXT = {
    "sqlite": "COALESCE(text_override, json_extract(value, '$.content'))",
    "postgres": "COALESCE(text_override, value ->> 'content')",  # the trigram index's expression
}
_NOW = {"sqlite": ":now", "postgres": "CAST(:now AS timestamptz)"}
_FIND = {"sqlite": "instr", "postgres": "strpos"}
# A plain put replaces the value; a file write keeps the stored file's created_at.
_KEEP_CREATED_AT = {
    "sqlite": "CASE WHEN COALESCE(json_extract(deepmemory_items.value, '$.created_at'), '') <> '' "
    "THEN json_set(excluded.value, '$.created_at', "
    "json_extract(deepmemory_items.value, '$.created_at')) ELSE excluded.value END",
    "postgres": "CASE WHEN COALESCE(deepmemory_items.value ->> 'created_at', '') <> '' "
    "THEN jsonb_set(excluded.value, ARRAY['created_at'], deepmemory_items.value -> 'created_at') "
    "ELSE excluded.value END",
}
_PG_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_TEXT_ARRAY = re.compile(r"CAST\(:([A-Za-z_]\w*) AS text\[\]\)")


@dataclass(frozen=True, slots=True)
class Step(Generic[T]):
    """One statement and the pure function that turns its rows into a result.

    ``then`` (SQLite only) gives the statements to run next in the same transaction,
    from this one's rows: how a write records its revision there. On PostgreSQL those
    are part of the one statement instead (``_revisions``).
    """

    query: Query
    finish: Callable[[list[Row]], T]
    write: bool = False
    then: Callable[[list[Row]], Sequence[Query]] | None = None
    # Plan with this call's values, never a cached generic plan (PostgreSQL): for
    # searches, whose best index depends on the pattern (a generic plan of
    # `content LIKE $n` cannot use the trigram index). Writes keep their cached plans.
    custom_plan: bool = False
    # A read its caller writes after (an edit group's, ``_edits``): where calls run
    # together (``_coalesce``), its result is handed out before the others', so that
    # write is on its way while they are handled.
    first: bool = False
    # How concurrent calls of this kind run as one statement (``_coalesce``), if they can.
    merge: Merge | None = None
    # ``_coalesce``'s key for identical reads, worked out once per step (not copied by
    # ``replace``, which may change the query).
    same: Any = field(default=None, init=False, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Merge:
    """Steps that differ only in the parameters ``by`` run as one statement.

    Each step is one row of those parameters, passed as text arrays (the statement
    casts them where it needs another type; ``NULL`` stays ``NULL``). ``sql`` is the
    statement for many rows, taking ``:_<name>`` arrays and returning the row's
    ordinal first; ``None``: the step is a plain ``SELECT``, run once per row
    (``CROSS JOIN LATERAL``). Either way each step gets exactly its own rows.
    """

    by: tuple[str, ...]
    sql: str | None = None


@functools.lru_cache(maxsize=1024)
def _psycopg_sql(sql: str) -> str:
    """``:name`` parameters as psycopg's ``%(name)s`` (statements repeat: cached).

    A text array (``CAST(:name AS text[])``) is sent in binary (``%(name)b``): the text
    form escapes every quote and backslash of every element in Python, which cost
    milliseconds per batched write of JSON file contents.
    """
    sql = _TEXT_ARRAY.sub(r"CAST(%(\1)b AS text[])", sql.replace("%", "%%"))
    return _PG_PARAM.sub(r"%(\1)s", sql)


def _render(dialect: Dialect, sql: str, params: dict[str, Any]) -> Query:
    return (_psycopg_sql(sql) if dialect == "postgres" else sql), params


def _step(
    dialect: Dialect,
    sql: str,
    params: dict[str, Any],
    finish: Callable[[list[Row]], T],
    *,
    write: bool = False,
    custom_plan: bool = False,
    then: Callable[[list[Row]], Sequence[Query]] | None = None,
    merge: Merge | None = None,
) -> Step[T]:
    return Step(_render(dialect, sql, params), finish, write, then, custom_plan, merge=merge)


# -- namespaces, key ranges, derived columns ------------------------------------------


def encode_namespace(namespace: Namespace) -> str:
    """The stored form of a namespace."""
    return ".".join(namespace)


def decode_namespace(text: str) -> Namespace:
    """A namespace from its stored form."""
    return tuple(text.split("."))


def prefix_end(prefix: str) -> str:
    """The smallest string above every string starting with ``prefix`` (code point order)."""
    while prefix:
        code = ord(prefix[-1]) + 1
        if code <= 0x10FFFF:
            if 0xD800 <= code <= 0xDFFF:
                code = 0xE000  # Surrogates cannot be stored; skip to the next real character.
            return prefix[:-1] + chr(code)
        prefix = prefix[:-1]
    return "\U0010ffff" * 2


def dir_prefix(dir_key: str) -> str:
    """What every key below ``dir_key`` starts with."""
    return "/" if dir_key == "/" else dir_key + "/"


def regex_literal_prefix(regex: str) -> str:
    """The literal text every full match of ``regex`` starts with ('' if none is certain)."""
    out: list[str] = []
    i = 0
    while i < len(regex):
        ch = regex[i]
        if ch == "\\" and i + 1 < len(regex) and regex[i + 1].isascii():
            if regex[i + 1].isalnum():
                break  # A class escape such as \d: not a literal.
            literal, i = regex[i + 1], i + 2
        elif ch.isalnum() or ch == "/" or not ch.isascii():
            literal, i = ch, i + 1
        else:
            break
        if i < len(regex) and regex[i] in "*+?{":
            break  # The character just read is optional or repeated.
        out.append(literal)
    return "".join(out)


def window(dir_key: str, regex: str | None, rel_prefix: str) -> dict[str, Any] | None:
    """Key range to scan for paths below ``dir_key`` matching ``regex``; None: no match."""
    lo = dir_prefix(dir_key)
    start = lo
    if regex is not None:
        literal = regex_literal_prefix(regex)
        if literal.startswith(rel_prefix):
            start = lo + literal[len(rel_prefix) :]
        elif not rel_prefix.startswith(literal):
            return None
    return {"lo": lo, "first": start, "past": prefix_end(start), "start": len(lo) + 1}


def last_used(dialect: Dialect, table: str = "deepmemory_items") -> str:
    """SQL of when the file in row ``table`` was last used: written, or read (m005)."""
    read = (
        "(SELECT r.accessed_at FROM deepmemory_reads AS r "
        f"WHERE r.namespace = {table}.namespace AND r.key = {table}.key)"
    )
    if dialect == "sqlite":
        return f"max({table}.updated_at, COALESCE({read}, ''))"
    return f"GREATEST({table}.updated_at, {read})"  # GREATEST skips NULL


def _fresh(
    dialect: Dialect, fresh: str | None, params: dict[str, Any], table: str = "deepmemory_items"
) -> str:
    """`` AND`` the file was used at or after ``fresh`` (ISO 8601); '' without expiry."""
    if fresh is None:
        return ""
    params["fresh"] = fresh
    bound = ":fresh" if dialect == "sqlite" else "CAST(:fresh AS timestamptz)"
    return f" AND {last_used(dialect, table)} >= {bound}"


def _write_params(namespace: Namespace, key: str, value: dict[str, Any]) -> dict[str, Any]:
    """Parameters of a write: the value and the file columns derived from it."""
    file = file_from_value(value)
    parent = None
    if key.startswith("/") and key != "/":
        parent = key.rsplit("/", 1)[0] or "/"
    return {
        "ns": encode_namespace(namespace),
        "key": key,
        "value": json.dumps(value, ensure_ascii=False, separators=(",", ":")),
        # ISO 8601 UTC with microseconds: sorts correctly as text too.
        "now": clock.now_iso(),
        "parent": parent,
        "encoding": file.encoding,
        "size": stored_size(file),
        "modified_at": file.modified_at or None,
        # Only a value holding its text in another form (the old list of lines) needs it.
        "text_override": None if isinstance(value.get("content"), str) else file.content,
        # LangGraph's per-item TTL (m009): only ``put(..., ttl=)`` sets it; a write clears it.
        "ttl_minutes": None,
        "expires_at": None,
    }


# What every write returns: its version first (the result), then what history records.
WRITTEN = "version, value, size"


def _upsert(dialect: Dialect, *, conflict: str, unless: str = "") -> str:
    """Insert or (``conflict``) update one item; with ``unless`` (SQL), only if it is false."""
    values = (
        f":ns, :key, {_VALUE[dialect]}, {_NOW[dialect]}, {_NOW[dialect]}, "
        f"{_NEXT_VERSION[dialect]}, :parent, :encoding, :size, :modified_at, :text_override, "
        ":ttl_minutes, :expires_at"
    )
    if dialect == "postgres":  # untyped parameters in a SELECT list would be read as text
        values = values.replace(":ns, :key", "CAST(:ns AS text), CAST(:key AS text)")
        values = values.replace(
            ":ttl_minutes, :expires_at",
            "CAST(:ttl_minutes AS float8), CAST(:expires_at AS float8)",
        )
    source = f"SELECT {values} WHERE NOT {unless}" if unless else f"VALUES ({values})"
    return (
        f"INSERT INTO deepmemory_items ({_ITEM_COLUMNS}, version, parent, encoding, size, "
        f"modified_at, text_override, ttl_minutes, expires_at) {source} "
        f"ON CONFLICT (namespace, key) {conflict} RETURNING {WRITTEN}"
    )


def _conflict_update(value_sql: str) -> str:
    return (
        f"DO UPDATE SET value = {value_sql}, updated_at = excluded.updated_at, "
        "version = excluded.version, parent = excluded.parent, encoding = excluded.encoding, "
        "size = excluded.size, modified_at = excluded.modified_at, "
        "text_override = excluded.text_override, ttl_minutes = excluded.ttl_minutes, "
        "expires_at = excluded.expires_at"
    )


# -- BaseStore operations ----------------------------------------------------------------


def _decode_value(dialect: Dialect, raw: Any) -> dict[str, Any]:
    return json.loads(raw) if dialect == "sqlite" else raw  # type: ignore[no-any-return]  # jsonb arrives decoded


def _decode_time(raw: Any) -> datetime:
    return datetime.fromisoformat(raw) if isinstance(raw, str) else raw  # timestamptz: a datetime


def _item(dialect: Dialect, row: Row) -> Item:
    value, created, updated = _decode_value(dialect, row[2]), row[3], row[4]
    namespace, key = decode_namespace(row[0]), row[1]
    return Item(
        namespace=namespace,
        key=key,
        value=value,
        created_at=_decode_time(created),
        updated_at=_decode_time(updated),
    )


def _search_item(dialect: Dialect, row: Row) -> SearchItem:
    item = _item(dialect, row)
    return SearchItem(item.namespace, item.key, item.value, item.created_at, item.updated_at)


def _namespace_condition(
    prefix: Sequence[str], params: dict[str, Any], column: str = "namespace"
) -> str:
    if not prefix:
        return "TRUE"
    params["ns"] = ns = encode_namespace(tuple(prefix))
    params["ns_lo"], params["ns_hi"] = ns + ".", ns + "/"
    # One index range (the namespace and everything under it), then the exact test.
    return f"({column} >= :ns AND {column} < :ns_hi AND ({column} = :ns OR {column} > :ns_lo))"


def _json_path(dialect: Dialect, path: list[str]) -> Any:
    if dialect == "postgres":
        return path
    return "$" + "".join(f'."{part}"' for part in path)


# A filter key: names of a value's keys, ``.`` between the keys of nested values.
_FILTER_KEY = re.compile(r"[\w\-:@/ ]+(?:\.[\w\-:@/ ]+)*")
# Integers SQLite binds exactly; larger ones compare as floats, as JSON numbers do.
_INT64 = range(-(2**63), 2**63)


def _filter_key(key: Any) -> str:
    if not isinstance(key, str) or not _FILTER_KEY.fullmatch(key):
        raise ValueError(
            f"Invalid filter key {key!r}: use letters, digits, spaces, '_', '-', ':', '@' "
            "or '/', with '.' between the keys of a nested value (for example "
            "'user.access-level')."
        )
    return key


def _number(want: int | float) -> int | float:
    return want if isinstance(want, int) and want in _INT64 else float(want)


def _eq(dialect: Dialect, path: list[str], want: Any, params: dict[str, Any]) -> str:
    """The value at ``path`` equals ``want`` (JSON equality); never NULL on PostgreSQL."""
    n = len(params)
    p, v = f":p{n}", f":v{n}"
    params[f"p{n}"] = _json_path(dialect, path)
    if dialect == "postgres":
        params[f"v{n}"] = json.dumps(want)
        return f"COALESCE(value #> {p}, CAST('null' AS jsonb)) = CAST({v} AS jsonb)"
    kind = f"json_type(value, {p})"
    if want is None:
        return f"({kind} IS NULL OR {kind} = 'null')"
    if isinstance(want, bool):
        params[f"v{n}"] = "true" if want else "false"
        return f"{kind} = {v}"
    if isinstance(want, int | float):
        params[f"v{n}"] = _number(want)
        return f"({kind} IN ('integer', 'real') AND json_extract(value, {p}) = {v})"
    if isinstance(want, str):
        params[f"v{n}"] = want
        return f"({kind} = 'text' AND json_extract(value, {p}) = {v})"
    params[f"v{n}"] = json.dumps(want, separators=(",", ":"))
    return f"({kind} IN ('array', 'object') AND json_extract(value, {p}) = json({v}))"


def _order(dialect: Dialect, path: list[str], sign: str, want: Any, params: dict[str, Any]) -> str:
    n = len(params)
    p, v = f":p{n}", f":v{n}"
    params[f"p{n}"] = _json_path(dialect, path)
    numeric = isinstance(want, int | float)
    params[f"v{n}"] = _number(want) if numeric else want
    if dialect == "sqlite":
        kinds = "('integer', 'real')" if numeric else "('text')"
        return f"(json_type(value, {p}) IN {kinds} AND json_extract(value, {p}) {sign} {v})"
    if numeric:
        params[f"v{n}"] = float(want)
        typed = f"CASE WHEN jsonb_typeof(value #> {p}) = 'number' THEN (value #>> {p})::float8 END"
        return f"{typed} {sign} {v}"
    typed = f"CASE WHEN jsonb_typeof(value #> {p}) = 'string' THEN value #>> {p} END"
    return f'{typed} COLLATE "C" {sign} CAST({v} AS text)'


def _compare(
    dialect: Dialect, paths: list[list[str]], op: str, want: Any, params: dict[str, Any]
) -> str:
    """One filter condition (LangGraph's operators) on the value at any of ``paths``."""
    if op not in ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte"):
        raise ValueError(f"Unsupported filter operator {op!r}; use $eq, $ne, $gt, $gte, $lt, $lte.")
    is_number = isinstance(want, int | float) and not isinstance(want, bool)
    if op in ("$eq", "$ne"):
        if is_number and not math.isfinite(want):
            # No JSON number is infinite or NaN: nothing equals it, everything differs.
            return "1 = 0" if op == "$eq" else "1 = 1"
        found = " OR ".join(f"COALESCE({_eq(dialect, p, want, params)}, FALSE)" for p in paths)
        return f"({found})" if op == "$eq" else f"NOT ({found})"
    if not is_number and not isinstance(want, str):
        raise ValueError(f"Filter {op} needs a number or a string, got {want!r}.")
    if is_number and math.isnan(want):
        return "1 = 0"  # nothing is ordered against NaN
    sign = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}[op]
    return "(" + " OR ".join(_order(dialect, p, sign, want, params) for p in paths) + ")"


def _filter_conditions(
    dialect: Dialect, path: list[str], want: Any, params: dict[str, Any]
) -> list[str]:
    """Conditions for ``{key: want}`` at ``path`` (``[]`` for a filter's top level).

    At the top level a dotted key names a nested value (``user.access-level``) or,
    failing that, a key holding dots; inside a nested filter dict keys are literal.
    """

    def paths_of(key: Any) -> list[list[str]]:
        key = _filter_key(key)
        if path or "." not in key:
            return [[*path, key]]
        return [key.split("."), [key]]

    conditions = []
    for key, value in want.items():
        paths = paths_of(key)
        if isinstance(value, dict) and any(str(k).startswith("$") for k in value):
            conditions += [_compare(dialect, paths, op, v, params) for op, v in value.items()]
        elif isinstance(value, dict) and value:
            conditions += _filter_conditions(dialect, paths[0], value, params)
        else:
            conditions.append(_compare(dialect, paths, "$eq", value, params))
    return conditions


def _matches(condition: MatchCondition, namespace: Namespace) -> bool:
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    if condition.match_type == "suffix":
        namespace, path = namespace[::-1], path[::-1]
    return all(p == "*" or n == p for n, p in zip(namespace, path, strict=False))


def _finish_namespaces(op: ListNamespacesOp, rows: list[Row]) -> list[Namespace]:
    found = sorted(decode_namespace(row[0]) for row in rows)
    conditions = op.match_conditions or ()
    found = [ns for ns in found if all(_matches(c, ns) for c in conditions)]
    if op.max_depth is not None:
        found = sorted({ns[: op.max_depth] for ns in found})
    return found[op.offset : op.offset + op.limit]


# An item whose LangGraph TTL (m009) has not run out, at ``:epoch`` (seconds).
_ALIVE = "(expires_at IS NULL OR expires_at > :epoch)"


def _unexpired(omit_expired: bool) -> str:
    """What reads require of an item's TTL.

    With LangGraph's ``omit_expired``: not run out. Without it (LangGraph's default):
    nothing, so an expired item is read until a sweep deletes it.
    """
    return _ALIVE if omit_expired else "TRUE"


# Moves an item's expiry on, from ``:epoch`` by its own TTL (SQLite keeps its namespace
# column as encoded text, so ``:ns`` is the encoded namespace).
_REFRESH_ITEM = (
    "UPDATE deepmemory_items SET expires_at = :epoch + ttl_minutes * 60 "
    "WHERE namespace = :ns AND key = :key AND ttl_minutes IS NOT NULL"
)


def _refreshing_one(dialect: Dialect, select: str, params: dict[str, Any]) -> tuple[str, Any]:
    """A read of one item that also moves its TTL on: (SQL, SQLite follow-up or None)."""
    update = f"{_REFRESH_ITEM} AND {_ALIVE}"
    if dialect == "postgres":
        # One statement that writes only an item with a TTL, and never waits for one
        # another transaction is changing (that one sets its expiry anyway): a read,
        # even batched with others in one transaction, is in no deadlock.
        update = (
            "UPDATE deepmemory_items SET expires_at = :epoch + ttl_minutes * 60 "
            "WHERE (namespace, key) IN (SELECT namespace, key FROM deepmemory_items "
            "WHERE namespace = :ns AND key = :key AND ttl_minutes IS NOT NULL "
            f"AND {_ALIVE} FOR UPDATE SKIP LOCKED)"
        )
        return f"WITH touched AS ({update} RETURNING 1) {select}", None

    def then(rows: list[Row]) -> list[Query]:
        return [(update, params)] if rows and rows[0][5] is not None else []

    return select, then


def _refreshing_page(
    dialect: Dialect,
    page: str,
    params: dict[str, Any],
    order: str = "updated_at DESC, namespace, key",
) -> tuple[str, Any]:
    """A page of items (in ``order``) whose TTLs the read moves on (as ``_refreshing_one``)."""
    if dialect == "postgres":
        sql = (
            f"WITH page AS ({page}), free AS (SELECT t.namespace, t.key "
            "FROM deepmemory_items AS t JOIN page ON t.namespace = page.namespace "
            "AND t.key = page.key WHERE t.ttl_minutes IS NOT NULL "
            "FOR UPDATE OF t SKIP LOCKED), touched AS (UPDATE deepmemory_items AS t "
            "SET expires_at = :epoch + t.ttl_minutes * 60 FROM free "
            "WHERE t.namespace = free.namespace AND t.key = free.key) "
            f"SELECT * FROM page ORDER BY {order}"
        )
        return sql, None

    def then(rows: list[Row]) -> list[Query]:
        return [
            (_REFRESH_ITEM, {"ns": row[0], "key": row[1], "epoch": params["epoch"]})
            for row in rows
            if row[5] is not None
        ]

    return page, then


def plan_op(dialect: Dialect, op: Op, epoch: float, omit_expired: bool = False) -> Step[Result]:
    """The step answering one LangGraph store operation.

    ``epoch``: now, for TTLs; ``omit_expired``: the ``ttl=`` config's (``_unexpired``).
    """
    validate_op_namespace(op)
    params: dict[str, Any]
    alive = _unexpired(omit_expired)
    if isinstance(op, GetOp):
        params = {"ns": encode_namespace(op.namespace), "key": op.key, "epoch": epoch}
        sql = (
            f"SELECT {_ITEM_COLUMNS}, ttl_minutes FROM deepmemory_items "
            f"WHERE namespace = :ns AND key = :key AND {alive}"
        )
        then = None
        if op.refresh_ttl:
            sql, then = _refreshing_one(dialect, sql, params)
        finish_one = lambda rows: _item(dialect, rows[0]) if rows else None  # noqa: E731
        return _step(dialect, sql, params, finish_one, then=then)
    if isinstance(op, PutOp):
        if op.value is None:
            params = {"ns": encode_namespace(op.namespace), "key": op.key}
            sql = "DELETE FROM deepmemory_items WHERE namespace = :ns AND key = :key RETURNING key"
            return _step(dialect, sql, params, lambda rows: None, write=True)
        params = _write_params(op.namespace, op.key, dict(op.value))
        if op.ttl is not None:
            params["ttl_minutes"] = float(op.ttl)
            params["expires_at"] = epoch + float(op.ttl) * 60
        sql = _upsert(dialect, conflict=_conflict_update("excluded.value"))
        return _step(dialect, sql, params, lambda rows: None, write=True)
    if isinstance(op, SearchOp):
        # Without a vector index the query is ignored, as in LangGraph's stores.
        params = {"limit": op.limit, "offset": op.offset, "epoch": epoch}
        where = [_namespace_condition(op.namespace_prefix, params), alive]
        where += _filter_conditions(dialect, [], dict(op.filter or {}), params)
        sql = (
            f"SELECT {_ITEM_COLUMNS}, ttl_minutes FROM deepmemory_items "
            f"WHERE {' AND '.join(where)} "
            "ORDER BY updated_at DESC, namespace, key LIMIT :limit OFFSET :offset"
        )
        then = None
        if op.refresh_ttl:
            sql, then = _refreshing_page(dialect, sql, params)
        finish_page = lambda rows: [_search_item(dialect, r) for r in rows]  # noqa: E731
        return _step(dialect, sql, params, finish_page, then=then)
    if isinstance(op, ListNamespacesOp):
        params = {}
        prefix: Sequence[str] = ()
        for condition in op.match_conditions or ():
            if condition.match_type == "prefix" and "*" not in condition.path:
                prefix = condition.path  # Narrow by index; the rest is checked in Python.
        in_prefix = _namespace_condition(prefix, params, "i.namespace")
        params["epoch"] = epoch
        in_prefix += " AND " + alive.replace("expires_at", "i.expires_at")
        # One index seek per namespace (from each to the next), not a pass over every item.
        first = "SELECT i.namespace FROM deepmemory_items AS i WHERE"
        then = "ORDER BY i.namespace LIMIT 1"
        sql = (
            f"WITH RECURSIVE found(namespace) AS (SELECT ({first} {in_prefix} {then}) "
            f"UNION ALL SELECT ({first} i.namespace > found.namespace AND {in_prefix} {then}) "
            "FROM found WHERE found.namespace IS NOT NULL) "
            "SELECT namespace FROM found WHERE namespace IS NOT NULL"
        )
        return _step(dialect, sql, params, lambda rows: _finish_namespaces(op, rows))
    raise TypeError(f"Unknown store operation {type(op).__name__}.")


# -- file queries ----------------------------------------------------------------------


def _stored_file(dialect: Dialect, rows: list[Row]) -> StoredFile | None:
    if not rows:
        return None
    file = file_from_value(_decode_value(dialect, rows[0][0]))
    file.version = int(rows[0][1])
    return file


def select_file(
    dialect: Dialect, namespace: Namespace, key: str, fresh: str | None = None
) -> Step[StoredFile | None]:
    """The file at ``key`` with its version (used at or after ``fresh``, if given)."""
    params: dict[str, Any] = {"ns": encode_namespace(namespace), "key": key}
    sql = "SELECT value, version FROM deepmemory_items WHERE namespace = :ns AND key = :key"
    sql += _fresh(dialect, fresh, params)
    finish = lambda rows: _stored_file(dialect, rows)  # noqa: E731
    return _step(dialect, sql, params, finish, merge=BY_FILE["fresh" in params])


# What a plain read of one file merges by (``Merge.by``), without and with an expiry:
# the key and the expiry's cutoff (each call takes its own); never the namespace, so
# one statement answers one tenant's calls only. Built once: reads are the hot path.
BY_FILE = {False: Merge(("key",)), True: Merge(("key", "fresh"))}


def _storable(dialect: Dialect, file: StoredFile) -> StoredFile:
    if dialect == "postgres" and file.encoding == "utf-8" and "\x00" in file.content:
        # PostgreSQL text cannot hold NUL: keep such a file byte-exact as binary.
        encoded = base64.b64encode(file.content.encode("utf-8")).decode("ascii")
        return StoredFile(encoded, "base64", file.created_at, file.modified_at)
    return file


def write_file(
    dialect: Dialect, namespace: Namespace, key: str, file: StoredFile, expected_version: int | None
) -> Step[int | None]:
    """Write a file: unconditionally, insert-if-absent (0), or compare-and-swap on version."""
    params = _write_params(namespace, key, _storable(dialect, file).to_value())
    if expected_version is None:
        sql = _upsert(dialect, conflict=_conflict_update(_KEEP_CREATED_AT[dialect]))
    elif expected_version == 0:
        sql = _upsert(dialect, conflict="DO NOTHING")
    else:
        # One UPDATE ... WHERE version = ?, not get-then-put.
        params["expected"] = expected_version
        sql = (
            f"UPDATE deepmemory_items SET value = {_VALUE[dialect]}, updated_at = "
            f"{_NOW[dialect]}, version = {_NEXT_VERSION[dialect]}, {_FILE_COLUMNS} "
            f"WHERE namespace = :ns AND key = :key AND version = :expected RETURNING {WRITTEN}"
        )
        finish = lambda rows: int(rows[0][0]) if rows else None  # noqa: E731
        if dialect == "postgres":
            return _step(dialect, sql, params, finish, write=True, merge=_cas_merge())
        return _step(dialect, sql, params, finish, write=True)
    return _step(dialect, sql, params, lambda rows: int(rows[0][0]) if rows else None, write=True)


# A compare-and-swap write's own parameters; concurrent ones share every other one.
CAS_ROW = (
    "key",
    "value",
    "expected",
    "parent",
    "encoding",
    "size",
    "modified_at",
    "text_override",
    "now",
)
SELECT_VERSIONS = "SELECT _i, version FROM w"


@functools.cache
def _cas_merge() -> Merge:
    """PostgreSQL compare-and-swap writes' ``Merge`` (built once, on first use)."""
    return Merge(CAS_ROW, cas_many(SELECT_VERSIONS))


@functools.cache
def cas_many(tail: str, extra: tuple[str, ...] = (), ctes: str = "") -> str:
    """PostgreSQL: compare-and-swap writes of many files of ``:ns`` in one statement.

    ``WITH _q AS (the rows), w AS (UPDATE each file whose version still holds
    RETURNING _i, key, version, value, size and the ``extra`` row columns){ctes}``,
    then ``tail`` (which returns each written row's ``_i`` and version). As
    ``write_file``'s compare-and-swap for each row: a file whose version moved on is
    left alone and its row returns nothing.
    """
    names = CAS_ROW + extra
    arrays = ", ".join(f"CAST(:_{name} AS text[])" for name in names)
    columns = ", ".join(f"_{name}" for name in names)
    returned = "".join(f", _q._{name}" for name in extra)
    sql = (
        f"WITH _q AS (SELECT * FROM unnest({arrays}) WITH ORDINALITY AS _q({columns}, _i)), "
        "w AS (UPDATE deepmemory_items SET value = CAST(_q._value AS jsonb), "
        "updated_at = CAST(_q._now AS timestamptz), version = nextval('deepmemory_versions'), "
        "parent = _q._parent, encoding = _q._encoding, size = CAST(_q._size AS bigint), "
        "modified_at = _q._modified_at, text_override = _q._text_override FROM _q "
        "WHERE namespace = :ns AND key = _q._key AND version = CAST(_q._expected AS bigint) "
        f"RETURNING _q._i, key, version, value, size{returned}){ctes} {tail}"
    )
    return _psycopg_sql(sql)


def write_file_unless_dir(
    dialect: Dialect, namespace: Namespace, key: str, file: StoredFile, fresh: str | None = None
) -> Step[int | None]:
    """``write_file`` without an expected version, refused (``None``) if ``key`` is a directory.

    One statement: the directory check is part of the insert.
    """
    params = _write_params(namespace, key, _storable(dialect, file).to_value())
    lo = dir_prefix(key)
    params |= {"lo": lo, "hi": prefix_end(lo)}
    below = (
        "EXISTS (SELECT 1 FROM deepmemory_items "
        f"WHERE namespace = :ns AND key > :lo AND key < :hi{_fresh(dialect, fresh, params)})"
    )
    sql = _upsert(dialect, conflict=_conflict_update(_KEEP_CREATED_AT[dialect]), unless=below)
    return _step(dialect, sql, params, lambda rows: int(rows[0][0]) if rows else None, write=True)


# The text of a stored text file, and the SQL that edits it in place.
_CONTENT = {"sqlite": "json_extract(value, '$.content')", "postgres": "(value ->> 'content')"}
_SET_CONTENT = {
    "sqlite": "json_set(value, '$.content', {new}, '$.modified_at', :modified_at)",
    "postgres": "jsonb_set(jsonb_set(value, '{{content}}', to_jsonb({new})), "
    "'{{modified_at}}', to_jsonb(CAST(:modified_at AS text)))",
}


def edit_file_in_place(
    dialect: Dialect,
    namespace: Namespace,
    key: str,
    edit: tuple[str, str, str],
    fresh: str | None = None,
) -> Step[int | None]:
    """Replace the one occurrence of ``old`` in a text file inside the database.

    The new version; ``None`` (nothing changed) when the file is missing, binary, in
    the older list-of-lines layout, or holds ``old`` other than exactly once: the
    caller then reads the file to say which. One ``UPDATE`` whose condition and new
    value are computed from the row it changes, so a concurrent edit of the same file
    is re-checked against the latest row (PostgreSQL re-evaluates the row after
    waiting for its lock; SQLite runs one writer at a time): no update is lost.
    ``edit`` is ``(old, new, modified_at)``; ``old`` and ``new`` must not contain NUL.
    """
    old, new, modified_at = edit
    text = _CONTENT[dialect]
    cast = "CAST({} AS text)" if dialect == "postgres" else "{}"
    old_sql, new_sql = cast.format(":old"), cast.format(":new")
    replaced = f"replace({text}, {old_sql}, {new_sql})"
    params: dict[str, Any] = {
        "ns": encode_namespace(namespace),
        "key": key,
        "old": old,
        "new": new,
        "modified_at": modified_at,
        "now": clock.now_iso(),
    }
    # Exactly once: removing every occurrence shortens the text by one length of old.
    once = f"length({text}) - length(replace({text}, {old_sql}, '')) = length({old_sql})"
    if dialect == "sqlite":  # its JSON functions stop at a NUL: leave such text to Python
        once += " AND instr(value, '\\u0000') = 0"
    # One occurrence replaced: the size changes by the difference of their UTF-8 lengths.
    params["grow"] = len(new.encode("utf-8")) - len(old.encode("utf-8"))
    sql = (
        f"UPDATE deepmemory_items SET value = {_SET_CONTENT[dialect].format(new=replaced)}, "
        "size = size + :grow, modified_at = :modified_at, "
        f"updated_at = {_NOW[dialect]}, version = {_NEXT_VERSION[dialect]} "
        "WHERE namespace = :ns AND key = :key AND encoding = 'utf-8' "
        f"AND text_override IS NULL AND {once}{_fresh(dialect, fresh, params)} "
        f"RETURNING {WRITTEN}"
    )
    return _step(dialect, sql, params, lambda rows: int(rows[0][0]) if rows else None, write=True)


def _finish_list(rows: list[Row]) -> list[FileInfo]:
    files = {r[0]: FileInfo(r[0], False, int(r[2]), r[3]) for r in rows if not r[1]}
    dirs = [FileInfo(r[0], True) for r in rows if r[1] and r[0][:-1] not in files]
    return sorted([*files.values(), *dirs], key=lambda e: e.path)


def list_dir(
    dialect: Dialect, namespace: Namespace, dir_key: str, fresh: str | None = None
) -> Step[list[FileInfo]]:
    """Direct children: files by ``parent``, subdirectories by skipping from one to the next.

    Each subdirectory costs one index seek (the next key after ``dir/name/`` is at or
    above ``dir/name0``), so the files deeper down are never read.
    """
    lo = dir_prefix(dir_key)
    params: dict[str, Any] = {"ns": encode_namespace(namespace), "dir": dir_key, "lo": lo}
    params |= {"hi": prefix_end(lo), "start": len(lo) + 1}
    rest, find = "substr(key, :start)", _FIND[dialect]
    used = _fresh(dialect, fresh, params)  # a directory of expired files is gone too
    probe = (
        f"(SELECT substr({rest}, 1, {find}({rest}, '/') - 1) FROM deepmemory_items "
        "WHERE namespace = :ns AND key {op} {bound} AND key < :hi "
        f"AND {find}({rest}, '/') > 0{used} ORDER BY key LIMIT 1)"
    )
    lo_text = "CAST(:lo AS text)"
    sql = (
        f"WITH RECURSIVE subdirs(name) AS (SELECT {probe.format(op='>', bound=lo_text)} "
        f"UNION ALL SELECT {probe.format(op='>=', bound=lo_text + ' || subdirs.name || ' + repr('0'))} "
        "FROM subdirs WHERE subdirs.name IS NOT NULL) "
        "SELECT key, 0, size, modified_at FROM deepmemory_items "
        f"WHERE namespace = :ns AND parent = :dir{used} "
        f"UNION ALL SELECT {lo_text} || name || '/', 1, NULL, NULL FROM subdirs "
        "WHERE name IS NOT NULL"
    )
    return _step(dialect, sql, params, _finish_list, custom_plan=True)


def find_dir(
    dialect: Dialect, namespace: Namespace, dir_key: str, fresh: str | None = None
) -> Step[bool]:
    """Whether any key lies below ``dir_key``."""
    lo = dir_prefix(dir_key)
    params = {"ns": encode_namespace(namespace), "lo": lo, "hi": prefix_end(lo)}
    sql = (
        "SELECT EXISTS (SELECT 1 FROM deepmemory_items "
        f"WHERE namespace = :ns AND key > :lo AND key < :hi{_fresh(dialect, fresh, params)})"
    )
    return _step(dialect, sql, params, lambda rows: bool(rows[0][0]))


def delete_tree(
    dialect: Dialect, namespace: Namespace, key: str, fresh: str | None = None
) -> Step[list[str]]:
    """Delete ``key`` and every key below it in one statement (expired ones stay for prune)."""
    lo = dir_prefix(key)
    params = {"ns": encode_namespace(namespace), "key": key, "lo": lo, "hi": prefix_end(lo)}
    # One index range from the file itself to the end of its directory.
    sql = (
        "DELETE FROM deepmemory_items WHERE namespace = :ns AND key >= :key AND key < :hi "
        f"AND (key = :key OR key > :lo){_fresh(dialect, fresh, params)} RETURNING key"
    )
    return _step(dialect, sql, params, lambda rows: sorted(r[0] for r in rows), write=True)


# -- the shared store ------------------------------------------------------------------
