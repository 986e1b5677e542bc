package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/seal"
	"github.com/arcasec/arca/internal/storage"
)

// fakeClock is a clock a test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// newClockedCore returns an unsealed in-memory core whose token store runs
// on a fake clock, and its root token.
func newClockedCore(t testing.TB) (*Core, *fakeClock, string) {
	t.Helper()
	c, err := New(Config{Storage: storage.NewInmem(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
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
	clock := &fakeClock{now: time.Now()}
	c.tokens.now = clock.Now
	return c, clock, res.RootToken
}

func call(c *Core, token string, op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	return c.HandleRequest(context.Background(), &logical.Request{Operation: op, Path: path, ClientToken: token, Data: data})
}

// createToken creates a token as parent and returns its ID.
func createToken(t *testing.T, c *Core, parent string, data map[string]any) string {
	t.Helper()
	resp, err := call(c, parent, logical.UpdateOperation, "auth/token/create", data)
	if err != nil {
		t.Fatalf("creating a token: %v", err)
	}
	return resp.Auth.ClientToken
}

func wantRefused(t *testing.T, c *Core, token, why string) {
	t.Helper()
	if _, err := call(c, token, logical.ReadOperation, "auth/token/lookup-self", nil); !errors.Is(err, logical.ErrPermissionDenied) {
		t.Fatalf("%s: lookup-self err = %v, want permission denied", why, err)
	}
}

// cubbyholeKeys lists what a token keeps in its cubbyhole, as stored.
func cubbyholeKeys(t *testing.T, c *Core, token string) []string {
	t.Helper()
	keys, err := c.mounts.get("cubbyhole/").view.List(context.Background(), hashID(token)+"/")
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// A token that expires is refused at once, not when tidy next runs, and
// its cubbyhole is destroyed with it.
func TestExpiredTokenRefusedAndCubbyholeDestroyed(t *testing.T) {
	c, clock, root := newClockedCore(t)
	tok := createToken(t, c, root, map[string]any{"policies": "default", "ttl": "10m"})
	if _, err := call(c, tok, logical.UpdateOperation, "cubbyhole/note", map[string]any{"v": "x"}); err != nil {
		t.Fatal(err)
	}
	if len(cubbyholeKeys(t, c, tok)) != 1 {
		t.Fatal("cubbyhole write not stored")
	}
	clock.advance(9 * time.Minute)
	if _, err := call(c, tok, logical.ReadOperation, "auth/token/lookup-self", nil); err != nil {
		t.Fatalf("token refused before it expires: %v", err)
	}
	clock.advance(time.Minute)
	wantRefused(t, c, tok, "expired token")
	if keys := cubbyholeKeys(t, c, tok); len(keys) != 0 {
		t.Fatalf("cubbyhole of an expired token still holds %v", keys)
	}
}

// A child is refused as soon as a token above it expires, even when the
// child's own TTL has time left.
func TestChildRefusedWhenAncestorExpires(t *testing.T) {
	c, clock, root := newClockedCore(t)
	parent := createToken(t, c, root, map[string]any{"policies": "root", "ttl": "1h"})
	child := createToken(t, c, parent, map[string]any{"policies": "root", "ttl": "1h"})
	grandchild := createToken(t, c, child, map[string]any{"policies": "default", "ttl": "1h"})
	if _, err := call(c, grandchild, logical.UpdateOperation, "cubbyhole/note", map[string]any{"v": "x"}); err != nil {
		t.Fatal(err)
	}
	// Renewing the grandchild takes it past its grandparent's expiry.
	clock.advance(30 * time.Minute)
	if _, err := call(c, root, logical.UpdateOperation, "auth/token/renew", map[string]any{"token": grandchild, "increment": "1h"}); err != nil {
		t.Fatal(err)
	}
	clock.advance(31 * time.Minute)
	if te, _ := c.tokens.load(context.Background(), grandchild); te == nil || te.expired(clock.Now()) {
		t.Fatal("the grandchild should not have expired on its own")
	}
	wantRefused(t, c, grandchild, "grandchild of an expired token")
	wantRefused(t, c, child, "child of an expired token")
	if keys := cubbyholeKeys(t, c, grandchild); len(keys) != 0 {
		t.Fatalf("cubbyhole of a token revoked with its ancestor still holds %v", keys)
	}
}

// A child whose parent is gone (a revocation that stopped after the
// parent) is refused and revoked.
func TestChildRefusedWhenParentGone(t *testing.T) {
	c, _, root := newClockedCore(t)
	parent := createToken(t, c, root, map[string]any{"policies": "root"})
	child := createToken(t, c, parent, map[string]any{"policies": "default"})
	if err := c.tokens.revokeOne(context.Background(), hashID(parent)); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, c, child, "child of a revoked token")
	if te, err := c.tokens.load(context.Background(), child); err != nil || te != nil {
		t.Fatalf("orphaned child still stored: %v, %v", te, err)
	}
}

// Tidy revokes tokens cut off from a parent that is gone, and expired
// ones, with their cubbyholes, without waiting for them to be used.
func TestTidyRevokesDeadTokens(t *testing.T) {
	c, clock, root := newClockedCore(t)
	parent := createToken(t, c, root, map[string]any{"policies": "root"})
	child := createToken(t, c, parent, map[string]any{"policies": "default"})
	short := createToken(t, c, root, map[string]any{"policies": "default", "ttl": "1m"})
	long := createToken(t, c, root, map[string]any{"policies": "default", "ttl": "1h"})
	for _, tok := range []string{child, short} {
		if _, err := call(c, tok, logical.UpdateOperation, "cubbyhole/note", map[string]any{"v": "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.tokens.revokeOne(context.Background(), hashID(parent)); err != nil {
		t.Fatal(err)
	}
	clock.advance(2 * time.Minute)
	if _, err := call(c, root, logical.UpdateOperation, "auth/token/tidy", nil); err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"child of a gone parent": child, "expired token": short} {
		found, err := c.tokens.view.Get(context.Background(), tokenIDPrefix+hashID(tok))
		if err != nil || found != nil {
			t.Fatalf("%s still stored after tidy: %v", name, err)
		}
		if keys := cubbyholeKeys(t, c, tok); len(keys) != 0 {
			t.Fatalf("%s: cubbyhole still holds %v", name, keys)
		}
	}
	if _, err := call(c, long, logical.ReadOperation, "auth/token/lookup-self", nil); err != nil {
		t.Fatalf("tidy revoked a live token: %v", err)
	}
}

// A chain of tokens stops at maxTokenDepth with a 400, and every token in
// it still works.
func TestTokenChainDepthLimited(t *testing.T) {
	c, _, root := newClockedCore(t)
	tok := root
	for n := 1; ; n++ {
		resp, err := call(c, tok, logical.UpdateOperation, "auth/token/create", map[string]any{"policies": "root"})
		if err != nil {
			if logical.StatusOf(err) != 400 || n != maxTokenDepth {
				t.Fatalf("creating token %d of a chain: %v (status %d), want a 400 at %d", n, err, logical.StatusOf(err), maxTokenDepth)
			}
			break
		}
		tok = resp.Auth.ClientToken
	}
	if _, err := call(c, tok, logical.ReadOperation, "auth/token/lookup-self", nil); err != nil {
		t.Fatalf("deepest token of the chain refused: %v", err)
	}
}

// A spent token is accepted only inside the request that spent it: a
// revocation that failed afterwards does not leave it usable elsewhere,
// even on paths that take no token.
func TestSpentTokenServesOnlyItsLastRequest(t *testing.T) {
	c, _, root := newClockedCore(t)
	tok := createToken(t, c, root, map[string]any{"policies": "default", "num_uses": 1})
	ctx := context.Background()
	if last, err := c.tokens.use(ctx, tok); err != nil || !last {
		t.Fatalf("spending the only use: last = %v, err = %v", last, err)
	}
	if te, err := c.tokens.lookupInFlight(ctx, tok); err != nil || te != nil {
		t.Fatalf("spent token accepted outside its request: %v, %v", te, err)
	}
	other := createToken(t, c, root, map[string]any{"policies": "default"})
	if te, err := c.tokens.lookupInFlight(context.WithValue(ctx, lastUseKey{}, other), tok); err != nil || te != nil {
		t.Fatalf("spent token accepted in another token's request: %v, %v", te, err)
	}
	if te, err := c.tokens.lookupInFlight(context.WithValue(ctx, lastUseKey{}, tok), tok); err != nil || te == nil {
		t.Fatalf("spent token refused in the request that spent it: %v", err)
	}
	if _, err := c.tokens.use(ctx, tok); !errors.Is(err, logical.ErrPermissionDenied) {
		t.Fatalf("a use beyond the last: err = %v, want permission denied", err)
	}
}

// Renewal never takes a token past its explicit max TTL, counted from
// creation, however often it is renewed.
func TestRenewCappedByExplicitMaxTTL(t *testing.T) {
	c, clock, root := newClockedCore(t)
	tok := createToken(t, c, root, map[string]any{"policies": "default", "ttl": "10m", "explicit_max_ttl": "25m"})
	for range 3 {
		clock.advance(8 * time.Minute)
		resp, err := call(c, tok, logical.UpdateOperation, "auth/token/renew-self", map[string]any{"increment": "10m"})
		if err != nil {
			t.Fatal(err)
		}
		if left := resp.Auth.TTL; left > 10*time.Minute {
			t.Fatalf("renewed for %v, more than asked", left)
		}
	}
	clock.advance(time.Minute) // 25m after creation
	wantRefused(t, c, tok, "token past its explicit max TTL")
}

// BenchmarkTokenLookupDepth measures the hot-path lookup of a token with
// a chain of parents, all cached.
func BenchmarkTokenLookupDepth(b *testing.B) {
	for _, depth := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("depth=%d", depth), func(b *testing.B) {
			c, _, root := newClockedCore(b)
			tok := root
			for range depth {
				resp, err := call(c, tok, logical.UpdateOperation, "auth/token/create", map[string]any{"policies": "root", "ttl": "1h"})
				if err != nil {
					b.Fatal(err)
				}
				tok = resp.Auth.ClientToken
			}
			ctx := context.Background()
			for b.Loop() {
				if te, err := c.tokens.lookup(ctx, tok); err != nil || te == nil {
					b.Fatal("lookup failed", err)
				}
			}
		})
	}
}
