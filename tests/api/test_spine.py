"""Assistants, threads and messages through the official SDK against a real server."""

from __future__ import annotations

import concurrent.futures
import json

import httpx
import openai
import pytest

from tests.conftest import LiveServer


def test_health(spine: LiveServer) -> None:
    r = httpx.get(spine.url + "/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_assistant_crud(client: openai.OpenAI) -> None:
    tools = [
        {"type": "code_interpreter"},
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        },
    ]
    a = client.beta.assistants.create(
        model="gpt-4o", name="Tutor", instructions="Be nice.", tools=tools, metadata={"k": "v"}
    )
    assert a.id.startswith("asst_") and a.object == "assistant" and a.name == "Tutor"
    assert a.tools[1].type == "function" and a.tools[1].function.name == "get_weather"
    assert a.metadata == {"k": "v"} and a.temperature == 1.0 and a.response_format == "auto"
    got = client.beta.assistants.retrieve(a.id)
    assert got.model_dump() == a.model_dump()
    up = client.beta.assistants.update(a.id, name="Tutor 2", metadata={"k": "w"})
    assert up.name == "Tutor 2" and up.metadata == {"k": "w"} and up.instructions == "Be nice."
    assert any(x.id == a.id for x in client.beta.assistants.list(limit=100).data)
    d = client.beta.assistants.delete(a.id)
    assert d.deleted and d.id == a.id and d.object == "assistant.deleted"
    with pytest.raises(openai.NotFoundError) as err:
        client.beta.assistants.retrieve(a.id)
    assert err.value.body["message"] == f"No assistant found with id '{a.id}'."  # type: ignore[index]


def test_thread_with_messages_and_parts(client: openai.OpenAI) -> None:
    f = client.files.create(file=("data.csv", b"a,b\n1,2\n"), purpose="assistants")
    t = client.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": "Hello",
                "attachments": [{"file_id": f.id, "tools": [{"type": "code_interpreter"}]}],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Hi!"},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                ],
            },
        ],
        metadata={"user": "u1"},
    )
    assert t.object == "thread" and t.metadata == {"user": "u1"}
    msgs = client.beta.threads.messages.list(t.id, order="asc").data
    assert [m.role for m in msgs] == ["user", "assistant"]
    first, second = msgs
    assert first.content[0].type == "text" and first.content[0].text.value == "Hello"
    assert first.content[0].text.annotations == [] and first.status == "completed"
    assert first.attachments and first.attachments[0].file_id == f.id
    assert first.run_id is None and first.assistant_id is None and first.thread_id == t.id
    assert second.content[1].type == "image_url" and second.content[1].image_url.url == "https://x/y.png"
    t2 = client.beta.threads.update(t.id, metadata={"user": "u2"})
    assert t2.metadata == {"user": "u2"}
    assert client.beta.threads.retrieve(t.id).metadata == {"user": "u2"}


def test_message_crud(client: openai.OpenAI) -> None:
    t = client.beta.threads.create()
    m = client.beta.threads.messages.create(t.id, role="user", content="2+2?", metadata={"a": "b"})
    assert m.status == "completed" and m.completed_at is not None and m.metadata == {"a": "b"}
    assert client.beta.threads.messages.retrieve(m.id, thread_id=t.id).content[0].text.value == "2+2?"
    u = client.beta.threads.messages.update(m.id, thread_id=t.id, metadata={"a": "c"})
    assert u.metadata == {"a": "c"}
    assert client.beta.threads.messages.list(t.id, run_id="run_nope").data == []
    d = client.beta.threads.messages.delete(m.id, thread_id=t.id)
    assert d.deleted and d.object == "thread.message.deleted"
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.retrieve(m.id, thread_id=t.id)


def test_delete_thread_removes_messages(client: openai.OpenAI) -> None:
    t = client.beta.threads.create(messages=[{"role": "user", "content": "x"}])
    m = client.beta.threads.messages.list(t.id).data[0]
    assert client.beta.threads.delete(t.id).deleted
    with pytest.raises(openai.NotFoundError) as err:
        client.beta.threads.messages.retrieve(m.id, thread_id=t.id)
    assert t.id in str(err.value)
    t2 = client.beta.threads.create()
    with pytest.raises(openai.NotFoundError):  # the message is gone, not just hidden behind its thread
        client.beta.threads.messages.retrieve(m.id, thread_id=t2.id)


def test_pagination_walks_pages_without_gaps(client: openai.OpenAI) -> None:
    t = client.beta.threads.create()
    ids = [client.beta.threads.messages.create(t.id, role="user", content=str(i)).id for i in range(7)]
    walked = [m.id for m in client.beta.threads.messages.list(t.id, limit=2, order="asc")]
    assert walked == ids
    desc = [m.id for m in client.beta.threads.messages.list(t.id, limit=3)]
    assert desc == ids[::-1]
    page = client.beta.threads.messages.list(t.id, limit=3, order="asc")
    assert page.has_more and page.first_id == ids[0] and page.last_id == ids[2]
    after = client.beta.threads.messages.list(t.id, limit=3, order="asc", after=ids[2])
    assert [m.id for m in after.data] == ids[3:6]
    before = client.beta.threads.messages.list(t.id, limit=2, order="asc", before=ids[5])
    assert [m.id for m in before.data] == ids[3:5]
    last = client.beta.threads.messages.list(t.id, limit=10, order="asc", after=ids[4])
    assert [m.id for m in last.data] == ids[5:] and last.has_more is False


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        ({"model": "m", "metadata": {f"k{i}": "v" for i in range(17)}}, "metadata", "too many properties"),
        ({"model": "m", "metadata": {"k" * 65: "v"}}, "metadata", "longer than 64"),
        ({"model": "m", "metadata": {"k": "v" * 513}}, "metadata", "longer than 512"),
        ({"model": "m", "name": "n" * 257}, "name", "maximum length 256"),
        ({"model": "m", "description": "d" * 513}, "description", "maximum length 512"),
        ({"model": "m", "instructions": "i" * 256_001}, "instructions", "maximum length 256000"),
        ({"model": "m", "tools": [{"type": "code_interpreter"}] * 129}, "tools", "maximum length 128"),
        (
            {"model": "m", "tools": [{"type": "function", "function": {"name": "bad name!"}}]},
            "tools[0].function.name",
            "pattern",
        ),
        ({"model": "m", "tools": [{"type": "web_browser"}]}, "tools[0].type", "Invalid value: 'web_browser'"),
        ({"model": "m", "name": 42}, "name", "expected a string"),
        ({"model": "m", "temperature": "hot"}, "temperature", "expected a number"),
        ({"model": "m", "temperature": 3}, "temperature", "less than or equal to 2"),
        ({"name": "no model"}, "model", "Missing required parameter"),
        ({"model": "m", "bogus": 1}, "bogus", "Unrecognized request argument"),
    ],
)
def test_validation_errors(spine: LiveServer, body: dict, param: str, fragment: str) -> None:
    r = httpx.post(spine.url + "/v1/assistants", json=body, headers={"Authorization": "Bearer sk-test"})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["type"] == "invalid_request_error" and err["param"] == param and fragment in err["message"]
    assert "Traceback" not in r.text


def test_sdk_raises_bad_request_with_param(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.assistants.create(model="m", name="x" * 300)
    assert err.value.param == "name" and err.value.status_code == 400


def test_transport_errors_in_envelope(spine: LiveServer) -> None:
    auth = {"Authorization": "Bearer sk-test"}
    bad = httpx.post(spine.url + "/v1/assistants", content=b"{not json", headers=auth)
    assert bad.status_code == 400 and "parse the JSON" in bad.json()["error"]["message"]
    route = httpx.get(spine.url + "/v1/nothing-here", headers=auth)
    assert route.status_code == 404 and route.json()["error"]["type"] == "invalid_request_error"
    method = httpx.put(spine.url + "/v1/assistants", headers=auth)
    assert (
        method.status_code == 405
        and method.json()["error"]["message"] == "Method PUT is not allowed on /v1/assistants."
    )
    big = httpx.post(
        spine.url + "/v1/threads", content=b'{"metadata": {"a": "' + b"x" * 2_000_000 + b'"}}', headers=auth
    )
    assert big.status_code == 413 and big.json()["error"]["message"]
    for r in (bad, route, method, big):
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}


def test_unknown_ids_are_404_naming_the_id(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="thread_nope"):
        client.beta.threads.retrieve("thread_nope")
    with pytest.raises(openai.NotFoundError, match="thread_nope"):
        client.beta.threads.messages.create("thread_nope", role="user", content="x")
    t = client.beta.threads.create()
    with pytest.raises(openai.NotFoundError, match="msg_nope"):
        client.beta.threads.messages.retrieve("msg_nope", thread_id=t.id)
    with pytest.raises(openai.NotFoundError, match="asst_nope"):
        client.beta.assistants.delete("asst_nope")


def test_auth_required_and_objects_isolated_by_key(spine: LiveServer) -> None:
    with pytest.raises(openai.AuthenticationError):
        spine.client(key="sk-wrong").beta.assistants.list()
    r = httpx.get(spine.url + "/v1/assistants")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    mine, theirs = spine.client("sk-test"), spine.client("sk-other")
    a = mine.beta.assistants.create(model="m", name="private")
    t = mine.beta.threads.create(messages=[{"role": "user", "content": "secret"}])
    with pytest.raises(openai.NotFoundError):
        theirs.beta.assistants.retrieve(a.id)
    with pytest.raises(openai.NotFoundError):
        theirs.beta.threads.messages.list(t.id)
    with pytest.raises(openai.NotFoundError):
        theirs.beta.assistants.delete(a.id)
    assert a.id not in [x.id for x in theirs.beta.assistants.list(limit=100)]
    assert mine.beta.assistants.retrieve(a.id).name == "private"


def test_concurrent_message_creates_all_land_in_order(client: openai.OpenAI) -> None:
    t = client.beta.threads.create()

    def post(i: int) -> tuple[str, int]:
        return client.beta.threads.messages.create(t.id, role="user", content=str(i)).id, i

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        created = list(pool.map(post, range(50)))
    listed = list(client.beta.threads.messages.list(t.id, order="asc", limit=100))
    assert len(listed) == 50 and {m.id for m in listed} == {c[0] for c in created}
    # listing order is the order the server accepted them, stable across reads
    again = [m.id for m in client.beta.threads.messages.list(t.id, order="asc", limit=100).data]
    assert [m.id for m in listed] == again
    assert json.loads(json.dumps([m.created_at for m in listed])) == sorted(m.created_at for m in listed)
