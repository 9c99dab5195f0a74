"""Benchmark-only peer: the ForziumAPI `/compute` route on FastAPI + uvicorn + NumPy (orjson for JSON).

Same request and response shape as forzium-gateway's `POST /compute`:
  {"data": [[...]], "operation": "...", "parameters": {...}} -> {"result", "operation", "engine", "execution_time_ms"}
Used only by bench/gateway_bench.sh; not part of the product.
"""
import sys
import time

import numpy as np
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

app = FastAPI()


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


@app.post("/compute")
async def compute(request: Request):
    started = time.perf_counter()
    try:
        body = orjson.loads(await request.body())
        operation = body["operation"]
        data = _matrix(body["data"], "data")
        result = OPERATIONS[operation](data, body.get("parameters") or {})
    except (KeyError, ValueError, TypeError, orjson.JSONDecodeError) as error:
        return Response(orjson.dumps({"detail": str(error)}), status_code=422, media_type="application/json")
    payload = {
        "result": result.tolist() if isinstance(result, np.ndarray) else float(result),
        "operation": operation,
        "engine": "numpy",
        "execution_time_ms": (time.perf_counter() - started) * 1000.0,
    }
    return Response(orjson.dumps(payload), media_type="application/json")


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
