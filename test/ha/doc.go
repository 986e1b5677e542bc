// Package ha_test drives Arca clusters: several servers on one store, one
// active and the others standbys, through their HTTP API. The in-process
// tests share an in-memory HA store; the PostgreSQL tests start real arca
// processes on one database and kill them.
package ha_test
