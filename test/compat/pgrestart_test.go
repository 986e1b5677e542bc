package compat

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arcasec/arca/internal/server"
	"github.com/arcasec/arca/internal/server/servertest"
	"github.com/arcasec/arca/internal/testutil/pgtest"
)

// TestPostgresRestartUnderLoad restarts PostgreSQL under writes from
// several clients: requests fail while it is down, the server serves again
// once it is back, without a restart of its own, and every write it
// acknowledged is readable.
func TestPostgresRestartUnderLoad(t *testing.T) {
	ctx := context.Background()
	pg := pgtest.Start(t) // its own cluster: the shared one must not restart under other tests
	addr, root := servertest.StartDevOn(t, server.StorageConfig{Type: "postgresql",
		Options: map[string]string{"connection_url": pg.URL(), "max_parallel": "8"}})
	c := newClient(t, addr, root)

	var (
		mu     sync.Mutex
		acked  = map[string]string{}
		failed atomic.Int64
		okN    atomic.Int64
		stop   atomic.Bool
		wg     sync.WaitGroup
	)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kv := newClient(t, addr, root).KVv2("secret")
			for i := 0; !stop.Load(); i++ {
				// One key per write: a write that failed may still have
				// committed, so no key is written twice.
				key, val := fmt.Sprintf("load/w%d/k%d", w, i), fmt.Sprintf("w%d-%d", w, i)
				if _, err := kv.Put(ctx, key, map[string]any{"v": val}); err != nil {
					failed.Add(1)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				mu.Lock()
				acked[key] = val
				mu.Unlock()
				okN.Add(1)
			}
		}()
	}
	// waitFor polls cond; the deadline only stops a broken test from hanging.
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				stop.Store(true)
				wg.Wait()
				t.Fatalf("gave up waiting for %s (acknowledged %d, failed %d)", what, okN.Load(), failed.Load())
			}
		}
	}
	t0 := time.Now()
	waitFor("writes before the restart", func() bool { return okN.Load() >= 100 })
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	waitFor("writes to fail while PostgreSQL is down", func() bool { return failed.Load() >= 8 })
	if err := pg.Restart(); err != nil {
		t.Fatal(err)
	}
	t.Logf("restarted at %v", time.Since(t0))
	after := okN.Load()
	waitFor("writes after the restart", func() bool { return okN.Load() >= after+100 })
	t.Logf("served again at %v", time.Since(t0))
	stop.Store(true)
	wg.Wait()

	kv := c.KVv2("secret")
	for key, val := range acked {
		s, err := kv.Get(ctx, key)
		if err != nil || s.Data["v"] != val {
			t.Fatalf("acknowledged %s = %s; read back %+v, %v", key, val, s, err)
		}
	}
	t.Logf("%d writes acknowledged, %d failed while PostgreSQL was down", okN.Load(), failed.Load())
}
