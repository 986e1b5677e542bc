package compat

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/testutil/oidctest"
)

// TestProbeOIDCStateAndCode: an OIDC state belongs to the mount and role
// that issued it; a code is bound to its PKCE challenge; the redirect URI
// must be listed; and none of these can be swapped to log in elsewhere.
func TestProbeOIDCStateAndCode(t *testing.T) {
	key := oidctest.NewEd25519(t, "ed")
	iss := oidctest.NewIssuer(t, key)
	root := devClient(t)
	const redirect = "http://localhost:8250/oidc/callback"
	for _, m := range []struct{ path, pol string }{{"low", "low"}, {"high", "high"}} {
		mountJWT(t, root, m.path, "oidc", map[string]any{
			"oidc_discovery_url": iss.URL, "oidc_client_id": iss.ClientID, "oidc_client_secret": iss.ClientSecret, "default_role": "web",
		})
		mustWrite(t, root, "auth/"+m.path+"/role/web", map[string]any{"user_claim": "email", "allowed_redirect_uris": []string{redirect}, "token_policies": m.pol})
	}
	anon := newClient(t, root.Address(), "")
	start := func(mount, redirectURI string) url.Values {
		t.Helper()
		s, err := anon.Logical().Write("auth/"+mount+"/oidc/auth_url", map[string]any{"redirect_uri": redirectURI})
		if err != nil {
			t.Fatalf("auth_url on %s: %v", mount, err)
		}
		au, _ := s.Data["auth_url"].(string)
		if au == "" {
			return nil
		}
		u, _ := url.Parse(au)
		return u.Query()
	}
	idTok := func(nonce string) string {
		now := time.Now()
		return oidctest.Sign(t, key, map[string]any{"iss": iss.URL, "aud": iss.ClientID, "sub": "u", "email": "eve@example.com",
			"nonce": nonce, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()})
	}
	callback := func(mount string, q map[string][]string) (*vault.Secret, error) {
		return anon.Logical().ReadWithData("auth/"+mount+"/oidc/callback", q)
	}

	// Redirect URIs not listed get no auth URL, however close they look.
	for _, r := range []string{"http://localhost:8250/oidc/callback/", "http://localhost:8250/oidc/callback?x=1", "http://localhost:8250/oidc/callback#f",
		"http://LOCALHOST:8250/oidc/callback", "http://localhost:8250@evil.example/oidc/callback", "http://evil.example/oidc/callback"} {
		if q := start("low", r); q != nil {
			t.Errorf("redirect_uri %q got an auth URL", r)
		}
	}

	// A state issued by mount low does not complete a login on mount high.
	q := start("low", redirect)
	code := iss.MintCode(q.Get("code_challenge"), idTok(q.Get("nonce")))
	if _, err := callback("high", map[string][]string{"state": {q.Get("state")}, "code": {code}}); statusOf(err) != http.StatusBadRequest {
		t.Errorf("low's state on high: %v, want 400", err)
	}
	// A code minted for another login's PKCE challenge does not complete
	// this one.
	q2 := start("low", redirect)
	stolen := iss.MintCode(q.Get("code_challenge"), idTok(q2.Get("nonce")))
	if _, err := callback("low", map[string][]string{"state": {q2.Get("state")}, "code": {stolen}}); statusOf(err) != http.StatusBadRequest {
		t.Errorf("a code bound to another PKCE challenge: %v, want 400", err)
	}
	// Missing or empty pieces.
	for _, bad := range []map[string][]string{
		{"code": {code}},
		{"state": {""}, "code": {code}},
		{"state": {q.Get("state")}},
		{"state": {q.Get("state"), q2.Get("state")}, "code": {code}},
	} {
		if _, err := callback("low", bad); err == nil || statusOf(err) >= 500 {
			t.Errorf("callback %v: %v, want a 4xx", bad, err)
		}
	}
	// The honest login still works, on the mount that issued the state,
	// with that mount's policies.
	q3 := start("high", redirect)
	s, err := callback("high", map[string][]string{"state": {q3.Get("state")}, "code": {iss.MintCode(q3.Get("code_challenge"), idTok(q3.Get("nonce")))}})
	if err != nil || s.Auth == nil {
		t.Fatalf("honest login on high: %v", err)
	}
	// A nonce from another login in the ID token is refused.
	q4 := start("low", redirect)
	if _, err := callback("low", map[string][]string{"state": {q4.Get("state")}, "code": {iss.MintCode(q4.Get("code_challenge"), idTok(q3.Get("nonce")))}}); statusOf(err) != http.StatusBadRequest {
		t.Errorf("an ID token with another login's nonce: %v, want 400", err)
	}
}
