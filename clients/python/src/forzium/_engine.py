"""`Engine`: a local Forzium engine process driven over its stdin/stdout pipe (JSON-RPC 2.0, one message per line),
with matrices in the stdio protocol's binary form (base64 of little-endian float64) both ways."""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy as np

from ._operations import ForziumError, Matrix, Operations, Result

ENGINE_NAMES = ("forzium-engine-simd", "forzium-engine")


def find_engine(path: Optional[str] = None) -> str:
    """The engine executable: ``path``, else ``$FORZIUM_ENGINE_PATH``, else ``forzium-engine-simd`` or
    ``forzium-engine`` on ``PATH``."""
    for candidate in (path, os.environ.get("FORZIUM_ENGINE_PATH")):
        if candidate:
            if not (Path(candidate).is_file() and os.access(candidate, os.X_OK)):
                raise FileNotFoundError(f"not an executable: {candidate}")
            return candidate
    for name in ENGINE_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise FileNotFoundError("no Forzium engine found: pass path=, set FORZIUM_ENGINE_PATH, or put "
                            "forzium-engine-simd or forzium-engine on PATH")


class Engine(Operations):
    """A Forzium engine started as a child process (``path``: see `find_engine`; ``args``: extra engine options).

    Requests go one at a time over the pipe (a lock makes an `Engine` safe to share between threads); the engine's
    log lines go to ``stderr`` (default: discarded). Use as a context manager, or call `close()`: the engine exits
    when its stdin closes."""

    def __init__(self, path: Optional[str] = None, *, args: Sequence[str] = (), stderr: Any = subprocess.DEVNULL) -> None:
        self.path = find_engine(path)
        self._process = subprocess.Popen([self.path, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=stderr, bufsize=0)
        self._lock = threading.Lock()
        self._next_id = 0

    def close(self, timeout: float = 10.0) -> Optional[int]:
        """Closes the engine's stdin and waits for it to exit; its exit status."""
        if self._process.stdin and not self._process.stdin.closed:
            self._process.stdin.close()
        try:
            return self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            return self._process.wait(timeout=timeout)
        finally:
            if self._process.stdout:
                self._process.stdout.close()

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, params: Optional[Dict[str, Any]] = None) -> Any:
        """One JSON-RPC request; its ``result`` (raises `ForziumError` with the JSON-RPC code on an error)."""
        with self._lock:
            self._next_id += 1
            request_id = self._next_id
            line = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}},
                              separators=(",", ":"), allow_nan=True).encode() + b"\n"
            stdin, stdout = self._process.stdin, self._process.stdout
            if stdin is None or stdout is None or stdin.closed:
                raise ForziumError(-32000, "the engine is closed")
            try:
                stdin.write(line)
                stdin.flush()
                while True:
                    reply = stdout.readline()
                    if not reply:
                        raise ForziumError(-32000, f"the engine exited (status {self._process.poll()})")
                    message = json.loads(reply)
                    if message.get("id") == request_id:
                        break
            except BrokenPipeError:
                raise ForziumError(-32000, f"the engine exited (status {self._process.poll()})") from None
        if "error" in message:
            error = message["error"]
            raise ForziumError(int(error.get("code", -32603)), str(error.get("message", "")))
        return message["result"]

    def info(self) -> Dict[str, Any]:
        """``engine.info``: name, kind, version, threads, ISA, methods, limits."""
        result: Dict[str, Any] = self.call("engine.info")
        return result

    def _run(self, operation: str, matrices: Dict[str, Matrix], params: Dict[str, Any]) -> Result:
        request: Dict[str, Any] = {name: encode(m) for name, m in matrices.items()}
        request.update(params)
        request["$result"] = "binary"
        return decode(self.call(operation, request))


def encode(matrix: Matrix) -> Dict[str, Any]:
    """The stdio protocol's binary matrix form."""
    return {"dtype": "float64", "shape": list(matrix.shape),
            "base64": base64.b64encode(matrix.data.cast("B")).decode("ascii")}


def decode(result: Any) -> Result:
    """A result in the binary form (or plain JSON) as an array, or a float for a scalar."""
    if isinstance(result, dict) and result.get("dtype") == "float64":
        values = np.frombuffer(bytearray(base64.b64decode(result["base64"])), dtype="<f8")
        shape = [int(d) for d in result["shape"]]
        return float(values[0]) if not shape else values.reshape(shape)
    if isinstance(result, list):
        return np.array(result, dtype=np.float64)
    return float("nan") if result is None else float(result)
