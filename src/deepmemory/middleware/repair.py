"""Answer tool calls left without a result, so an interrupted thread stays usable.

A turn stopped between the model's tool calls and their results (Ctrl-C, a crash, a
cancelled task) leaves an AI message whose calls have no ``ToolMessage``. Providers
refuse such a history on the next turn. Before each run this middleware inserts, right
after that message, a result saying the call was interrupted and did not run.
"""

from __future__ import annotations

from typing import Any

from langchain.agents.middleware import AgentMiddleware, AgentState
from langchain_core.messages import AIMessage, BaseMessage, RemoveMessage, ToolMessage
from langgraph.graph.message import REMOVE_ALL_MESSAGES
from langgraph.runtime import Runtime

INTERRUPTED = (
    "Error: this tool call was interrupted before it ran, so it had no effect. "
    "Call the tool again if it is still needed."
)


def answer_unanswered(messages: list[BaseMessage]) -> list[BaseMessage] | None:
    """The history with every unanswered tool call answered, or None if none is."""
    answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    patched: list[BaseMessage] = []
    changed = False
    for message in messages:
        patched.append(message)
        if isinstance(message, AIMessage):
            for call in message.tool_calls:
                if call.get("id") and call["id"] not in answered:
                    patched.append(
                        ToolMessage(
                            INTERRUPTED, tool_call_id=call["id"], name=call["name"], status="error"
                        )
                    )
                    changed = True
    return patched if changed else None


class UnansweredToolCallsMiddleware(AgentMiddleware):
    """Repairs histories with unanswered tool calls before each run."""

    def before_agent(self, state: AgentState[Any], runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Answer the calls an interrupted turn left open."""
        patched = answer_unanswered(list(state.get("messages", [])))
        if patched is None:
            return None
        return {"messages": [RemoveMessage(id=REMOVE_ALL_MESSAGES), *patched]}
