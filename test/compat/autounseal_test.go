package compat

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/seal/transit"
	"github.com/arcasec/arca/internal/server"
	"github.com/arcasec/arca/internal/server/servertest"
)

const sealKeyName = "arca-autounseal"

// startKeyService starts the Arca that holds the transit key protecting
// another server's root key, and returns its address and a periodic token
// that may only encrypt and decrypt with that key. The test
// is skipped only when that server answers that it has no transit engine.
func startKeyService(t *testing.T) (addr, token string) {
	t.Helper()
	addr, token = servertest.StartDev(t)
	c := newClient(t, addr, token)
	if err := c.Sys().Mount("transit", &vault.MountInput{Type: "transit"}); err != nil {
		if statusOf(err) == http.StatusBadRequest && strings.Contains(err.Error(), "plugin not found in the catalog") {
			t.Skipf("the key server has no transit engine yet: %v", err)
		}
		t.Fatalf("mounting transit on the key server: %v", err)
	}
	if _, err := c.Logical().Write("transit/keys/"+sealKeyName, nil); err != nil {
		t.Fatalf("creating the seal key: %v", err)
	}
	// The seal needs nothing but encrypt and decrypt with its key.
	policy := `path "transit/encrypt/` + sealKeyName + `" { capabilities = ["update"] }
path "transit/decrypt/` + sealKeyName + `" { capabilities = ["update"] }`
	if err := c.Sys().PutPolicy("autounseal", policy); err != nil {
		t.Fatalf("writing the seal's policy: %v", err)
	}
	sec, err := c.Auth().Token().CreateOrphan(&vault.TokenCreateRequest{Policies: []string{"autounseal"}, Period: "1h"})
	if err != nil {
		t.Fatalf("creating the seal's token: %v", err)
	}
	return addr, sec.Auth.ClientToken
}

// switchableProxy stands between a server and its key service; when down,
// it drops every connection, as an unreachable service would.
type switchableProxy struct {
	URL          string
	down         atomic.Bool
	refusedWhile atomic.Int64 // decrypt requests dropped while down
}

func newSwitchableProxy(t *testing.T, target string) *switchableProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &switchableProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.down.Load() {
			if strings.Contains(r.URL.Path, "/decrypt/") {
				p.refusedWhile.Add(1)
			}
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				conn.(*net.TCPConn).SetLinger(0)
				conn.Close()
			}
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// sealedStore is a server configuration on a bolt file that outlives the
// servers started on it, so a test can restart them.
type sealedStore struct {
	path string
}

func newSealedStore(t *testing.T) *sealedStore {
	return &sealedStore{path: filepath.Join(t.TempDir(), "arca.db")}
}

func (s *sealedStore) config(seal *transit.Config) *server.Config {
	return &server.Config{Storage: server.StorageConfig{Type: "bolt", Options: map[string]string{"path": s.path}}, Seal: seal}
}

func transitSeal(addr, token string) *transit.Config {
	return &transit.Config{Address: addr, Token: token, KeyName: sealKeyName}
}

// waitUnsealed polls seal-status until the server reports unsealed.
func waitUnsealed(t *testing.T, c *vault.Client) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		st, err := c.Sys().SealStatus()
		if err == nil && !st.Sealed {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not unseal itself: %+v, %v", st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// restart shuts srv down and starts a server on the same store with seal,
// logging to log when it is not nil.
func restart(t *testing.T, srv *server.Server, store *sealedStore, seal *transit.Config, log ...io.Writer) (*server.Server, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutting down: %v", err)
	}
	var w io.Writer
	if len(log) > 0 {
		w = log[0]
	}
	return servertest.StartConfig(t, store.config(seal), w)
}

func writeSecrets(t *testing.T, c *vault.Client, n int) map[string]string {
	t.Helper()
	if err := c.Sys().Mount("secret", &vault.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatalf("mounting kv: %v", err)
	}
	want := map[string]string{}
	for i := range n {
		p, v := "app/"+string(rune('a'+i)), "value-"+string(rune('a'+i))
		if _, err := c.KVv2("secret").Put(context.Background(), p, map[string]any{"v": v}); err != nil {
			t.Fatalf("put %s: %v", p, err)
		}
		want[p] = v
	}
	return want
}

func checkSecrets(t *testing.T, c *vault.Client, want map[string]string) {
	t.Helper()
	for p, v := range want {
		s, err := c.KVv2("secret").Get(context.Background(), p)
		if err != nil {
			t.Fatalf("get %s: %v", p, err)
		}
		if s.Data["v"] != v {
			t.Fatalf("%s = %v, want %s", p, s.Data["v"], v)
		}
	}
}

// generateRoot runs sys/generate-root with keys and returns the new token.
func generateRoot(t *testing.T, c *vault.Client, keys []string) string {
	t.Helper()
	st, err := c.Sys().GenerateRootInit("", "")
	if err != nil {
		t.Fatalf("generate-root init: %v", err)
	}
	otp := st.OTP
	for _, k := range keys {
		if st, err = c.Sys().GenerateRootUpdate(k, st.Nonce); err != nil {
			t.Fatalf("generate-root update: %v", err)
		}
	}
	if !st.Complete {
		t.Fatalf("generate-root incomplete after %d keys: %+v", len(keys), st)
	}
	return decodeRootToken(t, st.EncodedToken, otp)
}

func TestTransitSealUnsealsItself(t *testing.T) {
	keyAddr, keyToken := startKeyService(t)
	store := newSealedStore(t)
	seal := transitSeal(keyAddr, keyToken)
	srv, addr := servertest.StartConfig(t, store.config(seal), nil)
	c := newClient(t, addr, "")

	st, err := c.Sys().SealStatus()
	if err != nil || st.Type != "transit" || !st.RecoverySeal || st.Initialized {
		t.Fatalf("seal-status before init = %+v, %v", st, err)
	}
	if _, err := c.Sys().Init(&vault.InitRequest{SecretShares: 5, SecretThreshold: 3}); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("init with secret_shares on a transit seal: %v, want 400", err)
	}
	if _, err := c.Sys().Init(&vault.InitRequest{RecoveryShares: 3, RecoveryThreshold: 4}); statusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "recovery_threshold") {
		t.Fatalf("init with a threshold above the shares: %v, want a 400 naming recovery_threshold", err)
	}
	res, err := c.Sys().Init(&vault.InitRequest{RecoveryShares: 5, RecoveryThreshold: 3})
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	if len(res.Keys) != 0 || len(res.RecoveryKeys) != 5 || len(res.RecoveryKeysB64) != 5 {
		t.Fatalf("init gave %d unseal keys and %d recovery keys, want 0 and 5", len(res.Keys), len(res.RecoveryKeys))
	}
	st, err = c.Sys().SealStatus()
	if err != nil || st.Sealed || st.Type != "transit" || !st.RecoverySeal || st.T != 3 || st.N != 5 {
		t.Fatalf("seal-status after init = %+v, %v", st, err)
	}
	c.SetToken(res.RootToken)
	want := writeSecrets(t, c, 3)

	srv, addr = restart(t, srv, store, seal)
	c = newClient(t, addr, res.RootToken)
	waitUnsealed(t, c)
	checkSecrets(t, c, want)

	// Recovery keys authorise a new root token.
	token := generateRoot(t, newClient(t, addr, ""), res.RecoveryKeysB64[1:4])
	checkSecrets(t, newClient(t, addr, token), want)

	// Sealed by an operator, it stays sealed until a quorum of recovery
	// keys lets the seal open it again; another server's keys do not.
	if err := c.Sys().Seal(); err != nil {
		t.Fatalf("seal: %v", err)
	}
	_, other := initUnsealed(t, servertest.StartSealed(t))
	for i, k := range other[:3] {
		if _, err := c.Sys().Unseal(k); (i < 2) != (err == nil) {
			t.Fatalf("unseal with another server's key %d: %v", i, err)
		}
	}
	if st, err := c.Sys().SealStatus(); err != nil || !st.Sealed {
		t.Fatalf("after a wrong quorum: %+v, %v", st, err)
	}
	for _, k := range res.RecoveryKeysB64[2:5] {
		if _, err := c.Sys().Unseal(k); err != nil {
			t.Fatalf("unseal with a recovery key: %v", err)
		}
	}
	checkSecrets(t, c, want)
	_ = srv
}

func TestTransitSealWaitsForKeyService(t *testing.T) {
	keyAddr, keyToken := startKeyService(t)
	proxy := newSwitchableProxy(t, keyAddr)
	store := newSealedStore(t)
	seal := transitSeal(proxy.URL, keyToken)
	srv, addr := servertest.StartConfig(t, store.config(seal), nil)
	// Init needs the key service: without it, a 503 and nothing stored.
	proxy.down.Store(true)
	if _, err := newClient(t, addr, "").Sys().Init(&vault.InitRequest{RecoveryShares: 1, RecoveryThreshold: 1}); statusOf(err) != http.StatusServiceUnavailable {
		t.Fatalf("init with the key service down: %v, want 503", err)
	}
	if st, err := newClient(t, addr, "").Sys().SealStatus(); err != nil || st.Initialized {
		t.Fatalf("after a failed init: %+v, %v", st, err)
	}
	proxy.down.Store(false)
	res, err := newClient(t, addr, "").Sys().Init(&vault.InitRequest{RecoveryShares: 1, RecoveryThreshold: 1})
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	want := writeSecrets(t, newClient(t, addr, res.RootToken), 2)

	proxy.refusedWhile.Store(0)
	proxy.down.Store(true)
	var logs lockedBuffer
	srv, addr = restart(t, srv, store, seal, &logs)
	c := newClient(t, addr, res.RootToken)
	// Two refused attempts show it retries; it stays sealed meanwhile.
	deadline := time.Now().Add(90 * time.Second)
	for proxy.refusedWhile.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the server did not retry unsealing while the key service was down")
		}
		time.Sleep(20 * time.Millisecond)
	}
	st, err := c.Sys().SealStatus()
	if err != nil || !st.Sealed || !st.Initialized {
		t.Fatalf("seal-status with the key service down = %+v, %v", st, err)
	}
	if _, err := c.KVv2("secret").Get(context.Background(), "app/a"); statusOf(err) != http.StatusServiceUnavailable {
		t.Fatalf("read while sealed: %v, want 503", err)
	}
	proxy.down.Store(false)
	waitUnsealed(t, c)
	checkSecrets(t, c, want)
	// Each failure was logged, and no log line carries a secret.
	out := logs.String()
	if !strings.Contains(out, "retrying") || !strings.Contains(out, "unsealed by the transit seal") {
		t.Fatalf("the log does not tell of the retries and the unseal:\n%s", out)
	}
	for _, secret := range append([]string{keyToken, res.RootToken}, res.RecoveryKeysB64...) {
		if strings.Contains(out, secret) {
			t.Fatalf("the log carries a secret:\n%s", out)
		}
	}
	_ = srv
}

func TestSealMigrationShamirToTransitAndBack(t *testing.T) {
	keyAddr, keyToken := startKeyService(t)
	store := newSealedStore(t)
	seal := transitSeal(keyAddr, keyToken)

	srv, addr := servertest.StartConfig(t, store.config(nil), nil)
	c, keys := initUnsealed(t, addr)
	root := c.Token()
	want := writeSecrets(t, c, 4)

	// Shamir → transit: the unseal keys, with migrate, move the store.
	srv, addr = restart(t, srv, store, seal)
	c = newClient(t, addr, root)
	st, err := c.Sys().SealStatus()
	if err != nil || !st.Sealed || !st.Migration || st.T != 3 {
		t.Fatalf("seal-status with a migration pending = %+v, %v", st, err)
	}
	if _, err := c.Sys().Unseal(keys[0]); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("unseal without migrate while a migration is pending: %v, want 400", err)
	}
	for _, k := range keys[:3] {
		if st, err = c.Sys().UnsealWithOptions(&vault.UnsealOpts{Key: k, Migrate: true}); err != nil {
			t.Fatalf("unseal -migrate: %v", err)
		}
	}
	if st.Sealed || st.Type != "transit" || !st.RecoverySeal {
		t.Fatalf("after migrating to transit: %+v", st)
	}
	checkSecrets(t, c, want)

	// It now unseals itself, and the old unseal keys are recovery keys.
	srv, addr = restart(t, srv, store, seal)
	c = newClient(t, addr, root)
	waitUnsealed(t, c)
	checkSecrets(t, c, want)
	checkSecrets(t, newClient(t, addr, generateRoot(t, newClient(t, addr, ""), keys[2:5])), want)

	// transit → Shamir: the seal is disabled, the recovery keys migrate it.
	disabled := *seal
	disabled.Disabled = true
	srv, addr = restart(t, srv, store, &disabled)
	c = newClient(t, addr, root)
	if st, err = c.Sys().SealStatus(); err != nil || !st.Sealed || !st.Migration {
		t.Fatalf("seal-status with the transit seal disabled = %+v, %v", st, err)
	}
	for _, k := range keys[1:4] {
		if st, err = c.Sys().UnsealWithOptions(&vault.UnsealOpts{Key: k, Migrate: true}); err != nil {
			t.Fatalf("unseal -migrate back to Shamir: %v", err)
		}
	}
	if st.Sealed || st.Type != "shamir" || st.RecoverySeal {
		t.Fatalf("after migrating to Shamir: %+v", st)
	}
	checkSecrets(t, c, want)

	// Without the seal stanza, the same keys unseal it the ordinary way.
	srv, addr = restart(t, srv, store, nil)
	c = newClient(t, addr, root)
	for _, k := range keys[2:5] {
		if _, err := c.Sys().Unseal(k); err != nil {
			t.Fatalf("unseal: %v", err)
		}
	}
	checkSecrets(t, c, want)
	_ = srv
}
