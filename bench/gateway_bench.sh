#!/usr/bin/env bash
# Benchmarks forzium-gateway against a FastAPI + uvicorn + NumPy (+ orjson) peer serving the same POST /compute,
# both measured with wrk in the same run on 127.0.0.1:
#   1. 2×2 multiply, 16 connections: requests/s         (target: gateway ≥ 15× the peer)
#   2. 512×512 matmul (~10.8 MB request), 1 connection: latency p50/p99  (target: gateway ≥ 2.5× faster)
# Installs what is missing (Debian package wrk; pip: fastapi uvicorn numpy orjson), builds release binaries once.
# Usage: bench/gateway_bench.sh [seconds-per-run (default 10)]   Extra gateway args: GATEWAY_ARGS="--engines 2"
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${1:-10}"
export PEER_MODE="${PEER_MODE:-pydantic}"  # pydantic (a FastAPI body model, validating like the gateway) or raw

if ! command -v wrk >/dev/null 2>&1; then
    echo "bench: installing wrk (apt)" >&2
    if [ "$(id -u)" -eq 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
    else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; fi
fi
if ! python3 -c 'import fastapi, uvicorn, numpy, orjson' 2>/dev/null; then
    echo "bench: installing fastapi uvicorn numpy orjson (pip)" >&2
    python3 -m pip install -q fastapi uvicorn numpy orjson 2>/dev/null \
        || python3 -m pip install -q --break-system-packages fastapi uvicorn numpy orjson
fi

echo "bench: building release binaries" >&2
swift build -c release >&2
BIN="$(swift build -c release --show-bin-path)"

WORK="$(mktemp -d)"
GATEWAY_PID=""; PEER_PID=""
cleanup() {
    [ -n "$GATEWAY_PID" ] && kill "$GATEWAY_PID" 2>/dev/null || true
    [ -n "$PEER_PID" ] && kill "$PEER_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
python3 bench/make_bodies.py "$WORK"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# Gateway (best engine present; logs say which).
"$BIN/forzium-gateway" --port 0 --log-level notice ${GATEWAY_ARGS:-} 2> "$WORK/gateway.log" &
GATEWAY_PID=$!
for _ in $(seq 1 300); do
    GATEWAY_PORT="$(grep -o 'listening on 127.0.0.1:[0-9]*' "$WORK/gateway.log" | head -1 | sed 's/.*://')" || true
    [ -n "${GATEWAY_PORT:-}" ] && break
    sleep 0.1
done
[ -n "${GATEWAY_PORT:-}" ] || { echo "bench: gateway did not start" >&2; cat "$WORK/gateway.log" >&2; exit 1; }
ENGINE="$(curl -s "http://127.0.0.1:$GATEWAY_PORT/ready" | python3 -c 'import json,sys; print(json.load(sys.stdin)["engine"])')"

PEER_PORT="$(free_port)"
python3 bench/peer_fastapi.py "$PEER_PORT" 2> "$WORK/peer.log" &
PEER_PID=$!
for _ in $(seq 1 300); do
    curl -s -o /dev/null -X POST -H 'Content-Type: application/json' --data-binary @"$WORK/small.json" "http://127.0.0.1:$PEER_PORT/compute" && break
    sleep 0.1
done

# Same answers from both before measuring.
for url in "http://127.0.0.1:$GATEWAY_PORT/compute" "http://127.0.0.1:$PEER_PORT/compute"; do
    curl -sf -X POST -H 'Content-Type: application/json' --data-binary @"$WORK/small.json" "$url" \
        | python3 -c 'import json,sys; r=json.load(sys.stdin)["result"]; assert r == [[3.0,4.0],[6.0,8.5]], r'
    curl -sf -X POST -H 'Content-Type: application/json' --data-binary @"$WORK/matmul512.json" "$url" -o "$WORK/out.json"
done
python3 - "$WORK" <<'PY'
import json, sys, numpy as np
body = json.load(open(f"{sys.argv[1]}/matmul512.json"))
expected = np.asarray(body["data"]) @ np.asarray(body["parameters"]["matrix_b"])
got = np.asarray(json.load(open(f"{sys.argv[1]}/out.json"))["result"])
assert np.allclose(got, expected, rtol=1e-12, atol=1e-9)
PY

run_wrk() { # url body threads connections seconds -> RESULT line
    wrk -t"$3" -c"$4" -d"$5s" --timeout 10s -s bench/post.lua "$1" -- "$2" | grep '^RESULT'
}
field() { echo "$1" | tr ' ' '\n' | grep "^$2=" | cut -d= -f2; }

echo "bench: 2x2 multiply, 16 connections, ${SECONDS_PER_RUN}s per run (gateway, peer, gateway, peer)" >&2
G1=$(run_wrk "http://127.0.0.1:$GATEWAY_PORT/compute" "$WORK/small.json" 2 16 "$SECONDS_PER_RUN")
P1=$(run_wrk "http://127.0.0.1:$PEER_PORT/compute" "$WORK/small.json" 2 16 "$SECONDS_PER_RUN")
G2=$(run_wrk "http://127.0.0.1:$GATEWAY_PORT/compute" "$WORK/small.json" 2 16 "$SECONDS_PER_RUN")
P2=$(run_wrk "http://127.0.0.1:$PEER_PORT/compute" "$WORK/small.json" 2 16 "$SECONDS_PER_RUN")

MM_SECONDS=$(( SECONDS_PER_RUN * 2 ))
echo "bench: 512x512 matmul, 1 connection, ${MM_SECONDS}s per run (gateway, peer)" >&2
GM=$(run_wrk "http://127.0.0.1:$GATEWAY_PORT/compute" "$WORK/matmul512.json" 1 1 "$MM_SECONDS")
PM=$(run_wrk "http://127.0.0.1:$PEER_PORT/compute" "$WORK/matmul512.json" 1 1 "$MM_SECONDS")

python3 - "$ENGINE" "$G1" "$G2" "$P1" "$P2" "$GM" "$PM" <<'PY'
import sys
engine = sys.argv[1]
import os
peer_mode = os.environ.get("PEER_MODE", "pydantic")
def parse(line):
    return {k: float(v) for k, v in (item.split("=") for item in line.split()[1:])}
g1, g2, p1, p2, gm, pm = (parse(x) for x in sys.argv[2:])
g_rps = (g1["rps"] + g2["rps"]) / 2
p_rps = (p1["rps"] + p2["rps"]) / 2
errors = g1["errors"] + g2["errors"] + p1["errors"] + p2["errors"] + gm["errors"] + pm["errors"]
rows = [
    ("2x2 multiply req/s (16 conn)", f"{g_rps:,.0f}", f"{p_rps:,.0f}", g_rps / p_rps, 15.0),
    ("512x512 matmul p50 latency", f"{gm['p50_us']/1000:.1f} ms", f"{pm['p50_us']/1000:.1f} ms", pm["p50_us"] / gm["p50_us"], 2.5),
    ("512x512 matmul p99 latency", f"{gm['p99_us']/1000:.1f} ms", f"{pm['p99_us']/1000:.1f} ms", pm["p99_us"] / gm["p99_us"], 2.5),
]
print(f"\nforzium-gateway (engine: {engine}) vs FastAPI+uvicorn+NumPy peer (body validation: {peer_mode}), same run, wrk on 127.0.0.1")
print(f"{'measure':32} {'gateway':>12} {'peer':>12} {'ratio':>8} {'target':>8}  ")
for name, g, p, ratio, target in rows:
    mark = "ok" if ratio >= target else "MISSED"
    print(f"{name:32} {g:>12} {p:>12} {ratio:>7.2f}x {target:>7.1f}x  {mark}")
print(f"(runs: gateway {g1['rps']:,.0f} / {g2['rps']:,.0f} req/s, peer {p1['rps']:,.0f} / {p2['rps']:,.0f} req/s; "
      f"matmul samples: gateway {gm['requests']:.0f}, peer {pm['requests']:.0f}; socket/status errors: {errors:.0f})")
PY
