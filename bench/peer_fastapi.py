"""Benchmark-only peer: the ForziumAPI `/compute` route on FastAPI + uvicorn + NumPy (orjson for JSON).

Same request and response shape as forzium-gateway's `POST /compute`:
  {"data": [[...]], "operation": "...", "parameters": {...}} -> {"result", "operation", "engine", "execution_time_ms"}
Used only by the benchmarks in bench/; not part of the product.

Like the gateway (which validates every body against its JSON Schema), the peer validates its body the way a
FastAPI service does: a pydantic model (`ComputeRequest`). `PEER_MODE=raw` skips the model and feeds orjson's
output straight to NumPy (the fastest possible peer, for reference).

`PEER_SERVER` picks uvicorn's HTTP/1 server, explicitly, so that what happens to be installed cannot change the peer:
  h11       (default) the asyncio event loop and the pure-Python h11 parser: what `pip install fastapi uvicorn` runs.
  standard  uvloop and the httptools (llhttp) parser: what `pip install "uvicorn[standard]"` (or
            `"fastapi[standard]"`) runs, about twice the requests per second on small bodies.
Either way one process, uvicorn's default.
"""
import os
from typing import Any
import sys
import time

import numpy as np
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import ORJSONResponse, Response
from pydantic import BaseModel

app = FastAPI()
MODE = os.environ.get("PEER_MODE", "pydantic")


class ComputeRequest(BaseModel):
    data: list[list[float]]
    operation: str
    parameters: dict[str, Any] = {}


def _matrix(value, name):
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix")
    return array


OPERATIONS = {
    "multiply": lambda a, p: a * float(p.get("factor", 1)),
    "add": lambda a, p: a + float(p.get("addend", 0)),
    "matmul": lambda a, p: a @ _matrix(p["matrix_b"], "matrix_b"),
    "transpose": lambda a, p: a.T,
    "elementwise_add": lambda a, p: a + _matrix(p["other"], "other"),
    "elementwise_mul": lambda a, p: a * _matrix(p["other"], "other"),
    "sum": lambda a, p: a.sum(),
}


def _run(operation, data, parameters, started):
    result = OPERATIONS[operation](_matrix(data, "data"), parameters or {})
    return {
        "result": result.tolist() if isinstance(result, np.ndarray) else float(result),
        "operation": operation,
        "engine": "numpy",
        "execution_time_ms": (time.perf_counter() - started) * 1000.0,
    }


if MODE == "raw":
    @app.post("/compute")
    async def compute_raw(request: Request):
        started = time.perf_counter()
        try:
            body = orjson.loads(await request.body())
            payload = _run(body["operation"], body["data"], body.get("parameters"), started)
        except (KeyError, ValueError, TypeError, orjson.JSONDecodeError) as error:
            return Response(orjson.dumps({"detail": str(error)}), status_code=422, media_type="application/json")
        return Response(orjson.dumps(payload), media_type="application/json")
else:
    @app.post("/compute", response_class=ORJSONResponse)
    async def compute(body: ComputeRequest):
        started = time.perf_counter()
        try:
            return ORJSONResponse(_run(body.operation, body.data, body.parameters, started))
        except (KeyError, ValueError, TypeError) as error:
            return ORJSONResponse({"detail": str(error)}, status_code=422)


if __name__ == "__main__":
    import uvicorn

    server = os.environ.get("PEER_SERVER", "h11")
    loop, http = {"h11": ("asyncio", "h11"), "standard": ("uvloop", "httptools")}[server]
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False, loop=loop, http=http)
