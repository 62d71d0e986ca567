"""Vector stores, their files and batches, search, and file_search inside runs with citations."""

from __future__ import annotations

import io

import openai
import pytest

from tests.fakes.model_server import Call, ScriptedModel, Text, ToolCalls

DOCS = {
    "volcanoes.txt": "Mount Etna is an active stratovolcano on the east coast of Sicily, Italy.",
    "rivers.md": "# Rivers\nThe Danube flows through ten countries and ends in the Black Sea.",
    "cats.html": "<html><body><p>Cats sleep about fifteen hours a day.</p><script>x()</script></body></html>",
}


def upload(sdk: openai.OpenAI, name: str, data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return sdk.files.create(file=(name, io.BytesIO(raw)), purpose="assistants").id


def test_store_lifecycle_batches_and_search(sdk: openai.OpenAI) -> None:
    vs = sdk.vector_stores.create(name="kb", metadata={"team": "geo"})
    assert vs.object == "vector_store" and vs.name == "kb" and vs.file_counts.total == 0
    one = sdk.vector_stores.files.upload_and_poll(
        vector_store_id=vs.id, file=("volcanoes.txt", io.BytesIO(DOCS["volcanoes.txt"].encode()))
    )
    assert one.status == "completed" and one.usage_bytes > 0 and one.vector_store_id == vs.id
    batch = sdk.vector_stores.file_batches.upload_and_poll(
        vector_store_id=vs.id,
        files=[(n, io.BytesIO(d.encode())) for n, d in DOCS.items() if n != "volcanoes.txt"]
        + [("image.bin", io.BytesIO(b"\x00\x01\x02binary"))],
    )
    assert batch.object == "vector_store.file_batch"
    assert (
        batch.file_counts.completed == 2
        and batch.file_counts.failed == 1
        and batch.file_counts.in_progress == 0
    )
    failed = sdk.vector_stores.file_batches.list_files(
        batch_id=batch.id, vector_store_id=vs.id, filter="failed"
    ).data
    assert len(failed) == 1 and failed[0].last_error.code == "unsupported_file"  # type: ignore[union-attr]
    vs = sdk.vector_stores.retrieve(vs.id)
    assert vs.status == "completed" and vs.file_counts.completed == 3 and vs.file_counts.total == 4
    assert len(sdk.vector_stores.files.list(vector_store_id=vs.id).data) == 4
    res = sdk.vector_stores.search(vector_store_id=vs.id, query="Which volcano is in Sicily?").data
    assert res and res[0].filename == "volcanoes.txt" and res[0].file_id == one.id and 0 < res[0].score <= 1
    assert "Etna" in res[0].content[0].text
    assert (
        len(
            sdk.vector_stores.search(
                vector_store_id=vs.id, query="river cats volcano", max_num_results=1
            ).data
        )
        == 1
    )
    sdk.vector_stores.files.update(
        file_id=one.id, vector_store_id=vs.id, attributes={"region": "europe", "year": 2020}
    )
    hits = sdk.vector_stores.search(
        vector_store_id=vs.id, query="Etna Sicily", filters={"type": "eq", "key": "region", "value": "asia"}
    ).data
    assert hits == []
    hits = sdk.vector_stores.search(
        vector_store_id=vs.id,
        query="Etna Sicily",
        filters={
            "type": "and",
            "filters": [
                {"type": "eq", "key": "region", "value": "europe"},
                {"type": "gte", "key": "year", "value": 2000},
            ],
        },
    ).data
    assert [h.file_id for h in hits] == [one.id]
    content = sdk.vector_stores.files.content(file_id=one.id, vector_store_id=vs.id)
    assert "Etna" in "".join(p.text for p in content)
    sdk.files.delete(one.id)  # deleting the File detaches it everywhere
    with pytest.raises(openai.NotFoundError):
        sdk.vector_stores.files.retrieve(file_id=one.id, vector_store_id=vs.id)
    assert all(
        h.file_id != one.id for h in sdk.vector_stores.search(vector_store_id=vs.id, query="Etna").data
    )
    d = sdk.vector_stores.delete(vs.id)
    assert d.deleted and d.object == "vector_store.deleted"


def test_file_search_run_with_citations(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    ids = {n: upload(sdk, n, d) for n, d in DOCS.items()}
    vs = sdk.vector_stores.create(name="kb", file_ids=list(ids.values()))
    while sdk.vector_stores.retrieve(vs.id).file_counts.in_progress:
        pass
    assert model.embedding_requests  # the model server offers /v1/embeddings: ranking is hybrid
    model.script(
        ToolCalls([Call("file_search", {"query": "active volcano Sicily"})]),
        Text("Etna is active 【0†volcanoes.txt】."),
    )
    a = sdk.beta.assistants.create(
        model="m",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [vs.id]}},
    )
    t = sdk.beta.threads.create(messages=[{"role": "user", "content": "Which volcano?"}])
    with sdk.beta.threads.runs.stream(thread_id=t.id, assistant_id=a.id) as stream:
        streamed_steps = [e.data for e in stream if e.event == "thread.run.step.completed"]
        final = stream.get_final_messages()[0]
    searched = streamed_steps[0].step_details.tool_calls[0].file_search  # type: ignore[union-attr]
    assert searched.results[0].file_id == ids["volcanoes.txt"] and searched.results[0].content is None
    text = final.content[0].text  # type: ignore[union-attr]
    assert text.value == "Etna is active 【0†volcanoes.txt】."
    ann = text.annotations[0]
    assert ann.type == "file_citation" and ann.file_citation.file_id == ids["volcanoes.txt"]  # type: ignore[union-attr]
    assert text.value[ann.start_index : ann.end_index] == ann.text == "【0†volcanoes.txt】"
    stored = sdk.beta.threads.messages.list(t.id).data[0].content[0].text  # type: ignore[union-attr]
    assert stored.annotations[0].file_citation.file_id == ids["volcanoes.txt"]  # type: ignore[union-attr]
    tool_msg = [m for m in model.requests[1]["messages"] if m["role"] == "tool"][0]
    assert "【0†volcanoes.txt】" in tool_msg["content"] and "Etna" in tool_msg["content"]
    run = sdk.beta.threads.runs.list(thread_id=t.id).data[0]
    step = [
        s for s in sdk.beta.threads.runs.steps.list(run.id, thread_id=t.id).data if s.type == "tool_calls"
    ][0]
    call = step.step_details.tool_calls[0]  # type: ignore[union-attr]
    assert call.type == "file_search" and call.file_search.results[0].file_id == ids["volcanoes.txt"]  # type: ignore[union-attr]
    assert call.file_search.results[0].content is None  # type: ignore[union-attr]
    full = sdk.beta.threads.runs.steps.retrieve(
        step.id,
        thread_id=t.id,
        run_id=run.id,
        include=["step_details.tool_calls[*].file_search.results[*].content"],
    )
    assert "Etna" in full.step_details.tool_calls[0].file_search.results[0].content[0].text  # type: ignore[union-attr]


def test_file_search_attachment_creates_thread_store(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    fid = upload(sdk, "rivers.md", DOCS["rivers.md"])
    t = sdk.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": "Danube?",
                "attachments": [{"file_id": fid, "tools": [{"type": "file_search"}]}],
            }
        ]
    )
    thread = sdk.beta.threads.retrieve(t.id)
    stores = thread.tool_resources.file_search.vector_store_ids  # type: ignore[union-attr]
    assert len(stores) == 1
    assert [f.id for f in sdk.vector_stores.files.list(vector_store_id=stores[0]).data] == [fid]


def test_streamed_search_results_carry_content_only_when_included(
    sdk: openai.OpenAI, model: ScriptedModel
) -> None:
    fid = upload(sdk, "volcanoes.txt", DOCS["volcanoes.txt"])
    vs = sdk.vector_stores.create(name="kb", file_ids=[fid])
    while sdk.vector_stores.retrieve(vs.id).file_counts.in_progress:
        pass
    model.script(ToolCalls([Call("file_search", {"query": "Etna"})]), Text("Etna 【0†volcanoes.txt】"))
    a = sdk.beta.assistants.create(
        model="m",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [vs.id]}},
    )
    t = sdk.beta.threads.create(messages=[{"role": "user", "content": "volcano?"}])
    include = ["step_details.tool_calls[*].file_search.results[*].content"]
    with sdk.beta.threads.runs.stream(thread_id=t.id, assistant_id=a.id, include=include) as stream:  # type: ignore[arg-type]
        steps = [e.data for e in stream if e.event == "thread.run.step.completed"]
    result = steps[0].step_details.tool_calls[0].file_search.results[0]  # type: ignore[union-attr]
    assert result.file_id == fid and "Etna" in result.content[0].text  # type: ignore[index]
