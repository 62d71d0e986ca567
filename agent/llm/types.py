"""The chat-model seam: request, streamed events, errors and the `ChatModel` protocol.

Errors::

    ModelError                 infrastructure / backend failure (code "server_error" | "rate_limit_exceeded")
    └── ContextOverflowError   the backend refused the prompt as longer than its context window

A model that misbehaves (no call when one was required, invalid JSON arguments) is *not* an error here:
it shows up in the `Completion` (no calls, or `ToolCall.error` set) and the engine decides.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class ChatRequest:
    model: str
    messages: list[dict[str, Any]]
    """OpenAI chat format: system / user / assistant (optionally with tool_calls) / tool."""
    tools: list[dict[str, Any]] | None = None
    """[{"type": "function", "function": {"name", "description", "parameters"}}]"""
    tool_choice: str | dict[str, Any] | None = None
    """"none" | "auto" | "required" | {"type": "function", "function": {"name": …}}"""
    parallel_tool_calls: bool = True
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    response_format: dict[str, Any] | None = None
    """{"type": "json_object"} | {"type": "json_schema", "json_schema": {…}}"""


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.total_tokens + other.total_tokens,
        )


@dataclass
class TextDelta:
    text: str


@dataclass
class ToolCallStart:
    index: int
    id: str
    """Always our own id: "call_" + 24 alphanumerics (backend ids are never passed through)."""
    name: str


@dataclass
class ToolCallDelta:
    index: int
    arguments: str
    """A fragment of the arguments JSON text, as streamed."""


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str
    """JSON object text; repaired when the model's text was unambiguously fixable."""
    error: str | None = None
    """Why the call is unusable (arguments not a JSON object); the engine feeds it back to the model."""


@dataclass
class Completion:
    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str = "stop"
    """"stop" | "tool_calls" | "length"."""
    usage: Usage | None = None


ChatEvent = TextDelta | ToolCallStart | ToolCallDelta | Completion
"""A stream always ends with exactly one `Completion`; for each tool call `ToolCallStart` comes once,
then its `ToolCallDelta`s, and call i is finished before call i+1 starts. The `Completion` is
authoritative: its `ToolCall.arguments` may be repaired beyond the concatenated deltas."""


class ModelError(Exception):
    """The model server failed or could not be reached (not the model's fault, not the user's)."""

    def __init__(self, message: str, code: str = "server_error") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ContextOverflowError(ModelError):
    """The prompt does not fit the backend's context window (the backend's message is kept)."""


class ChatModel(Protocol):
    def stream(self, request: ChatRequest) -> AsyncIterator[ChatEvent]: ...

    async def close(self) -> None: ...
