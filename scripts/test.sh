#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what is missing, builds once (debug), runs every test.
# Then a short libFuzzer run of the parser, line framer and request decoder (scripts/fuzz.sh).
# Integration tests start the built engine and gateway executables and talk to them over real pipes and sockets.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --test
swift build --build-tests
# The self-contained tarball (static Swift runtime, release) that PackagingTests unpacks and runs: built here, before
# the suite, so no compiler runs beside timing-sensitive tests.
bash scripts/package.sh --out .build-static/dist >/dev/null
swift test --skip-build "$@"
# Process-level tests in Python (HTTP edge, third-party clients) against the executables just built.
python3 -m pytest -q Tests/python
# libFuzzer targets (fuzz/), a bounded run: FORZIUM_FUZZ_SECONDS per target (default 20; 0 skips).
if [[ "${FORZIUM_FUZZ_SECONDS:-20}" != "0" ]]; then
    bash scripts/fuzz.sh "" "${FORZIUM_FUZZ_SECONDS:-20}"
fi
