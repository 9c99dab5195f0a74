#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what is missing, builds once (debug), runs every test.
# Integration tests start the built engine and gateway executables and talk to them over real pipes and sockets.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --test
swift build --build-tests
swift test --skip-build "$@"
# Process-level tests in Python (HTTP edge, third-party clients) against the executables just built.
python3 -m pytest -q Tests/python
