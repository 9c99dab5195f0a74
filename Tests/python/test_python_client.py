"""A Python client generated from the committed schemas/openapi.json with openapi-python-client (PyPI), used
against the real gateway (issue 10): it generates with no warnings, calls /compute with a typed per-operation body,
a /v1 route, /stream and a 422, and a script using a plain `Client` type-checks with mypy."""
import importlib
import json
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO, Gateway

CONFIG = REPO / "clients" / "python" / "openapi-python-client.yaml"


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """(directory holding the package forzium_client, the generator's output)."""
    root = tmp_path_factory.mktemp("python-client")
    result = subprocess.run(
        [sys.executable, "-m", "openapi_python_client", "generate", "--path", str(REPO / "schemas" / "openapi.json"),
         "--config", str(CONFIG), "--meta", "none", "--output-path", str(root / "forzium_client"), "--fail-on-warning"],
        cwd=root, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    sys.path.insert(0, str(root))
    try:
        yield root, output
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == "forzium_client" or m.startswith("forzium_client.")]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def gateway():
    gateway = Gateway("--engines", "1")
    try:
        yield gateway
    finally:
        gateway.stop()


def test_generates_without_warnings(generated):
    root, output = generated
    assert "warning" not in output.lower(), output
    assert (root / "forzium_client" / "api" / "compute" / "post_compute.py").exists()


def test_calls_through_the_generated_client(generated, gateway):
    from forzium_client import Client
    from forzium_client.api.compute import post_compute, post_stream
    from forzium_client.api.operations import post_v1_sum
    from forzium_client.api.service import get_ready, get_root
    from forzium_client.models import (
        MatmulComputeRequest, MatmulParameters, Problem, StreamDone, StreamRow, SumParams, TransposeComputeRequest,
    )

    client = Client(base_url=f"http://127.0.0.1:{gateway.port}", raise_on_unexpected_status=True)

    # /compute with a typed per-operation body.
    body = MatmulComputeRequest(data=[[1, 2], [3, 4]], operation="matmul", parameters=MatmulParameters(matrix_b=[[5, 6], [7, 8]]))
    assert body.to_dict()["operation"] == "matmul"
    answer = post_compute.sync(client=client, body=body)
    assert answer.result == [[19.0, 22.0], [43.0, 50.0]]
    assert answer.operation == "matmul"
    assert answer.engine in ("simd", "fallback")

    # A /v1 route whose result is not finite: null, typed as None.
    summed = post_v1_sum.sync(client=client, body=SumParams(data=[[1e308, 1e308]]))
    assert summed.result is None
    assert post_v1_sum.sync(client=client, body=SumParams(data=[[1, 2], [3, 4]])).result == 10.0

    # /stream: NDJSON read as text (clients/python/openapi-python-client.yaml), one typed line per row, then the done line.
    streamed = post_stream.sync_detailed(client=client, body=TransposeComputeRequest(data=[[1, 2], [3, 4], [5, 6]], operation="transpose"))
    assert streamed.status_code == 200
    assert streamed.headers["content-type"].startswith("application/x-ndjson")
    assert isinstance(streamed.parsed, str)
    lines = [json.loads(line) for line in streamed.parsed.splitlines()]
    rows = [StreamRow.from_dict(line) for line in lines[:-1]]
    assert [(row.row, row.values) for row in rows] == [(0, [1.0, 3.0, 5.0]), (1, [2.0, 4.0, 6.0])]
    done = StreamDone.from_dict(lines[-1])
    assert (done.done, done.rows, done.cols, done.operation) == (True, 2, 3, "transpose")

    # Service routes, typed by their schemas.
    ready = get_ready.sync(client=client)
    assert ready is not None and ready.status == "ready" and ready.engines[0].state == "ready"
    root = get_root.sync(client=client)
    assert root is not None and not isinstance(root, Problem)
    assert "POST /compute" in root.routes and root.engine_info.kind == root.engine

    # A 422 (shapes that do not agree: schema-valid, refused by the engine), parsed into Problem.
    client = Client(base_url=f"http://127.0.0.1:{gateway.port}")
    refused = post_compute.sync_detailed(client=client, body=MatmulComputeRequest(
        data=[[1, 2, 3]], operation="matmul", parameters=MatmulParameters(matrix_b=[[1, 2]])))
    assert refused.status_code == 422
    assert isinstance(refused.parsed, Problem)
    assert refused.parsed.status == 422
    assert refused.parsed.errors[0].pointer.startswith("/parameters/matrix_b")


def test_a_plain_client_type_checks_with_mypy(generated, tmp_path):
    root, _ = generated
    script = tmp_path / "use_client.py"
    script.write_text(textwrap.dedent("""
        from forzium_client import Client
        from forzium_client.api.compute import post_compute
        from forzium_client.api.operations import post_v1_matmul
        from forzium_client.models import MatmulParams, Problem, SumComputeRequest, SumParameters

        client = Client(base_url="http://127.0.0.1:8000")
        answer = post_compute.sync(client=client, body=SumComputeRequest(data=[[1.0, 2.0]], operation="sum", parameters=SumParameters(axis=0)))
        if answer is not None and not isinstance(answer, Problem):
            print(answer.result, answer.engine)
        product = post_v1_matmul.sync(client=client, body=MatmulParams(data=[[1.0]], matrix_b=[[2.0]]))
        if product is not None and not isinstance(product, Problem):
            print(product.result)
        """))
    env = dict(os.environ, MYPYPATH=str(root))
    # --follow-imports=silent: the script is checked against the generated package's types, but errors inside the
    # generated package are not reported: its client.py (openapi-python-client 0.29.1's template) has 12 arg-type
    # errors of its own in __exit__/__aexit__ against httpx 0.28's annotations, whatever the document.
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-incremental", str(script)],
                            cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout

    # The check has teeth: the wrong body type for an operation is an error.
    wrong = tmp_path / "misuse.py"
    wrong.write_text(textwrap.dedent("""
        from forzium_client import Client
        from forzium_client.api.operations import post_v1_matmul
        from forzium_client.models import SumParams

        post_v1_matmul.sync(client=Client(base_url="http://127.0.0.1:8000"), body=SumParams(data=[[1.0]]))
        """))
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-incremental", str(wrong)],
                            cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 1 and "arg-type" in result.stdout, result.stdout + result.stderr
