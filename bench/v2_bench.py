"""512² and 1024² matmul end to end over HTTP, one run (issue 11's bars), on 127.0.0.1:

  v2 binary   forzium-gateway POST /v2/models/matmul/infer, binary tensors in and out (Inference-Header-Content-Length)
  /compute    forzium-gateway POST /compute, JSON
  FastAPI     bench/peer_fastapi.py (PEER_MODE=raw): FastAPI + uvicorn, orjson in and out, NumPy matmul

Each request is sent from prebuilt body bytes on a keep-alive connection and timed until the last response byte has
been read (nothing parsed on the client), sequentially; p50 (and p90) over N requests after two warm-ups. The answers
are checked against NumPy first.

Memory: a fresh gateway (--engines 1) per size, serving only v2 binary matmuls of that size; peak RSS (VmHWM) of the
gateway and of its engine minus their RSS after start-up and one small request, against the raw matrices
(A + B + C = 3 × n² × 8 bytes); plus what the gateway's segment pool keeps in /dev/shm afterwards (not in any RSS).

Usage: python3 bench/v2_bench.py BIN_DIR [requests-512 (default 30)] [requests-1024 (default 12)]
"""
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = sys.argv[1]
COUNTS = {512: int(sys.argv[2]) if len(sys.argv) > 2 else 30, 1024: int(sys.argv[3]) if len(sys.argv) > 3 else 12}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gateway(*extra):
    process = subprocess.Popen([f"{BIN}/forzium-gateway", "--port", "0", "--log-level", "notice", "--engines", "1", *extra],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    log = ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        log += line
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if match:
            port = int(match.group(1))
            while time.monotonic() < deadline:
                try:
                    if json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/ready"))["status"] == "ready":
                        subprocess.Popen(["cat"], stdin=process.stderr, stdout=subprocess.DEVNULL)  # keep draining
                        return process, port
                except OSError:
                    pass
                time.sleep(0.05)
    process.kill()
    raise RuntimeError("gateway did not start:\n" + log)


def start_peer():
    port = free_port()
    process = subprocess.Popen([sys.executable, f"{ROOT}/bench/peer_fastapi.py", str(port)], env=dict(os.environ, PEER_MODE="raw"),
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            exchange(port, "/compute", json_body(np.eye(2), np.eye(2)), {"Content-Type": "application/json"})
            return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("peer did not start")


def stop(process):
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


class Connection:
    """A minimal keep-alive HTTP/1.1 client on one socket: the request goes out with one sendall, the body is read
    with recv_into into one preallocated buffer (the same small client cost for every server measured)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=300)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pending = b""

    def post(self, path, body, headers):
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        self.sock.sendall(head.encode() + body if len(body) < 65536 else head.encode())
        if len(body) >= 65536:
            self.sock.sendall(body)
        data = self.pending
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        raw_head, _, rest = data.partition(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        response_headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            response_headers[name.strip().lower()] = value.strip()
        length = int(response_headers["content-length"])
        buffer = bytearray(length)
        view = memoryview(buffer)
        filled = min(len(rest), length)
        view[:filled] = rest[:filled]
        self.pending = rest[length:]
        while filled < length:
            n = self.sock.recv_into(view[filled:])
            if not n:
                raise ConnectionError("closed mid-body")
            filled += n
        assert status == 200, (path, status, bytes(buffer[:300]))
        return response_headers, buffer

    def close(self):
        self.sock.close()


def exchange(port, path, body, headers):
    connection = Connection(port)
    try:
        return connection.post(path, body, headers)
    finally:
        connection.close()


def v2_body(a, b):
    head = json.dumps({"inputs": [
        {"name": "data", "datatype": "FP64", "shape": list(a.shape), "parameters": {"binary_data_size": a.nbytes}},
        {"name": "matrix_b", "datatype": "FP64", "shape": list(b.shape), "parameters": {"binary_data_size": b.nbytes}}],
        "outputs": [{"name": "result", "parameters": {"binary_data": True}}]}).encode()
    return head + a.tobytes() + b.tobytes(), {"Inference-Header-Content-Length": str(len(head)),
                                               "Content-Type": "application/octet-stream"}


def json_body(a, b):
    return json.dumps({"data": a.tolist(), "operation": "matmul", "parameters": {"matrix_b": b.tolist()}}).encode()


def timings(port, path, body, headers, count):
    connection = Connection(port)
    for _ in range(2):
        connection.post(path, body, headers)
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        connection.post(path, body, headers)
        samples.append((time.perf_counter() - started) * 1000)
    connection.close()
    samples.sort()
    return samples[len(samples) // 2], samples[min(len(samples) - 1, int(len(samples) * 0.9))]


def status_kb(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def engine_pid(port):
    (engine,) = [e["pid"] for e in json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/ready"))["engines"] if e.get("pid")]
    return engine


def cpu_model():
    fields = {}
    for line in open("/proc/cpuinfo"):
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = fields.get("flags", "").split()
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{fields.get('model name', 'unknown')}, family {fields.get('cpu family', '?')} model {fields.get('model', '?')}, {isa}"


def main():
    rng = np.random.default_rng(7)
    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores); load average {os.getloadavg()[0]:.2f}")
    gateway, gport = start_gateway()
    peer, pport = start_peer()
    rows = []
    try:
        for n in (512, 1024):
            a, b = rng.standard_normal((n, n)), rng.standard_normal((n, n))
            expected = a @ b
            body2, headers2 = v2_body(a, b)
            bodyj = json_body(a, b)
            jheaders = {"Content-Type": "application/json"}
            # Answers first.
            response, data = exchange(gport, "/v2/models/matmul/infer", body2, headers2)
            length = int(response["inference-header-content-length"])
            np.testing.assert_allclose(np.frombuffer(data[length:], dtype="<f8").reshape(n, n), expected, rtol=1e-9, atol=1e-9)
            np.testing.assert_allclose(np.array(json.loads(exchange(gport, "/compute", bodyj, jheaders)[1])["result"]), expected, rtol=1e-9, atol=1e-9)
            np.testing.assert_allclose(np.array(json.loads(exchange(pport, "/compute", bodyj, jheaders)[1])["result"]), expected, rtol=1e-9, atol=1e-9)
            count = COUNTS[n]
            v2 = timings(gport, "/v2/models/matmul/infer", body2, headers2, count)
            compute = timings(gport, "/compute", bodyj, jheaders, count)
            fastapi = timings(pport, "/compute", bodyj, jheaders, count)
            rows.append((n, len(body2), len(bodyj), v2, compute, fastapi))
            print(f"matmul {n}²: request bytes v2 {len(body2):,} / JSON {len(bodyj):,}; p50 (p90) ms: v2 binary {v2[0]:.1f} ({v2[1]:.1f}), "
                  f"/compute {compute[0]:.1f} ({compute[1]:.1f}), FastAPI+orjson+NumPy {fastapi[0]:.1f} ({fastapi[1]:.1f}); "
                  f"v2 is {fastapi[0] / v2[0]:.1f}× FastAPI, {compute[0] / v2[0]:.1f}× /compute", flush=True)
    finally:
        stop(gateway)
        stop(peer)

    for n in (512, 1024):
        gateway, gport = start_gateway()
        try:
            small, small_headers = v2_body(np.eye(4), np.eye(4))
            exchange(gport, "/v2/models/matmul/infer", small, small_headers)
            engine = engine_pid(gport)
            time.sleep(0.3)
            base_g, base_e = status_kb(gateway.pid, "VmRSS"), status_kb(engine, "VmRSS")
            a, b = rng.standard_normal((n, n)), rng.standard_normal((n, n))
            body2, headers2 = v2_body(a, b)
            connection = Connection(gport)
            for _ in range(5):
                connection.post("/v2/models/matmul/infer", body2, headers2)
            connection.close()
            peak_g, peak_e = status_kb(gateway.pid, "VmHWM"), status_kb(engine, "VmHWM")
            # The gateway's segment pool keeps released shared-memory segments (in /dev/shm, not in anyone's RSS).
            pooled_kb = sum(os.path.getsize(os.path.join("/dev/shm", f)) for f in os.listdir("/dev/shm")
                            if f.startswith(f"forzium-{gateway.pid}-")) / 1024
            raw_kb = 3 * n * n * 8 / 1024
            print(f"peak RSS, v2 binary matmul {n}² (raw matrices A+B+C = {raw_kb / 1024:.1f} MiB): gateway {peak_g / 1024:.1f} MiB "
                  f"(+{(peak_g - base_g) / 1024:.1f} over {base_g / 1024:.1f} idle = {(peak_g - base_g) / raw_kb:.2f}× raw), "
                  f"engine {peak_e / 1024:.1f} MiB (+{(peak_e - base_e) / 1024:.1f} over {base_e / 1024:.1f} idle = "
                  f"{(peak_e - base_e) / raw_kb:.2f}× raw); segments the gateway's pool keeps in /dev/shm: "
                  f"{pooled_kb / 1024:.1f} MiB ({pooled_kb / raw_kb:.2f}× raw)", flush=True)
        finally:
            stop(gateway)


if __name__ == "__main__":
    main()
