"""Shared fixtures: the real gateway executable, started on 127.0.0.1 with a free port and stopped afterwards.

The binaries come from the debug build that scripts/test.sh makes (FORZIUM_BIN_DIR overrides)."""
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("FORZIUM_BIN_DIR", REPO / ".build" / "debug"))


class Gateway:
    """A running forzium-gateway; `log` collects its stderr."""

    def __init__(self, *args, env=None, preexec_fn=None):
        environment = {k: v for k, v in os.environ.items() if k not in ("FORZIUM_ENGINE", "FORZIUM_API_KEYS")}
        environment.update(env or {})
        self.proc = subprocess.Popen(
            [str(BIN_DIR / "forzium-gateway"), "--port", "0", "--log-level", "info", *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment,
            preexec_fn=preexec_fn)
        self.log = ""
        self._lock = threading.Lock()
        threading.Thread(target=self._drain, daemon=True).start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            match = re.search(r"listening on 127\.0\.0\.1:(\d+)", self.text())
            if match:
                self.port = int(match.group(1))
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("gateway did not start:\n" + self.text())

    def _drain(self):
        for line in iter(self.proc.stderr.readline, b""):
            with self._lock:
                self.log += line.decode("utf-8", "replace")

    def text(self):
        with self._lock:
            return self.log

    @property
    def pid(self):
        return self.proc.pid

    def connect(self, timeout=10.0):
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        sock.settimeout(timeout)
        return sock

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode


@pytest.fixture
def start_gateway():
    started = []

    def start(*args, env=None, preexec_fn=None):
        gateway = Gateway(*args, env=env, preexec_fn=preexec_fn)
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.stop()


def read_response(sock, timeout=10.0):
    """Reads one HTTP/1.1 response (Content-Length or chunked, or until EOF). Returns (status, headers, body,
    complete) where complete says whether the body had every byte its framing announced."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            if not data:
                return None, {}, b"", False
            raise AssertionError("connection closed inside the response head: %r" % data[:200])
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    if 100 <= status < 200:
        rest = read_response_from(sock, body, timeout)
        return rest
    return finish_body(sock, status, headers, body)


def read_response_from(sock, pending, timeout):
    class Prefixed:
        def __init__(self):
            self.pending = pending

        def settimeout(self, t):
            sock.settimeout(t)

        def recv(self, n):
            if self.pending:
                out, self.pending = self.pending, b""
                return out
            return sock.recv(n)

    return read_response(Prefixed(), timeout)


def finish_body(sock, status, headers, body):
    if "content-length" in headers:
        length = int(headers["content-length"])
        while len(body) < length:
            chunk = sock.recv(1 << 20)
            if not chunk:
                return status, headers, body, False
            body += chunk
        return status, headers, body[:length], True
    if headers.get("transfer-encoding", "").lower() == "chunked":
        raw = body
        out = b""
        while True:
            while b"\r\n" not in raw:
                chunk = sock.recv(65536)
                if not chunk:
                    return status, headers, out, False
                raw += chunk
            size_line, _, raw = raw.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(raw) < size + 2:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    return status, headers, out, False
                raw += chunk
            if size == 0:
                return status, headers, out, True
            out += raw[:size]
            raw = raw[size + 2:]
    while True:
        chunk = sock.recv(1 << 20)
        if not chunk:
            return status, headers, body, True
        body += chunk


def cpu_seconds(pid):
    """User + system CPU time of a process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def children(pid):
    """PIDs whose parent is `pid` (engine processes of a gateway)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out
