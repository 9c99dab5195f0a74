"""schemathesis (PyPI) against /openapi.json of the real gateway: property-based requests for every operation whose
body it can generate, every check it has, and no server error (issue 8).

Excluded, with reasons:
  - /compute and /stream: their per-operation `if`/`then` schema is beyond schemathesis' generator ("Schema Error");
    the discriminated union that fixes this is issue 10's.
  - positive_data_acceptance / negative_data_rejection: the engines enforce rules a JSON Schema cannot state (matrix
    shapes that must agree, kernel no larger than data), so schema-valid bodies are rightly answered 422.
  - a 504 for a request that set `X-Forzium-Timeout-Ms` itself: the client asked for that deadline and got the
    documented answer to missing it; every other 5xx fails the test.
"""
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import checks

from conftest import Gateway


@pytest.fixture(scope="module")
def api_schema():
    gateway = Gateway("--engines", "1")
    try:
        schema = schemathesis.openapi.from_url(f"http://127.0.0.1:{gateway.port}/openapi.json")
        yield schema
    finally:
        gateway.stop()


schema = schemathesis.pytest.from_fixture("api_schema").exclude(path=["/compute", "/stream"])


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_every_other_check(case):
    response = case.call(timeout=60)
    own_deadline = "X-Forzium-Timeout-Ms" in (case.headers or {})
    if response.status_code == 504 and own_deadline:
        return
    assert response.status_code < 500, f"{case.method} {case.path}: {response.status_code} {response.text[:300]}"
    case.validate_response(response, excluded_checks=[
        checks.not_a_server_error,  # applied above, with the client-chosen deadline exempt
        checks.positive_data_acceptance,
        checks.negative_data_rejection,
    ])
