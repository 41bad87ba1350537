#!/usr/bin/env bash
# bench/run.sh - Fulcrum vs HAProxy vs nginx as HTTP/1.1 load balancers on loopback.
#
# Starts two identical nginx backends, HAProxy (1 thread), nginx (1 worker) and
# Fulcrum (1 worker) as proxies, then runs wrk (or h2load, curl, the idle probe)
# against each proxy in interleaved rounds and reports req/s, p50/p99 latency and
# the proxy's CPU time per request. --tcp does the same for the proxies' TCP modes,
# with redis-server backends and redis-benchmark. --all runs every scenario.
# See bench/README.md or `bench/run.sh --help`.
set -euo pipefail
shopt -u patsub_replacement 2>/dev/null || true # bash 5.2: '&' in ${x//a/b} is literal
export LC_ALL=C                                  # '.' as decimal separator in EPOCHREALTIME
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$BENCH_DIR/.." && pwd)
REPORT=(python3 "$BENCH_DIR/report.py")

BACKEND1_PORT=18081
BACKEND2_PORT=18082
declare -A PROXY_PORT=([haproxy]=18090 [nginx]=18091 [fulcrum]=18092 [fulcrum-base]=18093)
ALL_PROXIES=(haproxy nginx fulcrum-base fulcrum)

# Defaults; every option can also be given as an environment variable.
FULCRUM_BIN=${FULCRUM:-}
BASELINE_BIN=${BASELINE:-}
ALGORITHM=${ALGORITHM:-round_robin}
STICKY=${STICKY:-0}
BASELINE_ALGORITHM=${BASELINE_ALGORITHM:-$ALGORITHM}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONNECTIONS_GIVEN=${CONNECTIONS:+1} # --h2 has its own default
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-1}
ONLY=${ONLY:-haproxy,nginx,fulcrum}
NO_INSTALL=${NO_INSTALL:-0}
PIN=${PIN:-0}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
BACKEND_CPU=${BACKEND_CPU:-$LOAD_CPU}
OUT_BASE=${OUT_BASE:-$BENCH_DIR/out}
NGINX_KEEPALIVE=${NGINX_KEEPALIVE:-64}
TLS=${TLS:-0}
NEW_CONNECTIONS=${NEW_CONNECTIONS:-0}
RATE_LIMIT=${RATE_LIMIT:-0}
SHARED_LIMIT=${SHARED_LIMIT:-0}
STORE_PORT=18083
IDLE=${IDLE:-0}
H2=${H2:-0}
STREAMS=${STREAMS:-10}
DOWNLOAD=${DOWNLOAD:-}
ALL=${ALL:-0}
TCP=${TCP:-0}
UPSTREAM_H2=${UPSTREAM_H2:-0}
TCP_REQUESTS=${TCP_REQUESTS:-300000}
ALL_IDLE=${ALL_IDLE:-5000}
ALL_DOWNLOAD=${ALL_DOWNLOAD:-1g}

usage() {
    cat <<EOF
Usage: bench/run.sh [options]

Benchmarks Fulcrum against HAProxy and nginx as HTTP/1.1 load balancers, all on
loopback, with the same two nginx backends behind each of them:

  backends   nginx 127.0.0.1:$BACKEND1_PORT and :$BACKEND2_PORT (1 worker each, fixed "hello" response)
  haproxy    127.0.0.1:${PROXY_PORT[haproxy]}  (nbthread 1, http-reuse always)
  nginx      127.0.0.1:${PROXY_PORT[nginx]}  (worker_processes 1, upstream keepalive 64)
  fulcrum    127.0.0.1:${PROXY_PORT[fulcrum]}  (fulcrum run -c FILE, workers: 1)

Each round runs, for each proxy in turn (haproxy, nginx, fulcrum), a warm-up
wrk run (not measured) and then \`wrk -t T -c C -d S --latency\`, reading the
proxy's CPU time (utime+stime of all its processes) before and after.
It prints a table per round, a summary (median over rounds) and a Markdown
block for bench/RESULTS.md; raw output goes to bench/out/<UTC timestamp>/.

Options (environment variable in brackets):
  --fulcrum PATH     Fulcrum binary [FULCRUM]. Default: build the production binary
                     (swift build -c release --product fulcrum --scratch-path .build-bench
                     -Xswiftc -enforce-exclusivity=unchecked) and use .build-bench/release/fulcrum.
  --baseline PATH    a second Fulcrum binary, measured as "fulcrum-base" on port ${PROXY_PORT[fulcrum-base]}
                     in the same rounds: the before of a change, next to its after [BASELINE]
  --algorithm NAME   Fulcrum's balancing algorithm (default round_robin) [ALGORITHM]
  --sticky           Fulcrum (not fulcrum-base) keeps clients on a server with sticky: { cookie: SRV },
                     and every request carries the cookie naming one server, so each is read, taken out and
                     obeyed; with --baseline, what sticky costs against round robin [STICKY=1]
  --baseline-algorithm NAME
                     fulcrum-base's (default --algorithm's): with --baseline the same binary,
                     what an algorithm costs against round robin in the same rounds
                     [BASELINE_ALGORITHM]
  --rounds N         interleaved rounds [ROUNDS] (default 3)
  --duration S       measured wrk run per proxy and round, e.g. 10s, 1m [DURATION] (default 10s)
  --warmup S         unmeasured warm-up run before each measurement, 0 to skip [WARMUP] (default 2s)
  --connections C    wrk connections [CONNECTIONS] (default 50)
  --threads T        wrk threads [THREADS] (default 1)
  --only LIST        comma-separated subset of haproxy,nginx,fulcrum [ONLY] (default all three);
                     e.g. --only haproxy,nginx while Fulcrum does not build
  --no-install       never run apt-get; fail if haproxy/nginx/wrk are missing [NO_INSTALL=1]
                     (apt-get is skipped anyway when they are on PATH, /usr/sbin included)
  --pin              pin with taskset: proxies on CPU \$PROXY_CPU (0), wrk on CPU \$LOAD_CPU (1),
                     backends on CPU \$BACKEND_CPU (default: same as LOAD_CPU) [PIN=1]
  --tls              the proxies terminate HTTPS (one ECDSA P-256 certificate made for the run) [TLS=1]
  --new-connections  wrk sends Connection: close, so every request opens a new connection (with
                     --tls, a full handshake per request) [NEW_CONNECTIONS=1]
  --rate-limit       every proxy counts each request against a per-client-address rate limit set
                     too high to refuse any (its cost, not its refusals): a Fulcrum rate_limits
                     entry, an HAProxy stick table with http_req_rate, an nginx limit_req zone [RATE_LIMIT=1]
  --shared-limit     with --rate-limit: Fulcrum's (not fulcrum-base's) limit is shared: true, counted
                     in a redis-server (on the backends' CPU) through global.store; with --baseline,
                     what a shared limit costs against a local one [SHARED_LIMIT=1]
  --idle N           instead of wrk: hold N idle keep-alive client connections, each after one
                     request, and report each proxy's resident memory per connection
                     (bench/idle.py; with --tls, over HTTPS; with --h2, over HTTP/2) [IDLE]
  --h2               HTTP/2 instead of HTTP/1.1: h2load -c C -m M (C defaults to 20 here) with
                     prior knowledge (h2c), or with --tls over h2 by ALPN; p50/p99 come from
                     h2load's per-request log [H2=1]
  --streams M        h2load's concurrent streams per connection (default 10) [STREAMS]
  --tcp              the proxies' TCP modes (HAProxy mode tcp, nginx stream, Fulcrum mode: tcp) in
                     front of two redis-server backends; redis-benchmark -c C -t get (after a SET
                     warm-up) instead of wrk, its latency summary for p50/p99 [TCP=1]
  --requests N       GETs per measured redis-benchmark run with --tcp (default 300000) [TCP_REQUESTS]
  --upstream-h2      the backends speak HTTP/2 by prior knowledge (nginx listen … http2) and the proxies
                     HTTP/2 to them (HAProxy proto h2, Fulcrum protocol: h2c); nginx as a proxy cannot,
                     so it is left out. With --h2: the h2-to-h2 path [UPSTREAM_H2=1]
  --download SIZE    instead of wrk: one download of SIZE (e.g. 1g, 100m) per proxy and round with
                     curl, reporting the proxy's CPU time, throughput and peak resident memory
                     (VmHWM after a reset) [DOWNLOAD]
  --all              every scenario, one after the other, each a run of this script with the same
                     binaries and rounds: keep-alive, --tls, --new-connections (with and without
                     --tls), --h2, --h2 --tls, --download \$ALL_DOWNLOAD (1g), --idle \$ALL_IDLE
                     (5000), --idle --tls, --idle --h2 and --tcp; an overview of all of them, then their summaries,
                     in bench/out/<UTC timestamp>-all/summary.md [ALL=1]
  -h, --help         this help

Other environment variables: OUT_BASE (default bench/out), PROXY_CPU, LOAD_CPU, BACKEND_CPU,
NGINX_KEEPALIVE (nginx proxy's upstream keepalive cache size, default 64).

Examples:
  bench/run.sh                                   # everything, building Fulcrum first
  bench/run.sh --fulcrum .build/release/fulcrum --rounds 5 --pin
  bench/run.sh --only haproxy,nginx --rounds 1 --duration 3s
EOF
}

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() {
    printf 'bench: error: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------------------
# options

while (($#)); do
    opt=$1
    has_val=0
    val=
    if [[ $opt == --*=* ]]; then
        val=${opt#*=}
        opt=${opt%%=*}
        has_val=1
    fi
    case $opt in
    -h | --help)
        usage
        exit 0
        ;;
    --fulcrum | --baseline | --algorithm | --baseline-algorithm | --rounds | --duration | --warmup | --connections | --threads | --only | --idle | --streams | --download | --requests)
        if ((!has_val)); then
            (($# >= 2)) || die "$opt needs a value (see --help)"
            val=$2
            shift
        fi
        case $opt in
        --fulcrum) FULCRUM_BIN=$val ;;
        --baseline) BASELINE_BIN=$val ;;
        --algorithm) ALGORITHM=$val BASELINE_ALGORITHM=${BASELINE_ALGORITHM_GIVEN:-$val} ;;
        --baseline-algorithm) BASELINE_ALGORITHM=$val BASELINE_ALGORITHM_GIVEN=$val ;;
        --rounds) ROUNDS=$val ;;
        --duration) DURATION=$val ;;
        --warmup) WARMUP=$val ;;
        --connections) CONNECTIONS=$val CONNECTIONS_GIVEN=1 ;;
        --threads) THREADS=$val ;;
        --only) ONLY=$val ;;
        --idle) IDLE=$val ;;
        --streams) STREAMS=$val ;;
        --download) DOWNLOAD=$val ;;
        --requests) TCP_REQUESTS=$val ;;
        esac
        ;;
    --no-install | --pin | --tls | --new-connections | --rate-limit | --h2 | --all | --tcp | --upstream-h2 | --sticky | --shared-limit)
        ((!has_val)) || die "$opt takes no value"
        case $opt in
        --shared-limit) SHARED_LIMIT=1 ;;
        --sticky) STICKY=1 ;;
        --upstream-h2) UPSTREAM_H2=1 ;;
        --h2) H2=1 ;;
        --tcp) TCP=1 ;;
        --all) ALL=1 ;;
        --no-install) NO_INSTALL=1 ;;
        --pin) PIN=1 ;;
        --tls) TLS=1 ;;
        --new-connections) NEW_CONNECTIONS=1 ;;
        --rate-limit) RATE_LIMIT=1 ;;
        esac
        ;;
    *) die "unknown argument: $opt (see --help)" ;;
    esac
    shift
done

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
is_uint "$ROUNDS" && ((ROUNDS >= 1)) || die "--rounds must be a positive integer, got '$ROUNDS'"
is_uint "$CONNECTIONS" && ((CONNECTIONS >= 1)) || die "--connections must be a positive integer, got '$CONNECTIONS'"
is_uint "$THREADS" && ((THREADS >= 1)) || die "--threads must be a positive integer, got '$THREADS'"
((CONNECTIONS >= THREADS)) || die "--connections ($CONNECTIONS) must be >= --threads ($THREADS) for wrk"
[[ $DURATION =~ ^[0-9]+[smh]?$ && ! $DURATION =~ ^0+[smh]?$ ]] || die "--duration must look like 10, 10s, 2m or 1h, got '$DURATION'"
[[ $WARMUP =~ ^[0-9]+[smh]?$ ]] || die "--warmup must look like 0, 2, 2s or 1m, got '$WARMUP'"
[[ $DURATION =~ [smh]$ ]] || DURATION+=s
[[ $WARMUP =~ [smh]$ ]] || WARMUP+=s
[[ $WARMUP =~ ^0+s$ ]] && WARMUP=0
[[ $NO_INSTALL =~ ^[01]$ ]] || die "NO_INSTALL must be 0 or 1"
[[ $PIN =~ ^[01]$ ]] || die "PIN must be 0 or 1"
[[ $TLS =~ ^[01]$ ]] || die "TLS must be 0 or 1"
[[ $NEW_CONNECTIONS =~ ^[01]$ ]] || die "NEW_CONNECTIONS must be 0 or 1"
[[ $RATE_LIMIT =~ ^[01]$ ]] || die "RATE_LIMIT must be 0 or 1"
[[ $SHARED_LIMIT =~ ^[01]$ ]] || die "SHARED_LIMIT must be 0 or 1"
((!SHARED_LIMIT || RATE_LIMIT)) || die "--shared-limit shares --rate-limit's limit: give both"
[[ $H2 =~ ^[01]$ ]] || die "H2 must be 0 or 1"
[[ $ALL =~ ^[01]$ ]] || die "ALL must be 0 or 1"
[[ $TCP =~ ^[01]$ ]] || die "TCP must be 0 or 1"
[[ $UPSTREAM_H2 =~ ^[01]$ ]] || die "UPSTREAM_H2 must be 0 or 1"
is_uint "$TCP_REQUESTS" && ((TCP_REQUESTS >= 1000)) || die "--requests must be an integer of at least 1000, got '$TCP_REQUESTS'"
is_uint "$STREAMS" && ((STREAMS >= 1)) || die "--streams must be a positive integer, got '$STREAMS'"
is_uint "$IDLE" || die "--idle must be a number of connections, got '$IDLE'"
DOWNLOAD_BYTES=0
if [[ -n $DOWNLOAD ]]; then
    [[ ${DOWNLOAD,,} =~ ^([0-9]+)([kmg]?)$ ]] || die "--download must look like 1g, 100m or 4096, got '$DOWNLOAD'"
    DOWNLOAD_BYTES=${BASH_REMATCH[1]}
    case ${BASH_REMATCH[2]} in
    k) DOWNLOAD_BYTES=$((DOWNLOAD_BYTES << 10)) ;;
    m) DOWNLOAD_BYTES=$((DOWNLOAD_BYTES << 20)) ;;
    g) DOWNLOAD_BYTES=$((DOWNLOAD_BYTES << 30)) ;;
    esac
    ((DOWNLOAD_BYTES > 0)) || die "--download must be more than 0 bytes"
fi
# (--idle with --h2 holds idle HTTP/2 connections: one scenario.)
scenarios=$(((H2 && !IDLE) + NEW_CONNECTIONS + (IDLE > 0) + (DOWNLOAD_BYTES > 0) + TCP))
((scenarios <= 1)) || die "--h2, --new-connections, --idle, --download and --tcp are separate scenarios: give one (or --all)"
((!ALL || (scenarios == 0 && !TLS && !RATE_LIMIT))) ||
    die "--all runs every scenario itself: give it no --tls, --h2, --new-connections, --idle, --download, --tcp or --rate-limit"
((!TCP || (!TLS && !RATE_LIMIT))) || die "--tcp relays plain TCP: it takes no --tls or --rate-limit"
((!UPSTREAM_H2 || (!TCP && !IDLE && !DOWNLOAD_BYTES && !ALL))) ||
    die "--upstream-h2 goes with keep-alive, --h2, --tls or --new-connections, not --tcp, --idle, --download or --all"
# h2load's usual load for this benchmark is -c20 -m10 (the issue's and HAProxy's own figures)
((H2 && !CONNECTIONS_GIVEN)) && CONNECTIONS=20
MODE=http
((TLS)) && MODE=https
((H2)) && MODE+=-h2
((NEW_CONNECTIONS)) && MODE+=-new-connections
is_uint "$NGINX_KEEPALIVE" && ((NGINX_KEEPALIVE >= 1)) || die "NGINX_KEEPALIVE must be a positive integer"
((IDLE)) && MODE+=-idle
((DOWNLOAD_BYTES)) && MODE+=-download
((TCP)) && MODE=tcp
((UPSTREAM_H2)) && MODE+=-upstream-h2
# Room for the idle probe's connections in every proxy (Fulcrum's `auto` cap follows the
# descriptor limit, raised here for all of them).
MAXCONN=$((IDLE + 1000 > 4096 ? IDLE + 1000 : 4096))
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
((!IDLE || 2 * MAXCONN + 100 <= $(ulimit -n))) ||
    die "--idle $IDLE needs $((2 * MAXCONN + 100)) descriptors; ulimit -n allows $(ulimit -n)"

SELECTED=()
IFS=, read -r -a only_list <<<"$ONLY"
[[ -n $BASELINE_BIN ]] && only_list+=(fulcrum-base)
if ((UPSTREAM_H2)); then
    # nginx proxies to servers over HTTP/1.1 only (grpc_pass aside).
    kept=()
    for p in "${only_list[@]}"; do [[ $p == nginx ]] || kept+=("$p"); done
    only_list=("${kept[@]}")
fi
for p in "${only_list[@]}"; do
    [[ -n ${PROXY_PORT[$p]+x} ]] || die "--only: unknown proxy '$p' (choose from haproxy,nginx,fulcrum)"
done
for p in "${ALL_PROXIES[@]}"; do # canonical order, duplicates dropped
    for q in "${only_list[@]}"; do
        if [[ $p == "$q" ]]; then
            SELECTED+=("$p")
            break
        fi
    done
done
((${#SELECTED[@]})) || die "--only selects no proxy"
SELECTED_CSV=$(IFS=, && echo "${SELECTED[*]}")
selected() {
    local p
    for p in "${SELECTED[@]}"; do [[ $p == "$1" ]] && return 0; done
    return 1
}

# ---------------------------------------------------------------------------
# prerequisites: Fulcrum binary first (the likeliest failure), then packages

command -v python3 >/dev/null || die "python3 is required (bench/report.py)"

if selected fulcrum; then
    if [[ -n $FULCRUM_BIN ]]; then
        [[ -e $FULCRUM_BIN ]] || die "Fulcrum binary '$FULCRUM_BIN' does not exist.
  Build it with \`swift build -c release --product fulcrum\` (then --fulcrum .build/release/fulcrum),
  or leave Fulcrum out: bench/run.sh --only haproxy,nginx"
        [[ -f $FULCRUM_BIN && -x $FULCRUM_BIN ]] || die "Fulcrum binary '$FULCRUM_BIN' is not an executable file"
    else
        command -v swift >/dev/null || die "no --fulcrum PATH given and \`swift\` is not on PATH, so Fulcrum cannot be built.
  Pass --fulcrum PATH, or leave Fulcrum out: bench/run.sh --only haproxy,nginx"
        # The production build: exclusivity checks off in the dependencies too (Fulcrum's own
        # hot-path targets already build that way); see bench/README.md.
        build_cmd=(swift build -c release --product fulcrum --scratch-path .build-bench -Xswiftc -enforce-exclusivity=unchecked)
        log "building Fulcrum: (cd $REPO_ROOT && ${build_cmd[*]})"
        (cd "$REPO_ROOT" && "${build_cmd[@]}") ||
            die "\`${build_cmd[*]}\` failed (see above).
  Fix the build, pass --fulcrum PATH, or leave Fulcrum out: bench/run.sh --only haproxy,nginx"
        FULCRUM_BIN=$REPO_ROOT/.build-bench/release/fulcrum
        [[ -x $FULCRUM_BIN ]] || die "the build succeeded but $FULCRUM_BIN is missing"
    fi
    FULCRUM_BIN=$(realpath "$FULCRUM_BIN")
fi

if selected fulcrum-base; then
    [[ -n $BASELINE_BIN ]] || die "fulcrum-base is measured only with --baseline PATH"
    [[ -f $BASELINE_BIN && -x $BASELINE_BIN ]] || die "baseline binary '$BASELINE_BIN' is not an executable file"
    BASELINE_BIN=$(realpath "$BASELINE_BIN")
fi

# --all: each scenario is a run of this script with the same binaries (built once, above) and
# settings; their Markdown summaries are joined into one file.
if ((ALL)); then
    ALL_DIR=$OUT_BASE/$(date -u +%Y%m%dT%H%M%SZ)-all
    mkdir -p "$ALL_DIR"
    common_args=(--only "$ONLY" --rounds "$ROUNDS" --duration "$DURATION" --warmup "$WARMUP" --threads "$THREADS")
    ((CONNECTIONS_GIVEN)) && common_args+=(--connections "$CONNECTIONS")
    selected fulcrum && common_args+=(--fulcrum "$FULCRUM_BIN")
    [[ -n $BASELINE_BIN ]] && common_args+=(--baseline "$BASELINE_BIN")
    ((NO_INSTALL)) && common_args+=(--no-install)
    ((PIN)) && common_args+=(--pin)
    scenario_args=(
        "" "--tls" "--new-connections" "--new-connections --tls" "--h2" "--h2 --tls"
        "--download $ALL_DOWNLOAD" "--idle $ALL_IDLE" "--idle $ALL_IDLE --tls" "--idle $ALL_IDLE --h2" "--tcp"
    )
    runs=()
    : >"$ALL_DIR/scenarios.md"
    for extra in "${scenario_args[@]}"; do
        read -r -a extra_args <<<"$extra"
        log "--all: bench/run.sh ${extra:-(keep-alive)}"
        "${BASH_SOURCE[0]}" "${common_args[@]}" "${extra_args[@]}" ||
            die "the scenario '${extra:-keep-alive}' failed; summaries so far: $ALL_DIR/scenarios.md"
        runs+=("$(realpath "$OUT_BASE/latest")")
        { cat "${runs[-1]}/summary.md" && echo; } >>"$ALL_DIR/scenarios.md"
    done
    "${REPORT[@]}" overview --markdown-out "$ALL_DIR/overview.md" "${runs[@]}" >/dev/null
    { cat "$ALL_DIR/overview.md" && echo && cat "$ALL_DIR/scenarios.md"; } >"$ALL_DIR/summary.md"
    echo "----- 8< ----- Markdown for bench/RESULTS.md -----"
    cat "$ALL_DIR/summary.md"
    echo "----- >8 ------------------------------------------"
    log "all scenarios: $ALL_DIR/summary.md"
    exit 0
fi

need_tools=(nginx wrk)
if ((TCP)); then
    need_tools=(redis-server redis-benchmark redis-cli)
    selected nginx && need_tools+=(nginx)
fi
((TLS)) && need_tools+=(openssl)
((SHARED_LIMIT)) && need_tools+=(redis-server redis-cli)
((H2 || UPSTREAM_H2)) && need_tools+=(h2load)
((DOWNLOAD_BYTES)) && need_tools+=(curl)
selected haproxy && need_tools+=(haproxy)
missing_tools() {
    local t
    for t in "${need_tools[@]}"; do command -v "$t" >/dev/null || printf '%s ' "$t"; done
}
missing=$(missing_tools)
if [[ -n $missing ]]; then
    ((!NO_INSTALL)) || die "missing: $missing(--no-install given). Install them: apt-get install -y haproxy nginx wrk nghttp2-client curl redis-server redis-tools"
    command -v apt-get >/dev/null || die "missing: $missing and apt-get is not available; install haproxy, nginx and wrk yourself"
    sudo_cmd=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || die "missing: $missing; need root or sudo to apt-get install them"
        sudo_cmd=(sudo)
    fi
    log "installing haproxy nginx wrk nghttp2-client curl redis-server redis-tools (missing: $missing)"
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y haproxy nginx wrk nghttp2-client curl redis-server redis-tools
    missing=$(missing_tools)
    [[ -z $missing ]] || die "still missing after apt-get install: $missing"
fi

# --tcp: nginx proxies TCP with its stream module, which Debian builds as a module of its own.
NGINX_STREAM_MODULE=
if ((TCP)) && selected nginx && nginx -V 2>&1 | grep -q -- '--with-stream=dynamic'; then
    module=/usr/lib/nginx/modules/ngx_stream_module.so
    if [[ ! -f $module ]] && ((!NO_INSTALL)) && command -v apt-get >/dev/null; then
        log "installing libnginx-mod-stream (nginx's stream module)"
        ${sudo_cmd[@]+"${sudo_cmd[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y libnginx-mod-stream ||
            die "libnginx-mod-stream could not be installed; leave nginx out: --only haproxy,fulcrum"
    fi
    [[ -f $module ]] || die "nginx's stream module ($module) is missing: apt-get install libnginx-mod-stream, or --only haproxy,fulcrum"
    NGINX_STREAM_MODULE="load_module $module;"
fi

if ((PIN)); then
    command -v taskset >/dev/null || die "--pin needs taskset (util-linux)"
    for c in "$PROXY_CPU" "$LOAD_CPU" "$BACKEND_CPU"; do
        taskset -c "$c" true 2>/dev/null || die "--pin: cannot run on CPU $c (this machine has $(nproc) CPU(s) available)"
    done
fi

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ports=("$BACKEND1_PORT" "$BACKEND2_PORT")
for p in "${SELECTED[@]}"; do ports+=("${PROXY_PORT[$p]}"); done
for port in "${ports[@]}"; do
    ! port_in_use "$port" || die "127.0.0.1:$port is already in use (a leftover benchmark process?)"
done

# ---------------------------------------------------------------------------
# run directories, process management, cleanup

RUN_ID=$(date -u +%Y%m%dT%H%M%SZ)
OUT_DIR=$OUT_BASE/$RUN_ID
mkdir -p "$OUT_DIR"
ln -sfn "$RUN_ID" "$OUT_BASE/latest"
RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/fulcrum-bench.XXXXXX") # no spaces: paths go into nginx configs

STARTED=() # root PIDs of everything we started; each is its own session/process group
declare -A NAME_OF=()

is_alive() { # PID: running and not a zombie
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    local pid all=() tree
    for pid in "${STARTED[@]}"; do
        tree=$("${REPORT[@]}" tree "$pid" 2>/dev/null)
        all+=($tree)
        kill -TERM -- "-$pid" 2>/dev/null # the whole process group ...
        [[ -n $tree ]] && kill -TERM $tree 2>/dev/null # ... and descendants that left it
    done
    if ((${#all[@]})); then
        local deadline=$((SECONDS + 5)) left
        while ((SECONDS < deadline)); do
            left=0
            for pid in "${all[@]}"; do is_alive "$pid" && left=1; done
            ((left)) || break
            sleep 0.1
        done
        for pid in "${all[@]}"; do
            if is_alive "$pid"; then
                log "process $pid did not stop on SIGTERM, sending SIGKILL"
                kill -KILL "$pid" 2>/dev/null
            fi
        done
    fi
    wait 2>/dev/null
    if [[ -d ${RUN_DIR:-} ]]; then
        mkdir -p "$OUT_DIR/logs" "$OUT_DIR/configs"
        cp "$RUN_DIR"/*.log "$OUT_DIR/logs/" 2>/dev/null
        cp "$RUN_DIR"/*.conf "$RUN_DIR"/*.cfg "$RUN_DIR"/*.yaml "$OUT_DIR/configs/" 2>/dev/null
        rm -rf "$RUN_DIR"
    fi
    ((rc == 0)) || log "failed (exit $rc); logs and raw output in $OUT_DIR"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

render() { # TEMPLATE OUTPUT KEY=VALUE...
    local text kv
    text=$(<"$1")
    for kv in "${@:3}"; do text=${text//"@${kv%%=*}@"/"${kv#*=}"}; done
    [[ ! $text =~ @[A-Z0-9_]+@ ]] || die "$1: unfilled placeholder ${BASH_REMATCH[0]}"
    printf '%s\n' "$text" >"$2"
}

start() { # NAME CPU COMMAND...   sets LAST_PID
    local name=$1 cpu=$2 pre=(setsid)
    shift 2
    ((PIN)) && pre+=(taskset -c "$cpu")
    log "starting $name: $*"
    "${pre[@]}" "$@" >"$RUN_DIR/$name.log" 2>&1 </dev/null &
    LAST_PID=$!
    STARTED+=("$LAST_PID")
    NAME_OF[$LAST_PID]=$name
}

fail_process() { # PID WHAT
    local name=${NAME_OF[$1]}
    {
        echo "--- last lines of $name's output ($RUN_DIR/$name.log):"
        tail -n 30 "$RUN_DIR/$name.log" 2>/dev/null
        if [[ -s $RUN_DIR/$name.error.log ]]; then
            echo "--- $RUN_DIR/$name.error.log:"
            tail -n 30 "$RUN_DIR/$name.error.log"
        fi
        echo "---"
    } >&2
    die "$name (pid $1) $2"
}

# One request answered 200: over HTTP/1.1, or with h2 over HTTP/2 (a proxy under --h2: nginx's
# h2c port speaks nothing else).
probe() { # PORT http|https|h2|h2c|redis
    case $2 in
    redis) [[ $(timeout 3 redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null) == PONG ]] ;;
    h2c) timeout 3 h2load -n 1 -c 1 "http://127.0.0.1:$1/" 2>/dev/null | grep -q 'requests: 1 total.* 1 succeeded' ;;
    h2) timeout 3 h2load -n 1 -c 1 "$PROXY_SCHEME://127.0.0.1:$1/" 2>/dev/null | grep -q 'requests: 1 total.* 1 succeeded' ;;
    https) "${REPORT[@]}" probe "$1" --timeout 1 --tls ;;
    *) "${REPORT[@]}" probe "$1" --timeout 1 ;;
    esac
}

wait_ready() { # PID PORT http|https|h2|h2c|redis
    local deadline=$((SECONDS + 20))
    while ! probe "$2" "$3"; do
        is_alive "$1" || fail_process "$1" "exited during startup"
        ((SECONDS < deadline)) || fail_process "$1" "did not answer 200 on 127.0.0.1:$2 within 20s"
        sleep 0.2
    done
}

# ---------------------------------------------------------------------------
# configs and processes

user_directive=
((EUID == 0)) && user_directive="user $(id -un) $(id -gn);" # workers run as us, not nobody
nginx_e=()
nginx_help=$(nginx -h 2>&1) || true
[[ $nginx_help == *"-e filename"* ]] && nginx_e=(-e) # nginx >= 1.19.5

start_nginx() { # NAME CPU CONF
    mkdir -p "$RUN_DIR/$1-tmp"
    if ((${#nginx_e[@]})); then
        start "$1" "$2" nginx -p "$RUN_DIR/" -e "$RUN_DIR/$1.error.log" -c "$3"
    else
        start "$1" "$2" nginx -p "$RUN_DIR/" -c "$3"
    fi
}

# --download: the backends serve /download, a sparse file of that size (sendfile, no disk reads).
download_location=
if ((DOWNLOAD_BYTES)); then
    truncate -s "$DOWNLOAD_BYTES" "$RUN_DIR/download.bin"
    download_location="location = /download { alias $RUN_DIR/download.bin; default_type application/octet-stream; }"
fi

declare -A PROXY_PID=()
BACKEND_PIDS=()
BACKEND_PROBE=http
((TCP)) && BACKEND_PROBE=redis
# --upstream-h2: the backends speak HTTP/2 by prior knowledge, and the proxies to them.
BACKEND_LISTEN_EXTRA= SERVER_EXTRA_HAPROXY= SERVER_EXTRA_FULCRUM=
if ((UPSTREAM_H2)); then
    BACKEND_PROBE=h2c BACKEND_LISTEN_EXTRA=" http2"
    SERVER_EXTRA_HAPROXY=" proto h2" SERVER_EXTRA_FULCRUM=", protocol: h2c"
fi
for i in 1 2; do
    port_var=BACKEND${i}_PORT
    if ((TCP)); then
        start "backend$i" "$BACKEND_CPU" redis-server --bind 127.0.0.1 --port "${!port_var}" --save "" \
            --appendonly no --protected-mode no --dir "$RUN_DIR"
    else
        render "$BENCH_DIR/nginx-backend.conf.tmpl" "$RUN_DIR/backend$i.conf" \
            "USER_DIRECTIVE=$user_directive" "RUN_DIR=$RUN_DIR" "NAME=backend$i" "PORT=${!port_var}" \
            "DOWNLOAD_LOCATION=$download_location" "LISTEN_EXTRA=$BACKEND_LISTEN_EXTRA"
        start_nginx "backend$i" "$BACKEND_CPU" "$RUN_DIR/backend$i.conf"
    fi
    BACKEND_PIDS+=("$LAST_PID")
done
if ((SHARED_LIMIT)); then
    # Not a backend: its CPU is not in the backends' columns (the proxy pays for the calls).
    start store "$BACKEND_CPU" redis-server --bind 127.0.0.1 --port "$STORE_PORT" --save "" --appendonly no --dir "$RUN_DIR"
    wait_ready "$LAST_PID" "$STORE_PORT" redis
fi
wait_ready "${BACKEND_PIDS[0]}" "$BACKEND1_PORT" "$BACKEND_PROBE"
wait_ready "${BACKEND_PIDS[1]}" "$BACKEND2_PORT" "$BACKEND_PROBE"

# With --tls, every proxy terminates TLS with the same ECDSA P-256 certificate (made here).
HAPROXY_TLS= NGINX_TLS= NGINX_TLS_LINES= FULCRUM_TLS=
PROXY_SCHEME=http PROXY_PROBE=http
((TLS)) && PROXY_SCHEME=https PROXY_PROBE=https
((H2)) && PROXY_PROBE=h2
((TCP)) && PROXY_PROBE=redis
# With --h2 and no TLS, HTTP/2 by prior knowledge: HAProxy detects the preface on its plain bind,
# nginx's port speaks only h2c, Fulcrum needs h2c: true.
if ((H2 && !TLS)); then
    NGINX_TLS=" http2"
    FULCRUM_TLS="    h2c: true"
fi
if ((TLS)); then
    mkdir -p "$RUN_DIR/certs"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=localhost -addext subjectAltName=DNS:localhost \
        -keyout "$RUN_DIR/certs/key.pem" -out "$RUN_DIR/certs/cert.pem" 2>"$RUN_DIR/openssl.log" ||
        die "openssl could not make the test certificate: $(cat "$RUN_DIR/openssl.log")"
    cat "$RUN_DIR/certs/cert.pem" "$RUN_DIR/certs/key.pem" >"$RUN_DIR/certs/bench.pem"
    rm "$RUN_DIR/certs/cert.pem" "$RUN_DIR/certs/key.pem"
    HAPROXY_TLS=" ssl crt $RUN_DIR/certs/bench.pem"
    NGINX_TLS=" ssl"
    # HTTP/2 by ALPN: Fulcrum offers h2 by default, HAProxy and nginx when told.
    if ((H2)); then
        HAPROXY_TLS+=" alpn h2,http/1.1"
        NGINX_TLS+=" http2"
    fi
    NGINX_TLS_LINES="ssl_certificate $RUN_DIR/certs/bench.pem; ssl_certificate_key $RUN_DIR/certs/bench.pem;"
    FULCRUM_TLS="    tls: { certificates: $RUN_DIR/certs }"
fi

# --rate-limit: the same limit in each proxy's terms, one million requests a second per client
# address, which the benchmark's one client never reaches.
HAPROXY_RATE_LIMIT= NGINX_RATE_LIMIT= NGINX_RATE_LIMIT_ZONE= FULCRUM_RATE_LIMIT=
if ((RATE_LIMIT)); then
    HAPROXY_RATE_LIMIT=$'    stick-table type ip size 100k expire 10s store http_req_rate(1s)\n    http-request track-sc0 src\n    http-request deny deny_status 429 if { sc_http_req_rate(0) gt 1000000 }'
    NGINX_RATE_LIMIT_ZONE='limit_req_zone $binary_remote_addr zone=perip:10m rate=1000000r/s;'
    NGINX_RATE_LIMIT='limit_req zone=perip burst=1000000 nodelay;'
    FULCRUM_RATE_LIMIT='    rate_limits: { per_ip: { key: src, rate: 1000000/1s } }'
fi
# --shared-limit: Fulcrum's limit is counted in a redis-server (fulcrum-base's stays local).
FULCRUM_SHARED_LIMIT= FULCRUM_STORE=
if ((SHARED_LIMIT)); then
    FULCRUM_SHARED_LIMIT='    rate_limits: { per_ip: { key: src, rate: 1000000/1s, shared: true } }'
    FULCRUM_STORE="  store: { redis: \"redis://127.0.0.1:$STORE_PORT/0\", timeout: 50ms }"
fi

# --sticky: Fulcrum's backend keeps clients on their server by cookie.
FULCRUM_STICKY=
((STICKY)) && FULCRUM_STICKY='    sticky: { cookie: SRV }'

common=("RUN_DIR=$RUN_DIR" "BACKEND1_PORT=$BACKEND1_PORT" "BACKEND2_PORT=$BACKEND2_PORT" "MAXCONN=$MAXCONN" "NOFILE=$(ulimit -n)")
# --tcp: each proxy's TCP-mode configuration (bench/*-tcp.*.tmpl) instead.
TEMPLATE_SUFFIX=
((TCP)) && TEMPLATE_SUFFIX=-tcp
((!(STICKY && TCP))) || die "--sticky is for HTTP (a TCP backend has no cookies)"
start_proxy() { # PROXY: renders its configuration, starts it, waits until it answers
    local proxy=$1 port=${PROXY_PORT[$1]}
    case $proxy in
    haproxy)
        render "$BENCH_DIR/haproxy$TEMPLATE_SUFFIX.cfg.tmpl" "$RUN_DIR/haproxy.cfg" "${common[@]}" "PORT=$port" \
            "TLS=$HAPROXY_TLS" "RATE_LIMIT=$HAPROXY_RATE_LIMIT" "SERVER_EXTRA=$SERVER_EXTRA_HAPROXY"
        start haproxy "$PROXY_CPU" haproxy -db -f "$RUN_DIR/haproxy.cfg"
        ;;
    nginx)
        render "$BENCH_DIR/nginx-proxy$TEMPLATE_SUFFIX.conf.tmpl" "$RUN_DIR/nginx-proxy.conf" "${common[@]}" \
            "USER_DIRECTIVE=$user_directive" "PORT=$port" "NGINX_KEEPALIVE=$NGINX_KEEPALIVE" \
            "TLS=$NGINX_TLS" "TLS_LINES=$NGINX_TLS_LINES" "STREAM_MODULE=$NGINX_STREAM_MODULE" \
            "RATE_LIMIT_ZONE=$NGINX_RATE_LIMIT_ZONE" "RATE_LIMIT=$NGINX_RATE_LIMIT"
        start_nginx nginx-proxy "$PROXY_CPU" "$RUN_DIR/nginx-proxy.conf"
        ;;
    fulcrum | fulcrum-base)
        local binary=$FULCRUM_BIN algorithm=$ALGORITHM backend_extra=$FULCRUM_STICKY
        local rate_limit=${FULCRUM_SHARED_LIMIT:-$FULCRUM_RATE_LIMIT} store=$FULCRUM_STORE
        [[ $proxy == fulcrum-base ]] && binary=$BASELINE_BIN algorithm=$BASELINE_ALGORITHM backend_extra= \
            rate_limit=$FULCRUM_RATE_LIMIT store=
        render "$BENCH_DIR/fulcrum$TEMPLATE_SUFFIX.yaml.tmpl" "$RUN_DIR/$proxy.yaml" "${common[@]}" "PORT=$port" \
            "TLS=$FULCRUM_TLS" "RATE_LIMIT=$rate_limit" "SERVER_EXTRA=$SERVER_EXTRA_FULCRUM" "ALGORITHM=$algorithm" \
            "BACKEND_EXTRA=$backend_extra" "GLOBAL_EXTRA=$store"
        start "$proxy" "$PROXY_CPU" "$binary" run -c "$RUN_DIR/$proxy.yaml"
        ;;
    esac
    PROXY_PID[$proxy]=$LAST_PID
    wait_ready "$LAST_PID" "$port" "$PROXY_PROBE"
}

# Stops one proxy (--idle restarts them between rounds: memory freed by one round's
# connections would be reused by the next, which would then measure nothing).
stop_proxy() { # PROXY
    local pid=${PROXY_PID[$1]} deadline=$((SECONDS + 10))
    kill -TERM -- "-$pid" 2>/dev/null
    while is_alive "$pid"; do
        ((SECONDS < deadline)) || kill -KILL -- "-$pid" 2>/dev/null
        sleep 0.1
    done
    wait "$pid" 2>/dev/null || true
}

for proxy in "${SELECTED[@]}"; do start_proxy "$proxy"; done
# --sticky: the cookie a new client gets from Fulcrum, which every request then carries.
STICKY_COOKIE=
if ((STICKY)); then
    selected fulcrum || die "--sticky measures Fulcrum: --only must include fulcrum"
    STICKY_COOKIE=$(curl -sk -o /dev/null -D - "$PROXY_SCHEME://127.0.0.1:${PROXY_PORT[fulcrum]}/" |
        sed -n 's/^[Ss]et-[Cc]ookie: \(SRV=[0-9a-f]*\).*/\1/p')
    [[ -n $STICKY_COOKIE ]] || die "--sticky: Fulcrum set no SRV cookie"
    log "every request carries Cookie: $STICKY_COOKIE"
fi

# ---------------------------------------------------------------------------
# metadata

first_line() { local s; s=$("$@" 2>&1) || true; printf '%s' "${s%%$'\n'*}"; }
v_nginx=$(first_line nginx -v)
v_nginx=${v_nginx##*/}
v_wrk=$(first_line wrk -v)
v_wrk=${v_wrk#wrk }
v_wrk=${v_wrk%% *}
versions=("nginx=$v_nginx" "wrk=$v_wrk")
if ((H2)); then
    v_h2load=$(first_line h2load --version)
    versions=("nginx=$v_nginx" "h2load=${v_h2load##*/}")
elif ((DOWNLOAD_BYTES)); then
    v_curl=$(first_line curl --version)
    v_curl=${v_curl#curl }
    versions=("nginx=$v_nginx" "curl=${v_curl%% *}")
elif ((IDLE)); then
    versions=("nginx=$v_nginx")
elif ((TCP)); then
    v_redis=$(first_line redis-benchmark --version)
    versions=("nginx=$v_nginx" "redis-benchmark=${v_redis#redis-benchmark }")
fi
if selected haproxy; then
    v_haproxy=$(first_line haproxy -v)
    v_haproxy=${v_haproxy#HAProxy version }
    versions=("haproxy=${v_haproxy%% *}" "${versions[@]}")
fi
if selected fulcrum; then
    v_fulcrum=$(timeout 5 "$FULCRUM_BIN" --version 2>/dev/null </dev/null) || v_fulcrum=
    v_fulcrum=${v_fulcrum%%$'\n'*}
    if v_git=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null); then
        git -C "$REPO_ROOT" diff --quiet HEAD -- . ':!bench' 2>/dev/null || v_git+=+dirty
    else
        v_git="no commit"
    fi
    versions+=("fulcrum=${v_fulcrum:-unknown} (git $v_git)")
fi
# The effective settings as a command line (whether they came from flags or env vars).
cmdline="bench/run.sh --only $SELECTED_CSV --rounds $ROUNDS --duration $DURATION --warmup $WARMUP"
cmdline+=" --connections $CONNECTIONS --threads $THREADS"
selected fulcrum && cmdline+=" --fulcrum $(printf '%q' "$FULCRUM_BIN")"
selected fulcrum-base && cmdline+=" --baseline $(printf '%q' "$BASELINE_BIN")"
[[ $ALGORITHM != round_robin ]] && cmdline+=" --algorithm $ALGORITHM"
((STICKY)) && cmdline+=" --sticky"
selected fulcrum-base && [[ $BASELINE_ALGORITHM != "$ALGORITHM" ]] && cmdline+=" --baseline-algorithm $BASELINE_ALGORITHM"
((PIN)) && cmdline+=" --pin"
((TLS)) && cmdline+=" --tls"
((NEW_CONNECTIONS)) && cmdline+=" --new-connections"
((RATE_LIMIT)) && cmdline+=" --rate-limit"
((SHARED_LIMIT)) && cmdline+=" --shared-limit"
((IDLE)) && cmdline+=" --idle $IDLE"
((H2)) && cmdline+=" --h2 --streams $STREAMS"
((DOWNLOAD_BYTES)) && cmdline+=" --download $DOWNLOAD"
((TCP)) && cmdline+=" --tcp --requests $TCP_REQUESTS"
((UPSTREAM_H2)) && cmdline+=" --upstream-h2"
((NGINX_KEEPALIVE == 64)) || cmdline="NGINX_KEEPALIVE=$NGINX_KEEPALIVE $cmdline"
"${REPORT[@]}" meta --out "$OUT_DIR/meta.json" --rounds "$ROUNDS" --duration "$DURATION" \
    --warmup "$WARMUP" --connections "$CONNECTIONS" --threads "$THREADS" --streams "$((H2 ? STREAMS : 0))" \
    --only "$SELECTED_CSV" --pin "$PIN" --proxy-cpu "$PROXY_CPU" --load-cpu "$LOAD_CPU" --mode "$MODE" \
    "${versions[@]/#/--version=}" --command "$cmdline"

# ---------------------------------------------------------------------------
# measurements

CLK_TCK=$(getconf CLK_TCK)
RESULTS=$OUT_DIR/results.jsonl
: >"$RESULTS"
wrk_cmd=(wrk -t "$THREADS" -c "$CONNECTIONS")
# A new connection (with --tls, a full handshake) per request: the client asks to close each one.
((NEW_CONNECTIONS)) && wrk_cmd+=(-H "Connection: close")
((STICKY)) && wrk_cmd+=(-H "Cookie: $STICKY_COOKIE")
# --h2: h2load instead, and its per-request log for the latency percentiles.
((H2)) && wrk_cmd=(h2load -t "$THREADS" -c "$CONNECTIONS" -m "$STREAMS")
((H2 && STICKY)) && wrk_cmd+=(-H "Cookie: $STICKY_COOKIE")
# --tcp: redis-benchmark, measured on GETs; its warm-up is SETs (so the GETs find the key), a
# fifth as many. (It runs a number of requests, not a duration.)
((TCP)) && wrk_cmd=(redis-benchmark -h 127.0.0.1 -c "$CONNECTIONS")
((TCP && THREADS > 1)) && wrk_cmd+=(--threads "$THREADS")
wrk_name=${wrk_cmd[0]}
((PIN)) && wrk_cmd=(taskset -c "$LOAD_CPU" "${wrk_cmd[@]}")

log "output directory: $OUT_DIR"
if ((IDLE)); then
    IDLE_RESULTS=$OUT_DIR/idle.jsonl
    : >"$IDLE_RESULTS"
    for ((round = 1; round <= ROUNDS; round++)); do
        for proxy in "${SELECTED[@]}"; do
            if ((round > 1)); then
                stop_proxy "$proxy"
                start_proxy "$proxy"
            fi
            pid=${PROXY_PID[$proxy]}
            is_alive "$pid" || fail_process "$pid" "is no longer running"
            log "round $round/$ROUNDS $proxy: $IDLE idle connections"
            probe=(python3 "$BENCH_DIR/idle.py" --port "${PROXY_PORT[$proxy]}" --pid "$pid" --connections "$IDLE")
            ((TLS)) && probe+=(--tls)
            ((H2)) && probe+=(--h2)
            ((PIN)) && probe=(taskset -c "$LOAD_CPU" "${probe[@]}")
            line=$("${probe[@]}") || fail_process "$pid" "failed the idle probe"
            printf '{"round": %d, "proxy": "%s", "probe": %s}\n' "$round" "$proxy" "$line" >>"$IDLE_RESULTS"
            log "  $line"
        done
    done
    "${REPORT[@]}" idle-summary --results "$IDLE_RESULTS" --meta "$OUT_DIR/meta.json" --markdown-out "$OUT_DIR/summary.md"
    log "raw results: $OUT_DIR"
    exit 0
fi
if ((DOWNLOAD_BYTES)); then
    DOWNLOAD_RESULTS=$OUT_DIR/download.jsonl
    : >"$DOWNLOAD_RESULTS"
    curl_cmd=(curl --silent --show-error --insecure --output /dev/null --write-out '%{http_code} %{size_download}\n')
    ((PIN)) && curl_cmd=(taskset -c "$LOAD_CPU" "${curl_cmd[@]}")
    for ((round = 1; round <= ROUNDS; round++)); do
        for proxy in "${SELECTED[@]}"; do
            pid=${PROXY_PID[$proxy]}
            is_alive "$pid" || fail_process "$pid" "is no longer running"
            log "round $round/$ROUNDS $proxy: downloading $DOWNLOAD"
            tree=($("${REPORT[@]}" tree "$pid"))
            "${REPORT[@]}" reset-peak "${tree[@]}"
            read -r _ cpu0 < <("${REPORT[@]}" cpu "$pid")
            t0=$EPOCHREALTIME
            read -r status bytes < <("${curl_cmd[@]}" "$PROXY_SCHEME://127.0.0.1:${PROXY_PORT[$proxy]}/download") ||
                fail_process "$pid" "failed the download"
            t1=$EPOCHREALTIME
            read -r _ cpu1 < <("${REPORT[@]}" cpu "$pid")
            peak=$("${REPORT[@]}" peak "${tree[@]}")
            [[ $status == 200 && $bytes == "$DOWNLOAD_BYTES" ]] ||
                fail_process "$pid" "answered $status with $bytes of $DOWNLOAD_BYTES bytes"
            printf '{"round": %d, "proxy": "%s", "bytes": %d, "wall_us": %d, "cpu_ticks": %d, "clk_tck": %d, "peak_rss_kib": %d}\n' \
                "$round" "$proxy" "$bytes" $((${t1/./} - ${t0/./})) $((cpu1 - cpu0)) "$CLK_TCK" "$peak" >>"$DOWNLOAD_RESULTS"
        done
    done
    "${REPORT[@]}" download-summary --results "$DOWNLOAD_RESULTS" --meta "$OUT_DIR/meta.json" --markdown-out "$OUT_DIR/summary.md"
    log "raw results: $OUT_DIR"
    exit 0
fi
read -r load1 _ </proc/loadavg
if awk -v l="$load1" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
    log "WARNING: load average is $load1 on $(nproc) CPU(s) before we start: other work is running, figures will be noisy"
fi
if ((TCP)); then
    log "$ROUNDS round(s) of: ${SELECTED[*]}; ${wrk_cmd[*]} -n $TCP_REQUESTS -t get (warm-up: SETs)$( ((PIN)) && echo ", pinned")"
else
    log "$ROUNDS round(s) of: ${SELECTED[*]}; $wrk_name -t $THREADS -c $CONNECTIONS$( ((H2)) && echo " -m $STREAMS") for $DURATION (warm-up $WARMUP)$( ((PIN)) && echo ", pinned")"
fi
for ((round = 1; round <= ROUNDS; round++)); do
    for proxy in "${SELECTED[@]}"; do
        pid=${PROXY_PID[$proxy]}
        url=$PROXY_SCHEME://127.0.0.1:${PROXY_PORT[$proxy]}/
        base=$OUT_DIR/round$round-$proxy
        is_alive "$pid" || fail_process "$pid" "is no longer running"

        if [[ $WARMUP != 0 ]]; then
            log "round $round/$ROUNDS $proxy: warm-up $WARMUP"
            if ((TCP)); then
                "${wrk_cmd[@]}" -p "${PROXY_PORT[$proxy]}" -n $((TCP_REQUESTS / 5)) -t set -q >"$base.warmup.txt" 2>&1
            elif ((H2)); then
                "${wrk_cmd[@]}" -D "$WARMUP" "$url" >"$base.warmup.txt" 2>&1
            else
                "${wrk_cmd[@]}" -d "$WARMUP" "$url" >"$base.warmup.txt" 2>&1
            fi || die "$wrk_name warm-up against $proxy failed: $(cat "$base.warmup.txt")"
        fi

        log "round $round/$ROUNDS $proxy: measuring $( ((TCP)) && echo "$TCP_REQUESTS GETs" || echo "$DURATION")"
        read -r _ cpu0 b1_0 b2_0 < <("${REPORT[@]}" cpu "$pid" "${BACKEND_PIDS[@]}")
        t0=$EPOCHREALTIME
        if ((TCP)); then
            "${wrk_cmd[@]}" -p "${PROXY_PORT[$proxy]}" -n "$TCP_REQUESTS" -t get >"$base.txt" 2>&1
        elif ((H2)); then
            "${wrk_cmd[@]}" -D "$DURATION" --log-file "$base.requests.tsv" "$url" >"$base.txt" 2>&1
        else
            "${wrk_cmd[@]}" -d "$DURATION" --latency "$url" >"$base.txt" 2>&1
        fi || die "$wrk_name against $proxy failed: $(cat "$base.txt")"
        t1=$EPOCHREALTIME
        read -r _ cpu1 b1_1 b2_1 < <("${REPORT[@]}" cpu "$pid" "${BACKEND_PIDS[@]}")
        is_alive "$pid" || fail_process "$pid" "died during the measurement"

        "${REPORT[@]}" record --results "$RESULTS" --round "$round" --proxy "$proxy" \
            --port "${PROXY_PORT[$proxy]}" --wrk "$base.txt" $( ((H2)) && echo --h2load-log "$base.requests.tsv") \
            $( ((TCP)) && echo --redis-benchmark) \
            --cpu-before "$cpu0" --cpu-after "$cpu1" --clk-tck "$CLK_TCK" \
            --wall-us $((${t1/./} - ${t0/./})) \
            --backend-cpu-ticks $((b1_1 - b1_0)) $((b2_1 - b2_0))
        rm -f "$base.requests.tsv" # h2load's per-request log: millions of lines, percentiles taken
    done
    echo
    "${REPORT[@]}" table --results "$RESULTS" --round "$round"
    echo
done

"${REPORT[@]}" summary --results "$RESULTS" --meta "$OUT_DIR/meta.json" \
    --markdown-out "$OUT_DIR/summary.md" --json-out "$OUT_DIR/summary.json"
selected fulcrum || echo "(Fulcrum not measured in this run: its column is pending.)"
log "raw results: $OUT_DIR"
