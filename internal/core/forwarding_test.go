package core

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestForwardedClientMAC(t *testing.T) {
	c, _, _ := newClockedCore(t)
	ctx := context.Background()
	now := time.Now()
	v, err := c.SignForwardedClient(ctx, "192.0.2.7:4000", "POST", "/v1/secret/data/a?x=1", now)
	if err != nil {
		t.Fatal(err)
	}
	if addr, ok := c.VerifyForwardedClient(ctx, v, "POST", "/v1/secret/data/a?x=1", now.Add(5*time.Second)); !ok || addr != "192.0.2.7:4000" {
		t.Fatalf("a fresh signed address: %q %v", addr, ok)
	}
	for name, check := range map[string]func() (string, bool){
		"other method": func() (string, bool) { return c.VerifyForwardedClient(ctx, v, "GET", "/v1/secret/data/a?x=1", now) },
		"other URI":    func() (string, bool) { return c.VerifyForwardedClient(ctx, v, "POST", "/v1/secret/data/b?x=1", now) },
		"too old": func() (string, bool) {
			return c.VerifyForwardedClient(ctx, v, "POST", "/v1/secret/data/a?x=1", now.Add(ForwardedClientMaxAge+2*time.Second))
		},
		"from the future": func() (string, bool) {
			return c.VerifyForwardedClient(ctx, v, "POST", "/v1/secret/data/a?x=1", now.Add(-ForwardedClientMaxAge-2*time.Second))
		},
		"other address": func() (string, bool) {
			return c.VerifyForwardedClient(ctx, strings.Replace(v, "192.0.2.7", "192.0.2.8", 1), "POST", "/v1/secret/data/a?x=1", now)
		},
		"garbage": func() (string, bool) { return c.VerifyForwardedClient(ctx, "v1 x y z", "POST", "/", now) },
	} {
		if addr, ok := check(); ok {
			t.Errorf("%s: verified as %q", name, addr)
		}
	}

	// The key is kept behind the barrier and survives a seal and unseal;
	// a sealed core verifies nothing.
	c.Seal(ctx)
	if _, ok := c.VerifyForwardedClient(ctx, v, "POST", "/v1/secret/data/a?x=1", now); ok {
		t.Error("a sealed core verified a forwarded address")
	}
}

// BenchmarkForwardedClient measures what forwarding adds per request: the
// standby signs, the active verifies.
func BenchmarkForwardedClient(b *testing.B) {
	c, _, _ := newClockedCore(b)
	ctx := context.Background()
	for b.Loop() {
		now := time.Now()
		v, err := c.SignForwardedClient(ctx, "192.0.2.7:4000", "POST", "/v1/secret/data/a", now)
		if err != nil {
			b.Fatal(err)
		}
		if _, ok := c.VerifyForwardedClient(ctx, v, "POST", "/v1/secret/data/a", now); !ok {
			b.Fatal("did not verify")
		}
	}
}
