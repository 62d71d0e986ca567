"""The manager: warm pool, no reuse across keys, reaping, sweeping, cleanup, the attach transport."""

from __future__ import annotations

import docker
import pytest

from sandbox import SandboxManager, SessionClosed

from .conftest import IMAGE, LABEL_PREFIX, LIMITS, leftovers

pytestmark = [pytest.mark.docker, pytest.mark.asyncio(loop_scope="session")]


async def test_first_session_comes_from_the_warm_pool(manager: SandboxManager) -> None:
    await manager.warm()
    pooled = {s.container_name for s in manager._pool}
    session = await manager.session("pool-user")
    try:
        assert session.container_name in pooled
        assert (await session.execute("import sys\n'numpy' in sys.modules")).result == "True"  # preloaded
    finally:
        await manager.drop("pool-user")


async def test_a_container_is_never_reused(
    manager: SandboxManager, docker_client: docker.DockerClient
) -> None:
    first = await manager.session("reuse")
    name = first.container_name
    await first.write_file("mine.txt", b"private")
    await manager.drop("reuse")
    assert first.closed
    with pytest.raises(SessionClosed):
        await first.execute("1")
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(name)
    second = await manager.session("reuse")
    try:
        assert second.container_name != name
        assert await second.list_files() == []
    finally:
        await manager.drop("reuse")


async def test_idle_and_old_sessions_are_reaped(manager: SandboxManager) -> None:
    idle, old, busy = [await manager.session(k) for k in ("reap-idle", "reap-old", "reap-keep")]
    idle.last_used -= manager.idle_ttl + 1
    old.created -= manager.max_lifetime + 1
    await manager.reap()
    assert idle.closed and old.closed and not busy.closed
    assert "reap-idle" not in manager.sessions() and "reap-keep" in manager.sessions()
    await manager.drop("reap-keep")


async def test_start_sweeps_leftovers_and_close_removes_everything(
    docker_client: docker.DockerClient,
) -> None:
    prefix = f"{LABEL_PREFIX}-sweep"
    label = {f"{prefix}.managed": "1"}
    docker_client.volumes.create(name=f"{prefix}-stale-d", labels=label)
    stale = docker_client.containers.create(IMAGE, ["sleep", "1000"], labels=label, network_mode="none")
    mgr = SandboxManager(IMAGE, limits=LIMITS, pool_size=1, docker_client=docker_client, label_prefix=prefix)
    await mgr.start()
    try:
        with pytest.raises(docker.errors.NotFound):
            docker_client.containers.get(stale.id or "")
        session = await mgr.session("k")
        assert (await session.execute("6 * 7")).result == "42"
        await mgr.warm()
        assert leftovers(docker_client, f"{prefix}.managed=1")
    finally:
        await mgr.close()
    assert leftovers(docker_client, f"{prefix}.managed=1") == []
    with pytest.raises(SessionClosed):
        await mgr.session("k")


async def test_attach_transport(docker_client: docker.DockerClient) -> None:
    """The transport used with gVisor (runsc), exercised here on the default runtime."""
    mgr = SandboxManager(
        IMAGE,
        limits=LIMITS,
        pool_size=0,
        docker_client=docker_client,
        label_prefix=f"{LABEL_PREFIX}-attach",
        transport="attach",
        preload=(),
    )
    await mgr.start()
    try:
        session = await mgr.session("k")
        await session.execute("x = 20")
        await session.write_file("a.txt", b"A")
        r = await session.execute("print(open('a.txt').read())\nx * 2")
        assert (r.stdout, r.result) == ("A\n", "40")
        reset = await session.execute(
            "import itertools, signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
            "sum(itertools.repeat(1))",
            timeout=1,
        )
        assert reset.reset and reset.timed_out
        assert (await session.execute("open('a.txt').read()")).result == "'A'"
        oom = await session.execute("hog = b'x' * (2 << 30)", timeout=20)
        assert oom.reset and (oom.oom_killed or (oom.error is not None and oom.error.name == "MemoryError"))
        assert (await session.execute("1 + 1")).result == "2"
    finally:
        await mgr.close()
    assert leftovers(docker_client, f"{LABEL_PREFIX}-attach.managed=1") == []


async def test_available(manager: SandboxManager, docker_client: docker.DockerClient) -> None:
    assert await manager.available()
    missing = SandboxManager("agent-sandbox-test:no-such-tag", docker_client=docker_client)
    assert not await missing.available()


async def test_closing_a_session_forgets_it(
    manager: SandboxManager, docker_client: docker.DockerClient
) -> None:
    session = await manager.session("self-close")
    name = session.container_name
    await session.close()
    assert "self-close" not in manager.sessions()
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(name)
    with pytest.raises(SessionClosed):
        await session.read_file("x")
