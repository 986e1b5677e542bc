#!/usr/bin/env bash
# Installs Debian's python3-hvac, the Python Vault client the compatibility
# tests drive Arca with (for /usr/bin/python3, not any other Python).
set -euo pipefail
if /usr/bin/python3 -c 'import hvac' 2>/dev/null; then
	exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq python3-hvac >/dev/null
/usr/bin/python3 -c 'import hvac' && echo 'python3-hvac installed'
