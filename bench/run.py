#!/usr/bin/env python3
"""The Forzium benchmark driver (run it as `bench/run.sh`).

One run measures everything against its peer on the same machine, in the same minute:
  * matmul f64 GFLOPS at n = 256, 512, 1024, 2048: SIMDKernels (forzium-bench) vs NumPy/OpenBLAS, each product
    into one preallocated C (`--into`, NumPy `out=`) and into a new C each time;
  * SIMD vs fallback: kernel GFLOPS at n = 512, and the engines end to end over stdio;
  * JSON parse/write MB/s of 512² and 1024² matrix documents: ForziumJSON (and jansson) vs orjson;
  * end-to-end stdio round trip of a 512×512 matmul request, fallback and SIMD engines, vs a Python
    parse → NumPy matmul → orjson serialize of the same line;
  * peak RSS (VmHWM) of the SIMD engine answering a 1024×1024 matmul request, vs 3 × 8 MB.
Installs numpy/orjson with pip when missing, builds the release binaries once, prints a markdown table
(and writes the raw figures to bench-results/latest.json).
"""
import argparse
import importlib.util
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def log(message):
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def ensure_python_packages():
    missing = [name for name in ("numpy", "orjson") if importlib.util.find_spec(name) is None]
    if not missing:
        return
    log(f"installing {' '.join(missing)} with pip")
    base = [sys.executable, "-m", "pip", "install", "--quiet"]
    for extra in ([], ["--user"], ["--break-system-packages"]):
        if subprocess.call(base + extra + missing) == 0:
            importlib.invalidate_caches()
            return
    sys.exit("bench: could not install " + " ".join(missing))


def build(skip):
    if not skip:
        log("building release binaries (swift build -c release, the engines and forzium-bench)")
        for product in ("forzium-engine", "forzium-engine-simd", "forzium-bench"):
            subprocess.check_call(["swift", "build", "-c", "release", "--product", product], cwd=ROOT)
    path = subprocess.check_output(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, text=True)
    return pathlib.Path(path.strip())


def forzium_bench(bin_dir, *args):
    out = subprocess.check_output([str(bin_dir / "forzium-bench"), *map(str, args)], text=True)
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


class Engine:
    """An engine executable driven over its stdin/stdout pipes, one request line at a time."""

    def __init__(self, path, *args):
        self.proc = subprocess.Popen([str(path), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, bufsize=0)

    def roundtrip(self, line):
        """Sends one request line and returns the reply line. One request is in flight at a time, so the reply is
        everything read up to a read that ends in LF. Read in slices of up to 1 MiB with os.read: Python's buffered
        readline takes about 7 ms to collect a 5 MB line even from `cat`, time the harness would spend, not the engine."""
        self.send(line)
        fd = self.proc.stdout.fileno()
        parts = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                raise RuntimeError("engine closed its stdout")
            parts.append(chunk)
            if chunk.endswith(b"\n"):
                return b"".join(parts)

    def send(self, data):
        """Writes all of `data` to the engine's stdin (unbuffered: a write may take only part of it)."""
        view = memoryview(data)
        while view:
            view = view[self.proc.stdin.write(view):]

    def vm_hwm_kb(self):
        with open(f"/proc/{self.proc.pid}/status") as status:
            for row in status:
                if row.startswith("VmHWM:"):
                    return int(row.split()[1])
        return None

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def check_matmul_response(response, expected):
    import numpy as np
    import orjson
    message = orjson.loads(response)
    if "result" not in message:
        raise RuntimeError(f"engine answered an error: {str(message)[:300]}")
    got = np.array(message["result"])
    if got.shape != expected.shape or not np.allclose(got, expected, rtol=1e-9, atol=1e-9):
        raise RuntimeError("engine matmul result differs from NumPy")


def engine_roundtrip_seconds(path, line, expected, min_time, min_runs, max_runs):
    engine = Engine(path)
    try:
        check_matmul_response(engine.roundtrip(line), expected)  # warm-up and correctness
        samples = []
        start = time.perf_counter()
        while len(samples) < min_runs or (time.perf_counter() - start < min_time and len(samples) < max_runs):
            t0 = time.perf_counter()
            engine.roundtrip(line)
            samples.append(time.perf_counter() - t0)
        return statistics.median(samples)
    finally:
        engine.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter timings (noisier)")
    parser.add_argument("--skip-build", action="store_true", help="use the existing release build")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per matmul size (median kept)")
    parser.add_argument("--sizes", default="256,512,1024,2048")
    parser.add_argument("--no-avx2", action="store_true", help="on an AVX-512 machine, skip the AVX2-path rows")
    args = parser.parse_args()
    min_time = 0.3 if args.quick else 1.0

    ensure_python_packages()
    import numpy as np
    sys.path.insert(0, str(ROOT / "bench"))
    import peers

    bin_dir = build(args.skip_build)
    threads = os.cpu_count() or 1
    results = {"threads": threads, "matmul": {}, "json": {}, "engines": {}}

    # 1. matmul GFLOPS, alternating NumPy and SIMDKernels so both see the same machine load. On an AVX-512 machine
    #    the AVX2 path is measured too (forzium-bench --isa avx2) against NumPy with OPENBLAS_CORETYPE=Haswell, the
    #    kernels OpenBLAS runs on an AVX2-only machine. Two forms: "into" writes every product into one preallocated C
    #    (forzium-bench --into, NumPy `matmul(a, b, out=c)`): the kernel alone, and what the engine runs for a matmul
    #    over shared-memory segments; "new" makes a new C each time (`a @ b`), where the allocator's choices show.
    results["cpu"] = cpu_model()
    auto_isa = forzium_bench(bin_dir, "matmul", "--sizes", 64, "--min-time", 0.01)[0]["isa"]
    results["isa"] = auto_isa
    paths = [(auto_isa, None)] + ([("avx2", "Haswell")] if auto_isa == "avx512" and not args.no_avx2 else [])
    for n in [int(s) for s in args.sizes.split(",")]:
        for isa, coretype in paths:
            for form in ("into", "new"):
                into = form == "into"
                ours, theirs = [], []
                for _ in range(args.rounds):
                    if coretype:
                        theirs.append(peers.numpy_matmul_gflops_subprocess(n, min_time=min_time / 2, coretype=coretype, into=into))
                    else:
                        theirs.append(peers.numpy_matmul_gflops(n, min_time=min_time / 2, into=into))
                    ours.append(forzium_bench(bin_dir, "matmul", "--sizes", n, "--min-time", min_time / 2, "--isa", isa,
                                              *(["--into"] if into else []))[0]["gflops"])
                key = (str(n) if isa == auto_isa else f"{n}/{isa}") + ("" if into else "/new")
                results["matmul"][key] = {"isa": isa, "numpy_coretype": coretype, "form": form,
                                          "simd": statistics.median(ours), "numpy": statistics.median(theirs),
                                          "simd_best": max(ours), "numpy_best": max(theirs)}
                log(f"matmul {n} ({isa}, {form}): simd {results['matmul'][key]['simd']:.1f} GFLOPS, "
                    f"numpy{'/' + coretype if coretype else ''} {results['matmul'][key]['numpy']:.1f}")
    fallback = forzium_bench(bin_dir, "matmul", "--impl", "fallback", "--sizes", 512, "--min-time", min_time)[0]
    simd512 = forzium_bench(bin_dir, "matmul", "--sizes", 512, "--min-time", min_time)[0]
    results["kernel_512"] = {"simd": simd512["gflops"], "fallback": fallback["gflops"]}

    # 2. JSON codec on matrix documents.
    with tempfile.TemporaryDirectory() as tmp:
        for n in (512, 1024):
            doc = peers.matrix_document(n)
            path = pathlib.Path(tmp) / f"matrix{n}.json"
            path.write_bytes(doc)
            figures = {f"{row['op']}:{row['impl']}": row["mbps"]
                       for row in forzium_bench(bin_dir, "json", "--file", path, "--label", n, "--min-time", min_time)}
            figures.update({f"orjson:{k}": v for k, v in peers.orjson_figures(doc, min_time=min_time).items()})
            figures["bytes"] = len(doc)
            results["json"][n] = figures
            log(f"json {n}²: {figures}")

    # 3. End to end over stdio: 512×512 matmul, both engines vs the Python service script.
    line = peers.matmul_request(512)
    expected = np.array(orjson_loads(line)["params"]["data"]) @ np.array(orjson_loads(line)["params"]["matrix_b"])
    python_seconds = peers.python_service_seconds(line, min_time=min_time)
    results["engines"]["python_seconds"] = python_seconds
    results["engines"]["request_bytes"] = len(line)
    for name in ("forzium-engine-simd", "forzium-engine"):
        try:
            seconds = engine_roundtrip_seconds(bin_dir / name, line, expected, min_time=min_time,
                                               min_runs=3 if name == "forzium-engine" else 5, max_runs=200)
            results["engines"][name] = seconds
            log(f"{name}: {seconds * 1e3:.1f} ms per 512² matmul round trip (python script {python_seconds * 1e3:.1f} ms)")
        except Exception as error:  # an engine missing or broken: report, keep going
            results["engines"][name] = None
            log(f"{name}: not measured ({error})")

    # 4. Peak RSS of the SIMD engine for one 1024×1024 matmul request.
    try:
        big = peers.matmul_request(1024)
        engine = Engine(bin_dir / "forzium-engine-simd")
        try:
            response = engine.roundtrip(big)
            if b'"result"' not in response[:200] and b'"result"' not in response[-200:]:
                raise RuntimeError(response[:200].decode(errors="replace"))
            results["rss"] = {"vm_hwm_kb": engine.vm_hwm_kb(), "request_bytes": len(big), "response_bytes": len(response)}
        finally:
            engine.close()
    except Exception as error:
        results["rss"] = None
        log(f"peak RSS: not measured ({error})")

    # 5. Peak RSS of the SIMD engine skipping a 300 MB line (over the 256 MiB --max-line-bytes), then answering.
    try:
        results["oversize"] = oversize_line_rss(bin_dir / "forzium-engine-simd", 300 * 1000 * 1000)
        log(f"oversize line: {results['oversize']}")
    except Exception as error:
        results["oversize"] = None
        log(f"oversize line: not measured ({error})")

    out_dir = ROOT / "bench-results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "latest.json").write_text(json.dumps(results, indent=2, default=str))
    print(render(results))


def cpu_model():
    try:
        with open("/proc/cpuinfo") as info:
            for row in info:
                if row.startswith("model name"):
                    return row.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def oversize_line_rss(path, size):
    """Writes one `size`-byte line (a JSON array of zeros, never terminated before `size`) and a ping to a fresh engine
    with the default 256 MiB cap; returns the replies' codes and the engine's VmHWM."""
    import threading
    engine = Engine(path)
    try:
        chunk = b"0," * (1 << 19)
        def feed():
            engine.send(b"[")
            written = 1
            while written + len(chunk) < size:
                engine.send(chunk)
                written += len(chunk)
            engine.send(b"0" * (size - written) + b"\n")
            engine.send(b'{"jsonrpc":"2.0","id":2,"method":"ping"}\n')
        writer = threading.Thread(target=feed)
        writer.start()
        first = json.loads(engine.proc.stdout.readline())
        second = json.loads(engine.proc.stdout.readline())
        writer.join()
        cap = 256 << 20
        return {"line_bytes": size, "cap_bytes": cap, "first_code": first.get("error", {}).get("code"),
                "second_ok": "result" in second, "vm_hwm_kb": engine.vm_hwm_kb()}
    finally:
        engine.close()


def orjson_loads(data):
    import orjson
    return orjson.loads(data)


def render(r):
    def ratio(a, b):
        return f"{a / b:.2f}×" if a and b else "—"

    rows = []
    t = r["threads"]
    for key, m in r["matmul"].items():
        n = str(key).split("/")[0]
        peer = "NumPy/OpenBLAS" + (f" ({m['numpy_coretype']} kernels)" if m.get("numpy_coretype") else "")
        into = m.get("form", "into") == "into"
        rows.append((f"matmul f64 n={n}, {m.get('isa', '?')}, {'into one C' if into else 'new C each'}, GFLOPS ({t} threads), "
                     "median (best) of rounds",
                     f"{m['simd']:.1f} ({m['simd_best']:.1f})", f"{peer} {m['numpy']:.1f} ({m['numpy_best']:.1f})",
                     f"{ratio(m['simd'], m['numpy'])} ({ratio(m['simd_best'], m['numpy_best'])})",
                     "≥ 1.0×" if into and n in ("512", "1024", "2048") else ""))
    k = r["kernel_512"]
    rows.append(("matmul n=512 kernel, SIMD vs fallback GFLOPS", f"{k['simd']:.1f}", f"fallback {k['fallback']:.1f}",
                 ratio(k["simd"], k["fallback"]), ""))
    e = r["engines"]
    simd, fb, py = e.get("forzium-engine-simd"), e.get("forzium-engine"), e.get("python_seconds")
    if simd and fb:
        rows.append(("matmul n=512 via engines (stdio round trip), ms", f"SIMD {simd * 1e3:.1f}", f"fallback {fb * 1e3:.1f}",
                     ratio(fb, simd) + " faster", "≥ 50×"))
    for n, j in r["json"].items():
        mb = j["bytes"] / 1e6
        rows.append((f"JSON parse {n}² ({mb:.1f} MB), MB/s", f"{j['parse:forzium']:.0f}", f"orjson {j['orjson:parse']:.0f}",
                     ratio(j["parse:forzium"], j["orjson:parse"]), "≥ 1.5×"))
        rows.append((f"JSON parse {n}², jansson (DOM / →JSONValue), MB/s",
                     f"{j['parse:jansson-dom']:.0f} / {j['parse:jansson-to-jsonvalue']:.0f}", f"orjson {j['orjson:parse']:.0f}",
                     ratio(j["parse:jansson-dom"], j["orjson:parse"]), "(comparison)"))
        single = j.get("write:forzium-matrix", j["write:forzium"])
        multi = next((v for k, v in j.items() if k.startswith("write:forzium-matrix-")), None)
        rows.append((f"JSON write {n}², matrix writer 1 thread, MB/s", f"{single:.0f}", f"orjson list {j['orjson:write_list']:.0f}",
                     ratio(single, j["orjson:write_list"]), "≥ 1.5×"))
        if multi:
            rows.append((f"JSON write {n}², matrix writer {t} threads, MB/s", f"{multi:.0f}", f"orjson list {j['orjson:write_list']:.0f}",
                         ratio(multi, j["orjson:write_list"]), "≥ 1.5×"))
        rows.append((f"JSON write {n}², generic JSONValue writer / jansson, MB/s",
                     f"{j['write:forzium']:.0f} / {j['write:jansson']:.0f}", f"orjson ndarray {j['orjson:write_numpy']:.0f}",
                     ratio(j["write:forzium"], j["orjson:write_numpy"]), ""))
    for name, label in (("forzium-engine-simd", "SIMD"), ("forzium-engine", "fallback")):
        seconds = e.get(name)
        if seconds:
            rows.append((f"512² matmul request round trip, {label} engine, ms", f"{seconds * 1e3:.1f}",
                         f"Python orjson+NumPy {py * 1e3:.1f}", ratio(py, seconds) + " faster",
                         "≥ 2×" if label == "SIMD" else ""))
        else:
            rows.append((f"512² matmul request round trip, {label} engine", "not measured", f"Python {py * 1e3:.1f} ms", "—", ""))
    rss = r.get("rss")
    if rss:
        mb = rss["vm_hwm_kb"] / 1024
        rows.append(("peak RSS, SIMD engine, one 1024² matmul request (VmHWM), MB", f"{mb:.1f}",
                     f"3 × 8 MB = 24 (request line {rss['request_bytes'] / 1e6:.1f} MB)", ratio(mb, 24.0) + " of the raw matrices", "≤ 2×"))
    over = r.get("oversize")
    if over:
        mb = over["vm_hwm_kb"] / 1024
        cap = over["cap_bytes"] / (1 << 20)
        rows.append((f"peak RSS, SIMD engine, one {over['line_bytes'] / 1e6:.0f} MB line over the cap (answered "
                     f"{over['first_code']}, next line {'served' if over['second_ok'] else 'NOT served'}), MB",
                     f"{mb:.1f}", f"--max-line-bytes {cap:.0f} MiB", f"{mb / cap:.2f}× of the cap", "≤ 1.1×"))
    lines = [f"CPU: {r.get('cpu', '?')}; SIMD engine ISA: {r.get('isa', '?')}", "",
             "| measure | Forzium | peer (same run) | ratio | target |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
