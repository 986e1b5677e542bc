package compat

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/jackc/pgx/v5"

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
	waitFor("writes before the restart", func() bool { return okN.Load() >= 50 })
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	waitFor("writes to fail while PostgreSQL is down", func() bool { return failed.Load() >= 8 })
	if err := pg.Restart(); err != nil {
		t.Fatal(err)
	}
	after := okN.Load()
	waitFor("writes after the restart", func() bool { return okN.Load() >= after+50 })
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

// TestPostgresHoldsNoPlaintext: the rows of the PostgreSQL table hold the
// barrier's ciphertext only: no secret value, no token.
func TestPostgresHoldsNoPlaintext(t *testing.T) {
	ctx := context.Background()
	store := servertest.PostgresStorage(t)
	addr, root := servertest.StartDevOn(t, store)
	c := newClient(t, addr, root)
	const marker = "plaintext-marker-5d1e0b"
	if _, err := c.KVv2("secret").Put(ctx, "app/db", map[string]any{"password": marker}); err != nil {
		t.Fatal(err)
	}
	tok, err := c.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"default"}})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, store.Options["connection_url"])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT key, value FROM "+store.Options["table"])
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var key, value []byte
		if err := rows.Scan(&key, &value); err != nil {
			t.Fatal(err)
		}
		n++
		for name, s := range map[string]string{"secret value": marker, "root token": root, "token": tok.Auth.ClientToken} {
			if bytes.Contains(value, []byte(s)) || bytes.Contains(key, []byte(s)) {
				t.Fatalf("row %q holds the %s in plaintext", key, name)
			}
		}
	}
	if rows.Err() != nil || n < 10 {
		t.Fatalf("%d rows, %v", n, rows.Err())
	}
}
