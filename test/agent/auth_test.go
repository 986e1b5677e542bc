// Package agent_test drives the agent's parts against real in-process
// servers: auto-auth logins, sinks, renewal and re-authentication.
package agent_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/agent/auth"
	"github.com/arcasec/arca/internal/agent/config"
	"github.com/arcasec/arca/internal/server/servertest"
	"github.com/arcasec/arca/internal/testutil/oidctest"
)

// authWait bounds how long a test waits for the agent to act (a hang, not a
// speed check).
const authWait = 30 * time.Second

// setupAppRole mounts AppRole and creates role name; it returns the role ID.
func authAppRole(t *testing.T, c *vault.Client, name string, settings map[string]any) string {
	t.Helper()
	if err := c.Sys().EnableAuthWithOptions("approle", &vault.EnableAuthOptions{Type: "approle"}); err != nil && !strings.Contains(err.Error(), "in use") {
		t.Fatalf("enabling approle: %v", err)
	}
	if _, err := c.Logical().Write("auth/approle/role/"+name, settings); err != nil {
		t.Fatalf("creating role %s: %v", name, err)
	}
	s, err := c.Logical().Read("auth/approle/role/" + name + "/role-id")
	if err != nil || s == nil {
		t.Fatalf("reading role ID: %v", err)
	}
	return s.Data["role_id"].(string)
}

// run starts h in the background; tokens receives every token OnToken is
// given. Stopping is automatic at the end of the test, and Run must then
// return nil.
func runAuth(t *testing.T, h *auth.Handler) (tokens chan string, logs *lockedBuffer) {
	t.Helper()
	tokens = make(chan string, 16)
	logs = &lockedBuffer{}
	h.OnToken = func(tok string) { tokens <- tok }
	h.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if h.MinBackoff == 0 {
		h.MinBackoff = 50 * time.Millisecond
		h.MaxBackoff = 200 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v after cancel, want nil", err)
			}
		case <-time.After(authWait):
			t.Errorf("Run did not return after cancel")
		}
	})
	return tokens, logs
}

func authNextToken(t *testing.T, tokens chan string, logs *lockedBuffer) string {
	t.Helper()
	select {
	case tok := <-tokens:
		return tok
	case <-time.After(authWait):
		t.Fatalf("no token from auto-auth; logs:\n%s", logs)
		return ""
	}
}

func authMethod(t *testing.T, m *config.Method) auth.Method {
	t.Helper()
	am, err := auth.NewMethod(m)
	if err != nil {
		t.Fatalf("NewMethod: %v", err)
	}
	return am
}

func authSink(t *testing.T, s *config.Sink) auth.Sink {
	t.Helper()
	sk, err := auth.NewSink(s)
	if err != nil {
		t.Fatalf("NewSink: %v", err)
	}
	return sk
}

func authLookupSelf(t *testing.T, addr, token string) *vault.Secret {
	t.Helper()
	s, err := vaultClient(t, addr, token).Auth().Token().LookupSelf()
	if err != nil {
		t.Fatalf("the token does not work: %v", err)
	}
	return s
}

func authRevoke(t *testing.T, root *vault.Client, token string) {
	t.Helper()
	if err := root.Auth().Token().RevokeTree(token); err != nil {
		t.Fatalf("revoking: %v", err)
	}
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// AppRole from files: the secret ID file is removed after reading (Vault
// Agent's default) and the secret ID kept in memory, so when the token is
// revoked (its renewal fails) the agent logs in again without the file.
// The sink holds each token with mode 0600.
func TestAutoAuthAppRoleRemovesSecretIDFileAndReauthenticates(t *testing.T) {
	addr, rootTok := servertest.StartDev(t)
	root := vaultClient(t, addr, rootTok)
	roleID := authAppRole(t, root, "app", map[string]any{"token_ttl": "3s", "token_max_ttl": "1h"})
	s, err := root.Logical().Write("auth/approle/role/app/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "role-id"), roleID+"\n")
	writeFile(t, filepath.Join(dir, "secret-id"), s.Data["secret_id"].(string)+"\n")
	sinkPath := filepath.Join(dir, "token")

	c := apiClient(t, addr, "")
	h := &auth.Handler{
		Client: c,
		Method: authMethod(t, &config.Method{Type: "approle", Config: map[string]any{
			"role_id_file_path":   filepath.Join(dir, "role-id"),
			"secret_id_file_path": filepath.Join(dir, "secret-id"),
		}}),
		Sinks: []auth.Sink{authSink(t, &config.Sink{Type: "file", Path: sinkPath, Mode: 0o600})},
	}
	tokens, logs := runAuth(t, h)
	first := authNextToken(t, tokens, logs)
	if _, err := os.Stat(filepath.Join(dir, "secret-id")); !os.IsNotExist(err) {
		t.Fatalf("the secret ID file is still there after login (stat: %v)", err)
	}
	if got, _ := os.ReadFile(sinkPath); string(got) != first {
		t.Fatalf("the sink holds %q, want the token", got)
	}
	if m := fileMode(t, sinkPath); m != 0o600 {
		t.Fatalf("sink mode %v, want 0600", m)
	}
	if c.Token() != first {
		t.Fatalf("the agent's client does not carry the token")
	}
	authLookupSelf(t, addr, first)

	authRevoke(t, root, first)
	second := authNextToken(t, tokens, logs)
	if second == first {
		t.Fatal("re-authentication returned the revoked token")
	}
	authLookupSelf(t, addr, second)
	if got, _ := os.ReadFile(sinkPath); string(got) != second {
		t.Fatalf("the sink was not rewritten with the new token")
	}
	if !strings.Contains(logs.String(), "renewing the token failed") {
		t.Fatalf("the logs do not say the renewal failed:\n%s", logs)
	}
	if strings.Contains(logs.String(), first) || strings.Contains(logs.String(), second) || strings.Contains(logs.String(), s.Data["secret_id"].(string)) {
		t.Fatalf("the logs hold a credential:\n%s", logs)
	}
}

// A token is renewed while it can be: the agent keeps the same token over
// several TTLs, a periodic token as well as one under a distant max TTL.
func TestAutoAuthRenewsToken(t *testing.T) {
	for name, role := range map[string]map[string]any{
		"ttl":      {"token_ttl": "2s", "token_max_ttl": "1h"},
		"periodic": {"token_period": "2s"},
	} {
		t.Run(name, func(t *testing.T) {
			addr, rootTok := servertest.StartDev(t)
			root := vaultClient(t, addr, rootTok)
			dir := authAppRoleFiles(t, root, role)
			h := &auth.Handler{Client: apiClient(t, addr, ""), Method: authAppRoleMethod(t, dir)}
			tokens, logs := runAuth(t, h)
			tok := authNextToken(t, tokens, logs)
			// Wait for three renewals, then the token must still work: it
			// outlived its first TTL several times over.
			authWaitLog(t, logs, "renewed the token", 3)
			authLookupSelf(t, addr, tok)
			select {
			case <-tokens:
				t.Fatalf("a second login happened while the token could be renewed; logs:\n%s", logs)
			default:
			}
		})
	}
}

// When renewals stop extending the token (its max TTL is near), the agent
// logs in again and hands over a new token.
func TestAutoAuthReloginNearMaxTTL(t *testing.T) {
	addr, rootTok := servertest.StartDev(t)
	root := vaultClient(t, addr, rootTok)
	dir := authAppRoleFiles(t, root, map[string]any{"token_ttl": "3s", "token_max_ttl": "5s"})
	h := &auth.Handler{Client: apiClient(t, addr, ""), Method: authAppRoleMethod(t, dir)}
	tokens, logs := runAuth(t, h)
	first := authNextToken(t, tokens, logs)
	second := authNextToken(t, tokens, logs)
	if first == second {
		t.Fatal("the same token was handed over twice")
	}
	authLookupSelf(t, addr, second)
	authWaitLog(t, logs, "near its max TTL", 1)
}

// appRoleFiles creates role "app" with settings and writes its role ID and
// a secret ID to files in a new directory, which it returns.
func authAppRoleFiles(t *testing.T, root *vault.Client, settings map[string]any) string {
	t.Helper()
	roleID := authAppRole(t, root, "app", settings)
	s, err := root.Logical().Write("auth/approle/role/app/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "role-id"), roleID)
	writeFile(t, filepath.Join(dir, "secret-id"), s.Data["secret_id"].(string))
	return dir
}

func authAppRoleMethod(t *testing.T, dir string) auth.Method {
	return authMethod(t, &config.Method{Type: "approle", Config: map[string]any{
		"role_id_file_path": filepath.Join(dir, "role-id"), "secret_id_file_path": filepath.Join(dir, "secret-id"),
	}})
}

// waitLog waits until the logs hold what n times.
func authWaitLog(t *testing.T, logs *lockedBuffer, what string, n int) {
	t.Helper()
	deadline := time.Now().Add(authWait)
	for strings.Count(logs.String(), what) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the logs do not hold %q %d times:\n%s", what, n, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A secret ID delivered response-wrapped is unwrapped after its creation
// path is checked; one wrapped by another path is refused and left alone.
func TestAutoAuthAppRoleWrappedSecretID(t *testing.T) {
	addr, rootTok := servertest.StartDev(t)
	root := vaultClient(t, addr, rootTok)
	roleID := authAppRole(t, root, "app", map[string]any{"token_ttl": "1h"})
	wrapped := func() string {
		wc, err := root.Clone()
		if err != nil {
			t.Fatal(err)
		}
		wc.SetToken(rootTok)
		wc.SetWrappingLookupFunc(func(string, string) string { return "5m" })
		s, err := wc.Logical().Write("auth/approle/role/app/secret-id", nil)
		if err != nil || s.WrapInfo == nil {
			t.Fatalf("wrapping a secret ID: %v", err)
		}
		return s.WrapInfo.Token
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "role-id"), roleID)
	cfg := func(path string) *config.Method {
		return &config.Method{Type: "approle", Config: map[string]any{
			"role_id_file_path":                filepath.Join(dir, "role-id"),
			"secret_id_file_path":              filepath.Join(dir, "secret-id"),
			"secret_id_response_wrapping_path": path,
		}}
	}

	// Refused: the agent expects another creation path.
	wt := wrapped()
	writeFile(t, filepath.Join(dir, "secret-id"), wt)
	m := authMethod(t, cfg("auth/approle/role/other/secret-id"))
	_, err := m.Login(context.Background(), apiClient(t, addr, ""))
	if err == nil || !strings.Contains(err.Error(), "auth/approle/role/app/secret-id") || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("login with a secret ID wrapped elsewhere: %v, want a refusal naming the creation path", err)
	}
	if strings.Contains(err.Error(), wt) {
		t.Fatal("the error echoes the wrapping token")
	}
	if _, err := os.Stat(filepath.Join(dir, "secret-id")); err != nil {
		t.Fatalf("the refused secret ID file was removed: %v", err)
	}

	// Accepted: the right creation path.
	h := &auth.Handler{Client: apiClient(t, addr, ""), Method: authMethod(t, cfg("auth/approle/role/app/secret-id"))}
	tokens, logs := runAuth(t, h)
	tok := authNextToken(t, tokens, logs)
	if got := authLookupSelf(t, addr, tok).Data["meta"].(map[string]any)["role_name"]; got != "app" {
		t.Fatalf("token meta role_name %v, want app", got)
	}
	// The wrapping token is spent.
	if _, err := vaultClient(t, addr, rootTok).Logical().Unwrap(wt); err == nil {
		t.Fatal("the wrapping token still unwraps after the agent used it")
	}
}

// The JWT file is read again at each login: after the file is replaced
// and the token revoked, the new login is the new JWT's subject.
func TestAutoAuthJWTRereadsFile(t *testing.T) {
	key := oidctest.NewRSA(t, "k1")
	iss := oidctest.NewIssuer(t, key)
	addr, rootTok := servertest.StartDev(t)
	root := vaultClient(t, addr, rootTok)
	if err := root.Sys().EnableAuthWithOptions("jwt", &vault.EnableAuthOptions{Type: "jwt"}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().Write("auth/jwt/config", map[string]any{"jwks_url": iss.URL + "/keys", "bound_issuer": iss.URL}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().Write("auth/jwt/role/pod", map[string]any{
		"role_type": "jwt", "user_claim": "sub", "bound_audiences": "arca",
		"claim_mappings": map[string]any{"sub": "subject"}, "token_ttl": "3s", "token_max_ttl": "1h",
	}); err != nil {
		t.Fatal(err)
	}
	jwtFor := func(sub string) string {
		now := time.Now()
		return oidctest.Sign(t, key, map[string]any{"iss": iss.URL, "aud": "arca", "sub": sub,
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()})
	}
	dir := t.TempDir()
	jwtPath := filepath.Join(dir, "token")
	writeFile(t, jwtPath, jwtFor("pod-a"))
	h := &auth.Handler{Client: apiClient(t, addr, ""), Method: authMethod(t, &config.Method{Type: "jwt", Config: map[string]any{
		"path": jwtPath, "role": "pod", "remove_jwt_after_reading": false,
	}})}
	tokens, logs := runAuth(t, h)
	first := authNextToken(t, tokens, logs)
	subject := func(tok string) any { return authLookupSelf(t, addr, tok).Data["meta"].(map[string]any)["subject"] }
	if got := subject(first); got != "pod-a" {
		t.Fatalf("first login's subject %v, want pod-a", got)
	}
	if _, err := os.Stat(jwtPath); err != nil {
		t.Fatalf("the JWT file was removed with remove_jwt_after_reading = false: %v", err)
	}
	writeFile(t, jwtPath, jwtFor("pod-b"))
	authRevoke(t, root, first)
	second := authNextToken(t, tokens, logs)
	if got := subject(second); got != "pod-b" {
		t.Fatalf("login after the file rotated has subject %v, want pod-b", got)
	}
}

// By default (as in Vault Agent) the JWT file is removed after reading.
func TestAutoAuthJWTRemovedByDefault(t *testing.T) {
	dir := t.TempDir()
	jwtPath := filepath.Join(dir, "token")
	writeFile(t, jwtPath, "not-a-jwt")
	m := authMethod(t, &config.Method{Type: "jwt", Config: map[string]any{"path": jwtPath, "role": "pod"}})
	addr, _ := servertest.StartDev(t)
	m.Login(context.Background(), apiClient(t, addr, "")) // the server refuses it: no jwt mount
	if _, err := os.Stat(jwtPath); !os.IsNotExist(err) {
		t.Fatalf("the JWT file is still there (stat: %v)", err)
	}
}

// token_file: the token is used as is; a wrapping sink (mode 0640 by
// default) holds Vault Agent's wrap-info JSON, whose token unwraps to the
// agent's token.
func TestAutoAuthTokenFileAndWrappingSink(t *testing.T) {
	addr, rootTok := servertest.StartDev(t)
	root := vaultClient(t, addr, rootTok)
	ts, err := root.Auth().Token().Create(&vault.TokenCreateRequest{TTL: "1h", Policies: []string{"default"}})
	if err != nil {
		t.Fatal(err)
	}
	tok := ts.Auth.ClientToken
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "vault-token"), tok+"\n")
	plain, wrappedPath := filepath.Join(dir, "plain"), filepath.Join(dir, "wrapped")
	h := &auth.Handler{
		Client: apiClient(t, addr, ""),
		Method: authMethod(t, &config.Method{Type: "token_file", Config: map[string]any{"token_file_path": filepath.Join(dir, "vault-token")}}),
		Sinks: []auth.Sink{
			authSink(t, &config.Sink{Type: "file", Path: plain}),
			authSink(t, &config.Sink{Type: "file", Path: wrappedPath, WrapTTL: 5 * time.Minute, Mode: 0o640}),
		},
	}
	tokens, logs := runAuth(t, h)
	if got := authNextToken(t, tokens, logs); got != tok {
		t.Fatal("token_file did not hand over the file's token")
	}
	if got, _ := os.ReadFile(plain); string(got) != tok {
		t.Fatalf("the plain sink holds %q", got)
	}
	if m := fileMode(t, plain); m != 0o640 {
		t.Fatalf("default sink mode %v, want 0640", m)
	}
	if m := fileMode(t, wrappedPath); m != 0o640 {
		t.Fatalf("wrapping sink mode %v, want 0640", m)
	}
	raw, _ := os.ReadFile(wrappedPath)
	if strings.Contains(string(raw), tok) {
		t.Fatal("the wrapping sink holds the token in clear")
	}
	var wi map[string]any
	if err := json.Unmarshal(raw, &wi); err != nil {
		t.Fatalf("the wrapping sink is not JSON: %v", err)
	}
	for _, k := range []string{"token", "accessor", "ttl", "creation_time", "creation_path", "wrapped_accessor"} {
		if _, ok := wi[k]; !ok {
			t.Fatalf("wrap info lacks %q: %s", k, raw)
		}
	}
	if wi["creation_path"] != "sys/wrapping/wrap" || wi["ttl"] != float64(300) {
		t.Fatalf("wrap info %s, want creation_path sys/wrapping/wrap and ttl 300", raw)
	}
	un, err := vaultClient(t, addr, "").Logical().Unwrap(wi["token"].(string))
	if err != nil {
		t.Fatalf("unwrapping the sink's token: %v", err)
	}
	if un.Data["token"] != tok {
		t.Fatal("the wrapping token does not unwrap to the agent's token")
	}
	authLookupSelf(t, addr, un.Data["token"].(string))
}

// A method with wrap_ttl logs in wrapped: the sink gets the wrap info, the
// agent keeps no token and calls no OnToken.
func TestAutoAuthMethodWrapTTL(t *testing.T) {
	addr, rootTok := servertest.StartDev(t)
	root := vaultClient(t, addr, rootTok)
	roleID := authAppRole(t, root, "app", map[string]any{"token_ttl": "1h"})
	s, err := root.Logical().Write("auth/approle/role/app/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "role-id"), roleID)
	writeFile(t, filepath.Join(dir, "secret-id"), s.Data["secret_id"].(string))
	sinkPath := filepath.Join(dir, "sink")
	c := apiClient(t, addr, "")
	h := &auth.Handler{Client: c, Method: authMethod(t, &config.Method{Type: "approle", WrapTTL: time.Minute, Config: map[string]any{
		"role_id_file_path": filepath.Join(dir, "role-id"), "secret_id_file_path": filepath.Join(dir, "secret-id"),
	}}), Sinks: []auth.Sink{authSink(t, &config.Sink{Type: "file", Path: sinkPath})}}
	wrappedDone := make(chan struct{})
	h.OnWrapped = func() { close(wrappedDone) }
	tokens, logs := runAuth(t, h)
	select {
	case <-wrappedDone:
	case <-time.After(authWait):
		t.Fatalf("OnWrapped was not called; logs:\n%s", logs)
	}
	deadline := time.Now().Add(authWait)
	var raw []byte
	for len(raw) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the sink was never written; logs:\n%s", logs)
		}
		time.Sleep(50 * time.Millisecond)
		raw, _ = os.ReadFile(sinkPath)
	}
	var wi struct {
		Token        string `json:"token"`
		CreationPath string `json:"creation_path"`
	}
	if err := json.Unmarshal(raw, &wi); err != nil || wi.CreationPath != "auth/approle/login" {
		t.Fatalf("sink holds %s (%v), want wrap info from auth/approle/login", raw, err)
	}
	un, err := vaultClient(t, addr, "").Logical().Unwrap(wi.Token)
	if err != nil || un.Auth == nil {
		t.Fatalf("unwrapping the login: %v", err)
	}
	authLookupSelf(t, addr, un.Auth.ClientToken)
	if c.Token() != "" {
		t.Fatal("the agent's client carries a token though the login was wrapped")
	}
	select {
	case <-tokens:
		t.Fatal("OnToken was called for a wrapped login")
	default:
	}
}

// downGate forwards to a server once opened; until then it drops every
// connection, as a server that is down would.
type downGate struct {
	open atomic.Bool
	rp   *httputil.ReverseProxy
}

func (g *downGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !g.open.Load() {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	g.rp.ServeHTTP(w, r)
}

// With the server unreachable at start, logins are retried with backoff
// and the logs say so (without the credential); once it answers, the
// agent logs in.
func TestAutoAuthRetriesWhileServerDown(t *testing.T) {
	addr, rootTok := servertest.StartDev(t)
	root := vaultClient(t, addr, rootTok)
	ts, err := root.Auth().Token().Create(&vault.TokenCreateRequest{TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	tok := ts.Auth.ClientToken
	target, _ := url.Parse(addr)
	g := &downGate{rp: httputil.NewSingleHostReverseProxy(target)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: g, ErrorLog: nil}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "vault-token"), tok)
	h := &auth.Handler{
		Client: apiClient(t, "http://"+ln.Addr().String(), ""),
		Method: authMethod(t, &config.Method{Type: "token_file", Config: map[string]any{"token_file_path": filepath.Join(dir, "vault-token")}}),
	}
	tokens, logs := runAuth(t, h)
	authWaitLog(t, logs, "login failed; retrying", 3)
	select {
	case <-tokens:
		t.Fatal("a token was handed over while the server was down")
	default:
	}
	out := logs.String()
	if !strings.Contains(out, "backoff=") || !strings.Contains(out, "cannot reach the server") {
		t.Fatalf("the failure logs do not give the error and the backoff:\n%s", out)
	}
	if strings.Contains(out, tok) {
		t.Fatal("the logs hold the token")
	}
	g.open.Store(true)
	if got := authNextToken(t, tokens, logs); got != tok {
		t.Fatal("the token handed over is not the file's")
	}
}

// ExitOnError returns the first login error instead of retrying.
func TestAutoAuthExitOnError(t *testing.T) {
	addr, _ := servertest.StartDev(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "vault-token"), "not-a-token")
	h := &auth.Handler{
		Client:      apiClient(t, addr, ""),
		Method:      authMethod(t, &config.Method{Type: "token_file", Config: map[string]any{"token_file_path": filepath.Join(dir, "vault-token")}}),
		ExitOnError: true,
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	ctx, cancel := context.WithTimeout(context.Background(), authWait)
	defer cancel()
	err := h.Run(ctx)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("Run = %v, want the login error", err)
	}
	if strings.Contains(err.Error(), "not-a-token") {
		t.Fatal("the error echoes the token")
	}
}

// A sink that cannot be written does not stop auto-auth: the failure is
// logged, the token still handed over, and the write retried until it
// succeeds.
func TestAutoAuthSinkFailureRetried(t *testing.T) {
	addr, rootTok := servertest.StartDev(t)
	ts, err := vaultClient(t, addr, rootTok).Auth().Token().Create(&vault.TokenCreateRequest{TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	tok := ts.Auth.ClientToken
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "vault-token"), tok)
	sub := filepath.Join(dir, "run")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	sink := authSink(t, &config.Sink{Type: "file", Path: filepath.Join(sub, "token")})
	if err := os.Remove(sub); err != nil { // the directory goes away after start-up
		t.Fatal(err)
	}
	h := &auth.Handler{
		Client: apiClient(t, addr, ""),
		Method: authMethod(t, &config.Method{Type: "token_file", Config: map[string]any{"token_file_path": filepath.Join(dir, "vault-token")}}),
		Sinks:  []auth.Sink{sink},
	}
	tokens, logs := runAuth(t, h)
	if got := authNextToken(t, tokens, logs); got != tok {
		t.Fatal("the token was not handed over")
	}
	authWaitLog(t, logs, "writing a sink failed; retrying", 2)
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	authWaitLog(t, logs, "wrote the sink after retrying", 1)
	if got, _ := os.ReadFile(filepath.Join(sub, "token")); string(got) != tok {
		t.Fatalf("the sink holds %q after the retry", got)
	}
}
