"""Python peers for the Forzium benchmark: NumPy/OpenBLAS matmul, orjson parse/write, and the
parse → matmul → serialize script a Python service would run. Imported by bench/run.py; runnable alone:
`python3 bench/peers.py` prints the peer figures as JSON lines."""
import json
import statistics
import time

import numpy as np
import orjson


def median_seconds(fn, min_time=1.0, min_runs=5, max_runs=1000):
    fn()  # warm-up
    samples = []
    start = time.perf_counter()
    while len(samples) < min_runs or (time.perf_counter() - start < min_time and len(samples) < max_runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def random_matrix(n, seed):
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (n, n))


def numpy_matmul_gflops(n, min_time=1.0, into=False):
    """`a @ b` (a new result each time), or with `into` `np.matmul(a, b, out=c)` into one preallocated `c`."""
    a, b = random_matrix(n, 1), random_matrix(n, 2)
    if into:
        c = np.empty((n, n))
        seconds = median_seconds(lambda: np.matmul(a, b, out=c), min_time=min_time)
    else:
        seconds = median_seconds(lambda: a @ b, min_time=min_time)
    return 2.0 * n ** 3 / seconds / 1e9


def numpy_matmul_gflops_subprocess(n, min_time=1.0, coretype=None, into=False):
    """NumPy GFLOPS measured in a fresh interpreter, optionally with OPENBLAS_CORETYPE (e.g. "Haswell": the AVX2
    kernels OpenBLAS would pick on an AVX2-only machine), which must be set before numpy is imported."""
    import os
    import subprocess
    import sys
    env = dict(os.environ)
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    code = ("import sys; sys.path.insert(0, %r); import peers; print(peers.numpy_matmul_gflops(%d, min_time=%r, into=%r))"
            % (os.path.dirname(os.path.abspath(__file__)), n, min_time, into))
    return float(subprocess.check_output([sys.executable, "-c", code], env=env, text=True).strip())


def matrix_document(n, seed=5):
    """A JSON matrix document (shortest round-trip doubles, as both writers print them)."""
    return orjson.dumps(random_matrix(n, seed).tolist())


def orjson_figures(doc, min_time=1.0):
    """MB/s: orjson.loads; orjson.dumps of the list; orjson.dumps of the ndarray (OPT_SERIALIZE_NUMPY)."""
    parsed = orjson.loads(doc)
    array = np.array(parsed)
    parse = median_seconds(lambda: orjson.loads(doc), min_time=min_time)
    out_list = orjson.dumps(parsed)
    write_list = median_seconds(lambda: orjson.dumps(parsed), min_time=min_time)
    out_numpy = orjson.dumps(array, option=orjson.OPT_SERIALIZE_NUMPY)
    write_numpy = median_seconds(lambda: orjson.dumps(array, option=orjson.OPT_SERIALIZE_NUMPY), min_time=min_time)
    return {
        "parse": len(doc) / 1e6 / parse,
        "write_list": len(out_list) / 1e6 / write_list,
        "write_numpy": len(out_numpy) / 1e6 / write_numpy,
    }


def matmul_request(n, request_id=1):
    params = {"data": random_matrix(n, 11).tolist(), "matrix_b": random_matrix(n, 12).tolist()}
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "method": "matmul", "params": params}) + b"\n"


def python_service_seconds(line, min_time=1.0):
    """What a Python + orjson + NumPy service does with the same request line: parse → matmul → serialize."""
    def handle():
        request = orjson.loads(line)
        params = request["params"]
        result = np.array(params["data"]) @ np.array(params["matrix_b"])
        return orjson.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result},
                            option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"
    return median_seconds(handle, min_time=min_time)


if __name__ == "__main__":
    for n in (256, 512, 1024, 2048):
        print(json.dumps({"peer": "numpy", "n": n, "gflops": numpy_matmul_gflops(n)}))
    for n in (512, 1024):
        print(json.dumps({"peer": "orjson", "n": n, **orjson_figures(matrix_document(n))}))
    print(json.dumps({"peer": "python-service", "n": 512, "seconds": python_service_seconds(matmul_request(512))}))
