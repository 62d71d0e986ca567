"""The tenant boundary: key two names key one's objects in every id-bearing field of every request.

Each case is made three times with the official SDK: with the caller's own ids (it succeeds, so the
only difference below is the owner), with key one's ids (404), and with ids that exist nowhere (404).
The last two must answer the same words and param, and write nothing (every table's rows are counted).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import openai
import pytest
import sqlalchemy as sa

from agent.app_keys import STORE
from tests.conftest import LiveServer

Ids = dict[str, str]
Case = Callable[[openai.OpenAI, Ids, Ids], Any]  # (client, the caller's fresh objects, ids to name)


def row_counts(server: LiveServer) -> dict[str, int]:
    """Rows of every table in the service's database (SQLite or PostgreSQL), read through its engine."""
    store = server.runner.app[STORE]  # type: ignore[union-attr]

    async def count() -> dict[str, int]:
        async with store.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
            return {
                t: (await conn.execute(sa.text(f'SELECT COUNT(*) FROM "{t}"'))).scalar_one() for t in tables
            }

    return server.loop.run(count())


def objects(c: openai.OpenAI) -> Ids:
    f = c.files.create(file=("notes.txt", b"The launch code is 0000."), purpose="assistants")
    return {
        "file": f.id,
        "vector_store": c.vector_stores.create(name="kb").id,
        "assistant": c.beta.assistants.create(model="m", tools=[{"type": "file_search"}]).id,
        "thread": c.beta.threads.create().id,
    }


def unknown() -> Ids:
    tail = secrets.token_hex(12)
    return {"file": f"file-{tail}", "vector_store": f"vs_{tail}", "assistant": f"asst_{tail}"}


def _attach(file_id: str, tool: str = "file_search") -> list[dict[str, Any]]:
    return [{"file_id": file_id, "tools": [{"type": tool}]}]


def _msg(x: Ids, tool: str = "file_search") -> dict[str, Any]:
    return {"role": "user", "content": "hi", "attachments": _attach(x["file"], tool)}


def _image(x: Ids) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "image_file", "image_file": {"file_id": x["file"]}}]}


CI = lambda x: {"code_interpreter": {"file_ids": [x["file"]]}}  # noqa: E731
FS = lambda x: {"file_search": {"vector_store_ids": [x["vector_store"]]}}  # noqa: E731
HELPER = lambda x: {"file_search": {"vector_stores": [{"file_ids": [x["file"]]}]}}  # noqa: E731

# name → (call, the param the error names, the kind of id it names)
CASES: dict[str, tuple[Case, str, str]] = {
    "assistant code_interpreter files": (
        lambda c, o, x: c.beta.assistants.create(model="m", tool_resources=CI(x)),
        "tool_resources.code_interpreter.file_ids[0]",
        "file",
    ),
    "assistant vector_store_ids": (
        lambda c, o, x: c.beta.assistants.create(model="m", tool_resources=FS(x)),
        "tool_resources.file_search.vector_store_ids[0]",
        "vector_store",
    ),
    "assistant vector_stores helper": (
        lambda c, o, x: c.beta.assistants.create(model="m", tool_resources=HELPER(x)),
        "tool_resources.file_search.vector_stores[0].file_ids[0]",
        "file",
    ),
    "assistant update vector_store_ids": (
        lambda c, o, x: c.beta.assistants.update(o["assistant"], tool_resources=FS(x)),
        "tool_resources.file_search.vector_store_ids[0]",
        "vector_store",
    ),
    "thread code_interpreter files": (
        lambda c, o, x: c.beta.threads.create(tool_resources=CI(x)),
        "tool_resources.code_interpreter.file_ids[0]",
        "file",
    ),
    "thread vector_store_ids": (
        lambda c, o, x: c.beta.threads.create(tool_resources=FS(x)),
        "tool_resources.file_search.vector_store_ids[0]",
        "vector_store",
    ),
    "thread vector_stores helper": (
        lambda c, o, x: c.beta.threads.create(tool_resources=HELPER(x)),
        "tool_resources.file_search.vector_stores[0].file_ids[0]",
        "file",
    ),
    "thread update vector_store_ids": (
        lambda c, o, x: c.beta.threads.update(o["thread"], tool_resources=FS(x)),
        "tool_resources.file_search.vector_store_ids[0]",
        "vector_store",
    ),
    "thread message file_search attachment": (
        lambda c, o, x: c.beta.threads.create(messages=[_msg(x)]),
        "messages[0].attachments[0].file_id",
        "file",
    ),
    "thread message code_interpreter attachment": (
        lambda c, o, x: c.beta.threads.create(messages=[_msg(x, "code_interpreter")]),
        "messages[0].attachments[0].file_id",
        "file",
    ),
    "thread message image_file": (
        lambda c, o, x: c.beta.threads.create(messages=[_image(x)]),
        "messages[0].content[0].image_file.file_id",
        "file",
    ),
    "message attachment": (
        lambda c, o, x: c.beta.threads.messages.create(o["thread"], **_msg(x)),
        "attachments[0].file_id",
        "file",
    ),
    "message image_file": (
        lambda c, o, x: c.beta.threads.messages.create(o["thread"], **_image(x)),
        "content[0].image_file.file_id",
        "file",
    ),
    "run assistant_id": (
        lambda c, o, x: c.beta.threads.runs.create(o["thread"], assistant_id=x["assistant"]),
        "assistant_id",
        "assistant",
    ),
    "run additional_messages attachment": (
        lambda c, o, x: c.beta.threads.runs.create(
            o["thread"], assistant_id=o["assistant"], additional_messages=[_msg(x)]
        ),
        "additional_messages[0].attachments[0].file_id",
        "file",
    ),
    "create_and_run assistant_id": (
        lambda c, o, x: c.beta.threads.create_and_run(assistant_id=x["assistant"]),
        "assistant_id",
        "assistant",
    ),
    "create_and_run tool_resources": (
        lambda c, o, x: c.beta.threads.create_and_run(assistant_id=o["assistant"], tool_resources=FS(x)),
        "tool_resources.file_search.vector_store_ids[0]",
        "vector_store",
    ),
    "create_and_run thread tool_resources": (
        lambda c, o, x: c.beta.threads.create_and_run(
            assistant_id=o["assistant"], thread={"tool_resources": CI(x)}
        ),
        "thread.tool_resources.code_interpreter.file_ids[0]",
        "file",
    ),
    "create_and_run thread message attachment": (
        lambda c, o, x: c.beta.threads.create_and_run(
            assistant_id=o["assistant"], thread={"messages": [_msg(x)]}
        ),
        "thread.messages[0].attachments[0].file_id",
        "file",
    ),
    "vector store file_ids": (
        lambda c, o, x: c.vector_stores.create(file_ids=[x["file"]]),
        "file_ids[0]",
        "file",
    ),
    "vector store file": (
        lambda c, o, x: c.vector_stores.files.create(vector_store_id=o["vector_store"], file_id=x["file"]),
        "file_id",
        "file",
    ),
    "file batch file_ids": (
        lambda c, o, x: c.vector_stores.file_batches.create(
            vector_store_id=o["vector_store"], file_ids=[x["file"]]
        ),
        "file_ids[0]",
        "file",
    ),
    "file batch files": (
        lambda c, o, x: c.vector_stores.file_batches.create(
            vector_store_id=o["vector_store"], files=[{"file_id": x["file"]}]
        ),
        "files[0].file_id",
        "file",
    ),
}


def refused(call: Callable[[], Any]) -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as err:
        call()
    return err.value


@pytest.mark.parametrize("name", list(CASES))
def test_key_two_cannot_name_key_one_objects(spine: LiveServer, name: str) -> None:
    call, param, kind = CASES[name]
    one, two = spine.client("sk-test"), spine.client("sk-other")
    theirs = objects(one)
    own = objects(two)
    call(two, own, own)  # the same request naming the caller's own objects is accepted
    own = objects(two)
    before = row_counts(spine)
    foreign = refused(lambda: call(two, own, theirs))
    nowhere = unknown()
    missing = refused(lambda: call(two, own, nowhere))
    assert row_counts(spine) == before, "a refused request wrote something"
    assert foreign.status_code == missing.status_code == 404
    assert foreign.param == missing.param == param
    assert foreign.message == missing.message.replace(nowhere[kind], theirs[kind])
    assert theirs[kind] in foreign.message and foreign.body["type"] == "invalid_request_error"  # type: ignore[index]


def test_key_two_cannot_reach_key_one_objects_by_path(spine: LiveServer) -> None:
    one, two = spine.client("sk-test"), spine.client("sk-other")
    theirs = objects(one)
    for call in (
        lambda: two.files.content(theirs["file"]),
        lambda: two.vector_stores.search(vector_store_id=theirs["vector_store"], query="launch code"),
        lambda: two.vector_stores.files.list(vector_store_id=theirs["vector_store"]),
        lambda: two.beta.threads.runs.list(theirs["thread"]),
        lambda: two.beta.assistants.update(theirs["assistant"], name="mine now"),
    ):
        assert refused(call).status_code == 404
    assert one.beta.assistants.retrieve(theirs["assistant"]).name is None
