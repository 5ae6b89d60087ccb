#!/usr/bin/env bash
# Property-based API testing of the CRM API with Schemathesis (PyPI) against
# the spec it serves at /api/v1/openapi.json, with a valid admin token.
#
#   scripts/schemathesis.sh [extra schemathesis args…]
#
# Starts `aula crm serve` on a fresh database of the local PostgreSQL
# (from .aula/services.env), runs all checks, stops the server, drops the
# database. Exit status is Schemathesis's.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
[ -f .aula/services.env ] && set -a && . .aula/services.env && set +a
: "${AULA_CONN_CRM_DB:?run scripts/services up first}"
VENV="$HOME/.cache/aula/schemathesis-venv"
if [ ! -x "$VENV/bin/schemathesis" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q schemathesis
fi
# The CRM server alone (`aula crm serve` minus the rest of the binary); AULA_BIN=…/aula to use that.
if [ -n "${AULA_BIN:-}" ]; then SERVE=("$AULA_BIN" crm serve); else
  cargo build -q -p aula-crm --example serve ${CARGO_PROFILE_FLAG:-}
  SERVE=("${CARGO_TARGET_DIR:-$HOME/.cache/aula/target}/${PROFILE_DIR:-debug}/examples/serve")
fi
DB="aula_t_schemathesis_$$"
BASE="${AULA_CONN_CRM_DB%/*}"
createdb -h 127.0.0.1 -U postgres "$DB"
PORT="${PORT:-18080}"
export AULA_CONN_CRM_DB="$BASE/$DB" AULA_CRM_JWT_SECRET="schemathesis-secret-$(date +%s)-0123456789"
unset AULA_CONN_EVENTS  # the outbox is not under test here
"${SERVE[@]}" --listen "127.0.0.1:$PORT" >"/tmp/aula-crm-st-$$.log" 2>&1 &
PID=$!
cleanup() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; dropdb -h 127.0.0.1 -U postgres --if-exists "$DB"; }
trap cleanup EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/ready" >/dev/null && break; sleep 0.1; done
TOKEN="$(python3 - <<'PY'
import base64, hashlib, hmac, json, os, time
b = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=")
h = b(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
p = b(json.dumps({"sub": "schemathesis", "roles": ["admin"], "exp": int(time.time()) + 7200}).encode())
s = b(hmac.new(os.environ["AULA_CRM_JWT_SECRET"].encode(), h + b"." + p, hashlib.sha256).digest())
print((h + b"." + p + b"." + s).decode())
PY
)"
# Run from a scratch folder: Schemathesis keeps a cache in ./.schemathesis.
cd "$(mktemp -d)"
"$VENV/bin/schemathesis" run "http://127.0.0.1:$PORT/api/v1/openapi.json" \
  --header "Authorization: Bearer $TOKEN" \
  --checks all \
  --max-examples "${MAX_EXAMPLES:-50}" \
  "$@"
