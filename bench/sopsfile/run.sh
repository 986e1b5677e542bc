#!/usr/bin/env bash
# Encrypt and decrypt a 1 MB JSON file with about 10,000 values and a 10 MB
# binary file with `arca file` and with the real sops, one age recipient,
# and print wall time and peak RSS of each. Usage: bench/sopsfile/run.sh
# (needs sops on PATH or in $(go env GOPATH)/bin: scripts/setup.d/40-sops.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
SOPS=$(command -v sops || echo "$(go env GOPATH)/bin/sops")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/arca" ./cmd/arca

# A test-only age key.
go run filippo.io/age/cmd/age-keygen -o "$work/keys.txt" 2>/dev/null
export SOPS_AGE_KEY_FILE="$work/keys.txt"
R=$(grep -o 'age1[a-z0-9]*' "$work/keys.txt")

python3 - "$work" <<'PY'
import json, os, random, string, sys
w = sys.argv[1]
random.seed(1)
doc = {}
for i in range(1000):
    doc["service%04d" % i] = {
        "host": "db%d.internal.example.com" % i,
        "port": 5000 + i,
        "user": "svc_%d_%s" % (i, "u" * 12),
        "password": "".join(random.choice(string.ascii_letters) for _ in range(24)),
        "enabled": i % 2 == 0,
        "ratio": i / 7,
        "tags": ["a%d" % i, "b%d" % i, "c%d" % i],
        "note": "".join(random.choice(string.ascii_letters) for _ in range(700)),
    }
with open(os.path.join(w, "big.json"), "w") as f:
    json.dump(doc, f, indent="\t")
with open(os.path.join(w, "big.bin"), "wb") as f:
    f.write(os.urandom(10 * 1024 * 1024))
PY
printf 'inputs: big.json %s bytes, big.bin %s bytes\n' "$(stat -c %s "$work/big.json")" "$(stat -c %s "$work/big.bin")"

measure() { # label command...
	/usr/bin/time -f "%e %U %S %M" -o "$work/t" "${@:2}" >"$work/out" 2>/dev/null
	read -r secs user sys kb <"$work/t"
	printf '%-28s %8.2f s %8.2f s %8d MB\n' "$1" "$secs" "$(echo "$user + $sys" | bc)" $((kb / 1024))
}
command -v bc >/dev/null || apt-get install -y -qq bc >/dev/null
printf '%-28s %10s %10s %11s\n' case wall cpu peak_rss
for f in big.json big.bin; do
	measure "arca encrypt $f" "$work/arca" file encrypt --age "$R" --output "$work/arca-$f.enc" "$work/$f"
	measure "sops encrypt $f" "$SOPS" encrypt --age "$R" --output "$work/sops-$f.enc" "$work/$f"
	ext=${f##*.}
	measure "arca decrypt $f" "$work/arca" file decrypt --input-type "$( [ "$ext" = json ] && echo json || echo binary)" "$work/arca-$f.enc"
	cmp -s "$work/out" "$work/$f" || [ "$ext" = json ] || { echo "arca decrypt of $f does not match the input" >&2; exit 1; }
	t=$( [ "$ext" = json ] && echo json || echo binary)
	measure "sops decrypt $f" "$SOPS" decrypt --input-type "$t" --output-type "$t" "$work/sops-$f.enc"
done
