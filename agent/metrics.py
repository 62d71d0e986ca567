"""Prometheus metrics: one registry per app, served at ``GET /metrics``.

Counters and histograms are updated where things happen (the request middleware, the event bus, the run
loop, the stream relay); the sandbox and the calculator keep their own plain counters (``sandbox/`` does not
import ``agent/``) and are read when the registry is scraped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest

RUN_FINAL = ("completed", "incomplete", "failed", "cancelled", "expired")
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The classic text format, which every Prometheus version reads."""
_RATE = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        ProcessCollector(registry=r)
        self.http_requests = Counter(
            "agent_http_requests",
            "HTTP requests by method, route and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_seconds = Histogram(
            "agent_http_request_duration_seconds", "Time to answer a request (streams: until they end)",
            ["route"], buckets=_LATENCY, registry=r,
        )  # fmt: skip
        self.runs = Counter("agent_runs", "Runs that reached a final status", ["status"], registry=r)
        self.run_seconds = Histogram(
            "agent_run_duration_seconds",
            "Run creation to final status",
            ["status"],
            buckets=_LATENCY,
            registry=r,
        )
        self.responses = Counter("agent_responses", "Responses by final status", ["status"], registry=r)
        self.model_first_token = Histogram(
            "agent_model_time_to_first_token_seconds", "Model request to its first text or tool-call piece",
            buckets=_LATENCY, registry=r,
        )  # fmt: skip
        self.model_tokens_per_second = Histogram(
            "agent_model_tokens_per_second", "Completion tokens per second after the first token",
            buckets=_RATE, registry=r,
        )  # fmt: skip
        self.model_errors = Counter(
            "agent_model_errors",
            "Runs failed by the model server or the model (timeouts, errors, bad calls)",
            registry=r,
        )
        self.tool_calls = Counter(
            "agent_tool_calls", "Server-side tool calls by tool and outcome (ok, error, invalid)",
            ["tool", "outcome"], registry=r,
        )  # fmt: skip
        self.tool_seconds = Histogram(
            "agent_tool_call_duration_seconds",
            "Server-side tool call latency",
            ["tool"],
            buckets=_LATENCY,
            registry=r,
        )
        self.open_streams = Gauge("agent_open_streams", "Event streams open to clients", registry=r)
        self._live: list[Callable[[], Iterator[Metric]]] = []
        r.register(_Live(self._live))

    def watch(self, source: Callable[[], Iterator[Metric]]) -> None:
        """Add metrics read from a live object at scrape time (sandbox pool, calculator)."""
        self._live.append(source)

    def run_ended(self, status: str, seconds: float | None) -> None:
        self.runs.labels(status).inc()
        if seconds is not None and seconds >= 0:
            self.run_seconds.labels(status).observe(seconds)

    def scrape(self) -> bytes:
        return generate_latest(self.registry)


class _Live:
    def __init__(self, sources: list[Callable[[], Iterator[Metric]]]) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        for source in self.sources:
            yield from source()

    def describe(self) -> list[Metric]:
        return []


def sandbox_metrics(stats: Callable[[], dict[str, int]]) -> Callable[[], Iterator[Metric]]:
    """``stats()`` → the sandbox manager's counts (see ``SandboxManager.stats``)."""

    def collect() -> Iterator[Metric]:
        s = stats()
        yield GaugeMetricFamily(
            "agent_sandbox_sessions", "Live sandbox sessions (one per thread)", s["sessions"]
        )
        yield GaugeMetricFamily(
            "agent_sandbox_pool_ready", "Warm sandbox containers waiting", s["pool_ready"]
        )
        for name, help_ in (
            ("cold_starts", "Sessions that had to start a container (pool empty)"),
            ("kills", "Kernels killed after a call ignored its timeout"),
            ("ooms", "Calls that ended with the sandbox out of memory"),
        ):
            yield CounterMetricFamily(f"agent_sandbox_{name}", help_, s[name])

    return collect


def calculator_metrics(timeouts: Callable[[], int]) -> Callable[[], Iterator[Metric]]:
    def collect() -> Iterator[Metric]:
        yield CounterMetricFamily(
            "agent_calculator_timeouts", "Expressions whose worker was killed at the timeout", timeouts()
        )

    return collect


def handler(metrics_of: Callable[[web.Request], Metrics]) -> Callable[[web.Request], Any]:
    async def serve(request: web.Request) -> web.Response:
        body = metrics_of(request).scrape()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    return serve
