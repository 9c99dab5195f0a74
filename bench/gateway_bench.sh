#!/usr/bin/env bash
# forzium-gateway against its peers in one run on 127.0.0.1 (see bench/gateway_bench.py for what is measured):
# a FastAPI + uvicorn + NumPy server with orjson and no body validation, the same with pydantic validation, and
# optionally an earlier build of the gateway (BASELINE_BIN=dir holding its forzium-gateway and engines).
# Installs what is missing (Debian: wrk; pip: fastapi uvicorn numpy orjson uvloop httptools), builds the release
# binaries once.
# Usage: bench/gateway_bench.sh [seconds-per-run (default 10)]   Extra gateway args: GATEWAY_ARGS="--engines 2"
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${1:-10}"
source bench/install-peers.sh
echo "bench: building release binaries" >&2
for product in forzium-gateway forzium-engine-simd forzium-engine; do swift build -c release --product "$product" >&2; done
exec python3 bench/gateway_bench.py "$(swift build -c release --show-bin-path)" "$SECONDS_PER_RUN"
