"""Per-request cost of the HTTP edge, one run, ratios (issue 8): small POST /compute (2x2 multiply) with wrk,
16 connections, against
  - forzium-gateway (release) with its best engine,
  - a bare Hummingbird 2 app (bench/hummingbird-peer: one POST route that collects and echoes the body) — the
    gateway's own HTTP stack with nothing on top,
  - the same two routes on SwiftNIO's HTTP/1 pipeline directly (bench/hummingbird-peer's NIOPeer) — the stack under
    Hummingbird, where the gateway answers small requests (InlineRequestHandler),
  - Node.js `http` + JSON.parse doing the same /compute in JavaScript, one worker per core,
  - FastAPI + uvicorn + NumPy with orjson and no body model (PEER_MODE=raw), one process, on each of uvicorn's two
    HTTP/1 servers: asyncio + h11 (what `pip install fastapi uvicorn` runs; the peer issue 8's bar is set against) and
    uvloop + httptools (`uvicorn[standard]`, about twice as fast).
Also GET /health on the gateway and GET on the bare app, and the gateway's (and engines') CPU per small request.
The gateway, the bare Hummingbird app, both FastAPI peers and Node.js run side by side and are measured in turn,
ROUNDS times each (default 3), so a minute of a slower machine weighs on all of them: a ratio is that of their medians,
and the rounds' own ratios to bare Hummingbird and to both FastAPI peers are printed too. Bare SwiftNIO is measured
once, after them.
Usage: [ROUNDS=3] python3 bench/edge_bench.py GATEWAY_BIN_DIR HUMMINGBIRD_PEER_BIN SECONDS
"""
import statistics
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN, PEER_BIN, SECONDS = sys.argv[1], sys.argv[2], int(sys.argv[3])
SMALL = b'{"data":[[1,2],[3,4]],"operation":"multiply","parameters":{"factor":2}}'
WORK = "/tmp/forzium-edge-bench"
os.makedirs(WORK, exist_ok=True)
with open(f"{WORK}/small.json", "wb") as f:
    f.write(SMALL)
with open(f"{WORK}/post.lua", "w") as f:
    f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            'local f = io.open(os.getenv("BODY_FILE"), "rb"); wrk.body = f:read("*a"); f:close()\n')


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(port, path="/health", method="GET"):
    for _ in range(600):
        try:
            request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                             data=SMALL if method == "POST" else None,
                                             headers={"Content-Type": "application/json"})
            urllib.request.urlopen(request, timeout=2).read()
            return
        except Exception:
            time.sleep(0.1)
    raise SystemExit(f"bench: nothing answers on {port}{path}")


def wrk(port, path, post, connections=16):
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{SECONDS}s", "--timeout", "10s"]
    env = dict(os.environ)
    if post:
        cmd += ["-s", f"{WORK}/post.lua"]
        env["BODY_FILE"] = f"{WORK}/small.json"
    out = subprocess.run(cmd + [f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, env=env).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rate, int(errors.group(1)) if errors else 0


def cpu(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry))
            except OSError:
                pass
    return out


def stop(process):
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


ROUNDS = int(os.environ.get("ROUNDS", "3"))
results = {}
# Gateway and bare Hummingbird, side by side, in alternation.
port = free_port()
gateway = subprocess.Popen([f"{BIN}/forzium-gateway", "--port", str(port), "--log-level", "warning"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
wait_up(port)
engines = children(gateway.pid)
info = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/").read())
peer_port = free_port()
peer = subprocess.Popen([PEER_BIN, str(peer_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
wait_up(peer_port)
# FastAPI (orjson, no validation) and Node.js run beside them and take a turn in every round too: the machine's speed
# drifts by tens of percent over minutes, and a peer measured once, minutes later, would carry that drift into its ratio.
FASTAPI = "FastAPI+orjson (h11) POST /compute"
FASTAPI_STANDARD = "FastAPI+orjson (uvicorn[standard]) POST /compute"
fastapi_port, fastapi_standard_port = free_port(), free_port()
fastapi, fastapi_standard = (
    subprocess.Popen([sys.executable, f"{ROOT}/bench/peer_fastapi.py", str(p)],
                     env={**os.environ, "PEER_MODE": "raw", "PEER_SERVER": server},
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for p, server in ((fastapi_port, "h11"), (fastapi_standard_port, "standard")))
wait_up(fastapi_port, "/compute", "POST")
wait_up(fastapi_standard_port, "/compute", "POST")
node_port = free_port()
node = subprocess.Popen(["node", f"{ROOT}/bench/peer_node.js", str(node_port)], stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
wait_up(node_port, "/compute", "POST")
for warm in (port, peer_port, fastapi_port, fastapi_standard_port, node_port):
    wrk(warm, "/compute", True)
rounds = {"gateway POST /compute": [], "bare Hummingbird POST (echo)": [], FASTAPI: [], FASTAPI_STANDARD: [],
          "Node.js http POST /compute": [], "gateway GET /health": [], "bare Hummingbird GET": []}
gateway_cpu, engine_cpu, gateway_requests = 0.0, 0.0, 0.0
for _ in range(ROUNDS):
    before = cpu(gateway.pid), sum(cpu(p) for p in engines)
    rate, errors = wrk(port, "/compute", True)
    after = cpu(gateway.pid), sum(cpu(p) for p in engines)
    gateway_cpu += after[0] - before[0]
    engine_cpu += after[1] - before[1]
    gateway_requests += rate * SECONDS
    rounds["gateway POST /compute"].append((rate, errors))
    rounds["bare Hummingbird POST (echo)"].append(wrk(peer_port, "/compute", True))
    rounds[FASTAPI].append(wrk(fastapi_port, "/compute", True))
    rounds[FASTAPI_STANDARD].append(wrk(fastapi_standard_port, "/compute", True))
    rounds["Node.js http POST /compute"].append(wrk(node_port, "/compute", True))
stop(fastapi)
stop(fastapi_standard)
stop(node)
for _ in range(ROUNDS):
    rounds["gateway GET /health"].append(wrk(port, "/health", False))
    rounds["bare Hummingbird GET"].append(wrk(peer_port, "/health", False))
for name, measured in rounds.items():
    results[name] = (statistics.median(r for r, _ in measured), sum(e for _, e in measured))
gateway_us = gateway_cpu / gateway_requests * 1e6
engine_us = engine_cpu / gateway_requests * 1e6
stop(gateway)
stop(peer)
# Bare SwiftNIO HTTP/1 (the pipeline under Hummingbird, without its async channel): what serving routes from the
# pipeline directly can reach at most.
port = free_port()
peer = subprocess.Popen([os.path.join(os.path.dirname(PEER_BIN), "NIOPeer"), str(port)],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
wait_up(port)
wrk(port, "/compute", True)
results["bare SwiftNIO POST (echo)"] = wrk(port, "/compute", True)
results["bare SwiftNIO GET"] = wrk(port, "/health", False)
stop(peer)
model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
flags = next((l for l in open("/proc/cpuinfo") if l.startswith("flags")), "")
isa = "AVX-512" if " avx512f" in flags else "AVX2" if " avx2" in flags else "SSE"
print(f"\nHTTP edge, small requests: {model} ({isa}), {os.cpu_count()} CPUs; wrk -t2 -c16 -d{SECONDS}s on 127.0.0.1, "
      f"one run; engine: {info.get('engine')}; gateway, bare Hummingbird, FastAPI and Node.js: median of {ROUNDS} "
      f"alternating rounds\n")
print(f"| {'server and route':48} | {'req/s':>9} | {'non-2xx':>7} |")
print(f"|{'-' * 50}|{'-' * 11}|{'-' * 9}|")
for name, (rate, errors) in results.items():
    print(f"| {name:48} | {rate:9.0f} | {errors:7d} |")
g = results["gateway POST /compute"][0]
print(f"\ngateway /compute vs bare Hummingbird POST: {g / results['bare Hummingbird POST (echo)'][0]:.2f}x; "
      f"vs Node.js: {g / results['Node.js http POST /compute'][0]:.2f}x; vs FastAPI (h11): {g / results[FASTAPI][0]:.1f}x; "
      f"vs FastAPI (uvicorn[standard]): {g / results[FASTAPI_STANDARD][0]:.1f}x")
print("gateway /compute vs bare Hummingbird POST, round by round: " + ", ".join(
    f"{g[0] / h[0]:.2f}x" for g, h in zip(rounds["gateway POST /compute"], rounds["bare Hummingbird POST (echo)"])))
for name, label in ((FASTAPI, "FastAPI (h11)"), (FASTAPI_STANDARD, "FastAPI (uvicorn[standard])")):
    print(f"gateway /compute vs {label}, round by round: " + ", ".join(
        f"{g[0] / f[0]:.1f}x" for g, f in zip(rounds["gateway POST /compute"], rounds[name])))
print(f"gateway /health vs bare Hummingbird GET: {results['gateway GET /health'][0] / results['bare Hummingbird GET'][0]:.2f}x")
print(f"bare SwiftNIO vs bare Hummingbird: POST {results['bare SwiftNIO POST (echo)'][0] / results['bare Hummingbird POST (echo)'][0]:.2f}x, "
      f"GET {results['bare SwiftNIO GET'][0] / results['bare Hummingbird GET'][0]:.2f}x")
print(f"CPU per small /compute: gateway {gateway_us:.0f} us, engine {engine_us:.0f} us")
