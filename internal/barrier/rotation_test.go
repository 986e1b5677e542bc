package barrier

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/arcasec/arca/internal/storage"
)

func putN(t *testing.T, b *Barrier, prefix string, n int) {
	t.Helper()
	for i := range n {
		if err := b.Put(context.Background(), &storage.Entry{Key: fmt.Sprintf("%s/%d", prefix, i), Value: []byte(prefix)}); err != nil {
			t.Fatal(err)
		}
	}
}

func checkReadable(t *testing.T, b *Barrier, prefix string, n int) {
	t.Helper()
	for i := range n {
		key := fmt.Sprintf("%s/%d", prefix, i)
		e, err := b.Get(context.Background(), key)
		if err != nil || e == nil || string(e.Value) != prefix {
			t.Fatalf("get %s = %v, %v", key, e, err)
		}
	}
}

// TestRotatesAfterMaxOperations: the encryption that reaches max_operations
// moves the barrier to a new term; what the old key wrote still reads.
func TestRotatesAfterMaxOperations(t *testing.T) {
	ctx := context.Background()
	b, _ := newUnsealed(t, storage.NewInmem())
	if err := b.SetRotationConfig(ctx, RotationConfig{MaxOperations: 10}); err != nil {
		t.Fatal(err)
	}
	putN(t, b, "before", 9)
	if ks := b.KeyStatus(); ks.Term != 1 || ks.Encryptions != 9 {
		t.Fatalf("after 9 writes: term %d, %d encryptions; want term 1, 9", ks.Term, ks.Encryptions)
	}
	putN(t, b, "at", 1)
	if ks := b.KeyStatus(); ks.Term != 2 || ks.Encryptions != 0 {
		t.Fatalf("after the 10th write: term %d, %d encryptions; want term 2, 0", ks.Term, ks.Encryptions)
	}
	b.Transaction(ctx, []storage.Op{{Kind: storage.OpPut, Entry: &storage.Entry{Key: "tx/0", Value: []byte("tx")}}})
	putN(t, b, "after", 9)
	if ks := b.KeyStatus(); ks.Term != 3 {
		t.Fatalf("10 more encryptions (one in a transaction): term %d, want 3", ks.Term)
	}
	checkReadable(t, b, "before", 9)
	checkReadable(t, b, "at", 1)
	checkReadable(t, b, "tx", 1)
	checkReadable(t, b, "after", 9)
}

// TestRotationUnderConcurrentWrites: many writers crossing the limit at
// once rotate the key, and every value they wrote reads back.
func TestRotationUnderConcurrentWrites(t *testing.T) {
	ctx := context.Background()
	b, _ := newUnsealed(t, storage.NewInmem())
	if err := b.SetRotationConfig(ctx, RotationConfig{MaxOperations: 50}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			putN(t, b, fmt.Sprintf("w%d", w), 40)
		}()
	}
	wg.Wait()
	if ks := b.KeyStatus(); ks.Term < 2 {
		t.Fatalf("320 writes with max_operations 50: term %d, want a rotation", ks.Term)
	}
	for w := range 8 {
		checkReadable(t, b, fmt.Sprintf("w%d", w), 40)
	}
}

// TestDisabledRotationStillCounts: enabled=false stops rotation, not the
// count.
func TestDisabledRotationStillCounts(t *testing.T) {
	ctx := context.Background()
	b, _ := newUnsealed(t, storage.NewInmem())
	if err := b.SetRotationConfig(ctx, RotationConfig{MaxOperations: 5, Disabled: true}); err != nil {
		t.Fatal(err)
	}
	putN(t, b, "k", 12)
	if ks := b.KeyStatus(); ks.Term != 1 || ks.Encryptions != 12 {
		t.Fatalf("term %d, %d encryptions; want term 1, 12", ks.Term, ks.Encryptions)
	}
}

// TestRotatesAfterInterval uses an injected clock: the key rotates once it
// is interval old, not before.
func TestRotatesAfterInterval(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	b := New(storage.NewInmem())
	b.Clock = clock
	root, _ := GenerateKey()
	if err := b.Initialize(ctx, root); err != nil {
		t.Fatal(err)
	}
	if err := b.Unseal(ctx, root); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Seal)
	if err := b.SetRotationConfig(ctx, RotationConfig{MaxOperations: MaxOperationsLimit, Interval: 48 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	putN(t, b, "old", 3)
	advance(47 * time.Hour)
	if rotated, err := b.RotateIfDue(ctx); err != nil || rotated {
		t.Fatalf("after 47h of a 48h interval: rotated %v, %v", rotated, err)
	}
	advance(time.Hour)
	if rotated, err := b.RotateIfDue(ctx); err != nil || !rotated {
		t.Fatalf("after 48h: rotated %v, %v", rotated, err)
	}
	ks := b.KeyStatus()
	if ks.Term != 2 || !ks.InstallTime.Equal(now) {
		t.Fatalf("new key: term %d installed %s, want term 2 installed %s", ks.Term, ks.InstallTime, now)
	}
	if rotated, _ := b.RotateIfDue(ctx); rotated {
		t.Fatal("rotated again at once: the interval counts from the new key's install time")
	}
	checkReadable(t, b, "old", 3)
}

// TestEncryptionCountSurvivesRestart: a restarted barrier resumes counting
// at or above the count it reached, never from zero, and keeps its settings.
func TestEncryptionCountSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	phys := storage.NewInmem()
	b, root := newUnsealed(t, phys)
	want := RotationConfig{MaxOperations: 2_000_000, Interval: 72 * time.Hour}
	if err := b.SetRotationConfig(ctx, want); err != nil {
		t.Fatal(err)
	}
	putN(t, b, "k", 25)
	before := b.KeyStatus().Encryptions
	// No Seal: a crash loses what only memory held.
	again := New(phys)
	if err := again.Unseal(ctx, root); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(again.Seal)
	if got := again.KeyStatus().Encryptions; got < before {
		t.Fatalf("after a restart the count is %d, below the %d encryptions made", got, before)
	}
	if got, err := again.RotationConfig(); err != nil || got != want {
		t.Fatalf("rotation settings after a restart: %+v, %v; want %+v", got, err, want)
	}
	checkReadable(t, again, "k", 25)
}

func TestSetRotationConfigRejectsNonsense(t *testing.T) {
	b, _ := newUnsealed(t, storage.NewInmem())
	for _, rc := range []RotationConfig{{MaxOperations: 0}, {MaxOperations: MaxOperationsLimit + 1}, {MaxOperations: 10, Interval: -time.Hour}} {
		if err := b.SetRotationConfig(context.Background(), rc); err == nil {
			t.Errorf("%+v accepted", rc)
		}
	}
	if got, _ := b.RotationConfig(); got != defaultRotation {
		t.Fatalf("settings after rejected changes: %+v", got)
	}
}

func BenchmarkPut(b *testing.B) {
	br, _ := newUnsealed(b, storage.NewInmem())
	ctx := context.Background()
	e := &storage.Entry{Key: "k", Value: make([]byte, 100)}
	b.ReportAllocs()
	for b.Loop() {
		br.Put(ctx, e)
	}
}
