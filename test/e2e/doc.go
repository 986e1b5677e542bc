// Package e2e holds end-to-end tests of the arca binary and server: bolt
// storage durability and encryption at rest, crash recovery, and how bad
// input is refused.
package e2e
