#!/usr/bin/env bash
# What the HTTP benchmarks need besides the build, installed only when missing: wrk and Node.js (Debian), and the
# FastAPI peer's Python packages (fastapi uvicorn numpy orjson, and uvloop httptools for its `uvicorn[standard]` form).
# Sourced by bench/gateway_bench.sh and bench/edge_bench.sh.
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
if ! python3 -c 'import fastapi, uvicorn, numpy, orjson, uvloop, httptools' 2>/dev/null; then
    echo "bench: installing fastapi uvicorn numpy orjson uvloop httptools (pip)" >&2
    python3 -m pip install -q fastapi uvicorn numpy orjson uvloop httptools 2>/dev/null \
        || python3 -m pip install -q --break-system-packages fastapi uvicorn numpy orjson uvloop httptools
fi
bash scripts/install-deps.sh
