package core

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/arcasec/arca/internal/barrier"
	"github.com/arcasec/arca/internal/seal"
	"github.com/arcasec/arca/internal/seal/shamir"
	"github.com/arcasec/arca/internal/storage"
)

// fakeSeal is a key service in memory: AES-GCM under a key of its own,
// and a switch that makes it fail as an unreachable one would.
type fakeSeal struct {
	aead cipher.AEAD
	down atomic.Bool
}

func newFakeSeal(t *testing.T) *fakeSeal {
	key := make([]byte, 32)
	rand.Read(key)
	block, _ := aes.NewCipher(key)
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeSeal{aead: aead}
}

var errServiceDown = errors.New("key service down")

func (f *fakeSeal) Type() string { return "transit" }

func (f *fakeSeal) Encrypt(_ context.Context, plain []byte) (string, error) {
	if f.down.Load() {
		return "", errServiceDown
	}
	nonce := make([]byte, f.aead.NonceSize())
	rand.Read(nonce)
	return base64.StdEncoding.EncodeToString(f.aead.Seal(nonce, nonce, plain, nil)), nil
}

func (f *fakeSeal) Decrypt(_ context.Context, ct string) ([]byte, error) {
	if f.down.Load() {
		return nil, errServiceDown
	}
	raw, err := base64.StdEncoding.DecodeString(ct)
	if err != nil || len(raw) < f.aead.NonceSize() {
		return nil, errors.New("bad ciphertext")
	}
	n := f.aead.NonceSize()
	return f.aead.Open(nil, raw[:n], raw[n:], nil)
}

func newSealCore(t *testing.T, phys storage.Backend, s seal.Autoseal, disabled bool) *Core {
	t.Helper()
	c, err := New(Config{Storage: phys, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Seal: s, SealDisabled: disabled})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Seal(context.Background()) })
	return c
}

// opens reports whether key opens the keyring in phys.
func opens(t *testing.T, phys storage.Backend, key []byte) bool {
	t.Helper()
	b := barrier.New(phys)
	err := b.Unseal(context.Background(), key)
	b.Seal()
	if err != nil && !errors.Is(err, barrier.ErrBadRootKey) {
		t.Fatal(err)
	}
	return err == nil
}

func TestMigrationRetiresTheOldRootKey(t *testing.T) {
	ctx := context.Background()
	phys := storage.NewInmem()
	fs := newFakeSeal(t)

	c := newSealCore(t, phys, nil, false)
	res, err := c.Init(ctx, seal.Config{Shares: 3, Threshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	shamirKey, err := shamir.Combine(res.Shares[:2])
	if err != nil || !opens(t, phys, shamirKey) {
		t.Fatalf("the unseal keys do not open the new store: %v", err)
	}

	// To the seal: the unseal keys' key no longer opens the keyring.
	c = newSealCore(t, phys, fs, false)
	fs.down.Store(true)
	for _, s := range res.Shares[:2] {
		err = c.UnsealMigrate(ctx, s, true)
	}
	if err == nil || !c.Sealed() || !opens(t, phys, shamirKey) {
		t.Fatalf("a migration with the key service down: err %v, sealed %v", err, c.Sealed())
	}
	fs.down.Store(false)
	for _, s := range res.Shares[1:3] {
		if err := c.UnsealMigrate(ctx, s, true); err != nil {
			t.Fatal(err)
		}
	}
	if c.Sealed() || opens(t, phys, shamirKey) {
		t.Fatalf("after migrating to the seal: sealed %v, old key opens the keyring %v", c.Sealed(), opens(t, phys, shamirKey))
	}
	c.Seal(ctx)

	// It unseals itself, once the key service answers.
	c = newSealCore(t, phys, fs, false)
	fs.down.Store(true)
	if err := c.AutoUnseal(ctx); err == nil || errors.Is(err, ErrNoAutoUnseal) || !c.Sealed() {
		t.Fatalf("auto-unseal with the key service down: %v", err)
	}
	fs.down.Store(false)
	if err := c.AutoUnseal(ctx); err != nil || c.Sealed() {
		t.Fatalf("auto-unseal: %v", err)
	}
	c.Seal(ctx)

	// Back to Shamir: the recovery key, the old shares' key, is the root key again.
	c = newSealCore(t, phys, fs, true)
	if err := c.AutoUnseal(ctx); !errors.Is(err, ErrNoAutoUnseal) {
		t.Fatalf("auto-unseal with the seal disabled: %v", err)
	}
	for _, s := range []int{0, 2} {
		if err := c.UnsealMigrate(ctx, res.Shares[s], true); err != nil {
			t.Fatal(err)
		}
	}
	if c.Sealed() || !opens(t, phys, shamirKey) {
		t.Fatal("after migrating back to Shamir, the unseal keys do not open the keyring")
	}
	for _, k := range []string{sealedRootKeyKey, recoveryConfigKey} {
		if e, _ := phys.Get(ctx, k); e != nil {
			t.Errorf("%s is left after migrating to Shamir", k)
		}
	}
}
