"""``deepmemory chat`` and ``deepmemory run``: talk to a deep agent with long-term memory.

The agent's ``/memories/`` is the user's namespace in the store (``_store``), and its
threads are kept by the store's checkpointer in the same database, so a conversation
resumes after a restart (``--thread``) and memories reach every later conversation.

A turn runs on ``agent.astream(..., stream_mode=["messages", "updates"])`` on the
process's one ``asyncio.Runner`` (:func:`event_loop`): "messages" gives the reply token by token, "updates"
the finished model messages and so the tool calls. On a terminal, ``chat`` says it is
waiting for the model until the model's first output. Ctrl-C makes the runner cancel
the turn's task, which closes the HTTP stream at once; the reply streamed so far is
kept in the thread, marked as interrupted (:func:`keep_interrupted`), and the agent's
``UnansweredToolCallsMiddleware`` answers the tool calls left open when the next turn
starts, so the thread stays valid.

When the user's prune policy is set (``ttl_days``, ``max_files``, ``max_bytes``), a
``chat`` session runs a :class:`~deepmemory.pruning.Sweeper` on the user's memory: at
start, then every ``SWEEP_EVERY``, stopped on exit. ``run`` (one turn) starts none:
expired files are hidden from it anyway, and ``deepmemory memory prune`` deletes them.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from deepmemory.cli._config import (
    BaseUrlOption,
    DbOption,
    JsonOption,
    ModelOption,
    Settings,
    ThreadOption,
    UserOption,
    chat_model,
    model_name,
    resolve,
)
from deepmemory.cli._store import Store, agent_backend, open_store, shown_db
from deepmemory.cli._terminal import (
    colour,
    describe,
    is_tty,
    note,
    plural,
    print_json,
    report,
    reports_errors,
    styled,
)
from deepmemory.cli._transcript import last_text, shorten, tool_call_line
from deepmemory.cli.threads import find_thread

if TYPE_CHECKING:  # the agent stack is imported when a turn runs, not at start-up
    from langchain_core.language_models import BaseChatModel
    from langchain_core.runnables import RunnableConfig

    from deepmemory.agent import DeepAgent
    from deepmemory.pruning import Sweeper

SYSTEM_PROMPT = "You are talking with the user {user!r} in a terminal. Answer in plain text."
HELP = "Commands: /thread (show its id), /exit (or Ctrl-D). Ctrl-C interrupts a reply."
EXIT_COMMANDS = ("/exit", "/quit", "/q")
WAITING = "(waiting for the model…)"
ERASE_LINE = "\r\x1b[K"
INTERRUPTED = "[interrupted by the user]"
SWEEP_EVERY = timedelta(minutes=10)


@dataclass
class TurnResult:
    """What one turn produced: the final reply and every tool call, in order."""

    reply: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    unfinished: str = ""  # the model's reply streamed so far, until the model finishes it


class Printer:
    """Shows a turn as it streams: reply text on one stream, tool calls as dim lines.

    Args:
        tools_to_stderr: print tool-call lines on stderr (``run``: stdout is the reply).
        quiet: print nothing (``run --json``).
    """

    def __init__(
        self, *, tools_to_stderr: bool = False, quiet: bool = False, waiting: bool = False
    ) -> None:
        self.tools_to_stderr = tools_to_stderr
        self.quiet = quiet
        self.show_waiting = waiting and not quiet
        self.waiting_shown = False  # WAITING is on the screen, to be erased
        self.mid_line = False  # the reply's last piece did not end its line

    def waiting(self) -> None:
        """Say that the model is being waited for, until its next output (``chat`` only)."""
        if self.show_waiting and not self.waiting_shown and not self.mid_line:
            typer.echo(typer.style(WAITING, dim=True), nl=False, color=colour())
            self.waiting_shown = True

    def text(self, piece: str) -> None:
        """One piece of the reply, as it arrives."""
        if self.quiet or not piece:
            return
        self._unwait()
        typer.echo(piece, nl=False)
        self.mid_line = not piece.endswith("\n")

    def tool_call(self, name: str, args: dict[str, Any]) -> None:
        """One tool call the model made."""
        if self.quiet:
            return
        self.end_line()
        styled(typer.style("  " + tool_call_line(name, args), dim=True), err=self.tools_to_stderr)

    def end_line(self) -> None:
        """Finish the reply's current line, if any."""
        self._unwait()
        if self.mid_line:
            typer.echo("")
            self.mid_line = False

    def _unwait(self) -> None:
        if self.waiting_shown:
            typer.echo(ERASE_LINE, nl=False, color=True)  # to the line's start, cleared
            self.waiting_shown = False


@functools.cache
def event_loop() -> asyncio.Runner:
    """The process's one event loop, used for every turn.

    Model packages cache their async HTTP clients (langchain-openai keeps one per base
    URL), and such a client only works on the loop that first used it.
    """
    runner = asyncio.Runner()
    atexit.register(runner.close)
    return runner


def _top_level_model(metadata: dict[str, Any]) -> bool:
    """Whether a streamed chunk comes from the agent's own model, not a subagent's."""
    namespace = str(metadata.get("langgraph_checkpoint_ns", ""))
    return metadata.get("langgraph_node") == "model" and "|" not in namespace


async def stream_turn(
    agent: DeepAgent,
    prompt: str,
    config: RunnableConfig,
    printer: Printer,
    result: TurnResult | None = None,
) -> TurnResult:
    """Run one turn, showing it through ``printer``; return the reply and tool calls.

    ``result``, if given, is filled as the turn goes, so a caller whose turn is
    interrupted still has what the model had said (``TurnResult.unfinished``).
    """
    from langchain_core.messages import AIMessage, HumanMessage

    result = TurnResult() if result is None else result
    stream = agent.astream(
        {"messages": [HumanMessage(prompt)]}, config, stream_mode=["messages", "updates"]
    )
    printer.waiting()
    async for mode, payload in stream:
        if mode == "messages":
            chunk, metadata = payload
            # Streaming models send chunks; others their whole message once (an AIMessage).
            if isinstance(chunk, AIMessage) and _top_level_model(metadata):
                printer.text(chunk.text)
                result.unfinished += chunk.text
            continue
        # Only the model node's own messages: middleware (summarization) re-emits history.
        update = payload.get("model") if isinstance(payload, dict) else None
        for message in (update or {}).get("messages", []):
            if not isinstance(message, AIMessage):
                continue
            result.unfinished = ""  # the model finished it: the thread has it
            for call in message.tool_calls:
                result.tool_calls.append({"name": call["name"], "args": call["args"]})
                printer.tool_call(call["name"], call["args"])
            if message.tool_calls:
                printer.waiting()  # the tools run, then the model is asked again
            else:
                result.reply = message.text
    printer.end_line()
    return result


async def keep_interrupted(agent: DeepAgent, config: RunnableConfig, text: str) -> None:
    """Keep a reply cut short in the thread, marked, as if the model had ended it there.

    The conversation then reads as it happened (``threads show``, a resumed chat), and
    the model's next call knows its last answer did not reach its end.
    """
    from langchain_core.messages import AIMessage

    reply = AIMessage(f"{text.rstrip()}\n\n{INTERRUPTED}", response_metadata={"interrupted": True})
    await agent.aupdate_state(config, {"messages": [reply]}, as_node="model")


def build_agent(model: BaseChatModel, store: Store, settings: Settings) -> DeepAgent:
    """The deep agent of the command: the user's memory under /memories/, threads kept."""
    from deepmemory.agent import create_deep_agent

    return create_deep_agent(
        model=model,
        store=store,
        backend=agent_backend(store, settings),
        system_prompt=SYSTEM_PROMPT.format(user=settings.user),
    )


def thread_config(thread_id: str, settings: Settings) -> RunnableConfig:
    """The run config: the thread, and its user recorded in the checkpoints' metadata."""
    return {"configurable": {"thread_id": thread_id}, "metadata": {"user": settings.user}}


def _run_turn(
    runner: asyncio.Runner, agent: DeepAgent, prompt: str, config: RunnableConfig, printer: Printer
) -> TurnResult:
    """One turn; after Ctrl-C, its reply so far is kept in the thread, marked.

    The next turn answers the tool calls this one left open.
    """
    result = TurnResult()
    try:
        return runner.run(stream_turn(agent, prompt, config, printer, result))
    except KeyboardInterrupt:
        printer.end_line()
        if result.unfinished.strip():
            runner.run(keep_interrupted(agent, config, result.unfinished))
        raise


@contextlib.contextmanager
def sweeping(store: Store, settings: Settings) -> Iterator[Sweeper | None]:
    """Prune the user's memory in the background while the block runs, if a policy is set."""
    if settings.policy.is_empty:
        yield None
        return
    from deepmemory.pruning import Sweeper

    sweeper = Sweeper(store, settings.policy, namespaces=[settings.namespace], every=SWEEP_EVERY)
    with sweeper:  # stopped (after the prune in progress) before the store closes
        yield sweeper


def _prompt_text() -> str:
    if not is_tty(sys.stdout) or colour() is False:
        return "you> "
    # \001 \002 tell readline the colour codes take no room on the line.
    return "\001\x1b[1;36m\002you>\001\x1b[0m\002 "


def _greet(agent: DeepAgent, settings: Settings, thread_id: str, resumed: bool) -> None:
    where = shown_db(settings.db)
    note(f"deepmemory chat · model {model_name(settings)} · user {settings.user} · {where}")
    config = thread_config(thread_id, settings)
    messages = (agent.get_state(config).values or {}).get("messages", []) if resumed else []
    if messages:
        last = shorten(last_text(messages), 70)
        note(f"Resuming thread {thread_id} ({plural(len(messages), 'message')}; last: {last!r}).")
    else:
        note(f"New thread {thread_id}; resume it with: deepmemory chat --thread {thread_id}")
    note("Ctrl-C interrupts a reply; Ctrl-D or /exit quits; /help for more.")


def _session(runner: asyncio.Runner, agent: DeepAgent, settings: Settings, thread_id: str) -> None:
    config = thread_config(thread_id, settings)
    printer = Printer(waiting=is_tty(sys.stdout))
    prompt = _prompt_text()
    armed = False  # the last thing that happened was a Ctrl-C: another one quits
    while True:
        try:
            line = input(prompt).strip()
        except EOFError:
            typer.echo("")
            return
        except KeyboardInterrupt:
            typer.echo("")
            if armed:
                return
            note("(Ctrl-C again, Ctrl-D or /exit to quit.)")
            armed = True
            continue
        armed = False
        if not line:
            continue
        if line in EXIT_COMMANDS:
            return
        if line in ("/help", "/?"):
            note(HELP)
            continue
        if line == "/thread":
            note(f"Thread {thread_id}")
            continue
        try:
            _run_turn(runner, agent, line, config, printer)
        except KeyboardInterrupt:
            note("[interrupted]")
            armed = True
        except Exception as exc:  # the session goes on; the next turn may work
            report(describe(exc)[0])


@reports_errors
def chat(
    thread: ThreadOption = None,
    user: UserOption = None,
    model: ModelOption = None,
    base_url: BaseUrlOption = None,
    db: DbOption = None,
) -> None:
    """Chat with an agent that remembers you: /memories/ persists across conversations.

    Replies stream as they come; tool calls show as lines such as
    '→ write_file /memories/preferences.txt'. Ctrl-C interrupts a reply (what came
    of it stays in the thread, marked as interrupted); Ctrl-D or /exit quits. Without --thread a new conversation starts and its id is printed.
    With ttl_days, max_files or max_bytes set, memory is pruned in the background
    while the chat runs (as `deepmemory memory prune` does).

    Example:
        deepmemory chat --model openai:gpt-4.1 --thread 0b6c1e0e-...
    """
    settings = resolve(db=db, user=user, model=model, base_url=base_url)
    chosen = chat_model(settings)
    if is_tty(sys.stdin):
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401  # line editing and history for input()
    with open_store(settings.db, settings.index, writes=True) as store, sweeping(store, settings):
        agent = build_agent(chosen, store, settings)
        found = None if thread is None else find_thread(store.checkpointer(), thread)
        thread_id = found or thread or str(uuid.uuid4())
        _greet(agent, settings, thread_id, resumed=found is not None)
        _session(event_loop(), agent, settings, thread_id)


@reports_errors
def run(
    prompt: Annotated[str, typer.Argument(help="What to say; '-' reads it from stdin.")],
    thread: ThreadOption = None,
    user: UserOption = None,
    model: ModelOption = None,
    base_url: BaseUrlOption = None,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Say one thing to the agent and print its reply (for scripts).

    The reply goes to stdout as it streams; tool calls go to stderr, then the id of
    a new thread. --json prints {"thread_id", "reply", "tool_calls"} at the end instead.

    Example:
        deepmemory run "What do you remember about me?" --json
    """
    if prompt == "-":
        prompt = typer.get_text_stream("stdin").read()
    settings = resolve(db=db, user=user, model=model, base_url=base_url)
    chosen = chat_model(settings)
    printer = Printer(tools_to_stderr=True, quiet=json_output)
    with open_store(settings.db, settings.index, writes=True) as store:
        found = None if thread is None else find_thread(store.checkpointer(), thread)
        thread_id = found or thread or str(uuid.uuid4())
        if thread is not None and found is None:
            note(f"New thread {thread_id} (no conversation had that id).")
        agent = build_agent(chosen, store, settings)
        result = _run_turn(event_loop(), agent, prompt, thread_config(thread_id, settings), printer)
    if json_output:
        print_json({"thread_id": thread_id, "reply": result.reply, "tool_calls": result.tool_calls})
    elif thread is None:
        note(f"thread {thread_id} (continue it with --thread {thread_id})")
