package core

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/logical/leasetest"
	"github.com/arcasec/arca/internal/seal"
	"github.com/arcasec/arca/internal/storage"
)

// newManualCore returns an unsealed in-memory core whose every clock (the
// token store's and the expiration manager's) is a manual one.
func newManualCore(t *testing.T) (*Core, *leasetest.Clock, string) {
	t.Helper()
	clock := leasetest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	c, err := New(Config{Storage: storage.NewInmem(), Clock: clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := c.Init(ctx, seal.Config{Shares: 1, Threshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Unseal(ctx, res.Shares[0]); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Seal(context.Background()) })
	return c, clock, res.RootToken
}

// tokenTimeKeys lists the token keys of the expiry index.
func tokenTimeKeys(t *testing.T, c *Core) []string {
	t.Helper()
	var out []string
	buckets, err := c.expiration.view.List(context.Background(), leaseTimePrefix)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range buckets {
		keys, err := c.expiration.view.List(context.Background(), leaseTimePrefix+b)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if tokenOfTimeKey(k) != "" {
				out = append(out, leaseTimePrefix+b+k)
			}
		}
	}
	return out
}

func stored(t *testing.T, c *Core, token string) bool {
	t.Helper()
	e, err := c.tokens.view.Get(context.Background(), tokenIDPrefix+hashID(token))
	if err != nil {
		t.Fatal(err)
	}
	return e != nil
}

// The expiry loop revokes an expired token on its own, with the tokens
// below it and their cubbyholes, and leaves no key in the index.
func TestExpiryLoopRevokesExpiredTokenTree(t *testing.T) {
	c, clock, root := newManualCore(t)
	parent := createToken(t, c, root, map[string]any{"policies": "root", "ttl": "3s"})
	child := createToken(t, c, parent, map[string]any{"policies": "default", "ttl": "1h"})
	for _, tok := range []string{parent, child} {
		if _, err := call(c, tok, logical.UpdateOperation, "cubbyhole/note", map[string]any{"v": "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(tokenTimeKeys(t, c)); n != 2 {
		t.Fatalf("%d token keys in the expiry index, want 2", n)
	}
	clock.Advance(4 * time.Second)
	deadline := time.Now().Add(20 * time.Second) // only stops a broken test from hanging
	for stored(t, c, parent) || stored(t, c, child) {
		if time.Now().After(deadline) {
			t.Fatal("the expiry loop did not revoke the expired token and its child")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, tok := range []string{parent, child} {
		if keys := cubbyholeKeys(t, c, tok); len(keys) != 0 {
			t.Fatalf("cubbyhole still holds %v", keys)
		}
	}
	if keys := tokenTimeKeys(t, c); len(keys) != 0 {
		t.Fatalf("token keys left in the expiry index: %v", keys)
	}
}

// Renewal moves the token's key; revocation removes it; tidy gives an
// expiring token that lacks one (stored before the index existed) its key.
func TestTokenExpiryKeyFollowsRenewRevokeAndTidy(t *testing.T) {
	c, clock, root := newManualCore(t)
	tok := createToken(t, c, root, map[string]any{"policies": "default", "ttl": "1m", "explicit_max_ttl": "1h"})
	keys := tokenTimeKeys(t, c)
	if len(keys) != 1 || !strings.HasSuffix(keys[0], hashID(tok)) {
		t.Fatalf("keys after create: %v", keys)
	}
	clock.Advance(30 * time.Second)
	if _, err := call(c, tok, logical.UpdateOperation, "auth/token/renew-self", map[string]any{"increment": "10m"}); err != nil {
		t.Fatal(err)
	}
	after := tokenTimeKeys(t, c)
	if len(after) != 1 || after[0] == keys[0] {
		t.Fatalf("keys after renew: %v (before %v)", after, keys)
	}

	if err := c.expiration.view.Delete(context.Background(), after[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := call(c, root, logical.UpdateOperation, "auth/token/tidy", nil); err != nil {
		t.Fatal(err)
	}
	if got := tokenTimeKeys(t, c); len(got) != 1 || got[0] != after[0] {
		t.Fatalf("keys after tidy: %v, want %v", got, after)
	}

	if _, err := call(c, root, logical.UpdateOperation, "auth/token/revoke", map[string]any{"token": tok}); err != nil {
		t.Fatal(err)
	}
	if got := tokenTimeKeys(t, c); len(got) != 0 {
		t.Fatalf("keys after revoke: %v", got)
	}
}

// failingStorage fails every write that touches a key containing fail.
type failingStorage struct {
	storage.Backend
	fail atomic.Value // string
}

func (f *failingStorage) hit(key string) bool {
	s, _ := f.fail.Load().(string)
	return s != "" && strings.Contains(key, s)
}

func (f *failingStorage) Delete(ctx context.Context, key string) error {
	if f.hit(key) {
		return errors.New("storage unavailable")
	}
	return f.Backend.Delete(ctx, key)
}

func (f *failingStorage) Transaction(ctx context.Context, ops []storage.Op) error {
	for _, op := range ops {
		if f.hit(op.Entry.Key) {
			return errors.New("storage unavailable")
		}
	}
	return f.Backend.Transaction(ctx, ops)
}

// An expired token whose revocation fails keeps its key, rescheduled with
// the leases' backoff and the attempt recorded, and is revoked once the
// failure clears.
func TestExpiredTokenRevocationRetried(t *testing.T) {
	clock := leasetest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	fs := &failingStorage{Backend: storage.NewInmem()}
	c, err := New(Config{Storage: fs, Clock: clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := c.Init(ctx, seal.Config{Shares: 1, Threshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Unseal(ctx, res.Shares[0]); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Seal(context.Background()) })
	tok := createToken(t, c, res.RootToken, map[string]any{"policies": "default", "ttl": "3s"})
	fs.fail.Store("sys/token/id/" + hashID(tok))

	clock.Advance(4 * time.Second)
	due := clock.Now().Add(revokeBackoffBase)
	want := tokenTimeKey(due, hashID(tok))
	deadline := time.Now().Add(20 * time.Second) // only stops a broken test from hanging
	for {
		keys := tokenTimeKeys(t, c)
		if len(keys) == 1 && keys[0] == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("token keys %v, want the retry %s", keys, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	var rec tokenExpiryRecord
	if _, err := getJSONFrom(ctx, c.expiration.view, want, &rec); err != nil || rec.RevokeAttempts != 1 || !strings.Contains(rec.LastRevokeError, "storage unavailable") {
		t.Fatalf("retry record %+v, %v", rec, err)
	}
	if !stored(t, c, tok) {
		t.Fatal("the token is gone although its revocation failed")
	}

	fs.fail.Store("")
	clock.Advance(revokeBackoffBase)
	for stored(t, c, tok) || len(tokenTimeKeys(t, c)) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the retry did not revoke the token; keys %v", tokenTimeKeys(t, c))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
