package database

import (
	"slices"
	"testing"
	"time"

	"github.com/arcasec/arca/internal/logical"
)

// BenchmarkCredsIssuance measures issuing dynamic credentials (one CREATE
// ROLE and GRANT in a transaction per credential) against a local
// PostgreSQL cluster, through the engine without the HTTP layer, and
// reports the p99 latency.
//
//	go test ./internal/engines/database/ -run '^$' -bench CredsIssuance -benchtime 2000x
func BenchmarkCredsIssuance(b *testing.B) {
	e := newEngine(b)
	e.must(logical.UpdateOperation, "roles/bench", map[string]any{"db_name": "production", "creation_statements": readonlyCreation})
	latencies := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if _, err := e.do(logical.ReadOperation, "creds/bench", nil); err != nil {
			b.Fatal(err)
		}
		latencies = append(latencies, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(latencies)
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creds/s")
}
