package compat

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/testutil/oidctest"
)

// rs256 signs a JWS signing input with an RSA key, for tokens whose header
// the test writes itself.
func rs256(t *testing.T, k *oidctest.Key) func([]byte) []byte {
	return func(in []byte) []byte {
		h := sha256.Sum256(in)
		sig, err := rsa.SignPKCS1v15(rand.Reader, k.Priv.(*rsa.PrivateKey), crypto.SHA256, h[:])
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
}

func probeClaims(iss, sub string) map[string]any {
	now := time.Now()
	return map[string]any{"iss": iss, "sub": sub, "aud": "arca", "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
}

// jwtLoginStatus logs in at auth/<mount>/login and returns the status
// (200 on success) and the error text; it fails if a refusal echoes the
// token.
func jwtLoginStatus(t *testing.T, c *vault.Client, mount, role, token string) (int, string, *vault.Secret) {
	t.Helper()
	s, err := newClient(t, c.Address(), "").Logical().Write("auth/"+mount+"/login", map[string]any{"role": role, "jwt": token})
	if err == nil {
		return http.StatusOK, "", s
	}
	if token != "" && strings.Contains(err.Error(), token) {
		t.Fatalf("the refusal echoes the token")
	}
	return statusOf(err), errorText(err), nil
}

// TestProbeJWTHeaderKeyInjection: a token may name keys in its header (jku,
// x5u, jwk, x5c), point kid at a path, carry crit, or be a JWE; the key
// that verifies it comes only from the mount's config.
func TestProbeJWTHeaderKeyInjection(t *testing.T) {
	good := oidctest.NewRSA(t, "good")
	evil := oidctest.NewRSA(t, "evil")
	evilIss := oidctest.NewIssuer(t, evil)
	var jwksHits atomic.Int64
	keysrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		jwksHits.Add(1)
		if r.URL.Path != "/keys" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{good.Public()}})
	}))
	t.Cleanup(keysrv.Close)

	c := devClient(t)
	const iss = "https://issuer.example"
	mountJWT(t, c, "jwt", "jwt", map[string]any{"jwt_validation_pubkeys": []string{good.PublicPEM(t)}, "bound_issuer": iss})
	mountJWT(t, c, "jwks", "jwt", map[string]any{"jwks_url": keysrv.URL + "/keys", "bound_issuer": iss})
	for _, m := range []string{"jwt", "jwks"} {
		mustWrite(t, c, "auth/"+m+"/role/r", map[string]any{"role_type": "jwt", "user_claim": "sub", "bound_audiences": "arca"})
	}
	claims := probeClaims(iss, "mallory")

	// The control: the configured key logs in on both mounts.
	for _, m := range []string{"jwt", "jwks"} {
		if st, msg, _ := jwtLoginStatus(t, c, m, "r", oidctest.Sign(t, good, claims)); st != http.StatusOK {
			t.Fatalf("control login on %s: %d %s", m, st, msg)
		}
	}

	evilJWK, _ := json.Marshal(evil.Public())
	var evilJWKMap map[string]any
	_ = json.Unmarshal(evilJWK, &evilJWKMap)
	enc := base64.RawURLEncoding
	forged := map[string]string{
		"jku to the attacker's key set": oidctest.Unsigned(t, map[string]any{"alg": "RS256", "kid": "evil", "jku": evilIss.URL + "/keys"}, claims, rs256(t, evil)),
		"x5u to the attacker":           oidctest.Unsigned(t, map[string]any{"alg": "RS256", "x5u": evilIss.URL + "/cert.pem"}, claims, rs256(t, evil)),
		"embedded jwk":                  oidctest.Unsigned(t, map[string]any{"alg": "RS256", "jwk": evilJWKMap}, claims, rs256(t, evil)),
		"embedded jwk, good kid":        oidctest.Unsigned(t, map[string]any{"alg": "RS256", "kid": "good", "jwk": evilJWKMap}, claims, rs256(t, evil)),
		"kid with path traversal":       oidctest.Unsigned(t, map[string]any{"alg": "RS256", "kid": "../../../../keys/evil"}, claims, rs256(t, evil)),
		"kid as a URL":                  oidctest.Unsigned(t, map[string]any{"alg": "RS256", "kid": evilIss.URL + "/keys"}, claims, rs256(t, evil)),
		"JWE compact form": enc.EncodeToString([]byte(`{"alg":"RSA-OAEP","enc":"A256GCM"}`)) + "." +
			enc.EncodeToString([]byte("key")) + "." + enc.EncodeToString([]byte("iv-iv-iv-iv-")) + "." +
			enc.EncodeToString([]byte(`{"sub":"mallory"}`)) + "." + enc.EncodeToString([]byte("tag")),
		"JWS JSON serialization": `{"payload":"` + enc.EncodeToString([]byte(`{"sub":"x"}`)) + `","signatures":[]}`,
		"two dots only":          "..",
		"empty signature":        strings.Join(strings.Split(oidctest.Sign(t, good, claims), ".")[:2], ".") + ".",
	}
	for name, tok := range forged {
		for _, m := range []string{"jwt", "jwks"} {
			if st, msg, _ := jwtLoginStatus(t, c, m, "r", tok); st != http.StatusBadRequest {
				t.Errorf("%s on %s: %d %s, want 400", name, m, st, msg)
			}
		}
	}

	// A crit header the verifier does not understand must refuse the token
	// even when the configured key signed it (RFC 7515 4.1.11).
	for _, crit := range []map[string]any{
		{"alg": "RS256", "kid": "good", "crit": []string{"exp-policy"}, "exp-policy": "ignore"},
		{"alg": "RS256", "kid": "good", "crit": []string{"b64"}, "b64": false},
		{"alg": "RS256", "kid": "good", "crit": []string{}},
	} {
		tok := oidctest.Unsigned(t, crit, claims, rs256(t, good))
		for _, m := range []string{"jwt", "jwks"} {
			if st, msg, _ := jwtLoginStatus(t, c, m, "r", tok); st != http.StatusBadRequest {
				t.Errorf("crit header %v on %s: %d %s, want 400", crit["crit"], m, st, msg)
			}
		}
	}
	// Nothing but the configured key set URL was ever fetched.
	if n := jwksHits.Load(); n == 0 {
		t.Fatal("the jwks mount never fetched its key set")
	}
}

// TestProbeJWTCrossIssuer: a token signed by one mount's issuer does not
// log in on another mount configured for a different issuer and key, even
// when it claims that mount's issuer.
func TestProbeJWTCrossIssuer(t *testing.T) {
	keyA, keyB := oidctest.NewEC(t, "a"), oidctest.NewEC(t, "b")
	c := devClient(t)
	mountJWT(t, c, "a", "jwt", map[string]any{"jwt_validation_pubkeys": []string{keyA.PublicPEM(t)}, "bound_issuer": "https://a.example"})
	mountJWT(t, c, "b", "jwt", map[string]any{"jwt_validation_pubkeys": []string{keyB.PublicPEM(t)}, "bound_issuer": "https://b.example"})
	for _, m := range []string{"a", "b"} {
		mustWrite(t, c, "auth/"+m+"/role/r", map[string]any{"role_type": "jwt", "user_claim": "sub", "bound_audiences": "arca", "token_policies": m + "-pol"})
	}
	if st, msg, _ := jwtLoginStatus(t, c, "a", "r", oidctest.Sign(t, keyA, probeClaims("https://a.example", "x"))); st != 200 {
		t.Fatalf("control login on a: %d %s", st, msg)
	}
	for name, tok := range map[string]string{
		"A's token as is":          oidctest.Sign(t, keyA, probeClaims("https://a.example", "x")),
		"A's key claiming B's iss": oidctest.Sign(t, keyA, probeClaims("https://b.example", "x")),
	} {
		if st, msg, _ := jwtLoginStatus(t, c, "b", "r", tok); st != http.StatusBadRequest {
			t.Errorf("%s on mount b: %d %s, want 400", name, st, msg)
		}
	}
}

// TestProbeJWTUserClaimWidening: a user_claim or mapped claim value chosen
// to look like a glob, a '+' segment, a traversal or a template does not
// widen what a templated policy grants: the template is left unfilled and
// its path out of the ACL.
func TestProbeJWTUserClaimWidening(t *testing.T) {
	ctx := context.Background()
	key := oidctest.NewEC(t, "k")
	c := devClient(t)
	const iss = "https://issuer.example"
	mountJWT(t, c, "jwt", "jwt", map[string]any{"jwt_validation_pubkeys": []string{key.PublicPEM(t)}, "bound_issuer": iss})
	acc := authAccessor(t, c, "jwt/")
	if err := c.Sys().PutPolicy("per-user", `
path "secret/data/users/{{identity.entity.aliases.`+acc+`.name}}/*" { capabilities = ["read"] }
path "secret/data/users/{{identity.entity.aliases.`+acc+`.name}}" { capabilities = ["read"] }
path "secret/data/repos/{{identity.entity.aliases.`+acc+`.metadata.repo}}" { capabilities = ["read"] }
path "secret/data/ids/{{identity.entity.id}}" { capabilities = ["read"] }
path "secret/data/split/+{{identity.entity.aliases.`+acc+`.name}}" { capabilities = ["read"] }
path "secret/data/split2/{{identity.entity.aliases.`+acc+`.name}}+/x" { capabilities = ["read"] }
`); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, c, "auth/jwt/role/r", map[string]any{
		"role_type": "jwt", "user_claim": "sub", "bound_audiences": "arca", "token_policies": "per-user",
		"claim_mappings": map[string]any{"repo": "repo"},
	})
	for _, p := range []string{"users/alice/x", "users/bob/x", "users/bob", "repos/acme/api", "repos/other", "users/x", "ids/x", "split/other/x", "split2/a/other/x"} {
		if _, err := c.KVv2("secret").Put(ctx, p, map[string]any{"v": p}); err != nil {
			t.Fatal(err)
		}
	}
	loginAs := func(sub, repo string) *vault.Client {
		t.Helper()
		cl := probeClaims(iss, sub)
		cl["repo"] = repo
		st, msg, s := jwtLoginStatus(t, c, "jwt", "r", oidctest.Sign(t, key, cl))
		if st != http.StatusOK {
			t.Fatalf("login as %q: %d %s", sub, st, msg)
		}
		return newClient(t, c.Address(), s.Auth.ClientToken)
	}
	// The control: alice reads her own path and her repo.
	alice := loginAs("alice", "acme/api")
	for _, p := range []string{"users/alice/x", "repos/acme/api"} {
		if _, err := alice.KVv2("secret").Get(ctx, p); err != nil {
			t.Fatalf("alice reading %s: %v", p, err)
		}
	}
	for _, sub := range []string{"*", "+", "../x", "x/..", "bob/../alice", "+/x", "{{identity.entity.id}}", "b*", "users/*", "/x", "a/", "/"} {
		tc := loginAs(sub, sub)
		for _, p := range []string{"users/bob/x", "users/bob", "users/alice/x", "repos/other", "repos/acme/api", "users/x", "ids/x", "split/other/x", "split2/a/other/x"} {
			if _, err := tc.KVv2("secret").Get(ctx, p); statusOf(err) != http.StatusForbidden {
				t.Errorf("a token with sub %q reading %s: %v, want 403", sub, p, err)
			}
		}
	}
}

// TestProbeJWTReservedMetadata: a claim mapping cannot target the "role"
// metadata the method sets, and a token's own "role" claim changes nothing.
func TestProbeJWTReservedMetadata(t *testing.T) {
	key := oidctest.NewEC(t, "k")
	c := devClient(t)
	const iss = "https://issuer.example"
	mountJWT(t, c, "jwt", "jwt", map[string]any{"jwt_validation_pubkeys": []string{key.PublicPEM(t)}, "bound_issuer": iss})
	if _, err := c.Logical().Write("auth/jwt/role/r", map[string]any{
		"role_type": "jwt", "user_claim": "sub", "bound_audiences": "arca", "claim_mappings": map[string]any{"team": "role"},
	}); statusOf(err) != http.StatusBadRequest || !strings.Contains(errorText(err), "reserved") {
		t.Fatalf("claim_mappings onto role: %v, want 400 naming it reserved", err)
	}
	mustWrite(t, c, "auth/jwt/role/low", map[string]any{"role_type": "jwt", "user_claim": "sub", "bound_audiences": "arca",
		"claim_mappings": map[string]any{"team": "team"}, "token_policies": "low"})
	mustWrite(t, c, "auth/jwt/role/high", map[string]any{"role_type": "jwt", "user_claim": "sub", "bound_audiences": "arca",
		"bound_subject": "admin", "token_policies": "high"})
	cl := probeClaims(iss, "mallory")
	cl["role"] = "high"
	cl["team"] = "x"
	st, msg, s := jwtLoginStatus(t, c, "jwt", "low", oidctest.Sign(t, key, cl))
	if st != http.StatusOK {
		t.Fatalf("login on low: %d %s", st, msg)
	}
	if s.Auth.Metadata["role"] != "low" || strings.Contains(strings.Join(s.Auth.Policies, ","), "high") {
		t.Fatalf("a role claim changed the login: metadata %v policies %v", s.Auth.Metadata, s.Auth.Policies)
	}
	// Renewal asks the role named in the token, not a claim.
	tc := newClient(t, c.Address(), s.Auth.ClientToken)
	r, err := tc.Auth().Token().RenewSelf(0)
	if err != nil || strings.Contains(strings.Join(r.Auth.Policies, ","), "high") {
		t.Fatalf("renewal: %v %v", r, err)
	}
}

// TestProbeJWTRoleQuotaSpellings: a rate limit quota on a JWT role counts
// every login into that role, however the login names it (case, a list,
// whitespace, or not at all when it is the default role).
func TestProbeJWTRoleQuotaSpellings(t *testing.T) {
	key := oidctest.NewEC(t, "k")
	c := devClient(t)
	const iss = "https://issuer.example"
	mountJWT(t, c, "jwt", "jwt", map[string]any{"jwt_validation_pubkeys": []string{key.PublicPEM(t)}, "bound_issuer": iss, "default_role": "deploy"})
	mustWrite(t, c, "auth/jwt/role/deploy", map[string]any{"role_type": "jwt", "user_claim": "sub", "bound_audiences": "arca", "token_policies": "deploy"})
	mustWrite(t, c, "sys/quotas/rate-limit/deploy", map[string]any{"path": "auth/jwt/", "role": "deploy", "rate": 1, "interval": "1h"})
	anon := newClient(t, c.Address(), "")
	logins := 0
	for _, role := range []any{"deploy", "Deploy", "DEPLOY", []string{"deploy"}, " deploy", "deploy ", nil, ""} {
		body := map[string]any{"jwt": oidctest.Sign(t, key, probeClaims(iss, "svc"))}
		if role != nil {
			body["role"] = role
		}
		s, err := anon.Logical().Write("auth/jwt/login", body)
		switch {
		case err == nil && s.Auth != nil:
			logins++
		case statusOf(err) == http.StatusTooManyRequests || statusOf(err) == http.StatusBadRequest:
		default:
			t.Errorf("login with role %#v: %v", role, err)
		}
	}
	if logins != 1 {
		t.Fatalf("%d logins into role deploy under a quota of 1 per hour", logins)
	}
}
