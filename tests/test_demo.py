"""The README's main job: `deepmemory demo` runs offline and shows cross-thread memory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import closed_port


def test_the_demo_runs_offline_labels_the_script_and_shows_memory_crossing_threads(
    tmp_path: Path,
):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DEEPMEMORY_MODEL", "OPENAI_API_KEY", "ANTHROPIC_API_KEY")
    }
    env["COLUMNS"] = "200"
    db = tmp_path / "memory.db"
    bin_dir = Path(sys.executable).parent
    out = subprocess.run(
        [str(bin_dir / "deepmemory"), "demo", "--db", str(db)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "SCRIPTED model" in out
    assert "Error: '/draft.txt' not found" in out  # thread 2 cannot see thread 1's draft
    assert "2 - Metric units" in out  # ...but reads the preferences thread 1 saved
    assert "/memories/preferences.txt" in out


def test_the_cli_has_help_on_every_command():
    bin_dir = Path(sys.executable).parent
    out = subprocess.run(
        [str(bin_dir / "deepmemory"), "demo", "-h"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "Example" in out and "--db" in out


def test_with_a_model_configured_the_demo_talks_to_it_over_http(tmp_path: Path):
    from tests.fakes.openai_server import FakeOpenAIServer, last_user_text, tool_results_since_user

    def policy(messages, tools):
        results = tool_results_since_user(messages)
        if results:
            return "Noted. " + " | ".join(results)
        if "Save my preferences" in last_user_text(messages):
            return [
                (
                    "write_file",
                    {
                        "file_path": "/memories/preferences.txt",
                        "content": "- Real model was here\n",
                    },
                )
            ]
        return [("read_file", {"file_path": "/memories/preferences.txt"})]

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "ANTHROPIC"))}
    with FakeOpenAIServer(policy, api_key="k") as server:
        env.update(
            OPENAI_API_KEY="k",
            OPENAI_BASE_URL=server.base_url,
            DEEPMEMORY_MODEL="openai:gpt-4.1",
            COLUMNS="200",
        )
        bin_dir = Path(sys.executable).parent
        out = subprocess.run(
            [str(bin_dir / "deepmemory"), "demo", "--db", str(tmp_path / "m.db")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
        assert len(server.chat_requests) == 4
    assert "SCRIPTED" not in out and "Model: openai:gpt-4.1" in out
    assert "Real model was here" in out


def _run_demo(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    bin_dir = Path(sys.executable).parent
    return subprocess.run(
        [str(bin_dir / "deepmemory"), "demo", "--db", str(tmp_path / "m.db"), *args],
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _clean_env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI", "ANTHROPIC", "DEEPMEMORY_MODEL"))
    }


def test_an_api_key_in_the_shell_does_not_make_the_demo_go_live(tmp_path: Path):
    env = {
        **_clean_env(),
        "OPENAI_API_KEY": "sk-never-used",
        "OPENAI_BASE_URL": "http://127.0.0.1:9",
    }
    result = _run_demo(tmp_path, env)
    assert result.returncode == 0, result.stderr
    assert "SCRIPTED model" in result.stdout
    assert "deepmemory demo --live" in result.stdout and "openai:gpt-4.1" in result.stdout
    assert "1 file in long-term memory" in result.stdout


def test_a_live_model_that_cannot_be_reached_is_one_line(tmp_path: Path):

    port = closed_port()
    env = {**_clean_env(), "OPENAI_API_KEY": "k", "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1"}
    result = _run_demo(tmp_path, env, "--live")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_live_without_any_model_says_what_to_set(tmp_path: Path):
    result = _run_demo(tmp_path, _clean_env(), "--live")
    assert result.returncode == 2
    assert (
        result.stderr.startswith("error: --live needs a model")
        and "DEEPMEMORY_MODEL" in result.stderr
    )


def test_the_summary_says_what_a_live_model_actually_stored(tmp_path: Path):
    from tests.fakes.openai_server import FakeOpenAIServer

    with FakeOpenAIServer(lambda messages, tools: "I will remember that.", api_key="k") as server:
        env = {**_clean_env(), "OPENAI_API_KEY": "k", "OPENAI_BASE_URL": server.base_url}
        result = _run_demo(tmp_path, env, "--live")
    assert result.returncode == 0, result.stderr
    assert "Nothing was saved to /memories/" in result.stdout
    assert "readable from any thread" not in result.stdout
