"""A fake OpenAI-compatible chat-completions server on 127.0.0.1, standard library only.

It speaks the wire format the ``openai`` SDK (and so ``langchain-openai``) expects:

* ``POST /v1/chat/completions``: a ``chat.completion`` JSON body, or with
  ``"stream": true`` a ``text/event-stream`` of ``chat.completion.chunk`` events
  (content token by token, ``tool_calls`` deltas with index/id/name/argument pieces,
  a usage chunk when ``stream_options.include_usage`` is set, then ``data: [DONE]``).
* ``GET /v1/models``: the model list.

What the "model" says comes from a *policy*: ``policy(messages, tools)`` receives
the request's ``messages`` (OpenAI JSON dicts, ``role: "tool"`` results included)
and ``tools`` (the function specs offered, ``[]`` if none) and returns either text
or a list of tool calls ``[(name, arguments_dict), ...]``.

Every request is recorded (``server.requests`` / ``server.chat_requests``), and the
server can be told to fail (``server.fail(500)``, ``server.fail(401, ...)``) or
checks the API key itself (``api_key=``), answering like OpenAI does.

Example::

    with FakeOpenAIServer(policy=lambda messages, tools: "Hello!") as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test-key")
        client.chat.completions.create(model="gpt-4.1", messages=[...])
"""

from __future__ import annotations

import itertools
import json
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes.synonyms import concept_vector

ToolCall = tuple[str, dict[str, Any]]
Reply = str | Sequence[ToolCall]
Policy = Callable[[list[dict[str, Any]], list[dict[str, Any]]], Reply]

HOST = "127.0.0.1"
MAX_BODY_BYTES = 10 * 1024 * 1024
IDLE_TIMEOUT_S = 10.0  # a handler waiting on an idle keep-alive connection gives up after this


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request the server received."""

    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: dict[str, Any] | None

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list((self.body or {}).get("messages") or [])

    @property
    def tools(self) -> list[dict[str, Any]]:
        return list((self.body or {}).get("tools") or [])

    @property
    def tool_names(self) -> list[str]:
        return [t["function"]["name"] for t in self.tools if t.get("type") == "function"]

    def tool_parameters(self, name: str) -> dict[str, Any]:
        """The JSON schema of the named tool's arguments."""
        for tool in self.tools:
            if tool.get("function", {}).get("name") == name:
                return dict(tool["function"].get("parameters") or {})
        raise KeyError(name)

    @property
    def system_prompt(self) -> str:
        return "\n".join(
            text_of(m) for m in self.messages if m.get("role") in ("system", "developer")
        )

    @property
    def stream(self) -> bool:
        return bool((self.body or {}).get("stream"))


@dataclass
class Failure:
    """A scripted error response (OpenAI's error JSON shape)."""

    status: int
    message: str
    type: str
    code: str | None = None
    times: int | None = 1  # None: every request until clear_failures()
    skip: int = 0  # chat requests to let through before failing
    headers: dict[str, str] = field(default_factory=dict)


def text_of(message: dict[str, Any]) -> str:
    """The text of an OpenAI message, whether ``content`` is a string or a list of parts."""
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if isinstance(p, dict))


def last_user_text(messages: list[dict[str, Any]]) -> str:
    """The latest ``role: "user"`` message's text ('' if none)."""
    return next((text_of(m) for m in reversed(messages) if m.get("role") == "user"), "")


def tool_results_since_user(messages: list[dict[str, Any]]) -> list[str]:
    """The ``role: "tool"`` results after the latest user message, in order."""
    results: list[str] = []
    for message in reversed(messages):
        if message.get("role") == "user":
            break
        if message.get("role") == "tool":
            results.append(text_of(message))
    return results[::-1]


def tokens(text: str) -> list[str]:
    """Split text into word-sized pieces that join back to exactly ``text``."""
    return re.findall(r"\s*\S+\s*|\s+", text) or [text]


def _pieces(text: str, size: int = 8) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _approx_tokens(value: Any) -> int:
    return max(1, len(json.dumps(value)) // 4)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False
    owner: FakeOpenAIServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            return  # a client dropped or idled out its connection: normal for keep-alive
        if exc is not None:
            self.owner.server_errors.append(exc)
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked streaming, like the real API
    timeout = IDLE_TIMEOUT_S
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._track(self.connection, add=False)

    def do_GET(self) -> None:  # http.server's naming
        self.server.owner._handle(self, "GET")

    def do_POST(self) -> None:
        self.server.owner._handle(self, "POST")

    # -- writing ----------------------------------------------------------------------

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex[:24]}")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def send_sse(self, events: Iterator[dict[str, Any]], delay_s: float) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex[:24]}")
        self.end_headers()
        for event in events:
            self._chunk(f"data: {json.dumps(event)}\n\n".encode())
            if delay_s:
                time.sleep(delay_s)
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")  # end of the chunked body

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


class FakeOpenAIServer:
    """A fake OpenAI chat-completions endpoint in a background thread.

    Args:
        policy: ``policy(messages, tools) -> str | [(name, args), ...]``.
        api_key: if set, requests without ``Authorization: Bearer <api_key>`` get
            OpenAI's 401 ``invalid_api_key`` error.
        model_ids: what ``GET /v1/models`` lists.
        max_requests: a bound on chat requests; past it every request fails with a
            500 that the client is told not to retry (so a looping agent stops).
        chunk_delay_s: pause between SSE events.
        first_token_delay_s: pause before a chat completion's answer (the model thinking).
    """

    def __init__(
        self,
        policy: Policy | None = None,
        *,
        api_key: str | None = None,
        model_ids: Sequence[str] = ("gpt-4.1",),
        max_requests: int = 100,
        chunk_delay_s: float = 0.0,
        first_token_delay_s: float = 0.0,
    ) -> None:
        self.policy: Policy = policy or (lambda messages, tools: "OK")
        self.api_key = api_key
        self.model_ids = list(model_ids)
        self.max_requests = max_requests
        self.chunk_delay_s = chunk_delay_s
        self.first_token_delay_s = first_token_delay_s
        self.requests: list[RecordedRequest] = []
        self.policy_errors: list[BaseException] = []  # exceptions raised by the policy
        self.server_errors: list[BaseException] = []  # bugs in this fake, seen by handlers
        self._failures: list[Failure] = []
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._ids = itertools.count(1)
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> FakeOpenAIServer:
        if self._httpd is not None:
            raise RuntimeError("the fake OpenAI server is already running")
        httpd = _Server((HOST, 0), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-openai-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()  # serve_forever returns
        with self._lock:
            open_connections = list(self._connections)
        for conn in open_connections:  # wake handlers blocked on idle keep-alive connections
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        httpd.server_close()
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:  # handlers untrack themselves as they finish
            with self._lock:
                if not self._connections:
                    break
            time.sleep(0.01)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the fake OpenAI server is not running")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """The URL to use as ``OPENAI_BASE_URL`` / ``base_url``: ``http://127.0.0.1:<port>/v1``."""
        return f"http://{HOST}:{self.port}/v1"

    # -- test controls --------------------------------------------------------------------

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == "/v1/chat/completions"]

    def fail(
        self,
        status: int = 500,
        message: str | None = None,
        *,
        type: str | None = None,  # OpenAI's field name
        code: str | None = None,
        times: int | None = 1,
        skip: int = 0,
        retry: bool | None = None,
        retry_after_ms: int | None = None,
    ) -> None:
        """Answer chat requests with an OpenAI-style error.

        After letting ``skip`` requests through, the next ``times`` requests (None:
        every one until ``clear_failures()``) get ``status`` with OpenAI's error JSON.

        ``retry`` sets OpenAI's ``x-should-retry`` header; ``retry_after_ms`` its
        ``retry-after-ms`` header (keeps the SDK's retries fast).
        """
        headers: dict[str, str] = {}
        if retry is not None:
            headers["x-should-retry"] = "true" if retry else "false"
        if retry_after_ms is not None:
            headers["retry-after-ms"] = str(retry_after_ms)
        default_type = "server_error" if status >= 500 else "invalid_request_error"
        default_message = (
            "The server had an error while processing your request. Sorry about that!"
            if status >= 500
            else HTTPStatus(status).phrase
        )
        with self._lock:
            self._failures.append(
                Failure(
                    status,
                    message or default_message,
                    type or default_type,
                    code,
                    times,
                    skip,
                    headers,
                )
            )

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    # -- request handling (runs in handler threads) -----------------------------------------

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _handle(self, handler: _Handler, method: str) -> None:
        path = handler.path.split("?", 1)[0]
        body: dict[str, Any] | None = None
        length = int(handler.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            handler.send_json(413, _error("Request too large.", "invalid_request_error"))
            handler.close_connection = True
            return
        raw = handler.rfile.read(length) if length else b""
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                handler.send_json(
                    400,
                    _error(
                        "We could not parse the JSON body of your request.", "invalid_request_error"
                    ),
                )
                return
        headers = {name.lower(): value for name, value in handler.headers.items()}
        record = RecordedRequest(method, path, headers, body)
        with self._lock:
            self.requests.append(record)

        if self.api_key is not None:
            sent = handler.headers.get("Authorization", "")
            if sent != f"Bearer {self.api_key}":
                shown = sent.removeprefix("Bearer ")
                handler.send_json(
                    401,
                    _error(
                        f"Incorrect API key provided: {shown}. You can find your API key at "
                        "https://platform.openai.com/account/api-keys.",
                        "invalid_request_error",
                        code="invalid_api_key",
                    ),
                )
                return

        if method == "GET" and path == "/v1/models":
            handler.send_json(
                200,
                {
                    "object": "list",
                    "data": [
                        {"id": m, "object": "model", "created": 1_700_000_000, "owned_by": "fake"}
                        for m in self.model_ids
                    ],
                },
            )
            return
        if method == "POST" and path == "/v1/chat/completions":
            self._chat(handler, body or {})
            return
        if method == "POST" and path == "/v1/embeddings":
            self._embeddings(handler, body or {})
            return
        handler.send_json(404, _error(f"Invalid URL ({method} {path})", "invalid_request_error"))

    def _embeddings(self, handler: Any, body: dict[str, Any]) -> None:
        """OpenAI's embeddings API over ``synonyms.concept_vector`` (synonyms share a
        dimension); texts may come as strings or, as langchain-openai sends them, as
        token ids, which this server cannot read and answers with a 400."""
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        if not all(isinstance(t, str) for t in texts):
            handler.send_json(
                400,
                _error(
                    "Send texts, not token ids (check_embedding_ctx_length=False).",
                    "invalid_request_error",
                ),
            )
            return
        data = [
            {"object": "embedding", "index": i, "embedding": concept_vector(t)}
            for i, t in enumerate(texts)
        ]
        usage = {"prompt_tokens": 0, "total_tokens": 0}
        handler.send_json(
            200, {"object": "list", "data": data, "model": body.get("model"), "usage": usage}
        )

    def _next_failure(self) -> Failure | None:
        with self._lock:
            if not self._failures:
                return None
            failure = self._failures[0]
            if failure.skip > 0:
                failure.skip -= 1
                return None
            if failure.times is not None:
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.pop(0)
            return failure

    def _chat(self, handler: _Handler, body: dict[str, Any]) -> None:
        failure = self._next_failure()
        if failure is not None:
            handler.send_json(
                failure.status, _error(failure.message, failure.type, failure.code), failure.headers
            )
            return
        if len(self.chat_requests) > self.max_requests:
            handler.send_json(
                500,
                _error(
                    f"fake OpenAI server: more than {self.max_requests} chat requests; "
                    "is the agent looping?",
                    "server_error",
                ),
                {"x-should-retry": "false"},
            )
            return
        messages = list(body.get("messages") or [])
        tools = list(body.get("tools") or [])
        try:
            reply = self.policy(messages, tools)
            content, calls = _normalize(reply)
        except Exception as exc:  # the policy is test code: report its bug to the client
            with self._lock:
                self.policy_errors.append(exc)
            handler.send_json(
                500,
                _error(f"fake OpenAI server policy failed: {exc!r}", "server_error"),
                {"x-should-retry": "false"},
            )
            return

        if self.first_token_delay_s:
            time.sleep(self.first_token_delay_s)
        model = str(body.get("model") or "gpt-4.1")
        completion_id = f"chatcmpl-fake{next(self._ids)}"
        usage = _usage(messages, tools, content, calls)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            events = _stream_events(completion_id, model, content, calls, usage, include_usage)
            handler.send_sse(events, self.chunk_delay_s)
            return
        message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
        if calls:
            message["tool_calls"] = calls
        handler.send_json(
            200,
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": "tool_calls" if calls else "stop",
                    }
                ],
                "usage": usage,
            },
        )


def _error(message: str, type_: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def _normalize(reply: Reply) -> tuple[str | None, list[dict[str, Any]]]:
    """(content, OpenAI tool_calls) from a policy's reply."""
    if isinstance(reply, str):
        return reply, []
    calls = []
    for name, arguments in reply:
        if not isinstance(name, str) or not isinstance(arguments, dict):
            raise TypeError(
                f"a tool call must be (name, arguments_dict), got {(name, arguments)!r}"
            )
        calls.append(
            {
                "id": f"call_{uuid.uuid4().hex[:24]}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
        )
    if not calls:
        raise ValueError("a policy must return text or at least one tool call")
    return None, calls


def _usage(messages: Any, tools: Any, content: str | None, calls: Any) -> dict[str, int]:
    prompt = _approx_tokens([messages, tools])
    completion = _approx_tokens([content, calls])
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _stream_events(
    completion_id: str,
    model: str,
    content: str | None,
    calls: list[dict[str, Any]],
    usage: dict[str, int],
    include_usage: bool,
) -> Iterator[dict[str, Any]]:
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        event: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            event["usage"] = None
        return event

    yield chunk({"role": "assistant", "content": "", "refusal": None})
    if content:
        for piece in tokens(content):
            yield chunk({"content": piece})
    for index, call in enumerate(calls):
        yield chunk(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["function"]["name"], "arguments": ""},
                    }
                ]
            }
        )
        for piece in _pieces(call["function"]["arguments"]):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    yield chunk({}, "tool_calls" if calls else "stop")
    if include_usage:
        yield {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [],
            "usage": usage,
        }
