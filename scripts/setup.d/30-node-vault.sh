#!/usr/bin/env bash
# Installs npm node-vault (pinned in test/compat/node/package-lock.json), the
# Node.js Vault client the compatibility tests drive Arca with.
set -euo pipefail
cd "$(dirname "$0")/../../test/compat/node"
if [ -d node_modules/node-vault ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
	exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
