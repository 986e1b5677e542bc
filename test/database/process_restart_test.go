package database_test

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/testutil/pgtest"
)

// arcaProcess is the arca binary running as a server on a bolt file.
type arcaProcess struct {
	cmd    *exec.Cmd
	addr   string
	stderr *bytes.Buffer
}

// buildArca builds cmd/arca into a temporary directory of t.
func buildArca(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "arca")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/arcasec/arca/cmd/arca").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startArca starts `arca server -config=` on the bolt file in dir, on a
// free loopback port, and waits until it answers.
func startArca(t *testing.T, bin, dir string) *arcaProcess {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	conf := filepath.Join(dir, "server.hcl")
	hcl := fmt.Sprintf(`storage "bolt" { path = %q }
disable_mlock = true
listener "tcp" {
  address     = %q
  tls_disable = true
}
`, filepath.Join(dir, "arca.db"), addr)
	if err := os.WriteFile(conf, []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "server", "-config="+conf)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &arcaProcess{cmd: cmd, addr: "http://" + addr, stderr: &stderr}
	t.Cleanup(p.kill)
	eventually(t, "the arca server answers", func() bool {
		resp, err := http.Get(p.addr + "/v1/sys/seal-status")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
	return p
}

// kill ends the process at once, as a crash or an OOM kill would.
func (p *arcaProcess) kill() {
	if p.cmd.ProcessState == nil && p.cmd.Process != nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
	}
}

// A real arca process killed (SIGKILL) while a lease runs, and started
// again after the lease's TTL has passed, revokes it once unsealed: the
// PostgreSQL user is dropped. Storage is a bolt file; nothing is shared
// between the two processes but that file.
func TestLeaseRevokedAfterProcessKilledAndRestarted(t *testing.T) {
	pg := pgtest.Start(t)
	bin := buildArca(t)
	dir := t.TempDir()

	srv := startArca(t, bin, dir)
	c := newClient(t, srv.addr, "")
	init, err := c.Sys().Init(&vault.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Sys().Unseal(init.Keys[0]); err != nil {
		t.Fatal(err)
	}
	c.SetToken(init.RootToken)
	if err := c.Sys().Mount("database", &vault.MountInput{Type: "database"}); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, c, pg, "short")
	writeRole(t, c, "short", `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}'`, "5s", "1m")
	s, username, password := creds(t, c, "short")
	if s.LeaseDuration != 5 || !canLogin(pg, username, password) {
		t.Fatalf("lease_duration %d, want 5; the credentials must log in", s.LeaseDuration)
	}
	expires := time.Now().Add(time.Duration(s.LeaseDuration) * time.Second)

	srv.kill()
	// Wait, with the server down, until the lease has expired.
	time.Sleep(time.Until(expires) + time.Second)
	if !pg.RoleExists(t, username) {
		t.Fatal("the user was dropped while no server ran")
	}

	srv = startArca(t, bin, dir)
	c = newClient(t, srv.addr, init.RootToken)
	if st, err := c.Sys().Unseal(init.Keys[0]); err != nil || st.Sealed {
		t.Fatalf("unseal after the restart: %v, %+v", err, st)
	}
	eventually(t, "user "+username+" dropped after the restart", func() bool { return !pg.RoleExists(t, username) })
	wantInvalidLease(t, c, s.LeaseID)
	if canLogin(pg, username, password) {
		t.Fatal("the credentials of the revoked lease still log in")
	}
}
