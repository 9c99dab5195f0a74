#!/usr/bin/env python3
"""Drive a Forzium engine over a pipe with several requests in flight at once (python3 stdlib only).

    python3 examples/pipe_client.py                       # finds .build/release or .build/debug forzium-engine
    python3 examples/pipe_client.py .build/release/forzium-engine-simd
    python3 examples/pipe_client.py --bench 20000 ENGINE  # pipelined small-request throughput (requests/s)

The protocol is JSON-RPC 2.0, one message per line on the engine's stdin/stdout. Requests are written without
waiting for replies; replies may come back in any order (the SIMD engine answers each as it finishes), so they are
matched to requests by id. `stream` additionally sends `stream.rows` notifications before its final reply.
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def find_engine(name="forzium-engine"):
    for config in ("release", "debug"):
        path = os.path.join(ROOT, ".build", config, name)
        if os.access(path, os.X_OK):
            return path
    sys.exit(f"no built {name} under .build/release or .build/debug; run `swift build -c release` first")


class Engine:
    """A child engine process; a reader thread collects replies by id and notifications in arrival order."""

    def __init__(self, path, args=()):
        self.proc = subprocess.Popen([path, "--log-level", "warning", *args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        self.replies = {}
        self.notifications = []
        self.order = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            message = json.loads(line)
            with self.cond:
                if isinstance(message, dict) and "id" in message:
                    self.replies[message["id"]] = message
                    self.order.append(message["id"])
                else:
                    self.notifications.append(message)
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def send(self, lines):
        """Writes request lines in one go (without waiting for any reply)."""
        self.proc.stdin.write("".join(line + "\n" for line in lines).encode())
        self.proc.stdin.flush()

    def wait_for(self, ids, timeout=60):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not all(i in self.replies for i in ids):
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None and not self.reader.is_alive():
                    raise TimeoutError(f"missing replies: {[i for i in ids if i not in self.replies]}")
                self.cond.wait(left)
            return [self.replies.pop(i) for i in ids]

    def close(self):
        self.proc.stdin.close()
        status = self.proc.wait(timeout=60)
        self.reader.join(timeout=10)
        return status


def request(id_, method, params=None):
    message = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        message["params"] = params
    return json.dumps(message, separators=(",", ":"))


def demo(path):
    engine = Engine(path)
    a = [[1, 2], [3, 4]]
    requests = {
        1: ("engine.info", None),
        2: ("matmul", {"data": a, "matrix_b": [[5, 6], [7, 8]]}),
        3: ("transpose", {"data": [[1, 2, 3], [4, 5, 6]]}),
        4: ("sum", {"data": a, "axis": 0}),
        5: ("normalize", {"data": a, "mode": "minmax"}),
        6: ("compute", {"data": a, "operation": "multiply", "parameters": {"factor": 2.5}}),
        7: ("elementwise_div", {"data": a, "other": [[0, 1], [2, 0]]}),  # x/0 → ±inf → null on output
        8: ("sum", {"data": [[1, 2], [3]]}),                               # ragged → -32602 at /data/1
        9: ("stream", {"data": [[i, i + 1] for i in range(6)], "operation": "add", "parameters": {"addend": 10}}),
    }
    engine.send([request(i, m, p) for i, (m, p) in requests.items()])
    print(f"sent {len(requests)} requests without waiting; reply arrival order: ", end="")
    replies = engine.wait_for(list(requests))
    print(engine.order)
    for (id_, (method, _)), reply in zip(requests.items(), replies):
        if "error" in reply:
            error = reply["error"]
            print(f"  {id_:>2} {method:<16} error {error['code']}: {error['message']}")
        elif method == "engine.info":
            info = reply["result"]
            print(f"  {id_:>2} {method:<16} {info['name']} kind={info['kind']} threads={info['threads']} "
                  f"simd_width={info['simd_width']} methods={len(info['methods'])}")
        else:
            print(f"  {id_:>2} {method:<16} {json.dumps(reply['result'])}")
    for note in engine.notifications:
        params = note["params"]
        print(f"     stream.rows for request {params['request']}: start={params['start']} rows={params['rows']}")
    print(f"engine exited with status {engine.close()}")


def bench(path, count):
    """Pipelined throughput: one thread streams `count` small requests into the engine while another reads the
    replies as raw lines; replies are parsed and matched by id after the clock stops, so the figure is the
    engine's (plus the pipes'), not Python's JSON decoding."""
    proc = subprocess.Popen([path, "--log-level", "warning"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    payload = "".join(request(i, "multiply", {"data": [[i, 1], [2, 3]], "factor": 2}) + "\n"
                      for i in range(count)).encode()
    lines = []

    def write():
        proc.stdin.write(payload)
        proc.stdin.close()

    start = time.perf_counter()
    writer = threading.Thread(target=write)
    writer.start()
    for line in proc.stdout:
        lines.append(line)
        if len(lines) == count:
            break
    elapsed = time.perf_counter() - start
    writer.join()
    status = proc.wait(timeout=60)
    ids = sorted(json.loads(line)["id"] for line in lines)
    assert ids == list(range(count)), "replies missing or duplicated"
    print(f"{os.path.basename(path)}: {count} pipelined requests in {elapsed:.3f} s = {count / elapsed:,.0f} requests/s "
          f"(all answered, exit status {status})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("engine", nargs="?", help="engine binary (default: forzium-engine from .build/release or .build/debug)")
    parser.add_argument("--bench", type=int, metavar="N", help="measure pipelined throughput of N small requests")
    args = parser.parse_args()
    path = args.engine or find_engine()
    if args.bench:
        bench(path, args.bench)
    else:
        demo(path)


if __name__ == "__main__":
    main()
