"""The model-client layer: one `ChatModel` seam, implemented over OpenAI-compatible HTTP servers.

from agent.llm import ChatRequest, OpenAICompatModel

model = OpenAICompatModel("http://127.0.0.1:8080/v1", aliases={"*": "local"})
async for event in model.stream(ChatRequest("gpt-4o", [{"role": "user", "content": "hi"}])):
    ...  # TextDelta | ToolCallStart | ToolCallDelta, then exactly one Completion
await model.close()
"""

from .client import OpenAICompatModel
from .normalize import StreamNormalizer, new_call_id
from .types import (
    ChatEvent,
    ChatModel,
    ChatRequest,
    Completion,
    ContextOverflowError,
    ModelError,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallStart,
    Usage,
)

__all__ = [
    "ChatEvent",
    "ChatModel",
    "ChatRequest",
    "Completion",
    "ContextOverflowError",
    "ModelError",
    "OpenAICompatModel",
    "StreamNormalizer",
    "TextDelta",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallStart",
    "Usage",
    "new_call_id",
]
