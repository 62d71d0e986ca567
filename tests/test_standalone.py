"""The repository stands alone: tests, benches and CI read fixtures and models from inside it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = re.compile(r"""/work/shared|\.\./shared|/\s*["']shared["']|["']shared["']\s*/""")
"""The shared folder beside the checkout, however a path to it would be spelled."""


def test_nothing_reads_outside_the_repository() -> None:
    files = [
        p for d in ("tests", "bench", ".ci", "agent", "sandbox") for p in (ROOT / d).rglob("*") if p.is_file()
    ]
    offenders = [
        f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
        for p in files
        if p.suffix in (".py", ".sh", "") and p != Path(__file__).resolve()
        for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert offenders == []


def test_the_vendored_fixtures_are_there() -> None:
    assert len(list((ROOT / "tests/fixtures/llama-server").glob("*.txt"))) >= 50
    specs = {p.name for p in (ROOT / "tests/fixtures/spec").glob("*.json")}
    assert {"openai-assistants-v2.json", "openai-responses.json", "openai-containers.json"} <= specs
    model = ROOT / "models/stories260K-qwen-tools.gguf"
    assert model.read_bytes()[:4] == b"GGUF"
