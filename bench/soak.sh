#!/usr/bin/env bash
# bench/soak.sh - mixed traffic and chaos against a real Fulcrum for N minutes, then a verdict.
#
# HTTP/1.1, HTTP/2 (h2c and TLS), TLS handshakes, WebSocket, large bodies, slow and malformed
# clients, while backends are killed and restarted, the configuration is reloaded (SIGHUP, a
# rewritten file) and servers are added, drained and removed over the admin API. Fulcrum's RSS
# and descriptors are sampled throughout. Exits 0 only when no failure was Fulcrum's and
# neither grew. See bench/README.md ("The soak") or `bench/soak.sh --help`.
set -euo pipefail
export LC_ALL=C
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ beside the scripts
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$BENCH_DIR/.." && pwd)

FULCRUM_BIN=${FULCRUM:-}
SECONDS_TOTAL=${SOAK_SECONDS:-600}
PORT_BASE=${PORT_BASE:-18500}
CHAOS_INTERVAL=${CHAOS_INTERVAL:-3.5}
NO_INSTALL=${NO_INSTALL:-0}
OUT_BASE=${OUT_BASE:-$BENCH_DIR/out}

usage() {
    cat <<EOF
Usage: bench/soak.sh [options]

Runs mixed traffic against \`fulcrum run\` on loopback for 10 minutes (by default) while
backends are killed and restarted, the configuration is reloaded and servers are changed over
the admin API; samples Fulcrum's RSS and open descriptors; prints requests per kind, failures
by cause (expected from the chaos, or Fulcrum's), the process figures and a verdict.
Exit status: 0 = PASS, 1 = FAIL (a failure Fulcrum caused, growth, a crash), 2 = could not run.

Options (environment variable in brackets):
  --minutes N        run the load for N minutes (default 10)
  --seconds N        run the load for N seconds [SOAK_SECONDS] (default 600)
  --fulcrum PATH     Fulcrum binary [FULCRUM]. Default: build it with
                     \`swift build -c release --product fulcrum\` and use .build/release/fulcrum
  --port-base P      ports P+1..P+19 on 127.0.0.1 [PORT_BASE] (default 18500)
  --chaos-interval S seconds between chaos steps [CHAOS_INTERVAL] (default 3.5)
  --no-install       never run apt-get [NO_INSTALL=1]
  -h, --help         this help

Needs python3 (standard library), h2load (nghttp2-client), curl and openssl; the script
installs the missing ones with apt-get unless --no-install. Raw data and logs go to
\$OUT_BASE/soak-<UTC timestamp>/ (default bench/out/), the report to its report.txt.
EOF
}

log() { printf '[soak %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() {
    printf 'soak: error: %s\n' "$*" >&2
    exit 2
}

while (($#)); do
    opt=$1 val=
    if [[ $opt == --*=* ]]; then
        val=${opt#*=} opt=${opt%%=*}
    elif [[ $opt =~ ^--(minutes|seconds|fulcrum|port-base|chaos-interval)$ ]]; then
        (($# >= 2)) || die "$opt needs a value (see --help)"
        val=$2
        shift
    fi
    case $opt in
    -h | --help) usage && exit 0 ;;
    --minutes) [[ $val =~ ^[0-9]+$ ]] && SECONDS_TOTAL=$((val * 60)) || die "--minutes wants a whole number, got '$val'" ;;
    --seconds) SECONDS_TOTAL=$val ;;
    --fulcrum) FULCRUM_BIN=$val ;;
    --port-base) PORT_BASE=$val ;;
    --chaos-interval) CHAOS_INTERVAL=$val ;;
    --no-install) NO_INSTALL=1 ;;
    *) die "unknown argument: $opt (see --help)" ;;
    esac
    shift
done
[[ $SECONDS_TOTAL =~ ^[0-9]+$ ]] && ((SECONDS_TOTAL >= 30)) || die "the soak needs at least 30 seconds, got '$SECONDS_TOTAL'"
[[ $PORT_BASE =~ ^[0-9]+$ ]] && ((PORT_BASE >= 1024 && PORT_BASE <= 65500)) || die "--port-base must be 1024-65500"
[[ $CHAOS_INTERVAL =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--chaos-interval wants seconds, got '$CHAOS_INTERVAL'"

# Tools first (cheap), then the binary (maybe a build).
missing=()
for tool in python3 h2load curl openssl; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]})); then
    ((!NO_INSTALL)) && command -v apt-get >/dev/null || die "missing: ${missing[*]} (apt-get install -y python3 nghttp2-client curl openssl)"
    sudo_cmd=()
    ((EUID == 0)) || sudo_cmd=(sudo)
    log "installing what is missing: ${missing[*]}"
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 nghttp2-client curl openssl
fi

if [[ -z $FULCRUM_BIN ]]; then
    command -v swift >/dev/null || die "no --fulcrum PATH and no swift to build one"
    log "building Fulcrum: swift build -c release --product fulcrum"
    (cd "$REPO_ROOT" && swift build -c release --product fulcrum) || die "the build failed"
    FULCRUM_BIN=$REPO_ROOT/.build/release/fulcrum
fi
[[ -f $FULCRUM_BIN && -x $FULCRUM_BIN ]] || die "Fulcrum binary '$FULCRUM_BIN' is not an executable file"

OUT_DIR=$OUT_BASE/soak-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT_DIR"
ln -sfn "$(basename "$OUT_DIR")" "$OUT_BASE/soak-latest"

# The driver and everything it starts share one process group (setsid): the trap ends the whole
# group whatever happens to the driver, so no backend or Fulcrum outlives the script.
driver=
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $driver ]] && kill -0 "$driver" 2>/dev/null; then
        kill -TERM -- "-$driver" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$driver" 2>/dev/null || break; sleep 0.1; done
    fi
    [[ -n $driver ]] && kill -KILL -- "-$driver" 2>/dev/null
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

command_line="bench/soak.sh --seconds $SECONDS_TOTAL --fulcrum $FULCRUM_BIN"
[[ $CHAOS_INTERVAL == 3.5 ]] || command_line+=" --chaos-interval $CHAOS_INTERVAL"
log "$SECONDS_TOTAL s with $FULCRUM_BIN; output in $OUT_DIR"
setsid python3 "$BENCH_DIR/soak.py" --fulcrum "$FULCRUM_BIN" --seconds "$SECONDS_TOTAL" --out "$OUT_DIR" \
    --port-base "$PORT_BASE" --chaos-interval "$CHAOS_INTERVAL" --command-line "$command_line" &
driver=$!
status=0
wait "$driver" || status=$?
driver_done=$driver
driver=
# Anything of the group still alive at this point is a leftover; end it.
kill -KILL -- "-$driver_done" 2>/dev/null || true
exit "$status"
