"""The service's own image: built here without a registry, run with `docker run` as the README says, driven
from the host by the official SDK, code_interpreter included (sandboxes started by the containerised
service on the host's engine), then stopped, crashed and restarted on the same data volume.

The scripted model listens on the Docker bridge's gateway address, which the container reaches as
``host.docker.internal`` (``--add-host …:host-gateway``): the service keeps its own network namespace
instead of ``--network host``, so it sees only what the host deliberately listens for on the bridge.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import docker
import docker.errors
import openai
import pytest

from tests.conftest import require_docker
from tests.fakes.model_server import Call, ScriptedModel, Text, ToolCalls

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / ".ci" / "build-service-image.sh"
KEY = "sk-image-" + uuid.uuid4().hex[:8]
PREFIX = "agent-sandbox"  # the service's default label prefix
SOCKET = "/var/run/docker.sock"
CSV = "month,amount\njan,10\nfeb,20\nmar,30\n"
ANALYSIS = (
    "import pandas as pd\nimport matplotlib.pyplot as plt\n"
    "df = pd.read_csv('/mnt/data/sales.csv')\nprint('total', df['amount'].sum())\n"
    "df.plot(x='month', y='amount')\ndf.describe().to_csv('/mnt/data/summary.csv')"
)


def docker_cli(*args: str, timeout: float = 300) -> str:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"docker {' '.join(args[:2])} failed: {proc.stderr.strip()[-2000:]}"
    return proc.stdout.strip()


def timestamp(text: str) -> datetime:
    """Docker's RFC 3339 times (nanoseconds, ``Z`` or an offset) as aware datetimes."""
    m = re.fullmatch(r"([^.]+?)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text)
    assert m, text
    frac = (m.group(2) or "0")[:6].ljust(6, "0")
    return datetime.fromisoformat(f"{m.group(1)}.{frac}{'+00:00' if m.group(3) == 'Z' else m.group(3)}")


class Service:
    """One container of the service image, on a data volume, talking to the host's engine."""

    def __init__(self, engine: docker.DockerClient, image: str, volume: str, model_url: str) -> None:
        self.engine, self.image, self.volume, self.model_url = engine, image, volume, model_url
        self.id = ""
        self.clients: list[openai.OpenAI] = []

    def run(self) -> None:
        volumes = str(self.engine.info()["DockerRootDir"]).rstrip("/") + "/volumes"
        self.id = docker_cli(
            "run", "-d", "--name", f"agent-image-test-{uuid.uuid4().hex[:8]}",
            "--read-only", "--tmpfs", "/tmp:rw,nosuid,nodev,size=64m",
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "--group-add", str(os.stat(SOCKET).st_gid),
            "-v", f"{SOCKET}:/var/run/docker.sock",
            "--mount", f"type=bind,source={volumes},target={volumes},bind-propagation=rslave",
            "-v", f"{self.volume}:/data",
            "-p", "127.0.0.1::8000",
            "--add-host", "host.docker.internal:host-gateway",
            "-e", f"AGENT_MODEL_URL={self.model_url}",
            "-e", f"AGENT_API_KEYS={KEY}",
            "-e", "AGENT_SANDBOX_POOL=1",
            "-e", "AGENT_EMBEDDINGS=false",
            self.image,
        )  # fmt: skip

    def inspect(self) -> dict:  # type: ignore[type-arg]
        return self.engine.api.inspect_container(self.id)  # type: ignore[no-any-return]

    def wait_healthy(self, limit: float = 240) -> None:
        """Until Docker's own HEALTHCHECK (the image's) passes in this incarnation of the container (after
        a restart Docker may still show the last incarnation's status for a while)."""
        deadline = time.monotonic() + limit
        while True:
            state = self.inspect()["State"]
            health = state.get("Health") or {}
            since = timestamp(state["StartedAt"])
            fresh = [
                p for p in health.get("Log") or [] if timestamp(p["Start"]) > since and p["ExitCode"] == 0
            ]
            if health.get("Status") == "healthy" and fresh:
                return
            if not state["Running"] or time.monotonic() > deadline:
                logs = self.engine.containers.get(self.id).logs(tail=60).decode(errors="replace")
                pytest.fail(f"service not healthy ({health}, running={state['Running']}):\n{logs}")
            time.sleep(0.5)  # polling Docker's health state, with a deadline

    def client(self) -> openai.OpenAI:
        port = self.inspect()["NetworkSettings"]["Ports"]["8000/tcp"][0]["HostPort"]
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0)
        self.clients.append(client)
        return client

    def sandboxes(self, started: str | None = None) -> list[str]:
        label = f"{PREFIX}.container={self.id}"
        found = self.engine.containers.list(all=True, filters={"label": label})
        return [c.name for c in found if started is None or c.labels.get(f"{PREFIX}.started") == started]

    def sandbox_volumes(self) -> list[str]:
        return [v.name for v in self.engine.volumes.list(filters={"label": f"{PREFIX}.container={self.id}"})]

    def wait_for_sandbox(self, limit: float = 180) -> None:
        started = self.inspect()["State"]["StartedAt"]
        deadline = time.monotonic() + limit
        while not self.sandboxes(started):
            assert time.monotonic() < deadline, "the service started no sandbox"
            time.sleep(0.5)  # polling the engine for the pool's container, with a deadline

    def remove(self) -> None:
        for client in self.clients:
            client.close()
        if self.id:
            with_sandboxes = self.sandboxes()
            subprocess.run(["docker", "rm", "-f", self.id], capture_output=True)
            for name in with_sandboxes:
                subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True)
            for vol in self.sandbox_volumes():
                subprocess.run(["docker", "volume", "rm", "-f", vol], capture_output=True)


def bridge_gateway(engine: docker.DockerClient) -> str:
    """The host's address on the default bridge (what ``host-gateway`` resolves to in a container)."""
    attrs = engine.networks.get("bridge").attrs
    for config in attrs["IPAM"]["Config"] or []:
        if config.get("Gateway"):
            return str(config["Gateway"])
    name = attrs["Options"]["com.docker.network.bridge.name"]
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", name], capture_output=True, text=True)
    return out.stdout.split()[3].split("/")[0]


@pytest.fixture(scope="module")
def engine() -> Iterator[docker.DockerClient]:
    require_docker()
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(scope="module")
def image(engine: docker.DockerClient) -> str:
    """Built by the CI script (cached: a no-op when the sources did not change)."""
    proc = subprocess.run(["bash", str(BUILD)], capture_output=True, text=True, timeout=1700)
    assert proc.returncode == 0, f"image build failed:\n{proc.stderr[-4000:]}"
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def model(engine: docker.DockerClient) -> Iterator[ScriptedModel]:
    with ScriptedModel(host=bridge_gateway(engine)) as scripted:
        yield scripted


@pytest.fixture(scope="module")
def service(engine: docker.DockerClient, image: str, model: ScriptedModel) -> Iterator[Service]:
    volume = engine.volumes.create(f"agent-image-test-{uuid.uuid4().hex[:8]}")
    svc = Service(engine, image, volume.name, f"http://host.docker.internal:{model.port}/v1")
    try:
        svc.run()
        svc.wait_healthy()
        yield svc
    finally:
        svc.remove()
        with_retry = 3
        while with_retry:
            try:
                volume.remove(force=True)
                break
            except docker.errors.APIError:
                with_retry -= 1
                time.sleep(1)  # the removed container may still hold the volume for a moment


def test_runs_as_non_root_on_a_read_only_root_with_a_working_healthcheck(service: Service) -> None:
    attrs = service.inspect()
    assert attrs["Config"]["User"] == "65534:65534" and attrs["HostConfig"]["ReadonlyRootfs"] is True
    assert attrs["State"]["Health"]["Status"] == "healthy"  # the image's HEALTHCHECK (python + urllib)
    container = service.engine.containers.get(service.id)
    code, out = container.exec_run(
        ["/opt/agent/bin/python", "-c", "import os; print(os.getuid(), os.getgid())"]
    )
    assert code == 0 and out.decode().split() == ["65534", "65534"]
    code, out = container.exec_run(["/opt/agent/bin/python", "-c", "open('/opt/x', 'w')"])
    assert code != 0 and b"Read-only file system" in out
    code, _ = container.exec_run(["/opt/agent/bin/python", "-c", "open('/data/probe', 'w').close()"])
    assert code == 0  # the data volume is writable by the service's user


def test_the_sdk_drives_runs_files_and_code_interpreter_through_the_container(
    service: Service, model: ScriptedModel
) -> None:
    sdk = service.client()
    # a plain run against the scripted model, reached from inside the container
    model.script(Text("Hello from inside the container"))
    assistant = sdk.beta.assistants.create(model="m", tools=[{"type": "code_interpreter"}])
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, timeout=120)
    assert run.status == "completed"
    reply = sdk.beta.threads.messages.list(thread.id, run_id=run.id).data[0]
    assert reply.content[0].text.value == "Hello from inside the container"  # type: ignore[union-attr]

    # file upload and download
    csv = sdk.files.create(file=("sales.csv", io.BytesIO(CSV.encode())), purpose="assistants")
    assert sdk.files.content(csv.id).read() == CSV.encode()

    # code_interpreter: the uploaded file goes in, logs, a chart and a file come out
    model.script(
        ToolCalls([Call("code_interpreter", {"code": ANALYSIS})]),
        Text("Total is 60. Summary: [summary.csv](sandbox:/mnt/data/summary.csv)"),
    )
    run = sdk.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant.id,
        additional_messages=[
            {
                "role": "user",
                "content": "Analyse my sales",
                "attachments": [{"file_id": csv.id, "tools": [{"type": "code_interpreter"}]}],
            }
        ],
        timeout=300,
    )
    assert run.status == "completed", run.last_error
    step = sdk.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data[0]
    outputs = step.step_details.tool_calls[0].code_interpreter.outputs  # type: ignore[union-attr]
    assert outputs[0].type == "logs" and "total 60" in outputs[0].logs  # type: ignore[union-attr]
    png = sdk.files.content(outputs[1].image.file_id).read()  # type: ignore[union-attr]
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    text = sdk.beta.threads.messages.list(thread.id, run_id=run.id).data[0].content[1].text  # type: ignore[union-attr]
    summary = sdk.files.content(text.annotations[0].file_path.file_id).read().decode()  # type: ignore[union-attr]
    assert "amount" in summary and "mean" in summary
    assert service.sandboxes(), "the sandbox should be a container of the host's engine"

    # stopped by container id: the service removes its sandboxes on the way out
    docker_cli("stop", "-t", "120", service.id, timeout=180)
    assert service.inspect()["State"]["ExitCode"] == 0
    assert service.sandboxes() == [] and service.sandbox_volumes() == []

    # started again on the same volume: the data is still there
    docker_cli("start", service.id)
    service.wait_healthy()
    sdk = service.client()
    assert sdk.beta.assistants.retrieve(assistant.id).tools[0].type == "code_interpreter"
    assert sdk.files.content(csv.id).read() == CSV.encode()
    assert sdk.files.content(outputs[1].image.file_id).read() == png  # type: ignore[union-attr]
    texts = [
        m.content[0].text.value
        for m in sdk.beta.threads.messages.list(thread.id, order="asc").data
        if m.role == "assistant" and m.content[0].type == "text"
    ]  # type: ignore[union-attr]
    assert "Hello from inside the container" in texts

    # a crash (SIGKILL) leaves sandboxes behind; the next start of the same container (same hostname,
    # pid 1 again) removes them, because they carry the start time of the incarnation that made them
    service.wait_for_sandbox()
    crashed = service.sandboxes()
    docker_cli("kill", service.id)
    assert service.sandboxes() == crashed
    docker_cli("start", service.id)
    service.wait_healthy()
    assert not set(service.sandboxes()) & set(crashed)
    model.script(ToolCalls([Call("code_interpreter", {"code": "print(6 * 7)"})]), Text("42"))
    sdk = service.client()
    again = sdk.beta.threads.create(messages=[{"role": "user", "content": "compute"}])
    run = sdk.beta.threads.runs.create_and_poll(thread_id=again.id, assistant_id=assistant.id, timeout=300)
    assert run.status == "completed", run.last_error
    step = sdk.beta.threads.runs.steps.list(run.id, thread_id=again.id).data[-1]
    assert "42" in step.step_details.tool_calls[0].code_interpreter.outputs[0].logs  # type: ignore[union-attr]
    docker_cli("stop", "-t", "120", service.id, timeout=180)
    assert service.sandboxes() == [] and service.sandbox_volumes() == []
