"""LangGraph's semantic index on our stores: ``index=``, ``put(index=)``, ``search(query=)``.

The embedder here counts letters into 8 buckets, so every expected score is computed
in the test from the texts, by formulas written here, independently of the store.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from langchain_core.embeddings import Embeddings

from deepmemory.errors import ConfigError
from deepmemory.stores import SQLiteStore
from deepmemory.stores._base import SQLStore

NS = ("docs",)
DIMS = 8
# Every engine: SQLite, PostgreSQL without pgvector (exact), PostgreSQL with it (HNSW).
ENGINES = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("pgvector", marks=pytest.mark.postgres),
]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def letters(text: str) -> list[float]:
    vector = [0.0] * DIMS
    for ch in text.lower():
        if ch.isalpha():
            vector[(ord(ch) - ord("a")) % DIMS] += 1.0
    return vector


class Letters(Embeddings):
    """A LangChain embedder that records each call."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        return [letters(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        self.calls.append([text])
        return letters(text)


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(y * y for y in b))
    return 0.0 if na == 0 or nb == 0 else dot / (na * nb)


def score(distance: str, a: list[float], b: list[float]) -> float:
    if distance == "cosine":
        return cosine(a, b)
    if distance == "inner_product":
        return sum(x * y for x, y in zip(a, b, strict=True))
    return -math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)))


def indexed(make_store, kind: str, embed: Any = None, **index: Any) -> SQLStore:
    config = {"dims": DIMS, "embed": embed or Letters(), **index}
    return make_store(kind, index=config)


DOCS = {
    "apple": {"text": "apple pie with cream", "color": "red", "rank": 3},
    "zebra": {"text": "zebra crossing", "color": "black", "rank": 1},
    "tart": {"text": "apple tart", "color": "green", "rank": 2},
    "quiz": {"text": "quick quiz", "color": "red", "rank": 5},
}


@pytest.mark.parametrize("distance", ["cosine", "inner_product", "l2"])
def test_search_ranks_by_similarity_to_the_query(make_store, engine, distance) -> None:
    store = indexed(make_store, engine, fields=["text"], distance_type=distance)
    for key, value in DOCS.items():
        store.put(NS, key, value)
    query = letters("apple")
    want = sorted(
        ((score(distance, letters(v["text"]), query), k) for k, v in DOCS.items()),
        key=lambda pair: (-pair[0], pair[1]),
    )
    got = store.search(NS, query="apple")
    assert [item.key for item in got] == [k for _, k in want]
    for item, (expected, _) in zip(got, want, strict=True):
        assert item.score == pytest.approx(expected, rel=1e-5, abs=1e-5)
        assert item.value == DOCS[item.key]
    # Pages of the same order; filters and prefixes as without a query.
    assert [i.key for i in store.search(NS, query="apple", limit=2, offset=1)] == [
        k for _, k in want[1:3]
    ]
    red = [i.key for i in store.search(NS, query="apple", filter={"color": "red"})]
    assert red == [k for _, k in want if DOCS[k]["color"] == "red"]
    assert store.search(("other",), query="apple") == []
    assert [i.key for i in store.search((), query="apple")] == [k for _, k in want]


def test_fields_paths_elements_and_the_best_vector(make_store, engine) -> None:
    store = indexed(make_store, engine, fields=["title", "notes[*].body", "meta.tag"])
    store.put(NS, "a", {"title": "kiwi", "notes": [{"body": "mango"}, {"body": "plum"}]})
    store.put(NS, "b", {"title": "grape", "meta": {"tag": "lemon"}, "notes": []})
    store.put(NS, "c", {"unrelated": "mango mango"})  # no named field: no vectors
    for query, best in [("mango", "a"), ("plum", "a"), ("lemon", "b"), ("grape", "b")]:
        got = store.search(NS, query=query)
        assert {i.key for i in got if i.score is not None} == {"a", "b"}, query
        assert [i.key for i in got if i.score is None] == ([] if engine == "pgvector" else ["c"])
        assert got[0].key == best
        texts = {"a": ["kiwi", "mango", "plum"], "b": ["grape", "lemon"]}[best]
        assert got[0].score == pytest.approx(
            max(cosine(letters(t), letters(query)) for t in texts), abs=1e-5
        )
    # Without a query every item is found, unscored.
    assert {(i.key, i.score) for i in store.search(NS)} == {("a", None), ("b", None), ("c", None)}


def test_the_whole_value_by_default(make_store, engine) -> None:
    store = indexed(make_store, engine)
    store.put(NS, "k", {"a": "xyz", "n": 1})
    import json

    text = json.dumps({"a": "xyz", "n": 1})  # LangGraph embeds "$" as the JSON text
    [item] = store.search(NS, query="xyz")
    assert item.score == pytest.approx(cosine(letters(text), letters("xyz")), abs=1e-5)


def test_put_index_false_and_per_put_fields(make_store, engine) -> None:
    embedder = Letters()
    store = indexed(make_store, engine, embed=embedder, fields=["text"])
    store.put(NS, "named", {"text": "aaaa", "other": "zzzz"}, index=["other"])
    store.put(NS, "hidden", {"text": "zzzz"}, index=False)
    # An item without vectors follows the ranked ones, unscored (LangGraph's
    # InMemoryStore; with pgvector only the index's nearest take part).
    found = [(i.key, i.score) for i in store.search(NS, query="zzzz")]
    assert found[0] == ("named", pytest.approx(1.0))
    assert found[1:] == ([] if engine == "pgvector" else [("hidden", None)])
    assert {i.key for i in store.search(NS)} == {"named", "hidden"}
    assert ["zzzz"] in embedder.calls and ["aaaa"] not in embedder.calls


def test_an_update_re_embeds_and_a_write_that_does_not_embed_unranks(make_store, engine) -> None:
    store = indexed(make_store, engine, fields=["text"])
    store.put(NS, "k", {"text": "apple"})
    store.put(NS, "other", {"text": "apple"})
    store.put(NS, "k", {"text": "zebra"})
    [first, second] = store.search(NS, query="zebra")
    assert (first.key, first.score) == ("k", pytest.approx(1.0))
    assert second.score == pytest.approx(cosine(letters("apple"), letters("zebra")), abs=1e-5)
    # The same database opened without an index writes the item: its old vectors no
    # longer describe it, so it leaves the ranking until it is embedded again.
    plain = make_store(engine)
    plain.put(NS, "k", {"text": "apple"})
    unranked = [] if engine == "pgvector" else [("k", None)]
    assert [(i.key, i.score and 1) for i in store.search(NS, query="zebra")] == [
        ("other", 1),
        *unranked,
    ]
    store.put(NS, "k", {"text": "zebra"})
    assert store.search(NS, query="zebra")[0].key == "k"


def test_deleting_an_item_deletes_its_vectors(make_store, engine) -> None:
    store = indexed(make_store, engine, fields=["parts[*]"])
    store.put(NS, "k", {"parts": ["a", "b", "c"]})
    store.put(NS, "keep", {"parts": ["d"]})
    assert _vector_rows(store) == 4
    store.delete(NS, "k")
    assert _vector_rows(store) == 1
    assert [i.key for i in store.search(NS, query="a")] == ["keep"]


def _vector_rows(store: SQLStore) -> int:
    if isinstance(store, SQLiteStore):
        return int(
            store._connection().execute("SELECT count(*) FROM deepmemory_vectors").fetchone()[0]
        )
    with store._sync_pool().connection() as conn:  # type: ignore[attr-defined]
        return int(conn.execute("SELECT count(*) FROM deepmemory_vectors").fetchone()[0])


def test_one_embedder_call_per_batch(make_store, engine) -> None:
    from langgraph.store.base import PutOp

    embedder = Letters()
    store = indexed(make_store, engine, embed=embedder, fields=["text", "title"])
    ops = [PutOp(NS, f"k{i}", {"text": f"t{i}", "title": f"h{i}"}) for i in range(5)]
    assert store.batch(ops) == [None] * 5
    assert embedder.calls == [[x for i in range(5) for x in (f"t{i}", f"h{i}")]]
    asyncio.run(store.abatch([PutOp(NS, f"a{i}", {"text": f"u{i}"}) for i in range(3)]))
    assert embedder.calls[-1] == ["u0", "u1", "u2"]


def test_async_embedding_functions_and_async_calls(make_store, engine) -> None:
    async def aembed(texts: list[str]) -> list[list[float]]:
        await asyncio.sleep(0)
        return [letters(t) for t in texts]

    store = indexed(make_store, engine, embed=aembed, fields=["text"])

    async def run() -> list[str]:
        await store.aput(NS, "a", {"text": "apple"})
        await store.aput(NS, "z", {"text": "zebra"})
        return [i.key for i in await store.asearch(NS, query="zebra")]

    assert asyncio.run(run()) == ["z", "a"]


def test_a_wrong_embedder_stores_nothing(make_store, engine) -> None:
    store = indexed(make_store, engine, embed=lambda texts: [[1.0, 2.0] for _ in texts])
    with pytest.raises(ValueError, match="dims=8"):
        store.put(NS, "k", {"text": "x"})
    assert store.get(NS, "k") is None
    short = indexed(make_store, engine, embed=lambda texts: [])
    with pytest.raises(ValueError, match="0 vectors for 1 texts"):
        short.put(NS, "k", {"text": "x"})
    assert short.get(NS, "k") is None


@pytest.mark.parametrize(
    ("index", "message"),
    [
        ({"embed": letters}, "dims"),
        ({"dims": 0, "embed": letters}, "dims"),
        ({"dims": 8}, "embed"),
        ({"dims": 8, "embed": letters, "distance_type": "hamming"}, "distance_type"),
        ({"dims": 8, "embed": letters, "fields": [1]}, "fields"),
    ],
)
def test_index_config_errors_say_what_to_give(tmp_path, index, message) -> None:
    with pytest.raises(ConfigError, match=message):
        SQLiteStore(tmp_path / "m.db", index=index)


def test_the_config_is_visible_as_on_langgraph_stores(make_store, engine) -> None:
    embedder = Letters()
    store = indexed(make_store, engine, embed=embedder, fields=["text"])
    assert store.index_config is not None and store.index_config["dims"] == DIMS
    assert store.embeddings is embedder
    assert make_store(engine).index_config is None


def test_a_search_that_refreshes_ttls_keeps_the_ranking(make_store, engine) -> None:
    store = indexed(make_store, engine, fields=["text"])
    for key, value in DOCS.items():
        store.put(NS, key, value, ttl=60)
    ranked = [i.key for i in store.search(NS, query="apple", refresh_ttl=True)]
    assert ranked == [i.key for i in store.search(NS, query="apple", refresh_ttl=False)]
    assert ranked[0] == "apple"


@pytest.mark.postgres
def test_with_pgvector_a_search_reads_the_hnsw_index(make_store) -> None:
    import time

    from langgraph.store.base import PutOp, SearchOp

    from deepmemory.stores._vectors import vector_search

    store = indexed(make_store, "pgvector", fields=["text"])
    words = ["".join(chr(97 + (i * 7 + j * 3) % 26) for j in range(i % 9 + 1)) for i in range(2000)]
    store.batch([PutOp(NS, f"k{i}", {"text": word}) for i, word in enumerate(words)])
    assert store.search(NS, query="abab")[0].key is not None
    assert store.ann is True
    op = SearchOp(NS, None, 10, 0, "abab")
    sql, params = vector_search("postgres", op, letters("abab"), "cosine", time.time(), DIMS).query
    with store._connection() as conn:  # type: ignore[attr-defined]
        conn.execute("ANALYZE deepmemory_vectors")
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql, params).fetchall())
    assert f"deepmemory_vectors_hnsw_{DIMS}_cosine" in plan, plan
    # Asked to stay exact, or on a server without pgvector, no HNSW index is used.
    exact = make_store("pgvector", index={"dims": DIMS, "embed": Letters()}, ann=False)
    plain = indexed(make_store, "postgres")
    for other in (exact, plain):
        other.put(("exact",), "k", {"text": "abab"})
        assert other.search(("exact",), query="abab")[0].key == "k"
        assert other.ann is False
