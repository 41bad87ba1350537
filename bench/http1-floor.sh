#!/usr/bin/env bash
# What HTTP/1.1 costs on NIO with nothing of Fulcrum's: HAProxy against bench/nio-floor, both
# answering every request themselves ("answer"), and both in front of the same nginx
# ("proxy": HAProxy's HTTP proxy, nio-floor's `relay`, which copies bytes between each client
# connection and a backend connection of its own, parsing nothing). Keep-alive (wrk -c 50)
# and a new connection per request (`Connection: close`). Each server is pinned to CPU 0, wrk
# and nginx to CPU 1; a server's CPU per request is its utime+stime from /proc over one wrk
# run of DURATION, after a 2-second warm-up. Rounds interleave the servers. See
# docs/architecture.md, "What a connection costs".
#
# Usage: bench/http1-floor.sh [ROUNDS] [DURATION]   (needs haproxy, nginx, wrk and taskset)
set -euo pipefail
rounds=${1:-3}
duration=${2:-8s}
here=$(cd "$(dirname "$0")" && pwd)
build=${NIO_FLOOR_BUILD:-/tmp/nio-floor-build}
run_dir=$(mktemp -d /tmp/http1-floor.XXXXXX)
nginx_pid=
cleanup() {
    [[ -n $nginx_pid ]] && kill "$nginx_pid" 2>/dev/null
    rm -rf "$run_dir"
}
trap cleanup EXIT

(cd "$here/nio-floor" && swift build -c release --scratch-path "$build" >/dev/null)
cat >"$run_dir/nginx.conf" <<CFG
daemon off;
worker_processes 1;
pid $run_dir/nginx.pid;
error_log $run_dir/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:18300 backlog=4096;
        location / { return 200 "hello\n"; }
    }
}
CFG
cat >"$run_dir/haproxy.cfg" <<'CFG'
global
    nbthread 1
    maxconn 4096
defaults
    mode http
    timeout client 30s
    timeout connect 5s
    timeout server 30s
frontend answer
    bind 127.0.0.1:18301
    http-request return status 200 content-type text/plain string "hello"
frontend proxy
    bind 127.0.0.1:18302
    default_backend nginx
backend nginx
    server one 127.0.0.1:18300
CFG
taskset -c 1 nginx -c "$run_dir/nginx.conf" -e "$run_dir/nginx-error.log" &
nginx_pid=$!
sleep 1

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# measure NAME PORT CLOSE COMMAND...: prints the server's CPU µs per request and wrk's req/s.
measure() {
    local name=$1 port=$2 close=$3
    shift 3
    local header=()
    [[ $close == yes ]] && header=(-H "Connection: close")
    taskset -c 0 "$@" >"$run_dir/$name.log" 2>&1 &
    local pid=$!
    sleep 1
    taskset -c 1 wrk -t 1 -c 50 -d 2s "${header[@]}" "http://127.0.0.1:$port/" >/dev/null
    local before after output
    before=$(cpu_ticks "$pid")
    output=$(taskset -c 1 wrk -t 1 -c 50 -d "$duration" "${header[@]}" "http://127.0.0.1:$port/")
    after=$(cpu_ticks "$pid")
    kill "$pid" && wait "$pid" 2>/dev/null || true
    local requests
    requests=$(awk '/requests in/ { print $1 }' <<<"$output")
    if grep -q "Non-2xx\|Socket errors" <<<"$output"; then
        echo "$name: errors: $(grep "Non-2xx\|Socket errors" <<<"$output")" >&2
    fi
    awk -v name="$name" -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$requests" \
        -v rps="$(awk '/Requests\/sec/ { print $2 }' <<<"$output")" \
        'BEGIN { printf "%-26s %6.1f µs/req  (%s req/s)\n", name, ticks / hz * 1e6 / n, rps }'
}

nio=$build/release/nio-floor
for round in $(seq 1 "$rounds"); do
    echo "round $round/$rounds"
    for close in no yes; do
        suffix=keep-alive
        [[ $close == yes ]] && suffix=close
        measure "haproxy answer $suffix" 18301 $close haproxy -db -f "$run_dir/haproxy.cfg"
        measure "nio-floor http $suffix" 18303 $close "$nio" 18303 http
        measure "haproxy proxy $suffix" 18302 $close haproxy -db -f "$run_dir/haproxy.cfg"
        measure "nio-floor relay $suffix" 18304 $close "$nio" 18304 relay 18300
    done
done
