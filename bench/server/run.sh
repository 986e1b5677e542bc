#!/usr/bin/env bash
# Load test of a real arca server on bolt storage with wrk (Debian), beside a
# bare net/http JSON handler as the ceiling. Usage: bench/server/run.sh
# [DURATION] (default 10s). Prints requests/s and p50/p99 latency per case.
# ONLY=audit runs just the file-audit overhead comparison; AUDIT_DIR puts its
# file elsewhere than the temporary directory. STORAGE=postgresql runs the
# server on a throwaway, durable PostgreSQL cluster (bench/server/pgcluster)
# instead of bolt; ONLY=kv runs just the KV v2 read and write cases.
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR="${1:-10s}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait; rm -rf "$work"' EXIT
go build -o "$work/arca" ./cmd/arca
go build -o "$work/bare" ./bench/server/bare

STORAGE="${STORAGE:-bolt}"
case "$STORAGE" in
bolt) STANZA="storage \"bolt\" { path = \"$work/arca.db\" }" ;;
postgresql)
	go build -o "$work/pgcluster" ./bench/server/pgcluster
	"$work/pgcluster" >"$work/pg.url" &
	for _ in $(seq 300); do [ -s "$work/pg.url" ] && break; sleep 0.1; done
	STANZA="storage \"postgresql\" { connection_url = \"$(cat "$work/pg.url")\" }" ;;
*) echo "STORAGE must be bolt or postgresql" >&2; exit 1 ;;
esac
echo "storage: $STORAGE"

ADDR=127.0.0.1:8298
cat > "$work/server.hcl" <<HCL
$STANZA
listener "tcp" {
  address     = "$ADDR"
  tls_disable = true
}
log_level = "warn"
unsafe_allow_api_audit_creation = true # audit_cases enables and disables a device per round
HCL
"$work/arca" server -config="$work/server.hcl" >"$work/server.log" 2>&1 &
"$work/bare" -addr=127.0.0.1:8299 &
for _ in $(seq 50); do curl -sf "http://$ADDR/v1/sys/seal-status" >/dev/null && break; sleep 0.1; done

api() { curl -sf -X "$1" -H "X-Vault-Token: ${ROOT:-}" "http://$ADDR/v1/$2" ${3:+-d "$3"}; }
init=$(api PUT sys/init '{"secret_shares":1,"secret_threshold":1}')
KEY=$(echo "$init" | sed -E 's/.*"keys":\["([^"]+)".*/\1/')
ROOT=$(echo "$init" | sed -E 's/.*"root_token":"([^"]+)".*/\1/')
api PUT sys/unseal "{\"key\":\"$KEY\"}" >/dev/null
api POST sys/mounts/secret '{"type":"kv","options":{"version":"2"}}' >/dev/null
api PUT sys/policies/acl/bench '{"policy":"path \"secret/data/bench/*\" { capabilities = [\"read\", \"create\", \"update\"] }"}' >/dev/null
POLICY_TOKEN=$(api POST auth/token/create '{"policies":["bench"],"ttl":"24h"}' | sed -E 's/.*"client_token":"([^"]+)".*/\1/')

echo "populating 10,000 keys..."
api POST secret/data/bench/hot '{"data":{"username":"app","password":"s3cr3t"}}' >/dev/null
seq 0 9999 | xargs -P 16 -I{} curl -sf -o /dev/null -X POST -H "X-Vault-Token: $ROOT" \
  "http://$ADDR/v1/secret/data/bench/k{}" -d '{"data":{"username":"app","password":"s3cr3t"}}'

printf '%-34s %5s %10s %9s %9s %7s\n' case conc req/s p50_ms p99_ms errors
run() { # name conc script token keys url
	local out
	out=$(TOKEN="$4" KEYS="$5" wrk -t2 -c"$2" -d"$DUR" --latency -s "bench/server/$3" "$6" 2>&1 | grep RESULT || true)
	printf '%-34s %5s %10s %9s %9s %7s\n' "$1" "$2" \
		"$(echo "$out" | sed -E 's/.*rps=([0-9]+).*/\1/')" \
		"$(echo "$out" | sed -E 's/.*p50_ms=([0-9.]+).*/\1/')" \
		"$(echo "$out" | sed -E 's/.*p99_ms=([0-9.]+).*/\1/')" \
		"$(echo "$out" | sed -E 's/.*errors=([0-9]+).*/\1/')"
}
AUDIT_DIR="${AUDIT_DIR:-$work}" # where the audit file goes; e.g. /dev/shm to leave the disk out
audit_cases() { # KV v2 reads without and with one file audit device, alternated
	local round rounds="${ROUNDS:-3}"
	: >"$work/audit-rps"
	for round in $(seq "$rounds"); do
		api DELETE sys/audit/file >/dev/null || true
		run "kv2 read hot, policy, no audit" 16 read.lua "$POLICY_TOKEN" 1 "http://$ADDR" | tee -a "$work/audit-rps"
		run "kv2 read 10k, policy, no audit" 16 read.lua "$POLICY_TOKEN" 10000 "http://$ADDR" | tee -a "$work/audit-rps"
		rm -f "$AUDIT_DIR/audit.log"
		api PUT sys/audit/file "{\"type\":\"file\",\"options\":{\"file_path\":\"$AUDIT_DIR/audit.log\"}}" >/dev/null
		run "kv2 read hot, policy, file audit" 16 read.lua "$POLICY_TOKEN" 1 "http://$ADDR" | tee -a "$work/audit-rps"
		run "kv2 read 10k, policy, file audit" 16 read.lua "$POLICY_TOKEN" 10000 "http://$ADDR" | tee -a "$work/audit-rps"
	done
	echo "audit log: $(wc -l <"$AUDIT_DIR/audit.log") lines, $(du -h "$AUDIT_DIR/audit.log" | cut -f1)"
	api DELETE sys/audit/file >/dev/null
	awk '/no audit/ {n += $(NF-3); nn++} /file audit/ {a += $(NF-3); na++}
		END { printf "mean req/s: no audit %.0f, file audit %.0f: %.1f%% of the throughput without audit\n", n/nn, a/na, 100*(a/na)/(n/nn) }' "$work/audit-rps"
}
if [ "${ONLY:-}" = audit ]; then
	audit_cases
	exit 0
fi
if [ "${ONLY:-}" = kv ]; then
	for c in 16 64; do
		run "kv2 read hot key, policy token" $c read.lua "$POLICY_TOKEN" 1 "http://$ADDR"
		run "kv2 read 10k keys, policy token" $c read.lua "$POLICY_TOKEN" 10000 "http://$ADDR"
		run "kv2 write (durable), policy token" $c write.lua "$POLICY_TOKEN" 0 "http://$ADDR"
	done
	exit 0
fi
for c in 16 64; do
	run "bare net/http JSON" $c read.lua "" 1 "http://127.0.0.1:8299"
	run "kv2 read hot key, root" $c read.lua "$ROOT" 1 "http://$ADDR"
	run "kv2 read hot key, policy token" $c read.lua "$POLICY_TOKEN" 1 "http://$ADDR"
	run "kv2 read 10k keys, root" $c read.lua "$ROOT" 10000 "http://$ADDR"
	run "kv2 read 10k keys, policy token" $c read.lua "$POLICY_TOKEN" 10000 "http://$ADDR"
	run "kv2 write (fsync'd), root" $c write.lua "$ROOT" 0 "http://$ADDR"
	run "kv2 write (fsync'd), policy token" $c write.lua "$POLICY_TOKEN" 0 "http://$ADDR"
done
audit_cases
