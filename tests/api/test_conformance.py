"""Conformance: schemathesis fuzzes every operation of the Assistants spec subset against a live service.

The spec is the copy of shared/spec vendored in tests/fixtures/spec (the repository stands alone).

Bounded and deterministic: ``EXAMPLES`` positive and as many negative cases per operation (>= 2,000 in
all), no shrinking. Every response must be below 500 and every error must be OpenAI's envelope; the
status codes and content types must be the documented ones, except the spec-subset artefacts listed in
``ARTEFACTS`` (one place, a reason each).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer, LoopThread, make_settings, serve

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.core.failures import Failure, FailureGroup  # noqa: E402
from schemathesis.openapi.checks import UndefinedStatusCode  # noqa: E402
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance  # noqa: E402

SPEC = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "spec" / "openai-assistants-v2.json"
EXAMPLES = 22  # per operation and mode: 47 operations x 2 modes x 22 = 2,068 cases
MIN_CASES = 2_000
KEY = "sk-conformance"

# Spec-subset artefacts: what the spec subset does not say but the hosted API (and so this service) does.
ARTEFACTS: list[tuple[str, Callable[[Failure, Any], bool]]] = [
    (
        # The subset documents only 200 (and 429) per operation; the hosted API answers bad input 400,
        # a missing or wrong key 401, unknown ids and routes 404, a wrong method 405, an oversized body
        # 413 (spec digest §5.2), all in the error envelope that check_envelope asserts.
        "error statuses the subset does not list",
        lambda failure, response: (
            isinstance(failure, UndefinedStatusCode) and response.status_code in (400, 401, 404, 405, 413)
        ),
    ),
]


def check_envelope(response: Any) -> str | None:
    """Every error is ``{"error": {"message", "type", "param", "code"}}`` with a message and no trace."""
    if response.status_code < 400:
        return None
    try:
        err = response.json()["error"]
    except Exception:
        return f"{response.status_code} without the JSON error envelope: {response.text[:200]!r}"
    if not isinstance(err, dict) or set(err) != {"message", "type", "param", "code"}:
        return f"{response.status_code} with a malformed envelope: {response.text[:200]!r}"
    if not isinstance(err["message"], str) or not err["message"] or "Traceback" in response.text:
        return f"{response.status_code} with an empty message or a trace: {response.text[:200]!r}"
    return None


def artefact(failure: Failure, response: Any) -> bool:
    return any(matches(failure, response) for _, matches in ARTEFACTS)


@pytest.fixture(scope="module")
def fuzzed(loop_thread: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from serve(loop_thread, make_settings(tmp_path_factory.mktemp("fuzz"), api_keys=KEY))


@pytest.mark.timeout(600)
def test_no_5xx_and_the_envelope_on_every_response(fuzzed: LiveServer) -> None:
    assert SPEC.exists(), f"the vendored spec is missing: {SPEC}"
    schema = schemathesis.openapi.from_path(str(SPEC))
    checks = [not_a_server_error, status_code_conformance, content_type_conformance]
    problems: list[str] = []
    cases = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def one(case: Any) -> None:
                nonlocal cases
                cases += 1
                response = case.call(base_url=fuzzed.url + "/v1", headers={"Authorization": f"Bearer {KEY}"})
                where = f"{case.method} {case.formatted_path} ({case.meta.generation.mode.value})"
                if (bad := check_envelope(response)) is not None:
                    problems.append(f"{where}: {bad}")
                try:
                    case.validate_response(response, checks=checks)
                except FailureGroup as group:
                    failures = list(group.exceptions)
                except Failure as failure:
                    failures = [failure]
                else:
                    failures = []
                problems.extend(
                    f"{where}: {f.title}: {f.message[:200]}" for f in failures if not artefact(f, response)
                )

            one()
    assert cases >= MIN_CASES
    assert not problems, f"{len(problems)} problems in {cases} cases:\n" + "\n".join(problems[:30])
