package proxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arcasec/arca/api"
	"github.com/arcasec/arca/internal/agent/config"
)

// upstream stands in for the server: it records what reached it and
// answers token lookups about whichever token the request carried.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	seen []*http.Request
	body []string
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.seen = append(u.seen, r.Clone(context.Background()))
		u.body = append(u.body, string(b))
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v1/auth/token/lookup-self":
			tok := r.Header.Get("X-Vault-Token")
			json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"id": tok, "accessor": "acc-" + tok, "ttl": 3600, "policies": []string{"app"}}})
		case "/v1/auth/token/renew-self":
			tok := r.Header.Get("X-Vault-Token")
			json.NewEncoder(w).Encode(map[string]any{"auth": map[string]any{"client_token": tok, "accessor": "acc-" + tok, "lease_duration": 3600}})
		case "/v1/auth/token/lookup":
			var in struct{ Token string }
			json.Unmarshal(b, &in)
			json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"id": in.Token, "accessor": "acc-" + in.Token}})
		default:
			w.Header().Set("X-Upstream", "yes")
			w.WriteHeader(http.StatusTeapot)
			io.WriteString(w, `{"data":{"ok":true}}`)
		}
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) last(t *testing.T) (*http.Request, string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.seen) == 0 {
		t.Fatal("nothing reached the server")
	}
	return u.seen[len(u.seen)-1], u.body[len(u.body)-1]
}

func agentClient(t *testing.T, addr, token string) *api.Client {
	c, err := api.NewClient(api.Config{Address: addr, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func startProxy(t *testing.T, opts Options) string {
	s := httptest.NewServer(Handler(opts))
	t.Cleanup(s.Close)
	return s.URL
}

func do(t *testing.T, method, url, token, body string, hdr map[string]string) (*http.Response, string) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestTokenInjection(t *testing.T) {
	up := newUpstream(t)
	cases := []struct {
		mode, own, want string
	}{
		{"true", "", "agent-token"},           // added when the request has none
		{"true", "app-token", "app-token"},    // kept when it has its own
		{"force", "app-token", "agent-token"}, // replaced
		{"force", "", "agent-token"},
		{"false", "", ""}, // never added
		{"false", "app-token", "app-token"},
	}
	for _, tc := range cases {
		url := startProxy(t, Options{Client: agentClient(t, up.URL, "agent-token"), UseAutoAuthToken: tc.mode})
		do(t, "GET", url+"/v1/secret/data/app", tc.own, "", nil)
		got, _ := up.last(t)
		if tok := got.Header.Get("X-Vault-Token"); tok != tc.want {
			t.Errorf("mode %s, request token %q: the server got %q, want %q", tc.mode, tc.own, tok, tc.want)
		}
	}
}

// TestTokenReadAtRequestTime: a token the agent gets later (renewal,
// re-login) is the one the next request carries.
func TestTokenReadAtRequestTime(t *testing.T) {
	up := newUpstream(t)
	c := agentClient(t, up.URL, "first")
	url := startProxy(t, Options{Client: c, UseAutoAuthToken: "true"})
	do(t, "GET", url+"/v1/sys/health", "", "", nil)
	if got, _ := up.last(t); got.Header.Get("X-Vault-Token") != "first" {
		t.Fatalf("token %q", got.Header.Get("X-Vault-Token"))
	}
	c.SetToken("second")
	do(t, "GET", url+"/v1/sys/health", "", "", nil)
	if got, _ := up.last(t); got.Header.Get("X-Vault-Token") != "second" {
		t.Fatalf("token %q after SetToken", got.Header.Get("X-Vault-Token"))
	}
}

// TestForwardsEverythingElse: method, path, query, body and headers reach the
// server as sent; the server's status, headers and body come back as sent.
func TestForwardsEverythingElse(t *testing.T) {
	up := newUpstream(t)
	url := startProxy(t, Options{Client: agentClient(t, up.URL, "agent-token"), UseAutoAuthToken: "true"})
	resp, body := do(t, "POST", url+"/v1/secret/data/app?version=3", "", `{"data":{"k":"v"}}`,
		map[string]string{"X-Vault-Request": "true", "X-Vault-Wrap-TTL": "5m", "X-Forwarded-For": "10.1.2.3", "Content-Type": "application/json"})
	got, gotBody := up.last(t)
	if got.Method != "POST" || got.URL.Path != "/v1/secret/data/app" || got.URL.RawQuery != "version=3" || gotBody != `{"data":{"k":"v"}}` {
		t.Errorf("server got %s %s?%s %q", got.Method, got.URL.Path, got.URL.RawQuery, gotBody)
	}
	for k, v := range map[string]string{"X-Vault-Request": "true", "X-Vault-Wrap-Ttl": "5m", "X-Forwarded-For": "10.1.2.3", "Content-Type": "application/json"} {
		if got.Header.Get(k) != v {
			t.Errorf("header %s = %q, want %q", k, got.Header.Get(k), v)
		}
	}
	if resp.StatusCode != http.StatusTeapot || resp.Header.Get("X-Upstream") != "yes" || body != `{"data":{"ok":true}}` {
		t.Errorf("client got %d %v %q", resp.StatusCode, resp.Header, body)
	}
}

// TestAgentTokenNotEchoed: looking up or renewing the agent's own token
// through the proxy does not reveal it; another token's lookup is untouched.
func TestAgentTokenNotEchoed(t *testing.T) {
	up := newUpstream(t)
	url := startProxy(t, Options{Client: agentClient(t, up.URL, "agent-secret-token"), UseAutoAuthToken: "true"})
	for _, tc := range []struct {
		method, path, token, body string
		leak                      bool
	}{
		{"GET", "/v1/auth/token/lookup-self", "", "", false},
		{"POST", "/v1/auth/token/renew-self", "", "{}", false},
		{"POST", "/v1/auth/token/lookup", "", `{"token":"agent-secret-token"}`, false},
		{"GET", "/v1/auth/token/lookup-self", "app-own-token", "", true},
	} {
		resp, body := do(t, tc.method, url+tc.path, tc.token, tc.body, map[string]string{"Accept-Encoding": "gzip"})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d %s", tc.path, resp.StatusCode, body)
		}
		if strings.Contains(body, "agent-secret-token") {
			t.Errorf("%s: the agent's token came back: %s", tc.path, body)
		}
		if tc.leak && !strings.Contains(body, "app-own-token") {
			t.Errorf("%s with the app's own token: its lookup lost its ID: %s", tc.path, body)
		}
		if !tc.leak && !strings.Contains(body, "3600") && tc.path != "/v1/auth/token/lookup" {
			t.Errorf("%s: the rest of the answer was lost: %s", tc.path, body)
		}
	}
}

func TestRequireRequestHeader(t *testing.T) {
	up := newUpstream(t)
	url := startProxy(t, Options{Client: agentClient(t, up.URL, "agent-token"), UseAutoAuthToken: "true", RequireRequestHeader: true})
	resp, body := do(t, "GET", url+"/v1/sys/health", "", "", nil)
	if resp.StatusCode != http.StatusPreconditionFailed || !strings.Contains(body, "X-Vault-Request") {
		t.Errorf("without the header: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, "GET", url+"/v1/sys/health", "", "", map[string]string{"X-Vault-Request": "true"}); resp.StatusCode != http.StatusTeapot {
		t.Errorf("with the header: %d", resp.StatusCode)
	}
}

func TestServerUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + ln.Addr().String()
	ln.Close()
	url := startProxy(t, Options{Client: agentClient(t, addr, "agent-token"), UseAutoAuthToken: "true"})
	resp, body := do(t, "GET", url+"/v1/sys/health", "", "", nil)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, `"errors"`) || strings.Contains(body, "agent-token") {
		t.Errorf("%d %s", resp.StatusCode, body)
	}
}

func serve(t *testing.T, ln net.Listener, h http.Handler) {
	s := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
}

func TestUnixSocket(t *testing.T) {
	up := newUpstream(t)
	dir, err := os.MkdirTemp("", "arca-proxy") // short: socket paths are limited to ~100 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "agent.sock")

	// A stale socket from an earlier run is replaced.
	stale, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()

	ln, err := Listen(&config.Listener{Type: "unix", Address: sock, TLSDisable: true, SocketMode: 0o660})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, ln, Handler(Options{Client: agentClient(t, up.URL, "agent-token"), UseAutoAuthToken: "true"}))
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode %v, %v", fi.Mode(), err)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := hc.Get("http://agent/v1/sys/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, _ := up.last(t); resp.StatusCode != http.StatusTeapot || got.Header.Get("X-Vault-Token") != "agent-token" {
		t.Fatalf("status %d, token %q", resp.StatusCode, got.Header.Get("X-Vault-Token"))
	}

	// A live socket is not taken over, and a file that is not a socket is
	// not removed.
	if _, err := Listen(&config.Listener{Type: "unix", Address: sock, TLSDisable: true}); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Errorf("second listener on a live socket: %v", err)
	}
	plain := filepath.Join(dir, "data.txt")
	os.WriteFile(plain, []byte("keep me"), 0o600)
	if _, err := Listen(&config.Listener{Type: "unix", Address: plain, TLSDisable: true}); err == nil {
		t.Error("listened over a regular file")
	}
	if b, _ := os.ReadFile(plain); string(b) != "keep me" {
		t.Error("the regular file was removed")
	}
}

func TestTLSListener(t *testing.T) {
	up := newUpstream(t)
	certFile, keyFile, pool := selfSigned(t)
	ln, err := Listen(&config.Listener{Type: "tcp", Address: "127.0.0.1:0", TLSCertFile: certFile, TLSKeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, ln, Handler(Options{Client: agentClient(t, up.URL, "agent-token"), UseAutoAuthToken: "force"}))
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get("https://" + ln.Addr().String() + "/v1/sys/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, _ := up.last(t); resp.StatusCode != http.StatusTeapot || got.Header.Get("X-Vault-Token") != "agent-token" {
		t.Fatalf("status %d, token %q", resp.StatusCode, got.Header.Get("X-Vault-Token"))
	}
	// Plain HTTP is not served on a TLS listener.
	if resp, err := http.Get("http://" + ln.Addr().String() + "/v1/sys/health"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP on the TLS listener: %d", resp.StatusCode)
		}
	}

	// Without a certificate and without tls_disable, nothing is opened.
	if _, err := Listen(&config.Listener{Type: "tcp", Address: "127.0.0.1:0"}); err == nil {
		t.Error("a TLS listener without a certificate opened")
	}
}

func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "agent"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestAgentAPIAnsweredLocally: the /agent/v1/ paths are Vault Agent's own
// API. They are answered by the proxy and never forwarded to the server
// (where the agent's token would be spent on a path that does not exist):
// quit is 404 unless enabled, then POST-only and it stops the agent;
// cache-clear succeeds (there is no cache to clear).
func TestAgentAPIAnsweredLocally(t *testing.T) {
	up := newUpstream(t)
	url := startProxy(t, Options{Client: agentClient(t, up.URL, "agent-token"), UseAutoAuthToken: "true"})
	if resp, body := do(t, "POST", url+"/agent/v1/quit", "", "", nil); resp.StatusCode != http.StatusNotFound || strings.TrimSpace(body) != `{"errors":[]}` {
		t.Errorf("quit, not enabled: %d %q, want 404 {\"errors\":[]}", resp.StatusCode, body)
	}
	if resp, _ := do(t, "POST", url+"/agent/v1/cache-clear", "", `{"type":"all"}`, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("cache-clear: %d, want 200", resp.StatusCode)
	}
	if resp, _ := do(t, "GET", url+"/agent/v1/cache-clear", "", "", nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET cache-clear: %d, want 405", resp.StatusCode)
	}
	if resp, _ := do(t, "GET", url+"/agent/v1/nothing", "", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown agent path: %d, want 404", resp.StatusCode)
	}
	up.mu.Lock()
	n := len(up.seen)
	up.mu.Unlock()
	if n != 0 {
		t.Errorf("%d agent API requests reached the server", n)
	}

	quit := make(chan struct{}, 1)
	url = startProxy(t, Options{Client: agentClient(t, up.URL, "agent-token"), Quit: func() { quit <- struct{}{} }})
	if resp, _ := do(t, "GET", url+"/agent/v1/quit", "", "", nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET quit: %d, want 405", resp.StatusCode)
	}
	if len(quit) != 0 {
		t.Fatal("a GET stopped the agent")
	}
	if resp, _ := do(t, "POST", url+"/agent/v1/quit", "", "", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("POST quit: %d, want 200", resp.StatusCode)
	}
	if len(quit) != 1 {
		t.Error("POST /agent/v1/quit did not call Quit")
	}
}
