"""Claude's memory tool over any deepmemory backend (extra ``deepmemory[anthropic]``).

* :class:`MemoryTool` / :class:`AsyncMemoryTool`: the Anthropic SDK's memory tool
  classes (``BetaAbstractMemoryTool`` and its async twin) with ``/memories`` kept in a
  deepmemory backend, answering every command as the SDK's reference implementation
  does (``_tools``).
* :class:`ClaudeMemoryMiddleware`: the same tool in LangChain agents, bound to Claude
  as its native ``memory_20250818`` tool and executed on the agent's backend, under
  its approvals and policies (``_middleware``).

The commands themselves are written once, as generators of backend calls
(``_commands``), and driven by sync or async backend methods.
"""

from deepmemory.integrations.anthropic._middleware import (
    MEMORY_PROMPT,
    MEMORY_TOOL_SPEC,
    ClaudeMemoryMiddleware,
    build_memory_tool,
)
from deepmemory.integrations.anthropic._tools import AsyncMemoryTool, MemoryTool

__all__ = [
    "MEMORY_PROMPT",
    "MEMORY_TOOL_SPEC",
    "AsyncMemoryTool",
    "ClaudeMemoryMiddleware",
    "MemoryTool",
    "build_memory_tool",
]
