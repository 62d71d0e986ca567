from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agent.llm import OpenAICompatModel
from tests.fakes.model_server import ScriptedModel


@pytest.fixture
async def fake() -> AsyncIterator[ScriptedModel]:
    async with ScriptedModel() as server:
        yield server


@pytest.fixture
async def client(fake: ScriptedModel) -> AsyncIterator[OpenAICompatModel]:
    model = OpenAICompatModel(fake.url, retry_backoff=0.01, read_timeout=30)
    yield model
    await model.close()
