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


def test_ingestion_resumes_after_kill9(tmp_path: Path) -> None:
    import io
    import random

    server = ServerProcess(tmp_path, AGENT_SANDBOX_ENABLED="false").start()
    try:
        c = server.client()
        rng = random.Random(7)
        words = [f"w{i}" for i in range(5000)]
        big = " ".join(rng.choice(words) for _ in range(3_000_000)) + " zebracorn"
        f = c.files.create(file=("big.txt", io.BytesIO(big.encode())), purpose="assistants")
        vs = c.vector_stores.create(name="big", file_ids=[f.id])
        assert c.vector_stores.files.retrieve(f.id, vector_store_id=vs.id).status == "in_progress"
        server.kill9()  # mid-ingestion
        server.start()
        c = server.client()
        done = c.vector_stores.files.poll(f.id, vector_store_id=vs.id, poll_interval_ms=100)
        assert done.status == "completed" and done.usage_bytes > 0
        hits = c.vector_stores.search(vector_store_id=vs.id, query="zebracorn").data
        assert hits and hits[0].file_id == f.id
    finally:
        server.stop()
