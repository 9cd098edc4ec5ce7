"""``deepmemory memory prune``, the prune settings, and memory that expires.

Old files are written in this process under a ``ManualClock`` set in the past, through
the same ``StoreBackend`` the commands use; the store is closed, then the command runs
on the real clock against the real SQLite file (or PostgreSQL), and the database is
read again afterwards.
"""

from __future__ import annotations

import importlib
import json
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from deepmemory.backends import StoreBackend
from deepmemory.cli._config import Settings
from deepmemory.cli._store import agent_backend
from deepmemory.clock import ManualClock, now, use_clock
from deepmemory.pruning import PrunePolicy, Sweeper
from deepmemory.stores import PostgresStore, SQLiteStore
from tests.cli.conftest import deepmemory, invoke, one_error_line
from tests.conftest import postgres_url

USER = "alice"
chat_module = importlib.import_module("deepmemory.cli.chat")  # `deepmemory.cli.chat` is the command


def write_at(store, days_ago: float, files: dict[str, str], user: str = USER) -> None:
    """Write ``files`` (key -> text) into the user's memory as of ``days_ago`` days ago."""
    with use_clock(ManualClock(now() - timedelta(days=days_ago))):
        backend = StoreBackend(store=store, namespace=("memories", user))
        for key, text in files.items():
            assert backend.write(key, text).error is None


def keys(store, user: str = USER) -> list[str]:
    """Every file of the user's memory in the database, expired ones included."""
    return sorted(u.key for u in store.file_usage(("memories", user)))


@pytest.fixture
def old_and_new(db: Path) -> Path:
    """Alice: two files last written 100 and 99 days ago, one today; Bob: one 100 days ago."""
    with SQLiteStore(db) as store:
        write_at(store, 100, {"/old.md": "old notes\n"})
        write_at(store, 99, {"/projects/older.md": "older\n"})
        write_at(store, 100, {"/stale.txt": "bob\n"}, user="bob")
        write_at(store, 0, {"/new.md": "new\n"})
    return db


@pytest.fixture
def config(home: Path) -> Path:
    path = home / ".config" / "deepmemory" / "config.toml"
    path.parent.mkdir(parents=True)
    return path


def prune(db: Path, *args: object):
    return invoke("memory", "prune", "--db", db, *args)


def test_prune_deletes_the_files_not_used_within_the_ttl_and_lists_them(old_and_new):
    result = prune(old_and_new, "--ttl-days", 30, "--user", USER)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "memories/alice: removed 2 files (2 expired), 16 B; 1 file, 4 B left",
        "/memories/old.md  expired  10 B",
        "/memories/projects/older.md  expired  6 B",
    ]
    with SQLiteStore(old_and_new) as store:
        assert keys(store) == ["/new.md"]
        assert keys(store, "bob") == ["/stale.txt"]  # --user: only alice's memory


def test_prune_without_a_user_prunes_every_users_memory(old_and_new):
    result = prune(old_and_new, "--ttl-days", 30)
    assert result.exit_code == 0, result.stderr
    summaries = [line for line in result.stdout.splitlines() if not line.startswith("/")]
    assert [line.split(":")[0] for line in summaries] == ["memories/alice", "memories/bob"]
    with SQLiteStore(old_and_new) as store:
        assert keys(store) == ["/new.md"]
        assert keys(store, "bob") == []


def test_a_dry_run_lists_what_would_go_and_deletes_nothing(old_and_new):
    result = prune(old_and_new, "--ttl-days", 30, "--dry-run", "--user", USER)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "memories/alice: would remove 2 files (2 expired), 16 B; 1 file, 4 B left",
        "/memories/old.md  expired  10 B",
        "/memories/projects/older.md  expired  6 B",
    ]
    with SQLiteStore(old_and_new) as store:
        assert keys(store) == ["/new.md", "/old.md", "/projects/older.md"]
        assert store.get(("memories", USER), "/old.md").value["content"] == "old notes\n"


def test_max_files_evicts_the_least_recently_used_and_a_read_counts_as_use(db, monkeypatch):
    with SQLiteStore(db) as store:
        for days, key in [(50, "/a.md"), (40, "/b.md"), (30, "/c.md"), (20, "/d.md")]:
            write_at(store, days, {key: "x"})
    monkeypatch.setenv("DEEPMEMORY_TTL_DAYS", "90")  # with a TTL, reads count as use
    assert invoke("memory", "cat", "a.md", "--db", db, "--user", USER).stdout == "x"
    result = prune(db, "--max-files", 2, "--user", USER)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[1:] == [
        "/memories/b.md  over max_files  1 B",
        "/memories/c.md  over max_files  1 B",
    ]
    with SQLiteStore(db) as store:
        assert keys(store) == ["/a.md", "/d.md"]


def test_max_bytes_evicts_the_oldest_until_the_rest_fits(db):
    with SQLiteStore(db) as store:
        write_at(store, 3, {"/big.md": "x" * 600})
        write_at(store, 2, {"/mid.md": "x" * 300})
        write_at(store, 1, {"/small.md": "x" * 100})
    result = prune(db, "--max-bytes", 500, "--user", USER, "--json")
    (report,) = json.loads(result.stdout)
    assert [(r["key"], r["reason"]) for r in report["removed"]] == [("/big.md", "over max_bytes")]
    assert (report["kept_files"], report["kept_bytes"]) == (2, 400)


def test_the_config_files_settings_are_used_and_options_override_them(old_and_new, config):
    config.write_text("ttl_days = 200\nmax_files = 1\n")
    by_config = prune(old_and_new, "--dry-run", "--user", USER)
    assert by_config.stdout.splitlines()[1:] == [
        "/memories/old.md  over max_files  10 B",
        "/memories/projects/older.md  over max_files  6 B",
    ]
    by_options = prune(old_and_new, "--dry-run", "--user", USER, "--ttl-days", 30.5)
    assert [line.split("  ")[1] for line in by_options.stdout.splitlines()[1:]] == [
        "expired",
        "expired",
    ]
    nothing = prune(old_and_new, "--user", USER, "--max-files", 5)  # ttl 200 days from config
    assert nothing.stdout == ("memories/alice: removed 0 files, 0 B; 3 files, 20 B left\n")
    with SQLiteStore(old_and_new) as store:
        assert len(keys(store)) == 3


def test_the_environment_variables_set_the_policy_below_the_options(old_and_new, monkeypatch):
    monkeypatch.setenv("DEEPMEMORY_MAX_FILES", "1")
    by_env = prune(old_and_new, "--dry-run", "--user", USER)
    assert "would remove 2 files (2 over max_files)" in by_env.stdout
    by_option = prune(old_and_new, "--dry-run", "--user", USER, "--max-files", 3)
    assert "would remove 0 files" in by_option.stdout


def test_prune_without_a_policy_is_one_line_naming_the_options_and_keys_with_exit_code_2(
    old_and_new, config
):
    result = deepmemory("memory", "prune", "--db", old_and_new)  # a real process
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    for name in ("--ttl-days", "--max-files", "--max-bytes", "ttl_days", "max_files"):
        assert name in line
    assert str(config) in line
    with SQLiteStore(old_and_new) as store:
        assert len(keys(store)) == 3


@pytest.mark.parametrize(
    ("setting", "why"),
    [
        ("ttl_days = 0", "'ttl_days' in '{path}' must be a number of days > 0"),
        ("ttl_days = -3", "'ttl_days' in '{path}' must be a number of days > 0"),
        ('ttl_days = "30"', "'ttl_days' in '{path}' must be a number of days > 0"),
        ("ttl_days = inf", "'ttl_days' in '{path}' must be a number of days > 0"),
        ("ttl_days = true", "'ttl_days' in '{path}' must be a number of days > 0"),
        ("max_files = 1.5", "'max_files' in '{path}' must be a whole number >= 0"),
        ("max_bytes = -1", "'max_bytes' in '{path}' must be a whole number >= 0"),
        ("user = 3", "'user' in '{path}' must be a string"),
    ],
)
def test_a_bad_prune_setting_in_the_config_file_is_one_line_naming_file_and_key(
    db, config, setting, why
):
    config.write_text(setting + "\n")
    for command in (["memory", "prune"], ["memory", "ls"]):
        result = invoke(*command, "--db", db)
        assert result.exit_code == 2
        assert why.format(path=config) in one_error_line(result.stderr)


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["--ttl-days", "0"], "--ttl-days (or DEEPMEMORY_TTL_DAYS) must be a number of days > 0"),
        (["--max-files", "-1"], "--max-files (or DEEPMEMORY_MAX_FILES) must be a whole number"),
    ],
)
def test_a_bad_prune_option_is_one_line_with_exit_code_2(db, args, why):
    result = prune(db, *args)
    assert result.exit_code == 2
    assert why in one_error_line(result.stderr)


def test_a_bad_prune_variable_is_one_line_naming_it_for_every_command(db, monkeypatch):
    monkeypatch.setenv("DEEPMEMORY_MAX_BYTES", "lots")
    result = invoke("memory", "ls", "--db", db)
    assert result.exit_code == 2
    assert one_error_line(result.stderr) == (
        "error: DEEPMEMORY_MAX_BYTES must be a whole number >= 0, not 'lots'."
    )


def test_with_ttl_days_in_the_config_expired_files_are_gone_from_ls_cat_and_grep(
    old_and_new, config
):
    def mem(*args: object):
        return invoke("memory", *args, "--db", old_and_new, "--user", USER)

    assert (
        mem("ls").stdout == "/memories/new.md (4 B)\n/memories/old.md (10 B)\n/memories/projects/\n"
    )
    config.write_text("ttl_days = 30\n")
    assert mem("ls").stdout == "/memories/new.md (4 B)\n"
    assert mem("cat", "old.md").exit_code == 1
    assert mem("grep", "old").stdout == "No matches for 'old'.\n"
    with SQLiteStore(old_and_new) as store:
        assert len(keys(store)) == 3  # hidden, not deleted


def test_the_agent_does_not_see_expired_files_either(old_and_new):
    settings = Settings(
        db=str(old_and_new),
        user=USER,
        model=None,
        base_url=None,
        policy=PrunePolicy(ttl=timedelta(days=30)),
    )
    with SQLiteStore(old_and_new) as store:
        files = agent_backend(store, settings)
        assert [e.path for e in files.ls("/memories/").entries] == ["/memories/new.md"]
        assert files.read("/memories/old.md").error is not None


def test_json_gives_each_users_report(old_and_new):
    result = prune(old_and_new, "--ttl-days", 30, "--dry-run", "--json")
    assert result.exit_code == 0, result.stderr
    alice, bob = json.loads(result.stdout)
    assert set(alice) >= {"namespace", "dry_run", "removed", "kept_files", "kept_bytes"}
    assert (alice["namespace"], alice["dry_run"]) == (["memories", "alice"], True)
    assert (alice["kept_files"], alice["kept_bytes"]) == (1, 4)
    first = alice["removed"][0]
    assert {k: first[k] for k in ("path", "key", "size", "reason")} == {
        "path": "/memories/old.md",
        "key": "/old.md",
        "size": 10,
        "reason": "expired",
    }
    assert first["last_used"] < (now() - timedelta(days=99)).isoformat()
    assert [r["path"] for r in bob["removed"]] == ["/memories/stale.txt"]


def test_prune_of_an_empty_database_says_so(db):
    result = prune(db, "--ttl-days", 30)
    assert (result.exit_code, result.stdout) == (0, "")
    assert "No memory to prune" in result.stderr
    assert json.loads(prune(db, "--ttl-days", 30, "--json").stdout) == []


def test_a_pruned_file_can_be_restored_from_its_history(old_and_new):
    assert prune(old_and_new, "--ttl-days", 30, "--user", USER).exit_code == 0
    mem = ["--db", old_and_new, "--user", USER]
    history = invoke("memory", "history", "old.md", *mem, "--json")
    assert [r["op"] for r in json.loads(history.stdout)] == ["write", "delete"]
    assert invoke("memory", "restore", "old.md", 1, *mem).exit_code == 0
    assert invoke("memory", "cat", "old.md", *mem).stdout == "old notes\n"


def test_prune_on_postgresql_deletes_only_the_expired_files_of_the_user(home):
    url = postgres_url()
    user = f"prune-{uuid.uuid4().hex[:12]}"
    with PostgresStore(connection_string=url) as store:
        write_at(store, 100, {"/old.md": "old"}, user=user)
        write_at(store, 0, {"/new.md": "new"}, user=user)
    try:
        result = prune(url, "--ttl-days", 30, "--user", user)
        assert result.exit_code == 0, result.stderr
        assert result.stdout.splitlines()[1:] == ["/memories/old.md  expired  3 B"]
        with PostgresStore(connection_string=url) as store:
            assert keys(store, user) == ["/new.md"]
    finally:
        with PostgresStore(connection_string=url) as store:
            for key in keys(store, user):
                store.delete(("memories", user), key)


# -- chat sweeps while it runs --------------------------------------------------------


class RecordingSweeper(Sweeper):
    """A real Sweeper whose start waits for its first sweep, so the test can see it."""

    made: list[RecordingSweeper] = []

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.made.append(self)

    def start(self):
        started = super().start()
        deadline = time.monotonic() + 30
        while not self.last_reports and time.monotonic() < deadline:
            time.sleep(0.01)
        return started


@pytest.fixture
def sweepers(monkeypatch) -> Iterator[list[RecordingSweeper]]:
    made: list[RecordingSweeper] = []
    monkeypatch.setattr(RecordingSweeper, "made", made)
    monkeypatch.setattr("deepmemory.pruning.Sweeper", RecordingSweeper)
    yield made


def test_chat_prunes_the_users_memory_in_the_background_and_stops_on_exit(
    model_env, old_and_new, config, sweepers
):
    config.write_text("ttl_days = 30\n")
    result = invoke("chat", "--db", old_and_new, "--user", USER, input="Hi\n/exit\n")
    assert result.exit_code == 0, result.stderr
    assert "Hello! Hi" in result.stdout
    (sweeper,) = sweepers
    assert sweeper.namespaces == [("memories", USER)]
    assert sweeper.policy == PrunePolicy(ttl=timedelta(days=30))
    assert sweeper.every == chat_module.SWEEP_EVERY
    assert not sweeper.running  # stopped when the chat ended
    assert sweeper.last_error is None
    with SQLiteStore(old_and_new) as store:
        assert keys(store) == ["/new.md"]
        assert keys(store, "bob") == ["/stale.txt"]  # only the user of the chat


def test_chat_without_a_policy_starts_no_sweeper(model_env, db, sweepers):
    result = invoke("chat", "--db", db, "--user", USER, input="/exit\n")
    assert result.exit_code == 0, result.stderr
    assert sweepers == []
