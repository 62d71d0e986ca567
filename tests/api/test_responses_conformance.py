"""Schemathesis over the Responses + Conversations OpenAPI subset: no input makes the service answer 5xx.

The spec is the copy in tests/fixtures/spec/."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.conftest import LiveServer

SPEC = Path(__file__).resolve().parents[1] / "fixtures" / "spec" / "openai-responses.json"
schema = schemathesis.openapi.from_path(str(SPEC))
schema.config.phases.coverage.enabled = False  # its exhaustive boundary cases take too long for CI here


@pytest.fixture(scope="module")
def base_url(engine_server: LiveServer) -> str:
    return engine_server.url + "/v1"  # the scripted model answers "OK" to whatever is asked


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_is_a_server_error(case: schemathesis.Case, base_url: str) -> None:
    response = case.call(base_url=base_url, headers={"Authorization": "Bearer sk-test"}, timeout=60)
    case.validate_response(response, checks=[not_a_server_error])
