"""Kill -9 the server and start it again: every object is still there."""

from __future__ import annotations

from pathlib import Path

from tests.process import ServerProcess


def test_objects_survive_kill9(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, AGENT_MODEL_URL="http://127.0.0.1:9/v1").start()
    try:
        c = server.client()
        a = c.beta.assistants.create(model="m", name="durable", metadata={"x": "1"})
        t = c.beta.threads.create(messages=[{"role": "user", "content": "remember me"}])
        m = c.beta.threads.messages.create(t.id, role="user", content="and me")
        server.kill9()
        server.start()
        c = server.client()
        assert c.beta.assistants.retrieve(a.id).model_dump() == a.model_dump()
        texts = [x.content[0].text.value for x in c.beta.threads.messages.list(t.id, order="asc").data]
        assert texts == ["remember me", "and me"]
        assert c.beta.threads.messages.retrieve(m.id, thread_id=t.id).id == m.id
    finally:
        server.stop()
