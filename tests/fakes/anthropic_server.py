"""A fake Anthropic Messages API on 127.0.0.1, standard library only.

It speaks the wire format the ``anthropic`` SDK (and so ``langchain-anthropic``'s
``ChatAnthropic``) expects:

* ``POST /v1/messages`` (also ``?beta=true``, where the SDK sends beta requests): a
  ``message`` JSON body, or with ``"stream": true`` a ``text/event-stream`` of named
  events (``message_start``, ``content_block_start``/``_delta``/``_stop`` with
  ``text_delta`` and ``input_json_delta`` pieces, ``message_delta``, ``message_stop``).

What the "model" says comes from a *policy*: ``policy(messages, tools)`` receives the
request's ``messages`` (Anthropic JSON: ``tool_use`` and ``tool_result`` blocks
included) and ``tools`` (the tool specs offered, server tools such as
``{"type": "memory_20250818", "name": "memory"}`` among them) and returns either text or
a list of tool uses ``[(name, input_dict), ...]``.

The lifecycle, the request log and the failure switch are those of the fake OpenAI
server (this class extends it); errors come back in Anthropic's error shape.

Example::

    with FakeAnthropicServer(policy=lambda messages, tools: "Hello!") as server:
        client = anthropic.Anthropic(base_url=server.base_url, api_key="test")
        client.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=[...])
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from tests.fakes.openai_server import (
    HOST,
    MAX_BODY_BYTES,
    FakeOpenAIServer,
    RecordedRequest,
    _Handler,
    tokens,
)

ToolUse = tuple[str, dict[str, Any]]
Reply = str | Sequence[ToolUse]
Policy = Callable[[list[dict[str, Any]], list[dict[str, Any]]], Reply]

MESSAGES_PATH = "/v1/messages"


class AnthropicRequest(RecordedRequest):
    """One request, read as the Messages API shapes it."""

    @property
    def tool_names(self) -> list[str]:
        return [str(t.get("name")) for t in self.tools]

    @property
    def system_prompt(self) -> str:
        system = (self.body or {}).get("system") or ""
        if isinstance(system, str):
            return system
        return "\n".join(str(b.get("text", "")) for b in system if isinstance(b, dict))

    @property
    def betas(self) -> list[str]:
        """The ``anthropic-beta`` header's features."""
        raw = self.headers.get("anthropic-beta", "")
        return [b.strip() for b in raw.split(",") if b.strip()]


def text_of(content: Any) -> str:
    """The text of a message's or a tool result's ``content`` (a string or blocks)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(str(b.get("text", "")) for b in content if isinstance(b, dict))


def tool_results(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every ``tool_result`` block sent so far, in order (``content`` flattened to text)."""
    found = []
    for message in messages:
        content = message.get("content")
        if message.get("role") != "user" or not isinstance(content, list):
            continue
        for block in content:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                found.append({**block, "content": text_of(block.get("content"))})
    return found


def tool_results_since_user(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``tool_result`` blocks after the latest user message that holds text."""
    start = 0
    for i, message in enumerate(messages):
        content = message.get("content")
        is_text = isinstance(content, str) or (
            isinstance(content, list)
            and any(isinstance(b, dict) and b.get("type") == "text" for b in content)
        )
        if message.get("role") == "user" and is_text:
            start = i
    return tool_results(messages[start:])


def last_user_text(messages: list[dict[str, Any]]) -> str:
    """The latest user text ('' if none)."""
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        texts = [b for b in content or [] if isinstance(b, dict) and b.get("type") == "text"]
        if texts:
            return text_of(texts)
    return ""


def _error(message: str, type_: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": type_, "message": message}}


def _approx_tokens(value: Any) -> int:
    return max(1, len(json.dumps(value)) // 4)


class FakeAnthropicServer(FakeOpenAIServer):
    """A fake Anthropic Messages endpoint in a background thread.

    Args:
        policy: ``policy(messages, tools) -> str | [(name, input), ...]``.
        max_requests: a bound on message requests; past it every request fails with a
            500 the client is told not to retry (so a looping agent stops).
        chunk_delay_s: pause between SSE events.
    """

    def __init__(
        self,
        policy: Policy | None = None,
        *,
        max_requests: int = 100,
        chunk_delay_s: float = 0.0,
    ) -> None:
        super().__init__(max_requests=max_requests, chunk_delay_s=chunk_delay_s)
        self.policy = policy or (lambda messages, tools: "OK")  # type: ignore[assignment]
        self._message_ids = itertools.count(1)

    @property
    def base_url(self) -> str:
        """The ``base_url`` for the SDK and ``ChatAnthropic``: ``http://127.0.0.1:<port>``."""
        return f"http://{HOST}:{self.port}"

    @property
    def message_requests(self) -> list[AnthropicRequest]:
        with self._lock:
            return [r for r in self.requests if isinstance(r, AnthropicRequest)]

    # -- request handling (runs in handler threads) -----------------------------------------

    def _handle(self, handler: _Handler, method: str) -> None:
        path = handler.path.split("?", 1)[0]
        length = int(handler.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            handler.send_json(413, _error("Request too large.", "request_too_large"))
            handler.close_connection = True
            return
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            handler.send_json(400, _error("Invalid JSON body.", "invalid_request_error"))
            return
        headers = {name.lower(): value for name, value in handler.headers.items()}
        if method == "POST" and path == MESSAGES_PATH:
            record: RecordedRequest = AnthropicRequest(method, path, headers, body)
        else:
            record = RecordedRequest(method, path, headers, body)
        with self._lock:
            self.requests.append(record)
        if isinstance(record, AnthropicRequest):
            self._message(handler, body or {})
            return
        handler.send_json(404, _error(f"Not found: {method} {path}", "not_found_error"))

    def _message(self, handler: _Handler, body: dict[str, Any]) -> None:
        failure = self._next_failure()
        if failure is not None:
            handler.send_json(failure.status, _error(failure.message, failure.type))
            return
        if len(self.message_requests) > self.max_requests:
            handler.send_json(
                500,
                _error(
                    f"fake Anthropic server: more than {self.max_requests} requests; "
                    "is the agent looping?",
                    "api_error",
                ),
                {"x-should-retry": "false"},
            )
            return
        messages = list(body.get("messages") or [])
        tools = list(body.get("tools") or [])
        try:
            content = _blocks(self.policy(messages, tools))  # type: ignore[arg-type]
        except Exception as exc:  # the policy is test code: report its bug to the client
            with self._lock:
                self.policy_errors.append(exc)
            handler.send_json(
                500,
                _error(f"fake Anthropic server policy failed: {exc!r}", "api_error"),
                {"x-should-retry": "false"},
            )
            return
        stop = "tool_use" if any(b["type"] == "tool_use" for b in content) else "end_turn"
        message = {
            "id": f"msg_fake{next(self._message_ids)}",
            "type": "message",
            "role": "assistant",
            "model": str(body.get("model") or "claude-sonnet-4-5"),
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {
                "input_tokens": _approx_tokens([body.get("system"), messages, tools]),
                "output_tokens": _approx_tokens(content),
            },
        }
        if body.get("stream"):
            self._send_events(handler, _stream_events(message))
            return
        handler.send_json(200, message)

    def _send_events(self, handler: _Handler, events: Iterator[dict[str, Any]]) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream; charset=utf-8")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.send_header("request-id", f"req_{uuid.uuid4().hex[:24]}")
        handler.end_headers()
        for event in events:
            handler._chunk(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
            if self.chunk_delay_s:
                time.sleep(self.chunk_delay_s)
        handler._chunk(b"")  # end of the chunked body


def _blocks(reply: Reply) -> list[dict[str, Any]]:
    """The assistant's content blocks from a policy's reply."""
    if isinstance(reply, str):
        return [{"type": "text", "text": reply}]
    blocks = []
    for name, tool_input in reply:
        if not isinstance(name, str) or not isinstance(tool_input, dict):
            raise TypeError(f"a tool use must be (name, input_dict), got {(name, tool_input)!r}")
        blocks.append(
            {
                "type": "tool_use",
                "id": f"toolu_{uuid.uuid4().hex[:24]}",
                "name": name,
                "input": tool_input,
            }
        )
    if not blocks:
        raise ValueError("a policy must return text or at least one tool use")
    return blocks


def _stream_events(message: dict[str, Any]) -> Iterator[dict[str, Any]]:
    start = {**message, "content": [], "stop_reason": None}
    start["usage"] = {**message["usage"], "output_tokens": 1}
    yield {"type": "message_start", "message": start}
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            yield {
                "type": "content_block_start",
                "index": index,
                "content_block": {"type": "text", "text": ""},
            }
            for piece in tokens(block["text"]):
                delta = {"type": "text_delta", "text": piece}
                yield {"type": "content_block_delta", "index": index, "delta": delta}
        else:
            yield {
                "type": "content_block_start",
                "index": index,
                "content_block": {**block, "input": {}},
            }
            arguments = json.dumps(block["input"])
            for i in range(0, len(arguments), 8):
                delta = {"type": "input_json_delta", "partial_json": arguments[i : i + 8]}
                yield {"type": "content_block_delta", "index": index, "delta": delta}
        yield {"type": "content_block_stop", "index": index}
    yield {
        "type": "message_delta",
        "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
        "usage": {"output_tokens": message["usage"]["output_tokens"]},
    }
    yield {"type": "message_stop"}
