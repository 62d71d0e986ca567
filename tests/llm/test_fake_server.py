"""The scripted fake speaks llama-server's wire format (checked against the recordings and the
official SDK), and works from sync code too (it runs in its own thread)."""

from __future__ import annotations

import base64
import json
import math
import struct
from typing import Any

import aiohttp
import openai

from tests.fakes.model_server import Call, HttpError, ScriptedModel, Text, ToolCalls, embed

from .helpers import TOOLS, USER
from .recorded import load


async def raw_chunks(fake: ScriptedModel, body: dict[str, Any]) -> tuple[list[Any], str]:
    async with aiohttp.ClientSession() as s, s.post(fake.url + "/chat/completions", json=body) as r:
        text = await r.text()
    events = [line[len("data: ") :] for line in text.split("\n\n") if line]
    return [e if e == "[DONE]" else json.loads(e) for e in events], r.headers["Content-Type"]


def shape(value: Any) -> Any:
    """Keys and types, not values."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items() if k != "timings"}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


async def test_tool_call_stream_has_the_recorded_shape(fake: ScriptedModel) -> None:
    fake.script(ToolCalls([Call("get_time", '{ "tz" : "Yes," }')]))
    body = {
        **(load("39_prefill_eosbias_stream.txt").request or {}),
        "stream_options": {"include_usage": True},
    }
    got, content_type = await raw_chunks(fake, body)
    want = load("39_prefill_eosbias_stream.txt").chunks()
    assert content_type == "text/event-stream" and got[-1] == "[DONE]"
    assert [shape(c) for c in got[:3]] == [shape(c) for c in want[:3]]  # role, first call piece, next piece
    assert shape(got[-3]) == shape(want[-2])  # finish chunk ("timings" left out of the comparison)
    assert shape(got[-2]) == shape(want[-1])  # usage chunk
    first = got[1]["choices"][0]["delta"]["tool_calls"][0]
    assert len(first["id"]) == 32 and first["id"].isalnum()
    assert got[0]["id"].startswith("chatcmpl-") and got[-3]["choices"][0]["finish_reason"] == "tool_calls"


async def test_text_stream_has_the_recorded_shape(fake: ScriptedModel) -> None:
    fake.script(Text("Here! Asked"))
    got, _ = await raw_chunks(fake, load("11_chat_stream.txt").request or {})
    want = load("11_chat_stream.txt").chunks()
    assert [shape(c) for c in got[:2]] == [shape(c) for c in want[:2]]
    assert shape(got[-2]) == shape(want[-1]) and "usage" not in got[-2]  # no include_usage: no usage chunk


async def test_the_official_sdk_reads_the_fake(fake: ScriptedModel) -> None:
    fake.script(
        ToolCalls([Call("get_weather", {"city": "Paris"}), Call("get_time", {"tz": "CET"})]),
        Text("Hello there"),
    )
    sdk = openai.AsyncOpenAI(base_url=fake.url, api_key="x", max_retries=0)
    async with sdk:
        stream = await sdk.chat.completions.create(
            model="m", messages=USER, tools=TOOLS, stream=True, stream_options={"include_usage": True}
        )
        args: dict[int, str] = {}
        usage = None
        async for chunk in stream:
            usage = chunk.usage or usage
            for choice in chunk.choices:
                for call in choice.delta.tool_calls or []:
                    args[call.index] = args.get(call.index, "") + (
                        call.function and call.function.arguments or ""
                    )
        whole = await sdk.chat.completions.create(model="m", messages=USER)
    assert {i: json.loads(a) for i, a in args.items()} == {0: {"city": "Paris"}, 1: {"tz": "CET"}}
    assert usage is not None and usage.completion_tokens > 0
    assert whole.choices[0].message.content == "Hello there" and whole.choices[0].finish_reason == "stop"


def test_usable_from_sync_code_with_a_blocking_client() -> None:
    with ScriptedModel(default=Text("default answer")) as fake:
        sdk = openai.OpenAI(base_url=fake.url, api_key="x", max_retries=0)
        fake.script(HttpError(400, "Invalid tool_choice: foo"))
        try:
            sdk.chat.completions.create(model="m", messages=USER)
        except openai.BadRequestError as e:
            assert e.status_code == 400 and "Invalid tool_choice: foo" in str(e)
        else:
            raise AssertionError("expected a 400")
        answer = sdk.chat.completions.create(model="m", messages=USER)
        sdk.close()
    assert answer.choices[0].message.content == "default answer" and len(fake.requests) == 2


async def test_requests_are_validated_like_llama_server(fake: ScriptedModel) -> None:
    async with aiohttp.ClientSession() as s:
        for name in (
            "5x_err_bad_tool_choice.txt",
            "5x_err_missing_messages.txt",
            "5x_err_n2.txt",
            "5x_err_messages_string.txt",
            "5x_err_tool_missing_function.txt",
        ):
            rec = load(name)
            async with s.post(fake.url + "/chat/completions", json=rec.request) as r:
                assert r.status == rec.status, name
                got = await r.json()
            assert got == json.loads(rec.body) or (
                got["error"]["type"] == json.loads(rec.body)["error"]["type"]
            ), name
        async with s.get(fake.base_url + "/health") as r:
            assert await r.json() == {"status": "ok"}
        async with s.get(fake.url + "/models") as r:
            assert (await r.json())["data"][0]["id"] == fake.model_name
        async with s.get(fake.url + "/nope") as r:
            assert r.status == 404 and (await r.json()) == json.loads(load("61_not_found.txt").body)


async def test_embeddings_are_deterministic_bags_of_words(fake: ScriptedModel) -> None:
    async with aiohttp.ClientSession() as s:
        payload = {"model": "x", "input": ["the cat sat", "the cat sat down", "quantum chromodynamics"]}
        async with s.post(fake.url + "/embeddings", json=payload) as r:
            data = (await r.json())["data"]
        async with s.post(
            fake.url + "/embeddings", json={"model": "x", "input": "the cat sat", "encoding_format": "base64"}
        ) as r:
            b64 = (await r.json())["data"][0]["embedding"]
    a, b, c = (d["embedding"] for d in data)
    assert a == embed("the cat sat") and len(a) == 64
    assert math.isclose(sum(x * x for x in a), 1.0)
    assert sum(x * y for x, y in zip(a, b, strict=True)) > sum(x * y for x, y in zip(a, c, strict=True))
    assert list(struct.unpack("<64f", base64.b64decode(b64))) == [
        struct.unpack("<f", struct.pack("<f", x))[0] for x in a
    ]
    assert fake.embedding_requests[0]["input"][0] == "the cat sat"
