package ha_test

import (
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/logical/leasetest"
	"github.com/arcasec/arca/internal/server"
)

// settle gives background loops a moment to act on a clock move before a
// test checks that they did not act twice. It asserts nothing about speed.
func settle() { time.Sleep(300 * time.Millisecond) }

// TestLeaseRevokedOnceAcrossHandover: a lease issued by one active server
// and due after a step-down is revoked by the next active server, once;
// the periodic functions (scheduled rotation's mechanism) run on the active
// server only.
func TestLeaseRevokedOnceAcrossHandover(t *testing.T) {
	e := leasetest.NewEngine(16)
	e.TTL = 90 * time.Second
	clock := leasetest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	cat := server.Catalog()
	cat.Secrets["stub"] = e.Factory
	_, nodes := startNodesWith(t, 2, server.Config{Catalog: &cat, Clock: clock})
	root, _ := initCluster(t, nodes, 0, 1)
	a := waitActive(t, nodes)
	ca := client(t, nodes[a].addr, root)
	if err := ca.Sys().Mount("stub", &vault.MountInput{Type: "stub"}); err != nil {
		t.Fatal(err)
	}
	s, err := ca.Logical().Read("stub/creds/app")
	if err != nil {
		t.Fatal(err)
	}
	leaseID := s.LeaseID

	// One rollback round on the first active server.
	clock.Advance(time.Minute + time.Second)
	waitFor(t, func() bool { return e.Periodic.Load() >= 1 })

	if n := e.Attempts(); n != 0 {
		t.Fatalf("the lease was revoked before it was due (%d attempts)", n)
	}
	if err := ca.Sys().StepDown(); err != nil {
		t.Fatal(err)
	}
	b := waitActive(t, nodes)
	if b == a {
		t.Fatal("the server that stepped down is active again")
	}
	before := e.Periodic.Load()
	// Now the lease is due: the new active server revokes it.
	clock.Advance(time.Minute + time.Second)
	select {
	case r := <-e.Revocations:
		if r.Err != nil {
			t.Fatalf("revocation failed: %v", r.Err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the lease was not revoked after the handover")
	}
	waitFor(t, func() bool { return e.Periodic.Load() >= before+1 })
	settle()
	if n := e.Attempts(); n != 1 {
		t.Fatalf("%d revocation attempts, want exactly 1", n)
	}
	if got := e.Periodic.Load(); got != before+1 {
		t.Fatalf("periodic function ran %d times for one round after the handover, want 1", got-before)
	}
	if _, err := client(t, nodes[a].addr, root).Sys().Lookup(leaseID); err == nil {
		t.Fatal("the revoked lease is still found")
	}
}

// waitFor polls cond; the deadline only stops a broken test from hanging.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
