#!/usr/bin/env bash
# Load test of transit encrypt on a real arca server (bolt storage) with wrk:
# a 64-byte plaintext per request with a policy token, and batches of 100
# and 1,000 items (items/s). Usage: bench/transit/run.sh [DURATION] (10s).
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR="${1:-10s}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
go build -o "$work/arca" ./cmd/arca

ADDR=127.0.0.1:8297
cat > "$work/server.hcl" <<HCL
storage "bolt" { path = "$work/arca.db" }
listener "tcp" {
  address     = "$ADDR"
  tls_disable = true
}
log_level = "warn"
HCL
"$work/arca" server -config="$work/server.hcl" >"$work/server.log" 2>&1 &
for _ in $(seq 50); do curl -sf "http://$ADDR/v1/sys/seal-status" >/dev/null && break; sleep 0.1; done

api() { curl -sf -X "$1" -H "X-Vault-Token: ${ROOT:-}" "http://$ADDR/v1/$2" ${3:+-d "$3"}; }
init=$(api PUT sys/init '{"secret_shares":1,"secret_threshold":1}')
KEY=$(echo "$init" | sed -E 's/.*"keys":\["([^"]+)".*/\1/')
ROOT=$(echo "$init" | sed -E 's/.*"root_token":"([^"]+)".*/\1/')
api PUT sys/unseal "{\"key\":\"$KEY\"}" >/dev/null
api POST sys/mounts/transit '{"type":"transit"}' >/dev/null
api POST transit/keys/bench '{}' >/dev/null
api PUT sys/policies/acl/bench '{"policy":"path \"transit/encrypt/bench\" { capabilities = [\"update\"] }"}' >/dev/null
POLICY_TOKEN=$(api POST auth/token/create '{"policies":["bench"],"ttl":"24h"}' | sed -E 's/.*"client_token":"([^"]+)".*/\1/')

printf '%-36s %5s %10s %10s %9s %9s %7s\n' case conc req/s items/s p50_ms p99_ms errors
run() { # name conc token batch
	local out
	out=$(TOKEN="$3" BATCH="$4" wrk -t2 -c"$2" -d"$DUR" --latency -s bench/transit/encrypt.lua "http://$ADDR" 2>&1 | grep RESULT || true)
	printf '%-36s %5s %10s %10s %9s %9s %7s\n' "$1" "$2" \
		"$(echo "$out" | sed -E 's/.*rps=([0-9]+).*/\1/')" \
		"$(echo "$out" | sed -E 's/.*items=([0-9]+).*/\1/')" \
		"$(echo "$out" | sed -E 's/.*p50_ms=([0-9.]+).*/\1/')" \
		"$(echo "$out" | sed -E 's/.*p99_ms=([0-9.]+).*/\1/')" \
		"$(echo "$out" | sed -E 's/.*errors=([0-9]+).*/\1/')"
}
run "encrypt 64 B, policy token" 16 "$POLICY_TOKEN" 0
run "encrypt 64 B, root token" 16 "$ROOT" 0
run "encrypt batch of 100, policy token" 16 "$POLICY_TOKEN" 100
run "encrypt batch of 1000, policy token" 16 "$POLICY_TOKEN" 1000
