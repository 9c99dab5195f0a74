"""forzium-gateway against its peers, every figure from the same run on 127.0.0.1 (called by bench/gateway_bench.sh).

Servers, all started here:
  gateway    BIN/forzium-gateway (the engine it picks; --engines 1 unless GATEWAY_ARGS says otherwise)
  baseline   BASELINE_BIN/forzium-gateway when BASELINE_BIN is set (an earlier build, for before/after)
  orjson     FastAPI + uvicorn + NumPy, orjson in and out, no body validation (PEER_MODE=raw)
  pydantic   the same with a pydantic body model, validating like the gateway does
Measures (wrk): 2x2 multiply req/s with 16 connections; 512x512 matmul p50/p99 with 1 connection; gateway and engine
CPU per 512x512 request (/proc/PID/stat over the wrk run); peak RSS (VmHWM) of a fresh gateway and its engine after
one 1024x1024 matmul request.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECONDS = int(sys.argv[2]) if len(sys.argv) > 2 else 10
BIN = sys.argv[1]
BASELINE = os.environ.get("BASELINE_BIN")
GATEWAY_ARGS = os.environ.get("GATEWAY_ARGS", "").split()
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gateway(bindir, log, extra=()):
    process = subprocess.Popen([f"{bindir}/forzium-gateway", "--port", "0", "--log-level", "notice", *GATEWAY_ARGS, *extra],
                               stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    for _ in range(600):
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", open(log).read())
        if match:
            port = int(match.group(1))
            for _ in range(100):
                try:
                    if json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/ready"))["status"] == "ready":
                        return process, port
                except Exception:
                    pass
                time.sleep(0.1)
        time.sleep(0.05)
    raise SystemExit(f"bench: gateway in {bindir} did not start:\n{open(log).read()}")


def start_peer(mode, log):
    port = free_port()
    process = subprocess.Popen([sys.executable, f"{ROOT}/bench/peer_fastapi.py", str(port)],
                               env={**os.environ, "PEER_MODE": mode}, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    for _ in range(300):
        try:
            post(port, SMALL)
            return process, port
        except Exception:
            time.sleep(0.1)
    raise SystemExit(f"bench: {mode} peer did not start:\n{open(log).read()}")


def post(port, body):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/compute", data=body, headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(request, timeout=120))


def wrk_command(port, body_file, connections, seconds, headers=()):
    return (["wrk", "-t2" if connections > 1 else "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
            + [arg for header in headers for arg in ("-H", header)]
            + ["-s", f"{ROOT}/bench/post.lua", f"http://127.0.0.1:{port}/compute", "--", body_file])


def parse_wrk(out):
    line = next(l for l in out.splitlines() if l.startswith("RESULT"))
    return {k: float(v) for k, v in (item.split("=") for item in line.split()[1:])}


def wrk(port, body_file, connections, seconds, headers=()):
    return parse_wrk(subprocess.run(wrk_command(port, body_file, connections, seconds, headers),
                                    capture_output=True, text=True, check=True).stdout)


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def ready(port):
    try:
        return json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/ready"))
    except urllib.error.HTTPError as error:  # 503 still describes the engines
        return json.load(error)


def engine_pids(port):
    return [e["pid"] for e in ready(port)["engines"] if e.get("pid")]


def stop(process):
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


work = tempfile.mkdtemp()
subprocess.run([sys.executable, f"{ROOT}/bench/make_bodies.py", work], check=True)
SMALL = open(f"{work}/small.json", "rb").read()
MM512 = f"{work}/matmul512.json"
body512 = json.load(open(MM512))
expected512 = np.asarray(body512["data"]) @ np.asarray(body512["parameters"]["matrix_b"])

servers = {}
try:
    servers["gateway"] = start_gateway(BIN, f"{work}/gateway.log")
    if BASELINE:
        servers["baseline"] = start_gateway(BASELINE, f"{work}/baseline.log")
    servers["orjson"] = start_peer("raw", f"{work}/peer-raw.log")
    servers["pydantic"] = start_peer("pydantic", f"{work}/peer-pydantic.log")
    engine = ready(servers["gateway"][1])["engine"]

    # Same answers from every server before measuring.
    raw512 = open(MM512, "rb").read()
    for name, (_, port) in servers.items():
        assert post(port, SMALL)["result"] == [[3.0, 4.0], [6.0, 8.5]], name
        got = np.asarray(post(port, raw512)["result"])
        assert np.allclose(got, expected512, rtol=1e-12, atol=1e-9), name

    small, matmul, cpu = {}, {}, {}
    print(f"bench: 2x2 multiply, 16 connections, {SECONDS}s per server", file=sys.stderr)
    for name, (_, port) in servers.items():
        small[name] = wrk(port, f"{work}/small.json", 16, SECONDS)
    print(f"bench: 512x512 matmul, 1 connection, {2 * SECONDS}s per server", file=sys.stderr)
    for name, (process, port) in servers.items():
        pids = [process.pid] + (engine_pids(port) if name in ("gateway", "baseline") else [])
        before = [cpu_seconds(pid) for pid in pids]
        matmul[name] = wrk(port, MM512, 1, 2 * SECONDS)
        spent = [cpu_seconds(pid) - b for pid, b in zip(pids, before)]
        n = max(1, matmul[name]["requests"])
        cpu[name] = (spent[0] / n * 1000, sum(spent[1:]) / n * 1000)

    for name in list(servers):
        if name in ("gateway", "baseline"):
            stop(servers.pop(name)[0])
    rss = {}
    for name, bindir in [("gateway", BIN)] + ([("baseline", BASELINE)] if BASELINE else []):
        process, port = start_gateway(bindir, f"{work}/rss-{name}.log", ["--engines", "1"])
        servers[f"rss-{name}"] = (process, port)
        (engine_pid,) = engine_pids(port)
        post(port, open(f"{work}/matmul1024.json", "rb").read())
        rss[name] = (peak_rss_mb(process.pid), peak_rss_mb(engine_pid))
        stop(servers.pop(f"rss-{name}")[0])

    # Resilience under load (gateway only): a deadline attack, then engines killed every 2 s.
    attack_seconds = 3 * SECONDS
    process, port = start_gateway(BIN, f"{work}/attack.log", ["--engines", "1"])
    servers["attack"] = (process, port)
    (attack_pid,) = engine_pids(port)
    attackers = subprocess.Popen(wrk_command(port, MM512, 2, attack_seconds, ["X-Forzium-Timeout-Ms: 1"]),
                                 stdout=subprocess.PIPE, text=True)
    normal = wrk(port, f"{work}/matmul64.json", 8, attack_seconds)
    attack = parse_wrk(attackers.communicate()[0])
    attack_restarts = ready(port)["engines"][0]["restarts"]
    attack_same_pid = engine_pids(port) == [attack_pid]
    stop(servers.pop("attack")[0])

    process, port = start_gateway(BIN, f"{work}/kill.log", ["--engines", "2"])
    servers["kill"] = (process, port)
    load = subprocess.Popen(wrk_command(port, f"{work}/matmul64.json", 8, attack_seconds), stdout=subprocess.PIPE, text=True)
    kills = 0
    deadline = time.monotonic() + attack_seconds - 2
    while time.monotonic() < deadline:
        time.sleep(2)
        pids = engine_pids(port)
        if pids:
            os.kill(pids[kills % len(pids)], signal.SIGKILL)
            kills += 1
    killed = parse_wrk(load.communicate()[0])
    stop(servers.pop("kill")[0])
finally:
    for process, _ in servers.values():
        stop(process)

model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
flags = next((l.split(":", 1)[1].split() for l in open("/proc/cpuinfo") if l.startswith("flags")), [])
isa = "AVX-512" if "avx512f" in flags else "AVX2+FMA" if "avx2" in flags and "fma" in flags else "no AVX2"
print(f"\nforzium-gateway (engine: {engine}) on {model} ({isa}), {os.cpu_count()} CPUs; wrk on 127.0.0.1, one run\n")
print(f"{'server':10} {'2x2 req/s':>10} {'512² p50 ms':>12} {'p99 ms':>8} {'CPU/req ms: server':>19} {'engine':>7}")
for name in small:
    server_cpu, engine_cpu = cpu[name]
    print(f"{name:10} {small[name]['rps']:>10,.0f} {matmul[name]['p50_us'] / 1000:>12.1f} {matmul[name]['p99_us'] / 1000:>8.1f} "
          f"{server_cpu:>19.1f} {engine_cpu if name in ('gateway', 'baseline') else float('nan'):>7.1f}")
g = matmul["gateway"]["p50_us"]
print(f"\n512² matmul p50 speed-up of the gateway: {matmul['orjson']['p50_us'] / g:.2f}x the orjson peer (target 3x), "
      f"{matmul['pydantic']['p50_us'] / g:.2f}x the pydantic peer"
      + (f", {matmul['baseline']['p50_us'] / g:.2f}x the baseline gateway (target 2.5x)" if BASELINE else ""))
print(f"2x2 req/s: {small['gateway']['rps'] / small['orjson']['rps']:.2f}x the orjson peer")
for name, (gateway_mb, engine_mb) in rss.items():
    print(f"peak RSS after one 1024² matmul ({name}): gateway {gateway_mb:.1f} MB, engine {engine_mb:.1f} MB "
          f"(budget 3 x 24 MB = 72 MB each)")
errors = sum(r["errors"] for r in list(small.values()) + list(matmul.values()))
print(f"(samples: 512² requests " + ", ".join(f"{k} {v['requests']:.0f}" for k, v in matmul.items())
      + f"; socket/status errors: {errors:.0f})")
print(f"deadline attack ({attack_seconds}s, 1 engine): 8 connections of 64² matmuls: {normal['requests']:.0f} requests, "
      f"{normal['errors']:.0f} errors; beside 2 connections of 512² matmuls with X-Forzium-Timeout-Ms: 1 "
      f"({attack['requests']:.0f} sent, {attack['errors']:.0f} answered 504 or failed); engine restarts {attack_restarts}, "
      f"same engine pid: {attack_same_pid}")
print(f"engines killed ({attack_seconds}s, 2 engines, SIGKILL every 2 s): {kills} kills, 8 connections of 64² matmuls: "
      f"{killed['requests']:.0f} requests, {killed['errors']:.0f} errors (each a request the dying engine had been sent)")
