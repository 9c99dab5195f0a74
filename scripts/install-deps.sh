#!/usr/bin/env bash
# Installs what building and testing Forzium needs on a fresh Debian machine, and nothing that is already there.
#   - libjansson-dev: the SIMD engine links libjansson (pkg-config jansson).
#   - Python packages used by tests (openapi-spec-validator, pytest, schemathesis, selenium, tritonclient[http], numpy;
#     openapi-python-client and mypy, pinned to the versions the tests were written against) and the client package
#     clients/python — only with --test.
#   - chromium + chromium-driver (the /docs page is tested in a headless browser) — only with --test.
#   - nginx (the scale-out test runs Debian's nginx in front of three gateways) and systemd-analyze (the packaging
#     test verifies the unit with it, where systemd can be installed) — only with --test.
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

# Installs packages that ship a service without starting it (the tests run their own instances on 127.0.0.1):
# a policy-rc.d answering 101 ("action forbidden") for the duration, unless the machine already has one.
apt_install_no_start() {
    local policy=/usr/sbin/policy-rc.d added=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
        as_root chmod 755 "$policy"
        added=1
    fi
    local status=0
    apt_install "$@" || status=$?
    if [ "$added" -eq 1 ]; then as_root rm -f "$policy"; fi
    return "$status"
}

if ! pkg-config --exists jansson 2>/dev/null; then
    echo "install-deps: installing libjansson-dev" >&2
    apt_install libjansson-dev pkg-config
fi

if [ "${1:-}" = "--test" ]; then
    if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
        echo "install-deps: installing nginx" >&2
        apt_install_no_start nginx
    fi
    if ! command -v systemd-analyze >/dev/null 2>&1; then
        # Best effort: some containers cannot take systemd; the packaging test then skips `systemd-analyze verify`.
        echo "install-deps: installing systemd (for systemd-analyze)" >&2
        apt_install_no_start systemd || echo "install-deps: systemd not installable here; skipping" >&2
    fi
    if ! python3 -c 'import openapi_spec_validator' 2>/dev/null; then
        echo "install-deps: installing openapi-spec-validator (pip)" >&2
        python3 -m pip install -q openapi-spec-validator
    fi
    if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
        # The /docs page is tested in a real headless browser.
        echo "install-deps: installing chromium and chromium-driver" >&2
        apt_install chromium chromium-driver
    fi
    if ! python3 -c 'import selenium' 2>/dev/null; then
        echo "install-deps: installing selenium (pip)" >&2
        python3 -m pip install -q selenium==4.51.0
    fi
    # The v2 tests: the unmodified tritonclient[http] from PyPI, NumPy, mypy (the client package is typed), and the
    # client package itself (clients/python; the tests import it from the tree, this checks that it installs).
    if ! python3 -c 'import tritonclient.http, numpy, mypy, setuptools, wheel' 2>/dev/null; then
        echo "install-deps: installing tritonclient[http] numpy mypy setuptools wheel (pip)" >&2
        python3 -m pip install -q 'tritonclient[http]==2.73.0' 'numpy>=1.24,<3' 'mypy==2.4.1' 'setuptools>=65' 'wheel==0.45.1'
    fi
    python3 -m pip install -q --no-deps --no-build-isolation ./clients/python
    if ! python3 -c 'import pytest, schemathesis' 2>/dev/null; then
        echo "install-deps: installing pytest and schemathesis (pip)" >&2
        python3 -m pip install -q pytest schemathesis
    fi
    if ! python3 -c 'import openapi_python_client, mypy' 2>/dev/null \
        || [ "$(python3 -c 'import importlib.metadata as m; print(m.version("openapi-python-client"), m.version("mypy"))')" != "0.29.1 2.4.1" ]; then
        echo "install-deps: installing openapi-python-client 0.29.1 and mypy 2.4.1 (pip)" >&2
        python3 -m pip install -q openapi-python-client==0.29.1 mypy==2.4.1
    fi
fi
