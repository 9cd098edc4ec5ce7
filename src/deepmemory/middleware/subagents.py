"""Subagents: the ``task`` tool hands a piece of work to a fresh agent and returns its answer.

A subagent starts with only the task description, works with its own tools and
prompt, and shares the parent's backend: it sees the parent thread's files (they are
passed in) and the same long-term store, so it can read and write ``/memories/``.
When it finishes, every change it made to thread files (writes *and* deletions) is
returned to the parent as one ``files`` update, so nothing it deleted comes back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, NotRequired, TypedDict

from langchain.agents.middleware import AgentMiddleware
from langchain.tools import ToolRuntime
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.errors import GraphBubbleUp
from langgraph.types import Command

logger = logging.getLogger("deepmemory")

GENERAL_PURPOSE = "general-purpose"
GENERAL_PURPOSE_PROMPT = (
    "You are a capable assistant working on one task handed to you by another agent. "
    "Use the tools available to complete it, then reply with a complete, self-contained "
    "answer: the other agent sees only your final message."
)


class SubAgent(TypedDict):
    """A subagent defined by its prompt and tools (built with the parent's backend)."""

    name: str
    description: str
    system_prompt: str
    tools: NotRequired[Sequence[BaseTool | Callable[..., Any] | dict[str, Any]]]
    model: NotRequired[Any]
    middleware: NotRequired[Sequence[Any]]
    interrupt_on: NotRequired[dict[str, Any]]


class CompiledSubAgent(TypedDict):
    """A subagent given as a ready runnable (any graph taking and returning ``messages``)."""

    name: str
    description: str
    runnable: Runnable[Any, Any]


TASK_DESCRIPTION = """Hand a self-contained task to a subagent and get its final answer back.
Use it for work that needs many steps or would clutter this conversation (research, drafting, searching many files); several independent tasks can run in parallel by calling task several times in one turn.
The subagent sees only `description`, so include everything it needs: the goal, the relevant paths and what to return. It shares your files and long-term memory.

Available subagent types:
{agents}"""


def _failed(subagent_type: str, exc: BaseException) -> str:
    return (
        f"Error: the {subagent_type!r} subagent failed ({type(exc).__name__}) before it "
        "finished; files it already changed in long-term memory stay changed. Retry the "
        "task, split it into smaller tasks, or do it yourself."
    )


def _final_text(result: dict[str, Any]) -> str:
    for message in reversed(result.get("messages", [])):
        if isinstance(message, AIMessage):
            text = message.text
            if text:
                return text
    return "The subagent finished without a final message."


def files_diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The update that turns ``before`` into ``after`` (``None`` marks a deletion)."""
    update: dict[str, Any] = {k: v for k, v in after.items() if before.get(k) != v}
    update.update({k: None for k in before if k not in after})
    return update


class SubAgentMiddleware(AgentMiddleware):
    """Adds the ``task`` tool for the given compiled subagents.

    Example:
        >>> SubAgentMiddleware(agents={}, descriptions={})  # doctest: +ELLIPSIS
        <...SubAgentMiddleware object at ...>
    """

    def __init__(self, *, agents: dict[str, Runnable[Any, Any]], descriptions: dict[str, str]):
        self.agents = agents
        listing = "\n".join(f"- {name}: {descriptions[name]}" for name in agents)
        self.tools = [self._task_tool(TASK_DESCRIPTION.format(agents=listing or "- (none)"))]

    def _prepare(self, description: str, subagent_type: str, runtime: ToolRuntime[Any, Any]) -> Any:
        agent = self.agents.get(subagent_type)
        if agent is None:
            known = ", ".join(sorted(self.agents)) or "none"
            return None, (
                f"Error: there is no subagent type {subagent_type!r}. Choose one of: {known}."
            )
        files = dict((runtime.state or {}).get("files") or {})
        return agent, {"messages": [HumanMessage(description)], "files": files}

    def _reply(self, runtime: ToolRuntime, before: dict[str, Any], result: Any) -> Command[Any]:
        text = _final_text(result)
        update: dict[str, Any] = {
            "messages": [ToolMessage(text, tool_call_id=runtime.tool_call_id or "")]
        }
        diff = files_diff(before, dict(result.get("files") or {}))
        if diff:
            update["files"] = diff
        return Command(update=update)

    def _task_tool(self, description: str) -> BaseTool:
        def task(description: str, subagent_type: str, runtime: ToolRuntime[Any, Any]) -> Any:
            agent, payload = self._prepare(description, subagent_type, runtime)
            if agent is None:
                return payload
            try:
                result = agent.invoke(payload, runtime.config)
            except GraphBubbleUp:
                raise  # interrupts (human approval inside the subagent) must reach the graph
            except Exception as exc:
                logger.exception("deepmemory subagent %s failed", subagent_type)
                return _failed(subagent_type, exc)
            return self._reply(runtime, payload["files"], result)

        async def atask(
            description: str, subagent_type: str, runtime: ToolRuntime[Any, Any]
        ) -> Any:
            agent, payload = self._prepare(description, subagent_type, runtime)
            if agent is None:
                return payload
            try:
                result = await agent.ainvoke(payload, runtime.config)
            except GraphBubbleUp:
                raise
            except Exception as exc:
                logger.exception("deepmemory subagent %s failed", subagent_type)
                return _failed(subagent_type, exc)
            return self._reply(runtime, payload["files"], result)

        return StructuredTool.from_function(
            func=task, coroutine=atask, name="task", description=description
        )
