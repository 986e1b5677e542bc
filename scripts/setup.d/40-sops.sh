#!/usr/bin/env bash
# Installs the real sops (a pinned release, built from the Go module proxy)
# for the interoperability tests of `arca file`.
set -euo pipefail
want=3.13.2
bin="$(go env GOPATH)/bin/sops"
if [ -x "$bin" ] && "$bin" --version --disable-version-check 2>/dev/null | grep -q "sops $want"; then
	exit 0
fi
echo "building sops $want (once; takes a minute or two)"
GOFLAGS=-mod=mod go install "github.com/getsops/sops/v3/cmd/sops@v$want"
