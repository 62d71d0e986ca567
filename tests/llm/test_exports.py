import agent.llm


def test_public_surface() -> None:
    assert sorted(agent.llm.__all__) == [
        "ChatEvent", "ChatModel", "ChatRequest", "Completion", "ContextOverflowError", "ModelError",
        "OpenAICompatModel", "StreamNormalizer", "TextDelta", "ToolCall", "ToolCallDelta", "ToolCallStart",
        "Usage", "new_call_id",
    ]  # fmt: skip
    assert all(hasattr(agent.llm, name) for name in agent.llm.__all__)
    assert issubclass(agent.llm.ContextOverflowError, agent.llm.ModelError)
