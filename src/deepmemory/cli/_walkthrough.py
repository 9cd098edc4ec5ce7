"""The walkthrough ``deepmemory demo`` runs: two threads, one memory, on SQLite.

Thread 1 saves the user's preferences to ``/memories/preferences.txt`` (long-term
memory, in the SQLite store) and a draft to ``/draft.txt`` (thread state). Thread 2, a
different conversation, reads the preferences back and cannot see the draft. With no
model chosen, a scripted model replays the tool calls a real model would make, and
the screen says so. Imported only when the command runs (it loads the agent stack).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from rich.console import Console

from deepmemory.agent import DEFAULT_MODELS, create_deep_agent
from deepmemory.backends import CompositeBackend, StateBackend, StoreBackend
from deepmemory.cli._terminal import EXIT_FAILED, EXIT_USAGE, CommandError, plural
from deepmemory.stores import SQLiteStore
from deepmemory.testing.scripted import ScriptedChatModel, calls, tool_call

TURNS = [
    (
        "thread 1",
        "I prefer concise answers and metric units. Save my preferences to "
        "/memories/preferences.txt, and put a draft plan for today in /draft.txt.",
    ),
    ("thread 2", "What are my preferences? Also, is there a draft from before?"),
]


def _scripted_reply(messages: list[BaseMessage]) -> AIMessage:
    """What a good model does with each demo turn (used when no model is configured)."""
    last = messages[-1]
    human = next(m for m in reversed(messages) if isinstance(m, HumanMessage)).text
    if isinstance(last, ToolMessage):
        results = []
        for m in reversed(messages):
            if isinstance(m, HumanMessage):
                break
            if isinstance(m, ToolMessage):
                results.append(m.text)
        if "Save my preferences" in human:
            return AIMessage(
                "Saved your preferences to long-term memory and the draft to this "
                "conversation's scratch space."
            )
        prefs = results[0].replace("\t", " ")  # the newest result: the preferences file
        return AIMessage(
            f"From long-term memory:\n{prefs}\nThe draft from the other "
            "conversation is not here: /draft.txt lived only in that thread."
        )
    if "Save my preferences" in human:
        return calls(
            tool_call(
                "write_file",
                file_path="/memories/preferences.txt",
                content="- Concise answers\n- Metric units\n",
            ),
            tool_call("write_file", file_path="/draft.txt", content="Plan: review notes\n"),
        )
    return calls(
        tool_call("ls", path="/"),
        tool_call("read_file", file_path="/draft.txt"),
        tool_call("read_file", file_path="/memories/preferences.txt"),
    )


def _model(console: Console, live: bool) -> Any:
    """The scripted model, unless a live one is asked for (``--live`` or DEEPMEMORY_MODEL).

    An API key in the shell alone never makes the demo go to the network.
    """
    from_key = next((m for key, m in DEFAULT_MODELS.items() if os.environ.get(key)), None)
    configured = os.environ.get("DEEPMEMORY_MODEL") or (from_key if live else None)
    if configured:
        console.print(f"[bold]Model:[/] {configured} (live)")
        return init_chat_model_from(configured)
    if live:
        raise CommandError(
            "--live needs a model: set DEEPMEMORY_MODEL (e.g. openai:gpt-4.1, "
            "anthropic:claude-sonnet-4-5, ollama:llama3.1) or an API key "
            "(OPENAI_API_KEY, ANTHROPIC_API_KEY).",
            EXIT_USAGE,
        )
    hint = f" (for a live model: deepmemory demo --live, which would use {from_key})"
    console.print(
        "[bold yellow]Replaying a SCRIPTED model[/]"
        + (hint if from_key else " (for a live model: set DEEPMEMORY_MODEL and use --live)")
        + ". The tool calls below are scripted; the files, stores and threads are real."
    )
    return ScriptedChatModel(replies=_scripted_reply)


def init_chat_model_from(name: str) -> Any:
    """A LangChain chat model from ``provider:model`` (its package must be installed)."""
    from langchain.chat_models import init_chat_model

    try:
        return init_chat_model(name)
    except ImportError as exc:
        raise CommandError(
            f"The model {name!r} needs its provider's package: {exc}", EXIT_FAILED
        ) from None
    except ValueError as exc:
        raise CommandError(f"Cannot use the model {name!r}: {exc}", EXIT_USAGE) from None


def run(live: bool, db: Path | None) -> None:
    """Run the walkthrough (on a new temporary database unless ``db`` is given)."""
    console = Console()
    db = db or Path(tempfile.mkdtemp(prefix="deepmemory-demo-")) / "memory.db"
    model = _model(console, live)
    store = SQLiteStore(db)
    console.print(f"[bold]Long-term memory:[/] SQLite database {db}\n")
    agent = create_deep_agent(
        model=model,
        store=store,
        backend=lambda rt: CompositeBackend(
            default=StateBackend(rt), routes={"/memories/": StoreBackend(rt)}
        ),
        system_prompt="Save user preferences to /memories/preferences.txt.",
    )
    threads = {name: str(uuid.uuid4()) for name, _ in TURNS}
    for name, text in TURNS:
        console.rule(f"{name} (thread_id {threads[name][:8]}…)")
        console.print(f"[bold cyan]user:[/] {text}")
        result = agent.invoke(
            {"messages": [{"role": "user", "content": text}]},
            config={"configurable": {"thread_id": threads[name]}},
        )
        for message in result["messages"]:
            if isinstance(message, AIMessage):
                for call in message.tool_calls:
                    args = ", ".join(f"{k}={v!r}"[:60] for k, v in call["args"].items())
                    console.print(f"  [dim]→ {call['name']}({args})[/]")
            elif isinstance(message, ToolMessage):
                first = message.text.splitlines()[0] if message.text else ""
                console.print(f"  [dim]  ← {first[:90]}[/]", highlight=False)
        console.print(f"[bold green]agent:[/] {result['messages'][-1].text}\n")
    console.rule("what is stored")
    memories = StoreBackend(store=store).ls("/")
    for entry in memories.entries:
        console.print(f"  /memories{entry.path}  ({entry.size} bytes)")
    if memories.entries:
        console.print(
            f"\n{plural(len(memories.entries), 'file')} in long-term memory, readable from "
            "any thread; the draft stayed in thread 1."
        )
    else:
        console.print(
            "\nNothing was saved to /memories/: the model wrote no file there, so thread 2 "
            "had nothing to remember."
        )
    console.print(
        "[dim]Recall by meaning (the semantic_search tool, `deepmemory memory search`) needs "
        "an embedding model: set embed and embed_dims in the config file (README, "
        '"Recall by meaning"); grep finds exact words without one.[/]'
    )
