package compat

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/arcasec/arca/internal/testutil/oidctest"
)

// TestOIDCFormPostCallback completes a browser login whose provider posts
// the callback's fields as a form (oidc_response_mode = form_post), and
// checks that form bodies are taken at oidc/callback only.
func TestOIDCFormPostCallback(t *testing.T) {
	key := oidctest.NewEd25519(t, "ed-1")
	iss := oidctest.NewIssuer(t, key)
	c := devClient(t)
	mountJWT(t, c, "oidc", "oidc", map[string]any{
		"oidc_discovery_url": iss.URL, "oidc_client_id": iss.ClientID, "oidc_client_secret": iss.ClientSecret,
		"default_role": "web", "oidc_response_mode": "form_post",
	})
	const redirect = "https://arca.example/ui/vault/auth/oidc/oidc/callback"
	if _, err := c.Logical().Write("auth/oidc/role/web", map[string]any{
		"user_claim": "email", "allowed_redirect_uris": []string{redirect}, "token_policies": "dev",
	}); err != nil {
		t.Fatal(err)
	}
	anon := newClient(t, c.Address(), "")
	anon.ClearToken()

	start := func() (state, nonce, challenge string) {
		t.Helper()
		s, err := anon.Logical().Write("auth/oidc/oidc/auth_url", map[string]any{"redirect_uri": redirect, "client_nonce": "cn-1"})
		if err != nil {
			t.Fatalf("auth_url: %v", err)
		}
		u, err := url.Parse(s.Data["auth_url"].(string))
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		if q.Get("response_mode") != "form_post" {
			t.Fatalf("auth_url has response_mode %q, want form_post", q.Get("response_mode"))
		}
		return q.Get("state"), q.Get("nonce"), q.Get("code_challenge")
	}
	code := func(nonce, challenge string) string {
		now := time.Now()
		return iss.MintCode(challenge, oidctest.Sign(t, key, map[string]any{
			"iss": iss.URL, "aud": iss.ClientID, "sub": "u-1", "email": "ada@example.com", "nonce": nonce,
			"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		}))
	}
	post := func(path, body string) (int, map[string]any) {
		t.Helper()
		res, err := http.Post(c.Address()+"/v1/"+path, "application/x-www-form-urlencoded", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		json.NewDecoder(res.Body).Decode(&out)
		return res.StatusCode, out
	}

	// What the browser posts to the redirect URI, passed on as sent.
	state, nonce, challenge := start()
	form := url.Values{"state": {state}, "code": {code(nonce, challenge)}, "client_nonce": {"cn-1"}, "id_token": {""}}
	st, out := post("auth/oidc/oidc/callback", form.Encode())
	if st != http.StatusOK {
		t.Fatalf("form_post callback: %d %v", st, out)
	}
	auth, _ := out["auth"].(map[string]any)
	if auth == nil || auth["client_token"] == "" {
		t.Fatalf("form_post callback gave no token: %v", out)
	}
	if pol, _ := auth["policies"].([]any); !slices.Contains(pol, any("dev")) {
		t.Fatalf("form_post callback policies %v", auth["policies"])
	}
	// The token works.
	if _, err := newClient(t, c.Address(), auth["client_token"].(string)).Auth().Token().LookupSelf(); err != nil {
		t.Fatalf("token from the form_post callback: %v", err)
	}

	// A form's fields go through the same checks as JSON's.
	state, nonce, challenge = start()
	form = url.Values{"state": {state}, "code": {code(nonce, challenge)}, "client_nonce": {"other"}}
	if st, out := post("auth/oidc/oidc/callback", form.Encode()); st != http.StatusBadRequest {
		t.Fatalf("form_post callback with a wrong client_nonce: %d %v", st, out)
	}
	// A field given twice is refused, naming it.
	if st, out := post("auth/oidc/oidc/callback", "state=a&state=b"); st != http.StatusBadRequest || !strings.Contains(strings.Join(errorsOf(out), " "), `"state"`) {
		t.Fatalf("form with a repeated field: %d %v", st, out)
	}

	// JSON labelled as a form (curl -d) is still read as JSON there.
	state, nonce, challenge = start()
	raw, _ := json.Marshal(map[string]string{"state": state, "code": code(nonce, challenge), "client_nonce": "cn-1"})
	if st, out := post("auth/oidc/oidc/callback", string(raw)); st != http.StatusOK {
		t.Fatalf("JSON callback sent as a form: %d %v", st, out)
	}

	// Paths that did not declare form bodies still take JSON only.
	if st, out := post("auth/oidc/oidc/auth_url", url.Values{"redirect_uri": {redirect}}.Encode()); st != http.StatusBadRequest || !strings.Contains(strings.Join(errorsOf(out), " "), "JSON") {
		t.Fatalf("form body at oidc/auth_url: %d %v", st, out)
	}
	if st, out := post("auth/oidc/login", url.Values{"role": {"web"}, "jwt": {"x"}}.Encode()); st != http.StatusBadRequest || !strings.Contains(strings.Join(errorsOf(out), " "), "JSON") {
		t.Fatalf("form body at login: %d %v", st, out)
	}
}
