"""The Files API as the SDK drives it: multipart upload, list, retrieve, content, delete, limits."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import LiveServer
from tests.process import ServerProcess


def test_upload_list_content_delete(client: openai.OpenAI) -> None:
    data = bytes(range(256)) * 1000
    f = client.files.create(file=("blob.bin", io.BytesIO(data)), purpose="assistants")
    assert f.id.startswith("file-") and f.bytes == len(data) and f.filename == "blob.bin"
    assert f.purpose == "assistants" and f.status == "processed" and f.object == "file"
    assert client.files.retrieve(f.id).model_dump() == f.model_dump()
    assert client.files.content(f.id).read() == data
    v = client.files.create(file=("pic.png", io.BytesIO(b"\x89PNG fake")), purpose="vision")
    assert [x.id for x in client.files.list(purpose="vision")] == [v.id]
    assert {f.id, v.id} <= {x.id for x in client.files.list()}
    d = client.files.delete(f.id)
    assert d.deleted and d.object == "file" and d.id == f.id
    with pytest.raises(openai.NotFoundError, match=f"No such File object: {f.id}"):
        client.files.retrieve(f.id)
    with pytest.raises(openai.NotFoundError):
        client.files.content(f.id)


def test_upload_validation_and_isolation(spine: LiveServer, client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="purpose"):
        client.files.create(file=("a.txt", io.BytesIO(b"x")), purpose="nonsense")  # type: ignore[arg-type]
    f = client.files.create(file=("a.txt", io.BytesIO(b"mine")), purpose="assistants")
    other = spine.client("sk-other")
    with pytest.raises(openai.NotFoundError):
        other.files.content(f.id)
    assert f.id not in {x.id for x in other.files.list()}
    r = httpx.post(
        spine.url + "/v1/files", json={"purpose": "assistants"}, headers={"Authorization": "Bearer sk-test"}
    )
    assert r.status_code == 400 and r.json()["error"]["message"]


def test_oversized_upload_is_413_and_leaves_nothing(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, AGENT_MAX_FILE_BYTES="100000", AGENT_SANDBOX_ENABLED="false").start()
    try:
        c = server.client()
        with pytest.raises(openai.APIStatusError) as err:
            c.files.create(file=("big.bin", io.BytesIO(b"x" * 300_000)), purpose="assistants")
        assert err.value.status_code == 413
        ok = c.files.create(file=("small.bin", io.BytesIO(b"y" * 1000)), purpose="assistants")
        assert [x.id for x in c.files.list()] == [ok.id]
        assert sorted(p.name for p in (tmp_path / "files").iterdir()) == sorted(["tmp", ok.id])
        assert list((tmp_path / "files" / "tmp").iterdir()) == []
        server.kill9()
        server.start()
        assert server.client().files.content(ok.id).read() == b"y" * 1000
    finally:
        server.stop()


def test_server_killed_mid_upload_serves_no_half_file(tmp_path: Path) -> None:
    import socket

    server = ServerProcess(tmp_path, AGENT_SANDBOX_ENABLED="false").start()
    try:
        boundary = "XyZ"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="half.txt"\r\n'
            f"Content-Type: text/plain\r\n\r\n"
        ).encode()
        body_len = len(head) + 1_000_000
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.sendall(
            f"POST /v1/files HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary={boundary}"
            f"\r\nContent-Length: {body_len}\r\n\r\n".encode()
            + head
            + b"z" * 200_000
        )
        tmp_dir = tmp_path / "files" / "tmp"
        while not any(p.stat().st_size > 0 for p in tmp_dir.iterdir()):  # the upload is being written
            pass
        server.kill9()
        sock.close()
        server.start()
        assert server.client().files.list().data == []
        assert list(tmp_dir.iterdir()) == []
    finally:
        server.stop()
