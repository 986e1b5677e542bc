#!/usr/bin/env bash
# Downloads the Go modules the build and the tests need.
set -euo pipefail
go mod download
