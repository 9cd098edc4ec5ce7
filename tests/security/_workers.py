"""Worker processes for the crash and concurrency tests (run as ``python -m``)."""

from __future__ import annotations

import sys
import uuid

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from deepmemory import create_deep_agent
from deepmemory.backends import CompositeBackend, StateBackend, StoreBackend
from deepmemory.stores import PostgresStore, SQLiteStore
from deepmemory.testing import ScriptedChatModel, calls, tool_call


def open_store(where: str):
    return PostgresStore(connection_string=where) if "://" in where else SQLiteStore(where)


def crash_loop(where: str, namespace: str) -> None:
    """Write and edit memory files forever, printing each acknowledged operation."""
    backend = StoreBackend(store=open_store(where), namespace=("crash", namespace))
    backend.write("/log.txt", "<END>")
    print("READY", flush=True)
    i = 0
    while True:
        i += 1
        if backend.write(f"/w/{i}.txt", f"value {i}\n").error is None:
            print(f"W {i}", flush=True)
        if backend.edit("/log.txt", "<END>", f"e{i}\n<END>").error is None:
            print(f"E {i}", flush=True)


def edit_agent(where: str, namespace: str, target: str, worker: str, count: int) -> None:
    """An agent whose model appends ``count`` lines to ``target`` with edit_file."""
    done = 0

    def policy(messages: list[BaseMessage]) -> AIMessage:
        nonlocal done
        if done == count:
            return AIMessage("finished")
        done += 1
        return calls(
            tool_call(
                "edit_file",
                file_path=target,
                old_string="<END>",
                new_string=f"{worker}-{done}\n<END>",
            )
        )

    store = open_store(where)
    agent = create_deep_agent(
        model=ScriptedChatModel(replies=policy),
        store=store,
        backend=CompositeBackend(
            default=StateBackend(),
            routes={"/memories/": StoreBackend(namespace=("concurrency", namespace))},
        ),
    )
    result = agent.invoke(
        {"messages": [{"role": "user", "content": "append"}]},
        {"configurable": {"thread_id": str(uuid.uuid4())}, "recursion_limit": 10 * count + 20},
    )
    for message in result["messages"]:
        if isinstance(message, ToolMessage):
            print(message.text.replace("\n", " "), flush=True)
    store.close()


if __name__ == "__main__":
    if sys.argv[1] == "crash":
        crash_loop(sys.argv[2], sys.argv[3])
    else:
        edit_agent(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))
