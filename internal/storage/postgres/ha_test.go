package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/arcasec/arca/internal/storage/postgres"
	"github.com/arcasec/arca/internal/testutil/pgtest"
)

func haBackend(t *testing.T, url, haTable string) *postgres.Backend {
	t.Helper()
	b, err := postgres.Open(context.Background(), map[string]string{"connection_url": url, "ha_enabled": "true", "ha_table": haTable})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if !b.HAEnabled() {
		t.Fatal("ha_enabled = true, but HAEnabled is false")
	}
	return b
}

// TestLockExcludesAndHandsOver: one holder at a time, its value visible to
// all; Unlock lets the next contender in.
func TestLockExcludesAndHandsOver(t *testing.T) {
	b1 := haBackend(t, cluster.URL(), "ha_excl")
	b2 := haBackend(t, cluster.URL(), "ha_excl")
	l1, _ := b1.LockWith("core/lock", "one")
	l2, _ := b2.LockWith("core/lock", "two")
	lost1, err := l1.Lock(nil)
	if err != nil || lost1 == nil {
		t.Fatalf("first Lock: %v", err)
	}
	got := make(chan (<-chan struct{}), 1)
	stop2 := make(chan struct{})
	go func() {
		lost2, err := l2.Lock(stop2)
		if err != nil {
			t.Error(err)
		}
		got <- lost2
	}()
	// Longer than the lock's lifetime: renewals keep it with the holder.
	time.Sleep(postgres.LockTTL + time.Second)
	select {
	case <-got:
		t.Fatal("a second contender took a lock that is held and renewed")
	case <-lost1:
		t.Fatal("the holder lost a lock it was renewing")
	default:
	}
	if held, v, err := l2.Value(); err != nil || !held || v != "one" {
		t.Fatalf("Value = %v %q %v, want the holder's value", held, v, err)
	}
	if err := l1.Unlock(); err != nil {
		t.Fatal(err)
	}
	var lost2 <-chan struct{}
	select {
	case lost2 = <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("the second contender did not get a released lock")
	}
	if lost2 == nil {
		t.Fatal("second contender stopped instead of holding")
	}
	if held, v, _ := l1.Value(); !held || v != "two" {
		t.Fatalf("after hand-over Value = %v %q", held, v)
	}
	l2.Unlock()
	if held, _, _ := l1.Value(); held {
		t.Fatal("lock still held after Unlock")
	}
}

// TestLockStopsWaiting: a contender waiting for a held lock returns when
// told to stop.
func TestLockStopsWaiting(t *testing.T) {
	b := haBackend(t, cluster.URL(), "ha_stop")
	l1, _ := b.LockWith("k", "one")
	if _, err := l1.Lock(nil); err != nil {
		t.Fatal(err)
	}
	defer l1.Unlock()
	l2, _ := b.LockWith("k", "two")
	stop := make(chan struct{})
	close(stop)
	lost, err := l2.Lock(stop)
	if lost != nil || err != nil {
		t.Fatalf("Lock with stop closed = %v, %v; want nil, nil", lost, err)
	}
}

// TestLockLostWhenDatabaseGoes: a holder that cannot renew reports the
// lock lost before it expires; after PostgreSQL is back, a contender that
// waited takes it.
func TestLockLostWhenDatabaseGoes(t *testing.T) {
	c := pgtest.Start(t)
	b := haBackend(t, c.URL(), "ha_lost")
	l, _ := b.LockWith("core/lock", "one")
	lost, err := l.Lock(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	select {
	case <-lost:
		t.Logf("lost reported %s after the database stopped", time.Since(stopped).Round(time.Millisecond))
	case <-time.After(30 * time.Second):
		t.Fatal("the holder did not report the lock lost")
	}
	l.Unlock()
	if err := c.Restart(); err != nil {
		t.Fatal(err)
	}
	l2, _ := b.LockWith("core/lock", "two")
	lost2, err := l2.Lock(nil)
	if err != nil || lost2 == nil {
		t.Fatalf("Lock after restart: %v", err)
	}
	if held, v, _ := l2.Value(); !held || v != "two" {
		t.Fatalf("Value = %v %q", held, v)
	}
	l2.Unlock()
}
