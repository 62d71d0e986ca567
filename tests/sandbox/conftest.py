"""Fixtures for the sandbox tests: a real Docker engine and the agent-sandbox image.

Without an engine (or the image) the docker tests are skipped, except when CI=true: then they fail.
Build the image with `.ci/build-sandbox-image.sh` (or `docker build sandbox/image`).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import docker
import docker.errors
import pytest
import pytest_asyncio

from sandbox import Limits, SandboxManager, SandboxUnavailable, Session
from sandbox.manager import connect_engine

IMAGE = os.environ.get("AGENT_SANDBOX_IMAGE", "agent-sandbox:latest")
LABEL_PREFIX = "agent-sandbox-test"
LIMITS = Limits(memory_mb=384, data_mb=16, timeout=10.0)


def _engine_problem() -> str | None:
    try:
        client = connect_engine()
    except SandboxUnavailable as exc:
        return str(exc)
    try:
        client.ping()
        client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        return f"image {IMAGE} missing: run .ci/build-sandbox-image.sh"
    except docker.errors.DockerException as exc:
        return f"Docker engine not usable: {exc}"
    finally:
        client.close()
    return None


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    problem = _engine_problem()
    if problem is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {problem}", pytrace=False)
        pytest.skip(problem)
    client = connect_engine()
    yield client
    client.close()


def leftovers(client: docker.DockerClient, label: str) -> list[str]:
    selector = {"label": label}
    names = [c.name or "" for c in client.containers.list(all=True, filters=selector)]
    return names + [v.name or "" for v in client.volumes.list(filters=selector)]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def manager(docker_client: docker.DockerClient) -> AsyncIterator[SandboxManager]:
    mgr = SandboxManager(
        IMAGE, limits=LIMITS, pool_size=2, docker_client=docker_client, label_prefix=LABEL_PREFIX
    )
    await mgr.start()
    try:
        yield mgr
    finally:
        await mgr.close()
        left = leftovers(docker_client, f"{LABEL_PREFIX}.instance={mgr.instance}")
        assert not left, f"left behind: {left}"


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def shared(manager: SandboxManager) -> Session:
    """One session shared by the tests that leave its kernel healthy."""
    return await manager.session("shared")


@pytest_asyncio.fixture(loop_scope="session")
async def fresh(manager: SandboxManager, request: pytest.FixtureRequest) -> AsyncIterator[Session]:
    """A session of its own, dropped after the test (for tests that break or reset the kernel)."""
    key = f"fresh-{request.node.name}"
    session = await manager.session(key)
    yield session
    await manager.drop(key)
