package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arcasec/arca/api"
)

// countingMethod hands out a token without TTL and counts its logins.
type countingMethod struct{ logins atomic.Int32 }

func (m *countingMethod) Login(context.Context, *api.Client) (*api.Secret, error) {
	n := m.logins.Add(1)
	return &api.Secret{Auth: &api.SecretAuth{ClientToken: "tok-" + string(rune('0'+n))}}, nil
}

// CheckToken looks the token up at most once per CheckInterval; a lookup
// that succeeds keeps the token, one refused with 403 logs in again.
func TestCheckTokenRelogsOnlyWhenRefused(t *testing.T) {
	var lookups, revoked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/auth/token/lookup-self" {
			http.NotFound(w, r)
			return
		}
		lookups.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if revoked.Load() == 1 && r.Header.Get("X-Vault-Token") == "tok-1" {
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"errors":["permission denied"]}`))
			return
		}
		w.Write([]byte(`{"data":{"ttl":0}}`))
	}))
	defer srv.Close()
	c, err := api.NewClient(api.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	start := func(every time.Duration) (*Handler, *countingMethod, chan string) {
		m := &countingMethod{}
		tokens := make(chan string, 4)
		h := &Handler{Client: c.Clone(), Method: m, OnToken: func(tok string) { tokens <- tok }, checkInterval: every}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { h.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		if tok := <-tokens; tok != "tok-1" {
			t.Fatalf("first token %q", tok)
		}
		return h, m, tokens
	}

	h, m, _ := start(0)
	h.CheckToken()
	waitUntil(t, func() bool { return lookups.Load() == 1 })
	h.CheckToken() // within CheckInterval of the last: no lookup
	h.CheckToken()
	if m.logins.Load() != 1 {
		t.Fatalf("%d logins after a lookup that succeeded, want 1", m.logins.Load())
	}

	revoked.Store(1)
	lookups.Store(0)
	h, _, tokens := start(time.Nanosecond)
	h.CheckToken()
	select {
	case tok := <-tokens:
		if tok != "tok-2" {
			t.Fatalf("new token %q, want tok-2", tok)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no new login after the token was refused")
	}
	if n := lookups.Load(); n != 1 {
		t.Fatalf("%d lookups, want 1", n)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A token that may not look itself up (no default policy) is refused at
// every check: after one login the refusal caused, a fresh token refused too
// turns the checks off instead of logging in again every CheckInterval,
// which would leave a trail of tokens (and spend secret IDs).
func TestCheckTokenStopsWhenFreshTokensAreRefusedToo(t *testing.T) {
	var lookups atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lookups.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte(`{"errors":["permission denied"]}`))
	}))
	defer srv.Close()
	c, err := api.NewClient(api.Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	m := &countingMethod{}
	h := &Handler{Client: c, Method: m, checkInterval: time.Nanosecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for range 20 {
		h.CheckToken()
		time.Sleep(5 * time.Millisecond)
	}
	waitUntil(t, func() bool { return lookups.Load() >= 2 })
	for range 20 {
		h.CheckToken()
		time.Sleep(5 * time.Millisecond)
	}
	if n := m.logins.Load(); n != 2 {
		t.Fatalf("%d logins, want 2 (the first, and one after the first refusal)", n)
	}
}
