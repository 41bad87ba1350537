#!/usr/bin/env bash
# The admin API against its own OpenAPI document: starts two workers and `fulcrum run` with an
# admin listener and a token, then runs schemathesis (every check, every phase it can) against
# the /api/openapi.yaml the API serves, for a bounded time. Any finding fails the run.
#
# Usage: .ci/schemathesis.sh [FULCRUM_BINARY]
#   FULCRUM_BINARY       default: the debug build (`swift build --product fulcrum` first)
#   SCHEMATHESIS         the schemathesis command (default: on PATH, else the venv .ci/run
#                        makes in .build/schemathesis-venv)
#   SCHEMATHESIS_SECONDS the time budget of schemathesis' run (default 60)
#   SCHEMATHESIS_SEED    its random seed (default fixed, so a finding can be replayed)
# Without schemathesis it skips, saying so, and exits 0. Run it longer to look harder:
#   SCHEMATHESIS_SECONDS=600 .ci/schemathesis.sh
set -euo pipefail
cd "$(dirname "$0")/.."

schemathesis=${SCHEMATHESIS:-}
if [[ -z $schemathesis ]]; then
    if command -v schemathesis >/dev/null 2>&1; then
        schemathesis=$(command -v schemathesis)
    elif [[ -x .build/schemathesis-venv/bin/schemathesis ]]; then
        schemathesis=.build/schemathesis-venv/bin/schemathesis
    else
        echo "schemathesis: not installed (pip install schemathesis); the admin API's schema run is skipped" >&2
        exit 0
    fi
fi

fulcrum=${1:-}
if [[ -z $fulcrum ]]; then
    swift build --product fulcrum >/dev/null
    fulcrum="$(swift build --show-bin-path)/fulcrum"
fi

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# Four free loopback ports (bound, read, released: nothing else here takes them meanwhile).
read -r admin_port frontend_port worker1_port worker2_port < <(python3 -c '
import socket
sockets = [socket.socket() for _ in range(4)]
for s in sockets: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in sockets])
')

"$fulcrum" worker --host 127.0.0.1 --port "$worker1_port" --name web1 >"$work/worker1.log" 2>&1 &
pids+=($!)
"$fulcrum" worker --host 127.0.0.1 --port "$worker2_port" --name web2 >"$work/worker2.log" 2>&1 &
pids+=($!)

# The names are the OpenAPI document's examples, so schemathesis also reaches real resources.
cat >"$work/fulcrum.yaml" <<EOF
global:
  workers: 1
  log: { level: warning, access: off }
  admin: { listen: "127.0.0.1:$admin_port", token_env: FULCRUM_ADMIN_TOKEN }
frontends:
  - name: public
    listen: ["127.0.0.1:$frontend_port"]
    default_backend: web
backends:
  - name: web
    algorithm: adaptive
    servers:
      - { name: web1, address: "127.0.0.1:$worker1_port" }
      - { name: web2, address: "127.0.0.1:$worker2_port" }
  - name: static
    algorithm: round_robin
    servers:
      - { name: static1, address: "127.0.0.1:$worker1_port" }
EOF
token=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
FULCRUM_ADMIN_TOKEN=$token "$fulcrum" run -c "$work/fulcrum.yaml" --no-watch >"$work/fulcrum.log" 2>&1 &
fulcrum_pid=$!
pids+=("$fulcrum_pid")

base="http://127.0.0.1:$admin_port"
for _ in $(seq 100); do
    curl -fsS "$base/api/health" >/dev/null 2>&1 && break
    kill -0 "$fulcrum_pid" 2>/dev/null || break
    sleep 0.1
done
if ! curl -fsS "$base/api/health" >/dev/null 2>&1; then
    echo "schemathesis: fulcrum did not start; its log:" >&2
    cat "$work/fulcrum.log" >&2
    exit 1
fi

seconds=${SCHEMATHESIS_SECONDS:-60}
echo "schemathesis: $("$schemathesis" --version) against $base/api/openapi.yaml for ${seconds}s"
status=0
settings=$PWD/.ci/schemathesis.toml
[[ $schemathesis == */* ]] && schemathesis=$(cd "$(dirname "$schemathesis")" && pwd)/$(basename "$schemathesis")
# --max-time bounds the run; `timeout` only guards against a hang. It runs in the scratch
# directory: schemathesis and Hypothesis keep their databases in the working directory.
(cd "$work" && timeout --kill-after=10 $((seconds + 60)) "$schemathesis" --config-file "$settings" \
    run "$base/api/openapi.yaml" \
    --url "$base" \
    --header "Authorization: Bearer $token" \
    --checks all \
    --max-time "$seconds" \
    --seed "${SCHEMATHESIS_SEED:-15}" \
    --request-timeout 10 \
    --workers 1 \
    --no-color \
    --output-truncate false) || status=$?

if ! kill -0 "$fulcrum_pid" 2>/dev/null; then
    echo "schemathesis: fulcrum exited during the run; its log:" >&2
    cat "$work/fulcrum.log" >&2
    status=1
fi
if [[ $status -ne 0 ]]; then
    echo "schemathesis: findings against the admin API (exit $status); fulcrum's log:" >&2
    tail -n 50 "$work/fulcrum.log" >&2
    exit 1
fi
echo "schemathesis: no findings"
