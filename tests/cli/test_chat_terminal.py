"""``deepmemory chat`` in a real pseudo-terminal, as a person uses it.

pexpect runs the installed command on a pty (so stdin and stdout are terminals:
colour, line editing, Ctrl-C as a signal) against the fake model server over HTTP.
"""

from __future__ import annotations

import io
import os
import re
import time

import pexpect

from tests.cli.conftest import ASK, DEEPMEMORY, RECALL, SAVE, SAVED, STORY
from tests.fakes.openai_server import FakeOpenAIServer, text_of

PROMPT = "you>"
COLOUR = re.compile(r"\x1b\[[0-9;]*m")
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def spawn(*args: object, **env: str) -> pexpect.spawn:
    return pexpect.spawn(
        str(DEEPMEMORY),
        list(map(str, args)),
        env=dict(os.environ, TERM="xterm", **env),
        encoding="utf-8",
        timeout=60,
        dimensions=(50, 200),
    )


def spawn_chat(*args: object, **env: str) -> pexpect.spawn:
    return spawn("chat", *args, **env)


def finish(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


def test_chat_streams_two_turns_survives_ctrl_c_in_a_slow_reply_and_resumes_after_restart(
    model_env: FakeOpenAIServer, db
):
    model_env.chunk_delay_s = 0.02  # the story takes seconds to stream: time to interrupt it
    child = spawn_chat("--db", db)
    child.expect(f"New thread ({UUID})")
    thread_id = child.match.group(1)
    child.expect_exact(PROMPT)

    child.sendline(SAVE)
    child.expect_exact("→ write_file /memories/preferences.txt")
    child.expect_exact(SAVED)
    child.expect_exact(PROMPT)

    child.sendline(STORY)
    child.expect_exact("upon a time upon a time")  # the reply is arriving token by token
    interrupted_at = time.monotonic()
    child.sendintr()
    child.expect_exact("[interrupted]")
    assert time.monotonic() - interrupted_at < 5
    assert "The end." not in child.before  # the story was cut short

    child.expect_exact(PROMPT)  # the session goes on
    child.sendline(ASK)
    child.expect_exact("→ read_file /memories/preferences.txt")
    child.expect_exact(RECALL)
    child.expect_exact("Prefers metric units")
    child.expect_exact(PROMPT)
    # The interrupted reply stayed in the thread, marked: the model saw it cut short.
    sent = model_env.chat_requests[-1].messages
    kept = [text_of(m) for m in sent if m["role"] == "assistant" and "upon a time" in text_of(m)]
    assert len(kept) == 1 and kept[0].endswith("[interrupted by the user]"), kept
    assert "The end." not in kept[0]
    child.sendeof()
    assert finish(child) == 0

    child = spawn_chat("--db", db, "--thread", thread_id)
    child.expect_exact(f"Resuming thread {thread_id}")
    child.expect_exact(PROMPT)
    child.sendline("Hello again")
    child.expect_exact("Hello! Hello again")
    child.expect_exact(PROMPT)
    sent = model_env.chat_requests[-1].messages
    assert [text_of(m) for m in sent if m["role"] == "user"] == [SAVE, STORY, ASK, "Hello again"]

    child.sendintr()  # at the prompt: a first Ctrl-C only explains ...
    child.expect_exact("Ctrl-C again")
    child.sendintr()  # ... a second one quits
    assert finish(child) == 0


def test_chat_says_it_is_waiting_until_the_models_first_token_then_erases_that(model_env, db):
    model_env.first_token_delay_s = 1.5
    child = spawn_chat("--db", db)
    child.expect_exact(PROMPT)
    child.sendline("Hi")
    child.expect_exact("(waiting for the model…)")
    child.expect_exact("Hello! Hi")
    assert "\r\x1b[K" in child.before, [child.before]  # the line is erased for the reply
    child.sendline("/exit")
    assert finish(child) == 0


def test_chat_quits_on_slash_exit_and_prints_its_thread_to_resume(model_env, db):
    child = spawn_chat("--db", db)
    child.expect(f"resume it with: deepmemory chat --thread {UUID}")
    child.expect_exact(PROMPT)
    child.sendline("/thread")
    child.expect(f"Thread {UUID}")
    child.sendline("/exit")
    assert finish(child) == 0
    assert model_env.chat_requests == []


def test_a_terminal_gets_colour_unless_no_color_is_set(model_env, db):
    shown = {}
    for name, env in [("coloured", {}), ("plain", {"NO_COLOR": "1"})]:
        child = spawn_chat("--db", db, **env)
        child.logfile_read = io.StringIO()
        child.expect_exact(PROMPT)
        child.sendline("Hi")
        child.expect_exact("Hello! Hi")
        child.sendline("/exit")
        assert finish(child) == 0
        shown[name] = child.logfile_read.getvalue()
    assert COLOUR.search(shown["coloured"])
    assert not COLOUR.search(shown["plain"])
    assert "Hello! Hi" in shown["plain"]


def test_ctrl_c_during_run_stops_it_with_exit_code_130(model_env, db):
    model_env.chunk_delay_s = 0.02
    child = spawn("run", STORY, "--db", db)
    child.expect_exact("upon a time upon a time")
    child.sendintr()
    child.expect_exact("Interrupted.")
    assert finish(child) == 130
    assert "The end." not in child.before
