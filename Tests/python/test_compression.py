"""Compressed JSON request bodies on the gateway (issue 11, part 4): gzip and deflate, and the body limit applied to
the inflated size. (Responses are not compressed yet.)"""
import gzip
import json
import random
import shutil
import subprocess
import zlib

import pytest

from conftest import read_response


def request(body, headers):
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (f"POST /compute HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{head}\r\n"
            ).encode() + body


def matmul_json(n, seed=3):
    rnd = random.Random(seed)
    m = [[round(rnd.uniform(-1, 1), 6) for _ in range(n)] for _ in range(n)]
    return json.dumps({"data": m, "operation": "matmul", "parameters": {"matrix_b": m}}).encode()


def test_gzip_and_deflate_bodies(start_gateway):
    gateway = start_gateway()
    plain = matmul_json(64)
    expected = None
    for encoding, packed in (("gzip", gzip.compress(plain)), ("deflate", zlib.compress(plain))):
        assert len(plain) / len(packed) >= 2  # decimal text compresses well
        sock = gateway.connect()
        sock.sendall(request(packed, {"Content-Encoding": encoding, "Accept-Encoding": "gzip"}))
        status, headers, body, complete = read_response(sock, timeout=30)
        assert status == 200 and complete, (status, body[:200])
        assert "content-encoding" not in headers
        result = json.loads(body)["result"]
        expected = expected or result
        assert result == expected and len(result) == 64
    # The same body uncompressed gives the same answer.
    sock = gateway.connect()
    sock.sendall(request(plain, {}))
    status, headers, body, _ = read_response(sock, timeout=30)
    assert status == 200 and "content-encoding" not in headers
    assert json.loads(body)["result"] == expected


def test_a_zip_bomb_gets_413_without_being_inflated(start_gateway):
    gateway = start_gateway("--max-body-bytes", "1000000")
    bomb = gzip.compress(b" " * 50_000_000)  # ~49 KB that would inflate to 50 MB
    sock = gateway.connect()
    sock.sendall(request(bomb, {"Content-Encoding": "gzip"}))
    status, headers, body, _ = read_response(sock, timeout=30)
    assert status == 413
    assert "inflates past" in json.loads(body)["detail"]


def test_unknown_content_encoding_is_415_and_broken_gzip_is_400(start_gateway):
    gateway = start_gateway()
    sock = gateway.connect()
    sock.sendall(request(b"abc", {"Content-Encoding": "br"}))
    assert read_response(sock)[0] == 415
    sock = gateway.connect()
    sock.sendall(request(b"\x1f\x8b\x08\x00garbage-not-gzip", {"Content-Encoding": "gzip"}))
    status = read_response(sock)[0]
    assert status == 400


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_compressed_round_trip(start_gateway):
    gateway = start_gateway()
    out = subprocess.run(["curl", "-s", "--compressed", "-H", "Content-Type: application/json",
                          "--data-binary", '{"data":[[1,2],[3,4]],"operation":"multiply","parameters":{"factor":2}}',
                          f"http://127.0.0.1:{gateway.port}/compute"], capture_output=True, timeout=30)
    assert json.loads(out.stdout)["result"] == [[2.0, 4.0], [6.0, 8.0]]
