#!/usr/bin/env bash
# Open Inference Protocol (v2) binary matmul against Forzium's JSON /compute and the FastAPI + orjson + NumPy peer,
# 512² and 1024², end to end p50, plus the peak RSS of the gateway and its engine (bench/v2_bench.py says how).
# Installs what is missing (bench/install-peers.sh), builds the release binaries once. Run when `uptime` is low.
# Usage: bench/v2_bench.sh [requests-512 (default 30)] [requests-1024 (default 12)]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/install-peers.sh
echo "bench: building release binaries" >&2
for product in forzium-gateway forzium-engine-simd forzium-engine; do swift build -c release --product "$product" >&2; done
exec python3 bench/v2_bench.py "$(swift build -c release --show-bin-path)" "$@"
