#!/usr/bin/env bash
# Builds self-contained Forzium binaries and writes a tarball that runs on a Linux x86_64 machine without Swift:
#   forzium-<version>-linux-<arch>/
#     bin/forzium-gateway, bin/forzium-engine, bin/forzium-engine-simd   (Swift runtime and Foundation linked in with
#                                                                         --static-swift-stdlib; libjansson linked in)
#     schemas/  README.md  gateway/README.md  deploy/nginx/forzium.conf  deploy/systemd/forzium-gateway.service
#     deploy/Containerfile  VERSION
# What the binaries still load from the system: libc, libm, libstdc++ and libgcc_s (every Debian/Ubuntu has them).
#
# Usage: scripts/package.sh [--debug] [--scratch-path DIR] [--out DIR]
#   --debug         debug configuration (the test suite uses it: same linking, a fraction of the build time)
#   --scratch-path  SwiftPM build directory (default .build-static; keep it apart from .build, whose products link
#                   the Swift runtime dynamically)
#   --out           where the folder and the tarball go (default dist/)
set -euo pipefail
cd "$(dirname "$0")/.."

configuration=release
scratch=.build-static
out=dist
while [ $# -gt 0 ]; do
    case "$1" in
        --debug) configuration=debug; shift ;;
        --scratch-path) scratch="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        *) echo "package.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

version=$(sed -n 's/.*static let string = "\(.*\)".*/\1/p' Sources/ForziumRPC/ForziumVersion.swift)
[ -n "$version" ] || { echo "package.sh: cannot read the version from Sources/ForziumRPC/ForziumVersion.swift" >&2; exit 1; }
arch=$(uname -m)
name="forzium-$version-linux-$arch"

# libjansson statically: SwiftPM links the CJansson system library with what pkg-config says, so a jansson.pc of our
# own (searched first) names a folder that holds only libjansson.a.
static_libs="$PWD/$scratch/static-libs"
mkdir -p "$static_libs/pkgconfig"
if pkg-config --exists jansson && [ -f "$(pkg-config --variable=libdir jansson)/libjansson.a" ]; then
    ln -sf "$(pkg-config --variable=libdir jansson)/libjansson.a" "$static_libs/libjansson.a"
    {
        echo "libdir=$static_libs"
        echo "includedir=$(pkg-config --variable=includedir jansson)"
        echo "Name: jansson"
        echo "Description: jansson, linked statically into forzium-engine-simd"
        echo "Version: $(pkg-config --modversion jansson)"
        echo 'Libs: -L${libdir} -ljansson'
        echo 'Cflags: -I${includedir}'
    } > "$static_libs/pkgconfig/jansson.pc"
    export PKG_CONFIG_PATH="$static_libs/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
else
    echo "package.sh: libjansson.a not found (libjansson-dev); the SIMD engine will need libjansson.so.4" >&2
fi

flags=(-c "$configuration" --static-swift-stdlib --scratch-path "$scratch")
started=$(date +%s)
for product in forzium-engine forzium-engine-simd forzium-gateway; do
    echo "package.sh: building $product ($configuration, static Swift runtime)" >&2
    swift build "${flags[@]}" --product "$product"
done
bin=$(swift build "${flags[@]}" --show-bin-path)
echo "package.sh: built in $(( $(date +%s) - started )) s" >&2

stage="$out/$name"
rm -rf "$stage"
mkdir -p "$stage/bin" "$stage/deploy/nginx" "$stage/deploy/systemd" "$stage/gateway"
for product in forzium-gateway forzium-engine forzium-engine-simd; do
    install -m 755 "$bin/$product" "$stage/bin/$product"
done
if [ "$configuration" = release ]; then strip "$stage/bin/"* 2>/dev/null || true; fi
cp -R schemas "$stage/schemas"
cp README.md "$stage/README.md"
cp gateway/README.md "$stage/gateway/README.md"
cp deploy/nginx/forzium.conf "$stage/deploy/nginx/"
cp deploy/systemd/forzium-gateway.service "$stage/deploy/systemd/"
cp deploy/Containerfile "$stage/deploy/"
echo "$version" > "$stage/VERSION"

# The binaries must not need the Swift runtime (or libjansson) from anywhere.
for binary in "$stage/bin/"*; do
    if ldd "$binary" | grep -E 'libswift|libFoundation|libdispatch|libBlocksRuntime|libjansson' >&2; then
        echo "package.sh: $binary still links the libraries above dynamically" >&2
        exit 1
    fi
done

tar -C "$out" -czf "$out/$name.tar.gz" "$name"
echo "$out/$name.tar.gz"
