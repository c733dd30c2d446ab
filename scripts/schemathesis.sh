#!/usr/bin/env bash
# The external checks of the OpenAPI document (CI runs this after `npm test`):
#   1. openapi-spec-validator and redocly's `spec` rules accept functions/openapi/openapi.json;
#   2. Schemathesis, with every check, fuzzes `npm start` (temp DATA_DIR, free port, over a real
#      `livekit-server --dev`) for the admin API and POST /v1/sessions, and fails on any 5xx or
#      schema breach.
# Everything after the installs runs in a network namespace of its own that holds nothing but
# loopback, so nothing it does (fuzzed MCP URLs resolved by the URL guard included) can reach
# anything but 127.0.0.1. Bounded: at most LKMCP_FUZZ_SECONDS (default 35) per run, two runs.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
cache="${LKMCP_CACHE:-$HOME/.cache/livekit-mcp-dispatch}"

if [[ "${LKMCP_IN_NETNS:-}" != 1 ]]; then
  bash scripts/validators/setup-venv.sh
  [[ -x "$cache/bin/livekit-server" ]] || bash scripts/e2e/install-livekit.sh
  export LKMCP_IN_NETNS=1
  if unshare --net true 2>/dev/null; then
    exec unshare --net -- bash "$0" "$@"
  elif unshare --user --map-root-user --net true 2>/dev/null; then
    exec unshare --user --map-root-user --net -- bash "$0" "$@"
  fi
  echo "schemathesis.sh: cannot make a loopback-only network namespace (unshare --net); not fuzzing" >&2
  exit 1
fi
ip link set lo up
py="$cache/validators-venv/bin/python"
doc="functions/openapi/openapi.json"
seconds="${LKMCP_FUZZ_SECONDS:-35}"
examples="${LKMCP_FUZZ_EXAMPLES:-25}"
seed="${LKMCP_FUZZ_SEED:-20261203}"

echo "== openapi-spec-validator"
"$py" -m openapi_spec_validator "$doc"
echo "== redocly lint (spec rules)"
# Telemetry and the update check off (the namespace has no route out anyway); its Node 20 banner is noise.
if ! lint="$(REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
  node_modules/.bin/redocly lint --config redocly.yaml --format stylish "$doc" 2>&1)"; then
  echo "$lint" >&2
  exit 1
fi
grep -vE '^\s*$|[║╔╚]' <<<"$lint"

work="$(mktemp -d "${TMPDIR:-/tmp}/lkmcp-schemathesis-XXXXXX")"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { "$py" -c 'import socket,sys; s=socket.socket(socket.AF_INET,getattr(socket,sys.argv[1])); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' "$1"; }
lk_port="$(free_port SOCK_STREAM)"
lk_udp="$(free_port SOCK_DGRAM)"
port="$(free_port SOCK_STREAM)"
base="http://127.0.0.1:$port"

cat > "$work/livekit.yaml" <<YAML
port: $lk_port
bind_addresses: ["127.0.0.1"]
rtc: { udp_port: $lk_udp, tcp_port: 0, use_external_ip: false, node_ip: { ipv4: "127.0.0.1" }, ips: { includes: ["127.0.0.1/32"] } }
turn: { enabled: false }
keys: { devkey: secret }
logging: { level: warn, pion_level: error }
YAML
"$cache/bin/livekit-server" --config "$work/livekit.yaml" >"$work/livekit.log" 2>&1 &
pids+=($!)

PORT="$port" DATA_DIR="$work/data" LIVEKIT_URL="ws://127.0.0.1:$lk_port" LOG_LEVEL=ERROR \
  SESSION_RATE_LIMIT_PER_MINUTE=10000 node_modules/.bin/tsx functions/local.ts >"$work/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  curl -fsS "$base/healthz" >/dev/null 2>&1 && curl -fsS "http://127.0.0.1:$lk_port/" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "$base/healthz" >/dev/null || { cat "$work/server.log" >&2; exit 1; }

token() { DATA_DIR="$work/data" node_modules/.bin/tsx scripts/dev-token.ts "$@"; }
admin_token="$(token --user fuzz-admin --tenant fuzz-ops --superadmin)"
user_token="$(token --user fuzz-user --tenant fuzz)"
put() {
  local code
  code="$(curl -sS -o "$work/put.json" -w '%{http_code}' -X PUT "$base$1" -H "authorization: Bearer $admin_token" \
    -H 'content-type: application/json' -d "$2")"
  [[ "$code" == 20? ]] || { echo "seeding $1 answered $code: $(cat "$work/put.json")" >&2; exit 1; }
}
# The user the session run starts sessions as; the MCP URL is never contacted by a session start.
put /v1/admin/tenants/fuzz '{"name":"Fuzz","mcp":{"url":"http://127.0.0.1:9/mcp","token":"fuzz-token"}}'
put /v1/admin/tenants/fuzz/users/fuzz-user '{"display_name":"Fuzz user"}'

run() {
  local name="$1" token="$2"
  shift 2
  echo "== schemathesis: $name ($base, ≤ ${seconds} s, ≤ $examples examples per operation, seed $seed)"
  LKMCP_FUZZ_TOKEN="$token" timeout --kill-after=5 "$((seconds + 20))" "$py" -m schemathesis.cli --no-color \
    --config-file scripts/validators/schemathesis.toml run "$doc" \
    --url "$base" --checks all --max-examples "$examples" --max-time "$seconds" --seed "$seed" \
    --workers 1 --request-timeout 10 --report junit --report-junit-path "$work/$name.xml" \
    "$@"
}
status=0
run sessions "$user_token" --include-path /v1/sessions || status=1
run admin "$admin_token" --include-path-regex '^/(v1/admin/|openapi\.json$)' || status=1
if grep -q '"level":"ERROR"' "$work/server.log"; then
  echo "== server errors logged during the runs:" >&2
  grep '"level":"ERROR"' "$work/server.log" | tail -20 >&2
fi
exit "$status"
