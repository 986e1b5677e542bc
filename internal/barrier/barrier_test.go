package barrier

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arcasec/arca/internal/storage"
)

func newUnsealed(t testing.TB, phys storage.Backend) (*Barrier, []byte) {
	t.Helper()
	ctx := context.Background()
	b := New(phys)
	root, _ := GenerateKey()
	if err := b.Initialize(ctx, root); err != nil {
		t.Fatal(err)
	}
	if err := b.Unseal(ctx, root); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Seal)
	return b, root
}

func TestRoundTripRotateReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "b.db")
	phys, err := storage.New("bolt", map[string]string{"path": path})
	if err != nil {
		t.Fatal(err)
	}
	b, root := newUnsealed(t, phys)
	b.Put(ctx, &storage.Entry{Key: "a/old", Value: []byte("before rotation")})
	if ki, err := b.Rotate(ctx); err != nil || ki.Term != 2 {
		t.Fatalf("rotate = %+v, %v", ki, err)
	}
	b.Put(ctx, &storage.Entry{Key: "a/new", Value: []byte("after rotation")})
	for k, want := range map[string]string{"a/old": "before rotation", "a/new": "after rotation"} {
		if e, err := b.Get(ctx, k); err != nil || string(e.Value) != want {
			t.Fatalf("get %s = %v, %v", k, e, err)
		}
	}
	b.Seal()
	if _, err := b.Get(ctx, "a/old"); !errors.Is(err, ErrSealed) {
		t.Fatalf("get while sealed: %v", err)
	}
	phys.Close()

	phys, _ = storage.New("bolt", map[string]string{"path": path})
	defer phys.Close()
	b = New(phys)
	wrong, _ := GenerateKey()
	if err := b.Unseal(ctx, wrong); !errors.Is(err, ErrBadRootKey) {
		t.Fatalf("unseal with wrong key: %v", err)
	}
	if err := b.Unseal(ctx, root); err != nil {
		t.Fatal(err)
	}
	if ks := b.KeyStatus(); ks.Term != 2 {
		t.Fatalf("term after reopen = %d", ks.Term)
	}
	if e, err := b.Get(ctx, "a/old"); err != nil || string(e.Value) != "before rotation" {
		t.Fatalf("after reopen: %v, %v", e, err)
	}
}

func TestTamperAndMove(t *testing.T) {
	ctx := context.Background()
	phys := storage.NewInmem()
	b, _ := newUnsealed(t, phys)
	b.Put(ctx, &storage.Entry{Key: "x", Value: []byte("secret value")})
	raw, _ := phys.Get(ctx, "x")
	// Moved to another key: fails authentication.
	phys.Put(ctx, &storage.Entry{Key: "y", Value: raw.Value})
	if _, err := b.Get(ctx, "y"); err == nil || !strings.Contains(err.Error(), "altered or moved") {
		t.Fatalf("moved value: %v", err)
	}
	// One flipped byte: fails.
	bad := append([]byte(nil), raw.Value...)
	bad[len(bad)-1] ^= 1
	phys.Put(ctx, &storage.Entry{Key: "x", Value: bad})
	if _, err := b.Get(ctx, "x"); err == nil {
		t.Fatal("tampered value decrypted")
	}
	if err := b.Put(ctx, &storage.Entry{Key: "core/keyring", Value: []byte("x")}); err == nil {
		t.Fatal("overwrote the keyring through the barrier")
	}
}

func TestNoPlaintextAtRest(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "b.db")
	phys, _ := storage.New("bolt", map[string]string{"path": path})
	b, root := newUnsealed(t, phys)
	marker := []byte("MARKER-0123456789-plaintext")
	for _, k := range []string{"one", "two/three"} {
		if err := b.Put(ctx, &storage.Entry{Key: k, Value: marker}); err != nil {
			t.Fatal(err)
		}
	}
	b.Transaction(ctx, []storage.Op{{Kind: storage.OpPut, Entry: &storage.Entry{Key: "tx", Value: marker}}})
	keys := [][]byte{root}
	for _, k := range b.keys {
		keys = append(keys, append([]byte(nil), k.Value...))
	}
	phys.Close()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, marker) {
		t.Fatal("the marker is in the file in plaintext")
	}
	for i, k := range keys {
		if bytes.Contains(raw, k) {
			t.Fatalf("key %d is in the file in plaintext", i)
		}
	}
}

func FuzzDecrypt(f *testing.F) {
	b, _ := newUnsealed(f, storage.NewInmem())
	ct, _, _ := b.encrypt(context.Background(), "k", []byte("v"))
	f.Add(ct)
	f.Add([]byte{1, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, raw []byte) {
		b.decrypt("k", raw)
	})
}

func BenchmarkGet(b *testing.B) {
	br, _ := newUnsealed(b, storage.NewInmem())
	ctx := context.Background()
	br.Put(ctx, &storage.Entry{Key: "k", Value: make([]byte, 100)})
	b.ReportAllocs()
	for b.Loop() {
		br.Get(ctx, "k")
	}
}
