package compat

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/server/servertest"
	"github.com/arcasec/arca/internal/testutil/oidctest"
)

// githubClaims are shaped like a GitHub Actions OIDC token.
func githubClaims(iss string, now time.Time, repo string) map[string]any {
	return map[string]any{
		"iss":              iss,
		"aud":              "https://github.com/acme",
		"sub":              "repo:" + repo + ":environment:production",
		"repository":       repo,
		"repository_owner": "acme",
		"ref":              "refs/heads/main",
		"environment":      "production",
		"job_workflow_ref": repo + "/.github/workflows/deploy.yml@refs/heads/main",
		"actor":            "octocat",
		"iat":              now.Unix(),
		"nbf":              now.Unix(),
		"exp":              now.Add(5 * time.Minute).Unix(),
	}
}

// mountJWT enables a jwt auth method at path and writes its config.
func mountJWT(t *testing.T, c *vault.Client, path, typ string, cfg map[string]any) {
	t.Helper()
	if err := c.Sys().EnableAuthWithOptions(path, &vault.EnableAuthOptions{Type: typ}); err != nil {
		t.Fatalf("enable %s auth at %s: %v", typ, path, err)
	}
	if _, err := c.Logical().Write("auth/"+path+"/config", cfg); err != nil {
		t.Fatalf("write auth/%s/config: %v", path, err)
	}
}

// mustRefuse asserts a login fails with a 400 whose message contains want
// and does not echo the token.
func mustRefuse(t *testing.T, c *vault.Client, path string, body map[string]any, want string) {
	t.Helper()
	_, err := c.Logical().Write(path, body)
	if err == nil {
		t.Fatalf("login succeeded, want refusal containing %q", want)
	}
	if st := statusOf(err); st != http.StatusBadRequest && st != http.StatusForbidden {
		t.Fatalf("status %d, want 400 or 403: %v", st, err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not contain %q", err, want)
	}
	if tok, _ := body["jwt"].(string); tok != "" && strings.Contains(err.Error(), tok) {
		t.Fatalf("the error echoes the token")
	}
}

func TestJWTLoginGitHubActions(t *testing.T) {
	rsaKey := oidctest.NewRSA(t, "rsa-1")
	ecKey := oidctest.NewEC(t, "ec-1")
	edKey := oidctest.NewEd25519(t, "ed-1")
	iss := oidctest.NewIssuer(t, rsaKey, ecKey, edKey)
	c := devClient(t)
	mountJWT(t, c, "jwt", "jwt", map[string]any{"jwks_url": iss.URL + "/keys", "bound_issuer": iss.URL})

	if _, err := c.Logical().Write("auth/jwt/role/deploy", map[string]any{
		"role_type":         "jwt",
		"user_claim":        "sub",
		"bound_audiences":   "https://github.com/acme",
		"bound_claims_type": "glob",
		"bound_claims":      map[string]any{"repository": "acme/*", "ref": []string{"refs/heads/main", "refs/tags/v*"}},
		"claim_mappings": map[string]any{
			"repository": "repository", "ref": "ref", "environment": "environment", "job_workflow_ref": "job_workflow_ref",
		},
		"token_policies": "deploy",
		"token_ttl":      "10m",
	}); err != nil {
		t.Fatalf("write role: %v", err)
	}
	now := time.Now()
	login := map[string]any{"role": "deploy"}

	for _, k := range []*oidctest.Key{rsaKey, ecKey, edKey} {
		login["jwt"] = oidctest.Sign(t, k, githubClaims(iss.URL, now, "acme/api"))
		s, err := c.Logical().Write("auth/jwt/login", login)
		if err != nil {
			t.Fatalf("%s login: %v", k.Alg, err)
		}
		a := s.Auth
		if a == nil || a.ClientToken == "" {
			t.Fatalf("%s login returned no token: %+v", k.Alg, s)
		}
		if !slices.Equal(a.Policies, []string{"default", "deploy"}) {
			t.Fatalf("policies %v, want [default deploy]", a.Policies)
		}
		for k, v := range map[string]string{"role": "deploy", "repository": "acme/api", "environment": "production",
			"job_workflow_ref": "acme/api/.github/workflows/deploy.yml@refs/heads/main", "ref": "refs/heads/main"} {
			if a.Metadata[k] != v {
				t.Fatalf("metadata %q = %q, want %q (all: %v)", k, a.Metadata[k], v, a.Metadata)
			}
		}
		if a.LeaseDuration != 600 {
			t.Fatalf("lease_duration %d, want 600 (token_ttl)", a.LeaseDuration)
		}
		// The token works, and carries the display name of the user claim.
		tc := newClient(t, c.Address(), a.ClientToken)
		self, err := tc.Auth().Token().LookupSelf()
		if err != nil {
			t.Fatalf("lookup-self with the login token: %v", err)
		}
		if dn, _ := self.Data["display_name"].(string); dn != "jwt-repo:acme/api:environment:production" {
			t.Fatalf("display_name %q", dn)
		}
	}

	// Each refusal names its reason.
	claims := func(mod func(map[string]any)) map[string]any {
		m := githubClaims(iss.URL, now, "acme/api")
		mod(m)
		return m
	}
	pubPEM := rsaKey.PublicPEM(t)
	cases := []struct {
		name  string
		token string
		want  string
	}{
		{"wrong audience", oidctest.Sign(t, rsaKey, claims(func(m map[string]any) { m["aud"] = "https://github.com/evil" })), "aud claim does not match any bound audience"},
		{"expired", oidctest.Sign(t, rsaKey, claims(func(m map[string]any) {
			m["iat"], m["nbf"], m["exp"] = now.Add(-2*time.Hour).Unix(), now.Add(-2*time.Hour).Unix(), now.Add(-time.Hour).Unix()
		})), "expired"},
		{"not yet valid", oidctest.Sign(t, rsaKey, claims(func(m map[string]any) {
			m["iat"], m["nbf"], m["exp"] = now.Unix(), now.Add(time.Hour).Unix(), now.Add(2*time.Hour).Unix()
		})), "not yet valid"},
		{"wrong issuer", oidctest.Sign(t, rsaKey, claims(func(m map[string]any) { m["iss"] = "https://evil.example" })), "does not match the expected issuer"},
		{"unknown kid", oidctest.Sign(t, oidctest.NewRSA(t, "rsa-unknown"), claims(func(map[string]any) {})), `no key with ID "rsa-unknown"`},
		{"right kid, other key", oidctest.Sign(t, &oidctest.Key{Alg: rsaKey.Alg, KID: "rsa-1", Priv: oidctest.NewRSA(t, "x").Priv}, claims(func(map[string]any) {})), "does not verify"},
		{"alg none", oidctest.Unsigned(t, map[string]any{"alg": "none", "typ": "JWT"}, claims(func(map[string]any) {}), nil), `signing algorithm "none" is not accepted`},
		{"HMAC with the public key", oidctest.Unsigned(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, claims(func(map[string]any) {}), func(in []byte) []byte {
			m := hmac.New(sha256.New, []byte(pubPEM))
			m.Write(in)
			return m.Sum(nil)
		}), `signing algorithm "HS256" is not accepted`},
		{"glob does not match", oidctest.Sign(t, rsaKey, claims(func(m map[string]any) { m["repository"] = "evil/api" })), `claim "repository" does not match any associated bound claim values`},
		{"bound claim missing", oidctest.Sign(t, rsaKey, claims(func(m map[string]any) { delete(m, "ref") })), `claim "ref" is missing`},
		{"branch not bound", oidctest.Sign(t, rsaKey, claims(func(m map[string]any) { m["ref"] = "refs/heads/feature" })), `claim "ref" does not match`},
		{"no time claims", oidctest.Sign(t, rsaKey, claims(func(m map[string]any) { delete(m, "iat"); delete(m, "nbf"); delete(m, "exp") })), "no issue time"},
		{"garbage", "not-a-jwt", "not a well-formed signed JWT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mustRefuse(t, c, "auth/jwt/login", map[string]any{"role": "deploy", "jwt": tc.token}, tc.want)
		})
	}
	// A tag matches the second glob of the list.
	login["jwt"] = oidctest.Sign(t, rsaKey, claims(func(m map[string]any) { m["ref"] = "refs/tags/v1.2.0" }))
	if _, err := c.Logical().Write("auth/jwt/login", login); err != nil {
		t.Fatalf("login from a tag: %v", err)
	}
	mustRefuse(t, c, "auth/jwt/login", map[string]any{"role": "nope", "jwt": "x"}, `role "nope" could not be found`)
	mustRefuse(t, c, "auth/jwt/login", map[string]any{"role": "deploy"}, "missing token")

	// Key rotation at the issuer: a token under a new key ID logs in (the
	// key set is fetched again), and the retired key no longer works.
	rotated := oidctest.NewEC(t, "ec-2")
	iss.SetKeys(rotated)
	fetches := iss.KeyFetches.Load()
	login["jwt"] = oidctest.Sign(t, rotated, githubClaims(iss.URL, now, "acme/web"))
	if _, err := c.Logical().Write("auth/jwt/login", login); err != nil {
		t.Fatalf("login with the rotated key: %v", err)
	}
	if iss.KeyFetches.Load() != fetches+1 {
		t.Fatalf("key set fetched %d times for the rotation, want once", iss.KeyFetches.Load()-fetches)
	}
	mustRefuse(t, c, "auth/jwt/login", map[string]any{"role": "deploy", "jwt": oidctest.Sign(t, rsaKey, githubClaims(iss.URL, now, "acme/api"))}, `no key with ID "rsa-1"`)
	// Logins with known keys do not fetch the key set again.
	fetches = iss.KeyFetches.Load()
	for range 3 {
		login["jwt"] = oidctest.Sign(t, rotated, githubClaims(iss.URL, now, "acme/web"))
		if _, err := c.Logical().Write("auth/jwt/login", login); err != nil {
			t.Fatal(err)
		}
	}
	if got := iss.KeyFetches.Load() - fetches; got != 0 {
		t.Fatalf("cached key set fetched %d times", got)
	}
}

func TestJWTRolesAndConfig(t *testing.T) {
	ecKey := oidctest.NewEC(t, "")
	iss := oidctest.NewIssuer(t, ecKey)
	c := devClient(t)
	if err := c.Sys().EnableAuthWithOptions("jwt", &vault.EnableAuthOptions{Type: "jwt"}); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		cfg  map[string]any
		want string
	}{
		{map[string]any{}, "exactly one of"},
		{map[string]any{"jwks_url": iss.URL + "/keys", "jwt_validation_pubkeys": ecKey.PublicPEM(t)}, "exactly one of"},
		{map[string]any{"jwt_validation_pubkeys": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"}, "jwt_validation_pubkeys"},
		{map[string]any{"jwks_url": iss.URL + "/missing"}, "error checking jwks URL"},
		{map[string]any{"oidc_discovery_url": iss.URL + "/nothing-here"}, "error checking oidc discovery URL"},
		{map[string]any{"jwks_url": iss.URL + "/keys", "jwks_ca_pem": "not a pem"}, "jwks_ca_pem"},
		{map[string]any{"jwks_url": iss.URL + "/keys", "jwt_supported_algs": "HS256"}, "jwt_supported_algs"},
		{map[string]any{"oidc_discovery_url": iss.URL, "oidc_client_id": "x"}, "oidc_client_secret"},
	}
	for _, b := range bad {
		_, err := c.Logical().Write("auth/jwt/config", b.cfg)
		if statusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), b.want) {
			t.Fatalf("config %v: got %v, want 400 containing %q", b.cfg, err, b.want)
		}
	}
	// PEM keys: the config verifies tokens locally; the secret is never read back.
	if _, err := c.Logical().Write("auth/jwt/config", map[string]any{
		"jwt_validation_pubkeys": []string{ecKey.PublicPEM(t)}, "bound_issuer": iss.URL, "default_role": "svc",
	}); err != nil {
		t.Fatal(err)
	}
	s, err := c.Logical().Read("auth/jwt/config")
	if err != nil || s == nil {
		t.Fatalf("read config: %v", err)
	}
	if _, ok := s.Data["oidc_client_secret"]; ok {
		t.Fatal("config read returns oidc_client_secret")
	}
	if s.Data["bound_issuer"] != iss.URL || s.Data["default_role"] != "svc" {
		t.Fatalf("config read: %v", s.Data)
	}

	badRoles := []struct {
		role map[string]any
		want string
	}{
		{map[string]any{"role_type": "jwt", "bound_audiences": "a"}, "user_claim"},
		{map[string]any{"role_type": "jwt", "user_claim": "sub"}, "at least one bound constraint"},
		{map[string]any{"user_claim": "sub"}, "allowed_redirect_uris"},
		{map[string]any{"role_type": "saml", "user_claim": "sub"}, "role_type"},
		{map[string]any{"role_type": "jwt", "user_claim": "sub", "bound_subject": "x", "bound_claims_type": "regex"}, "bound_claims_type"},
		{map[string]any{"role_type": "jwt", "user_claim": "sub", "bound_subject": "x", "claim_mappings": map[string]any{"a": "role"}}, "reserved"},
		{map[string]any{"role_type": "jwt", "user_claim": "sub", "bound_subject": "x", "token_bound_cidrs": "nope"}, "token_bound_cidrs"},
	}
	for _, b := range badRoles {
		_, err := c.Logical().Write("auth/jwt/role/bad", b.role)
		if statusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), b.want) {
			t.Fatalf("role %v: got %v, want 400 containing %q", b.role, err, b.want)
		}
	}
	if _, err := c.Logical().Write("auth/jwt/role/svc", map[string]any{
		"role_type": "jwt", "user_claim": "sub", "bound_subject": "svc-a", "policies": "legacy", "ttl": 300,
		"groups_claim": "/org/teams", "bound_claims": map[string]any{"/org/id": 42},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("auth/jwt/role/other", map[string]any{"role_type": "jwt", "user_claim": "sub", "bound_audiences": "x"}); err != nil {
		t.Fatal(err)
	}
	s, err = c.Logical().Read("auth/jwt/role/svc")
	if err != nil || s == nil {
		t.Fatalf("read role: %v", err)
	}
	if s.Data["token_ttl"].(json.Number).String() != "300" || s.Data["clock_skew_leeway"].(json.Number).String() != "60" ||
		s.Data["expiration_leeway"].(json.Number).String() != "150" || s.Data["bound_subject"] != "svc-a" {
		t.Fatalf("role read: %v", s.Data)
	}
	l, err := c.Logical().List("auth/jwt/role")
	if err != nil || l == nil {
		t.Fatalf("list roles: %v", err)
	}
	if keys := l.Data["keys"].([]any); len(keys) != 2 {
		t.Fatalf("list roles: %v", keys)
	}

	// default_role, nested bound claims (a number) and a nested groups claim.
	now := time.Now()
	tok := oidctest.Sign(t, ecKey, map[string]any{
		"iss": iss.URL, "sub": "svc-a", "exp": now.Add(time.Minute).Unix(),
		"org": map[string]any{"id": 42, "teams": []string{"ops", "db"}},
	})
	sec, err := c.Logical().Write("auth/jwt/login", map[string]any{"jwt": tok})
	if err != nil {
		t.Fatalf("login with default_role: %v", err)
	}
	if !slices.Contains(sec.Auth.Policies, "legacy") || sec.Auth.LeaseDuration != 300 {
		t.Fatalf("legacy policies/ttl not applied: %+v", sec.Auth)
	}
	tok = oidctest.Sign(t, ecKey, map[string]any{
		"iss": iss.URL, "sub": "svc-a", "exp": now.Add(time.Minute).Unix(),
		"org": map[string]any{"id": 42, "teams": "ops"},
	})
	if _, err := c.Logical().Write("auth/jwt/login", map[string]any{"jwt": tok}); err != nil {
		t.Fatalf("a single group as a string: %v", err)
	}
	tok = oidctest.Sign(t, ecKey, map[string]any{"iss": iss.URL, "sub": "svc-a", "exp": now.Add(time.Minute).Unix(), "org": map[string]any{"id": 42}})
	mustRefuse(t, c, "auth/jwt/login", map[string]any{"jwt": tok}, `"/org/teams" claim not found`)
	tok = oidctest.Sign(t, ecKey, map[string]any{"iss": iss.URL, "sub": "svc-a", "exp": now.Add(time.Minute).Unix(), "org": map[string]any{"id": 43, "teams": []string{}}})
	mustRefuse(t, c, "auth/jwt/login", map[string]any{"jwt": tok}, `claim "/org/id" does not match`)
	tok = oidctest.Sign(t, ecKey, map[string]any{"iss": iss.URL, "sub": "svc-b", "exp": now.Add(time.Minute).Unix(), "org": map[string]any{"id": 42, "teams": []string{}}})
	mustRefuse(t, c, "auth/jwt/login", map[string]any{"jwt": tok}, "bound_subject")
	// A token with an audience is refused by a jwt role that binds none.
	tok = oidctest.Sign(t, ecKey, map[string]any{"iss": iss.URL, "sub": "svc-a", "aud": "someone", "exp": now.Add(time.Minute).Unix(), "org": map[string]any{"id": 42, "teams": []string{}}})
	mustRefuse(t, c, "auth/jwt/login", map[string]any{"jwt": tok}, "no audiences bound to the role")

	if _, err := c.Logical().Delete("auth/jwt/role/svc"); err != nil {
		t.Fatal(err)
	}
	mustRefuse(t, c, "auth/jwt/login", map[string]any{"jwt": tok}, "could not be found")
}

// TestJWTKubernetesServiceAccount logs in with a Kubernetes service-account
// token verified through the cluster's OIDC discovery document, the way
// External Secrets Operator and the Secrets Store CSI provider do.
func TestJWTKubernetesServiceAccount(t *testing.T) {
	key := oidctest.NewRSA(t, "k8s-sa-1")
	iss := oidctest.NewIssuer(t, key)
	c := devClient(t)
	mountJWT(t, c, "kubernetes", "jwt", map[string]any{"oidc_discovery_url": iss.URL})
	if _, err := c.Logical().Write("auth/kubernetes/role/eso", map[string]any{
		"role_type":       "jwt",
		"user_claim":      "sub",
		"bound_audiences": "https://kubernetes.default.svc.cluster.local",
		"bound_subject":   "system:serviceaccount:external-secrets:eso",
		"bound_claims":    map[string]any{"/kubernetes.io/namespace": "external-secrets"},
		"claim_mappings": map[string]any{
			"/kubernetes.io/namespace": "namespace", "/kubernetes.io/serviceaccount/name": "service_account_name",
			"/kubernetes.io/pod/name": "pod",
		},
		"token_policies": "eso",
	}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sa := func(ns, name string) map[string]any {
		return map[string]any{
			"iss": iss.URL, "sub": "system:serviceaccount:" + ns + ":" + name,
			"aud": []string{"https://kubernetes.default.svc.cluster.local"},
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
			"kubernetes.io": map[string]any{
				"namespace":      ns,
				"pod":            map[string]any{"name": name + "-7d9f8", "uid": "1b2c"},
				"serviceaccount": map[string]any{"name": name, "uid": "3d4e"},
			},
		}
	}
	s, err := c.Logical().Write("auth/kubernetes/login", map[string]any{"role": "eso", "jwt": oidctest.Sign(t, key, sa("external-secrets", "eso"))})
	if err != nil {
		t.Fatalf("service-account login: %v", err)
	}
	if s.Auth.Metadata["namespace"] != "external-secrets" || s.Auth.Metadata["service_account_name"] != "eso" || s.Auth.Metadata["pod"] != "eso-7d9f8" {
		t.Fatalf("metadata %v", s.Auth.Metadata)
	}
	if !slices.Contains(s.Auth.Policies, "eso") {
		t.Fatalf("policies %v", s.Auth.Policies)
	}
	mustRefuse(t, c, "auth/kubernetes/login", map[string]any{"role": "eso", "jwt": oidctest.Sign(t, key, sa("default", "eso"))}, "bound_subject")
	other := sa("external-secrets", "eso")
	other["aud"] = []string{"https://other.cluster"}
	mustRefuse(t, c, "auth/kubernetes/login", map[string]any{"role": "eso", "jwt": oidctest.Sign(t, key, other)}, "bound audience")
}

// TestJWTIssuerCA fetches the discovery document and keys over HTTPS from an
// issuer whose certificate only the configured CA PEM verifies, as with a
// Kubernetes cluster's own CA.
func TestJWTIssuerCA(t *testing.T) {
	key := oidctest.NewEC(t, "ec-1")
	iss := oidctest.NewTLSIssuer(t, key)
	c := devClient(t)
	if err := c.Sys().EnableAuthWithOptions("jwt", &vault.EnableAuthOptions{Type: "jwt"}); err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []map[string]any{{"oidc_discovery_url": iss.URL}, {"jwks_url": iss.URL + "/keys"}} {
		_, err := c.Logical().Write("auth/jwt/config", cfg)
		if statusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("config %v without the CA: %v, want a 400 about the certificate", cfg, err)
		}
	}
	role := map[string]any{"role_type": "jwt", "user_claim": "sub", "bound_subject": "system:serviceaccount:ns:app"}
	tok := oidctest.Sign(t, key, map[string]any{"iss": iss.URL, "sub": "system:serviceaccount:ns:app", "exp": time.Now().Add(time.Minute).Unix()})
	for _, cfg := range []map[string]any{
		{"oidc_discovery_url": iss.URL, "oidc_discovery_ca_pem": iss.CAPEM},
		{"jwks_url": iss.URL + "/keys", "jwks_ca_pem": iss.CAPEM},
	} {
		if _, err := c.Logical().Write("auth/jwt/config", cfg); err != nil {
			t.Fatalf("config %v: %v", cfg, err)
		}
		if _, err := c.Logical().Write("auth/jwt/role/app", role); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Logical().Write("auth/jwt/login", map[string]any{"role": "app", "jwt": tok}); err != nil {
			t.Fatalf("login with config %v: %v", cfg, err)
		}
	}
}

// TestOIDCBrowserFlow drives auth_url and callback against a fake provider:
// the test plays the browser, mints a code whose ID token carries the
// nonce, and completes the login.
func TestOIDCBrowserFlow(t *testing.T) {
	key := oidctest.NewEd25519(t, "ed-1")
	iss := oidctest.NewIssuer(t, key)
	c := devClient(t)
	mountJWT(t, c, "oidc", "oidc", map[string]any{
		"oidc_discovery_url": iss.URL, "oidc_client_id": iss.ClientID, "oidc_client_secret": iss.ClientSecret,
		"default_role": "web",
	})
	s, err := c.Logical().Read("auth/oidc/config")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Data["oidc_client_secret"]; ok {
		t.Fatal("config read returns oidc_client_secret")
	}
	const redirect = "http://localhost:8250/oidc/callback"
	if _, err := c.Logical().Write("auth/oidc/role/web", map[string]any{
		"user_claim": "email", "groups_claim": "groups", "allowed_redirect_uris": []string{redirect},
		"oidc_scopes": "email,profile", "token_policies": "dev", "claim_mappings": map[string]any{"name": "name"},
	}); err != nil {
		t.Fatal(err)
	}
	anon := newClient(t, c.Address(), "")
	anon.ClearToken()

	// An unlisted redirect URI gets no auth URL.
	s, err = anon.Logical().Write("auth/oidc/oidc/auth_url", map[string]any{"role": "web", "redirect_uri": "https://evil.example/cb"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Data["auth_url"] != "" {
		t.Fatalf("auth_url for an unlisted redirect_uri: %v", s.Data["auth_url"])
	}

	start := func(clientNonce string) (state, nonce, challenge string) {
		t.Helper()
		s, err := anon.Logical().Write("auth/oidc/oidc/auth_url", map[string]any{"redirect_uri": redirect, "client_nonce": clientNonce})
		if err != nil {
			t.Fatalf("auth_url: %v", err)
		}
		u, err := url.Parse(s.Data["auth_url"].(string))
		if err != nil || !strings.HasPrefix(u.String(), iss.URL+"/authorize?") {
			t.Fatalf("auth_url %q", s.Data["auth_url"])
		}
		q := u.Query()
		if q.Get("client_id") != iss.ClientID || q.Get("redirect_uri") != redirect || q.Get("response_type") != "code" ||
			q.Get("code_challenge_method") != "S256" || q.Get("scope") != "openid email profile" {
			t.Fatalf("auth_url query %v", q)
		}
		if q.Get("state") == "" || q.Get("nonce") == "" || q.Get("code_challenge") == "" {
			t.Fatalf("auth_url lacks state, nonce or code_challenge: %v", q)
		}
		return q.Get("state"), q.Get("nonce"), q.Get("code_challenge")
	}
	idToken := func(nonce, aud string) string {
		now := time.Now()
		return oidctest.Sign(t, key, map[string]any{
			"iss": iss.URL, "aud": aud, "sub": "u-123", "email": "ada@example.com", "name": "Ada",
			"groups": []string{"engineering", "oncall"}, "nonce": nonce,
			"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		})
	}
	callback := func(state, code, clientNonce string) (*vault.Secret, error) {
		q := map[string][]string{"state": {state}, "code": {code}}
		if clientNonce != "" {
			q["client_nonce"] = []string{clientNonce}
		}
		return anon.Logical().ReadWithData("auth/oidc/oidc/callback", q)
	}

	state, nonce, challenge := start("cn-1")
	code := iss.MintCode(challenge, idToken(nonce, iss.ClientID))
	s, err = callback(state, code, "cn-1")
	if err != nil {
		t.Fatalf("callback: %v", err)
	}
	if s.Auth == nil || s.Auth.ClientToken == "" || !slices.Contains(s.Auth.Policies, "dev") {
		t.Fatalf("callback auth %+v", s.Auth)
	}
	if s.Auth.Metadata["name"] != "Ada" || s.Auth.Metadata["role"] != "web" {
		t.Fatalf("metadata %v", s.Auth.Metadata)
	}
	// The state is single-use.
	_, err = callback(state, iss.MintCode(challenge, idToken(nonce, iss.ClientID)), "cn-1")
	if statusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "Expired or missing OAuth state") {
		t.Fatalf("replayed state: %v", err)
	}
	// POST works too (form_post-style clients and the UI).
	state, nonce, challenge = start("")
	if _, err := anon.Logical().Write("auth/oidc/oidc/callback", map[string]any{"state": state, "code": iss.MintCode(challenge, idToken(nonce, iss.ClientID))}); err != nil {
		t.Fatalf("POST callback: %v", err)
	}

	refusals := []struct {
		name string
		run  func() error
		want string
	}{
		{"nonce mismatch", func() error {
			state, _, challenge := start("")
			_, err := callback(state, iss.MintCode(challenge, idToken("other-nonce", iss.ClientID)), "")
			return err
		}, "nonce"},
		{"client_nonce mismatch", func() error {
			state, nonce, challenge := start("cn-2")
			_, err := callback(state, iss.MintCode(challenge, idToken(nonce, iss.ClientID)), "cn-3")
			return err
		}, "invalid client_nonce"},
		{"wrong PKCE challenge", func() error {
			state, nonce, _ := start("")
			_, err := callback(state, iss.MintCode("not-the-challenge", idToken(nonce, iss.ClientID)), "")
			return err
		}, "invalid_grant"},
		{"ID token for another client", func() error {
			state, nonce, challenge := start("")
			_, err := callback(state, iss.MintCode(challenge, idToken(nonce, "another-client")), "")
			return err
		}, "client ID"},
		{"unknown state", func() error {
			_, err := callback("made-up", "code", "")
			return err
		}, "Expired or missing OAuth state"},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			err := r.run()
			if statusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), r.want) {
				t.Fatalf("got %v, want 400 containing %q", err, r.want)
			}
		})
	}
	// A browser following auth_url to a provider that approves at once
	// lands on the redirect URI with the code and the state.
	iss.AutoApprove(key, map[string]any{"sub": "u-9", "email": "grace@example.com", "groups": "ops"})
	s, err = anon.Logical().Write("auth/oidc/oidc/auth_url", map[string]any{"redirect_uri": redirect, "client_nonce": "cn-9"})
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := browser.Get(s.Data["auth_url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	back, err := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(back.String(), redirect+"?") {
		t.Fatalf("provider answered %d, Location %q", res.StatusCode, res.Header.Get("Location"))
	}
	s, err = callback(back.Query().Get("state"), back.Query().Get("code"), "cn-9")
	if err != nil {
		t.Fatalf("callback after the redirect: %v", err)
	}
	if s.Auth.Metadata["role"] != "web" || s.Auth.ClientToken == "" {
		t.Fatalf("auth after the redirect: %+v", s.Auth)
	}
	// An oidc role does not take JWT logins.
	mustRefuse(t, anon, "auth/oidc/login", map[string]any{"role": "web", "jwt": idToken("n", iss.ClientID)}, "oidc role_type is not allowed")
}

// TestPythonHvacJWT logs in with hvac's auth.jwt.jwt_login, and through the
// browser flow with its auth.oidc helpers.
func TestPythonHvacJWT(t *testing.T) {
	if exec.Command("/usr/bin/python3", "-c", "import hvac").Run() != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("Debian python3-hvac is not installed: scripts/setup.d should have installed it")
		}
		t.Skip("Debian python3-hvac is not installed; run ./scripts/test to install it")
	}
	key := oidctest.NewRSA(t, "rsa-1")
	iss := oidctest.NewIssuer(t, key)
	addr, root := servertest.StartDev(t)
	c := newClient(t, addr, root)
	mountJWT(t, c, "jwt", "jwt", map[string]any{"jwks_url": iss.URL + "/keys", "bound_issuer": iss.URL})
	if _, err := c.Logical().Write("auth/jwt/role/ci", map[string]any{
		"role_type": "jwt", "user_claim": "sub", "bound_audiences": "https://github.com/acme",
		"bound_claims_type": "glob", "bound_claims": map[string]any{"repository": "acme/*"}, "token_policies": "ci",
	}); err != nil {
		t.Fatal(err)
	}
	const redirect = "http://localhost:8250/oidc/callback"
	mountJWT(t, c, "oidc", "oidc", map[string]any{
		"oidc_discovery_url": iss.URL, "oidc_client_id": iss.ClientID, "oidc_client_secret": iss.ClientSecret,
	})
	if _, err := c.Logical().Write("auth/oidc/role/web", map[string]any{
		"user_claim": "email", "allowed_redirect_uris": redirect, "token_policies": "dev",
	}); err != nil {
		t.Fatal(err)
	}
	iss.AutoApprove(key, map[string]any{"sub": "u-1", "email": "ada@example.com"})
	now := time.Now()
	cmd := exec.Command("/usr/bin/python3", filepath.Join("python", "jwt_login.py"))
	cmd.Env = append(os.Environ(), "VAULT_ADDR="+addr,
		"JWT_GOOD="+oidctest.Sign(t, key, githubClaims(iss.URL, now, "acme/api")),
		"JWT_BAD="+oidctest.Sign(t, key, githubClaims(iss.URL, now, "evil/api")),
		"OIDC_REDIRECT="+redirect)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("jwt_login.py: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
