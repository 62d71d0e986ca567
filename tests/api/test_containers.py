"""The Containers API through the official SDK: containers and their files, per key, and expiry."""

from __future__ import annotations

import io
from collections.abc import Iterator

import openai
import pytest

from agent.app_keys import STORE
from agent.domain import now
from tests.conftest import LiveServer, LoopThread, make_settings, serve


def backdate(server: LiveServer, container_id: str, minutes: int, key: str | None = "sk-test") -> None:
    """Make a container look idle for ``minutes`` (its last activity moved into the past)."""
    from agent.api.common import owner_of_key

    assert server.runner is not None
    store = server.runner.app[STORE]
    who = owner_of_key(key)

    async def move() -> None:
        obj = await store.get("container", container_id, who)
        assert obj is not None
        obj["last_active_at"] = now() - minutes * 60
        await store.update("container", obj, who)

    server.loop.run(move())


def test_container_lifecycle_and_files(spine: LiveServer, client: openai.OpenAI) -> None:
    data = client.files.create(file=("data.csv", io.BytesIO(b"a,b\n1,2\n")), purpose="assistants")
    c = client.containers.create(
        name="analysis", expires_after={"anchor": "last_active_at", "minutes": 5}, file_ids=[data.id]
    )
    assert c.id.startswith("cntr_") and c.object == "container" and c.status == "running"
    assert c.expires_after and c.expires_after.minutes == 5 and c.expires_after.anchor == "last_active_at"
    assert c.memory_limit == "1g" and c.last_active_at == c.created_at
    assert client.containers.retrieve(c.id).name == "analysis"

    listed = client.containers.files.list(c.id).data
    assert [(f.path, f.source, f.bytes) for f in listed] == [("/mnt/data/data.csv", "user", 8)]
    up = client.containers.files.create(c.id, file=("notes.txt", io.BytesIO(b"hello")))
    assert up.id.startswith("cfile_") and up.path == "/mnt/data/notes.txt" and up.container_id == c.id
    copied = client.containers.files.create(c.id, file_id=data.id)  # same path: replaced, same id
    assert copied.id == listed[0].id
    assert client.containers.files.content.retrieve(up.id, container_id=c.id).read() == b"hello"
    assert client.containers.files.retrieve(up.id, container_id=c.id).bytes == 5
    evil = client.containers.files.create(c.id, file=("../../etc/evil.txt", io.BytesIO(b"x")))
    assert evil.path == "/mnt/data/evil.txt"  # a name, never a path the client (or the sandbox) chooses
    client.containers.files.delete(evil.id, container_id=c.id)
    assert len(client.containers.files.list(c.id).data) == 2

    client.containers.files.delete(up.id, container_id=c.id)
    with pytest.raises(openai.NotFoundError):
        client.containers.files.retrieve(up.id, container_id=c.id)
    client.containers.delete(c.id)
    with pytest.raises(openai.NotFoundError):
        client.containers.retrieve(c.id)
    with pytest.raises(openai.NotFoundError):
        client.containers.files.list(c.id)


def test_list_pages_with_a_cursor(client: openai.OpenAI) -> None:
    made = [client.containers.create(name=f"page-{i}").id for i in range(3)]
    first = client.containers.list(limit=2, order="asc", after=made[0])
    assert [c.id for c in first.data] == made[1:3]
    seen = [c.id for c in client.containers.list(limit=1)]  # auto-paging follows `after`
    assert all(m in seen for m in made)
    named = client.containers.list(name="page-1").data
    assert [c.id for c in named] == [made[1]]


def test_containers_and_their_files_belong_to_their_key(spine: LiveServer, client: openai.OpenAI) -> None:
    other = spine.client("sk-other")
    mine = client.containers.create(name="mine")
    f = client.containers.files.create(mine.id, file=("secret.txt", io.BytesIO(b"s3cret")))
    for call in (
        lambda: other.containers.retrieve(mine.id),
        lambda: other.containers.delete(mine.id),
        lambda: other.containers.files.list(mine.id),
        lambda: other.containers.files.content.retrieve(f.id, container_id=mine.id),
        lambda: other.containers.files.create(mine.id, file=("x.txt", io.BytesIO(b"x"))),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    assert mine.id not in [c.id for c in other.containers.list()]
    their_file = other.files.create(file=("theirs.txt", io.BytesIO(b"t")), purpose="assistants")
    with pytest.raises(openai.NotFoundError):  # a file id of another key is not found, nothing is written
        client.containers.files.create(mine.id, file_id=their_file.id)
    with pytest.raises(openai.NotFoundError):
        client.containers.create(name="x", file_ids=[their_file.id])
    assert [x.path for x in client.containers.files.list(mine.id)] == ["/mnt/data/secret.txt"]


def test_bad_input_gets_a_clear_error(client: openai.OpenAI) -> None:
    for kwargs in (
        {"name": ""},
        {"name": "x", "memory_limit": "2g"},
        {"name": "x", "expires_after": {"anchor": "created_at", "minutes": 5}},
        {"name": "x", "network_policy": {"type": "allowlist", "allowed_domains": ["example.com"]}},
    ):
        with pytest.raises(openai.BadRequestError) as err:
            client.containers.create(**kwargs)  # type: ignore[arg-type]
        assert err.value.status_code == 400 and err.value.body is not None
    c = client.containers.create(name="x")
    with pytest.raises(openai.BadRequestError):
        client.post(f"/containers/{c.id}/files", body={"nope": 1}, cast_to=object)


def test_expired_container_is_reported(spine: LiveServer, client: openai.OpenAI) -> None:
    c = client.containers.create(name="old", expires_after={"anchor": "last_active_at", "minutes": 1})
    backdate(spine, c.id, 2)
    assert client.containers.retrieve(c.id).status == "expired"
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(
            model="m", input="hi", tools=[{"type": "code_interpreter", "container": c.id}]
        )
    assert err.value.code == "container_expired" and "Container is expired" in err.value.message


@pytest.fixture(scope="module")
def reviving(loop_thread: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = make_settings(tmp_path_factory.mktemp("revive"), container_revive=True)
    yield from serve(loop_thread, settings)


def test_revival_setting_accepts_an_expired_container(reviving: LiveServer) -> None:
    client = reviving.client()
    c = client.containers.create(name="old", expires_after={"anchor": "last_active_at", "minutes": 1})
    backdate(reviving, c.id, 2, key=None)
    assert client.containers.retrieve(c.id).status == "expired"
    resp = client.responses.create(
        model="m", input="hi", tools=[{"type": "code_interpreter", "container": c.id}]
    )
    assert resp.status == "failed"  # accepted: it went on to the (absent) model server
    assert resp.tools[0].container == c.id  # type: ignore[union-attr]
