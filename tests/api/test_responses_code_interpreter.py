"""code_interpreter in Responses on the real Docker sandbox: containers made when code first runs,
outputs (logs, image URLs) with ``include``, streamed call events, files cited and downloadable, state
kept across responses that use the same container."""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import openai
import pytest

from agent.app_keys import CONTAINERS
from tests.api.test_containers import backdate
from tests.conftest import LiveServer, LoopThread, make_settings, require_docker, serve
from tests.fakes.model_server import Call, ScriptedModel, Text, ToolCalls

pytestmark = pytest.mark.docker

AUTO = {"type": "code_interpreter", "container": {"type": "auto"}}
CHART = (
    "import matplotlib.pyplot as plt\nsquares = [n * n for n in range(6)]\nprint('sum', sum(squares))\n"
    "plt.plot(squares)\nplt.show()\nopen('/mnt/data/squares.txt', 'w').write(str(squares))"
)


MEMORY = (
    "import os\nfor p in ('/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes'):\n"
    "    if os.path.exists(p):\n        print(open(p).read().strip())\n        break"
)


def run_code(code: str) -> ToolCalls:
    return ToolCalls([Call("code_interpreter", {"code": code})])


def fetch(server: LiveServer, url: str, key: str = "sk-test") -> httpx.Response:
    return httpx.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def test_chart_and_file_with_outputs_included(
    ci_server: LiveServer, ci: openai.OpenAI, model: ScriptedModel
) -> None:
    before = {c.id for c in ci.containers.list()}
    model.script(run_code(CHART), Text("Sum is 55. See [squares.txt](sandbox:/mnt/data/squares.txt)."))
    resp = ci.responses.create(
        model="m",
        input="Plot squares",
        tools=[AUTO],
        include=["code_interpreter_call.outputs"],  # type: ignore[list-item]
    )
    assert resp.status == "completed", resp.error
    call, msg = resp.output
    assert call.type == "code_interpreter_call" and call.id.startswith("ci_") and call.status == "completed"
    assert call.code == CHART and call.container_id and call.container_id.startswith("cntr_")
    assert call.outputs and call.outputs[0].type == "logs" and "sum 55" in call.outputs[0].logs  # type: ignore[union-attr]
    image = call.outputs[1]
    assert image.type == "image"
    png = fetch(ci_server, image.url)  # type: ignore[union-attr]
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    # the container exists now (made when code first ran), with the files the code wrote
    assert {c.id for c in ci.containers.list()} - before == {call.container_id}
    text = msg.content[0]
    cite = text.annotations[0]  # type: ignore[union-attr]
    assert cite.type == "container_file_citation" and cite.container_id == call.container_id
    assert cite.filename == "squares.txt"
    assert text.text[cite.start_index : cite.end_index] == "[squares.txt](sandbox:/mnt/data/squares.txt)"  # type: ignore[union-attr]
    data = ci.containers.files.content.retrieve(cite.file_id, container_id=call.container_id).read()
    assert data == b"[0, 1, 4, 9, 16, 25]"
    files = {f.path: f.source for f in ci.containers.files.list(call.container_id)}
    assert files["/mnt/data/squares.txt"] == "assistant"
    # the model read the logs and the notes on the files
    tool_msg = [m for m in model.requests[1]["messages"] if m["role"] == "tool"][0]["content"]
    assert "sum 55" in tool_msg and "sandbox:/mnt/data/squares.txt" in tool_msg


def test_streamed_call_events_and_outputs_hidden_without_include(
    ci: openai.OpenAI, model: ScriptedModel
) -> None:
    code = "x = 6 * 7\nprint(x)"
    model.script(
        ToolCalls(
            [Call("code_interpreter", {"code": code}, pieces=['{"code": "x = 6', ' * 7\\nprint(x)"}'])]
        ),
        Text("42."),
    )
    with ci.responses.stream(model="m", input="6*7?", tools=[AUTO]) as stream:  # type: ignore[list-item]
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    start = kinds.index("response.code_interpreter_call.in_progress")
    assert kinds[start - 1] == "response.output_item.added"
    added = events[start - 1].item  # type: ignore[union-attr]
    assert added.type == "code_interpreter_call" and added.code == "" and added.status == "in_progress"
    assert added.container_id and added.container_id.startswith("cntr_")
    deltas = [e.delta for e in events if e.type == "response.code_interpreter_call_code.delta"]  # type: ignore[union-attr]
    assert "".join(deltas) == code and len(deltas) == 2
    tail = [k for k in kinds[start:] if not k.endswith("code.delta")]
    assert tail[:5] == [
        "response.code_interpreter_call.in_progress",
        "response.code_interpreter_call_code.done",
        "response.code_interpreter_call.interpreting",
        "response.code_interpreter_call.completed",
        "response.output_item.done",
    ]
    call = final.output[0]
    assert call.type == "code_interpreter_call" and call.outputs is None and call.code == code
    assert final.output_text == "42."
    again = ci.responses.retrieve(final.id, include=["code_interpreter_call.outputs"])  # asked for later
    assert again.output[0].outputs[0].logs.strip() == "42"  # type: ignore[union-attr, index]


def test_state_persists_across_responses_in_one_container(ci: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(run_code("total = 40"), Text("Stored."))
    first = ci.responses.create(model="m", input="store", tools=[AUTO])  # type: ignore[list-item]
    cid = first.output[0].container_id  # type: ignore[union-attr]
    model.script(run_code("print(total + 2)"), Text("42"))
    second = ci.responses.create(
        model="m", input="add", tools=[AUTO], previous_response_id=first.id,  # type: ignore[list-item]
        include=["code_interpreter_call.outputs"],
    )  # fmt: skip
    call = second.output[0]
    assert call.container_id == cid  # type: ignore[union-attr]
    assert call.outputs[0].logs.strip() == "42"  # type: ignore[union-attr, index]
    # the explicit id works the same way, without a chain
    model.script(run_code("print(total * 2)"), Text("80"))
    third = ci.responses.create(
        model="m", input="double", tools=[{"type": "code_interpreter", "container": cid}],  # type: ignore[list-item]
        include=["code_interpreter_call.outputs"],
    )  # fmt: skip
    assert third.output[0].outputs[0].logs.strip() == "80"  # type: ignore[union-attr, index]


def test_container_files_are_in_mnt_data(ci: openai.OpenAI, model: ScriptedModel) -> None:
    c = ci.containers.create(name="data", memory_limit="4g")  # capped by the setting (1 GiB)
    ci.containers.files.create(c.id, file=("nums.csv", io.BytesIO(b"n\n1\n2\n3\n")))
    upload = ci.files.create(file=("extra.txt", io.BytesIO(b"extra!")), purpose="assistants")
    model.script(
        run_code(
            "import pandas as pd\nprint(pd.read_csv('/mnt/data/nums.csv').n.sum(), open('/mnt/data/extra.txt').read())"
        ),
        Text("6"),
    )
    tool = {"type": "code_interpreter", "container": c.id}
    resp = ci.responses.create(
        model="m", input="sum", tools=[tool], include=["code_interpreter_call.outputs"]
    )  # type: ignore[list-item]
    # extra.txt was not given to this container: the code fails and the model reads why
    logs = resp.output[0].outputs[0].logs  # type: ignore[union-attr, index]
    assert "FileNotFoundError" in logs
    ci.containers.files.create(c.id, file_id=upload.id)  # placed in the live session right away
    model.script(
        run_code(
            "import pandas as pd\nprint(pd.read_csv('/mnt/data/nums.csv').n.sum(), open('/mnt/data/extra.txt').read())"
        ),
        Text("6"),
    )
    resp = ci.responses.create(
        model="m", input="sum", tools=[tool], include=["code_interpreter_call.outputs"]
    )  # type: ignore[list-item]
    assert resp.output[0].outputs[0].logs.strip() == "6 extra!"  # type: ignore[union-attr, index]
    model.script(run_code(MEMORY), Text("1 GiB"))
    resp = ci.responses.create(
        model="m", input="mem", tools=[tool], include=["code_interpreter_call.outputs"]
    )  # type: ignore[list-item]
    assert resp.output[0].outputs[0].logs.strip() == str(1 << 30)  # type: ignore[union-attr, index]
    assert ci.containers.retrieve(c.id).last_active_at >= c.created_at  # type: ignore[operator]


def test_background_response_keeps_outputs(ci: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(run_code("print('bg')"), Text("ok"))
    resp = ci.responses.create(
        model="m",
        input="x",
        tools=[AUTO],
        background=True,
        include=["code_interpreter_call.outputs"],  # type: ignore[list-item]
    )
    assert resp.status == "queued"
    for event in ci.responses.retrieve(resp.id, stream=True):  # until the response ends
        last = event
    assert last.type == "response.completed"
    resp = ci.responses.retrieve(resp.id)
    assert resp.status == "completed"
    assert resp.output[0].outputs[0].logs.strip() == "bg"  # type: ignore[union-attr, index]


def test_timeout_and_errors_reach_the_model(ci: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(run_code("while True:\n    pass"), run_code("1/0"), Text("Both failed."))
    resp = ci.responses.create(
        model="m", input="loop", tools=[AUTO], include=["code_interpreter_call.outputs"]
    )  # type: ignore[list-item]
    assert resp.status == "completed" and resp.output_text == "Both failed."
    tools = [m["content"] for m in model.requests[2]["messages"] if m["role"] == "tool"]
    assert "time limit" in tools[0] and "ZeroDivisionError" in tools[1]
    assert [o.type for o in resp.output] == ["code_interpreter_call", "code_interpreter_call", "message"]


def test_deleted_container_fails_cleanly(ci: openai.OpenAI, model: ScriptedModel) -> None:
    c = ci.containers.create(name="short-lived")
    ci.containers.delete(c.id)
    with pytest.raises(openai.NotFoundError):
        ci.responses.create(model="m", input="x", tools=[{"type": "code_interpreter", "container": c.id}])  # type: ignore[list-item]


def test_files_past_the_per_call_limit_are_skipped_and_told(ci: openai.OpenAI, model: ScriptedModel) -> None:
    code = "for i in range(25):\n    open(f'/mnt/data/f{i:02}.txt', 'w').write(str(i))"
    model.script(run_code(code), Text("Wrote them."))
    resp = ci.responses.create(model="m", input="x", tools=[AUTO])  # type: ignore[list-item]
    cid = resp.output[0].container_id  # type: ignore[union-attr]
    assert len(ci.containers.files.list(cid, limit=100).data) == 20
    tool_msg = [m for m in model.requests[1]["messages"] if m["role"] == "tool"][0]["content"]
    assert "5 more files were not kept" in tool_msg
    cites = resp.output[1].content[0].annotations  # type: ignore[union-attr]
    assert len(cites) == 20 and all(c.type == "container_file_citation" for c in cites)


@pytest.fixture(scope="module")
def reviving_ci(
    loop_thread: LoopThread, scripted: ScriptedModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    require_docker()
    settings = make_settings(
        tmp_path_factory.mktemp("revive-ci"), model_url=scripted.url, sandbox_enabled=True, sandbox_pool=0,
        code_timeout=3.0, container_revive=True,
    )  # fmt: skip
    yield from serve(loop_thread, settings)


def test_expired_container_is_revived_with_its_files(reviving_ci: LiveServer, model: ScriptedModel) -> None:
    client = reviving_ci.client()
    c = client.containers.create(name="long job", expires_after={"anchor": "last_active_at", "minutes": 1})
    client.containers.files.create(c.id, file=("input.txt", io.BytesIO(b"from the user")))
    tool = {"type": "code_interpreter", "container": c.id}
    model.script(run_code("state = 1\nopen('/mnt/data/made.txt', 'w').write('by the code')"), Text("ok"))
    client.responses.create(model="m", input="x", tools=[tool])  # type: ignore[list-item]
    backdate(reviving_ci, c.id, 5, key=None)
    assert reviving_ci.runner is not None
    assert reviving_ci.loop.run(reviving_ci.runner.app[CONTAINERS].sweep()) == 1  # its sandbox is gone
    assert client.containers.retrieve(c.id).status == "expired"
    code = "print(open('/mnt/data/input.txt').read(), '|', open('/mnt/data/made.txt').read(), '|', 'state' in dir())"
    model.script(run_code(code), Text("revived"))
    resp = client.responses.create(
        model="m", input="x", tools=[tool], include=["code_interpreter_call.outputs"]
    )  # type: ignore[list-item]
    assert resp.output[0].outputs[0].logs.strip() == "from the user | by the code | False"  # type: ignore[union-attr, index]
    assert client.containers.retrieve(c.id).status == "running"


def test_only_regular_files_within_the_budget_are_kept(ci: openai.OpenAI, model: ScriptedModel) -> None:
    """Outputs are sized on the host side: a sparse 2 GiB file is skipped unread, a link or a FIFO is never
    followed, and what is skipped is told to the model."""
    code = (
        "import os\n"
        "open('/mnt/data/small.txt', 'w').write('ok')\n"
        "with open('/mnt/data/sparse.bin', 'wb') as f:\n    f.truncate(2 ** 31)\n"
        "os.symlink('/etc/passwd', '/mnt/data/link.txt')\n"
        "os.mkfifo('/mnt/data/pipe')\n"
    )
    model.script(run_code(code), Text("done"))
    resp = ci.responses.create(model="m", input="x", tools=[AUTO])  # type: ignore[list-item]
    assert resp.status == "completed"
    cid = resp.output[0].container_id  # type: ignore[union-attr]
    kept = {f.path for f in ci.containers.files.list(cid, limit=100).data}
    assert kept == {"/mnt/data/small.txt"}
    tool_msg = [m for m in model.requests[1]["messages"] if m["role"] == "tool"][0]["content"]
    assert "not kept" in tool_msg
