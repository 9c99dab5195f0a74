#!/usr/bin/env bash
# Installs what building and testing Forzium needs on a fresh Debian machine, and nothing that is already there.
#   - libjansson-dev: the SIMD engine links libjansson (pkg-config jansson).
#   - Python packages used by tests (openapi-spec-validator, pytest) — only with --test.
set -euo pipefail

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
        echo "install-deps: need root to run: $*" >&2; return 1; fi
}

apt_updated=0
apt_install() {
    if [ "$apt_updated" -eq 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

if ! pkg-config --exists jansson 2>/dev/null; then
    echo "install-deps: installing libjansson-dev" >&2
    apt_install libjansson-dev pkg-config
fi

if [ "${1:-}" = "--test" ]; then
    if ! python3 -c 'import openapi_spec_validator' 2>/dev/null; then
        echo "install-deps: installing openapi-spec-validator (pip)" >&2
        python3 -m pip install -q openapi-spec-validator
    fi
    if ! python3 -c 'import pytest' 2>/dev/null; then
        echo "install-deps: installing pytest (pip)" >&2
        python3 -m pip install -q pytest
    fi
fi
