#!/usr/bin/env bash
# The Forzium benchmark: one command, every figure measured in the same run against its peer
# (NumPy/OpenBLAS, orjson, a Python parse→matmul→serialize script). Installs numpy/orjson with pip when
# missing, builds the release binaries once, prints a markdown table. Extra args go to bench/run.py
# (e.g. `bench/run.sh --quick`).
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 bench/run.py "$@"
