// Package database benchmarks issuing dynamic PostgreSQL credentials over
// HTTP: concurrent clients read database/creds/<role> from a running
// server for a fixed time, each read creating a PostgreSQL role and a
// lease, and the test reports issues per second and latency percentiles.
//
// It runs only when asked:
//
//	ARCA_DB_BENCH=30s go test ./bench/database/ -run TestCredsIssuanceHTTP -v
//
// ARCA_DB_BENCH_CLIENTS sets the number of concurrent clients (default
// 16); ARCA_DB_BENCH_MAX_OPEN sets the config's max_open_connections
// (default 4, as in Vault); ARCA_DB_BENCH_SCRAM=1 sets
// password_authentication=scram-sha-256.
package database

import (
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/server/servertest"
	"github.com/arcasec/arca/internal/testutil/pgtest"
)

// creation is the role: a user with a password valid until the
// lease's end, allowed to read the public schema.
const creation = `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}";`

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func TestCredsIssuanceHTTP(t *testing.T) {
	duration, err := time.ParseDuration(os.Getenv("ARCA_DB_BENCH"))
	if err != nil || duration <= 0 {
		t.Skip("set ARCA_DB_BENCH to a duration (e.g. 30s) to run the credential issuance benchmark")
	}
	clients := envInt("ARCA_DB_BENCH_CLIENTS", 16)
	maxOpen := envInt("ARCA_DB_BENCH_MAX_OPEN", 4)
	pg := pgtest.Start(t)
	addr, root := servertest.StartDev(t)
	c := newClient(t, addr, root)
	if err := c.Sys().Mount("database", &vault.MountInput{Type: "database"}); err != nil {
		t.Fatal(err)
	}
	config := map[string]any{
		"plugin_name":          "postgresql-database-plugin",
		"connection_url":       pg.TemplateURL(),
		"username":             pg.User,
		"password":             pg.Password,
		"allowed_roles":        "bench",
		"max_open_connections": maxOpen,
	}
	if os.Getenv("ARCA_DB_BENCH_SCRAM") != "" {
		config["password_authentication"] = "scram-sha-256"
	}
	if _, err := c.Logical().Write("database/config/production", config); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("database/roles/bench", map[string]any{
		"db_name": "production", "creation_statements": creation, "default_ttl": "1h", "max_ttl": "24h",
	}); err != nil {
		t.Fatal(err)
	}
	// One read first, so the pool and the first connection are set up.
	if _, err := c.Logical().Read("database/creds/bench"); err != nil {
		t.Fatal(err)
	}

	var (
		mu        sync.Mutex
		latencies []time.Duration
		failures  int
		firstErr  error
		wg        sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(duration)
	for range clients {
		cc := newClient(t, addr, root)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			var failed int
			var ferr error
			for time.Now().Before(deadline) {
				t0 := time.Now()
				s, err := cc.Logical().Read("database/creds/bench")
				if err != nil || s == nil || s.LeaseID == "" {
					failed++
					if ferr == nil {
						ferr = err
					}
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			failures += failed
			if firstErr == nil {
				firstErr = ferr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if len(latencies) == 0 {
		t.Fatalf("no credentials issued; %d failures, first: %v", failures, firstErr)
	}
	slices.Sort(latencies)
	pct := func(p float64) time.Duration { return latencies[int(float64(len(latencies)-1)*p)] }
	t.Logf("clients=%d max_open_connections=%d duration=%s scram=%v", clients, maxOpen, elapsed.Round(time.Millisecond), config["password_authentication"] != nil)
	t.Logf("issued %d credentials: %.1f issues/s; latency p50 %s, p99 %s, max %s; %d failures",
		len(latencies), float64(len(latencies))/elapsed.Seconds(),
		pct(0.50).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond), latencies[len(latencies)-1].Round(10*time.Microsecond), failures)
	if failures > 0 {
		t.Errorf("%d reads failed; first: %v", failures, firstErr)
	}
}

func newClient(t *testing.T, addr, token string) *vault.Client {
	t.Helper()
	conf := vault.DefaultConfig()
	conf.Address = addr
	conf.MaxRetries = 0
	c, err := vault.NewClient(conf)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
}
