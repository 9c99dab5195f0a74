"""The Open Inference Protocol (v2) on the gateway (issue 11, part 1–2), over raw HTTP and with the unmodified
`tritonclient[http]` from PyPI: metadata and health, JSON and binary tensors both ways, FP32 inputs, non-finite values
bit for bit, 1-D inputs, and every client mistake answered 400/404/405 in the protocol's {"error": ...} shape."""
import http.client
import json
import struct

import numpy as np
import pytest


@pytest.fixture(scope="module")
def gateway():
    from conftest import Gateway
    g = Gateway()
    yield g
    g.stop()


def call(gateway, method, path, body=None, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def binary_request(inputs, parameters=None, binary_output=True):
    """(body, headers) for a binary infer request; `inputs` maps name -> float64 array (2-D, or 1-D)."""
    header = {"inputs": [{"name": name, "datatype": "FP64", "shape": list(a.shape),
                          "parameters": {"binary_data_size": a.nbytes}} for name, a in inputs.items()]}
    if binary_output:
        header["outputs"] = [{"name": "result", "parameters": {"binary_data": True}}]
    if parameters:
        header["parameters"] = parameters
    head = json.dumps(header).encode()
    body = head + b"".join(np.ascontiguousarray(a, dtype="<f8").tobytes() for a in inputs.values())
    return body, {"Inference-Header-Content-Length": str(len(head)), "Content-Type": "application/octet-stream"}


def decode_binary(headers, body):
    length = int(headers["inference-header-content-length"])
    document = json.loads(body[:length])
    output = document["outputs"][0]
    assert output["name"] == "result" and output["datatype"] == "FP64"
    values = np.frombuffer(body[length:], dtype="<f8")
    assert values.nbytes == output["parameters"]["binary_data_size"]
    return document, values.reshape(output["shape"])


def test_server_and_model_metadata(gateway):
    status, headers, body = call(gateway, "GET", "/v2")
    assert status == 200
    meta = json.loads(body)
    assert meta["name"] == "forzium" and "binary_tensor_data" in meta["extensions"]
    assert call(gateway, "GET", "/v2/health/live")[0] == 200
    assert call(gateway, "GET", "/v2/health/ready")[0] == 200
    expected_inputs = {"matmul": ["data", "matrix_b"], "elementwise_div": ["data", "other"], "conv2d": ["data", "kernel"],
                       "sum": ["data"], "reshape": ["data"]}
    for model, names in expected_inputs.items():
        status, _, body = call(gateway, "GET", f"/v2/models/{model}")
        assert status == 200, body
        meta = json.loads(body)
        assert meta["name"] == model
        assert [i["name"] for i in meta["inputs"]] == names
        assert all(i["datatype"] == "FP64" and i["shape"] == [-1, -1] for i in meta["inputs"])
        assert [o["name"] for o in meta["outputs"]] == ["result"]
        assert call(gateway, "GET", f"/v2/models/{model}/ready")[0] == 200
    assert set(json.loads(call(gateway, "GET", "/v2/models/sum")[2])["parameters"]) == {"axis"}
    assert set(json.loads(call(gateway, "GET", "/v2/models/reshape")[2])["parameters"]) == {"rows", "cols"}


def test_binary_matmul_and_exact_non_finite(gateway):
    rng = np.random.default_rng(11)
    a, b = rng.standard_normal((130, 70)), rng.standard_normal((70, 150))
    body, headers = binary_request({"data": a, "matrix_b": b})
    status, response_headers, answer = call(gateway, "POST", "/v2/models/matmul/infer", body, headers)
    assert status == 200, answer
    assert response_headers["content-type"] == "application/octet-stream"
    document, result = decode_binary(response_headers, answer)
    assert document["model_name"] == "matmul"
    np.testing.assert_allclose(result, a @ b, rtol=1e-12, atol=1e-12)

    # Non-finite values, -0.0, a NaN payload and subnormals survive bit for bit (transpose moves bits only).
    special = np.array([np.nan, np.inf, -np.inf, -0.0, 5e-324, 1.5, -2.25, 1e308], dtype="<f8")
    special[0] = struct.unpack("<d", struct.pack("<Q", 0x7FF8_0000_DEAD_BEEF))[0]
    data = np.tile(special, (3000, 1))  # 3000 × 8 (above the shared-memory threshold)
    body, headers = binary_request({"data": data})
    status, response_headers, answer = call(gateway, "POST", "/v2/models/transpose/infer", body, headers)
    assert status == 200, answer
    _, result = decode_binary(response_headers, answer)
    assert result.shape == (8, 3000)
    assert result.tobytes() == np.ascontiguousarray(data.T).tobytes()
    small = special.reshape(2, 4)  # below the threshold: base64 on the pipe
    body, headers = binary_request({"data": small}, {"factor": 1})
    status, response_headers, answer = call(gateway, "POST", "/v2/models/multiply/infer", body, headers)
    assert status == 200, answer
    _, result = decode_binary(response_headers, answer)
    np.testing.assert_array_equal(result, small)
    assert np.signbit(result[0, 3])


def test_json_tensors_parameters_fp32_and_one_dimensional(gateway):
    request = {"id": "r-1", "inputs": [{"name": "data", "datatype": "FP64", "shape": [2, 3], "data": [1, 2, 3, 4, 5, 6]}],
               "parameters": {"axis": 0}}
    status, headers, body = call(gateway, "POST", "/v2/models/sum/infer", json.dumps(request), {"Content-Type": "application/json"})
    assert status == 200, body
    assert headers["content-type"] == "application/json" and "inference-header-content-length" not in headers
    answer = json.loads(body)
    assert answer["id"] == "r-1" and answer["model_name"] == "sum"
    assert answer["outputs"] == [{"name": "result", "datatype": "FP64", "shape": [1, 3], "data": [5.0, 7.0, 9.0]}]

    # Whole-matrix reduction: a scalar, shape [].
    request["parameters"] = {}
    answer = json.loads(call(gateway, "POST", "/v2/models/sum/infer", json.dumps(request))[2])
    assert answer["outputs"][0]["shape"] == [] and answer["outputs"][0]["data"] == [21.0]

    # FP32 in (binary), widened exactly; FP64 out.
    a32 = np.array([[0.1, 0.2], [0.3, 0.4]], dtype="<f4")
    head = json.dumps({"inputs": [{"name": "data", "datatype": "FP32", "shape": [2, 2], "parameters": {"binary_data_size": 16}}],
                       "parameters": {"binary_data_output": True, "factor": 2}}).encode()
    status, headers, body = call(gateway, "POST", "/v2/models/multiply/infer", head + a32.tobytes(),
                                 {"Inference-Header-Content-Length": str(len(head))})
    assert status == 200, body
    _, result = decode_binary(headers, body)
    np.testing.assert_array_equal(result, a32.astype(np.float64) * 2)

    # 1-D: shape [n] is one row (1×n).
    body, headers = binary_request({"data": np.arange(5.0)}, {"addend": 1})
    status, response_headers, answer = call(gateway, "POST", "/v2/models/add/infer", body, headers)
    assert status == 200, answer
    _, result = decode_binary(response_headers, answer)
    assert result.shape == (1, 5) and list(result[0]) == [1, 2, 3, 4, 5]

    # Scalar params: reshape, max_pool2d, normalize mode.
    data = np.arange(16.0).reshape(4, 4)
    for model, params, expected in [
        ("reshape", {"rows": 2, "cols": 8}, data.reshape(2, 8)),
        ("max_pool2d", {"size": 2}, np.array([[5.0, 7.0], [13.0, 15.0]])),
        ("normalize", {"mode": "minmax"}, data / 15.0),
    ]:
        body, headers = binary_request({"data": data}, params)
        status, response_headers, answer = call(gateway, "POST", f"/v2/models/{model}/infer", body, headers)
        assert status == 200, (model, answer)
        np.testing.assert_allclose(decode_binary(response_headers, answer)[1], expected, rtol=1e-15)


@pytest.mark.parametrize("path,request_body,headers,status,needle", [
    ("/v2/models/matmul/infer", b"{not json", {}, 400, "malformed JSON"),
    ("/v2/models/matmul/infer", json.dumps({"inputs": []}).encode(), {}, 400, "schema"),
    ("/v2/models/transpose/infer", json.dumps({"inputs": [{"name": "matrix_b", "datatype": "FP64", "shape": [1, 1], "data": [1]}]}).encode(), {}, 400, "not an input"),
    ("/v2/models/transpose/infer", json.dumps({"inputs": [{"name": "data", "datatype": "FP16", "shape": [1, 1], "data": [1]}]}).encode(), {}, 400, "FP16"),
    ("/v2/models/transpose/infer", json.dumps({"inputs": [{"name": "data", "datatype": "FP64", "shape": [1, 1, 1], "data": [1]}]}).encode(), {}, 400, "dimensions"),
    ("/v2/models/transpose/infer", json.dumps({"inputs": [{"name": "data", "datatype": "FP64", "shape": [2, 2], "data": [1, 2, 3]}]}).encode(), {}, 400, "needs 4"),
    ("/v2/models/transpose/infer", json.dumps({"inputs": [{"name": "data", "datatype": "FP64", "shape": [0, 2], "data": []}]}).encode(), {}, 400, "at least one"),
    ("/v2/models/transpose/infer", json.dumps({"inputs": [{"name": "data", "datatype": "FP64", "shape": [1, 2], "data": [1, "x"]}]}).encode(), {}, 400, "expected number"),
    ("/v2/models/matmul/infer", json.dumps({"inputs": [{"name": "data", "datatype": "FP64", "shape": [1, 1], "data": [1]}]}).encode(), {}, 400, "matrix_b"),
    ("/v2/models/matmul/infer", json.dumps({"inputs": [{"name": "data", "datatype": "FP64", "shape": [1, 2], "data": [1, 2]},
                                                       {"name": "matrix_b", "datatype": "FP64", "shape": [3, 1], "data": [1, 2, 3]}]}).encode(), {}, 400, "row"),
    ("/v2/models/sum/infer", json.dumps({"inputs": [{"name": "data", "datatype": "FP64", "shape": [1, 1], "data": [1]}], "parameters": {"axis": 2}}).encode(), {}, 400, "/parameters/axis"),
    ("/v2/models/sum/infer", json.dumps({"inputs": [{"name": "data", "datatype": "FP64", "shape": [1, 1], "data": [1]}], "parameters": {"factor": 2}}).encode(), {}, 400, "no parameter"),
    ("/v2/models/sum/infer", json.dumps({"inputs": [{"name": "data", "datatype": "FP64", "shape": [1, 1], "data": [1]}], "outputs": [{"name": "out"}]}).encode(), {}, 400, "result"),
    ("/v2/models/transpose/infer", json.dumps({"inputs": [{"name": "data", "datatype": "FP64", "shape": [1, 2], "parameters": {"binary_data_size": 16}}]}).encode(), {}, 400, "Inference-Header-Content-Length"),
    ("/v2/models/transpose/infer", json.dumps({"inputs": [{"name": "data", "datatype": "FP64", "shape": [1, 2], "parameters": {"binary_data_size": 16}}]}).encode() + bytes(16), {}, 400, "binary tensors need"),
    ("/v2/models/nope/infer", b"{}", {}, 404, "unknown model"),
    ("/v2/models/nope", None, {}, 404, "unknown model"),
    ("/v2/nothing", None, {}, 404, "no route"),
])
def test_client_mistakes(gateway, path, request_body, headers, status, needle):
    got, response_headers, body = call(gateway, "POST" if request_body is not None else "GET", path, request_body, headers)
    assert got == status, body
    assert response_headers["content-type"] == "application/json"
    message = json.loads(body)["error"]
    assert needle in message, message


def test_binary_framing_mistakes(gateway):
    head = json.dumps({"inputs": [{"name": "data", "datatype": "FP64", "shape": [2, 2], "parameters": {"binary_data_size": 32}}]}).encode()
    cases = [
        (head + bytes(24), str(len(head)), "short"),                    # binary part too short
        (head + bytes(40), str(len(head)), "follow the last"),          # bytes left over
        (head + bytes(32), str(len(head) + 100), "only"),               # header length past the body
        (head + bytes(32), "-1", "non-negative"),
        (head.replace(b"32}", b"24}") + bytes(24), str(len(head)), "binary_data_size must be"),
    ]
    for body, length, needle in cases:
        status, headers, answer = call(gateway, "POST", "/v2/models/transpose/infer", body, {"Inference-Header-Content-Length": length})
        assert status == 400, (needle, answer)
        assert needle in json.loads(answer)["error"], answer
    status, headers, answer = call(gateway, "GET", "/v2/models/matmul/infer")
    assert status == 405 and "POST" in headers["allow"]
    assert "error" in json.loads(answer)
    # The gateway still serves after all of that.
    body, headers = binary_request({"data": np.eye(3)})
    assert call(gateway, "POST", "/v2/models/transpose/infer", body, headers)[0] == 200


def test_openapi_lists_v2_routes(gateway):
    document = json.loads(call(gateway, "GET", "/openapi.json")[2])
    for path in ["/v2", "/v2/health/live", "/v2/health/ready", "/v2/models/{model}", "/v2/models/{model}/ready",
                 "/v2/models/{model}/infer"]:
        assert path in document["paths"], path
    infer = document["paths"]["/v2/models/{model}/infer"]["post"]
    assert "application/octet-stream" in infer["requestBody"]["content"]
    ref = infer["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    request_schema = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert "inputs" in request_schema["properties"]
    model = next(p for p in infer["parameters"] if p["name"] == "model")
    assert "matmul" in model["schema"]["enum"]


def test_tritonclient(gateway):
    """The unmodified tritonclient[http] from PyPI against the gateway: health, metadata, and matmul, sum with axis
    and transpose with binary inputs and outputs (and JSON ones)."""
    httpclient = pytest.importorskip("tritonclient.http")
    from tritonclient.utils import InferenceServerException

    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{gateway.port}")
    try:
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready("matmul")
        assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
        meta = client.get_model_metadata("matmul")
        assert [i["name"] for i in meta["inputs"]] == ["data", "matrix_b"]
        assert meta["outputs"][0]["name"] == "result"
        with pytest.raises(InferenceServerException) as error:
            client.get_model_metadata("nope")
        assert "unknown model" in str(error.value)
        assert not client.is_model_ready("nope")

        rng = np.random.default_rng(5)
        a, b = rng.standard_normal((64, 48)), rng.standard_normal((48, 32))

        def tensor(name, array, binary=True):
            t = httpclient.InferInput(name, list(array.shape), "FP64")
            t.set_data_from_numpy(array, binary_data=binary)
            return t

        result_binary = [httpclient.InferRequestedOutput("result", binary_data=True)]
        result = client.infer("matmul", [tensor("data", a), tensor("matrix_b", b)], outputs=result_binary)
        np.testing.assert_allclose(result.as_numpy("result"), a @ b, rtol=1e-12, atol=1e-12)

        for axis, expected in [(0, a.sum(axis=0, keepdims=True)), (1, a.sum(axis=1, keepdims=True))]:
            result = client.infer("sum", [tensor("data", a)], outputs=result_binary, parameters={"axis": axis})
            np.testing.assert_allclose(result.as_numpy("result"), expected, rtol=1e-12)

        special = np.array([[np.nan, np.inf], [-np.inf, -0.0]])
        result = client.infer("transpose", [tensor("data", special)], outputs=result_binary)
        assert result.as_numpy("result").tobytes() == special.T.copy().tobytes()

        # No outputs named: tritonclient asks for binary_data_output.
        result = client.infer("transpose", [tensor("data", a)])
        np.testing.assert_array_equal(result.as_numpy("result"), a.T)
        # JSON both ways; FP32 input.
        result = client.infer("transpose", [tensor("data", a, binary=False)],
                              outputs=[httpclient.InferRequestedOutput("result", binary_data=False)])
        np.testing.assert_array_equal(result.as_numpy("result"), a.T)
        f32 = httpclient.InferInput("data", [2, 2], "FP32")
        f32.set_data_from_numpy(np.array([[1.5, 2.5], [3.5, 4.5]], dtype=np.float32), binary_data=True)
        result = client.infer("multiply", [f32], parameters={"factor": 2})
        np.testing.assert_array_equal(result.as_numpy("result"), [[3.0, 5.0], [7.0, 9.0]])

        # A gzip request body (tritonclient compresses after measuring the JSON part).
        result = client.infer("matmul", [tensor("data", a), tensor("matrix_b", b)], outputs=result_binary,
                              request_compression_algorithm="gzip")
        np.testing.assert_allclose(result.as_numpy("result"), a @ b, rtol=1e-12, atol=1e-12)

        with pytest.raises(InferenceServerException) as error:
            client.infer("matmul", [tensor("data", a), tensor("matrix_b", a)])
        assert error.value.status() == "400"
    finally:
        client.close()
