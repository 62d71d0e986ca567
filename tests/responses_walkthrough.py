"""The README's Responses walkthrough and migration guide, runnable:
`.venv/bin/python tests/responses_walkthrough.py`.

Starts the service (a subprocess) with the scripted model standing in for a local LLM and prints what the
official SDK and the Agents SDK get back.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore", category=DeprecationWarning)

from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled  # noqa: E402
from openai import AsyncOpenAI, OpenAI  # noqa: E402

from tests.fakes.model_server import Call, ScriptedModel, Text, ToolCalls  # noqa: E402
from tests.process import ServerProcess  # noqa: E402

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def main() -> None:
    with ScriptedModel() as model, tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp), AGENT_MODEL_URL=model.url, AGENT_SANDBOX_ENABLED="false").start()
        try:
            client = OpenAI(base_url=f"{server.url}/v1", api_key="sk-local")
            print("# 1. a response, streamed")
            model.script(Text("Hello! How can I help?"))
            with client.responses.stream(model="gpt-4o", input="Hello!", instructions="Be brief.") as stream:
                for event in stream:
                    if event.type == "response.output_text.delta":
                        print(repr(event.delta), end=" ")
                final = stream.get_final_response()
            print("\n", final.id, final.status, final.usage.total_tokens if final.usage else None)

            print("\n# 2. a function tool, continued with previous_response_id")
            model.script(ToolCalls([Call("get_weather", {"city": "Oslo"})]), Text("Sunny, 21C in Oslo."))
            first = client.responses.create(model="gpt-4o", input="Weather in Oslo?", tools=[WEATHER])  # type: ignore[list-item]
            call = first.output[0]
            print(call.type, call.name, call.arguments)  # type: ignore[union-attr]
            second = client.responses.create(
                model="gpt-4o",
                previous_response_id=first.id,
                tools=[WEATHER],  # type: ignore[list-item]
                input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21C"}],  # type: ignore[union-attr]
            )
            print(second.output_text)

            print("\n# 3. migrating: the Assistants thread is the conversation")
            model.script(Text("Hi Ada."), Text("Your name is Ada."))
            assistant = client.beta.assistants.create(model="gpt-4o", instructions="Be brief.")
            thread = client.beta.threads.create(messages=[{"role": "user", "content": "I am Ada."}])
            client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
            resp = client.responses.create(
                model=assistant.model,
                instructions=assistant.instructions,
                conversation=thread.id,
                input="What is my name?",
            )
            print(resp.output_text)
            for item in client.conversations.items.list(thread.id, order="asc"):
                print(item.type, item.role, item.content[0].text)  # type: ignore[union-attr]

            print("\n# 4. background, then the stream resumed")
            model.script(Text("Done in the background."))
            bg = client.responses.create(model="gpt-4o", input="Take your time.", background=True)
            print(bg.status)
            events = list(client.responses.retrieve(bg.id, stream=True, starting_after=1))  # type: ignore[call-overload]
            print([e.sequence_number for e in events][:3], events[-1].type)

            print("\n# 5. the OpenAI Agents SDK")
            model.script(ToolCalls([Call("get_weather", {"city": "Rome"})]), Text("Rome: sunny."))
            print(asyncio.run(agent_run(server.url)))
        finally:
            server.stop()


@function_tool
def get_weather(city: str) -> str:
    """Weather for a city."""
    return json.dumps({"city": city, "sky": "sunny"})


async def agent_run(url: str) -> str:
    set_tracing_disabled(True)  # nothing leaves the machine
    async with AsyncOpenAI(base_url=f"{url}/v1", api_key="sk-local") as client:
        agent = Agent(
            name="weather",
            instructions="Be brief.",
            tools=[get_weather],
            model=OpenAIResponsesModel(model="gpt-4o", openai_client=client),
        )
        result = await Runner.run(agent, "Weather in Rome?")
        return str(result.final_output)


if __name__ == "__main__":
    main()
