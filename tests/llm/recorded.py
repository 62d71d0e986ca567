"""Read the recorded llama-server traffic in tests/fixtures/llama-server/ (see tests/fixtures/README.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.llm.sse import SSEFormatError

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "llama-server"


@dataclass
class Recorded:
    name: str
    method: str
    path: str
    request: dict[str, Any] | None
    status: int
    content_type: str
    body: bytes
    """The response body, chunked transfer encoding removed."""

    @property
    def stream(self) -> bool:
        return self.content_type == "text/event-stream"

    def chunks(self) -> list[dict[str, Any]]:
        """The JSON chunks of the response: each `data:` payload of a stream (up to [DONE]), or the
        whole body."""
        if not self.stream:
            return [json.loads(self.body)]
        out = []
        for line in self.body.decode().splitlines():
            if not line.strip():
                continue
            if not line.startswith("data: "):
                raise SSEFormatError(line)
            if line == "data: [DONE]":
                break
            out.append(json.loads(line[len("data: ") :]))
        return out


def load(name: str) -> Recorded:
    data = (RECORDED / name).read_bytes()
    req_part, _, resp_part = data.partition(b"##### RESPONSE")
    req_lines = req_part.split(b"\r\n\r\n", 1)
    method, path, _ = req_lines[0].split(b"\n", 1)[1].decode().split(" ", 2)
    req_body = req_lines[1].strip() if len(req_lines) > 1 else b""
    try:
        request = json.loads(req_body) if req_body else None
    except ValueError:
        request = None  # the deliberately broken request of 5x_err_bad_json
    resp = resp_part[resp_part.index(b"\n") + 1 :]
    head, _, body = resp.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if headers.get("transfer-encoding") == "chunked":
        out, rest = b"", body
        while (size := int(rest.partition(b"\r\n")[0], 16)) > 0:
            rest = rest.partition(b"\r\n")[2]
            out, rest = out + rest[:size], rest[size + 2 :]
        body = out
    content_type = headers.get("content-type", "").split(";")[0]
    return Recorded(name, method, path, request, int(lines[0].split()[1]), content_type, body)


def chat_fixtures() -> list[str]:
    """Every recorded /v1/chat/completions exchange that got a 200 answer."""
    names = []
    for p in sorted(RECORDED.glob("*.txt")):
        if p.name == "llama-server-help.txt":
            continue
        r = load(p.name)
        if r.path == "/v1/chat/completions" and r.status == 200:
            names.append(p.name)
    return names
