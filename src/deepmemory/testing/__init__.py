"""Testing aids shipped with the package: a scripted chat model and the conformance suite."""

from deepmemory.testing.scripted import ScriptedChatModel, calls, tool_call

__all__ = ["ScriptedChatModel", "calls", "tool_call"]
