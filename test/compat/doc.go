// Package compat holds tests that drive real Arca servers with Vault
// clients written by others: the Go module github.com/hashicorp/vault/api,
// npm node-vault and Debian's python3-hvac. Passing them is what "Vault
// wire-compatible" means.
package compat
