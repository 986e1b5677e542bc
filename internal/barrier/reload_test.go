package barrier

import (
	"context"
	"testing"
	"time"

	"github.com/arcasec/arca/internal/storage"
)

// TestReloadSeesAnotherServersRotation: two barriers over one store, as an
// active server and a standby; the active one rotates and writes under the
// new key. The standby reads it only after Reload, and then writes under
// the new term too. A passive barrier does not rotate on its own.
func TestReloadSeesAnotherServersRotation(t *testing.T) {
	ctx := context.Background()
	phys := storage.NewInmem()
	active, root := newUnsealed(t, phys)
	standby := New(phys)
	if err := standby.Unseal(ctx, root); err != nil {
		t.Fatal(err)
	}
	standby.SetPassive(true)
	if _, err := active.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := active.Put(ctx, &storage.Entry{Key: "a/b", Value: []byte("after rotation")}); err != nil {
		t.Fatal(err)
	}
	if _, err := standby.Get(ctx, "a/b"); err == nil {
		t.Fatal("a standby with the old keyring decrypted a value written under a newer term")
	}
	// Due by age on the standby's (stale) view: a passive barrier still
	// does not rotate on its own.
	standby.mu.Lock()
	standby.rotation.Interval = time.Nanosecond
	standby.mu.Unlock()
	standby.autoRotate(ctx)
	if got := standby.KeyStatus().Term; got != 1 {
		t.Fatalf("a passive barrier rotated on its own to term %d", got)
	}
	if err := standby.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	e, err := standby.Get(ctx, "a/b")
	if err != nil || e == nil || string(e.Value) != "after rotation" {
		t.Fatalf("after Reload: %v %v", e, err)
	}
	if got, want := standby.KeyStatus().Term, active.KeyStatus().Term; got != want {
		t.Fatalf("standby term %d after Reload, active %d", got, want)
	}
	standby.Seal()
	if err := standby.Reload(ctx); err == nil {
		t.Fatal("Reload of a sealed barrier succeeded")
	}
}
