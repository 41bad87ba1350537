#!/usr/bin/env bash
# What terminating HTTP/2 costs, with no proxying: HAProxy answering every h2c request itself
# (`http-request return`) against bench/nio-floor's two HTTP/2 modes (`h2`: NIOHTTP2Handler
# without a multiplexer, Fulcrum's shape; `h2-streams`: a child channel per stream). Each
# server is pinned to CPU 0 and h2load (-c 20 -m 10) to CPU 1; a server's CPU per request is
# its utime+stime from /proc over 200,000 requests, after 20,000 unmeasured. Rounds
# interleave the three. See docs/architecture.md, "What a connection costs".
#
# Usage: bench/h2-floor.sh [ROUNDS]   (needs haproxy, h2load and taskset; builds nio-floor)
set -euo pipefail
rounds=${1:-3}
requests=200000
here=$(cd "$(dirname "$0")" && pwd)
build=${NIO_FLOOR_BUILD:-/tmp/nio-floor-build}
run_dir=$(mktemp -d /tmp/h2-floor.XXXXXX)
trap 'rm -rf "$run_dir"' EXIT

(cd "$here/nio-floor" && swift build -c release --scratch-path "$build" >/dev/null)
cat >"$run_dir/haproxy.cfg" <<'CFG'
global
    nbthread 1
defaults
    mode http
    timeout client 30s
    timeout connect 5s
    timeout server 30s
frontend direct
    bind 127.0.0.1:18200 proto h2
    http-request return status 200 content-type text/plain string "hello"
CFG

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# measure NAME PORT COMMAND...: prints the server's CPU µs per request and h2load's req/s.
measure() {
    local name=$1 port=$2
    shift 2
    taskset -c 0 "$@" >"$run_dir/$name.log" 2>&1 &
    local pid=$!
    sleep 1.5
    taskset -c 1 h2load -c 20 -m 10 -n 20000 "http://127.0.0.1:$port/" >/dev/null
    local before after output
    before=$(cpu_ticks "$pid")
    output=$(taskset -c 1 h2load -c 20 -m 10 -n "$requests" "http://127.0.0.1:$port/")
    after=$(cpu_ticks "$pid")
    kill "$pid" && wait "$pid" 2>/dev/null || true
    grep -q "$requests succeeded" <<<"$output" || { echo "$name: not every request succeeded" >&2; exit 1; }
    local ticks_per_second
    ticks_per_second=$(getconf CLK_TCK)
    awk -v name="$name" -v ticks=$((after - before)) -v hz="$ticks_per_second" -v n="$requests" \
        -v rps="$(grep -o '[0-9.]* req/s' <<<"$output" | head -1)" \
        'BEGIN { printf "%-16s %6.1f µs/req  (%s)\n", name, ticks / hz * 1e6 / n, rps }'
}

for round in $(seq 1 "$rounds"); do
    echo "round $round/$rounds"
    measure haproxy 18200 haproxy -db -f "$run_dir/haproxy.cfg"
    measure nio-h2 18201 "$build/release/nio-floor" 18201 h2
    measure nio-h2-streams 18202 "$build/release/nio-floor" 18202 h2-streams
done
