#!/usr/bin/env bash
# Per-request cost of the HTTP edge against a bare Hummingbird app, Node.js and FastAPI, in one run (see
# bench/edge_bench.py). Installs what is missing (Debian: wrk, nodejs; pip: fastapi uvicorn numpy orjson uvloop
# httptools), builds the release gateway and the bare Hummingbird and SwiftNIO peers (bench/hummingbird-peer, its own
# package) once.
# Usage: bench/edge_bench.sh [seconds-per-run (default 10)]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${1:-10}"
source bench/install-peers.sh
echo "bench: building release binaries" >&2
for product in forzium-gateway forzium-engine-simd forzium-engine; do swift build -c release --product "$product" >&2; done
swift build -c release --package-path bench/hummingbird-peer >&2
exec python3 bench/edge_bench.py "$(swift build -c release --show-bin-path)" \
    "$(swift build -c release --package-path bench/hummingbird-peer --show-bin-path)/HummingbirdPeer" "$SECONDS_PER_RUN"
