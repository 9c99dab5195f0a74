#!/usr/bin/env bash
# Per-request cost of the HTTP edge against a bare Hummingbird app, Node.js and FastAPI, in one run (see
# bench/edge_bench.py). Installs what is missing (Debian: wrk, nodejs; pip: fastapi uvicorn numpy orjson), builds the
# release gateway and the bare Hummingbird peer (bench/hummingbird-peer, its own package) once.
# Usage: bench/edge_bench.sh [seconds-per-run (default 10)]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${1:-10}"
apt_get() {
    if [ "$(id -u)" -eq 0 ]; then apt-get "$@"; else sudo apt-get "$@"; fi
}
for tool in wrk node; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        package=$([ "$tool" = node ] && echo nodejs || echo "$tool")
        echo "bench: installing $package (apt)" >&2
        apt_get update -qq && DEBIAN_FRONTEND=noninteractive apt_get install -y -qq "$package" >/dev/null
    fi
done
if ! python3 -c 'import fastapi, uvicorn, numpy, orjson' 2>/dev/null; then
    echo "bench: installing fastapi uvicorn numpy orjson (pip)" >&2
    python3 -m pip install -q fastapi uvicorn numpy orjson 2>/dev/null \
        || python3 -m pip install -q --break-system-packages fastapi uvicorn numpy orjson
fi
bash scripts/install-deps.sh
echo "bench: building release binaries" >&2
swift build -c release >&2
swift build -c release --package-path bench/hummingbird-peer >&2
exec python3 bench/edge_bench.py "$(swift build -c release --show-bin-path)" \
    "$(swift build -c release --package-path bench/hummingbird-peer --show-bin-path)/HummingbirdPeer" "$SECONDS_PER_RUN"
