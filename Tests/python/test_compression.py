"""Compressed JSON on the gateway (issue 11, part 4): gzip and deflate request bodies with the body limit applied to
the inflated size, and gzip/deflate responses for clients that accept them."""
import gzip
import http.client
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
        sock.sendall(request(packed, {"Content-Encoding": encoding}))
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
    gateway = start_gateway("--max-body-bytes", "100000")
    for inflated in (1_000_000, 50_000_000):  # ~1 KB of gzip that would inflate to 1 MB; ~49 KB to 50 MB
        bomb = gzip.compress(b" " * inflated, 9)
        assert len(bomb) < 1100 or inflated > 1_000_000
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


def post(gateway, path, body, headers=None, method="POST"):
    """One request with http.client, which leaves Content-Encoding alone: returns status, headers, raw body."""
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=60)
    conn.request(method, path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
    response = conn.getresponse()
    raw = response.read()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, raw


def test_responses_are_compressed_for_clients_that_accept_it(start_gateway):
    gateway = start_gateway()
    body = matmul_json(96)
    status, headers, plain = post(gateway, "/compute", body)
    assert status == 200 and "content-encoding" not in headers
    assert headers["vary"] == "Accept-Encoding"  # the answer depends on Accept-Encoding, for caches
    expected = json.loads(plain)["result"]

    status, headers, packed = post(gateway, "/compute", body, {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["content-encoding"] == "gzip" and headers["vary"] == "Accept-Encoding"
    assert "content-length" not in headers and headers["transfer-encoding"] == "chunked"
    inflated = gzip.decompress(packed)
    assert len(inflated) / len(packed) >= 1.5  # 6-decimal results: level 1 still gains
    assert json.loads(inflated)["result"] == expected

    # HTTP's "deflate" is the zlib format; q-values pick the coding; q=0 refuses one.
    for accept, coding in (("deflate", "deflate"), ("gzip;q=0.5, deflate", "deflate"), ("deflate;q=0.2, *", "gzip"),
                           ("br, gzip;q=0, deflate;q=0.1", "deflate"), ("x-gzip", "gzip")):
        status, headers, packed = post(gateway, "/compute", body, {"Accept-Encoding": accept})
        assert status == 200 and headers.get("content-encoding") == coding, (accept, headers)
        inflated = gzip.decompress(packed) if coding == "gzip" else zlib.decompress(packed)
        assert json.loads(inflated)["result"] == expected, accept
    for accept in ("identity", "br", "gzip;q=0, deflate;q=0", "*;q=0", "gzip;q=0.000"):
        status, headers, raw = post(gateway, "/compute", body, {"Accept-Encoding": accept})
        assert status == 200 and "content-encoding" not in headers, accept
        assert json.loads(raw)["result"] == expected


def test_small_binary_and_head_answers_stay_plain(start_gateway):
    gateway = start_gateway()
    status, headers, raw = post(gateway, "/compute", b'{"data":[[1,2],[3,4]],"operation":"transpose"}', {"Accept-Encoding": "gzip"})
    assert status == 200 and "content-encoding" not in headers  # under --compress-min-bytes (1024)
    assert json.loads(raw)["result"] == [[1.0, 3.0], [2.0, 4.0]]
    status, headers, raw = post(gateway, "/health", None, {"Accept-Encoding": "gzip"}, method="GET")
    assert status == 200 and "content-encoding" not in headers
    # Larger documents (the OpenAPI document, /docs) are compressed too; HEAD is not.
    status, headers, raw = post(gateway, "/openapi.json", None, {"Accept-Encoding": "gzip"}, method="GET")
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert json.loads(gzip.decompress(raw))["openapi"].startswith("3.")


def test_compression_can_be_turned_off_or_applied_to_every_size(start_gateway):
    off = start_gateway("--compress-min-bytes", "off")
    status, headers, raw = post(off, "/compute", matmul_json(64), {"Accept-Encoding": "gzip"})
    assert status == 200 and "content-encoding" not in headers and "vary" not in headers
    everything = start_gateway("--compress-min-bytes", "0", "--compress-level", "9")
    status, headers, raw = post(everything, "/compute", b'{"data":[[1,2],[3,4]],"operation":"transpose"}',
                                {"Accept-Encoding": "gzip"})
    assert headers["content-encoding"] == "gzip"
    assert json.loads(gzip.decompress(raw))["result"] == [[1.0, 3.0], [2.0, 4.0]]
    # A problem+json error is compressed like any other text.
    status, headers, raw = post(everything, "/compute", b'{"data":[[1,2],[3]],"operation":"transpose"}',
                                {"Accept-Encoding": "gzip"})
    assert status == 422 and headers["content-type"].startswith("application/problem+json")
    assert json.loads(gzip.decompress(raw))["status"] == 422


def test_a_compressed_ndjson_stream_is_flushed_row_block_by_row_block(start_gateway):
    """Each chunk of a compressed /stream ends on a zlib sync flush: a client inflating chunk by chunk gets whole
    lines at every chunk boundary, so rows are not held back by the compressor."""
    gateway = start_gateway()
    n = 400  # 160,000 elements: several row blocks from the engine
    body = matmul_json(n)
    sock = gateway.connect()
    sock.sendall(f"POST /stream HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nAccept-Encoding: gzip\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    sock.settimeout(60)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, rest = data.split(b"\r\n\r\n", 1)
    assert b"content-encoding: gzip" in head.lower() and b"transfer-encoding: chunked" in head.lower()
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    lines = []
    chunks = 0
    flushes = 0
    pending = b""
    buffer = rest
    while True:
        while b"\r\n" not in buffer:
            buffer += sock.recv(65536)
        size_line, buffer = buffer.split(b"\r\n", 1)
        size = int(size_line, 16)
        while len(buffer) < size + 2:
            buffer += sock.recv(65536)
        chunk, buffer = buffer[:size], buffer[size + 2:]
        if size == 0:
            break
        pending += inflater.decompress(chunk)
        chunks += 1
        if size < 65536 and not inflater.eof:
            # Not a full 64 KiB window: the compressor flushed here, at the end of what the engine had sent.
            assert pending.endswith(b"\n"), f"chunk {chunks} (a flush) ends mid-line"
            flushes += 1
    sock.close()
    lines = pending.decode().splitlines()
    assert flushes >= 2 and chunks > flushes
    rows = [json.loads(line) for line in lines]
    assert rows[-1]["done"] is True and rows[-1]["rows"] == n
    assert [r["row"] for r in rows[:-1]] == list(range(n))


def test_a_512_squared_request_compresses_twofold_and_round_trips(start_gateway):
    """Issue 11's bar: a 512² JSON request (full-precision doubles) gzips to under half its size, and the gateway
    answers it — compressed both ways — exactly as it answers the plain body."""
    gateway = start_gateway()
    rnd = random.Random(11)
    m = [[rnd.random() for _ in range(512)] for _ in range(512)]
    plain = json.dumps({"data": m, "operation": "matmul", "parameters": {"matrix_b": m}}).encode()
    packed = gzip.compress(plain, 1)  # even zlib's fastest level
    assert len(plain) / len(packed) >= 2.0, len(plain) / len(packed)
    status, headers, body = post(gateway, "/compute", plain)
    assert status == 200
    expected = json.loads(body)["result"]
    status, headers, body = post(gateway, "/compute", packed, {"Content-Encoding": "gzip", "Accept-Encoding": "gzip"})
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert len(gzip.decompress(body)) / len(body) >= 1.8
    assert json.loads(gzip.decompress(body))["result"] == expected
