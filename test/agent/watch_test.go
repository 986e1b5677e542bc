package agent_test

// The tests in this file drive the agent's secret watcher
// (internal/agent/watch) against real in-process servers: KV v2 reads and
// their version changes, the KV v2 path shim, writes with parameters,
// token changes, retries, and database credentials on real PostgreSQL that
// are renewed and then replaced near their max TTL. A counting proxy in
// front of the server shows what the watcher asked for.

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arcasec/arca/api"
	"github.com/arcasec/arca/internal/agent/watch"
	"github.com/arcasec/arca/internal/server/servertest"
	"github.com/arcasec/arca/internal/testutil/pgtest"
)

// watchProxy forwards to a server, counting requests by "METHOD /path"
// and answering 503 to the next failNext of them.
type watchProxy struct {
	URL      string
	mu       sync.Mutex
	counts   map[string]int
	tokens   map[string]int // requests per token, by the token's last 4 characters
	failNext atomic.Int64
}

func startWatchProxy(t *testing.T, target string) *watchProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &watchProxy{counts: map[string]int{}, tokens: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.counts[r.Method+" "+r.URL.Path]++
		if tok := r.Header.Get("X-Vault-Token"); len(tok) > 4 {
			p.tokens[tok[len(tok)-4:]]++
		}
		p.mu.Unlock()
		if p.failNext.Add(-1) >= 0 {
			http.Error(rw, `{"errors":["injected failure"]}`, http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func (p *watchProxy) count(methodPath string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[methodPath]
}

func (p *watchProxy) byToken(tok string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tokens[tok[len(tok)-4:]]
}

func watchWrite(t *testing.T, c *api.Client, path string, data map[string]any) *api.Secret {
	t.Helper()
	s, err := c.Write(context.Background(), path, data)
	if err != nil {
		t.Fatalf("writing %s: %v", path, err)
	}
	return s
}

// watchRun runs w until the test ends.
func watchRun(t *testing.T, w *watch.Watcher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, false) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	})
}

// waitChanged waits for the watcher's change signal. The deadline only
// stops a broken test from hanging.
func waitChanged(t *testing.T, w *watch.Watcher, what string) {
	t.Helper()
	select {
	case <-w.Changed():
	case <-time.After(30 * time.Second):
		t.Fatalf("no change signalled: %s", what)
	}
}

func mustSecret(t *testing.T, w *watch.Watcher, path string, data map[string]any) *api.Secret {
	t.Helper()
	s, err := w.Secret(path, data)
	if err != nil {
		t.Fatalf("Secret(%s): %v", path, err)
	}
	return s
}

// kvField returns data.data[field] and metadata.version of a KV v2 read.
func kvField(t *testing.T, s *api.Secret, field string) (value, version string) {
	t.Helper()
	d, _ := s.Data["data"].(map[string]any)
	md, _ := s.Data["metadata"].(map[string]any)
	if d == nil || md == nil {
		t.Fatalf("not a KV v2 response: %v", s.Data)
	}
	v, _ := d[field].(string)
	return v, fmt.Sprint(md["version"])
}

// A KV v2 secret read through the watcher is read again at the static
// interval: a `kv put` of a new version signals a change and the watcher
// then answers with the new data and version.
func TestWatchKVv2VersionChangeIsDetected(t *testing.T) {
	addr, root := servertest.StartDev(t)
	admin := apiClient(t, addr, root)
	watchWrite(t, admin, "secret/data/app/db", map[string]any{"data": map[string]any{"password": "first"}})

	w := watch.New(apiClient(t, addr, root), watch.Options{StaticInterval: 100 * time.Millisecond})
	s := mustSecret(t, w, "secret/data/app/db", nil)
	if v, ver := kvField(t, s, "password"); v != "first" || ver != "1" {
		t.Fatalf("first read: password %q version %s, want first and 1", v, ver)
	}
	watchRun(t, w)

	// Re-reads of unchanged data signal nothing.
	time.Sleep(350 * time.Millisecond)
	select {
	case <-w.Changed():
		t.Fatal("a change was signalled while the secret stayed the same")
	default:
	}

	watchWrite(t, admin, "secret/data/app/db", map[string]any{"data": map[string]any{"password": "second"}})
	waitChanged(t, w, "after kv put")
	s = mustSecret(t, w, "secret/data/app/db", nil)
	if v, ver := kvField(t, s, "password"); v != "second" || ver != "2" {
		t.Fatalf("after kv put: password %q version %s, want second and 2", v, ver)
	}
	// A query picks a version.
	if v, ver := kvField(t, mustSecret(t, w, "secret/app/db?version=1", nil), "password"); v != "first" || ver != "1" {
		t.Fatalf("?version=1: password %q version %s, want first and 1", v, ver)
	}
}

// A path on a KV v2 mount without data/ is read through it, as
// consul-template does; the mount is asked about once for every path
// under it; a missing secret is an error at once, not after retries; a
// list on the mount lists metadata/.
func TestWatchKVv2ShimPath(t *testing.T) {
	addr, root := servertest.StartDev(t)
	admin := apiClient(t, addr, root)
	watchWrite(t, admin, "secret/data/app/db", map[string]any{"data": map[string]any{"password": "pw1"}})
	watchWrite(t, admin, "secret/data/app/api", map[string]any{"data": map[string]any{"key": "k1"}})
	p := startWatchProxy(t, addr)

	w := watch.New(apiClient(t, p.URL, root), watch.Options{StaticInterval: time.Hour})
	s := mustSecret(t, w, "secret/app/db", nil)
	if v, _ := kvField(t, s, "password"); v != "pw1" {
		t.Fatalf("secret/app/db: password %q, want pw1", v)
	}
	s = mustSecret(t, w, "/secret/app/api", nil)
	if v, _ := kvField(t, s, "key"); v != "k1" {
		t.Fatalf("secret/app/api: key %q, want k1", v)
	}
	if n := p.count("GET /v1/secret/data/app/db"); n != 1 {
		t.Fatalf("GET secret/data/app/db %d times, want 1", n)
	}
	preflights := 0
	for _, k := range []string{"GET /v1/sys/internal/ui/mounts/secret/app/db", "GET /v1/sys/internal/ui/mounts/secret/app/api"} {
		preflights += p.count(k)
	}
	if preflights != 1 {
		t.Fatalf("the mount was asked about %d times, want once", preflights)
	}

	_, err := w.Secret("secret/app/missing", nil)
	if !errors.Is(err, watch.ErrNotFound) || !strings.Contains(err.Error(), "secret/data/app/missing") {
		t.Fatalf("missing secret: err = %v, want ErrNotFound naming secret/data/app/missing", err)
	}
	if n := p.count("GET /v1/secret/data/app/missing"); n != 1 {
		t.Fatalf("a 404 was fetched %d times, want once (no retries)", n)
	}

	// A deleted version is no secret either.
	if _, err := admin.Delete(context.Background(), "secret/data/app/api", nil); err != nil {
		t.Fatal(err)
	}
	fresh := watch.New(apiClient(t, p.URL, root), watch.Options{StaticInterval: time.Hour})
	if _, err := fresh.Secret("secret/app/api", nil); !errors.Is(err, watch.ErrNotFound) {
		t.Fatalf("deleted secret: err = %v, want ErrNotFound", err)
	}

	keys, err := w.List("secret/app")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(keys, ",") != "api,db" {
		t.Fatalf("List(secret/app) = %v, want [api db]", keys)
	}
}

// Concurrent first reads of one secret make one request.
func TestWatchConcurrentFirstReadsFetchOnce(t *testing.T) {
	addr, root := servertest.StartDev(t)
	watchWrite(t, apiClient(t, addr, root), "secret/data/shared", map[string]any{"data": map[string]any{"v": "1"}})
	p := startWatchProxy(t, addr)
	w := watch.New(apiClient(t, p.URL, root), watch.Options{StaticInterval: time.Hour})

	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			if _, err := w.Secret("secret/data/shared", nil); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := p.count("GET /v1/secret/data/shared"); n != 1 {
		t.Fatalf("16 concurrent first reads made %d requests, want 1", n)
	}
}

// A secret with write parameters (transit/encrypt with a plaintext) is a
// write whose answer is cached per (path, data): the same data again is
// answered from the cache, other data is another write.
func TestWatchWriteParameterSecret(t *testing.T) {
	addr, root := servertest.StartDev(t)
	admin := apiClient(t, addr, root)
	watchWrite(t, admin, "sys/mounts/transit", map[string]any{"type": "transit"})
	watchWrite(t, admin, "transit/keys/app", map[string]any{})
	p := startWatchProxy(t, addr)
	w := watch.New(apiClient(t, p.URL, root), watch.Options{StaticInterval: time.Hour})

	plain := base64.StdEncoding.EncodeToString([]byte("the plaintext"))
	s := mustSecret(t, w, "transit/encrypt/app", map[string]any{"plaintext": plain})
	ct, _ := s.Data["ciphertext"].(string)
	if !strings.HasPrefix(ct, "vault:v1:") {
		t.Fatalf("ciphertext %q, want vault:v1:...", ct)
	}
	again := mustSecret(t, w, "transit/encrypt/app", map[string]any{"plaintext": plain})
	if again.Data["ciphertext"] != ct {
		t.Fatal("the same write parameters were not answered from the cache")
	}
	if n := p.count("POST /v1/transit/encrypt/app") + p.count("PUT /v1/transit/encrypt/app"); n != 1 {
		t.Fatalf("%d writes to transit/encrypt/app, want 1", n)
	}
	dec := watchWrite(t, admin, "transit/decrypt/app", map[string]any{"ciphertext": ct})
	if got, _ := base64.StdEncoding.DecodeString(dec.Data["plaintext"].(string)); string(got) != "the plaintext" {
		t.Fatalf("decrypted %q", got)
	}

	other := mustSecret(t, w, "transit/encrypt/app", map[string]any{"plaintext": base64.StdEncoding.EncodeToString([]byte("other"))})
	if other.Data["ciphertext"] == ct {
		t.Fatal("other write parameters got the first answer")
	}
}

// After TokenChanged every watched secret is fetched again with the new
// token, at once rather than at the (long) static interval, and a change
// is signalled when the data moved.
func TestWatchTokenChangedRefetches(t *testing.T) {
	addr, root := servertest.StartDev(t)
	admin := apiClient(t, addr, root)
	watchWrite(t, admin, "secret/data/app/db", map[string]any{"data": map[string]any{"password": "first"}})
	watchWrite(t, admin, "sys/policies/acl/app", map[string]any{"policy": `path "secret/*" { capabilities = ["read", "list"] }`})
	newToken := func() string {
		s := watchWrite(t, admin, "auth/token/create", map[string]any{"policies": []string{"app"}})
		return s.Auth.ClientToken
	}
	tokA, tokB := newToken(), newToken()
	p := startWatchProxy(t, addr)
	c := apiClient(t, p.URL, tokA)
	w := watch.New(c, watch.Options{StaticInterval: time.Hour})
	mustSecret(t, w, "secret/app/db", nil)
	watchRun(t, w)

	watchWrite(t, admin, "secret/data/app/db", map[string]any{"data": map[string]any{"password": "second"}})
	watchWrite(t, admin, "auth/token/revoke", map[string]any{"token": tokA})
	c.SetToken(tokB)
	w.TokenChanged()
	waitChanged(t, w, "after the token changed")
	if v, _ := kvField(t, mustSecret(t, w, "secret/app/db", nil), "password"); v != "second" {
		t.Fatalf("after the token changed: password %q, want second", v)
	}
	if p.byToken(tokB) == 0 {
		t.Fatal("no request carried the new token")
	}
}

// A server that answers 503 is retried with backoff, and the first read
// succeeds once it answers; with retries exhausted the error is returned,
// and Run with exitOnRetryFailure returns an error when refreshing keeps
// failing, while the last good data stay readable.
func TestWatchRetries(t *testing.T) {
	addr, root := servertest.StartDev(t)
	watchWrite(t, apiClient(t, addr, root), "secret/data/app", map[string]any{"data": map[string]any{"v": "1"}})
	p := startWatchProxy(t, addr)
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))

	p.failNext.Store(3) // the preflight, then two reads
	w := watch.New(apiClient(t, p.URL, root), watch.Options{StaticInterval: 50 * time.Millisecond, Retries: 3, Logger: logger})
	mustSecret(t, w, "secret/app", nil)
	if !strings.Contains(logs.String(), "retrying") {
		t.Fatalf("the retries were not logged: %s", logs.String())
	}

	p.failNext.Store(1 << 30)
	none := watch.New(apiClient(t, p.URL, root), watch.Options{Retries: -1})
	if _, err := none.Secret("secret/data/other", nil); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("with the server failing and no retries: err = %v, want the 503", err)
	}

	done := make(chan error, 1)
	go func() { done <- w.Run(context.Background(), true) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "secret/app") {
			t.Fatalf("Run returned %v, want an error naming secret/app", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not give up although refreshing kept failing")
	}
	if s, err := w.Secret("secret/app", nil); err != nil || s == nil {
		t.Fatalf("the last good data are gone: %v", err)
	}
}

// Database credentials with ttl 2s and max_ttl 6s on real PostgreSQL: the
// watcher renews the lease (same username, the server records a renewal),
// and when a renewal can no longer extend it, fetches new credentials
// (another username) and signals a change; the old user is dropped by the
// server when its lease ends.
func TestWatchDatabaseCredsRenewedThenReplaced(t *testing.T) {
	pg := pgtest.Start(t)
	addr, root := servertest.StartDev(t)
	admin := apiClient(t, addr, root)
	watchWrite(t, admin, "sys/mounts/database", map[string]any{"type": "database"})
	pg.Exec(t, `CREATE ROLE vault_admin WITH LOGIN SUPERUSER PASSWORD 'vault_admin_password'`)
	watchWrite(t, admin, "database/config/production", map[string]any{
		"plugin_name": "postgresql-database-plugin", "connection_url": pg.TemplateURL(),
		"allowed_roles": "app", "username": "vault_admin", "password": "vault_admin_password",
	})
	watchWrite(t, admin, "database/roles/app", map[string]any{
		"db_name":             "production",
		"creation_statements": `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
		"default_ttl":         "2s", "max_ttl": "6s",
	})

	newToken := func() string {
		return watchWrite(t, admin, "auth/token/create", map[string]any{"policies": []string{"root"}}).Auth.ClientToken
	}
	tokA := newToken()
	c := apiClient(t, addr, tokA)
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	w := watch.New(c, watch.Options{StaticInterval: time.Hour, Logger: logger})
	first := mustSecret(t, w, "database/creds/app", nil)
	user1, _ := first.Data["username"].(string)
	if user1 == "" || first.LeaseID == "" || !first.Renewable || first.LeaseDuration != 2 {
		t.Fatalf("first creds: username %q lease %q renewable %v duration %d", user1, first.LeaseID, first.Renewable, first.LeaseDuration)
	}
	watchRun(t, w)

	// Renewed: the lease records a renewal while the watcher still hands
	// out the same username and lease.
	waitFor(t, 30*time.Second, "the lease renewed", func() bool {
		s, err := admin.Write(context.Background(), "sys/leases/lookup", map[string]any{"lease_id": first.LeaseID})
		return err == nil && s != nil && s.Data["last_renewal"] != nil
	})
	if s := mustSecret(t, w, "database/creds/app", nil); s.LeaseID != first.LeaseID || s.Data["username"] != user1 {
		select {
		case <-w.Changed():
		default:
			t.Fatalf("the secret was replaced without a change signal")
		}
	}

	// Replaced near max_ttl: new username, change signalled.
	var second *api.Secret
	waitFor(t, 30*time.Second, "new credentials after max_ttl", func() bool {
		second = mustSecret(t, w, "database/creds/app", nil)
		return second.LeaseID != first.LeaseID
	})
	waitChanged(t, w, "new credentials")
	user2, _ := second.Data["username"].(string)
	if user2 == "" || user2 == user1 {
		t.Fatalf("replacement username %q, first %q: want a new user", user2, user1)
	}
	waitFor(t, 30*time.Second, "the first user dropped", func() bool { return !pg.RoleExists(t, user1) })
	if !pg.RoleExists(t, user2) {
		t.Fatalf("the replacement user %s does not exist", user2)
	}

	// The agent logs in again and its old token is revoked, with the
	// leases taken under it: TokenChanged fetches new credentials with the
	// new token at once.
	watchWrite(t, admin, "auth/token/revoke", map[string]any{"token": tokA})
	waitFor(t, 30*time.Second, "the user of the revoked token dropped", func() bool { return !pg.RoleExists(t, user2) })
	c.SetToken(newToken())
	for len(w.Changed()) > 0 {
		<-w.Changed()
	}
	w.TokenChanged()
	waitChanged(t, w, "after the token changed")
	third := mustSecret(t, w, "database/creds/app", nil)
	user3, _ := third.Data["username"].(string)
	if user3 == "" || user3 == user2 || third.LeaseID == second.LeaseID || !pg.RoleExists(t, user3) {
		t.Fatalf("after the token changed: user %q lease %q, want a new user and lease", user3, third.LeaseID)
	}
}

// Prune drops the secrets the last render did not read: they are no longer
// re-read at the interval, and a later read fetches them afresh.
func TestWatchPruneDropsUnreadSecrets(t *testing.T) {
	addr, root := servertest.StartDev(t)
	admin := apiClient(t, addr, root)
	watchWrite(t, admin, "secret/data/app/a", map[string]any{"data": map[string]any{"v": "a1"}})
	watchWrite(t, admin, "secret/data/app/b", map[string]any{"data": map[string]any{"v": "b1"}})
	p := startWatchProxy(t, addr)
	w := watch.New(apiClient(t, p.URL, root), watch.Options{StaticInterval: 100 * time.Millisecond})
	watchRun(t, w)

	w.BeginRender()
	mustSecret(t, w, "secret/data/app/a", nil)
	mustSecret(t, w, "secret/data/app/b", nil)
	if n := w.Prune(); n != 0 {
		t.Fatalf("Prune dropped %d secrets the render read", n)
	}
	w.BeginRender()
	mustSecret(t, w, "secret/data/app/a", nil)
	if n := w.Prune(); n != 1 {
		t.Fatalf("Prune dropped %d secrets, want 1 (b)", n)
	}
	// a is still re-read; b is not.
	aBefore, bBefore := p.count("GET /v1/secret/data/app/a"), p.count("GET /v1/secret/data/app/b")
	waitFor(t, 30*time.Second, "a re-read of a", func() bool { return p.count("GET /v1/secret/data/app/a") >= aBefore+3 })
	if got := p.count("GET /v1/secret/data/app/b"); got > bBefore+1 {
		t.Fatalf("b was read %d more times after it was pruned", got-bBefore)
	}
	// Reading b again fetches it again.
	watchWrite(t, admin, "secret/data/app/b", map[string]any{"data": map[string]any{"v": "b2"}})
	if v, _ := kvField(t, mustSecret(t, w, "secret/data/app/b", nil), "v"); v != "b2" {
		t.Fatalf("b after pruning: %q, want the new b2", v)
	}
}
