package approle

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/logical/leasetest"
	"github.com/arcasec/arca/internal/storage"
)

// system is a SystemView for tests: a manual clock and a login guard that
// locks a name out after three failures in a row.
type system struct {
	clock *leasetest.Clock
	guard *testGuard
}

func (s *system) DefaultLeaseTTL() time.Duration { return time.Hour }
func (s *system) MaxLeaseTTL() time.Duration     { return 24 * time.Hour }
func (s *system) Now() time.Time                 { return s.clock.Now() }
func (s *system) LoginGuard() logical.LoginGuard { return s.guard }
func (s *system) GeneratePasswordFromPolicy(context.Context, string) (string, error) {
	return "", errors.New("not in tests")
}

type testGuard struct {
	mu       sync.Mutex
	failures map[string]int
	off      bool // never lock out
}

func (g *testGuard) Locked(_ context.Context, name string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.off && g.failures[name] >= 3
}
func (g *testGuard) Failed(_ context.Context, name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.failures[name]++
}
func (g *testGuard) Succeeded(_ context.Context, name string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.failures, name)
}

type harness struct {
	t     testing.TB
	b     *backend
	store *storage.Inmem
	sys   *system
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	sys := &system{clock: leasetest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)), guard: &testGuard{failures: map[string]int{}}}
	store := storage.NewInmem()
	be, err := Factory(context.Background(), &logical.BackendConfig{Storage: store, System: sys, MountPath: "auth/approle/"})
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, b: be.(*backend), store: store, sys: sys}
}

func (h *harness) do(op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	return h.b.HandleRequest(context.Background(), &logical.Request{
		Operation: op, Path: path, Data: data, Storage: h.store, RemoteAddr: "127.0.0.1:50000",
	})
}

func (h *harness) must(op logical.Operation, path string, data map[string]any) *logical.Response {
	h.t.Helper()
	resp, err := h.do(op, path, data)
	if err != nil {
		h.t.Fatalf("%s %s: %v", op, path, err)
	}
	return resp
}

func (h *harness) roleID(name string) string {
	return h.must(logical.ReadOperation, "role/"+name+"/role-id", nil).Data["role_id"].(string)
}

func (h *harness) secretID(name string, data map[string]any) string {
	return h.must(logical.UpdateOperation, "role/"+name+"/secret-id", data).Data["secret_id"].(string)
}

func (h *harness) login(roleID, secretID string) (*logical.Response, error) {
	return h.do(logical.UpdateOperation, "login", map[string]any{"role_id": roleID, "secret_id": secretID})
}

// A secret ID is stored only as its HMAC: no stored value holds it.
func TestSecretIDNotStoredInPlain(t *testing.T) {
	h := newHarness(t)
	h.must(logical.UpdateOperation, "role/app", map[string]any{})
	ids := []string{h.secretID("app", nil)}
	h.must(logical.UpdateOperation, "role/app/custom-secret-id", map[string]any{"secret_id": "chosen-by-hand-0123456789"})
	ids = append(ids, "chosen-by-hand-0123456789")
	var walk func(prefix string)
	walk = func(prefix string) {
		keys, err := h.store.List(context.Background(), prefix)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if strings.HasSuffix(k, "/") {
				walk(prefix + k)
				continue
			}
			e, _ := h.store.Get(context.Background(), prefix+k)
			for _, id := range ids {
				if strings.Contains(prefix+k, id) || bytes.Contains(e.Value, []byte(id)) {
					t.Fatalf("storage key %s holds a secret ID in plain", prefix+k)
				}
			}
		}
	}
	walk("")
	for _, id := range ids {
		if _, err := h.login(h.roleID("app"), id); err != nil {
			t.Fatalf("login: %v", err)
		}
	}
}

// The HMAC key survives a restart of the mount: secret IDs issued before
// still log in.
func TestSecretIDSurvivesReload(t *testing.T) {
	h := newHarness(t)
	h.must(logical.UpdateOperation, "role/app", map[string]any{})
	sid := h.secretID("app", nil)
	be, err := Factory(context.Background(), &logical.BackendConfig{Storage: h.store, System: h.sys})
	if err != nil {
		t.Fatal(err)
	}
	h.b = be.(*backend)
	if _, err := h.login(h.roleID("app"), sid); err != nil {
		t.Fatalf("login after reload: %v", err)
	}
}

func TestLoginAuthBlock(t *testing.T) {
	h := newHarness(t)
	// Role names are kept in lowercase, and a path must spell them so
	// (framework.RequireLowercase): an ACL checks the path as written.
	if _, err := h.do(logical.UpdateOperation, "role/App", map[string]any{}); logical.StatusOf(err) != 400 {
		t.Fatalf("role/App: %v, want 400", err)
	}
	h.must(logical.UpdateOperation, "role/app", map[string]any{
		"token_policies": "b,a", "token_ttl": "10m", "token_max_ttl": "1h", "token_num_uses": 4,
		"token_bound_cidrs": "127.0.0.0/8",
	})
	roleID := h.roleID("app")
	if _, err := h.do(logical.UpdateOperation, "role/APP/secret-id", nil); logical.StatusOf(err) != 400 {
		t.Fatalf("role/APP/secret-id: %v, want 400", err)
	}
	sid := h.secretID("app", map[string]any{"metadata": map[string]any{"team": "payments"}})
	resp, err := h.login(roleID, sid)
	if err != nil {
		t.Fatal(err)
	}
	a := resp.Auth
	if a.Alias == nil || a.Alias.Name != roleID || a.Alias.Metadata["role_name"] != "app" {
		t.Fatalf("alias %+v", a.Alias)
	}
	if a.Metadata["role_name"] != "app" || a.Metadata["team"] != "payments" {
		t.Fatalf("metadata %v", a.Metadata)
	}
	if a.InternalData["role_name"] != "app" || a.InternalData["role_id"] != roleID {
		t.Fatalf("internal data %v", a.InternalData)
	}
	if strings.Join(a.Policies, ",") != "a,b" || a.TTL != 10*time.Minute || a.MaxTTL != time.Hour || a.NumUses != 4 || !a.Renewable {
		t.Fatalf("token terms %+v", a)
	}
	if strings.Join(a.BoundCIDRs, ",") != "127.0.0.0/8" {
		t.Fatalf("bound CIDRs %v", a.BoundCIDRs)
	}
	// A secret ID's own token_bound_cidrs win over the role's.
	sid2 := h.secretID("app", map[string]any{"token_bound_cidrs": "127.0.0.1"})
	resp, err = h.login(roleID, sid2)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(resp.Auth.BoundCIDRs, ",") != "127.0.0.1/32" {
		t.Fatalf("bound CIDRs from the secret ID: %v", resp.Auth.BoundCIDRs)
	}
}

// Lockout is keyed by role ID, checked before the credentials, and a
// success resets the count.
func TestLoginGuardByRoleID(t *testing.T) {
	h := newHarness(t)
	h.must(logical.UpdateOperation, "role/app", map[string]any{})
	roleID := h.roleID("app")
	sid := h.secretID("app", nil)
	if _, err := h.login(roleID, "wrong"); err == nil {
		t.Fatal("a wrong secret ID logged in")
	}
	if _, err := h.login(roleID, sid); err != nil {
		t.Fatalf("login: %v", err)
	}
	for i := 0; i < 3; i++ {
		_, err := h.login(roleID, "wrong")
		if err == nil || !strings.Contains(err.Error(), "invalid role or secret ID") || logical.StatusOf(err) != http.StatusBadRequest {
			t.Fatalf("bad secret ID: %v", err)
		}
	}
	if _, err := h.login(roleID, sid); !errors.Is(err, logical.ErrLoginLocked) {
		t.Fatalf("login of a locked role ID with the right secret ID: %v, want ErrLoginLocked", err)
	}
	if h.sys.guard.failures[roleID] != 3 {
		t.Fatalf("failures counted under the role ID: %v", h.sys.guard.failures)
	}
}

func TestAuthRenew(t *testing.T) {
	h := newHarness(t)
	h.must(logical.UpdateOperation, "role/app", map[string]any{"token_policies": "p1", "token_ttl": "5m"})
	resp, err := h.login(h.roleID("app"), h.secretID("app", nil))
	if err != nil {
		t.Fatal(err)
	}
	issued := *resp.Auth
	// The core adds "default" to the token's policies.
	issued.TokenPolicies = append(append([]string{}, issued.Policies...), "default")
	renew := func() (*logical.Response, error) {
		a := issued
		return h.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.AuthRenewOperation, Storage: h.store, Auth: &a})
	}
	r, err := renew()
	if err != nil || r.Auth.TTL != 5*time.Minute {
		t.Fatalf("renewal: %v %+v", err, r)
	}
	// The role's current TTL applies.
	h.must(logical.UpdateOperation, "role/app/token-ttl", map[string]any{"token_ttl": "7m"})
	if r, err := renew(); err != nil || r.Auth.TTL != 7*time.Minute {
		t.Fatalf("renewal after token_ttl changed: %v %+v", err, r)
	}
	// Changed policies refuse it.
	h.must(logical.UpdateOperation, "role/app/policies", map[string]any{"token_policies": "p1,p2"})
	if _, err := renew(); err == nil || !strings.Contains(err.Error(), "policies") {
		t.Fatalf("renewal after the policies changed: %v", err)
	}
	h.must(logical.UpdateOperation, "role/app/policies", map[string]any{"token_policies": "p1"})
	if _, err := renew(); err != nil {
		t.Fatalf("renewal with the policies back: %v", err)
	}
	// So does a deleted role, or one recreated under the same name.
	h.must(logical.DeleteOperation, "role/app", nil)
	if _, err := renew(); err == nil {
		t.Fatal("renewal after the role was deleted")
	}
	h.must(logical.UpdateOperation, "role/app", map[string]any{"token_policies": "p1", "token_ttl": "5m"})
	if _, err := renew(); err == nil {
		t.Fatal("renewal against a recreated role with a new role ID")
	}
}

func TestTidy(t *testing.T) {
	h := newHarness(t)
	h.must(logical.UpdateOperation, "role/app", map[string]any{"secret_id_ttl": "1m"})
	roleID := h.roleID("app")
	h.secretID("app", nil)
	h.secretID("app", nil)
	h.sys.clock.Advance(30 * time.Second)
	live := h.secretID("app", nil)
	// A dangling accessor (its secret ID gone, as a crash between the two
	// writes of a destroy would leave it).
	if err := h.store.Put(context.Background(), &storage.Entry{Key: accessorPrefix + "feedface", Value: []byte(`{"role_name_hmac":"x","secret_id_hmac":"y"}`)}); err != nil {
		t.Fatal(err)
	}
	h.sys.clock.Advance(31 * time.Second)
	resp := h.must(logical.UpdateOperation, "tidy/secret-id", nil)
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(strings.Join(resp.Warnings, " "), "removed 2 secret IDs and 1 accessors") {
		t.Fatalf("tidy: %+v", resp)
	}
	list := h.must(logical.ListOperation, "role/app/secret-id", nil)
	if list == nil || len(list.Data["keys"].([]string)) != 1 {
		t.Fatalf("after tidy: %+v", list)
	}
	accs, _ := h.store.List(context.Background(), accessorPrefix)
	if len(accs) != 1 {
		t.Fatalf("accessors after tidy: %v", accs)
	}
	if _, err := h.login(roleID, live); err != nil {
		t.Fatalf("the live secret ID after tidy: %v", err)
	}
}

// slowReads widens the window between reading a secret ID and spending its
// use, as a slower storage would, so that a missing lock shows.
type slowReads struct{ *storage.Inmem }

func (s slowReads) Get(ctx context.Context, key string) (*storage.Entry, error) {
	e, err := s.Inmem.Get(ctx, key)
	if strings.HasPrefix(key, secretIDPrefix) {
		time.Sleep(time.Millisecond)
	}
	return e, err
}

// Concurrent logins spend exactly the uses a secret ID has.
func TestNumUsesSpentExactly(t *testing.T) {
	h := newHarness(t)
	slow := slowReads{h.store}
	h.sys.guard.off = true // every contender reaches the secret ID
	h.must(logical.UpdateOperation, "role/app", map[string]any{})
	roleID := h.roleID("app")
	for _, uses := range []int{1, 3} {
		sid := h.secretID("app", map[string]any{"num_uses": uses})
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for i := 0; i < 32; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := h.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.UpdateOperation, Path: "login",
					Data: map[string]any{"role_id": roleID, "secret_id": sid}, Storage: slow, RemoteAddr: "127.0.0.1:1"})
				if err == nil {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if ok != uses {
			t.Fatalf("num_uses=%d: %d logins succeeded", uses, ok)
		}
	}
}

func TestRoleValidation(t *testing.T) {
	h := newHarness(t)
	cases := []struct {
		data  map[string]any
		field string
	}{
		{map[string]any{"bind_secret_id": false}, "constraint"},
		{map[string]any{"secret_id_num_uses": -1}, "secret_id_num_uses"},
		{map[string]any{"secret_id_ttl": -5}, "secret_id_ttl"},
		{map[string]any{"token_bound_cidrs": "300.1.1.1"}, "token_bound_cidrs"},
		{map[string]any{"token_ttl": "2h", "token_max_ttl": "1h"}, "token_ttl"},
		{map[string]any{"token_type": "batch"}, "token_type"},
	}
	for _, c := range cases {
		_, err := h.do(logical.UpdateOperation, "role/bad", c.data)
		if logical.StatusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%v: %v, want a 400 naming %s", c.data, err, c.field)
		}
	}
	if r, _ := h.do(logical.ReadOperation, "role/bad", nil); r != nil {
		t.Fatal("a refused role was stored")
	}
	// Legacy names are accepted and shown back.
	h.must(logical.UpdateOperation, "role/old", map[string]any{"policies": "a", "period": 300, "bound_cidr_list": "10.0.0.0/8", "bind_secret_id": false})
	d := h.must(logical.ReadOperation, "role/old", nil).Data
	if d["period"] != int64(300) || d["token_period"] != int64(300) || strings.Join(d["policies"].([]string), ",") != "a" ||
		strings.Join(d["secret_id_bound_cidrs"].([]string), ",") != "10.0.0.0/8" {
		t.Fatalf("legacy fields read back as %v", d)
	}
	// Sub-path for a role that does not exist.
	if _, err := h.do(logical.UpdateOperation, "role/nope/secret-id-ttl", map[string]any{"secret_id_ttl": 10}); logical.StatusOf(err) != http.StatusNotFound {
		t.Fatalf("sub-path of a missing role: %v", err)
	}
	// Generating a secret ID for a role without bind_secret_id is refused.
	if _, err := h.do(logical.UpdateOperation, "role/old/secret-id", nil); logical.StatusOf(err) != http.StatusBadRequest {
		t.Fatalf("secret-id on a role without bind_secret_id: %v", err)
	}
	if _, err := h.do(logical.UpdateOperation, "role/nope/secret-id", nil); logical.StatusOf(err) != http.StatusNotFound {
		t.Fatalf("secret-id on a missing role: %v", err)
	}
	if _, err := h.do(logical.UpdateOperation, "role/old/custom-secret-id", map[string]any{"secret_id": "x", "metadata": `{"a":1}`}); logical.StatusOf(err) != http.StatusBadRequest {
		t.Fatalf("metadata with a number: %v", err)
	}
}

// BenchmarkLoginMethod measures the method's own share of a login (role ID
// index, role, secret ID read and use count, no token store, no HTTP) on
// in-memory storage, with an unlimited and a 2^30-use secret ID (the latter
// writes its count back on every login).
func BenchmarkLoginMethod(b *testing.B) {
	for _, uses := range []int{0, 1 << 30} {
		b.Run(map[bool]string{true: "unlimited", false: "counted"}[uses == 0], func(b *testing.B) {
			h := newHarness(b)
			if _, err := h.do(logical.UpdateOperation, "role/app", map[string]any{}); err != nil {
				b.Fatal(err)
			}
			id, _ := h.do(logical.ReadOperation, "role/app/role-id", nil)
			sec, err := h.do(logical.UpdateOperation, "role/app/secret-id", map[string]any{"num_uses": uses})
			if err != nil {
				b.Fatal(err)
			}
			roleID, secretID := id.Data["role_id"].(string), sec.Data["secret_id"].(string)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := h.login(roleID, secretID); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// A secret ID logs in only with its own role's role ID, and a role bound
// by token_bound_cidrs alone refuses logins from elsewhere.
func TestLoginCrossRoleAndTokenCIDRs(t *testing.T) {
	h := newHarness(t)
	h.must(logical.UpdateOperation, "role/a", map[string]any{})
	h.must(logical.UpdateOperation, "role/b", map[string]any{})
	if _, err := h.login(h.roleID("b"), h.secretID("a", nil)); err == nil || !strings.Contains(err.Error(), "invalid role or secret ID") {
		t.Fatalf("role b with a secret ID of role a: %v", err)
	}
	h.must(logical.UpdateOperation, "role/far", map[string]any{"bind_secret_id": false, "token_bound_cidrs": "10.0.0.0/8"})
	if _, err := h.login(h.roleID("far"), ""); logical.StatusOf(err) != http.StatusForbidden {
		t.Fatalf("login from outside token_bound_cidrs: %v", err)
	}
	h.must(logical.UpdateOperation, "role/near", map[string]any{"bind_secret_id": false, "token_bound_cidrs": "127.0.0.1"})
	if _, err := h.login(h.roleID("near"), ""); err != nil {
		t.Fatalf("login from inside token_bound_cidrs: %v", err)
	}
}

// The periodic function tidies expired secret IDs.
func TestPeriodicTidy(t *testing.T) {
	h := newHarness(t)
	h.must(logical.UpdateOperation, "role/app", map[string]any{"secret_id_ttl": "1m"})
	h.secretID("app", nil)
	h.sys.clock.Advance(2 * time.Minute)
	if _, err := h.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.RollbackOperation, Storage: h.store}); err != nil {
		t.Fatal(err)
	}
	if list := h.must(logical.ListOperation, "role/app/secret-id", nil); list != nil {
		t.Fatalf("expired secret IDs left after the periodic tidy: %v", list.Data)
	}
	if accs, _ := h.store.List(context.Background(), accessorPrefix); len(accs) != 0 {
		t.Fatalf("accessors left: %v", accs)
	}
}

// Deleting a per-field sub-path resets the field.
func TestRoleFieldReset(t *testing.T) {
	h := newHarness(t)
	h.must(logical.UpdateOperation, "role/app", map[string]any{
		"token_policies": "a", "secret_id_bound_cidrs": "10.0.0.0/8", "token_bound_cidrs": "10.0.0.0/8",
		"secret_id_num_uses": 3, "secret_id_ttl": 60, "token_ttl": 60, "token_max_ttl": 120, "token_num_uses": 2, "token_period": 30,
	})
	for _, sub := range []string{"policies", "secret-id-bound-cidrs", "token-bound-cidrs", "secret-id-num-uses", "secret-id-ttl", "token-ttl", "token-max-ttl", "token-num-uses", "period"} {
		h.must(logical.DeleteOperation, "role/app/"+sub, nil)
	}
	d := h.must(logical.ReadOperation, "role/app", nil).Data
	for k, want := range map[string]any{"secret_id_num_uses": 0, "secret_id_ttl": int64(0), "token_ttl": int64(0), "token_max_ttl": int64(0), "token_num_uses": 0, "token_period": int64(0)} {
		if d[k] != want {
			t.Errorf("%s = %v after reset, want %v", k, d[k], want)
		}
	}
	for _, k := range []string{"token_policies", "secret_id_bound_cidrs", "token_bound_cidrs"} {
		if len(d[k].([]string)) != 0 {
			t.Errorf("%s = %v after reset", k, d[k])
		}
	}
	// Resetting bind_secret_id turns it back on.
	h.must(logical.UpdateOperation, "role/open", map[string]any{"bind_secret_id": false, "secret_id_bound_cidrs": "127.0.0.0/8"})
	h.must(logical.DeleteOperation, "role/open/bind-secret-id", nil)
	if h.must(logical.ReadOperation, "role/open/bind-secret-id", nil).Data["bind_secret_id"] != true {
		t.Fatal("bind_secret_id not reset to true")
	}
	// A reset that would leave a role unconstrained is refused.
	if _, err := h.do(logical.UpdateOperation, "role/open/bind-secret-id", map[string]any{"bind_secret_id": false}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.do(logical.DeleteOperation, "role/open/secret-id-bound-cidrs", nil); logical.StatusOf(err) != http.StatusBadRequest {
		t.Fatalf("removing the last constraint: %v", err)
	}
}
