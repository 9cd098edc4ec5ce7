"""Recall by meaning over files on our stores: passages with line ranges, ranked by
meaning and words, re-embedded only where an edit changed them, never stale."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from deepmemory.backends import StoreBackend
from deepmemory.backends._chunks import chunk_text
from deepmemory.stores._base import SQLStore
from tests.fakes.synonyms import DIMS, SynonymEmbeddings

NS = ("memories", "alice")


def long_file(fact_line: int, fact: str, lines: int = 800) -> str:
    rows = []
    for n in range(1, lines + 1):
        if n == fact_line:
            rows.append(fact)
        else:
            rows.append(f"Meeting note {n}: the quarterly report needs review by Friday.")
        if n % 10 == 0:
            rows.append("")
    return "\n".join(rows) + "\n"


@pytest.fixture
def recall(
    make_store: Callable[..., SQLStore], store_kind: str
) -> tuple[SQLStore, SynonymEmbeddings]:
    embedder = SynonymEmbeddings()
    store = make_store(store_kind, index={"dims": DIMS, "embed": embedder})
    return store, embedder


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.split("\n"), 1) if needle in line)


def test_a_passage_deep_in_a_long_file_is_found_by_meaning_with_its_lines(recall) -> None:
    store, _ = recall
    text = long_file(400, "Alice drinks an espresso every dawn before work.")
    backend = StoreBackend(store=store, namespace=NS)
    backend.write("/notes/log.md", text)  # writes through a backend index as they go
    backend.write("/notes/other.md", "The dog sleeps in the garden.\n")
    assert store.file_unindexed(NS) == []
    found, pending = store.file_passages(NS, "/", "morning coffee", 3)
    assert pending == []
    best = found[0]
    fact = line_of(text, "espresso")
    assert best.key == "/notes/log.md" and best.start_line <= fact <= best.end_line
    assert "espresso" in best.text and best.end_line - best.start_line < 25
    assert backend.grep("coffee").matches == []


def test_an_edit_re_embeds_only_the_passages_it_changed(recall) -> None:
    store, embedder = recall
    text = long_file(400, "Alice drinks an espresso every dawn before work.")
    store_backend = StoreBackend(store=store, namespace=NS)
    store_backend.write("/log.md", text)
    first = len(embedder.texts)
    store_backend.edit("/log.md", "Meeting note 700:", "Meeting note seven hundred:")
    assert store.file_unindexed(NS) == [] and not store.file_index(NS, "/log.md")
    assert len(embedder.texts) - first == 1  # one passage changed
    assert len({c.digest for c in chunk_text(text)}) <= first


def test_unindexed_files_are_left_out_and_reported_until_indexed(recall) -> None:
    store, embedder = recall
    backend = StoreBackend(store=store, namespace=NS)
    backend.write("/a.md", "Bob prefers a latte.\n")
    # A write through LangGraph's API is not indexed until a reindex: not searched.
    store.put(NS, "/a.md", {"content": "Bob has a puppy.\n", "encoding": "utf-8"})
    found, pending = store.file_passages(NS, "/", "coffee", 5)
    assert found == [] and pending == ["/a.md"]
    embedder.fail = True
    assert store.file_reindex(NS) == (0, ["/a.md"])
    embedder.fail = False
    assert store.file_reindex(NS) == (1, [])
    found, pending = store.file_passages(NS, "/", "dog", 5)
    assert [(p.key, p.start_line) for p in found] == [("/a.md", 1)] and pending == []


def test_exact_words_come_first_and_directories_and_namespaces_bound_the_search(
    recall,
) -> None:
    store, _ = recall
    alice = StoreBackend(store=store, namespace=NS)
    bob = StoreBackend(store=store, namespace=("memories", "bob"))
    alice.write("/people/zed.md", "Zed Quimby prefers espresso.\n")
    alice.write("/people/ann.md", "Ann likes coffee and coffee and latte.\n")
    alice.write("/work/plan.md", "Drink more coffee at work.\n")
    bob.write("/secret.md", "Bob's espresso machine code is 4242.\n")
    found, _ = store.file_passages(NS, "/", "Zed Quimby", 3)
    assert found[0].key == "/people/zed.md"
    found, _ = store.file_passages(NS, "/people", "coffee", 10)
    assert {p.key for p in found} == {"/people/zed.md", "/people/ann.md"}
    found, _ = store.file_passages(NS, "/", "espresso machine code", 10)
    assert all("4242" not in p.text for p in found)


def test_moved_and_deleted_files_take_their_passages_along(recall) -> None:
    store, _ = recall
    backend = StoreBackend(store=store, namespace=NS)
    backend.write("/a.md", "Carol is allergic to peanuts.\n")
    assert backend.move("/a.md", "/health/carol.md").error is None
    found, pending = store.file_passages(NS, "/", "nut allergy", 5)
    assert [p.key for p in found] == ["/health/carol.md"] and pending == []
    backend.delete("/health/carol.md")
    assert store.file_passages(NS, "/", "nut allergy", 5) == ([], [])


def test_words_every_passage_shares_do_not_outrank_the_closest_passage(recall) -> None:
    """A query whose words are everywhere: the ranking by words falls back on meaning."""
    store, _ = recall
    backend = StoreBackend(store=store, namespace=NS)
    for n in range(30):
        body = "Alice drinks an espresso at dawn." if n == 17 else "Alice walks the dog."
        backend.write(f"/days/{n:02d}.md", f"## day {n} notes\n{body}\n")
    found, _ = store.file_passages(NS, "/", "day notes: Alice morning coffee", 3)
    assert found[0].key == "/days/17.md"
