#!/usr/bin/env bash
# Loopback benchmark of the CRM API with wrk (Debian package `wrk`):
# GET /api/v1/leads/{id} and POST /api/v1/leads, and the same reads/writes of
# crm.leads through PostgREST (Debian package `postgrest`) when it is installed,
# side by side in one run. wrk is closed-loop (the most the server can do); then
# `crm/examples/loadgen.rs` sends the same two requests open-loop at a fixed
# RATE and times each from its scheduled start, for the p99-at-1,000-req/s goal.
#
#   scripts/crm-bench.sh            # DURATION=15s CONNECTIONS=32 THREADS=2
#                                   # RATE=1000 LG_DURATION=15 LG_WARMUP=3 LG_CONNECTIONS=64
#
# Use a release build for real figures: CARGO_PROFILE_FLAG=--release PROFILE_DIR=release
# (or AULA_BIN=target/release/aula for the server).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
[ -f .aula/services.env ] && set -a && . .aula/services.env && set +a
: "${AULA_CONN_CRM_DB:?run scripts/services up first}"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }
# The CRM server alone (`aula crm serve` minus the rest of the binary); AULA_BIN=…/aula to use that.
EXAMPLES="${CARGO_TARGET_DIR:-$HOME/.cache/aula/target}/${PROFILE_DIR:-debug}/examples"
cargo build -q -p aula-crm --example serve --example loadgen ${CARGO_PROFILE_FLAG:-}
LOADGEN="$EXAMPLES/loadgen"
if [ -n "${AULA_BIN:-}" ]; then SERVE=("$AULA_BIN" crm serve); else SERVE=("$EXAMPLES/serve"); fi
DURATION="${DURATION:-15s}" CONNECTIONS="${CONNECTIONS:-32}" THREADS="${THREADS:-2}"
RATE="${RATE:-1000}" LG_DURATION="${LG_DURATION:-15}" LG_WARMUP="${LG_WARMUP:-3}" LG_CONNECTIONS="${LG_CONNECTIONS:-64}"
DB="aula_t_bench_$$"
BASE="${AULA_CONN_CRM_DB%/*}"
createdb -h 127.0.0.1 -U postgres "$DB"
PORT=18090 PGRST_PORT=18091
export AULA_CONN_CRM_DB="$BASE/$DB" AULA_CRM_JWT_SECRET="bench-secret-0123456789-abcdefghijkl"
unset AULA_CONN_EVENTS
WORK="$(mktemp -d)"
AULA_LOG=warn "${SERVE[@]}" --listen "127.0.0.1:$PORT" >"$WORK/aula.log" 2>&1 &
PIDS=($!)
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  dropdb -h 127.0.0.1 -U postgres --if-exists "$DB"; rm -rf "$WORK"
}
trap cleanup EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/ready" >/dev/null && break; sleep 0.1; done
TOKEN="$(python3 - <<'PY'
import base64, hashlib, hmac, json, os, time
b = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=")
h = b(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
p = b(json.dumps({"sub": "bench", "roles": ["admin"], "role": "postgres", "exp": int(time.time()) + 7200}).encode())
s = b(hmac.new(os.environ["AULA_CRM_JWT_SECRET"].encode(), h + b"." + p, hashlib.sha256).digest())
print((h + b"." + p + b"." + s).decode())
PY
)"
LEAD_ID="$(curl -fs -X POST "http://127.0.0.1:$PORT/api/v1/leads" -H "Authorization: Bearer $TOKEN" \
  -H 'content-type: application/json' -d '{"email":"bench@example.com","full_name":"Bench","source":"web"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
cat >"$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, nil, nil, string.format('{"email":"w%d-%d@example.com","full_name":"Bench","source":"ads"}', math.random(1, 1e9), counter))
end
LUA
run() { # name url [script]
  local out
  if [ -n "${3:-}" ]; then
    out="$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$3" "$2")"
  else
    out="$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: Bearer $TOKEN" "$2")"
  fi
  local rps p99 non2xx
  rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
  p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
  non2xx="$(awk '/Non-2xx/ {print $5}' <<<"$out")"
  printf '%-34s %12s req/s   p99 %-10s non-2xx %s\n' "$1" "$rps" "$p99" "${non2xx:-0}"
}
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION on loopback (${SERVE[*]})"
run "aula GET /api/v1/leads/{id}" "http://127.0.0.1:$PORT/api/v1/leads/$LEAD_ID"
run "aula POST /api/v1/leads" "http://127.0.0.1:$PORT/api/v1/leads" "$WORK/post.lua"
if command -v postgrest >/dev/null; then
  cat >"$WORK/pgrst.conf" <<CONF
db-uri = "$AULA_CONN_CRM_DB"
db-schemas = "crm"
db-anon-role = "postgres"
jwt-secret = "$AULA_CRM_JWT_SECRET"
server-port = $PGRST_PORT
CONF
  postgrest "$WORK/pgrst.conf" >"$WORK/pgrst.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PGRST_PORT/" >/dev/null && break; sleep 0.1; done
  sed -i "s#^wrk.headers\[\"Authorization\"\].*#&\nwrk.headers[\"Prefer\"] = \"return=representation\"#" "$WORK/post.lua"
  run "postgrest GET /leads?id=eq.{id}" "http://127.0.0.1:$PGRST_PORT/leads?id=eq.$LEAD_ID"
  run "postgrest POST /leads" "http://127.0.0.1:$PGRST_PORT/leads" "$WORK/post.lua"
else
  echo "postgrest: not installed (Debian package \`postgrest\`); skipped" >&2
fi

# Open loop at a fixed rate: p99 from each request's scheduled start (goal < 10 ms at 1,000 req/s).
fixed() { # name loadgen-args...
  local name="$1" out p99
  shift
  out="$("$LOADGEN" --rate "$RATE" --duration "$LG_DURATION" --warmup "$LG_WARMUP" \
    --connections "$LG_CONNECTIONS" -H "Authorization: Bearer $TOKEN" "$@")"
  sed 's/^/    /' <<<"$out"
  p99="$(awk '/from schedule/ { for (i = 1; i < NF; i++) if ($i == "p99") print $(i + 1) }' <<<"$out")"
  printf '%-34s p99 %s ms at %s req/s: %s\n' "$name" "$p99" "$RATE" \
    "$(awk -v p="$p99" 'BEGIN { print (p != "" && p < 10) ? "meets the < 10 ms goal" : "MISSES the < 10 ms goal" }')"
}
echo "loadgen open loop, $RATE req/s for ${LG_DURATION}s after ${LG_WARMUP}s warm-up, <= $LG_CONNECTIONS connections"
fixed "aula GET /api/v1/leads/{id}" --url "http://127.0.0.1:$PORT/api/v1/leads/$LEAD_ID"
fixed "aula POST /api/v1/leads" --url "http://127.0.0.1:$PORT/api/v1/leads" --method POST \
  --body "{\"email\":\"lg-$$-{n}@example.com\",\"full_name\":\"Bench\",\"source\":\"ads\"}"
