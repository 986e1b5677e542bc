// Package database holds tests that drive a running server's database
// secrets engine and lease manager against real PostgreSQL clusters
// (internal/testutil/pgtest), through the Vault Go client.
package database
