"""A scripted chat model: replays planned replies and records what it was sent.

Tests and the offline walkthrough drive real agents with it: each reply is an
``AIMessage`` (possibly with tool calls) or a function of the messages the model
received, so a script can react to tool results.

Example:
    >>> from langchain_core.messages import AIMessage
    >>> model = ScriptedChatModel(replies=[AIMessage("hello")])
    >>> model.invoke("hi").content
    'hello'
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field

Reply = AIMessage | Callable[[list[BaseMessage]], AIMessage]

_ids = itertools.count(1)


def tool_call(name: str, **args: Any) -> dict[str, Any]:
    """A tool call for an ``AIMessage(tool_calls=[...])`` with a fresh id."""
    return {"name": name, "args": args, "id": f"call_{next(_ids)}", "type": "tool_call"}


def calls(*tool_calls: dict[str, Any], text: str = "") -> AIMessage:
    """An AI message that makes the given tool calls."""
    return AIMessage(content=text, tool_calls=list(tool_calls))


class ScriptedChatModel(BaseChatModel):
    """Replays ``replies`` in order; ``received`` holds the messages of every call.

    ``replies`` is a list (each item an ``AIMessage`` or a function of the messages), or
    one function (a *policy*) asked for every reply.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    replies: Any
    received: list[list[BaseMessage]] = Field(default_factory=list)
    # The names of the tools offered on each call (``bind_tools``), in order.
    offered: list[list[str]] = Field(default_factory=list)
    position: int = 0

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        """Tools are recorded (``offered``) and otherwise ignored: the script decides."""
        self.offered.append([getattr(t, "name", None) or t.get("name", "?") for t in tools])
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.received.append(list(messages))
        reply: AIMessage
        if callable(self.replies):
            reply = self.replies(list(messages))
        elif self.position >= len(self.replies):
            reply = AIMessage("(the script has no more replies)")
        else:
            planned = self.replies[self.position]
            self.position += 1
            reply = planned(list(messages)) if callable(planned) else planned
        # A fresh copy, so one script can be replayed by several agents.
        return ChatResult(generations=[ChatGeneration(message=reply.model_copy())])
