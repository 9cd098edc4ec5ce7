"""A deterministic embedder in which synonyms share a dimension (recall by meaning, offline).

Each word is mapped to its concept (``CONCEPTS``: synonyms, lower case, and simple
plurals), and a text's vector counts its concepts, one dimension each; words outside
every concept share one last dimension with a small weight. So "espresso" and "coffee"
are close while sharing no word, and the tests know exactly what should rank first.
"""

from __future__ import annotations

import re

from langchain_core.embeddings import Embeddings

CONCEPTS: list[set[str]] = [
    {"coffee", "espresso", "latte", "cappuccino", "caffeine"},
    {"dog", "puppy", "hound", "canine"},
    {"car", "automobile", "vehicle", "sedan"},
    {"birthday", "anniversary", "celebration"},
    {"doctor", "physician", "clinic", "appointment"},
    {"allergy", "allergic", "intolerance"},
    {"peanut", "peanuts", "nut", "nuts"},
    {"morning", "dawn", "sunrise"},
    {"drink", "drinks", "beverage", "sip"},
    {"prefer", "prefers", "likes", "favourite", "favorite", "enjoys"},
]
DIMS = len(CONCEPTS) + 1
_INDEX = {word: i for i, words in enumerate(CONCEPTS) for word in words}


def concept_vector(text: str) -> list[float]:
    """The concept counts of ``text`` (the last dimension: every other word, weighted 0.01)."""
    vector = [0.0] * DIMS
    for word in re.findall(r"[a-z]+", text.lower()):
        vector[_INDEX.get(word, DIMS - 1)] += 1.0 if word in _INDEX else 0.01
    return vector


class SynonymEmbeddings(Embeddings):
    """LangChain ``Embeddings`` over :func:`concept_vector`; counts its calls and texts."""

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.calls = 0
        self.texts: list[str] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if self.fail:
            raise ConnectionError("the embedding provider is down")
        self.calls += 1
        self.texts += texts
        return [concept_vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        if self.fail:
            raise ConnectionError("the embedding provider is down")
        return concept_vector(text)
