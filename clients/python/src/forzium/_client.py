"""`Client`: the Forzium gateway over HTTP, binary Open Inference Protocol (v2) by default, JSON `/compute` as the
fallback."""
from __future__ import annotations

import http.client
import json
import os
import threading
import urllib.parse
from typing import Any, Dict, List, Literal, Optional, Tuple, Union

import numpy as np

from ._operations import ForziumError, Matrix, Operations, Result

DEFAULT_URL = "http://127.0.0.1:8000"


class Client(Operations):
    """A Forzium gateway at ``url`` (default: ``$FORZIUM_URL``, else ``http://127.0.0.1:8000``).

    ``protocol="v2"`` (default) sends each matrix as raw little-endian float64 bytes to
    ``POST /v2/models/{operation}/infer`` (the Open Inference Protocol's binary tensor data extension) and reads the
    result the same way: no decimal text, every bit kept (NaN, ±Infinity, -0.0). ``protocol="json"`` uses
    ``POST /compute`` with JSON (non-finite results come back as NaN, since JSON has only ``null`` for them).

    One keep-alive connection, reopened when the server closes it; a lock makes a client safe to share between
    threads (calls then take turns: use one client per thread for parallel requests). ``api_key`` is sent as a
    bearer token; ``timeout`` (seconds) bounds each socket operation."""

    def __init__(self, url: Optional[str] = None, *, protocol: Literal["v2", "json"] = "v2",
                 timeout: float = 120.0, api_key: Optional[str] = None) -> None:
        self.url = (url or os.environ.get("FORZIUM_URL") or DEFAULT_URL).rstrip("/")
        parsed = urllib.parse.urlsplit(self.url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"not an http(s) URL: {self.url!r}")
        if protocol not in ("v2", "json"):
            raise ValueError("protocol must be 'v2' or 'json'")
        self.protocol = protocol
        self.timeout = timeout
        self._scheme = parsed.scheme
        self._host = parsed.hostname
        self._port = parsed.port
        self._prefix = parsed.path.rstrip("/")
        self._headers: Dict[str, str] = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._connection: Optional[http.client.HTTPConnection] = None
        self._lock = threading.Lock()

    # Connection

    def close(self) -> None:
        """Closes the connection (a later call opens a new one)."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            if self._scheme == "https":
                self._connection = http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout)
            else:
                self._connection = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        return self._connection

    def _request(self, method: str, path: str, body: Optional[List[Union[bytes, memoryview]]] = None,
                 headers: Optional[Dict[str, str]] = None) -> Tuple[int, Dict[str, str], bytearray]:
        """One exchange; the body goes out as the given pieces (no joined copy). Retries once on a connection the
        server had closed."""
        all_headers = dict(self._headers)
        all_headers.update(headers or {})
        if body is not None:
            all_headers["Content-Length"] = str(sum(len(piece) for piece in body))
        with self._lock:
            for attempt in (0, 1):
                connection = self._connect()
                try:
                    connection.request(method, self._prefix + path, body=iter(body) if body is not None else None,
                                       headers=all_headers)
                    response = connection.getresponse()
                    length = response.getheader("Content-Length")
                    if length is not None:
                        data = bytearray(int(length))
                        view = memoryview(data)
                        filled = 0
                        while filled < len(data):
                            n = response.readinto(view[filled:])
                            if not n:
                                raise http.client.IncompleteRead(bytes(view[:filled]), len(data) - filled)
                            filled += n
                    else:
                        data = bytearray(response.read())
                    result_headers = {k.lower(): v for k, v in response.getheaders()}
                    if response.will_close:
                        connection.close()
                        self._connection = None
                    return response.status, result_headers, data
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                    connection.close()
                    self._connection = None
                    if attempt == 1:
                        raise
                except BaseException:
                    connection.close()
                    self._connection = None
                    raise
        raise AssertionError("unreachable")

    @staticmethod
    def _raise(status: int, data: bytearray) -> None:
        try:
            document = json.loads(bytes(data))
            message = document.get("error") or document.get("detail") or bytes(data).decode("utf-8", "replace")
            if isinstance(message, dict):
                message = message.get("detail", str(message))
        except (ValueError, AttributeError):
            message = bytes(data[:500]).decode("utf-8", "replace")
        raise ForziumError(status, str(message))

    def _get_json(self, path: str) -> Any:
        status, _, data = self._request("GET", path)
        if status != 200:
            self._raise(status, data)
        return json.loads(bytes(data))

    # Service

    def is_live(self) -> bool:
        """``GET /v2/health/live`` answers 200."""
        return self._request("GET", "/v2/health/live")[0] == 200

    def is_ready(self) -> bool:
        """``GET /v2/health/ready`` answers 200 (an engine can take work)."""
        return self._request("GET", "/v2/health/ready")[0] == 200

    def server_metadata(self) -> Dict[str, Any]:
        """``GET /v2``: name, version, extensions."""
        result: Dict[str, Any] = self._get_json("/v2")
        return result

    def model_metadata(self, operation: str) -> Dict[str, Any]:
        """``GET /v2/models/{operation}``: its inputs, output and parameters."""
        result: Dict[str, Any] = self._get_json("/v2/models/" + urllib.parse.quote(operation, safe=""))
        return result

    # Operations

    def _run(self, operation: str, matrices: Dict[str, Matrix], params: Dict[str, Any]) -> Result:
        if self.protocol == "json":
            return self._run_json(operation, matrices, params)
        return self._run_v2(operation, matrices, params)

    def _run_v2(self, operation: str, matrices: Dict[str, Matrix], params: Dict[str, Any]) -> Result:
        inputs = [{"name": name, "datatype": "FP64", "shape": list(m.shape), "parameters": {"binary_data_size": m.nbytes}}
                  for name, m in matrices.items()]
        request: Dict[str, Any] = {"inputs": inputs, "outputs": [{"name": "result", "parameters": {"binary_data": True}}]}
        if params:
            request["parameters"] = params
        head = json.dumps(request, separators=(",", ":")).encode()
        pieces: List[Union[bytes, memoryview]] = [head]
        pieces += [m.data.cast("B") for m in matrices.values()]
        status, headers, data = self._request(
            "POST", f"/v2/models/{operation}/infer", pieces,
            {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(head))})
        if status != 200:
            self._raise(status, data)
        header_length = int(headers.get("inference-header-content-length", len(data)))
        document = json.loads(bytes(data[:header_length]))
        output = document["outputs"][0]
        shape = [int(d) for d in output["shape"]]
        size = output.get("parameters", {}).get("binary_data_size")
        if size is not None:
            values = np.frombuffer(data, dtype="<f8", count=int(size) // 8, offset=header_length)
        else:
            values = np.array([np.nan if v is None else v for v in output["data"]], dtype=np.float64)
        if not shape:
            return float(values[0])
        return values.reshape(shape)

    def _run_json(self, operation: str, matrices: Dict[str, Matrix], params: Dict[str, Any]) -> Result:
        parameters = dict(params)
        for name, m in matrices.items():
            if name != "data":
                parameters[name] = m.tolist()
        body = json.dumps({"data": matrices["data"].tolist(), "operation": operation, "parameters": parameters},
                          separators=(",", ":")).encode()
        status, _, data = self._request("POST", "/compute", [body], {"Content-Type": "application/json"})
        if status != 200:
            self._raise(status, data)
        result = json.loads(bytes(data))["result"]
        if not isinstance(result, list):
            return float("nan") if result is None else float(result)
        return np.array(result, dtype=np.float64)
