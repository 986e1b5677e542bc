package jwt

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/storage"
	"github.com/arcasec/arca/internal/testutil/oidctest"
)

func newTestBackend(t *testing.T) (logical.Backend, logical.Storage) {
	t.Helper()
	s := storage.NewInmem()
	b, err := Factory(context.Background(), &logical.BackendConfig{Storage: s})
	if err != nil {
		t.Fatal(err)
	}
	return b, s
}

func write(t *testing.T, b logical.Backend, s logical.Storage, path string, data map[string]any) {
	t.Helper()
	if _, err := b.HandleRequest(context.Background(), &logical.Request{Operation: logical.UpdateOperation, Path: path, Data: data, Storage: s}); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

// A login token renews while its role exists with the same policies, under
// the role's current TTL; it is refused once the role is gone or its
// policies changed.
func TestAuthRenew(t *testing.T) {
	b, s := newTestBackend(t)
	ctx := context.Background()
	write(t, b, s, "role/ci", map[string]any{"role_type": "jwt", "user_claim": "sub", "bound_subject": "x", "token_policies": "a,b", "token_ttl": "1h"})
	renew := func() (*logical.Response, error) {
		return b.HandleRequest(ctx, &logical.Request{Operation: logical.AuthRenewOperation, Storage: s, Auth: &logical.Auth{
			Policies: []string{"a", "b", "default"}, TokenPolicies: []string{"a", "b", "default"},
			InternalData: map[string]any{"role": "ci"},
		}})
	}
	resp, err := renew()
	if err != nil {
		t.Fatalf("renew: %v", err)
	}
	if resp.Auth.TTL != time.Hour {
		t.Fatalf("renew TTL %v, want the role's 1h", resp.Auth.TTL)
	}
	write(t, b, s, "role/ci", map[string]any{"token_policies": "a"})
	if _, err := renew(); logical.StatusOf(err) != http.StatusForbidden || !strings.Contains(err.Error(), "policies") {
		t.Fatalf("renew after a policy change: %v", err)
	}
	write(t, b, s, "role/ci", map[string]any{"token_policies": "b,a"})
	if _, err := renew(); err != nil {
		t.Fatalf("renew with the policies restored: %v", err)
	}
	if _, err := b.HandleRequest(ctx, &logical.Request{Operation: logical.DeleteOperation, Path: "role/ci", Storage: s}); err != nil {
		t.Fatal(err)
	}
	if _, err := renew(); logical.StatusOf(err) != http.StatusForbidden || !strings.Contains(err.Error(), "no longer exists") {
		t.Fatalf("renew after the role was deleted: %v", err)
	}
}

func TestGlobMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, s string
		want       bool
	}{
		{"acme/*", "acme/api", true},
		{"acme/*", "acme/", true},
		{"acme/*", "evil/acme/api", false},
		{"*", "", true},
		{"*/deploy.yml@refs/heads/main", "acme/api/.github/workflows/deploy.yml@refs/heads/main", true},
		{"repo:acme/*:ref:refs/heads/*", "repo:acme/api:ref:refs/heads/main", true},
		{"repo:acme/*:ref:refs/heads/*", "repo:acme/api:environment:prod", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "ac", false},
		{"ab*ba", "aba", false},
		{"exact", "exact", true},
		{"exact", "exactly", false},
	} {
		if got := globMatch(c.pattern, c.s); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}

func TestCheckTimesLeeways(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	claims := func(exp, nbf int64) map[string]any {
		return map[string]any{"exp": json.Number(itoa(exp)), "nbf": json.Number(itoa(nbf))}
	}
	def := &role{}
	// Default leeways: 150 s past exp plus 60 s of clock skew.
	if err := checkTimes(claims(now.Unix()-200, now.Unix()-1000), now, def); err != nil {
		t.Fatalf("200 s past exp within the default leeways: %v", err)
	}
	if err := checkTimes(claims(now.Unix()-220, now.Unix()-1000), now, def); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("220 s past exp: %v", err)
	}
	none := &role{ClockSkewLeeway: -1, ExpirationLeeway: -1, NotBeforeLeeway: -1}
	if err := checkTimes(claims(now.Unix()-1, now.Unix()-1000), now, none); err == nil {
		t.Fatal("1 s past exp with leeways disabled was accepted")
	}
	if err := checkTimes(claims(now.Unix()+1000, now.Unix()+1), now, none); err == nil || !strings.Contains(err.Error(), "not yet valid") {
		t.Fatalf("nbf 1 s ahead with leeways disabled: %v", err)
	}
	if err := checkTimes(claims(now.Unix()+1000, now.Unix()+200), now, def); err != nil {
		t.Fatalf("nbf 200 s ahead within the default leeways: %v", err)
	}
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }

func TestGetClaimPointer(t *testing.T) {
	claims := map[string]any{
		"kubernetes.io": map[string]any{"namespace": "ns", "pods": []any{"a", "b"}},
		"a/b":           "slash",
		"n":             json.Number("42.0"),
	}
	for name, want := range map[string]any{
		"/kubernetes.io/namespace": "ns",
		"/kubernetes.io/pods/1":    "b",
		"/kubernetes.io/pods/2":    nil,
		"/a~1b":                    "slash",
		"/missing/x":               nil,
		"n":                        json.Number("42"),
	} {
		if got := getClaim(claims, name); got != want {
			t.Errorf("getClaim(%q) = %v, want %v", name, got, want)
		}
	}
}

// fixedSystem is a SystemView on a clock the test moves.
type fixedSystem struct{ now time.Time }

func (s *fixedSystem) DefaultLeaseTTL() time.Duration { return time.Hour }
func (s *fixedSystem) MaxLeaseTTL() time.Duration     { return 24 * time.Hour }
func (s *fixedSystem) Now() time.Time                 { return s.now }
func (s *fixedSystem) GeneratePasswordFromPolicy(context.Context, string) (string, error) {
	return "", nil
}
func (s *fixedSystem) LoginGuard() logical.LoginGuard { return logical.NoLoginGuard{} }

// Tokens with made-up key IDs make the method fetch the key set at most
// refetchBurst times, then one more per refetchEvery; a rotated key is
// picked up once the bucket refills.
func TestUnknownKidFetchesAreBounded(t *testing.T) {
	key := oidctest.NewEC(t, "ec-1")
	iss := oidctest.NewIssuer(t, key)
	sys := &fixedSystem{now: time.Now()}
	s := storage.NewInmem()
	b, err := Factory(context.Background(), &logical.BackendConfig{Storage: s, System: sys})
	if err != nil {
		t.Fatal(err)
	}
	write(t, b, s, "config", map[string]any{"jwks_url": iss.URL + "/keys"})
	write(t, b, s, "role/r", map[string]any{"role_type": "jwt", "user_claim": "sub", "bound_subject": "me"})
	login := func(k *oidctest.Key) error {
		tok := oidctest.Sign(t, k, map[string]any{"sub": "me", "exp": sys.now.Add(time.Minute).Unix()})
		_, err := b.HandleRequest(context.Background(), &logical.Request{Operation: logical.UpdateOperation, Path: "login",
			Data: map[string]any{"role": "r", "jwt": tok}, Storage: s})
		return err
	}
	if err := login(key); err != nil {
		t.Fatalf("login: %v", err)
	}
	before := iss.KeyFetches.Load()
	for i := range 3 * refetchBurst {
		if err := login(oidctest.NewEC(t, "made-up-"+strconv.Itoa(i))); err == nil {
			t.Fatal("a token under an unknown key ID logged in")
		}
	}
	if got := iss.KeyFetches.Load() - before; got != refetchBurst {
		t.Fatalf("%d fetches for %d made-up key IDs, want %d", got, 3*refetchBurst, refetchBurst)
	}
	rotated := oidctest.NewEC(t, "ec-2")
	iss.SetKeys(rotated)
	if err := login(rotated); err == nil {
		t.Fatal("a rotated key was fetched although the bucket was empty")
	}
	sys.now = sys.now.Add(refetchEvery)
	if err := login(rotated); err != nil {
		t.Fatalf("login with the rotated key once the bucket refilled: %v", err)
	}
	// With the bucket full again, one made-up key ID costs one fetch
	// however often it is presented.
	sys.now = sys.now.Add(refetchBurst * refetchEvery)
	before = iss.KeyFetches.Load()
	unknown := oidctest.NewEC(t, "made-up-again")
	for range 5 {
		if err := login(unknown); err == nil {
			t.Fatal("a token under an unknown key ID logged in")
		}
	}
	if got := iss.KeyFetches.Load() - before; got != 1 {
		t.Fatalf("%d fetches for one unknown key ID presented 5 times, want 1", got)
	}
}

// Logins racing a key rotation all succeed, and the new key set is fetched
// once, not once per login.
func TestConcurrentLoginsDuringRotation(t *testing.T) {
	oldKey, newKey := oidctest.NewRSA(t, "old"), oidctest.NewEd25519(t, "new")
	iss := oidctest.NewIssuer(t, oldKey)
	b, s := newTestBackend(t)
	write(t, b, s, "config", map[string]any{"jwks_url": iss.URL + "/keys"})
	write(t, b, s, "role/r", map[string]any{"role_type": "jwt", "user_claim": "sub", "bound_subject": "me"})
	iss.SetKeys(oldKey, newKey)
	before := iss.KeyFetches.Load()
	errs := make(chan error, 16)
	for i := range 16 {
		k := oldKey
		if i%2 == 0 {
			k = newKey
		}
		tok := oidctest.Sign(t, k, map[string]any{"sub": "me", "exp": time.Now().Add(time.Minute).Unix()})
		go func() {
			_, err := b.HandleRequest(context.Background(), &logical.Request{Operation: logical.UpdateOperation, Path: "login",
				Data: map[string]any{"role": "r", "jwt": tok}, Storage: s})
			errs <- err
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Fatalf("login during rotation: %v", err)
		}
	}
	if got := iss.KeyFetches.Load() - before; got != 1 {
		t.Fatalf("%d key-set fetches for one rotation, want 1", got)
	}
}

// The login's Auth block names the alias by the user claim, carries the
// group aliases from the groups claim and the mapped claims as metadata.
func TestLoginAuthBlock(t *testing.T) {
	key := oidctest.NewEd25519(t, "")
	b, s := newTestBackend(t)
	write(t, b, s, "config", map[string]any{"jwt_validation_pubkeys": key.PublicPEM(t)})
	write(t, b, s, "role/ci", map[string]any{
		"role_type": "jwt", "user_claim": "/actor/login", "user_claim_json_pointer": true, "bound_subject": "repo:acme/api",
		"groups_claim": "teams", "claim_mappings": map[string]any{"repository": "repo", "run_number": "run"},
		"token_policies": "ci", "token_bound_cidrs": "127.0.0.0/8", "token_num_uses": 5,
	})
	tok := oidctest.Sign(t, key, map[string]any{
		"sub": "repo:acme/api", "actor": map[string]any{"login": "octocat"}, "teams": []string{"ops", "", "db"},
		"repository": "acme/api", "run_number": 17, "exp": time.Now().Add(time.Minute).Unix(),
	})
	login := func(remote string) (*logical.Response, error) {
		return b.HandleRequest(context.Background(), &logical.Request{Operation: logical.UpdateOperation, Path: "login",
			Data: map[string]any{"role": "ci", "jwt": tok}, Storage: s, RemoteAddr: remote})
	}
	resp, err := login("127.0.0.1:5000")
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	a := resp.Auth
	if a.Alias == nil || a.Alias.Name != "octocat" || a.DisplayName != "octocat" {
		t.Fatalf("alias %+v, display name %q", a.Alias, a.DisplayName)
	}
	if a.Alias.Metadata["repo"] != "acme/api" || a.Metadata["run"] != "17" || a.Metadata["role"] != "ci" {
		t.Fatalf("metadata %v, alias metadata %v", a.Metadata, a.Alias.Metadata)
	}
	var groups []string
	for _, g := range a.GroupAliases {
		groups = append(groups, g.Name)
	}
	if strings.Join(groups, ",") != "ops,db" {
		t.Fatalf("group aliases %v", groups)
	}
	if a.InternalData["role"] != "ci" || a.NumUses != 5 || len(a.BoundCIDRs) != 1 || strings.Join(a.Policies, ",") != "ci" {
		t.Fatalf("auth %+v", a)
	}
	if _, err := login("10.1.2.3:5000"); logical.StatusOf(err) != http.StatusForbidden {
		t.Fatalf("login from outside token_bound_cidrs: %v", err)
	}
}

// BenchmarkLogin measures the method alone (no HTTP, no token issued):
// signature check, claim checks and the role read, with a cached key set.
func BenchmarkLogin(b *testing.B) {
	for _, k := range []*oidctest.Key{oidctest.NewRSA(b, "rsa"), oidctest.NewEC(b, "ec"), oidctest.NewEd25519(b, "ed")} {
		b.Run(string(k.Alg), func(b *testing.B) {
			iss := oidctest.NewIssuer(b, k)
			s := storage.NewInmem()
			be, err := Factory(context.Background(), &logical.BackendConfig{Storage: s})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			for path, data := range map[string]map[string]any{
				"config": {"jwks_url": iss.URL + "/keys"},
				"role/r": {"role_type": "jwt", "user_claim": "sub", "bound_audiences": "a", "bound_claims_type": "glob",
					"bound_claims": map[string]any{"repository": "acme/*"}, "claim_mappings": map[string]any{"repository": "repo"}},
			} {
				if _, err := be.HandleRequest(ctx, &logical.Request{Operation: logical.UpdateOperation, Path: path, Data: data, Storage: s}); err != nil {
					b.Fatal(err)
				}
			}
			tok := oidctest.Sign(b, k, map[string]any{"sub": "me", "aud": "a", "repository": "acme/api", "exp": time.Now().Add(time.Hour).Unix()})
			b.ResetTimer()
			for b.Loop() {
				if _, err := be.HandleRequest(ctx, &logical.Request{Operation: logical.UpdateOperation, Path: "login",
					Data: map[string]any{"role": "r", "jwt": tok}, Storage: s}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
