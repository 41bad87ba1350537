#!/usr/bin/env bash
# bench/reload.sh - 50 hot reloads over the admin API under wrk load, counting failures.
#
# Starts three workers and `fulcrum run` (backend `app`), then drives it for 25 s with two wrk
# runs at once — 50 keep-alive connections, and 10 connections that open a new connection per
# request (Connection: close) — while 50 `PUT /api/config` calls alternately add and remove a
# server and rotate the algorithm. wrk prints "Socket errors" and "Non-2xx" lines only when
# there are any. Needs wrk (apt-get install wrk). Usage:
#   FULCRUM=.build/release/fulcrum bench/reload.sh
set -u
B=${FULCRUM:-.build/release/fulcrum}
B=$(realpath "$B")
dir=$(mktemp -d)
cd "$dir"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$dir"' EXIT
for i in 1 2 3; do
    "$B" worker --port 1920$i --name w$i --delay-ms 2 >/dev/null 2>&1 &
    pids+=($!)
done
config() { # $1: number of servers, $2: algorithm
    local servers=""
    for i in $(seq 1 "$1"); do servers+="      - { name: w$i, address: \"127.0.0.1:1920$i\" }"$'\n'; done
    cat <<YAML
global:
  workers: 1
  log: { level: warning, access: "off" }
  admin: { listen: "127.0.0.1:19290", token_env: RELOAD_TOKEN }
frontends:
  - name: web
    listen: ["127.0.0.1:19280"]
    default_backend: app
backends:
  - name: app
    algorithm: $2
    servers:
$servers
YAML
}
config 2 round_robin >fulcrum.yaml
RELOAD_TOKEN=t "$B" run -c fulcrum.yaml --no-watch >run.log 2>&1 &
pids+=($!)
sleep 2
wrk -t1 -c50 -d25s http://127.0.0.1:19280/work >keepalive.txt 2>&1 &
keepalive=$!
wrk -t1 -c10 -d25s -H "Connection: close" http://127.0.0.1:19280/work >close.txt 2>&1 &
close=$!
sleep 2
algorithms=(round_robin least_connections power_of_two adaptive random peak_ewma)
applied=0
for round in $(seq 0 49); do
    servers=$((round % 2 == 0 ? 3 : 2))
    code=$(config "$servers" "${algorithms[$((round % 6))]}" |
        curl -s -o /dev/null -w "%{http_code}" -X PUT -H "Authorization: Bearer t" --data-binary @- \
            http://127.0.0.1:19290/api/config)
    [[ $code == 200 ]] && applied=$((applied + 1))
    sleep 0.4
done
wait "$keepalive" "$close"
echo "reloads applied: $applied of 50"
echo "--- keep-alive (wrk -c50)"; cat keepalive.txt
echo "--- a new connection per request (wrk -c10, Connection: close)"; cat close.txt
curl -s http://127.0.0.1:19290/metrics | grep -E "^fulcrum_(config_reloads|requests)_total"
