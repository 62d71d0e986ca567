"""code_interpreter inside runs, on the real Docker sandbox: files in, charts and files out, state per thread."""

from __future__ import annotations

import io

import openai
import pytest
from openai import AssistantEventHandler
from openai.types.beta.threads.runs import ToolCall, ToolCallDelta

from tests.fakes.model_server import Call, ScriptedModel, Text, ToolCalls

pytestmark = pytest.mark.docker

CSV = "month,amount\njan,10\nfeb,20\nmar,30\n"
ANALYSIS = (
    "import pandas as pd\nimport matplotlib.pyplot as plt\n"
    "df = pd.read_csv('/mnt/data/sales.csv')\nprint('total', df['amount'].sum())\n"
    "df.plot(x='month', y='amount')\ndf.describe().to_csv('/mnt/data/summary.csv')"
)


def run_code(code: str) -> ToolCalls:
    return ToolCalls([Call("code_interpreter", {"code": code})])


def test_data_analysis_with_chart_and_file(ci: openai.OpenAI, model: ScriptedModel) -> None:
    csv = ci.files.create(file=("sales.csv", io.BytesIO(CSV.encode())), purpose="assistants")
    model.script(
        run_code(ANALYSIS), Text("Total is 60. Summary: [summary.csv](sandbox:/mnt/data/summary.csv)")
    )
    a = ci.beta.assistants.create(
        model="m",
        tools=[{"type": "code_interpreter"}],
        tool_resources={"code_interpreter": {"file_ids": [csv.id]}},
    )
    t = ci.beta.threads.create(messages=[{"role": "user", "content": "Analyse my sales"}])
    run = ci.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert run.status == "completed"
    assert model.requests[0]["tools"][0]["function"]["name"] == "code_interpreter"
    assert list(model.requests[0]["tools"][0]["function"]["parameters"]["properties"]) == ["code"]
    system = model.requests[0]["messages"][0]
    assert system["role"] == "system" and "/mnt/data/sales.csv" in system["content"]
    step = ci.beta.threads.runs.steps.list(run.id, thread_id=t.id, order="asc").data[0]
    call = step.step_details.tool_calls[0]  # type: ignore[union-attr]
    assert call.type == "code_interpreter" and call.code_interpreter.input == ANALYSIS  # type: ignore[union-attr]
    outputs = call.code_interpreter.outputs  # type: ignore[union-attr]
    assert outputs[0].type == "logs" and "total 60" in outputs[0].logs  # type: ignore[union-attr]
    image_id = outputs[1].image.file_id  # type: ignore[union-attr]
    png = ci.files.content(image_id).read()
    assert png.startswith(b"\x89PNG") and ci.files.retrieve(image_id).purpose == "assistants_output"
    msg = ci.beta.threads.messages.list(t.id, run_id=run.id).data[0]
    assert msg.content[0].type == "image_file" and msg.content[0].image_file.file_id == image_id  # type: ignore[union-attr]
    text = msg.content[1].text  # type: ignore[union-attr]
    ann = text.annotations[0]
    assert ann.type == "file_path" and ann.text == "sandbox:/mnt/data/summary.csv"
    summary = ci.files.content(ann.file_path.file_id).read().decode()  # type: ignore[union-attr]
    assert "amount" in summary and "mean" in summary
    tool_msg = [m for m in model.requests[1]["messages"] if m["role"] == "tool"][0]["content"]
    assert "total 60" in tool_msg and "sandbox:/mnt/data/summary.csv" in tool_msg

    # a file attached to a message is placed too, under its own name
    notes = ci.files.create(file=("notes.txt", io.BytesIO(b"attached!")), purpose="assistants")
    model.script(run_code("print(open('/mnt/data/notes.txt').read())"), Text("read it"))
    run_att = ci.beta.threads.runs.create_and_poll(
        thread_id=t.id,
        assistant_id=a.id,
        additional_messages=[
            {
                "role": "user",
                "content": "and this",
                "attachments": [{"file_id": notes.id, "tools": [{"type": "code_interpreter"}]}],
            }
        ],
    )
    assert "/mnt/data/notes.txt" in model.requests[2]["messages"][0]["content"]
    logs_att = ci.beta.threads.runs.steps.list(run_att.id, thread_id=t.id, order="asc").data[0]
    assert "attached!" in logs_att.step_details.tool_calls[0].code_interpreter.outputs[0].logs  # type: ignore[union-attr]

    # state persists across runs of the same thread, never across threads
    model.script(run_code("print(df.shape)"), Text("4 rows"))
    run2 = ci.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    logs2 = ci.beta.threads.runs.steps.list(run2.id, thread_id=t.id, order="asc").data[0]
    assert "(3, 2)" in logs2.step_details.tool_calls[0].code_interpreter.outputs[0].logs  # type: ignore[union-attr]
    other = ci.beta.threads.create(messages=[{"role": "user", "content": "x"}])
    model.script(run_code("print(df.shape)"), Text("no df"))
    run3 = ci.beta.threads.runs.create_and_poll(thread_id=other.id, assistant_id=a.id)
    logs3 = ci.beta.threads.runs.steps.list(run3.id, thread_id=other.id, order="asc").data[0]
    assert "NameError" in logs3.step_details.tool_calls[0].code_interpreter.outputs[0].logs  # type: ignore[union-attr]


class CodeWatcher(AssistantEventHandler):
    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[str] = []
        self.logs: list[str] = []

    def on_tool_call_delta(self, delta: ToolCallDelta, snapshot: ToolCall) -> None:
        if delta.type == "code_interpreter" and delta.code_interpreter:
            if delta.code_interpreter.input:
                self.inputs.append(delta.code_interpreter.input)
            for out in delta.code_interpreter.outputs or []:
                if out.type == "logs" and out.logs:
                    self.logs.append(out.logs)


def test_code_streams_while_written_and_errors_go_back(ci: openai.OpenAI, model: ScriptedModel) -> None:
    code = "x = 6 * 7\nprint(x)\n1/0"
    model.script(
        ToolCalls(
            [
                Call(
                    "code_interpreter",
                    {"code": code},
                    pieces=['{"co', 'de": "x = 6', " * 7\\nprint(x)", '\\n1/0"}'],
                )
            ]
        ),
        Text("It failed with a ZeroDivisionError."),
    )
    a = ci.beta.assistants.create(model="m", tools=[{"type": "code_interpreter"}])
    t = ci.beta.threads.create(messages=[{"role": "user", "content": "compute"}])
    handler = CodeWatcher()
    with ci.beta.threads.runs.stream(thread_id=t.id, assistant_id=a.id, event_handler=handler) as s:
        s.until_done()
        assert s.get_final_run().status == "completed"
    assert "".join(handler.inputs) == code and len(handler.inputs) >= 3
    assert "42" in handler.logs[0] and "ZeroDivisionError" in handler.logs[0]
    tool_msg = [m for m in model.requests[1]["messages"] if m["role"] == "tool"][0]["content"]
    assert "ZeroDivisionError" in tool_msg


def test_runaway_code_is_stopped_and_run_completes(ci: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(
        run_code("import itertools\nsum(itertools.repeat(1))"), run_code("print('alive')"), Text("done")
    )
    a = ci.beta.assistants.create(model="m", tools=[{"type": "code_interpreter"}])
    t = ci.beta.threads.create(messages=[{"role": "user", "content": "loop"}])
    run = ci.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert run.status == "completed"
    steps = ci.beta.threads.runs.steps.list(run.id, thread_id=t.id, order="asc").data
    first = steps[0].step_details.tool_calls[0].code_interpreter.outputs[0].logs  # type: ignore[union-attr]
    second = steps[1].step_details.tool_calls[0].code_interpreter.outputs[0].logs  # type: ignore[union-attr]
    assert "time limit" in first and "alive" in second
    tool_msgs = [m["content"] for m in model.requests[1]["messages"] if m["role"] == "tool"]
    assert len(tool_msgs) == 1 and "time limit" in tool_msgs[0]  # the model reads the failure too


HOSTILE = {
    "fork bomb": "import os\nwhile True:\n    os.fork()",
    "memory bomb": "x = bytearray(10**10)",
    "network": "import urllib.request\nurllib.request.urlopen('http://1.1.1.1', timeout=2)",
    "write outside": "open('/etc/evil', 'w').write('x')",
    "read host": f"print(open({__file__!r}).read()[:50])",  # this file exists on the host only
    "flood output": "print('x' * 100_000_000)",
}


def test_hostile_code_through_a_run_is_contained(ci: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(
        *[run_code(code) for code in HOSTILE.values()], run_code("print('still here')"), Text("done")
    )
    a = ci.beta.assistants.create(model="m", tools=[{"type": "code_interpreter"}])
    t = ci.beta.threads.create(messages=[{"role": "user", "content": "be evil"}])
    run = ci.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert run.status == "completed"
    steps = [
        s
        for s in ci.beta.threads.runs.steps.list(run.id, thread_id=t.id, order="asc").data
        if s.type == "tool_calls"
    ]
    logs = [
        "".join(o.logs for o in s.step_details.tool_calls[0].code_interpreter.outputs if o.type == "logs")  # type: ignore[union-attr]
        for s in steps
    ]
    assert len(logs) == len(HOSTILE) + 1
    for name, out in zip(HOSTILE, logs, strict=False):
        assert "Error" in out or "truncated" in out or "limit" in out or "reset" in out, (name, out[:300])
    assert "still here" in logs[-1]
    assert len(logs[HOSTILE_INDEX["flood output"]]) < 1_000_000
    assert ci.beta.assistants.retrieve(a.id).id == a.id  # the service keeps serving


HOSTILE_INDEX = {name: i for i, name in enumerate(HOSTILE)}


def test_data_analysis_through_the_stream_helper(ci: openai.OpenAI, model: ScriptedModel) -> None:
    csv = ci.files.create(file=("sales.csv", io.BytesIO(CSV.encode())), purpose="assistants")
    model.script(run_code(ANALYSIS), Text("Total 60; [summary](sandbox:/mnt/data/summary.csv)"))
    a = ci.beta.assistants.create(model="m", tools=[{"type": "code_interpreter"}])
    t = ci.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": "analyse",
                "attachments": [{"file_id": csv.id, "tools": [{"type": "code_interpreter"}]}],
            }
        ]
    )
    with ci.beta.threads.runs.stream(thread_id=t.id, assistant_id=a.id) as stream:
        stream.until_done()
        final = stream.get_final_messages()[0]
        run = stream.get_final_run()
    assert run.status == "completed"
    image, text = final.content
    assert image.type == "image_file" and ci.files.content(image.image_file.file_id).read()[:4] == b"\x89PNG"  # type: ignore[union-attr]
    ann = text.text.annotations[0]  # type: ignore[union-attr]
    assert ann.type == "file_path" and b"mean" in ci.files.content(ann.file_path.file_id).read()  # type: ignore[union-attr]
    assert text.text.value[ann.start_index : ann.end_index] == "sandbox:/mnt/data/summary.csv"  # type: ignore[union-attr]
