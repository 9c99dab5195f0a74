#!/usr/bin/env bash
# Throughput of 1, 2 and 3 gateways behind nginx (deploy/nginx/forzium.conf), and of one gateway without nginx, on
# this machine, measured with wrk. Uses the self-contained release binaries of scripts/package.sh.
#
# Usage: bench/nginx_scale.sh [seconds per run, default 10] [connections, default 32]
# Needs: nginx (scripts/install-deps.sh --test), wrk, curl.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-32}

tarball_dir=$(ls -d .build-static/dist/forzium-*-linux-* 2>/dev/null | grep -v '\.tar\.gz$' | head -1 || true)
if [ -z "$tarball_dir" ]; then
    bash scripts/package.sh --out .build-static/dist >/dev/null
    tarball_dir=$(ls -d .build-static/dist/forzium-*-linux-* | grep -v '\.tar\.gz$' | head -1)
fi
bin="$PWD/$tarball_dir/bin"
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

small='{"data":[[1,2],[3,4]],"operation":"multiply","parameters":{"factor":2}}'
medium=$(python3 -c 'import json; m=[[((i*31+j*17)%97)/8.0 for j in range(64)] for i in range(64)]; print(json.dumps({"data":m,"operation":"matmul","parameters":{"matrix_b":m}}))')
for name in small medium; do
    printf 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [==[%s]==]\n' "${!name}" > "$work/$name.lua"
done

start_gateway() {  # port
    "$bin/forzium-gateway" --port "$1" --log-level warning 2>>"$work/gateways.log" &
    pids+=($!)
    for _ in $(seq 1 200); do curl -fs "http://127.0.0.1:$1/ready" >/dev/null 2>&1 && return 0; sleep 0.05; done
    echo "gateway on $1 did not start" >&2; return 1
}

start_nginx() {  # listen port, upstream ports...
    local listen=$1; shift
    local dir="$work/nginx-$listen"
    mkdir -p "$dir/logs"
    local servers=""
    for port in "$@"; do servers+="    server 127.0.0.1:$port max_fails=1 fail_timeout=2s;\n"; done
    awk -v servers="$servers" -v listen="$listen" '
        /^ *server 127\.0\.0\.1:/ { if (!done) { printf "%s", servers; done = 1 } next }
        /^ *listen / { print "    listen 127.0.0.1:" listen ";"; next }
        { print }' deploy/nginx/forzium.conf > "$dir/forzium.conf"
    cat > "$dir/nginx.conf" <<CONF
daemon off;
worker_processes auto;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
$( [ "$(id -u)" = 0 ] && echo "user root root;" )
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/body; proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi; uwsgi_temp_path $dir/uwsgi; scgi_temp_path $dir/scgi;
    include $dir/forzium.conf;
}
CONF
    nginx -p "$dir" -e "$dir/logs/error.log" -c "$dir/nginx.conf" &
    pids+=($!)
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$listen/ready" >/dev/null 2>&1 && return 0; sleep 0.05; done
    echo "nginx on $listen did not start" >&2; return 1
}

stop_all() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}

measure() {  # label url
    for name in small medium; do
        wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$work/$name.lua" "$2/compute" > "$work/wrk.out" 2>&1
        local rps p50 p99 errors
        rps=$(awk '/^Requests\/sec/ { print $2 }' "$work/wrk.out")
        p50=$(awk '$1 == "50%" { print $2 }' "$work/wrk.out")
        p99=$(awk '$1 == "99%" { print $2 }' "$work/wrk.out")
        errors=$(awk '/Non-2xx|Socket errors/ { printf "%s ", $0 }' "$work/wrk.out")
        printf '| %-26s | %-6s | %9s | %8s | %8s | %s\n' "$1" "$name" "$rps" "$p50" "$p99" "${errors:-none}"
    done
}

echo "wrk -t2 -c$connections -d${seconds}s; small = 2x2 multiply, medium = 64x64 matmul; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
printf '| %-26s | %-6s | %9s | %8s | %8s | %s\n' "setup" "body" "req/s" "p50" "p99" "errors"
base=19100
start_gateway $((base + 1))
measure "1 gateway, no nginx" "http://127.0.0.1:$((base + 1))"
stop_all
for n in 1 2 3; do
    ports=()
    for i in $(seq 1 "$n"); do ports+=($((base + 10 * n + i))); start_gateway $((base + 10 * n + i)); done
    start_nginx $((base + 10 * n)) "${ports[@]}"
    measure "$n gateway(s) behind nginx" "http://127.0.0.1:$((base + 10 * n))"
    stop_all
done
