#!/usr/bin/env bash
# bench/callgrind.sh - instructions per request under callgrind: the noise-free check.
#
# Runs each proxy under `valgrind --tool=callgrind` behind the same two nginx backends as
# bench/run.sh, sends a warm-up and then a fixed number of keep-alive requests with h2load
# (HTTP/1.1), and reports the instructions (Ir) the proxy executed per request, counted from
# the end of the warm-up. Unlike CPU time, the count hardly moves between runs on a busy
# machine, so it can show a change of 1 %. See bench/README.md.
set -euo pipefail
export LC_ALL=C
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$BENCH_DIR/.." && pwd)
BACKEND1_PORT=18081
BACKEND2_PORT=18082
PROXY_PORT=18094

FULCRUM_BIN=${FULCRUM:-}
BASELINE_BIN=${BASELINE:-}
REQUESTS_GIVEN=${REQUESTS:-}
WARMUP_GIVEN=${WARMUP_REQUESTS:-}
REQUESTS=${REQUESTS:-20000}
WARMUP_REQUESTS=${WARMUP_REQUESTS:-2000}
CONNECTIONS=${CONNECTIONS:-10}
WITH_HAPROXY=${WITH_HAPROXY:-0}
RATE_LIMIT=${RATE_LIMIT:-0}
SHARED_LIMIT=${SHARED_LIMIT:-0}
STORE_PORT=18083
H2C=${H2C:-0}
NEW_CONNECTIONS=${NEW_CONNECTIONS:-0}
UPSTREAM_H2=${UPSTREAM_H2:-0}
ALGORITHM=${ALGORITHM:-round_robin}
STICKY=${STICKY:-0}
COOKIE=${COOKIE:-}
OUT_BASE=${OUT_BASE:-$BENCH_DIR/out}

usage() {
    cat <<EOF
Usage: bench/callgrind.sh --fulcrum PATH [--baseline PATH] [options]

Counts the instructions each proxy executes per keep-alive HTTP/1.1 request, under
callgrind, one proxy at a time on 127.0.0.1:$PROXY_PORT, with two nginx backends
(127.0.0.1:$BACKEND1_PORT and :$BACKEND2_PORT) and h2load as the client.

Options (environment variable in brackets):
  --fulcrum PATH     the Fulcrum binary to measure [FULCRUM] (required)
  --baseline PATH    a second Fulcrum binary, the before of a change [BASELINE]
  --haproxy          HAProxy (nbthread 1) too, as a reference [WITH_HAPROXY=1]
  --rate-limit       the proxies count every request against a per-address rate limit that
                     is never reached, as bench/run.sh --rate-limit does [RATE_LIMIT=1]
  --shared-limit     with --rate-limit: Fulcrum's limit is shared: true, in a redis-server started
                     here (bench/run.sh --shared-limit) [SHARED_LIMIT=1]
  --h2c              HTTP/2 with prior knowledge instead of HTTP/1.1: h2load -m 10 (ten streams per
                     connection), Fulcrum with h2c: true, HAProxy taking the preface on its
                     plain bind [H2C=1]
  --algorithm NAME   Fulcrum's balancing algorithm (default round_robin) [ALGORITHM]
  --sticky           Fulcrum's backend has sticky: { cookie: SRV }, and every request carries the
                     cookie naming one server (fetched from the proxy under test; HAProxy gets none): run
                     once with it, and once with --cookie and that cookie, for what sticky costs
                     [STICKY=1]
  --cookie VALUE     every request carries Cookie: VALUE (without --sticky: the same request,
                     forwarded as it is) [COOKIE]
  --upstream-h2      the backends speak HTTP/2 by prior knowledge (nginx listen … http2), and
                     the proxies to them (Fulcrum protocol: h2c, HAProxy proto h2); with --h2c,
                     the h2-to-h2 path [UPSTREAM_H2=1]
  --new-connections  a new connection per request: one client sends the requests one after
                     the other, each with Connection: close (bench/report.py close-requests;
                     default 2,000 requests after 200) [NEW_CONNECTIONS=1]
  --requests N       measured requests [REQUESTS] (default $REQUESTS)
  --warmup N         requests before counting starts [WARMUP_REQUESTS] (default $WARMUP_REQUESTS)
  --connections C    h2load connections [CONNECTIONS] (default $CONNECTIONS)

Needs valgrind, nghttp2-client (h2load), nginx and curl; installs the missing ones with
apt-get. Raw callgrind files go to bench/out/callgrind-<UTC timestamp>/ (read them with
callgrind_annotate).
EOF
}

log() { printf '[callgrind %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() {
    printf 'callgrind: error: %s\n' "$*" >&2
    exit 1
}

while (($#)); do
    case $1 in
    -h | --help) usage && exit 0 ;;
    --fulcrum) FULCRUM_BIN=${2:?--fulcrum needs a path} && shift ;;
    --baseline) BASELINE_BIN=${2:?--baseline needs a path} && shift ;;
    --requests) REQUESTS=${2:?--requests needs a number} && REQUESTS_GIVEN=$2 && shift ;;
    --warmup) WARMUP_REQUESTS=${2:?--warmup needs a number} && WARMUP_GIVEN=$2 && shift ;;
    --connections) CONNECTIONS=${2:?--connections needs a number} && shift ;;
    --haproxy) WITH_HAPROXY=1 ;;
    --rate-limit) RATE_LIMIT=1 ;;
    --shared-limit) SHARED_LIMIT=1 ;;
    --h2c) H2C=1 ;;
    --upstream-h2) UPSTREAM_H2=1 ;;
    --algorithm) ALGORITHM=${2:?--algorithm needs a name} && shift ;;
    --sticky) STICKY=1 ;;
    --cookie) COOKIE=${2:?--cookie needs a value} && shift ;;
    --new-connections) NEW_CONNECTIONS=1 ;;
    *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
done
[[ -n $FULCRUM_BIN ]] || die "--fulcrum PATH is required (see --help)"
((!(H2C && NEW_CONNECTIONS))) || die "--h2c and --new-connections are separate measurements"
((!(UPSTREAM_H2 && NEW_CONNECTIONS))) || die "--upstream-h2 goes with keep-alive or --h2c"
if ((NEW_CONNECTIONS)); then # each request is a connection: under valgrind, milliseconds each
    REQUESTS=${REQUESTS_GIVEN:-2000}
    WARMUP_REQUESTS=${WARMUP_GIVEN:-200}
fi
for n in "$REQUESTS" "$WARMUP_REQUESTS" "$CONNECTIONS"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || die "--requests, --warmup and --connections take positive integers, got '$n'"
done
for bin in "$FULCRUM_BIN" ${BASELINE_BIN:+"$BASELINE_BIN"}; do
    [[ -f $bin && -x $bin ]] || die "'$bin' is not an executable file"
done

packages=()
command -v valgrind >/dev/null || packages+=(valgrind)
command -v h2load >/dev/null || packages+=(nghttp2-client)
command -v nginx >/dev/null || packages+=(nginx)
command -v curl >/dev/null || packages+=(curl)
((WITH_HAPROXY)) && ! command -v haproxy >/dev/null && packages+=(haproxy)
if ((${#packages[@]})); then
    command -v apt-get >/dev/null || die "missing ${packages[*]}, and apt-get is not available"
    log "installing ${packages[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${packages[@]}" >/dev/null
fi

OUT_DIR=$OUT_BASE/callgrind-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT_DIR"
RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/fulcrum-callgrind.XXXXXX")
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$RUN_DIR"
}
trap cleanup EXIT

render() { # TEMPLATE OUTPUT KEY=VALUE...
    local text kv
    text=$(<"$1")
    for kv in "${@:3}"; do text=${text//"@${kv%%=*}@"/"${kv#*=}"}; done
    printf '%s\n' "$text" >"$2"
}

wait_ready() { # PID PORT [CURL_OPTION]
    local deadline=$((SECONDS + 120)) # a proxy starts slowly under valgrind
    until curl -sf ${3:+"$3"} -o /dev/null "http://127.0.0.1:$2/"; do
        kill -0 "$1" 2>/dev/null || die "the process on port $2 exited during startup (see $OUT_DIR)"
        ((SECONDS < deadline)) || die "nothing answered 200 on 127.0.0.1:$2 within 120 s"
        sleep 0.5
    done
}

user_directive=
((EUID == 0)) && user_directive="user $(id -un) $(id -gn);"
# --upstream-h2: the backends speak HTTP/2 by prior knowledge, and the proxies to them.
BACKEND_LISTEN_EXTRA= BACKEND_PROBE= SERVER_EXTRA_HAPROXY= SERVER_EXTRA_FULCRUM=
if ((UPSTREAM_H2)); then
    BACKEND_LISTEN_EXTRA=" http2" BACKEND_PROBE=--http2-prior-knowledge
    SERVER_EXTRA_HAPROXY=" proto h2" SERVER_EXTRA_FULCRUM=", protocol: h2c"
fi
for i in 1 2; do
    port_var=BACKEND${i}_PORT
    mkdir -p "$RUN_DIR/backend$i-tmp"
    render "$BENCH_DIR/nginx-backend.conf.tmpl" "$RUN_DIR/backend$i.conf" \
        "USER_DIRECTIVE=$user_directive" "RUN_DIR=$RUN_DIR" "NAME=backend$i" "PORT=${!port_var}" "DOWNLOAD_LOCATION=" "LISTEN_EXTRA=$BACKEND_LISTEN_EXTRA"
    setsid nginx -p "$RUN_DIR/" -e "$RUN_DIR/backend$i.error.log" -c "$RUN_DIR/backend$i.conf" \
        >"$OUT_DIR/backend$i.log" 2>&1 </dev/null &
    PIDS+=($!)
    wait_ready $! "${!port_var}" "$BACKEND_PROBE"
done
# --rate-limit: the limits of bench/run.sh --rate-limit (one million requests a second).
FULCRUM_RATE_LIMIT= HAPROXY_RATE_LIMIT=
FULCRUM_STORE=
((!SHARED_LIMIT || RATE_LIMIT)) || die "--shared-limit shares --rate-limit's limit: give both"
if ((SHARED_LIMIT)); then
    setsid redis-server --bind 127.0.0.1 --port "$STORE_PORT" --save "" --appendonly no --dir "$RUN_DIR" \
        >"$OUT_DIR/store.log" 2>&1 </dev/null &
    PIDS+=($!)
    until [[ $(redis-cli -p "$STORE_PORT" ping 2>/dev/null) == PONG ]]; do sleep 0.2; done
    FULCRUM_STORE="  store: { redis: \"redis://127.0.0.1:$STORE_PORT/0\", timeout: 50ms }"
fi
if ((RATE_LIMIT)); then
    FULCRUM_RATE_LIMIT='    rate_limits: { per_ip: { key: src, rate: 1000000/1s } }'
    ((SHARED_LIMIT)) && FULCRUM_RATE_LIMIT='    rate_limits: { per_ip: { key: src, rate: 1000000/1s, shared: true } }'
    HAPROXY_RATE_LIMIT=$'    stick-table type ip size 100k expire 10s store http_req_rate(1s)\n    http-request track-sc0 src\n    http-request deny deny_status 429 if { sc_http_req_rate(0) gt 1000000 }'
fi
# The template's TLS line carries h2c for Fulcrum (a plain listener either way).
FULCRUM_H2C=
H2LOAD_PROTOCOL=(--h1)
if ((H2C)); then
    FULCRUM_H2C="    h2c: true"
    H2LOAD_PROTOCOL=(-m 10)
fi
common=("RUN_DIR=$RUN_DIR" "BACKEND1_PORT=$BACKEND1_PORT" "BACKEND2_PORT=$BACKEND2_PORT" "PORT=$PROXY_PORT" "MAXCONN=4096")
FULCRUM_STICKY=
((STICKY)) && FULCRUM_STICKY='    sticky: { cookie: SRV }'
render "$BENCH_DIR/fulcrum.yaml.tmpl" "$RUN_DIR/fulcrum.yaml" "${common[@]}" "TLS=$FULCRUM_H2C" "RATE_LIMIT=$FULCRUM_RATE_LIMIT" \
    "SERVER_EXTRA=$SERVER_EXTRA_FULCRUM" "ALGORITHM=$ALGORITHM" "BACKEND_EXTRA=$FULCRUM_STICKY" "GLOBAL_EXTRA=$FULCRUM_STORE"
render "$BENCH_DIR/haproxy.cfg.tmpl" "$RUN_DIR/haproxy.cfg" "${common[@]}" "TLS=" "RATE_LIMIT=$HAPROXY_RATE_LIMIT" "SERVER_EXTRA=$SERVER_EXTRA_HAPROXY"

# N requests to the proxy under test, into FILE: h2load, or one request per connection.
load() { # N FILE
    if ((NEW_CONNECTIONS)); then
        python3 "$BENCH_DIR/report.py" close-requests "$PROXY_PORT" "$1" >"$2"
    else
        h2load "${H2LOAD_PROTOCOL[@]}" ${STICKY_COOKIE:+-H "Cookie: $STICKY_COOKIE"} -n "$1" -c "$CONNECTIONS" \
            "http://127.0.0.1:$PROXY_PORT/" >"$2"
    fi
}

# NAME COMMAND...: counts NAME's instructions per request; prints "NAME IR_PER_REQUEST".
measure() {
    local name=$1 pid out
    shift
    log "$name: starting under callgrind"
    setsid valgrind --tool=callgrind --callgrind-out-file="$OUT_DIR/$name.%p.out" "$@" \
        >"$OUT_DIR/$name.log" 2>&1 </dev/null &
    pid=$!
    PIDS+=("$pid")
    wait_ready "$pid" "$PROXY_PORT"
    STICKY_COOKIE=$COOKIE
    if ((STICKY)) && [[ $name == fulcrum* ]]; then # the cookie a new client gets
        STICKY_COOKIE=$(curl -s -o /dev/null -D - "http://127.0.0.1:$PROXY_PORT/" | sed -n 's/^[Ss]et-[Cc]ookie: \(SRV=[0-9a-f]*\).*/\1/p')
        [[ -n $STICKY_COOKIE ]] || die "$name: --sticky, but the proxy set no SRV cookie"
    fi
    load "$WARMUP_REQUESTS" "$OUT_DIR/$name.warmup.txt"
    callgrind_control --zero "$pid" >/dev/null 2>&1
    log "$name: $REQUESTS requests"
    load "$REQUESTS" "$OUT_DIR/$name.h2load.txt"
    grep -q " $REQUESTS succeeded" "$OUT_DIR/$name.h2load.txt" ||
        die "$name: not every request succeeded (see $OUT_DIR/$name.h2load.txt)"
    callgrind_control --dump "$pid" >/dev/null 2>&1
    kill -TERM -- "-$pid"
    wait "$pid" 2>/dev/null || true
    # The dump after --zero is the file with suffix .1 (part 1); its summary line is the total.
    out=$(ls "$OUT_DIR/$name".*.out.1)
    awk -v name="$name" -v n="$REQUESTS" '/^summary:/ { printf "%s %.0f\n", name, $2 / n }' "$out"
}

# valgrind 3.19 (Debian 12) cannot read the DWARF 5 debug information Swift emits: measure
# copies without it (the symbol table stays, so callgrind_annotate still names functions).
# Fulcrum's synchronous top-level main (Sources/fulcrum/main.swift) keeps it runnable too.
runnable_copy() { # BIN NAME
    cp "$1" "$RUN_DIR/$2" && strip --strip-debug "$RUN_DIR/$2" && printf '%s' "$RUN_DIR/$2"
}

results=()
results+=("$(measure fulcrum "$(runnable_copy "$FULCRUM_BIN" fulcrum)" run -c "$RUN_DIR/fulcrum.yaml")")
[[ -n $BASELINE_BIN ]] &&
    results+=("$(measure fulcrum-base "$(runnable_copy "$BASELINE_BIN" fulcrum-base)" run -c "$RUN_DIR/fulcrum.yaml")")
((WITH_HAPROXY)) && results+=("$(measure haproxy haproxy -db -f "$RUN_DIR/haproxy.cfg")")

git_rev=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo "no commit")
{
    if ((NEW_CONNECTIONS)); then
        printf 'Instructions per request, a new connection each (callgrind Ir; %s requests after %s; git %s)\n' \
            "$REQUESTS" "$WARMUP_REQUESTS" "$git_rev"
    else
        printf 'Instructions per keep-alive request (callgrind Ir; %s requests after %s, h2load %s -c %s%s; git %s)\n' \
            "$REQUESTS" "$WARMUP_REQUESTS" "${H2LOAD_PROTOCOL[*]}" "$CONNECTIONS" \
            "$( ((UPSTREAM_H2)) && printf ', servers over h2c')$([[ $ALGORITHM != round_robin ]] && printf ', algorithm %s' "$ALGORITHM")$( ((STICKY)) && printf ', sticky')$([[ -n $COOKIE ]] && printf ', Cookie: %s' "$COOKIE")" "$git_rev"
    fi
    reference=${results[0]#* }
    for result in "${results[@]}"; do
        printf '  %-13s %8s Ir/request  %.3f× fulcrum\n' "${result%% *}" "${result#* }" \
            "$(awk -v a="${result#* }" -v b="$reference" 'BEGIN { print a / b }')"
    done
    printf 'raw output: %s\n' "$OUT_DIR"
} | tee "$OUT_DIR/summary.txt"
