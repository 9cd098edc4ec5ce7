"""``deepmemory threads``: the conversations kept in the database.

Thread state lives in the store's checkpointer (``store.checkpointer()``, the same
database as the memories). ``checkpointer.list(None)`` yields the checkpoints of every
thread; a thread's newest top-level checkpoint (``checkpoint_ns == ""``; subagents
write their own namespaces) holds its messages. This reads every checkpoint once,
which is fine for the conversations of a person, not for a server's millions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from deepmemory.cli._config import DbOption, JsonOption, resolve
from deepmemory.cli._store import open_store
from deepmemory.cli._terminal import console, fail, is_tty, print_json, reports_errors, styled
from deepmemory.cli._transcript import (
    first_human_text,
    last_text,
    message_record,
    shorten,
    tool_call_line,
)

if TYPE_CHECKING:  # imported where used: `deepmemory --help` must not load LangChain
    from langchain_core.messages import BaseMessage
    from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple

threads_app = typer.Typer(name="threads", no_args_is_help=True)


@threads_app.callback()
def _threads_group() -> None:
    """The conversations kept in the database, with their messages.

    Example:
        deepmemory threads ls --json
    """


ThreadArgument = Annotated[
    str, typer.Argument(help="Thread id (from `deepmemory threads ls`).", show_default=False)
]


@dataclass(frozen=True, slots=True)
class ThreadSummary:
    """One conversation, as ``threads ls`` lists it."""

    thread_id: str
    updated_at: str
    user: str | None
    messages: int
    first_message: str
    last_message: str


def _messages(checkpoint: CheckpointTuple) -> list[BaseMessage]:
    values = checkpoint.checkpoint.get("channel_values") or {}
    return list(values.get("messages") or [])


def latest_checkpoints(checkpointer: BaseCheckpointSaver[Any]) -> list[CheckpointTuple]:
    """Each thread's newest top-level checkpoint, the most recently updated thread first."""
    latest: dict[str, CheckpointTuple] = {}
    for item in checkpointer.list(None):
        configurable = item.config.get("configurable") or {}
        if configurable.get("checkpoint_ns", ""):
            continue
        thread_id = str(configurable.get("thread_id"))
        seen = latest.get(thread_id)
        # Checkpoint ids are time-ordered (uuid6), so the largest is the newest.
        if seen is None or item.checkpoint["id"] > seen.checkpoint["id"]:
            latest[thread_id] = item
    return sorted(latest.values(), key=lambda t: t.checkpoint["ts"], reverse=True)


def summarize(checkpoint: CheckpointTuple) -> ThreadSummary:
    """The summary of one thread from its newest checkpoint."""
    messages = _messages(checkpoint)
    user = (checkpoint.metadata or {}).get("user")
    return ThreadSummary(
        thread_id=str(checkpoint.config["configurable"]["thread_id"]),
        updated_at=checkpoint.checkpoint["ts"],
        user=user if isinstance(user, str) else None,
        messages=len(messages),
        first_message=first_human_text(messages),
        last_message=last_text(messages),
    )


def _checkpoint(checkpointer: BaseCheckpointSaver[Any], thread_id: str) -> CheckpointTuple | None:
    return checkpointer.get_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}})


def find_thread(checkpointer: BaseCheckpointSaver[Any], given: str) -> str | None:
    """The thread ``given`` names: its id, or a prefix only one thread's id starts with.

    ``None`` if no thread has it. Fails (one line) when a prefix fits several threads.
    """
    if _checkpoint(checkpointer, given) is not None:
        return given
    ids = {
        str((t.config.get("configurable") or {}).get("thread_id")) for t in checkpointer.list(None)
    }
    fits = sorted(i for i in ids if i.startswith(given))
    if len(fits) > 1:
        shown = ", ".join(fits[:3]) + (", ..." if len(fits) > 3 else "")
        fail(f"{len(fits)} threads start with {given!r} ({shown}); give more of the id.")
    return fits[0] if fits else None


def _find(checkpointer: BaseCheckpointSaver[Any], given: str) -> CheckpointTuple:
    thread_id = find_thread(checkpointer, given)
    found = None if thread_id is None else _checkpoint(checkpointer, thread_id)
    if found is None:
        fail(f"No conversation has thread id {given!r}; `deepmemory threads ls` lists them.")
    return found


@threads_app.command("ls")
@reports_errors
def ls(
    db: DbOption = None,
    json_output: JsonOption = False,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="Show at most this many, newest first.")
    ] = 50,
    user: Annotated[
        str | None, typer.Option("--user", "-u", help="Only this user's conversations.")
    ] = None,
) -> None:
    """List conversations, most recent first, with their first and last messages.

    Example:
        deepmemory threads ls --limit 10
    """
    settings = resolve(db=db, user=None)
    with open_store(settings.db) as store:
        every = [summarize(t) for t in latest_checkpoints(store.checkpointer())]
    summaries = [s for s in every if user is None or s.user == user][:limit]
    if json_output:
        print_json([asdict(s) for s in summaries])
        return
    if not summaries:
        typer.echo("No conversations yet: start one with `deepmemory chat`.")
        return
    if is_tty(typer.get_text_stream("stdout")):
        from rich.table import Column, Table

        # The whole id, never cut: it is what --thread and `threads show` take.
        thread = Column("thread", no_wrap=True, min_width=36)
        table = Table(thread, "updated (UTC)", "user", "messages", "started with", "last")
        for s in summaries:
            table.add_row(
                s.thread_id,
                s.updated_at[:16].replace("T", " "),
                s.user or "",
                str(s.messages),
                shorten(s.first_message, 40),
                shorten(s.last_message, 40),
            )
        console().print(table)
        return
    for s in summaries:
        typer.echo(
            f"{s.thread_id}\t{s.updated_at}\t{s.user or '-'}\t{s.messages}\t"
            f"{shorten(s.first_message, 60)}"
        )


def _show_message(message: BaseMessage) -> None:
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

    if isinstance(message, HumanMessage):
        styled(typer.style("you> ", fg="cyan", bold=True) + message.text)
    elif isinstance(message, AIMessage):
        if message.text:
            typer.echo(message.text)
        for call in message.tool_calls:
            styled(typer.style("  " + tool_call_line(call["name"], call["args"]), dim=True))
    elif isinstance(message, ToolMessage):
        first = message.text.splitlines()[0] if message.text else ""
        styled(typer.style(f"    ← {shorten(first, 90)}", dim=True))


@threads_app.command("show")
@reports_errors
def show(
    thread_id: ThreadArgument,
    db: DbOption = None,
    json_output: JsonOption = False,
    last: Annotated[
        int | None, typer.Option("--last", "-n", min=1, help="Only the last N messages.")
    ] = None,
) -> None:
    """Print a conversation's messages, tool calls included.

    Example:
        deepmemory threads show 0b6c1e0e-4c1f-4a57-9d7e-3f6f2f1b9a10 --last 6
    """
    settings = resolve(db=db, user=None)
    with open_store(settings.db) as store:
        summary_source = _find(store.checkpointer(), thread_id)
    messages = _messages(summary_source)[-last:] if last else _messages(summary_source)
    if json_output:
        record = asdict(summarize(summary_source))
        record["messages"] = [message_record(m) for m in messages]
        print_json(record)
        return
    for message in messages:
        _show_message(message)


@threads_app.command("rm")
@reports_errors
def rm(thread_id: ThreadArgument, db: DbOption = None) -> None:
    """Delete a conversation's saved state (memories are kept).

    Example:
        deepmemory threads rm 0b6c1e0e-4c1f-4a57-9d7e-3f6f2f1b9a10
    """
    settings = resolve(db=db, user=None)
    with open_store(settings.db) as store:
        checkpointer = store.checkpointer()
        found = str(_find(checkpointer, thread_id).config["configurable"]["thread_id"])
        checkpointer.delete_thread(found)
    typer.echo(f"Deleted thread {found}.")
