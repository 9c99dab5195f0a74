#!/usr/bin/env bash
# libFuzzer runs of the targets in fuzz/ (JSON parser/writer round trip, line framer, request decoder), each seeded
# from ../shared/testdata/jsontestsuite/test_parsing (read in place; new inputs go to .build-fuzz/corpus-*).
#   bash scripts/fuzz.sh                 # every target for FORZIUM_FUZZ_SECONDS (default 20) seconds
#   bash scripts/fuzz.sh json 300        # one target, longer
# ForziumJSON and ForziumRPC are built into .build-fuzz with -sanitize=fuzzer (debug, testable), then each target is
# linked against them with swiftc. A crash stops the script with libFuzzer's report and the crashing input.
set -euo pipefail
cd "$(dirname "$0")/.."
only="${1:-}"
seconds="${2:-${FORZIUM_FUZZ_SECONDS:-20}}"
scratch=.build-fuzz
if [[ "$(uname -s)" != "Linux" ]]; then
    echo "fuzz: skipped (libFuzzer with swiftc -sanitize=fuzzer is set up for Linux toolchains only)" >&2
    exit 0
fi
seeds="../shared/testdata/jsontestsuite/test_parsing"

swift build --scratch-path "$scratch" -Xswiftc -sanitize=fuzzer --target ForziumRPC >&2
bin="$(swift build --scratch-path "$scratch" --show-bin-path)"
objects=("$bin"/ForziumJSON.build/*.o "$bin"/ForziumRPC.build/*.o "$bin"/CForziumSystem.build/*.o)

for target in json line-framer request-decoder; do
    [[ -n "$only" && "$only" != "$target" ]] && continue
    case "$target" in
        json) source=fuzz/FuzzJSON.swift ;;
        line-framer) source=fuzz/FuzzLineFramer.swift ;;
        request-decoder) source=fuzz/FuzzRequestDecoder.swift ;;
    esac
    exe="$scratch/fuzz-$target"
    swiftc -sanitize=fuzzer -parse-as-library -g -Onone -module-name "Fuzz_${target//-/_}" \
        -I "$bin/Modules" -I "$bin" -I Sources/CForziumSystem/include \
        "$source" "${objects[@]}" -o "$exe"
    corpus="$scratch/corpus-$target"
    mkdir -p "$corpus"
    args=("$corpus")
    [[ -d "$seeds" ]] && args+=("$seeds")
    echo "fuzz: $target for ${seconds}s (seeds: $([[ -d "$seeds" ]] && echo "$seeds" || echo none))" >&2
    log="$scratch/fuzz-$target.log"
    status=0
    # SWIFT_BACKTRACE=enable=no: let libFuzzer, not Swift's backtracer, handle a crash (it saves the input).
    SWIFT_BACKTRACE=enable=no "$exe" "${args[@]}" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$scratch/crash-$target-" >"$log" 2>&1 || status=$?
    grep -E "^(INFO: Loaded|#[0-9]+ +(INITED|DONE)|stat::number_of_executed_units|stat::peak_rss_mb)" "$log" >&2 || true
    if [[ "$status" -ne 0 ]]; then
        grep -E "Fatal error|Precondition|precondition|ERROR: libFuzzer|SUMMARY|Test unit written" "$log" >&2 || tail -20 "$log" >&2
        echo "fuzz: $target FAILED (log $log; input saved under $scratch/crash-$target-*)" >&2
        exit 1
    fi
done
echo "fuzz: all targets ran clean" >&2
