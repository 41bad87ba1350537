#!/usr/bin/env bash
# TCP mode against HAProxy's `mode tcp`: each proxy (one thread) relays connections to the same
# servers, and its CPU time (utime + stime from /proc) is divided by the work done.
#
# - redis: redis-benchmark (-c 50, GET and SET, N requests) through the proxy to redis-server:
#   CPU µs per request.
# - bulk: curl downloads SIZE from an nginx through the proxy: CPU ms per GiB.
#
# The proxy is pinned to CPU 0, the servers and clients to CPU 1; rounds interleave the
# proxies. Usage:
#   bench/tcp.sh --fulcrum PATH [--baseline PATH] [--rounds N] [--requests N] [--size 1g]
# Needs haproxy, redis-server, redis-benchmark, nginx, curl and taskset.
set -euo pipefail
fulcrum= baseline= rounds=3 requests=200000 size=1g
while [[ $# -gt 0 ]]; do
    case $1 in
    --fulcrum) fulcrum=$2 && shift ;;
    --baseline) baseline=$2 && shift ;;
    --rounds) rounds=$2 && shift ;;
    --requests) requests=$2 && shift ;;
    --size) size=$2 && shift ;;
    *) echo "unknown option $1" >&2 && exit 2 ;;
    esac
    shift
done
[[ -n $fulcrum ]] || { echo "usage: bench/tcp.sh --fulcrum PATH [--baseline PATH] [--rounds N]" >&2; exit 2; }
run_dir=$(mktemp -d /tmp/tcp-bench.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$run_dir"
}
trap cleanup EXIT
redis_port=18401 web_port=18402 proxy_redis=18411 proxy_web=18412

taskset -c 1 redis-server --bind 127.0.0.1 --port $redis_port --save "" --appendonly no >"$run_dir/redis.log" 2>&1 &
pids+=($!)
truncate -s "$size" "$run_dir/big"
cat >"$run_dir/nginx.conf" <<CFG
daemon off;
master_process off;
worker_processes 1;
pid $run_dir/nginx.pid;
error_log $run_dir/nginx-error.log;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    client_body_temp_path $run_dir; proxy_temp_path $run_dir; fastcgi_temp_path $run_dir;
    uwsgi_temp_path $run_dir; scgi_temp_path $run_dir;
    server { listen 127.0.0.1:$web_port; root $run_dir; }
}
CFG
taskset -c 1 nginx -c "$run_dir/nginx.conf" &
pids+=($!)

cat >"$run_dir/haproxy.cfg" <<CFG
global
    nbthread 1
    maxconn 4096
defaults
    mode tcp
    timeout connect 2s
    timeout client 60s
    timeout server 60s
frontend redis
    bind 127.0.0.1:$proxy_redis
    default_backend redis
frontend web
    bind 127.0.0.1:$proxy_web
    default_backend web
backend redis
    server r1 127.0.0.1:$redis_port
backend web
    server w1 127.0.0.1:$web_port
CFG
cat >"$run_dir/fulcrum.yaml" <<CFG
global:
  workers: 1
  log: { level: warning, access: off }
frontends:
  - { name: redis, mode: tcp, listen: "127.0.0.1:$proxy_redis", default_backend: redis }
  - { name: web, mode: tcp, listen: "127.0.0.1:$proxy_web", default_backend: web }
backends:
  - { name: redis, mode: tcp, servers: [{ name: r1, address: "127.0.0.1:$redis_port" }] }
  - { name: web, mode: tcp, servers: [{ name: w1, address: "127.0.0.1:$web_port" }] }
CFG
sleep 1

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# measure NAME COMMAND...: starts the proxy, runs both loads, prints its CPU per unit of work.
measure() {
    local name=$1
    shift
    taskset -c 0 "$@" >"$run_dir/$name.log" 2>&1 &
    local pid=$!
    sleep 1.5
    taskset -c 1 redis-benchmark -p $proxy_redis -c 50 -n 20000 -t get,set -q >/dev/null
    local before after
    before=$(cpu_ticks $pid)
    taskset -c 1 redis-benchmark -p $proxy_redis -c 50 -n "$requests" -t get,set -q >"$run_dir/redis-$name.txt"
    after=$(cpu_ticks $pid)
    local redis_us
    redis_us=$(awk -v t=$((after - before)) -v hz="$hz" -v n=$((2 * requests)) 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
    before=$(cpu_ticks $pid)
    local bytes
    bytes=$(taskset -c 1 curl -s -o /dev/null -w '%{size_download}' "http://127.0.0.1:$proxy_web/big")
    after=$(cpu_ticks $pid)
    local bulk_ms
    bulk_ms=$(awk -v t=$((after - before)) -v hz="$hz" -v b="$bytes" 'BEGIN { printf "%.0f", t / hz * 1e3 / (b / 1073741824) }')
    kill $pid && wait $pid 2>/dev/null || true
    # (redis-benchmark -q redraws its progress with carriage returns; the last figure stays.)
    printf '%-14s redis %7s µs/request   bulk %6s ms/GiB   (%s)\n' "$name" "$redis_us" "$bulk_ms" \
        "$(tr '\r' '\n' <"$run_dir/redis-$name.txt" | grep -o '^[A-Z]*: [0-9.]* requests per second' | tr '\n' ' ')"
}

for round in $(seq 1 "$rounds"); do
    echo "round $round/$rounds"
    measure haproxy haproxy -db -f "$run_dir/haproxy.cfg"
    [[ -n $baseline ]] && measure fulcrum-base "$baseline" run --config "$run_dir/fulcrum.yaml" --no-watch
    measure fulcrum "$fulcrum" run --config "$run_dir/fulcrum.yaml" --no-watch
done
