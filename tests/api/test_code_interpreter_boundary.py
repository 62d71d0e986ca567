"""The sandbox boundary through the API (issue 11): the attacks as a model would run them, on the real
engine, with the official SDK as the client and the scripted model server."""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator

import httpx
import openai
import pytest
from openai.types.beta.threads import Run

from tests.conftest import LiveServer, LoopThread, make_settings, require_docker, serve
from tests.fakes.model_server import Call, ScriptedModel, Text, ToolCalls
from tests.sandbox.test_boundary import CUT_SERVICE_CONNECTION, SWAPPER, connections

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]  # many containers on a shared machine
DEADLINE = 600  # seconds a run may take before the test calls it stuck (a liveness bound, not a timing)
FIFO_THREADS = 6


def run_code(code: str) -> ToolCalls:
    return ToolCalls([Call("code_interpreter", {"code": code})])


@pytest.fixture(scope="module")
def boundary(
    loop_thread: LoopThread, scripted: ScriptedModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    require_docker()
    settings = make_settings(
        tmp_path_factory.mktemp("boundary"),
        model_url=scripted.url,
        api_keys="sk-a,sk-b",
        sandbox_enabled=True,
        sandbox_pool=1,
        code_timeout=120.0,
        code_files_per_call=50,
        code_files_per_thread=120,
        code_sessions_per_key=16,
    )
    yield from serve(loop_thread, settings)


@pytest.fixture(scope="module")
def one_session_each(
    loop_thread: LoopThread, scripted: ScriptedModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    require_docker()
    settings = make_settings(
        tmp_path_factory.mktemp("one-session"),
        model_url=scripted.url,
        sandbox_enabled=True,
        sandbox_pool=0,
        code_sessions_per_key=1,
    )
    yield from serve(loop_thread, settings)


def tool_messages(model: ScriptedModel) -> list[str]:
    """Each tool result once: the ones a request adds after the last assistant message."""
    out = []
    for request in model.requests:
        new: list[str] = []
        for m in request["messages"]:
            if m["role"] == "assistant":
                new = []
            elif m["role"] == "tool":
                new.append(m["content"])
        out.extend(new)
    return out


def wait(client: openai.OpenAI, run: Run) -> Run:
    deadline = time.monotonic() + DEADLINE
    while run.status in ("queued", "in_progress"):
        assert time.monotonic() < deadline, f"run {run.id} stuck {run.status}"
        run = client.beta.threads.runs.poll(run.id, thread_id=run.thread_id, poll_interval_ms=200)
    return run


def logs(client: openai.OpenAI, run: Run) -> list[str]:
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=run.thread_id, order="asc").data
    return [
        "".join(o.logs for o in call.code_interpreter.outputs if o.type == "logs")  # type: ignore[union-attr]
        for s in steps
        if s.type == "tool_calls"
        for call in s.step_details.tool_calls  # type: ignore[union-attr]
    ]


def test_socket_swap_through_a_run_never_reaches_the_host(boundary: LiveServer, model: ScriptedModel) -> None:
    tmp = tempfile.mkdtemp(prefix="honey")
    os.chmod(tmp, 0o755)
    path = os.path.join(tmp, "host.sock")
    honey = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    honey.bind(path)
    honey.listen(128)
    honey.setblocking(False)
    try:
        client = boundary.client("sk-a")
        model.script(
            run_code(SWAPPER.format(honey=path) + CUT_SERVICE_CONNECTION),
            run_code("print('next')"),
            run_code("print('alive')"),
            Text("done"),
        )
        a = client.beta.assistants.create(model="m", tools=[{"type": "code_interpreter"}])
        t = client.beta.threads.create(messages=[{"role": "user", "content": "race"}])
        run = wait(client, client.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id))
        assert run.status == "completed"
        armed, after, alive = logs(client, run)
        assert "'armed'" in armed and "reset" in after and "alive" in alive
        assert connections(honey) == 0
    finally:
        honey.close()
        shutil.rmtree(tmp, ignore_errors=True)


def test_fifo_in_many_threads_while_another_key_completes(boundary: LiveServer, model: ScriptedModel) -> None:
    a_client, b_client = boundary.client("sk-a"), boundary.client("sk-b")
    csv = a_client.files.create(file=("data.csv", io.BytesIO(b"a,b\n1,2\n")), purpose="assistants")
    a = a_client.beta.assistants.create(
        model="m",
        tools=[{"type": "code_interpreter"}],
        tool_resources={"code_interpreter": {"file_ids": [csv.id]}},
    )
    arm = (
        "import os\nos.remove('/mnt/data/data.csv')\nos.mkfifo('/mnt/data/data.csv')\nos.kill(os.getpid(), 9)"
    )
    threads = []
    for _ in range(FIFO_THREADS):  # arm: each thread's sandbox now holds a FIFO where its file was
        model.script(run_code(arm), Text("armed"))
        t = a_client.beta.threads.create(messages=[{"role": "user", "content": "x"}])
        assert wait(
            a_client, a_client.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id)
        ).status == ("completed")
        threads.append(t.id)
    model.requests.clear()
    # Every run, whatever turn it draws first, ends on exactly one Text: the script drains in any order.
    n = FIFO_THREADS + 1
    model.script(*[run_code("print('after')") for _ in range(n)], *[Text("ok") for _ in range(n)])
    runs = [a_client.beta.threads.runs.create(thread_id=t, assistant_id=a.id) for t in threads]
    b_file = b_client.files.create(file=("kb.txt", io.BytesIO(b"tenant b knowledge")), purpose="assistants")
    vs = b_client.vector_stores.create(name="kb", file_ids=[b_file.id])
    b_asst = b_client.beta.assistants.create(model="m", tools=[{"type": "code_interpreter"}])
    b_thread = b_client.beta.threads.create(messages=[{"role": "user", "content": "y"}])
    b_run = b_client.beta.threads.runs.create(thread_id=b_thread.id, assistant_id=b_asst.id)
    deadline = time.monotonic() + DEADLINE
    while b_client.vector_stores.retrieve(vs.id).status == "in_progress":
        assert time.monotonic() < deadline, "tenant b's ingestion is stuck"
        time.sleep(0.1)  # polling a status with a deadline
    assert b_client.vector_stores.retrieve(vs.id).file_counts.completed == 1
    assert wait(b_client, b_run).status == "completed"
    finished = [wait(a_client, r) for r in runs]
    assert all(r.status == "completed" for r in finished)
    a_calls = sum(len(logs(a_client, r)) for r in finished)
    refused = [m for m in tool_messages(model) if "could not be placed" in m]
    assert len(refused) == a_calls and all("data.csv" in m and "after" in m for m in refused)
    for t in threads:
        a_client.beta.threads.delete(t)
    b_client.beta.threads.delete(b_thread.id)


def test_hundred_thousand_files_and_the_thread_limit(boundary: LiveServer, model: ScriptedModel) -> None:
    client = boundary.client("sk-a")
    many = "import os\nos.makedirs('/mnt/data/many')\nfor i in range(100_000):\n    open(f'/mnt/data/many/{i}', 'w').close()"
    more = "for i in range({start}, {start} + 60):\n    open(f'/mnt/data/more{{i}}.txt', 'w').write(str(i))"
    model.script(
        run_code(many), run_code(more.format(start=0)), run_code(more.format(start=100)), Text("done")
    )
    a = client.beta.assistants.create(model="m", tools=[{"type": "code_interpreter"}])
    t = client.beta.threads.create(messages=[{"role": "user", "content": "flood"}])
    run = wait(client, client.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id))
    assert run.status == "completed"
    first, second, third = tool_messages(model)
    assert first.count("[file written:") == 50 and "the first 50 are attached" in first
    assert re.search(r"\[(more than [\d,]{5,}|100,000) files were written", first), first[-300:]
    assert second.count("[file written:") == 50 and "60 files were written; the first 50" in second
    assert third.count("[file written:") == 20 and "limit of 120 files" in third


def test_patched_kernel_and_sparse_file(boundary: LiveServer, model: ScriptedModel) -> None:
    client = boundary.client("sk-a")
    patch = (
        "import gc, os\nwith open('/mnt/data/big.bin', 'wb') as f:\n    f.write(b'1' * (64 << 20))\n"
        "k = next(o for o in gc.get_objects() if type(o).__name__ == 'Kernel')\n"
        "entry = {'path': 'big.bin', 'size': 1, 'mtime': 0.0}\n"
        "k.changed = lambda before: {'files': [entry] * 16 + [{'path': '../../etc/passwd', 'size': 1, 'mtime': 0}],"
        " 'files_total': 17, 'files_complete': True}\n"
    )
    sparse = (
        "with open('/mnt/data/sparse.bin', 'wb') as f:\n    f.truncate(2 << 30)\n"
        "open('/mnt/data/small.txt', 'w').write('small')"
    )
    model.script(run_code(patch), run_code("None"), Text("done"), run_code(sparse), Text("done"))
    a = client.beta.assistants.create(model="m", tools=[{"type": "code_interpreter"}])
    for _ in range(2):
        t = client.beta.threads.create(messages=[{"role": "user", "content": "tricks"}])
        run = wait(client, client.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id))
        assert run.status == "completed"
    _, listed, sparse_out = tool_messages(model)
    assert listed.count("[file written:") == 1 and "sandbox:/mnt/data/big.bin" in listed
    assert "passwd" not in listed and "duplicates or invalid names" in listed
    assert "[not attached: sparse.bin (2,147,483,648 bytes" in sparse_out
    assert "sandbox:/mnt/data/small.txt" in sparse_out


def peak_rss() -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) << 10 for line in fh if line.startswith("VmHWM:"))


def test_big_output_streams_while_health_answers(boundary: LiveServer, model: ScriptedModel) -> None:
    """/health keeps answering while a 256 MiB output is copied to storage, which never holds it in memory.
    (The service runs in this process: its peak RSS is this process's.)"""
    client = boundary.client("sk-a")
    write = (
        "chunk = b'2' * (1 << 20)\nwith open('/mnt/data/big.bin', 'wb') as f:\n"
        "    for _ in range(256):\n        f.write(chunk)\ndel chunk"
    )
    model.script(run_code(write), Text("[big](sandbox:/mnt/data/big.bin)"))
    a = client.beta.assistants.create(model="m", tools=[{"type": "code_interpreter"}])
    t = client.beta.threads.create(messages=[{"role": "user", "content": "big"}])
    staging = boundary.settings.data_dir / "sandbox-out"
    while_collecting: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        with httpx.Client(base_url=boundary.url, timeout=60) as http:
            while not stop.is_set():
                start = time.perf_counter()
                assert http.get("/health").status_code == 200
                latency = time.perf_counter() - start
                if any(staging.glob("ci-*")):  # an output is being streamed to storage right now
                    while_collecting.append(latency)

    floor = []
    with httpx.Client(base_url=boundary.url, timeout=60) as http:
        for _ in range(20):
            start = time.perf_counter()
            http.get("/health")
            floor.append(time.perf_counter() - start)
    rss_before = peak_rss()
    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    try:
        run = wait(client, client.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id))
    finally:
        stop.set()
        prober.join(60)
    assert run.status == "completed"
    assert while_collecting, "no /health answer while the 256 MiB output was being stored"
    print(
        f"/health while storing 256 MiB: {len(while_collecting)} answers, max {max(while_collecting) * 1000:.1f} ms;"
        f" floor p50 {sorted(floor)[len(floor) // 2] * 1000:.1f} ms; peak RSS +{(peak_rss() - rss_before) >> 20} MiB"
    )
    assert peak_rss() - rss_before < 128 << 20  # streamed in chunks, never whole in memory
    msg = client.beta.threads.messages.list(t.id, run_id=run.id).data[0]
    ann = msg.content[0].text.annotations[0]  # type: ignore[union-attr]
    assert client.files.retrieve(ann.file_path.file_id).bytes == 256 << 20  # type: ignore[union-attr]


def test_pid_1_and_an_execd_program(boundary: LiveServer, model: ScriptedModel) -> None:
    client = boundary.client("sk-b")
    trace = (
        "import ctypes, os, signal\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "r = libc.ptrace(16, 1, 0, 0)\nos.kill(1, signal.SIGUSR1)\nprint('traced', r, ctypes.get_errno())"
    )
    execd = "import os, signal\nsignal.setitimer(signal.ITIMER_REAL, 0)\nos.execv('/bin/sleep', ['sleep', '1000'])"
    model.script(
        run_code("kept = 1"), run_code(trace), run_code("print(kept)"), run_code(execd), Text("done")
    )
    a = client.beta.assistants.create(model="m", tools=[{"type": "code_interpreter"}])
    t = client.beta.threads.create(messages=[{"role": "user", "content": "init"}])
    run = wait(client, client.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id))
    assert run.status == "completed"
    _, traced, kept, exec_logs = logs(client, run)
    assert "traced -1 1" in traced and kept.strip() == "1" and "reset" in exec_logs


def test_sessions_per_key_limit_tells_the_model_to_retry(
    one_session_each: LiveServer, model: ScriptedModel
) -> None:
    client = one_session_each.client()
    a = client.beta.assistants.create(model="m", tools=[{"type": "code_interpreter"}])
    model.script(run_code("print('first')"), Text("ok"), run_code("print('second')"), Text("later"))
    first = client.beta.threads.create(messages=[{"role": "user", "content": "1"}])
    second = client.beta.threads.create(messages=[{"role": "user", "content": "2"}])
    r1 = wait(client, client.beta.threads.runs.create(thread_id=first.id, assistant_id=a.id))
    r2 = wait(client, client.beta.threads.runs.create(thread_id=second.id, assistant_id=a.id))
    assert r1.status == r2.status == "completed"
    ok, limited = tool_messages(model)
    assert "first" in ok
    assert "too many code_interpreter sessions" in limited and "Retry later" in limited
    client.beta.threads.delete(first.id)  # frees the key's session
    model.script(run_code("print('now')"), Text("ok"))
    r3 = wait(client, client.beta.threads.runs.create(thread_id=second.id, assistant_id=a.id))
    assert r3.status == "completed" and "now" in logs(client, r3)[0]
