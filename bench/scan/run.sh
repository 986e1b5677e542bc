#!/usr/bin/env bash
# Measures `arca scan dir` on a tree and `arca scan git` on a repository's
# history: wall time, throughput, peak RSS and findings. When GITLEAKS names
# a gitleaks binary (built by hand outside this repository), it is measured
# the same way on the same inputs.
#
# Usage: bench/scan/run.sh [TREE] [REPO]
#   TREE defaults to the Go distribution's src/ tree, REPO to this repository.
set -euo pipefail
cd "$(dirname "$0")/../.."
TREE="${1:-$(go env GOROOT)/src}"
REPO="${2:-.}"
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/arca" ./cmd/arca

tree_mb=$(du -sm --apparent-size "$TREE" | cut -f1)
hist_mb=$(( $(git -C "$REPO" log -p -U0 --all --no-color | wc -c) / 1048576 ))
echo "tree: $TREE (${tree_mb} MB); history: $REPO (${hist_mb} MB of git log -p)"
printf '%-22s %9s %9s %9s %9s\n' case wall_s MB/s rss_MB findings

measure() { # label input_mb report command...
	/usr/bin/time -f "%e %M" -o "$work/t" "${@:4}" >/dev/null 2>&1 || true
	read -r secs kb < <(tail -n 1 "$work/t")
	n=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))))" "$3" 2>/dev/null || echo "?")
	printf '%-22s %9.2f %9.1f %9d %9s\n' "$1" "$secs" "$(echo "$2 / $secs" | bc -l)" $((kb / 1024)) "$n"
}
command -v bc >/dev/null || apt-get install -y -qq bc >/dev/null

measure "arca scan dir" "$tree_mb" "$work/a1.json" "$work/arca" scan dir --report-path "$work/a1.json" "$TREE"
if [ -n "${GITLEAKS:-}" ]; then
	measure "gitleaks dir" "$tree_mb" "$work/g1.json" "$GITLEAKS" dir --no-banner --report-path "$work/g1.json" "$TREE"
fi
measure "arca scan git" "$hist_mb" "$work/a2.json" "$work/arca" scan git --report-path "$work/a2.json" "$REPO"
if [ -n "${GITLEAKS:-}" ]; then
	measure "gitleaks git" "$hist_mb" "$work/g2.json" "$GITLEAKS" git --no-banner --log-opts=--all --report-path "$work/g2.json" "$REPO"
fi
