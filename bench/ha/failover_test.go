// Package ha measures failover: three arca processes on one PostgreSQL
// database, the active one killed with SIGKILL, and the time from the kill
// to the first write a standby's client gets acknowledged (the standby
// forwards it to the new active server). Each round restarts and unseals
// the killed server, so every round starts with three servers.
//
// It runs only when asked:
//
//	ARCA_FAILOVER_RUNS=10 go test ./bench/ha/ -run TestFailoverTime -v -timeout 30m
package ha

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/storage/postgres"
	"github.com/arcasec/arca/internal/testutil/arcaproc"
	"github.com/arcasec/arca/internal/testutil/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	arcaproc.Cleanup()
	os.Exit(code)
}

func TestFailoverTime(t *testing.T) {
	runs, _ := strconv.Atoi(os.Getenv("ARCA_FAILOVER_RUNS"))
	if runs <= 0 {
		t.Skip("set ARCA_FAILOVER_RUNS=10 to run the failover benchmark")
	}
	if _, err := arcaproc.Binary(); err != nil {
		t.Fatal(err)
	}
	pg := pgtest.Start(t)
	stanza := fmt.Sprintf("storage \"postgresql\" {\n  connection_url = %q\n  ha_enabled = \"true\"\n  max_parallel = \"8\"\n}\n", pg.URL())
	var servers []*arcaproc.Server
	for i := 0; i < 3; i++ {
		s, err := arcaproc.Start(t.TempDir(), stanza)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Kill)
		servers = append(servers, s)
	}
	root, key, err := arcaproc.InitAndUnseal(servers)
	if err != nil {
		t.Fatal(err)
	}
	a, err := arcaproc.WaitActive(servers, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := arcaproc.Client(servers[a].Addr, root)
	if err := c.Sys().Mount("secret", &vault.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatal(err)
	}
	var figures []time.Duration
	for run := 1; run <= runs; run++ {
		a, err := arcaproc.WaitActive(servers, 60*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		// Clients of both standbys write until one is acknowledged.
		var clients []*vault.Client
		for i, s := range servers {
			if i != a {
				cl, _ := arcaproc.Client(s.Addr, root)
				clients = append(clients, cl)
			}
		}
		servers[a].Kill()
		killed := time.Now()
		done := make(chan time.Time, len(clients))
		ctx, cancel := context.WithCancel(context.Background())
		for i, cl := range clients {
			go func() {
				for n := 0; ctx.Err() == nil; n++ {
					wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
					_, err := cl.KVv2("secret").Put(wctx, fmt.Sprintf("run%d/c%d/%d", run, i, n), map[string]any{"v": n})
					wcancel()
					if err == nil {
						done <- time.Now()
						return
					}
					time.Sleep(10 * time.Millisecond)
				}
			}()
		}
		var first time.Time
		select {
		case first = <-done:
		case <-time.After(60 * time.Second):
			cancel()
			t.Fatalf("run %d: no write acknowledged within 60s of the kill", run)
		}
		cancel()
		d := first.Sub(killed)
		figures = append(figures, d)
		t.Logf("run %2d: failover %s", run, d.Round(time.Millisecond))
		if err := servers[a].Restart(); err != nil {
			t.Fatal(err)
		}
		if err := arcaproc.Unseal(servers[a], key); err != nil {
			t.Fatal(err)
		}
	}
	sorted := append([]time.Duration(nil), figures...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	var sum time.Duration
	for _, d := range figures {
		sum += d
	}
	fmt.Printf("failover over %d runs (lock TTL %s, renew every %s, standbys retry every %s): min %s  median %s  mean %s  max %s\n",
		len(figures), postgres.LockTTL, postgres.LockRenew, postgres.LockRetry,
		sorted[0].Round(time.Millisecond), sorted[len(sorted)/2].Round(time.Millisecond),
		(sum / time.Duration(len(figures))).Round(time.Millisecond), sorted[len(sorted)-1].Round(time.Millisecond))
}
