package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/arcasec/arca/api"
)

// fakeRequest is what the fake server saw.
type fakeRequest struct {
	Method, Path, Token string
	Query               url.Values
	Body                map[string]any
}

// fakeServer answers every request with a login response and records what
// the CLI sent. The CLI is pointed at it.
type fakeServer struct {
	mu   sync.Mutex
	reqs []fakeRequest
	// handle, when set, answers instead of the canned login.
	handle func(w http.ResponseWriter, r fakeRequest) bool
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	f := &fakeServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fr := fakeRequest{Method: r.Method, Path: r.URL.Path, Token: r.Header.Get("X-Vault-Token"), Query: r.URL.Query()}
		json.NewDecoder(r.Body).Decode(&fr.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, fr)
		handle := f.handle
		f.mu.Unlock()
		if handle != nil && handle(w, fr) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"auth":{"client_token":"hvs.fake","accessor":"acc1","policies":["default","dev"],
			"token_policies":["default"],"identity_policies":["dev"],"metadata":{"role":"r1","mount":"m"},
			"lease_duration":2700,"renewable":true}}`))
	}))
	t.Cleanup(srv.Close)
	t.Setenv("HOME", t.TempDir())
	t.Setenv("VAULT_ADDR", srv.URL)
	t.Setenv("VAULT_TOKEN", "stale-token")
	t.Setenv("ARCA_ADDR", "")
	t.Setenv("ARCA_TOKEN", "")
	t.Setenv("VAULT_FORMAT", "")
	return f
}

func (f *fakeServer) last(t *testing.T) fakeRequest {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		t.Fatal("the CLI sent no request")
	}
	return f.reqs[len(f.reqs)-1]
}

func storedToken(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(os.Getenv("HOME"), api.TokenFile))
	if err != nil {
		return ""
	}
	return string(b)
}

func assertBody(t *testing.T, r fakeRequest, method, path string, want map[string]any) {
	t.Helper()
	if r.Method != method || r.Path != path {
		t.Fatalf("request %s %s, want %s %s", r.Method, r.Path, method, path)
	}
	got, _ := json.Marshal(r.Body)
	exp, _ := json.Marshal(want)
	if string(got) != string(exp) {
		t.Fatalf("body %s, want %s", got, exp)
	}
}

func TestLoginMethodsSendTheirFields(t *testing.T) {
	f := newFakeServer(t)
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte("from-a-file"), 0o600)
	jwtFile := filepath.Join(dir, "jwt")
	os.WriteFile(jwtFile, []byte("eyJhbGciOi.eyJzdWIi.c2ln\n"), 0o600)

	// userpass: the user name goes in the path, the password from @file.
	code, out, errOut := arca(t, "", "login", "-method=userpass", "-path=corp/", "username=bob", "password=@"+pwFile)
	if code != 0 {
		t.Fatalf("userpass: exit %d %s", code, errOut)
	}
	r := f.last(t)
	assertBody(t, r, "POST", "/v1/auth/corp/login/bob", map[string]any{"password": "from-a-file"})
	if r.Token != "" {
		t.Fatalf("a login sent the stale token %q", r.Token)
	}
	if storedToken(t) != "hvs.fake" {
		t.Fatalf("stored %q", storedToken(t))
	}
	for key, want := range map[string]string{"token": "hvs.fake", "token_accessor": "acc1", "token_duration": "45m", "token_renewable": "true",
		"token_policies": `["default"]`, "identity_policies": `["dev"]`, "policies": `["default" "dev"]`, "token_meta_mount": "m", "token_meta_role": "r1"} {
		if got := rowValue(out, key); got != want {
			t.Fatalf("%s = %q, want %q:\n%s", key, got, want, out)
		}
	}
	if strings.Index(out, "token_meta_mount") > strings.Index(out, "token_meta_role") {
		t.Fatalf("token_meta_* rows unsorted:\n%s", out)
	}

	// userpass: password=- reads stdin; -no-store keeps the file as it was.
	os.Remove(filepath.Join(os.Getenv("HOME"), api.TokenFile))
	if code, _, errOut := arca(t, "s3cret\n", "login", "-method=userpass", "-no-store", "username=bob", "password=-"); code != 0 {
		t.Fatalf("userpass password=-: exit %d %s", code, errOut)
	}
	assertBody(t, f.last(t), "POST", "/v1/auth/userpass/login/bob", map[string]any{"password": "s3cret"})
	if storedToken(t) != "" {
		t.Fatal("-no-store stored the token")
	}
	// userpass without password=: the prompt reads stdin (not a terminal here).
	if code, _, errOut := arca(t, "typed\n", "login", "-method=userpass", "username=bob"); code != 0 || !strings.Contains(errOut, "Password (will be hidden)") {
		t.Fatalf("userpass prompt: exit %d %q", code, errOut)
	}
	assertBody(t, f.last(t), "POST", "/v1/auth/userpass/login/bob", map[string]any{"password": "typed"})

	// approle: the default path, secret_id from stdin, flags after the pairs.
	code, out, errOut = arca(t, "sid-123\n", "login", "-method=approle", "role_id=rid-9", "secret_id=-", "-format=json")
	if code != 0 {
		t.Fatalf("approle: exit %d %s", code, errOut)
	}
	assertBody(t, f.last(t), "POST", "/v1/auth/approle/login", map[string]any{"role_id": "rid-9", "secret_id": "sid-123"})
	var s api.Secret
	if err := json.Unmarshal([]byte(out), &s); err != nil || s.Auth == nil || s.Auth.ClientToken != "hvs.fake" {
		t.Fatalf("approle -format=json output %q: %v", out, err)
	}

	// jwt: the token from a file, its newline trimmed; -token-only.
	code, out, errOut = arca(t, "", "login", "-method=jwt", "-path=github", "-token-only", "role=ci", "jwt=@"+jwtFile)
	if code != 0 || out != "hvs.fake\n" {
		t.Fatalf("jwt -token-only: exit %d %q %s", code, out, errOut)
	}
	assertBody(t, f.last(t), "POST", "/v1/auth/github/login", map[string]any{"jwt": "eyJhbGciOi.eyJzdWIi.c2ln", "role": "ci"})

	// -no-print prints nothing and stores the token.
	os.Remove(filepath.Join(os.Getenv("HOME"), api.TokenFile))
	if code, out, _ := arca(t, "", "login", "-method=approle", "-no-print", "role_id=x"); code != 0 || out != "" || storedToken(t) != "hvs.fake" {
		t.Fatalf("-no-print: exit %d %q, stored %q", code, out, storedToken(t))
	}
}

func TestLoginArgumentErrors(t *testing.T) {
	f := newFakeServer(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-method=approle", "secret_id=x"}, "role_id"},
		{[]string{"-method=jwt", "role=ci"}, "jwt"},
		{[]string{"-method=kerberos"}, "approle"},
		{[]string{"-method=approle", "role_id"}, "key=value"},
	} {
		code, _, errOut := arca(t, "", append([]string{"login"}, tc.args...)...)
		if code != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("login %v: exit %d, stderr %q; want exit 1 naming %q", tc.args, code, errOut, tc.want)
		}
	}
	if len(f.reqs) != 0 {
		t.Fatalf("bad arguments still sent %d requests", len(f.reqs))
	}
}

// TestLoginOIDCBrowserFlow plays the browser: it takes the redirect_uri the
// CLI registered with auth_url and calls it with the provider's state and
// code; the CLI exchanges them at the method's callback.
func TestLoginOIDCBrowserFlow(t *testing.T) {
	f := newFakeServer(t)
	redirects := make(chan string, 1)
	var nonce string
	f.handle = func(w http.ResponseWriter, r fakeRequest) bool {
		if r.Path != "/v1/auth/sso/oidc/auth_url" {
			return false
		}
		if r.Body["role"] != "dev" {
			t.Errorf("auth_url body %v", r.Body)
		}
		nonce, _ = r.Body["client_nonce"].(string)
		redirects <- r.Body["redirect_uri"].(string)
		w.Write([]byte(`{"data":{"auth_url":"https://idp.example/authorize?state=st-1"}}`))
		return true
	}
	browser := make(chan error, 1)
	go func() {
		uri := <-redirects
		u, err := url.Parse(uri)
		if err != nil || u.Path != "/oidc/callback" || u.Hostname() != "localhost" {
			browser <- err
			return
		}
		// localhost is where the provider sends the browser; the listener is on 127.0.0.1.
		resp, err := http.Get("http://127.0.0.1:" + u.Port() + "/oidc/callback?state=st-1&code=code-7")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != 200 {
				err = &url.Error{Op: "GET", URL: uri, Err: os.ErrInvalid}
			}
		}
		browser <- err
	}()
	code, out, errOut := arca(t, "", "login", "-method=oidc", "-path=sso", "role=dev", "port=0", "skip_browser=true")
	if code != 0 {
		t.Fatalf("oidc login: exit %d\n%s", code, errOut)
	}
	if err := <-browser; err != nil {
		t.Fatalf("the browser's callback: %v", err)
	}
	if !strings.Contains(errOut, "https://idp.example/authorize?state=st-1") {
		t.Fatalf("skip_browser did not print the URL:\n%s", errOut)
	}
	r := f.last(t)
	if r.Method != "GET" || r.Path != "/v1/auth/sso/oidc/callback" || r.Query.Get("state") != "st-1" || r.Query.Get("code") != "code-7" ||
		r.Query.Get("client_nonce") == "" || r.Query.Get("client_nonce") != nonce {
		t.Fatalf("callback request %+v (nonce %q)", r, nonce)
	}
	if storedToken(t) != "hvs.fake" || rowValue(out, "token") != "hvs.fake" {
		t.Fatalf("stored %q; output:\n%s", storedToken(t), out)
	}
}

func TestAuthTuneSendsLockoutConfig(t *testing.T) {
	f := newFakeServer(t)
	f.handle = func(w http.ResponseWriter, r fakeRequest) bool { w.WriteHeader(204); return true }
	mustRun(t, "auth", "tune", "-user-lockout-threshold=5", "-user-lockout-duration=10m", "-user-lockout-disable=false",
		"-token-type=batch", "-listing-visibility=unauth", "userpass/")
	assertBody(t, f.last(t), "POST", "/v1/sys/auth/userpass/tune", map[string]any{
		"listing_visibility": "unauth", "token_type": "batch",
		"user_lockout_config": map[string]any{"lockout_disable": false, "lockout_duration": "10m", "lockout_threshold": "5"},
	})
	mustRun(t, "auth", "enable", "-path=ci", "-description=pipelines", "-default-lease-ttl=20m", "-audit-non-hmac-request-keys=role", "jwt")
	assertBody(t, f.last(t), "POST", "/v1/sys/auth/ci", map[string]any{
		"config":      map[string]any{"audit_non_hmac_request_keys": []any{"role"}, "default_lease_ttl": "20m"},
		"description": "pipelines", "local": false, "seal_wrap": false, "type": "jwt",
	})
}

func TestCommandTableHelp(t *testing.T) {
	code, _, errOut := arca(t, "", "kv", "-help")
	if code != 0 || !strings.Contains(errOut, "metadata") || !strings.Contains(errOut, "rollback") {
		t.Fatalf("kv -help: exit %d\n%s", code, errOut)
	}
	code, _, errOut = arca(t, "", "secrets", "enable", "-help")
	if code != 0 || !strings.Contains(errOut, "Usage: arca secrets enable [flags] TYPE") || !strings.Contains(errOut, "-path=<string>") ||
		!strings.Contains(errOut, "-address=<string>") {
		t.Fatalf("secrets enable -help: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := arca(t, "", "help", "login"); code != 0 || !strings.Contains(errOut, "-method=<string>") {
		t.Fatalf("help login: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := arca(t, "", "token", "frob"); code != 1 || !strings.Contains(errOut, "capabilities, create, lookup, renew, revoke") {
		t.Fatalf("token frob: exit %d %q", code, errOut)
	}
	if code, _, errOut := arca(t, "", "kv", "metadata", "frob"); code != 1 || !strings.Contains(errOut, "delete, get, patch, put") {
		t.Fatalf("kv metadata frob: exit %d %q", code, errOut)
	}
	if code, _, errOut := arca(t, "", "lease"); code != 1 || !strings.Contains(errOut, "revoke") {
		t.Fatalf("lease without a subcommand: exit %d %q", code, errOut)
	}
}

// TestCommandTableIsConsistent: every subcommand hangs below a group that
// exists, no name path or flag is declared twice, and every command's
// -help works.
func TestCommandTableIsConsistent(t *testing.T) {
	seen := map[string]*command{}
	for _, c := range commandTable() {
		if seen[c.name()] != nil {
			t.Errorf("%q is declared twice", c.name())
		}
		seen[c.name()] = c
	}
	for name, c := range seen {
		if len(c.path) > 1 {
			parent := seen[strings.Join(c.path[:len(c.path)-1], " ")]
			if parent == nil || parent.run != nil || parent.raw != nil {
				t.Errorf("%q has no group above it", name)
			}
		}
		if c.run == nil && c.raw == nil && len(children(c.path)) == 0 {
			t.Errorf("group %q has no subcommands", name)
		}
		flags := map[string]bool{"address": true, "token": true, "format": true, "field": true, "ca-cert": true, "tls-skip-verify": true, "namespace": true}
		for _, f := range c.flags {
			for _, n := range append([]string{f.name}, f.aliases...) {
				if flags[n] {
					t.Errorf("%q declares -%s twice", name, n)
				}
				flags[n] = true
			}
		}
		if c.run != nil {
			if code, _, errOut := arca(t, "", append(append([]string{}, c.path...), "-help")...); code != 0 || !strings.Contains(errOut, "Usage: "+c.usageLine()) {
				t.Errorf("%s -help: exit %d\n%s", name, code, errOut)
			}
		}
	}
}

// TestLoginOIDCRefusals: a provider's error redirect and a role whose
// allowed_redirect_uris do not match each end the login with one line.
func TestLoginOIDCRefusals(t *testing.T) {
	f := newFakeServer(t)
	redirects := make(chan string, 1)
	f.handle = func(w http.ResponseWriter, r fakeRequest) bool {
		switch {
		case r.Path == "/v1/auth/oidc/oidc/auth_url" && r.Body["role"] == "nomatch":
			w.Write([]byte(`{"data":{"auth_url":""}}`))
		case r.Path == "/v1/auth/oidc/oidc/auth_url":
			redirects <- r.Body["redirect_uri"].(string)
			w.Write([]byte(`{"data":{"auth_url":"https://idp.example/authorize"}}`))
		default:
			t.Errorf("unexpected request %s %s", r.Method, r.Path)
			w.WriteHeader(500)
		}
		return true
	}
	code, _, errOut := arca(t, "", "login", "-method=oidc", "role=nomatch", "port=0", "skip_browser=true")
	if code != 2 || !strings.Contains(errOut, "allowed_redirect_uris") {
		t.Fatalf("no auth_url: exit %d\n%s", code, errOut)
	}
	go func() {
		u, _ := url.Parse(<-redirects)
		resp, err := http.Get("http://127.0.0.1:" + u.Port() + "/oidc/callback?error=access_denied&error_description=user+said+no")
		if err == nil {
			resp.Body.Close()
		}
	}()
	code, _, errOut = arca(t, "", "login", "-method=oidc", "role=dev", "port=0", "skip_browser=true")
	if code != 2 || !strings.Contains(errOut, "access_denied") || storedToken(t) != "" {
		t.Fatalf("provider refusal: exit %d, stored %q\n%s", code, storedToken(t), errOut)
	}
}
