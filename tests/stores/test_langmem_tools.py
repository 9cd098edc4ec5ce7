"""LangMem's memory tools over our stores, as semantic-store users run them.

``create_manage_memory_tool`` creates, updates and deletes memories through ``put`` and
``delete``; ``create_search_memory_tool`` finds them through ``search(query=...)``
ranked by the store's index. The embedder hashes words into buckets, so a memory
sharing the query's words ranks first.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import zlib

import pytest

NS = ("memories", "user-1")
DIMS = 64


def words(texts: list[str]) -> list[list[float]]:
    vectors = []
    for text in texts:
        vector = [0.0] * DIMS
        for word in re.findall(r"[a-z]+", text.lower()):
            vector[zlib.crc32(word.encode()) % DIMS] += 1.0
        vectors.append(vector)
    return vectors


@pytest.fixture
def langmem():
    try:
        import langmem
    except ImportError as exc:
        reason = f"langmem is not installed ({exc}): pip install -e '.[dev]'"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    return langmem


ENGINES = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("pgvector", marks=pytest.mark.postgres),
]


@pytest.mark.parametrize("engine", ENGINES)
def test_manage_and_search_memory_tools(langmem, make_store, engine) -> None:
    store = make_store(engine, index={"dims": DIMS, "embed": words})
    manage = langmem.create_manage_memory_tool(namespace=NS, store=store)
    search = langmem.create_search_memory_tool(namespace=NS, store=store)

    created = [
        manage.invoke({"content": text, "action": "create"})
        for text in ("User prefers dark mode", "User's dog is named Rex", "Meetings on Tuesday")
    ]
    ids = [reply.removeprefix("created memory ") for reply in created]
    assert all(reply.startswith("created memory ") for reply in created)

    found = json.loads(search.invoke({"query": "dark mode please"}))
    assert found[0]["key"] == ids[0]
    assert found[0]["value"] == {"content": "User prefers dark mode"}
    assert found[0]["score"] > found[1]["score"]

    assert (
        manage.invoke({"content": "User prefers light mode now", "action": "update", "id": ids[0]})
        == f"updated memory {ids[0]}"
    )
    found = json.loads(search.invoke({"query": "light mode"}))
    assert found[0]["value"] == {"content": "User prefers light mode now"}
    assert manage.invoke({"action": "delete", "id": ids[1]}) == f"Deleted memory {ids[1]}"
    keys = {m["key"] for m in json.loads(search.invoke({"query": "dog Rex"}))}
    assert keys == {ids[0], ids[2]}


@pytest.mark.parametrize("engine", ENGINES)
def test_the_tools_async(langmem, make_store, engine) -> None:
    store = make_store(engine, index={"dims": DIMS, "embed": words})
    manage = langmem.create_manage_memory_tool(namespace=NS, store=store)
    search = langmem.create_search_memory_tool(namespace=NS, store=store)

    async def run() -> list[dict]:
        await manage.ainvoke({"content": "Likes green tea", "action": "create"})
        await manage.ainvoke({"content": "Works from Lisbon", "action": "create"})
        return json.loads(await search.ainvoke({"query": "green tea"}))

    found = asyncio.run(run())
    assert [m["value"]["content"] for m in found] == ["Likes green tea", "Works from Lisbon"]
