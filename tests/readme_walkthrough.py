"""The README's walkthrough, runnable: `.venv/bin/python tests/readme_walkthrough.py`.

Starts the service (a subprocess, real Docker sandbox if available) with the scripted model standing in for
a local LLM, so the tool calls are the ones a capable model would make. Prints what the SDK returns.
"""

from __future__ import annotations

import io
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore", category=DeprecationWarning)

from openai import OpenAI  # noqa: E402

from tests.fakes.model_server import Call, ScriptedModel, Text, ToolCalls  # noqa: E402
from tests.process import ServerProcess  # noqa: E402


def main() -> None:
    with ScriptedModel() as model, tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp), AGENT_MODEL_URL=model.url).start()
        try:
            client = OpenAI(base_url=f"{server.url}/v1", api_key="sk-local")
            print("# 1. assistant, thread, messages")
            assistant = client.beta.assistants.create(model="gpt-4o", name="Helper", instructions="Be brief.")
            print(assistant.id, assistant.name, assistant.model)
            thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hello!"}])
            for m in client.beta.threads.messages.list(thread.id):
                print(m.role, m.content[0].text.value, m.status)  # type: ignore[union-attr]

            print("\n# 2. math tutor (calculator)")
            model.script(
                ToolCalls([Call("calculator", {"expression": "1/3 + 1/6"})]),
                Text("1/3 + 1/6 = 1/2: write both with denominator 6, then 2/6 + 1/6 = 3/6 = 1/2."),
            )
            tutor = client.beta.assistants.create(
                model="gpt-4o", instructions="You are a math tutor.", tools=[{"type": "calculator"}]
            )  # type: ignore[list-item]
            run = client.beta.threads.create_and_run_poll(
                assistant_id=tutor.id,
                thread={"messages": [{"role": "user", "content": "What is 1/3 + 1/6?"}]},
            )
            step = client.beta.threads.runs.steps.list(run.id, thread_id=run.thread_id, order="asc").data[0]
            call = step.step_details.tool_calls[0]  # type: ignore[union-attr]
            print(run.status, call.function.name, call.function.arguments, "->", call.function.output)  # type: ignore[union-attr]
            print(client.beta.threads.messages.list(run.thread_id).data[0].content[0].text.value)  # type: ignore[union-attr]

            print("\n# 3. data analysis (code_interpreter), streamed")
            csv = client.files.create(
                file=("sales.csv", io.BytesIO(b"month,amount\njan,10\nfeb,20\nmar,30\n")),
                purpose="assistants",
            )
            code = (
                "import pandas as pd, matplotlib.pyplot as plt\ndf = pd.read_csv('/mnt/data/sales.csv')\n"
                "print(df.amount.sum())\ndf.plot(x='month', y='amount')\n"
                "df.describe().to_csv('/mnt/data/summary.csv')"
            )
            model.script(
                ToolCalls([Call("code_interpreter", {"code": code})]),
                Text("Total sales: 60. Chart above; [summary.csv](sandbox:/mnt/data/summary.csv)"),
            )
            analyst = client.beta.assistants.create(
                model="gpt-4o",
                tools=[{"type": "code_interpreter"}],
                tool_resources={"code_interpreter": {"file_ids": [csv.id]}},
            )
            thread = client.beta.threads.create(messages=[{"role": "user", "content": "Total and a chart?"}])
            with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=analyst.id) as stream:
                for event in stream:
                    if event.event == "thread.run.step.completed" and event.data.type == "tool_calls":
                        out = event.data.step_details.tool_calls[0].code_interpreter.outputs  # type: ignore[union-attr]
                        print("outputs:", [o.type for o in out], "logs:", out[0].logs.strip())  # type: ignore[union-attr]
                final = stream.get_final_messages()[0]
            image, text = final.content
            print(
                "image:",
                image.image_file.file_id,  # type: ignore[union-attr]
                client.files.content(image.image_file.file_id).read()[:4],
            )  # type: ignore[union-attr]
            print("text:", text.text.value)  # type: ignore[union-attr]
            ann = text.text.annotations[0]  # type: ignore[union-attr]
            print("annotation:", ann.type, ann.text, "->", ann.file_path.file_id)  # type: ignore[union-attr]
            print(client.files.content(ann.file_path.file_id).read().decode().splitlines()[:3])  # type: ignore[union-attr]
        finally:
            server.stop()


if __name__ == "__main__":
    main()
