#!/usr/bin/env bash
# Per-request cost of the HTTP edge against a bare Hummingbird app, Node.js and FastAPI, in one run (see
# bench/edge_bench.py). Installs what is missing (Debian: wrk, nodejs; pip: fastapi uvicorn numpy orjson uvloop
# httptools), builds the release gateway and the bare Hummingbird and SwiftNIO peers (bench/hummingbird-peer, its own
# package) once. Every Swift binary is built as scripts/package.sh ships the gateway: the Swift runtime linked in
# (--static-swift-stdlib, in .build-static), the peers too, so that the comparison stays like for like.
# Usage: bench/edge_bench.sh [seconds-per-run (default 10)]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${1:-10}"
source bench/install-peers.sh
static=(-c release --static-swift-stdlib)
echo "bench: building release binaries (static Swift runtime)" >&2
for product in forzium-gateway forzium-engine-simd forzium-engine; do
    swift build "${static[@]}" --scratch-path .build-static --product "$product" >&2
done
peer=(--package-path bench/hummingbird-peer --scratch-path bench/hummingbird-peer/.build-static)
swift build "${static[@]}" "${peer[@]}" >&2
exec python3 bench/edge_bench.py "$(swift build "${static[@]}" --scratch-path .build-static --show-bin-path)" \
    "$(swift build "${static[@]}" "${peer[@]}" --show-bin-path)/HummingbirdPeer" "$SECONDS_PER_RUN"
