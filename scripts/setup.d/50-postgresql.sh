#!/usr/bin/env bash
# Installs Debian's postgresql package: the tests of the database secrets
# engine start throwaway clusters with its initdb and pg_ctl (see
# internal/testutil/pgtest). The package's own cluster is not used.
set -euo pipefail
if compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
	exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq postgresql >/dev/null
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && echo 'postgresql installed'
