#!/usr/bin/env bash
# Runs the Forzium gateway on 127.0.0.1:8000 with the best engine present (SIMD preferred, fallback otherwise).
# Installs what is missing, builds the release binaries once, then execs the gateway. Extra args go to the gateway,
# e.g. `scripts/serve.sh --port 9000 --engines 2`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# The three executables only: a plain `swift build` would also compile the client library (ForziumClient, on
# AsyncHTTPClient) and the benchmark tool in release.
for product in forzium-engine forzium-engine-simd forzium-gateway; do swift build -c release --product "$product"; done
exec "$(swift build -c release --show-bin-path)/forzium-gateway" --host 127.0.0.1 --port 8000 "$@"
