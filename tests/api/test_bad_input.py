"""No 5xx from any input: each hostile request gets its 4xx, the error envelope and a clear message."""

from __future__ import annotations

import io
import json
import logging
import select
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import httpx
import openai
import pytest

from agent.api import expiry
from agent.app_keys import STORE
from agent.store import Store
from tests.conftest import LiveServer, LoopThread, make_settings, serve

AUTH = {"Authorization": "Bearer sk-test"}


def post(server: LiveServer, path: str, body: Any, **kw: Any) -> httpx.Response:
    return httpx.post(server.url + path, json=body, headers=AUTH, timeout=60, **kw)


def envelope(r: httpx.Response, status: int, words: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and "Traceback" not in r.text
    assert words in err["message"], err["message"]
    return err


@pytest.fixture(scope="module")
def ids(spine: LiveServer) -> dict[str, str]:
    c = spine.client()
    return {
        "assistant": c.beta.assistants.create(model="m").id,
        "vector_store": c.vector_stores.create(name="kb").id,
    }


# --- item 3: bodies that used to crash ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("choice", "param", "words"),
    [
        ({"type": "function", "function": "abc"}, "tool_choice.function", "expected an object"),
        ({"type": ["x"]}, "tool_choice.type", "Input should be"),
        ({"function": {"name": {}}}, "tool_choice.function.name", "expected a string"),
        ({"type": "function"}, None, "Missing required parameter: 'tool_choice.function'"),
        ("sometimes", "tool_choice", "Input should be"),
    ],
)
def test_bad_tool_choice(spine: LiveServer, ids: dict[str, str], choice: Any, param: Any, words: str) -> None:
    r = post(spine, "/v1/threads/runs", {"assistant_id": ids["assistant"], "tool_choice": choice})
    err = envelope(r, 400, words)
    assert param is None or err["param"] == param


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        (
            {"query": "x", "ranking_options": {"score_threshold": "AAA"}},
            "ranking_options.score_threshold",
            "expected a number",
        ),
        ({"query": "x", "ranking_options": {"ranker": "best"}}, "ranking_options.ranker", "Input should be"),
        ({"query": "x", "filters": {"type": {}}}, "filters", "filter 'type' must be a string"),
        ({"query": "x", "filters": {"type": "eq", "key": "k"}}, "filters", "needs a 'value'"),
        ({"query": 5}, "query", "expected a string"),
    ],
)
def test_bad_search(spine: LiveServer, ids: dict[str, str], body: Any, param: str, words: str) -> None:
    err = envelope(post(spine, f"/v1/vector_stores/{ids['vector_store']}/search", body), 400, words)
    assert err["param"] == param


def _multipart(boundary: str, head: str, tail: str = "") -> bytes:
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n'
        f"--{boundary}\r\n{head}\r\n\r\nhello\r\n{tail}"
    ).encode()


FILE_HEAD = 'Content-Disposition: form-data; name="file"; filename="a.txt"'


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", _multipart("b", FILE_HEAD, "--b--\r\n")),  # no boundary parameter
        (
            "multipart/form-data; boundary=" + "b" * 200,
            _multipart("b" * 200, FILE_HEAD, "--" + "b" * 200 + "--\r\n"),
        ),
        ("multipart/form-data; boundary=b", _multipart("b", FILE_HEAD)[:-9]),  # truncated
        (
            "multipart/form-data; boundary=b",
            _multipart(
                "b", f'Content-Disposition: form-data; name="file"; filename="{"n" * 10_000}"', "--b--\r\n"
            ),
        ),
        ("multipart/form-data; boundary=b", _multipart("b", "this is not a header", "--b--\r\n")),
        ("multipart/form-data; boundary=b", b"--b\r\n\xff\xfe\x00\r\n\r\n--b--\r\n"),
    ],
    ids=["no-boundary", "long-boundary", "truncated", "long-filename", "bad-part-header", "binary-header"],
)
def test_malformed_multipart_is_400(spine: LiveServer, content_type: str, body: bytes) -> None:
    r = httpx.post(
        spine.url + "/v1/files", content=body, headers={**AUTH, "Content-Type": content_type}, timeout=60
    )
    assert 400 <= r.status_code < 500, r.text
    assert set(r.json()["error"]) == {"message", "type", "param", "code"} and "Traceback" not in r.text


def test_non_ascii_bearer_key_is_401(spine: LiveServer) -> None:
    for key in ("Bearer sk-tést".encode(), b"Bearer \xff\xfe", "Bearer ключ".encode()):
        r = httpx.get(spine.url + "/v1/assistants", headers={"Authorization": key})
        envelope(r, 401, "Incorrect API key")


# --- item 4: file names --------------------------------------------------------------------------------
def upload_named(server: LiveServer, disposition: str) -> httpx.Response:
    body = (
        b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n'
        b'--b\r\nContent-Disposition: form-data; name="file"; ' + disposition.encode() + b"\r\n"
        b"\r\npayload\r\n--b--\r\n"
    )
    headers = {**AUTH, "Content-Type": "multipart/form-data; boundary=b"}
    return httpx.post(server.url + "/v1/files", content=body, headers=headers)


@pytest.mark.parametrize(
    ("disposition", "kept"),
    [
        ("filename*=UTF-8''evil%0D%0ASet-Cookie%3A%20x%3D1.txt", "evilSet-Cookie: x=1.txt"),
        ("filename*=UTF-8''nul%00byte.txt", "nulbyte.txt"),
        ('filename="quote\\"d.txt"', 'quote"d.txt'),
        ("filename*=UTF-8''..%2F..%2Fetc%2Fpasswd", "passwd"),
        ("filename*=UTF-8''dir%5Cwin.ini", "win.ini"),
        ("filename*=UTF-8''r%C3%A9sum%C3%A9%20%F0%9F%93%84.pdf", "résumé 📄.pdf"),
        ("filename*=UTF-8''%E2%80%AEtxt.exe", "txt.exe"),
        ("filename*=UTF-8''" + "x" * 300 + ".csv", "x" * 251 + ".csv"),
        ("filename*=UTF-8''%0D%0A", "upload"),
    ],
)
def test_upload_names_are_sanitised_and_downloadable(spine: LiveServer, disposition: str, kept: str) -> None:
    r = upload_named(spine, disposition)
    assert r.status_code == 200, r.text
    assert r.json()["filename"] == kept
    got = httpx.get(spine.url + f"/v1/files/{r.json()['id']}/content", headers=AUTH)
    assert got.status_code == 200 and got.content == b"payload"
    header = got.headers["content-disposition"]
    assert header.startswith('attachment; filename="') and "filename*=UTF-8''" in header
    assert all(32 <= ord(ch) < 127 for ch in header)
    assert unquote(header.split("filename*=UTF-8''", 1)[1]) == kept


def test_sdk_upload_name_round_trips(client: openai.OpenAI) -> None:
    f = client.files.create(file=("notes 1.txt", io.BytesIO(b"x")), purpose="assistants")
    assert f.filename == "notes 1.txt"


# --- item 5: NaN and Infinity ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/v1/assistants", '{"model": "m", "temperature": NaN}'),
        (
            "/v1/assistants",
            '{"model": "m", "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"maximum": Infinity}}}}',
        ),
        (
            "/v1/vector_stores/{vs}/search",
            '{"query": "x", "filters": {"type": "gt", "key": "n", "value": -Infinity}}',
        ),
        ("/v1/vector_stores/{vs}/files", '{"file_id": "file-x", "attributes": {"n": NaN}}'),
    ],
)
def test_nan_and_infinity_are_400(spine: LiveServer, ids: dict[str, str], path: str, raw: str) -> None:
    r = httpx.post(
        spine.url + path.format(vs=ids["vector_store"]),
        content=raw.encode(),
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert r.status_code == 400, r.text
    assert "NaN" in r.json()["error"]["message"] or "finite" in r.json()["error"]["message"]


def test_nan_inside_a_string_is_just_text(client: openai.OpenAI) -> None:
    a = client.beta.assistants.create(model="m", instructions="NaN and Infinity are words here.")
    assert a.instructions == "NaN and Infinity are words here."


# --- item 6: a huge hostile body ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def roomy(loop_thread: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A service with the default 32 MiB body limit."""
    yield from serve(loop_thread, make_settings(tmp_path_factory.mktemp("roomy"), api_keys="sk-test"))


def test_huge_body_of_unknown_keys_is_400_and_the_service_keeps_answering(roomy: LiveServer) -> None:
    raw = json.dumps({"model": "m", **{f"k{i}": 1 for i in range(1_000_000)}}).encode()
    assert len(raw) < roomy.settings.max_body_bytes
    head = (
        "POST /v1/assistants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-test\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(raw)}\r\n\r\n"
    )
    answered = 0
    with socket.create_connection(("127.0.0.1", roomy.settings.port)) as sock, httpx.Client() as h:
        sock.sendall(head.encode() + raw)  # returns once the server has read nearly all of it
        sock.settimeout(120)
        # until the answer to the huge body arrives, the event loop keeps answering /health
        while not select.select([sock], [], [], 0)[0] and answered < 100_000:
            assert h.get(roomy.url + "/health", timeout=60).status_code == 200
            answered += 1
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    status, _, rest = reply.partition(b"\r\n")
    assert b" 400 " in status, status
    err = json.loads(rest.split(b"\r\n\r\n", 1)[1])["error"]
    assert err["message"] == "Unrecognized request argument supplied: k0"
    assert answered >= 20, answered


# --- item 7: the smaller ones ------------------------------------------------------------------------------
def test_files_list_limit_up_to_10000(spine: LiveServer, client: openai.OpenAI) -> None:
    client.files.create(file=("a.txt", io.BytesIO(b"a")), purpose="assistants")
    assert httpx.get(spine.url + "/v1/files?limit=101", headers=AUTH).status_code == 200
    assert httpx.get(spine.url + "/v1/files?limit=10000", headers=AUTH).status_code == 200
    envelope(httpx.get(spine.url + "/v1/files?limit=10001", headers=AUTH), 400, "Expected a value <= 10000")
    envelope(httpx.get(spine.url + "/v1/assistants?limit=101", headers=AUTH), 400, "Expected a value <= 100")
    envelope(httpx.get(spine.url + "/v1/assistants?limit=abc", headers=AUTH), 400, "limit")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m", "response_format": {"anything": 1}}, "response_format"),
        ({"model": "m", "response_format": {"type": "json_schema"}}, "response_format"),
        ({"model": "m", "response_format": "json"}, "response_format"),
        (
            {
                "model": "m",
                "tools": [{"type": "file_search", "file_search": {"ranking_options": {"ranker": "x"}}}],
            },
            "tools[0].file_search.ranking_options.ranker",
        ),
    ],
)
def test_loose_values_are_refused(spine: LiveServer, body: Any, param: str) -> None:
    err = envelope(post(spine, "/v1/assistants", body), 400, "")
    assert err["param"] and err["param"].startswith(param)


def test_response_formats_round_trip(client: openai.OpenAI) -> None:
    schema = {"name": "answer", "schema": {"type": "object"}, "strict": True}
    a = client.beta.assistants.create(
        model="m", response_format={"type": "json_schema", "json_schema": schema}
    )
    assert a.response_format.type == "json_schema" and a.response_format.json_schema.schema_ == {
        "type": "object"
    }  # type: ignore[union-attr]
    assert (
        client.beta.assistants.create(model="m", response_format={"type": "json_object"}).response_format.type
        == "json_object"
    )  # type: ignore[union-attr]


def test_empty_image_url_is_400(spine: LiveServer) -> None:
    t = spine.client().beta.threads.create()
    body = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": ""}}]}
    err = envelope(post(spine, f"/v1/threads/{t.id}/messages", body), 400, "")
    assert err["param"] == "content[0].image_url.url"


def test_json_body_needs_a_json_content_type(spine: LiveServer) -> None:
    r = httpx.post(
        spine.url + "/v1/assistants",
        content=b'{"model": "m"}',
        headers={**AUTH, "Content-Type": "text/plain"},
    )
    envelope(r, 400, "Unsupported content type: 'text/plain'")


def test_step_of_another_run_is_the_hosted_404(sdk: openai.OpenAI) -> None:
    a = sdk.beta.assistants.create(model="m").id
    t = sdk.beta.threads.create(messages=[{"role": "user", "content": "x"}]).id
    first = sdk.beta.threads.runs.create_and_poll(thread_id=t, assistant_id=a)
    second = sdk.beta.threads.runs.create_and_poll(thread_id=t, assistant_id=a)
    step = sdk.beta.threads.runs.steps.list(first.id, thread_id=t).data[0]
    with pytest.raises(openai.NotFoundError) as err:
        sdk.beta.threads.runs.steps.retrieve(step.id, thread_id=t, run_id=second.id)
    assert err.value.message.endswith(f"No run step found with id '{step.id}'.")


def test_client_hanging_up_mid_body_is_not_an_error(
    spine: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    head = (
        "POST /v1/assistants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-test\r\n"
        "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", spine.settings.port)) as sock:
        sock.sendall(head.encode() + b'{"model": "m", "instructions": "')

    def logged() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "POST /v1/assistants 499" in r.getMessage()]

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not logged():
        threading.Event().wait(0.05)  # poll for the server's log line, bounded by the deadline
    assert logged() and logged()[0].levelno == logging.INFO  # counted as the client's 499
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [
        r.getMessage() for r in caplog.records
    ]


# --- expires_after ------------------------------------------------------------------------------------------
def store_of(spine: LiveServer) -> Store:
    return spine.runner.app[STORE]  # type: ignore[union-attr]


def _age(spine: LiveServer, kind: str, object_id: str) -> None:
    """Move an object's expires_at into the past, as if its time had run out (through the store, so on
    either backend)."""
    store = store_of(spine)

    async def age() -> None:
        who = await store.owner_of(kind, object_id)
        assert who is not None
        obj = await store.get(kind, object_id, who)
        assert obj is not None
        obj["expires_at"] = 1
        await store.update(kind, obj, who)

    spine.loop.run(age())  # type: ignore[union-attr]


def test_expired_files_and_vector_stores_are_gone(spine: LiveServer, client: openai.OpenAI) -> None:
    f = client.files.create(
        file=("old.txt", io.BytesIO(b"old")),
        purpose="assistants",
        expires_after={"anchor": "created_at", "seconds": 3600},
    )
    assert f.expires_at and f.expires_at >= f.created_at + 3600
    vs = client.vector_stores.create(name="old", expires_after={"anchor": "last_active_at", "days": 1})
    assert vs.expires_at and vs.expires_at >= vs.last_active_at + 86400  # type: ignore[operator]
    _age(spine, "file", f.id)
    _age(spine, "vector_store", vs.id)
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(f.id)
    with pytest.raises(openai.NotFoundError):
        client.files.content(f.id)
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve(vs.id)
    assert f.id not in {x.id for x in client.files.list()}
    assert vs.id not in {x.id for x in client.vector_stores.list(limit=100)}
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.create(
            model="m", tool_resources={"file_search": {"vector_store_ids": [vs.id]}}
        )
    assert spine.loop.run(expiry.sweep(spine.runner.app)) >= 2  # type: ignore[union-attr]
    assert not spine.loop.run(store_of(spine).blobs.exists(f.id))  # type: ignore[union-attr]


@pytest.mark.parametrize("seconds", ["59", "2592001", "soon", "-5"])
def test_file_expires_after_is_checked(client: openai.OpenAI, seconds: str) -> None:
    with pytest.raises(openai.BadRequestError, match="expires_after"):
        client.files.create(
            file=("a.txt", io.BytesIO(b"a")),
            purpose="assistants",
            extra_body={"expires_after[anchor]": "created_at", "expires_after[seconds]": seconds},
        )
