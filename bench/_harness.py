"""Shared by the benches: the scripted model in this process, the service as a subprocess."""

from __future__ import annotations

import statistics
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.model_server import ScriptedModel, Text  # noqa: E402
from tests.process import ServerProcess  # noqa: E402


@contextmanager
def service(**env: str) -> Iterator[tuple[ServerProcess, ScriptedModel]]:
    with (
        ScriptedModel(
            default=Text("The answer is forty-two.", pieces=["The", " answer", " is", " forty-two."])
        ) as model,
        tempfile.TemporaryDirectory() as tmp,
    ):
        server = ServerProcess(
            Path(tmp), AGENT_MODEL_URL=model.url, **{"AGENT_SANDBOX_ENABLED": "false", **env}
        ).start()
        try:
            yield server, model
        finally:
            server.stop()


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def summary(name: str, ms: list[float]) -> str:
    return (
        f"{name}: n={len(ms)} p50={pct(ms, 50):.2f} ms p95={pct(ms, 95):.2f} ms "
        f"mean={statistics.fmean(ms):.2f} ms"
    )
