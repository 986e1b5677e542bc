package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/arcasec/arca/internal/testutil/arcaproc"

	vault "github.com/hashicorp/vault/api"
)

func TestMain(m *testing.M) {
	code := m.Run()
	arcaproc.Cleanup()
	os.Exit(code)
}

// arcaBinary is the arca binary, built once per test run.
func arcaBinary(t *testing.T) string {
	t.Helper()
	bin, err := arcaproc.Binary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// boltServer is an arca server process on a bolt file.
type boltServer struct {
	cmd    *exec.Cmd
	addr   string
	stderr *bytes.Buffer
}

// startBoltServer starts the binary on a bolt file in dir; extraConfig is
// appended to its configuration file.
func startBoltServer(t *testing.T, dir string, extraConfig ...string) *boltServer {
	t.Helper()
	return startServer(t, dir, fmt.Sprintf(`storage "bolt" { path = %q }`, filepath.Join(dir, "arca.db")), extraConfig...)
}

// startServer starts the binary with the given storage stanza, writing its
// configuration file in dir.
func startServer(t *testing.T, dir, storageStanza string, extraConfig ...string) *boltServer {
	t.Helper()
	addr := freeAddr(t)
	conf := filepath.Join(dir, "server.hcl")
	hcl := storageStanza + fmt.Sprintf(`
disable_mlock = true # tests may run without CAP_IPC_LOCK
listener "tcp" {
  address     = %q
  tls_disable = true
}
`, addr) + strings.Join(extraConfig, "\n")
	if err := os.WriteFile(conf, []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(arcaBinary(t), "server", "-config="+conf)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &boltServer{cmd: cmd, addr: "http://" + addr, stderr: &stderr}
	t.Cleanup(func() { s.kill() })
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.addr + "/v1/sys/seal-status")
		if err == nil {
			resp.Body.Close()
			return s
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("server did not start: %s", stderr.String())
	return nil
}

func (s *boltServer) kill() {
	if s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGKILL)
		s.cmd.Wait()
	}
}

func (s *boltServer) stop(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("server did not stop on SIGTERM: %s", s.stderr.String())
	}
}

func client(t *testing.T, addr, token string) *vault.Client {
	t.Helper()
	conf := vault.DefaultConfig()
	conf.Address = addr
	conf.MaxRetries = 0
	c, err := vault.NewClient(conf)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
}

// initServer initialises and unseals a fresh server, switches c to the
// root token and mounts KV v2 at secret/.
func initServer(t *testing.T, c *vault.Client, shares, threshold int) *vault.InitResponse {
	t.Helper()
	init, err := c.Sys().Init(&vault.InitRequest{SecretShares: shares, SecretThreshold: threshold})
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(init.RootToken)
	unseal(t, c, init.Keys)
	if err := c.Sys().Mount("secret", &vault.MountInput{Type: "kv-v2"}); err != nil {
		t.Fatal(err)
	}
	return init
}

func unseal(t *testing.T, c *vault.Client, keys []string) {
	t.Helper()
	for _, k := range keys {
		st, err := c.Sys().Unseal(k)
		if err != nil {
			t.Fatalf("unseal: %v", err)
		}
		if !st.Sealed {
			return
		}
	}
	t.Fatal("still sealed after every key")
}

// TestBoltEncryptedAtRestAndRestart writes secrets with a marker, stops the
// server, checks the raw database file holds neither the marker nor any key
// material, then restarts: the server is sealed, and unsealing restores
// everything.
func TestBoltEncryptedAtRestAndRestart(t *testing.T) {
	dir := t.TempDir()
	srv := startBoltServer(t, dir)
	c := client(t, srv.addr, "")
	init := initServer(t, c, 3, 2)
	const marker = "MARKER-7f3a9c-plaintext-must-not-appear"
	for i := 0; i < 20; i++ {
		_, err := c.KVv2("secret").Put(context.Background(), fmt.Sprintf("app/%d", i), map[string]any{"value": marker, "n": i})
		if err != nil {
			t.Fatal(err)
		}
	}
	tok, err := c.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"default"}})
	if err != nil {
		t.Fatal(err)
	}
	srv.stop(t)

	raw, err := os.ReadFile(filepath.Join(dir, "arca.db"))
	if err != nil {
		t.Fatal(err)
	}
	forbidden := map[string]string{"marker": marker, "root token": init.RootToken, "child token": tok.Auth.ClientToken}
	for i, k := range init.Keys {
		forbidden[fmt.Sprintf("key share %d (hex)", i)] = k
		forbidden[fmt.Sprintf("key share %d (base64)", i)] = init.KeysB64[i]
	}
	for what, s := range forbidden {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("the database file contains the %s in plaintext", what)
		}
	}

	srv = startBoltServer(t, dir)
	c = client(t, srv.addr, init.RootToken)
	st, err := c.Sys().SealStatus()
	if err != nil || !st.Sealed || !st.Initialized {
		t.Fatalf("after restart seal-status = %+v, %v; want initialized and sealed", st, err)
	}
	unseal(t, c, init.Keys[1:])
	s, err := c.KVv2("secret").Get(context.Background(), "app/7")
	if err != nil || s.Data["value"] != marker {
		t.Fatalf("after restart read = %v, %v", s, err)
	}
	if _, err := client(t, srv.addr, tok.Auth.ClientToken).Auth().Token().LookupSelf(); err != nil {
		t.Fatalf("token lost across restart: %v", err)
	}
}

// TestKillDuringWrites kills -9 the server in the middle of a concurrent
// write loop; after restart and unseal every acknowledged write is there.
func TestKillDuringWrites(t *testing.T) {
	dir := t.TempDir()
	srv := startBoltServer(t, dir)
	c := client(t, srv.addr, "")
	init := initServer(t, c, 1, 1)

	var mu sync.Mutex
	acked := map[string]int{} // key -> last acknowledged value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			hc := &http.Client{Timeout: 5 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("w%d/k%d", w, i%50)
				body, _ := json.Marshal(map[string]any{"data": map[string]any{"v": i}})
				req, _ := http.NewRequest("POST", srv.addr+"/v1/secret/data/"+key, bytes.NewReader(body))
				req.Header.Set("X-Vault-Token", init.RootToken)
				resp, err := hc.Do(req)
				if err != nil {
					return // the server died
				}
				resp.Body.Close()
				if resp.StatusCode == 200 {
					mu.Lock()
					acked[key] = i
					mu.Unlock()
				}
			}
		}(w)
	}
	time.Sleep(1500 * time.Millisecond)
	srv.kill()
	close(stop)
	wg.Wait()
	if len(acked) == 0 {
		t.Fatalf("no write was acknowledged before the kill: %s", srv.stderr.String())
	}

	srv = startBoltServer(t, dir)
	c = client(t, srv.addr, init.RootToken)
	unseal(t, c, init.Keys)
	missing := 0
	for key, v := range acked {
		s, err := c.KVv2("secret").Get(context.Background(), key)
		if err != nil {
			t.Errorf("%s: acknowledged write lost: %v", key, err)
			missing++
			continue
		}
		got, _ := s.Data["v"].(json.Number).Int64()
		if int(got) < v {
			t.Errorf("%s: read %d, but %d was acknowledged", key, got, v)
		}
		if missing > 5 {
			t.Fatal("too many lost writes")
		}
	}
	t.Logf("%d keys with acknowledged writes all survived kill -9", len(acked))
}

// TestServerRefusesBadConfig checks configuration errors are one clear line.
func TestServerRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "bad.hcl")
	os.WriteFile(conf, []byte(`storage "bolt" { path = "x" }
listener "tcp" { address = "127.0.0.1:0" }
`), 0o600)
	out, err := exec.Command(arcaBinary(t), "server", "-config="+conf).CombinedOutput()
	if err == nil {
		t.Fatal("server started with a TLS listener lacking certificates")
	}
	if !strings.Contains(string(out), "tls_cert_file") {
		t.Fatalf("error does not name the missing setting: %s", out)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	lines := 0
	for sc.Scan() {
		lines++
	}
	if lines != 1 {
		t.Fatalf("want one error line, got %d:\n%s", lines, out)
	}
}
