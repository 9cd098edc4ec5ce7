"""create_deep_agent: a LangChain agent with planning, files, subagents and memory.

Built on ``langchain.agents.create_agent`` and middleware, in this order: the todo
list (``write_todos``), the file tools over the chosen backend, the ``task`` tool for
subagents, summarization of long histories, the caller's own middleware, then human
approval (``interrupt_on``).

Threads always keep their state: with no ``checkpointer``, one of our stores brings
its matching LangGraph checkpointer (same database, so thread state survives a
restart), and any other store or none gets an in-memory one. A call without a
``thread_id`` starts a new thread rather than failing, as the seed's examples expect.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import (
    HumanInTheLoopMiddleware,
    SummarizationMiddleware,
    TodoListMiddleware,
)
from langchain.chat_models import init_chat_model
from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.store.base import BaseStore

from deepmemory.backends.policies import with_default_limits
from deepmemory.errors import ConfigError
from deepmemory.middleware.approval import approve_writes as approve_writes_config
from deepmemory.middleware.filesystem import FilesystemMiddleware
from deepmemory.middleware.repair import UnansweredToolCallsMiddleware
from deepmemory.middleware.subagents import (
    GENERAL_PURPOSE,
    GENERAL_PURPOSE_PROMPT,
    CompiledSubAgent,
    SubAgent,
    SubAgentMiddleware,
)

BASE_PROMPT = """You are a capable assistant that completes tasks step by step.
Plan multi-step work with `write_todos`, keep notes and results in files, and hand self-contained pieces of work to subagents with `task` when that helps. Answer the user directly and concisely."""

DEFAULT_MODELS = {
    "ANTHROPIC_API_KEY": "anthropic:claude-sonnet-4-5",
    "OPENAI_API_KEY": "openai:gpt-4.1",
}
SUMMARIZE_AT_TOKENS = 120_000
KEEP_MESSAGES = 20


def resolve_model(model: str | BaseChatModel | None, **options: Any) -> BaseChatModel:
    """A chat model from an object, an ``init_chat_model`` string, or the environment.

    With no model: ``DEEPMEMORY_MODEL`` if set, else a default model of whichever
    provider has an API key set (Anthropic, then OpenAI). ``options`` (for example
    ``base_url``) are passed to ``init_chat_model``.

    Raises:
        ConfigError: no model can be chosen, or its provider package is missing.
    """
    if isinstance(model, BaseChatModel):
        return model
    name = model or os.environ.get("DEEPMEMORY_MODEL")
    if not name:
        name = next((m for key, m in DEFAULT_MODELS.items() if os.environ.get(key)), None)
    if not name:
        raise ConfigError(
            "No chat model chosen: pass model= (a chat model or a string such as "
            "'openai:gpt-4.1', 'anthropic:claude-sonnet-4-5' or 'ollama:llama3.1'), set "
            "DEEPMEMORY_MODEL, or set ANTHROPIC_API_KEY or OPENAI_API_KEY."
        )
    try:
        chat_model = init_chat_model(name, **options)
    except ImportError as exc:
        raise ConfigError(
            f"The model {name!r} needs a provider package that is not installed ({exc}). "
            "Install it, e.g. pip install 'deepmemory[openai]' or 'deepmemory[anthropic]'."
        ) from None
    except Exception as exc:  # a missing API key, an unknown provider, a bad option
        raise ConfigError(f"Cannot use the model {name!r}: {exc}") from None
    if not isinstance(chat_model, BaseChatModel):
        raise ConfigError(f"Cannot use the model {name!r}: it is not a chat model.")
    return chat_model


def _with_thread(config: Any) -> Any:
    """A config with a fresh ``thread_id`` when the caller gave none."""
    config = dict(config or {})
    configurable = dict(config.get("configurable") or {})
    if not configurable.get("thread_id"):
        configurable["thread_id"] = str(uuid.uuid4())
        config["configurable"] = configurable
    return config


class DeepAgent(CompiledStateGraph):  # type: ignore[type-arg]  # generic params come from create_agent
    """The compiled agent; a call without ``thread_id`` runs in a new thread."""

    def stream(self, input: Any, config: Any = None, **kwargs: Any) -> Iterator[Any]:
        """Stream a run (see ``CompiledStateGraph.stream``)."""
        return super().stream(input, _with_thread(config), **kwargs)

    async def astream(self, input: Any, config: Any = None, **kwargs: Any) -> AsyncIterator[Any]:
        """Async ``stream``."""
        async for chunk in super().astream(input, _with_thread(config), **kwargs):
            yield chunk


def _default_checkpointer(store: BaseStore | None) -> Any:
    pair = getattr(store, "checkpointer", None)
    if callable(pair):
        return pair()
    return InMemorySaver()


def _build_subagents(
    subagents: Sequence[SubAgent | CompiledSubAgent],
    *,
    model: BaseChatModel,
    tools: Sequence[Any],
    backend: Any,
    store: BaseStore | None,
) -> SubAgentMiddleware:
    agents: dict[str, Any] = {}
    descriptions: dict[str, str] = {}

    def build(
        prompt: str,
        sub_tools: Sequence[Any],
        sub_model: Any,
        extra: Sequence[Any],
        interrupt_on: dict[str, Any] | None,
    ) -> Any:
        middleware: list[Any] = [TodoListMiddleware(), FilesystemMiddleware(backend=backend)]
        middleware += [_summarizer(sub_model), *extra]
        if interrupt_on:
            middleware.append(HumanInTheLoopMiddleware(interrupt_on=interrupt_on))
        return create_agent(
            sub_model, list(sub_tools), system_prompt=prompt, middleware=middleware, store=store
        )

    names = {spec["name"] for spec in subagents}
    if GENERAL_PURPOSE not in names:
        agents[GENERAL_PURPOSE] = build(GENERAL_PURPOSE_PROMPT, tools, model, (), None)
        descriptions[GENERAL_PURPOSE] = (
            "A general assistant with the same tools as you, for any self-contained task."
        )
    for spec in subagents:
        descriptions[spec["name"]] = spec["description"]
        if "runnable" in spec:
            agents[spec["name"]] = spec["runnable"]  # type: ignore[typeddict-item]  # narrowed by the "in" test: a CompiledSubAgent
            continue
        sub_model = resolve_model(spec["model"]) if spec.get("model") else model
        agents[spec["name"]] = build(
            spec["system_prompt"],
            spec.get("tools", tools),
            sub_model,
            spec.get("middleware", ()),
            spec.get("interrupt_on"),
        )
    return SubAgentMiddleware(agents=agents, descriptions=descriptions)


def _summarizer(model: BaseChatModel) -> SummarizationMiddleware:
    return SummarizationMiddleware(
        model=model, trigger=("tokens", SUMMARIZE_AT_TOKENS), keep=("messages", KEEP_MESSAGES)
    )


def create_deep_agent(
    model: str | BaseChatModel | None = None,
    tools: Sequence[Any] | None = None,
    *,
    system_prompt: str | None = None,
    middleware: Sequence[Any] = (),
    subagents: Sequence[SubAgent | CompiledSubAgent] | None = None,
    backend: Any = None,
    store: BaseStore | None = None,
    checkpointer: Any = None,
    interrupt_on: dict[str, Any] | None = None,
    approve_writes: Sequence[str] | None = None,
    context_schema: type[Any] | None = None,
    name: str | None = None,
    memory_limits: bool = True,
) -> DeepAgent:
    """Create a deep agent: todo list, file tools, subagents, summarization, approvals.

    Example:
        >>> from langgraph.store.memory import InMemoryStore
        >>> from deepmemory.backends import CompositeBackend, StateBackend, StoreBackend
        >>> from deepmemory.testing import ScriptedChatModel
        >>> agent = create_deep_agent(
        ...     model=ScriptedChatModel(replies=[]),
        ...     store=InMemoryStore(),
        ...     backend=lambda rt: CompositeBackend(
        ...         default=StateBackend(rt), routes={"/memories/": StoreBackend(rt)}
        ...     ),
        ... )

    Args:
        model: a chat model, or an ``init_chat_model`` string ("openai:gpt-4.1"); by
            default ``DEEPMEMORY_MODEL`` or a provider whose API key is set.
        tools: extra tools for the agent (and the general-purpose subagent).
        system_prompt: instructions placed before the built-in ones.
        middleware: extra middleware, run after the built-in ones.
        subagents: subagents for the ``task`` tool, besides "general-purpose".
        backend: where files live: a backend, or a factory taking the tool runtime.
            Default: ``StateBackend()`` (per-thread files).
        store: the LangGraph store for ``StoreBackend`` routes.
        checkpointer: thread persistence; default: see the module docstring.
        interrupt_on: tool name -> ``True`` or an ``InterruptOnConfig``, to pause for
            human approval before those tools run.
        approve_writes: paths or prefixes (``"/memories/instructions.txt"``) whose
            writes, edits and deletes pause for approval, showing the proposed diff.
        context_schema: the run's context type (``rt.context`` in backend factories).
        name: the graph's name.
        memory_limits: persistent storage (store and filesystem backends, also as
            routes) that no ``LimitsBackend`` bounds gets its defaults: 1 MiB a file,
            100 MiB in all. ``False`` leaves it unbounded.
    """
    chat_model = resolve_model(model)
    tool_list = list(tools or [])
    if memory_limits and backend is not None:
        backend = _bounded(backend)
    fs = FilesystemMiddleware(backend=backend)
    stack: list[Any] = [
        UnansweredToolCallsMiddleware(),
        TodoListMiddleware(),
        fs,
        _build_subagents(
            subagents or [], model=chat_model, tools=tool_list, backend=fs.backend, store=store
        ),
        _summarizer(chat_model),
        *middleware,
    ]
    approvals = dict(approve_writes_config(approve_writes, fs.backend) if approve_writes else {})
    approvals.update(interrupt_on or {})  # explicit entries win
    if approvals:
        stack.append(HumanInTheLoopMiddleware(interrupt_on=approvals))
    prompt = f"{system_prompt}\n\n{BASE_PROMPT}" if system_prompt else BASE_PROMPT
    agent = create_agent(
        chat_model,
        tool_list,
        system_prompt=prompt,
        middleware=stack,
        context_schema=context_schema,
        checkpointer=checkpointer if checkpointer is not None else _default_checkpointer(store),
        store=store,
        name=name,
    )
    agent.__class__ = DeepAgent
    return agent  # type: ignore[return-value]  # same object, with DeepAgent's thread default


def _bounded(spec: Any) -> Any:
    """The backend spec with default limits on its persistent storage (see ``memory_limits``)."""
    if hasattr(spec, "bind"):
        return with_default_limits(spec)

    def factory(runtime: Any) -> Any:
        return with_default_limits(spec(runtime))

    return factory
