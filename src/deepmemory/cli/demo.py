"""``deepmemory demo``: the seed's cross-thread scenario, run for real on SQLite.

Thread 1 saves the user's preferences to ``/memories/preferences.txt`` (long-term
memory, in the SQLite store) and a draft to ``/draft.txt`` (thread state). Thread 2, a
different conversation, reads the preferences back and cannot see the draft. With no
model configured, a scripted model replays the tool calls a real model would make,
and the screen says so.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from rich.console import Console

from deepmemory.agent import DEFAULT_MODELS, create_deep_agent
from deepmemory.backends import CompositeBackend, StateBackend, StoreBackend
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


def _model(console: Console) -> Any:
    configured = os.environ.get("DEEPMEMORY_MODEL") or next(
        (m for key, m in DEFAULT_MODELS.items() if os.environ.get(key)), None
    )
    if configured:
        console.print(f"[bold]Model:[/] {configured}")
        return None  # create_deep_agent picks it up from the environment
    console.print(
        "[bold yellow]No model configured (DEEPMEMORY_MODEL, ANTHROPIC_API_KEY or "
        "OPENAI_API_KEY): replaying a SCRIPTED model.[/] The tool calls below are "
        "scripted; the files, stores and threads are real."
    )
    return ScriptedChatModel(replies=_scripted_reply)


def _store(db: Path) -> Any:
    try:
        from deepmemory.stores import SQLiteStore
    except ImportError:  # before the SQLite store existed
        from langgraph.store.memory import InMemoryStore

        return InMemoryStore(), "in-memory store"
    return SQLiteStore(db), f"SQLite database {db}"


def demo(
    db: Annotated[
        Path | None,
        typer.Option(
            help="SQLite file for memory and threads (default: a new temporary one).",
            envvar="DEEPMEMORY_DB",
        ),
    ] = None,
) -> None:
    """Run the seed's cross-thread memory scenario offline and show what happens.

    Example:
        deepmemory demo --db ./memory.db
    """
    console = Console()
    db = db or Path(tempfile.mkdtemp(prefix="deepmemory-demo-")) / "memory.db"
    model = _model(console)
    store, where = _store(db)
    console.print(f"[bold]Long-term memory:[/] {where}\n")
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
    console.print("\nThe draft stayed in thread 1; the preferences reached thread 2.")
    console.print(
        "[dim]Recall by meaning (the semantic_search tool, `deepmemory memory search`) needs "
        "an embedding model: set embed and embed_dims in the config file (README, "
        '"Recall by meaning"); grep finds exact words without one.[/]'
    )
