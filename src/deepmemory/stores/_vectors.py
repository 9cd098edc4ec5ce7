"""LangGraph's semantic index (``index=``) on our stores: embeddings, exact search, SQL.

A store opened with ``index={"dims": ..., "embed": ..., "fields": [...]}`` (LangGraph's
``IndexConfig``) embeds what each ``put`` names and ranks ``search(query=...)`` by
similarity to the query, as LangGraph's own stores do:

* ``embed`` is a LangChain ``Embeddings``, a function (sync or async) from texts to
  vectors, or a ``"provider:model"`` string (``langchain.embeddings.init_embeddings``);
  LangGraph's ``ensure_embeddings`` turns any of them into an ``Embeddings``.
* ``fields`` are JSON paths (``"$"``, the whole value, by default; ``"a.b"``,
  ``"items[*].text"``: one vector per element); ``put(..., index=False)`` embeds
  nothing, ``put(..., index=[paths])`` embeds those paths instead. A field missing from
  the value is skipped. Every text of every put in one ``batch`` goes to the embedder
  in one call.
* ``distance_type``: ``cosine`` (default; the score is the cosine similarity),
  ``inner_product`` (the dot product) or ``l2`` (minus the Euclidean distance):
  higher is closer, as in LangGraph's PostgresStore. An item's score is its best
  vector's.

Vectors live in ``deepmemory_vectors`` (m010), one row per item, field and element,
stamped with the item's version: a write that does not embed (a file tool's write, a
store opened without ``index``) leaves them unmatched, so a search never ranks an item
by text it no longer holds (it comes after the ranked ones, unscored), and the next
embedding put replaces them. Deleting an
item deletes its vectors (a trigger).

Search is exact by default: every vector under the namespace prefix is scored in the
database (PostgreSQL: SQL over ``real[]``; SQLite: a function of this module over
packed float32), then items are filtered, ordered by score and paged. Cost grows with
the number of vectors under the prefix, not with the store.

On a PostgreSQL server with the ``vector`` extension (pgvector), the store also builds
an HNSW index for its ``dims`` and distance (``enable_ann``) and a search takes the
``ANN_CANDIDATES`` nearest vectors from it, then filters and pages those: approximate,
as any HNSW search, and far cheaper on large stores. A page reaching past that many
candidates is answered exactly.
"""

from __future__ import annotations

import array
import math
import operator
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from langgraph.store.base import IndexConfig, Op, PutOp, SearchItem, SearchOp
from langgraph.store.base.embed import ensure_embeddings, get_text_at_path, tokenize_path

from deepmemory.backends.protocol import Namespace
from deepmemory.errors import ConfigError
from deepmemory.stores._sql import (
    _ITEM_COLUMNS,
    Dialect,
    Row,
    Step,
    _filter_conditions,
    _namespace_condition,
    _refreshing_page,
    _search_item,
    _step,
    _unexpired,
    encode_namespace,
)

Distance = Literal["cosine", "inner_product", "l2"]
_DISTANCES = ("cosine", "inner_product", "l2")
Vector = list[float]


@dataclass(frozen=True, slots=True)
class Embedded:
    """What a batch needs embedded, and its vectors once embedded.

    ``puts``: per op index, its ``(field, text)`` pairs (an empty list: the put embeds
    nothing, so its item just loses its vectors); ``queries``: per op index, the
    search's query text.
    """

    puts: dict[int, list[tuple[str, str]]]
    queries: dict[int, str]
    put_vectors: dict[int, list[tuple[str, Vector]]]
    query_vectors: dict[int, Vector]


class VectorIndex:
    """A store's ``index=`` configuration, checked once, and its embedder."""

    def __init__(self, config: IndexConfig | dict[str, Any]) -> None:
        if not isinstance(config, dict):
            raise ConfigError(
                f"index= takes LangGraph's IndexConfig, a dict such as "
                f"{{'dims': 1536, 'embed': 'openai:text-embedding-3-small'}}, "
                f"not {type(config).__name__}."
            )
        dims = config.get("dims")
        if isinstance(dims, bool) or not isinstance(dims, int) or dims < 1:
            raise ConfigError(
                f"index['dims'] must be the embedding size, a whole number >= 1 (for "
                f"example 1536 for openai:text-embedding-3-small), not {dims!r}."
            )
        if config.get("embed") is None:
            raise ConfigError(
                "index['embed'] is missing: give an Embeddings object, a function from "
                "texts to vectors, or a 'provider:model' string."
            )
        distance = config.get("distance_type", "cosine")
        if distance not in _DISTANCES:
            raise ConfigError(
                f"index['distance_type'] must be one of {', '.join(_DISTANCES)}, not {distance!r}."
            )
        # LangGraph's stores take "fields"; its SqliteStore also "text_fields".
        fields = config.get("fields") or config.get("text_fields") or ["$"]
        if isinstance(fields, str):
            fields = [fields]
        if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
            raise ConfigError(f"index['fields'] must be a list of JSON paths, not {fields!r}.")
        try:
            self.embeddings = ensure_embeddings(config["embed"])
        except ValueError as exc:
            raise ConfigError(f"index['embed']: {exc}") from exc
        self.config: dict[str, Any] = dict(config)
        self.dims: int = dims
        self.distance: Distance = cast(Distance, distance)
        self.fields: list[tuple[str, Any]] = [_tokenized(f) for f in fields]

    # -- what to embed --------------------------------------------------------------------

    def texts(self, op: PutOp) -> list[tuple[str, str]]:
        """The ``(field, text)`` pairs a put embeds (none for a delete or ``index=False``)."""
        if op.value is None or op.index is False:
            return []
        paths = self.fields if op.index is None else [_tokenized(p) for p in op.index]
        pairs = []
        for name, tokens in paths:
            texts = get_text_at_path(op.value, tokens)
            for i, text in enumerate(texts):
                pairs.append((f"{name}.{i}" if len(texts) > 1 else name, text))
        return pairs

    def wanted(self, ops: Sequence[Op]) -> Embedded:
        puts: dict[int, list[tuple[str, str]]] = {}
        queries: dict[int, str] = {}
        for i, op in enumerate(ops):
            if isinstance(op, PutOp) and op.value is not None:
                puts[i] = self.texts(op)
            elif isinstance(op, SearchOp) and op.query:
                queries[i] = op.query
        return Embedded(puts, queries, {}, {})

    # -- embedding: one call for a batch's documents --------------------------------------

    def embed(self, ops: Sequence[Op]) -> Embedded:
        want = self.wanted(ops)
        texts = [text for pairs in want.puts.values() for _, text in pairs]
        vectors = self.embeddings.embed_documents(texts) if texts else []
        queries = {i: self.embeddings.embed_query(q) for i, q in want.queries.items()}
        return self._done(want, vectors, queries)

    async def aembed(self, ops: Sequence[Op]) -> Embedded:
        want = self.wanted(ops)
        texts = [text for pairs in want.puts.values() for _, text in pairs]
        vectors = await self.embeddings.aembed_documents(texts) if texts else []
        queries = {i: await self.embeddings.aembed_query(q) for i, q in want.queries.items()}
        return self._done(want, vectors, queries)

    def _done(
        self, want: Embedded, vectors: Sequence[Sequence[float]], queries: dict[int, Any]
    ) -> Embedded:
        expected = sum(len(pairs) for pairs in want.puts.values())
        if len(vectors) != expected:
            raise ValueError(
                f"The embedder returned {len(vectors)} vectors for {expected} texts; "
                "nothing was stored."
            )
        found = iter(vectors)
        put_vectors = {
            i: [(field, self._checked(next(found))) for field, _ in pairs]
            for i, pairs in want.puts.items()
        }
        return Embedded(
            want.puts, want.queries, put_vectors, {i: self._checked(v) for i, v in queries.items()}
        )

    def _checked(self, vector: Sequence[float]) -> Vector:
        if len(vector) != self.dims:
            raise ValueError(
                f"The embedder returned a vector of {len(vector)} numbers where the store's "
                f"index has dims={self.dims}; nothing was stored. Give index['dims'] the "
                "model's size."
            )
        out = [float(x) for x in vector]
        if not all(math.isfinite(x) for x in out):
            raise ValueError("The embedder returned a vector holding NaN or infinity.")
        return out


def _tokenized(path: str) -> tuple[str, Any]:
    return (path, "$") if path == "$" else (path, tokenize_path(path))


def norm(vector: Sequence[float]) -> float:
    return math.sqrt(math.fsum(x * x for x in vector))


# -- stored form -----------------------------------------------------------------------


def pack(vector: Sequence[float]) -> bytes:
    """SQLite: a vector as little-endian float32."""
    packed = array.array("f", vector)
    if sys.byteorder != "little":
        packed.byteswap()
    return packed.tobytes()


def unpack(blob: bytes) -> array.array[float]:
    vector = array.array("f")
    vector.frombytes(blob)
    if sys.byteorder != "little":
        vector.byteswap()
    return vector


def similarity(
    blob: bytes, vector_norm: float, query: bytes, query_norm: float, distance: str
) -> float | None:
    """SQLite's ``deepmemory_similarity``: higher is closer (see the module's doc)."""
    a, b = unpack(blob), unpack(query)
    if len(a) != len(b):
        return None  # stored under another dims: never ranks
    if distance == "l2":
        return -math.sqrt(math.fsum((x - y) * (x - y) for x, y in zip(a, b, strict=True)))
    dot = math.fsum(map(operator.mul, a, b))
    if distance == "inner_product":
        return dot
    if vector_norm == 0 or query_norm == 0:
        return 0.0
    return dot / (vector_norm * query_norm)


def pg_similarity(distance: str) -> str:
    """PostgreSQL: the score of vector ``v`` against ``:qvec`` (norm ``:qnorm``)."""
    pairs = "unnest(v.embedding, CAST(:qvec AS float8[])) AS t(a, b)"
    if distance == "l2":
        return f"-sqrt((SELECT sum((CAST(a AS float8) - b) ^ 2) FROM {pairs}))"
    dot = f"(SELECT sum(CAST(a AS float8) * b) FROM {pairs})"
    if distance == "inner_product":
        return dot
    return (
        "CASE WHEN v.norm = 0 OR CAST(:qnorm AS float8) = 0 THEN 0 "
        f"ELSE {dot} / (v.norm * CAST(:qnorm AS float8)) END"
    )


# -- SQL ---------------------------------------------------------------------------------


def replace_vectors(
    dialect: Dialect, namespace: Namespace, key: str, vectors: Sequence[tuple[str, Vector]]
) -> list[Step[None]]:
    """After a put in the same transaction: the item's vectors are these, and no others.

    Each is stamped with the version the put just gave the item.
    """
    params: dict[str, Any] = {"ns": encode_namespace(namespace), "key": key}
    steps = [
        _step(
            dialect,
            "DELETE FROM deepmemory_vectors WHERE namespace = :ns AND key = :key",
            params,
            _nothing,
            write=True,
        )
    ]
    if not vectors:
        return steps
    version = "(SELECT version FROM deepmemory_items WHERE namespace = :ns AND key = :key)"
    if dialect == "sqlite":
        rows = ", ".join(
            f"(:ns, :key, :f{i}, {version}, :e{i}, :n{i})" for i in range(len(vectors))
        )
        for i, (field, vector) in enumerate(vectors):
            params |= {f"f{i}": field, f"e{i}": pack(vector), f"n{i}": norm(vector)}
        sql = (
            "INSERT INTO deepmemory_vectors (namespace, key, field, version, embedding, norm) "
            f"VALUES {rows}"
        )
    else:
        params |= {
            "fields": [field for field, _ in vectors],
            # One text per vector ('{1.5,2}'): an array of arrays must be rectangular.
            "embeddings": ["{" + ",".join(map(repr, v)) + "}" for _, v in vectors],
            "norms": [norm(v) for _, v in vectors],
        }
        sql = (
            "INSERT INTO deepmemory_vectors (namespace, key, field, version, embedding, norm) "
            f"SELECT CAST(:ns AS text), CAST(:key AS text), f, {version}, CAST(e AS real[]), n "
            "FROM unnest(CAST(:fields AS text[]), CAST(:embeddings AS text[]), "
            "CAST(:norms AS float8[])) AS x(f, e, n)"
        )
    steps.append(_step(dialect, sql, params, _nothing, write=True))
    return steps


def _nothing(rows: list[Row]) -> None:
    return None


# pgvector: its operator class and the score (higher is closer) of each distance.
_ANN = {
    "cosine": ("vector_cosine_ops", "<=>", "1 - ({})"),
    "inner_product": ("vector_ip_ops", "<#>", "-({})"),
    "l2": ("vector_l2_ops", "<->", "-({})"),
}
# Nearest vectors an approximate search takes from the HNSW index (also its ef_search).
ANN_CANDIDATES = 200


def enable_ann(conn: Any, dims: int, distance: str) -> bool:
    """PostgreSQL: pgvector and an HNSW index for ``dims`` and ``distance``.

    Only if the server has the extension and this user may use it: whether
    approximate search is on.
    """
    import psycopg

    if (
        conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone()
        is None
    ):
        return False
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector SCHEMA public")
        ops = _ANN[distance][0]
        conn.execute(
            f"CREATE INDEX IF NOT EXISTS deepmemory_vectors_hnsw_{dims}_{distance} "
            f"ON deepmemory_vectors USING hnsw ((CAST(embedding AS public.vector({dims}))) "
            f"public.{ops}) WHERE cardinality(embedding) = {dims}"
        )
    except psycopg.errors.InsufficientPrivilege:
        return False
    return True


def vector_search(
    dialect: Dialect,
    op: SearchOp,
    query: Vector,
    distance: str,
    epoch: float,
    ann_dims: int | None = None,
    omit_expired: bool = False,
) -> Step[list[SearchItem]]:
    """``op``'s items ranked by their best vector's similarity to ``query``.

    Items without vectors of their current version (``index=False``, or written by a
    store without an index) follow the ranked ones with no score, as in LangGraph's
    InMemoryStore; ``op.filter``, TTLs, ``limit`` and ``offset`` apply as in a search
    without a query. With ``ann_dims`` (PostgreSQL with pgvector) only the items of
    the HNSW index's nearest vectors take part, as in LangGraph's PostgresStore.
    """
    params: dict[str, Any] = {"limit": op.limit, "offset": op.offset, "epoch": epoch}
    within = _namespace_condition(op.namespace_prefix, params, column="v.namespace")
    approximate = (
        dialect == "postgres" and ann_dims is not None and op.limit + op.offset <= ANN_CANDIDATES
    )
    if dialect == "sqlite":
        params |= {"qvec": pack(query), "qnorm": norm(query), "distance": distance}
        score = "deepmemory_similarity(v.embedding, v.norm, :qvec, :qnorm, :distance)"
        source = "deepmemory_vectors AS v"
    elif approximate:
        _, operator_, as_score = _ANN[distance]
        params |= {"qvec": query, "candidates": ANN_CANDIDATES}
        near = (
            f"CAST(v.embedding AS public.vector({ann_dims})) OPERATOR(public.{operator_}) "
            f"CAST(CAST(:qvec AS real[]) AS public.vector({ann_dims}))"
        )
        source = (
            f"(SELECT v.namespace, v.key, v.version, {as_score.format(near)} AS score "
            f"FROM deepmemory_vectors AS v WHERE cardinality(v.embedding) = {ann_dims} "
            f"AND {within} ORDER BY {near} LIMIT :candidates) AS v"
        )
        score, within = "v.score", "TRUE"
    else:
        params |= {"qvec": query, "qnorm": norm(query)}
        score = pg_similarity(distance)
        source = "deepmemory_vectors AS v"
    scored = (
        f"SELECT v.namespace AS sn, v.key AS sk, v.version AS sv, max({score}) AS score "
        f"FROM {source} WHERE {within} GROUP BY v.namespace, v.key, v.version"
    )
    where = [_namespace_condition(op.namespace_prefix, params), _unexpired(omit_expired)]
    where += _filter_conditions(dialect, [], dict(op.filter or {}), params)
    if approximate:  # only the index's nearest take part
        join, where = "JOIN", [*where, "s.score IS NOT NULL"]
    else:  # exact: items without vectors follow, unscored (as LangGraph's InMemoryStore)
        join = "LEFT JOIN"
    order = "score DESC NULLS LAST, namespace, key"
    sql = (
        f"SELECT {_ITEM_COLUMNS}, ttl_minutes, s.score AS score FROM deepmemory_items "
        f"{join} ({scored}) AS s ON namespace = s.sn AND key = s.sk AND version = s.sv "
        f"WHERE {' AND '.join(where)} ORDER BY {order} LIMIT :limit OFFSET :offset"
    )
    then = None
    if op.refresh_ttl:
        sql, then = _refreshing_page(dialect, sql, params, order)

    def finish(rows: list[Row]) -> list[SearchItem]:
        return [_scored_item(dialect, row) for row in rows]

    return _step(dialect, sql, params, finish, then=then, custom_plan=True)


def _scored_item(dialect: Dialect, row: Row) -> SearchItem:
    item = _search_item(dialect, row)
    score = None if row[6] is None else float(row[6])
    return SearchItem(item.namespace, item.key, item.value, item.created_at, item.updated_at, score)
