#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what is missing, builds once (debug), runs every test.
# Then a short libFuzzer run of the parser, line framer and request decoder (scripts/fuzz.sh).
# Integration tests start the built engine and gateway executables and talk to them over real pipes and sockets.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --test
swift build --build-tests
swift test --skip-build "$@"
# libFuzzer targets (fuzz/), a bounded run: FORZIUM_FUZZ_SECONDS per target (default 20; 0 skips).
if [[ "${FORZIUM_FUZZ_SECONDS:-20}" != "0" ]]; then
    bash scripts/fuzz.sh "" "${FORZIUM_FUZZ_SECONDS:-20}"
fi
