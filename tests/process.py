"""The service as a real subprocess (for kill -9 and restart tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import openai

from tests.conftest import free_port


class ServerProcess:
    def __init__(self, data_dir: Path, **env: str) -> None:
        self.data_dir, self.port = data_dir, free_port()
        self.env = {**os.environ, "AGENT_DATA_DIR": str(data_dir), "AGENT_PORT": str(self.port), **env}
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir / "server.log"
        self.clients: list[openai.OpenAI] = []

    def start(self) -> ServerProcess:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agent", "serve"], env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # readiness poll, not a sleep-as-synchronisation
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server did not become healthy")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill9()

    def client(self, **kw: Any) -> openai.OpenAI:
        client = openai.OpenAI(base_url=self.url + "/v1", api_key="sk-test", max_retries=0, **kw)
        self.clients.append(client)
        return client
