#!/usr/bin/env bash
# Builds Fulcrum's libFuzzer targets and runs each for a bounded time on its seed corpus
# (docs/fuzzing.md).
#
#   Fuzz/run.sh [--time SECONDS] [--asan] [--build-only] [TARGET...]
#
# TARGET: ConfigLoader, RequestHead (default: both, one after the other). --time: how long
# each target runs (default 60). --asan: also with AddressSanitizer (and its leak checker), in
# a build of its own. A crash, a failed check, a timeout (one input over 10 s), running out of
# memory (2 GB) or a leak fails the run: the script exits 1 and prints the input that did it.
#
# The sanitized build lives in .build-fuzz (.build-fuzz-asan), apart from the normal .build,
# so neither invalidates the other. Inputs the fuzzer finds that reach new code are kept in
# .build-fuzz/corpus/TARGET (not in the repository; docs/fuzzing.md says how to fold them
# into Fuzz/Corpus), findings in .build-fuzz/findings/TARGET.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60
sanitizers=(--sanitize fuzzer)
scratch=.build-fuzz
build_only=false
targets=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --time)
            seconds="$2"
            shift 2
            ;;
        --asan)
            sanitizers+=(--sanitize address)
            scratch=.build-fuzz-asan
            shift
            ;;
        --build-only)
            build_only=true
            shift
            ;;
        ConfigLoader | RequestHead)
            targets+=("$1")
            shift
            ;;
        *)
            echo "usage: Fuzz/run.sh [--time SECONDS] [--asan] [--build-only] [ConfigLoader|RequestHead]..." >&2
            exit 2
            ;;
    esac
done
[[ ${#targets[@]} -gt 0 ]] || targets=(ConfigLoader RequestHead)

# The largest input tried: a configuration file of a few pages; a request head beyond the
# fuzz frontend's 8 KB header limit.
declare -A max_len=([ConfigLoader]=8192 [RequestHead]=12288)
declare -A dictionary=([ConfigLoader]=config [RequestHead]=http)

started=$(date +%s)
for target in "${targets[@]}"; do
    swift build --scratch-path "$scratch" "${sanitizers[@]}" --product "Fuzz$target"
done
echo "fuzz: built ${targets[*]} in $(($(date +%s) - started)) s"
$build_only && exit 0
bin=$(swift build --scratch-path "$scratch" "${sanitizers[@]}" --show-bin-path)

failed=()
for target in "${targets[@]}"; do
    corpus="$scratch/corpus/$target"
    findings="$scratch/findings/$target"
    log="$scratch/fuzz-$target.log"
    mkdir -p "$corpus" "$findings"
    echo "fuzz: $target for $seconds s (log: $log)"
    status=0
    # Swift's own crash handler would take the signal before libFuzzer could save the input.
    SWIFT_BACKTRACE=enable=no "$bin/Fuzz$target" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="${max_len[$target]}" \
        -dict="Fuzz/Dictionaries/${dictionary[$target]}.dict" -artifact_prefix="$findings/" \
        -print_final_stats=1 -close_fd_mask=1 \
        "$corpus" "Fuzz/Corpus/$target" >"$log" 2>&1 || status=$?
    # The start, the last progress line and the totals.
    grep -E "INITED|DONE|stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)" "$log" | sed "s/^/  /"
    if [[ $status -ne 0 ]]; then
        echo "fuzz: $target FAILED (exit $status); the end of its log:" >&2
        grep -vE "^#[0-9]+ +(NEW|REDUCE|pulse)" "$log" | tail -n 40 >&2
        # libFuzzer's "Test unit written to PATH" names the input (crash-, timeout-, oom-, leak-).
        grep -oE "Test unit written to .*" "$log" | sed -E 's/Test unit written to //' | while read -r finding; do
            echo "fuzz: the input: $finding" >&2
            echo "fuzz: reproduce with: SWIFT_BACKTRACE=enable=no $bin/Fuzz$target $finding" >&2
        done
        failed+=("$target")
    fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz: failed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: ${targets[*]} ran $seconds s each, no finding"
