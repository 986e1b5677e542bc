package agent_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/arcasec/arca/internal/server/servertest"
)

// The tests in this file pin behaviour a user switching from Vault Agent
// relies on, found by running OpenBao's agent and Arca's side by side on
// the same configuration (docs/agent.md, "Coming from Vault Agent").

// TestPeerPidFileMode: pid_file holds the agent's process ID, with mode
// 0600 as Vault Agent writes it, and is removed when the agent exits.
func TestPeerPidFileMode(t *testing.T) {
	addr, root := servertest.StartDev(t)
	c := vaultClient(t, addr, root)
	kvPut(t, c, "app/pid", map[string]any{"v": "one"})
	dir := t.TempDir()
	tokenFile := tokenFileWith(t, dir, root)
	pidFile := filepath.Join(dir, "agent.pid")
	dest := filepath.Join(dir, "out")
	p := startAgent(t, dir, fmt.Sprintf(`
vault { address = %q }
pid_file = %q
auto_auth {
  method "token_file" { config = { token_file_path = %q } }
}
template {
  contents    = "{{ with secret \"secret/data/app/pid\" }}{{ .Data.data.v }}{{ end }}"
  destination = %q
}
`, addr, pidFile, tokenFile, dest))
	waitFor(t, 20*time.Second, "the render", fileIs(dest, "one"))
	fi, err := os.Stat(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("pid_file mode %v, want 0600", fi.Mode().Perm())
	}
	if got := readFile(t, pidFile); got != strconv.Itoa(p.cmd.Process.Pid) {
		t.Errorf("pid_file holds %q, want %d", got, p.cmd.Process.Pid)
	}
	p.stopWith(t, syscall.SIGTERM, 0)
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("pid_file left behind after exit (stat: %v)", err)
	}
}

// TestPeerExecSIGTERMStopsChildAndExitsZero: SIGTERM to an agent running
// an exec child reaches the child, and the agent then exits 0, as Vault
// Agent does, even though a child that does not catch TERM dies with 143
// (a stop under systemd is not a failure). A child that exits on its own
// still gives the agent its code
// (TestAgentExecRestartsChildOnChangeAndReturnsItsExitCode).
func TestPeerExecSIGTERMStopsChildAndExitsZero(t *testing.T) {
	addr, root := servertest.StartDev(t)
	c := vaultClient(t, addr, root)
	kvPut(t, c, "app/term", map[string]any{"key": "k"})
	dir := t.TempDir()
	tokenFile := tokenFileWith(t, dir, root)
	started := filepath.Join(dir, "started")
	script := filepath.Join(dir, "app.sh")
	// The child does not catch TERM: it dies of it.
	writeFile(t, script, fmt.Sprintf("#!/bin/sh\necho \"$$ $KEY\" > %s\nexec sleep 300\n", started))
	os.Chmod(script, 0o755)
	p := startAgent(t, dir, tokenAuthHCL(addr, tokenFile)+fmt.Sprintf(`
env_template "KEY" {
  contents = "{{ with secret \"secret/data/app/term\" }}{{ .Data.data.key }}{{ end }}"
}
exec { command = [%q] }
`, script))
	waitFor(t, 20*time.Second, "the child to start", func() bool {
		b, err := os.ReadFile(started)
		return err == nil && strings.HasSuffix(string(b), " k\n")
	})
	pid, err := strconv.Atoi(strings.Fields(readFile(t, started))[0])
	if err != nil {
		t.Fatal(err)
	}
	p.stopWith(t, syscall.SIGTERM, 0)
	if err := syscall.Kill(pid, 0); err == nil {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Fatal("the child is still running after the agent exited")
	}
}

// TestPeerMissingKeyLaterKeepsAgentRunning: a key that disappears from a
// secret after the template rendered (error_on_missing_key) does not stop
// the agent, as it does not stop Vault Agent: the previous file stays,
// the error is logged, and the file follows once the key is back. (At
// start-up the same error stops the agent:
// TestAgentMissingKeyFailsWithErrorOnMissingKey.)
func TestPeerMissingKeyLaterKeepsAgentRunning(t *testing.T) {
	addr, root := servertest.StartDev(t)
	c := vaultClient(t, addr, root)
	kvPut(t, c, "app/mk", map[string]any{"password": "first-secret"})
	dir := t.TempDir()
	tokenFile := tokenFileWith(t, dir, root)
	dest := filepath.Join(dir, "out")
	p := startAgent(t, dir, tokenAuthHCL(addr, tokenFile)+fmt.Sprintf(`
template_config { static_secret_render_interval = "300ms" }
template {
  contents             = "{{ with secret \"secret/data/app/mk\" }}{{ .Data.data.password }}{{ end }}"
  destination          = %q
  error_on_missing_key = true
}
`, dest))
	waitFor(t, 20*time.Second, "the first render", fileIs(dest, "first-secret"))

	kvPut(t, c, "app/mk", map[string]any{"passwd": "renamed-secret"})
	waitFor(t, 20*time.Second, "the error to be logged", func() bool {
		return strings.Contains(p.out.String(), "keeping the previous output")
	})
	select {
	case <-p.done:
		t.Fatalf("the agent exited (code %d) on a key removed after start-up", p.code)
	default:
	}
	if got := readFile(t, dest); got != "first-secret" {
		t.Fatalf("the file holds %q after the failed render, want the previous text", got)
	}
	if out := p.out.String(); !strings.Contains(out, "password") || strings.Contains(out, "renamed-secret") || strings.Contains(out, "first-secret") {
		t.Fatalf("the log should name the key and no value:\n%s", out)
	}

	kvPut(t, c, "app/mk", map[string]any{"password": "second-secret"})
	waitFor(t, 20*time.Second, "the render once the key is back", fileIs(dest, "second-secret"))
}

// TestPeerRevokedTokenReplacedAtOnce: a token revoked on the server is
// replaced as soon as a read is refused, not at its next renewal (two
// thirds of an hour here; Vault Agent waits that long): the agent checks
// its token, logs in again, writes the new token to the sink and renders
// what changed meanwhile.
func TestPeerRevokedTokenReplacedAtOnce(t *testing.T) {
	addr, root := servertest.StartDev(t)
	c := vaultClient(t, addr, root)
	dir := t.TempDir()
	roleID, secretID := appRole(t, c, dir, `path "secret/data/app/*" { capabilities = ["read"] }`)
	kvPut(t, c, "app/rev", map[string]any{"v": "before"})
	sink := filepath.Join(dir, "sink")
	dest := filepath.Join(dir, "out")
	startAgent(t, dir, fmt.Sprintf(`
vault { address = %q }
auto_auth {
  method "approle" {
    config = {
      role_id_file_path   = %q
      secret_id_file_path = %q
      remove_secret_id_file_after_reading = false
    }
  }
  sink "file" { config = { path = %q } }
}
template_config { static_secret_render_interval = "300ms" }
template {
  contents    = "{{ with secret \"secret/data/app/rev\" }}{{ .Data.data.v }}{{ end }}"
  destination = %q
}
`, addr, roleID, secretID, sink, dest))
	waitFor(t, 20*time.Second, "the first render", fileIs(dest, "before"))
	old := readFile(t, sink)
	if _, err := c.Logical().Write("auth/token/revoke", map[string]any{"token": old}); err != nil {
		t.Fatal(err)
	}
	kvPut(t, c, "app/rev", map[string]any{"v": "after"})
	waitFor(t, 20*time.Second, "a new token in the sink", func() bool {
		b, err := os.ReadFile(sink)
		return err == nil && len(b) > 0 && string(b) != old
	})
	waitFor(t, 20*time.Second, "the render with the new token", fileIs(dest, "after"))
	if _, err := vaultClient(t, addr, readFile(t, sink)).Auth().Token().LookupSelf(); err != nil {
		t.Fatalf("the new token does not work: %v", err)
	}
}

// TestPeerPermissionDeniedKeepsAValidToken: a read the policy refuses
// makes the agent check its token, but a token that still works is kept:
// no new login (no new token) for a template that asks for too much.
func TestPeerPermissionDeniedKeepsAValidToken(t *testing.T) {
	addr, root := servertest.StartDev(t)
	c := vaultClient(t, addr, root)
	dir := t.TempDir()
	roleID, secretID := appRole(t, c, dir, `path "secret/data/app/*" { capabilities = ["read"] }`)
	kvPut(t, c, "app/ok", map[string]any{"v": "fine"})
	kvPut(t, c, "other/no", map[string]any{"v": "forbidden"})
	dest := filepath.Join(dir, "ok")
	p := startAgent(t, dir, fmt.Sprintf(`
vault { address = %q }
auto_auth {
  method "approle" {
    config = {
      role_id_file_path   = %q
      secret_id_file_path = %q
    }
  }
}
template_config { static_secret_render_interval = "300ms" }
template {
  contents    = "{{ with secret \"secret/data/app/ok\" }}{{ .Data.data.v }}{{ end }}"
  destination = %q
}
template {
  contents    = "{{ with secret \"secret/data/other/no\" }}{{ .Data.data.v }}{{ end }}"
  destination = %q
}
`, addr, roleID, secretID, dest, filepath.Join(dir, "no")))
	waitFor(t, 20*time.Second, "the allowed template", fileIs(dest, "fine"))
	waitFor(t, 20*time.Second, "several refused reads", func() bool {
		return strings.Count(p.out.String(), "permission denied") >= 3
	})
	out := p.out.String()
	if n := strings.Count(out, "auto-auth: logged in"); n != 1 {
		t.Fatalf("%d logins for a valid token refused one path, want 1:\n%s", n, out)
	}
}

// TestPeerMissingSecretLookedForAtTheInterval: a secret that does not
// exist yet is looked for again at static_secret_render_interval (not with
// a backoff growing to a minute), as Vault Agent does, without a warning
// each time; the file appears once the secret is written.
func TestPeerMissingSecretLookedForAtTheInterval(t *testing.T) {
	addr, root := servertest.StartDev(t)
	c := vaultClient(t, addr, root)
	dir := t.TempDir()
	tokenFile := tokenFileWith(t, dir, root)
	dest := filepath.Join(dir, "out")
	p := startAgent(t, dir, tokenAuthHCL(addr, tokenFile)+fmt.Sprintf(`
template_config { static_secret_render_interval = "300ms" }
template {
  contents    = "{{ with secret \"secret/data/app/later\" }}{{ .Data.data.v }}{{ end }}"
  destination = %q
}
`, dest))
	const still = "a secret still does not exist"
	waitFor(t, 30*time.Second, "several looks for the missing secret", func() bool {
		return strings.Count(p.out.String(), still) >= 5
	})
	for _, line := range strings.Split(p.out.String(), "\n") {
		if !strings.Contains(line, still) {
			continue
		}
		_, after, _ := strings.Cut(line, "backoff=")
		d, err := time.ParseDuration(strings.Fields(after + " x")[0])
		if err != nil || d > 300*time.Millisecond {
			t.Fatalf("looked again after %v (%v), want at most the 300ms interval: %s", d, err, line)
		}
	}
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Fatalf("a file was written for a missing secret (stat: %v)", err)
	}
	kvPut(t, c, "app/later", map[string]any{"v": "now"})
	waitFor(t, 20*time.Second, "the file once the secret exists", fileIs(dest, "now"))
}

// TestPeerAddressFromEnvironmentAndQuit: as with vault agent, $VAULT_ADDR
// wins over the file's vault { address }, and a listener with agent_api {
// enable_quit = true } stops the agent on POST /agent/v1/quit (exit 0).
func TestPeerAddressFromEnvironmentAndQuit(t *testing.T) {
	addr, root := servertest.StartDev(t)
	kvPut(t, vaultClient(t, addr, root), "app/db", map[string]any{"password": "env-addr"})
	dir := t.TempDir()
	tokenFile := tokenFileWith(t, dir, root)
	dest := filepath.Join(dir, "out")
	listen := freePort(t)
	p := startAgent(t, dir, fmt.Sprintf(`
vault { address = "http://127.0.0.1:1" }
auto_auth {
  method "token_file" { config = { token_file_path = %q } }
}
listener "tcp" {
  address     = %q
  tls_disable = true
  agent_api { enable_quit = true }
}
template {
  contents    = "{{ with secret \"secret/data/app/db\" }}{{ .Data.data.password }}{{ end }}"
  destination = %q
}
`, tokenFile, listen, dest), "VAULT_ADDR="+addr, "ARCA_ADDR=")
	waitFor(t, 20*time.Second, "the render through $VAULT_ADDR", fileIs(dest, "env-addr"))
	resp, err := http.Post("http://"+listen+"/agent/v1/quit", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code := p.exited(t, 15*time.Second); code != 0 {
		t.Fatalf("exit code after quit: %d", code)
	}
}
