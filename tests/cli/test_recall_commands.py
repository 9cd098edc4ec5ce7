"""``deepmemory memory search`` and ``reindex``: recall by meaning from the command line,
with the embedder named in the config and reached over real HTTP (the fake OpenAI
server's embeddings API, in which synonyms share a dimension)."""

from __future__ import annotations

import json

import pytest

from deepmemory.backends import StoreBackend
from deepmemory.stores import SQLiteStore
from tests.cli.conftest import invoke, one_error_line
from tests.fakes.synonyms import DIMS

USER = "alice"
FACT = "Alice drinks an espresso every dawn before work."


def long_file() -> str:
    rows = [FACT if n == 400 else f"Meeting note {n}: review the report." for n in range(1, 801)]
    return "\n".join(rows) + "\n"


@pytest.fixture
def mem(db):
    def run(*args: object, input: str | None = None):
        return invoke("memory", *args, "--db", db, "--user", USER, input=input)

    return run


@pytest.fixture
def embedder(model_env, monkeypatch: pytest.MonkeyPatch, home) -> None:
    config = home / ".config" / "deepmemory" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'embed = "openai:text-embedding-3-small"\nembed_dims = {DIMS}\n')


def test_search_without_an_embedder_says_how_to_set_one(mem) -> None:
    mem("write", "notes.md", FACT)
    result = mem("search", "morning coffee")
    assert result.exit_code == 2
    line = one_error_line(result.stderr)
    assert "embed =" in line and "embed_dims" in line and "grep" in line


def test_search_finds_a_passage_by_meaning_with_its_lines(mem, embedder, model_env) -> None:
    assert mem("write", "journal.md", long_file()).exit_code == 0
    result = mem("search", "morning coffee", "--limit", "1")
    assert result.exit_code == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("/memories/journal.md lines ") and "espresso" in result.stdout
    start, end = (int(n) for n in first.split(" lines ")[1].split(" ")[0].split("-"))
    assert start <= 400 <= end
    passages = json.loads(mem("search", "morning coffee", "--json").stdout)
    assert passages[0]["path"] == "/memories/journal.md" and passages[0]["score"] > 0.5
    assert mem("grep", "coffee").stdout.startswith("No matches")
    embedded = [r for r in model_env.requests if r.path == "/v1/embeddings"]
    assert embedded, "the embedder was reached over HTTP"


def test_reindex_covers_files_written_without_the_index(mem, embedder, db) -> None:
    with SQLiteStore(db) as store:  # no index: written as another tool would
        StoreBackend(store=store, namespace=("memories", USER)).write("/habits.md", FACT)
    before = mem("search", "coffee")
    assert "not indexed" in before.stdout and "/memories/habits.md" in before.stdout
    result = mem("reindex")
    assert result.exit_code == 0 and result.stdout == "Indexed 1 file(s) for search by meaning.\n"
    assert mem("search", "coffee").stdout.startswith("/memories/habits.md lines 1-1")


def test_a_bad_embedder_setting_is_one_line(mem, home, model_env) -> None:
    config = home / ".config" / "deepmemory" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('embed = "openai:text-embedding-3-small"\n')
    result = mem("search", "coffee")
    assert result.exit_code == 2 and "embed_dims" in one_error_line(result.stderr)
    config.write_text('embed = "x"\nembed_dims = 0\n')
    result = mem("ls")
    assert result.exit_code == 2 and "embed_dims" in one_error_line(result.stderr)
