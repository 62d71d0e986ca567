"""Hostile code is contained: the host, the engine and other sessions keep working.

Each hostile call runs concurrently with a probe in another session, which must answer normally.
"""

from __future__ import annotations

import asyncio

import docker
import pytest

from sandbox import ExecResult, SandboxManager, Session, StorageFull

from .conftest import LIMITS

pytestmark = [pytest.mark.docker, pytest.mark.asyncio(loop_scope="session")]

PROBE = "sum(range(10))"
COUNT_PROCESSES = (
    "import os\nstates = []\nfor p in filter(str.isdigit, os.listdir('/proc')):\n"
    "    try:\n        states.append(open(f'/proc/{p}/stat').read().rsplit(')', 1)[1].split()[0])\n"
    "    except OSError:\n        pass\nlen([s for s in states if s != 'Z'])"
)


async def contained(victim: Session, probe: Session, code: str, limit: float = 2.0) -> ExecResult:
    """Run ``code`` in ``victim`` while ``probe`` keeps answering; then ``victim`` must answer again."""
    hostile = asyncio.ensure_future(victim.execute(code, timeout=limit))
    answers = 0
    while not hostile.done() or answers == 0:
        assert (await probe.execute(PROBE)).result == "45"
        answers += 1
    result = await hostile
    after = await victim.execute("'alive'")
    assert after.result == "'alive'", after
    return result


async def test_infinite_loop_stops_at_timeout_and_keeps_state(fresh: Session, shared: Session) -> None:
    await fresh.execute("kept = 'yes'")
    r = await contained(fresh, shared, "while True:\n    pass", limit=1)
    assert r.timed_out and not r.reset
    assert r.error is not None and r.error.name == "TimeoutError"
    assert "while True" in r.error.traceback
    assert (await fresh.execute("kept")).result == "'yes'"


async def test_loop_ignoring_the_alarm_is_interrupted_from_the_host(fresh: Session, shared: Session) -> None:
    await fresh.execute("kept = 'yes'")
    code = "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass"
    r = await contained(fresh, shared, code, limit=1)
    assert r.timed_out and not r.reset
    assert r.error is not None and r.error.name == "TimeoutError" and "interrupted" in r.error.value
    assert (await fresh.execute("kept")).result == "'yes'"
    # The kernel's alarm is back for the next cell: it stops the loop itself.
    again = await fresh.execute("while True:\n    pass", timeout=1)
    assert again.timed_out and again.error is not None and "interrupted" not in again.error.value


async def test_c_loop_is_killed_and_the_session_reset_with_files_kept(
    fresh: Session, shared: Session
) -> None:
    await fresh.execute("lost = 1\nopen('/mnt/data/kept.txt', 'w').write('still here')")
    code = "import signal, itertools\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nsum(itertools.repeat(1))"
    r = await contained(fresh, shared, code, limit=1)
    assert r.timed_out and r.reset and not r.oom_killed
    assert r.error is not None and "variables" in r.error.value and "files" in r.error.value
    assert (await fresh.execute("lost")).error.name == "NameError"  # type: ignore[union-attr]
    assert await fresh.read_file("kept.txt") == b"still here"
    assert (await fresh.execute("open('/mnt/data/kept.txt').read()")).result == "'still here'"


async def test_fork_bomb_is_contained(fresh: Session, shared: Session) -> None:
    code = "import os\nwhile True:\n    os.fork()"
    r = await contained(fresh, shared, code, limit=10)
    assert r.error is not None and r.error.name in ("BlockingIOError", "TimeoutError", "KernelDied")
    count = await fresh.execute(COUNT_PROCESSES)
    assert count.result == "2"  # supervisor and kernel: no process outlives its cell


async def test_background_processes_do_not_outlive_their_cell(shared: Session) -> None:
    await shared.execute("import subprocess\np = subprocess.Popen(['sleep', '1000'])")
    r = await shared.execute(COUNT_PROCESSES)
    assert r.result == "2"


async def test_memory_bomb_is_oom_killed_and_reported(fresh: Session, shared: Session) -> None:
    await fresh.execute("lost = 1")
    r = await contained(fresh, shared, "hog = b'x' * (2 << 30)", limit=20)
    assert r.error is not None
    if r.error.name == "MemoryError" and not r.reset:
        pytest.skip("the allocation failed with MemoryError before the OOM killer fired")
    assert r.oom_killed and r.reset
    assert r.error.name == "MemoryError" and "memory" in r.error.value
    assert (await fresh.execute("lost")).error.name == "NameError"  # type: ignore[union-attr]


async def test_memory_hog_in_a_child_process_is_reported(shared: Session) -> None:
    code = "import subprocess\nsubprocess.run(['python3', '-c', 'x = b\"x\" * (2 << 30)']).returncode"
    r = await shared.execute(code, timeout=20)
    assert r.result == "-9" and r.oom_killed and not r.reset


async def test_no_network(shared: Session) -> None:
    r = await shared.execute(
        "import socket\nresults = []\n"
        "for target in [('1.1.1.1', 80), ('8.8.8.8', 53)]:\n"
        "    try:\n        socket.create_connection(target, timeout=2)\n        results.append('connected')\n"
        "    except OSError as exc:\n        results.append(type(exc).__name__)\n"
        "try:\n    socket.getaddrinfo('example.com', 80)\n    results.append('resolved')\n"
        "except OSError as exc:\n    results.append(type(exc).__name__)\n"
        "ifaces = [l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:]]\n"
        "(results, ifaces)"
    )
    assert r.result is not None
    assert "connected" not in r.result and "resolved" not in r.result
    assert r.result.endswith("['lo'])")


async def test_writes_outside_tmp_and_data_fail(shared: Session) -> None:
    r = await shared.execute(
        "import os\nok = []\n"
        "for d in ['/', '/usr', '/etc', '/var/tmp', '/root', '/home', '/run', '/opt', '/usr/lib/python3']:\n"
        "    try:\n        open(os.path.join(d, 'pwned'), 'w').close()\n        ok.append(d)\n"
        "    except OSError:\n        pass\n"
        "for d in ['/tmp', '/mnt/data']:\n"
        "    open(os.path.join(d, 'fine'), 'w').close()\n"
        "(ok, os.getuid())"
    )
    assert r.result == "([], 65534)", r


async def test_host_paths_are_not_reachable(shared: Session, docker_client: docker.DockerClient) -> None:
    r = await shared.execute(
        "import os\n[p for p in ['/var/run/docker.sock', '/run/docker.sock', '/work', '/var/lib/docker',"
        " '/etc/docker', '/root/.docker'] if os.path.exists(p)]"
    )
    assert r.result == "[]"
    # The sandbox plants symlinks in /mnt/data; the host side must not follow them.
    await shared.execute(
        "import os\nos.symlink('/etc/shadow', '/mnt/data/shadow')\nos.symlink('/etc', '/mnt/data/etc')"
    )
    for path in ("shadow", "etc/passwd", "../../../../etc/passwd"):
        with pytest.raises(ValueError):
            await shared.read_file(path)
    with pytest.raises(ValueError):
        await shared.write_file("etc/evil", b"x")
    assert "shadow" not in {f.path for f in await shared.list_files()}
    await shared.execute("os.remove('/mnt/data/shadow')\nos.remove('/mnt/data/etc')")
    assert docker_client.ping()


async def test_huge_output_is_capped(shared: Session) -> None:
    r = await shared.execute("print('x' * 100_000_000)", timeout=20)
    assert r.truncated and len(r.stdout) == LIMITS.output_bytes
    lines = await shared.execute("for i in range(1_000_000):\n    print(i)", timeout=20)
    assert lines.truncated and len(lines.stdout.encode()) <= LIMITS.output_bytes
    fd = await shared.execute(
        "import os\nos.system('head -c 100000000 /dev/zero | tr \"\\\\0\" y')", timeout=20
    )
    assert fd.truncated and 0 < len(fd.stdout) <= LIMITS.output_bytes
    assert (await shared.execute("print('small')")).stdout == "small\n"


async def test_filling_data_dir_hits_the_quota(shared: Session) -> None:
    r = await shared.execute(
        "f = open('/mnt/data/fill', 'wb')\nwhile True:\n    f.write(b'0' * (1 << 20))\n    f.flush()",
        timeout=20,
    )
    assert r.error is not None and r.error.name == "OSError" and "No space left" in r.error.value
    with pytest.raises(StorageFull):
        await shared.write_file("more.bin", b"1" * (LIMITS.data_mb << 20))
    await shared.execute("f.close()\nimport os\nos.remove('/mnt/data/fill')")
    await shared.write_file("after.txt", b"fits again")
    assert await shared.read_file("after.txt") == b"fits again"


async def test_sessions_never_see_each_other(manager: SandboxManager) -> None:
    a, b = await manager.session("iso-a"), await manager.session("iso-b")
    try:
        await a.execute("secret = 'a-only'\nopen('/mnt/data/a.txt', 'w').write('a')")
        await b.write_file("b.txt", b"b")
        seen = await b.execute("import os\n('secret' in globals(), sorted(os.listdir('/mnt/data')))")
        assert seen.result == "(False, ['b.txt'])"
        assert [f.path for f in await a.list_files()] == ["a.txt"]
        with pytest.raises(FileNotFoundError):
            await a.read_file("b.txt")
        assert a.container_name != b.container_name
    finally:
        await manager.drop("iso-a")
        await manager.drop("iso-b")
