package agent_test

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/server/servertest"
	"github.com/arcasec/arca/internal/testutil/arcaproc"
)

// The tests in this file run the real arca binary as `arca agent` beside an
// in-process server, with real child processes, and look at what lands on
// disk and what the children see.

func TestMain(m *testing.M) {
	defer arcaproc.Cleanup()
	servertest.Main(m)
}

// agentProc is one `arca agent` process.
type agentProc struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
	code int
}

// startAgent writes hcl to dir/agent.hcl and starts `arca agent` on it. The
// process is stopped when the test ends.
func startAgent(t *testing.T, dir, hcl string, env ...string) *agentProc {
	t.Helper()
	bin, err := arcaproc.Binary()
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(conf, []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &agentProc{out: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "agent", "-config="+conf, "-log-level=debug")
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
		if strings.Contains(p.out.String(), "DATA RACE") {
			t.Errorf("the agent (a -race build, ARCA_TEST_BINARY) reported a data race")
		}
		if t.Failed() {
			t.Logf("agent output:\n%s", p.out.String())
		}
	})
	return p
}

// stopWith sends sig and fails the test unless the agent exits with code.
func (p *agentProc) stopWith(t *testing.T, sig syscall.Signal, code int) {
	t.Helper()
	p.cmd.Process.Signal(sig)
	if got := p.exited(t, 20*time.Second); got != code {
		t.Fatalf("agent exit code %d after %v, want %d", got, sig, code)
	}
}

// exited waits for the agent to exit and returns its code.
func (p *agentProc) exited(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(within):
		t.Fatalf("the agent did not exit within %s; output:\n%s", within, p.out.String())
		return -1
	}
}

// appRole enables AppRole with role "app" (policies given as HCL) and
// writes its role ID and a fresh secret ID into dir.
func appRole(t *testing.T, c *vault.Client, dir, policy string) (roleIDFile, secretIDFile string) {
	t.Helper()
	if err := c.Sys().PutPolicy("app", policy); err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().EnableAuthWithOptions("approle", &vault.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("auth/approle/role/app", map[string]any{
		"token_policies": "app", "token_ttl": "1h", "token_max_ttl": "4h",
	}); err != nil {
		t.Fatal(err)
	}
	rid, err := c.Logical().Read("auth/approle/role/app/role-id")
	if err != nil {
		t.Fatal(err)
	}
	sid, err := c.Logical().Write("auth/approle/role/app/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	roleIDFile, secretIDFile = filepath.Join(dir, "role-id"), filepath.Join(dir, "secret-id")
	writeFile(t, roleIDFile, rid.Data["role_id"].(string))
	writeFile(t, secretIDFile, sid.Data["secret_id"].(string))
	return roleIDFile, secretIDFile
}

// TestAgentRendersKVAndFollowsChanges is the first proof: AppRole
// auto-auth from files (the secret ID file removed after reading), a token
// sink written with its mode, a KV v2 template rendered with its perms and
// re-rendered after `kv put`, the template's command run each time.
func TestAgentRendersKVAndFollowsChanges(t *testing.T) {
	addr, root := servertest.StartDev(t)
	c := vaultClient(t, addr, root)
	dir := t.TempDir()
	roleID, secretID := appRole(t, c, dir, `path "secret/data/app/*" { capabilities = ["read"] }`)
	kvPut(t, c, "app/db", map[string]any{"password": "first-pass", "user": "app"})

	sink := filepath.Join(dir, "token")
	dest := filepath.Join(dir, "out", "db.conf")
	ran := filepath.Join(dir, "ran")
	startAgent(t, dir, fmt.Sprintf(`
vault { address = %q }
auto_auth {
  method "approle" {
    config = {
      role_id_file_path   = %q
      secret_id_file_path = %q
    }
  }
  sink "file" {
    config = {
      path = %q
      mode = 0600
    }
  }
}
template_config {
  static_secret_render_interval = "300ms"
}
template {
  contents    = "{{ with secret \"secret/data/app/db\" }}user={{ .Data.data.user }} password={{ .Data.data.password }} v{{ .Data.metadata.version }}{{ end }}"
  destination = %q
  perms       = "0640"
  command     = "echo run >> %s"
}
`, addr, roleID, secretID, sink, dest, ran))

	waitFor(t, 20*time.Second, "the first render", fileIs(dest, "user=app password=first-pass v1"))
	fi, err := os.Stat(dest)
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("rendered file mode: %v %v", fi.Mode(), err)
	}
	if _, err := os.Stat(secretID); !os.IsNotExist(err) {
		t.Fatalf("the secret ID file is still there after the login read it (stat: %v)", err)
	}
	fi, err = os.Stat(sink)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token sink mode: %v %v", fi, err)
	}
	tok := strings.TrimSpace(readFile(t, sink))
	self, err := vaultClient(t, addr, tok).Auth().Token().LookupSelf()
	if err != nil {
		t.Fatalf("the sink's token does not work: %v", err)
	}
	if pols, _ := self.TokenPolicies(); !contains(pols, "app") {
		t.Fatalf("the sink's token has policies %v, want app", pols)
	}
	waitFor(t, 10*time.Second, "the command after the first render", fileIs(ran, "run\n"))

	kvPut(t, c, "app/db", map[string]any{"password": "second-pass", "user": "app"})
	waitFor(t, 20*time.Second, "the re-render after kv put", fileIs(dest, "user=app password=second-pass v2"))
	waitFor(t, 10*time.Second, "the command after the re-render", fileIs(ran, "run\nrun\n"))

	// A render that fails (the latest version deleted) keeps the previous
	// file and runs nothing; the agent recovers with the next version.
	if _, err := c.Logical().Delete("secret/data/app/db"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // several render intervals
	if got := readFile(t, dest); got != "user=app password=second-pass v2" {
		t.Fatalf("after a failed render the file holds %q", got)
	}
	kvPut(t, c, "app/db", map[string]any{"password": "third-pass", "user": "app"})
	waitFor(t, 20*time.Second, "the render after the failed ones", fileIs(dest, "user=app password=third-pass v3"))
	waitFor(t, 10*time.Second, "the command after it", fileIs(ran, "run\nrun\nrun\n"))
}

// TestAgentExecRestartsChildOnChangeAndReturnsItsExitCode runs an
// application as the agent's child with a secret in its environment: a KV
// change restarts it with the new value (the old one stopped with the stop
// signal), and when the child exits on its own the agent exits with its
// code.
func TestAgentExecRestartsChildOnChangeAndReturnsItsExitCode(t *testing.T) {
	addr, root := servertest.StartDev(t)
	c := vaultClient(t, addr, root)
	dir := t.TempDir()
	kvPut(t, c, "app/api", map[string]any{"key": "k-one"})
	tokenFile := tokenFileWith(t, dir, root)
	seen := filepath.Join(dir, "seen")
	stopped := filepath.Join(dir, "stopped")
	exitNow := filepath.Join(dir, "exit-now")
	// The child records the key it was started with, records the signal
	// that stops it, and exits 7 once exit-now appears.
	script := filepath.Join(dir, "app.sh")
	writeFile(t, script, fmt.Sprintf(`#!/bin/sh
echo "$API_KEY" >> %[1]s
trap 'echo "usr2 $API_KEY" >> %[2]s; exit 0' USR2
while [ ! -f %[3]s ]; do sleep 0.1; done
exit 7
`, seen, stopped, exitNow))
	os.Chmod(script, 0o755)

	p := startAgent(t, dir, fmt.Sprintf(`
vault { address = %q }
auto_auth {
  method "token_file" {
    config = { token_file_path = %q }
  }
}
template_config { static_secret_render_interval = "300ms" }
env_template "API_KEY" {
  contents = "{{ with secret \"secret/data/app/api\" }}{{ .Data.data.key }}{{ end }}"
}
exec {
  command                   = [%q]
  restart_on_secret_changes = "always"
  restart_stop_signal       = "SIGUSR2"
}
`, addr, tokenFile, script))

	waitFor(t, 20*time.Second, "the child to start with the secret", fileIs(seen, "k-one\n"))
	kvPut(t, c, "app/api", map[string]any{"key": "k-two"})
	waitFor(t, 20*time.Second, "the child to restart with the new secret", fileIs(seen, "k-one\nk-two\n"))
	if got := readFile(t, stopped); got != "usr2 k-one\n" {
		t.Fatalf("the old child was stopped with %q, want usr2 k-one", got)
	}
	writeFile(t, exitNow, "")
	if code := p.exited(t, 20*time.Second); code != 7 {
		t.Fatalf("agent exit code %d, want the child's 7; output:\n%s", code, p.out.String())
	}
}

// TestAgentAPIProxyAddsItsToken: an application without a token calls the
// agent's listener and gets an answer made with the agent's token.
func TestAgentAPIProxyAddsItsToken(t *testing.T) {
	addr, root := servertest.StartDev(t)
	c := vaultClient(t, addr, root)
	dir := t.TempDir()
	roleID, secretID := appRole(t, c, dir, `path "secret/data/app/*" { capabilities = ["read"] }`)
	kvPut(t, c, "app/db", map[string]any{"password": "through-the-proxy"})
	listen := freePort(t)
	startAgent(t, dir, fmt.Sprintf(`
vault { address = %q }
auto_auth {
  method "approle" {
    config = {
      role_id_file_path   = %q
      secret_id_file_path = %q
    }
  }
}
api_proxy { use_auto_auth_token = true }
listener "tcp" {
  address     = %q
  tls_disable = true
}
`, addr, roleID, secretID, listen))

	app := vaultClient(t, "http://"+listen, "")
	app.ClearToken()
	var s *vault.Secret
	waitFor(t, 20*time.Second, "a read through the proxy", func() bool {
		var err error
		s, err = app.Logical().Read("secret/data/app/db")
		return err == nil && s != nil
	})
	if got := s.Data["data"].(map[string]any)["password"]; got != "through-the-proxy" {
		t.Fatalf("read through the proxy: %v", s.Data)
	}
	// The agent's token is the AppRole's, not root: what its policy denies
	// stays denied through the proxy.
	if _, err := app.Logical().Write("secret/data/app/db", map[string]any{"data": map[string]any{"x": "y"}}); err == nil {
		t.Fatal("a write the agent's policy denies passed through the proxy")
	}
}

// TestAgentTemplateSyntaxErrorNamesFileAndLine: a broken template stops
// the agent at start-up with the file and line in the message.
func TestAgentTemplateSyntaxErrorNamesFileAndLine(t *testing.T) {
	addr, root := servertest.StartDev(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "app.tmpl")
	writeFile(t, src, "line one\n{{ with secret \"secret/data/x\" }}\n{{ .Data.data.x \n")
	tokenFile := tokenFileWith(t, dir, root)
	p := startAgent(t, dir, tokenAuthHCL(addr, tokenFile)+fmt.Sprintf(`
template {
  source      = %q
  destination = %q
}
`, src, filepath.Join(dir, "out")))
	if code := p.exited(t, 20*time.Second); code == 0 {
		t.Fatal("the agent ran with a broken template")
	}
	if out := p.out.String(); !strings.Contains(out, "app.tmpl:3") {
		t.Fatalf("the error does not name app.tmpl:3:\n%s", out)
	}
}

// TestAgentMissingKeyFailsWithErrorOnMissingKey: with error_on_missing_key
// a template that reads a key the secret lacks stops the agent with an
// error naming the key, and writes no file.
func TestAgentMissingKeyFailsWithErrorOnMissingKey(t *testing.T) {
	addr, root := servertest.StartDev(t)
	c := vaultClient(t, addr, root)
	kvPut(t, c, "app/db", map[string]any{"user": "app", "password": "never-shown"})
	dir := t.TempDir()
	tokenFile := tokenFileWith(t, dir, root)
	dest := filepath.Join(dir, "out")
	p := startAgent(t, dir, tokenAuthHCL(addr, tokenFile)+fmt.Sprintf(`
template {
  contents             = "{{ with secret \"secret/data/app/db\" }}{{ .Data.data.passwrd }}{{ end }}"
  destination          = %q
  error_on_missing_key = true
}
`, dest))
	if code := p.exited(t, 20*time.Second); code == 0 {
		t.Fatal("the agent went on with a missing key and error_on_missing_key")
	}
	out := p.out.String()
	if !strings.Contains(out, "passwrd") {
		t.Fatalf("the error does not name the missing key:\n%s", out)
	}
	if strings.Contains(out, "never-shown") {
		t.Fatalf("the error shows a secret value:\n%s", out)
	}
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Fatalf("a file was written for a template that failed (stat: %v)", err)
	}
}

// TestAgentRetriesAnUnreachableServer: started before its server, the
// agent says it cannot reach it and keeps trying; once the server is up it
// logs in and renders.
func TestAgentRetriesAnUnreachableServer(t *testing.T) {
	dir := t.TempDir()
	listen := freePort(t)
	tokenFile := filepath.Join(dir, "token")
	writeFile(t, tokenFile, "not-yet")
	dest := filepath.Join(dir, "out")
	srcConf := fmt.Sprintf(`
vault { address = "http://%s" }
auto_auth {
  method "token_file" {
    min_backoff = "200ms"
    max_backoff = "1s"
    config = { token_file_path = %q }
  }
}
template {
  contents    = "{{ with secret \"secret/data/app/db\" }}{{ .Data.data.user }}{{ end }}"
  destination = %q
}
`, listen, tokenFile, dest)
	p := startAgent(t, dir, srcConf)
	waitFor(t, 20*time.Second, "the agent to report the unreachable server", func() bool {
		out := p.out.String()
		return strings.Contains(out, listen) && (strings.Contains(out, "retry") || strings.Contains(out, "backoff"))
	})

	// The server comes up on the address the agent keeps trying.
	addr, root := servertest.StartDevAt(t, listen)
	c := vaultClient(t, addr, root)
	kvPut(t, c, "app/db", map[string]any{"user": "late"})
	writeFile(t, tokenFile, root)
	waitFor(t, 30*time.Second, "the render once the server is up", fileIs(dest, "late"))
}

// TestVaultAgentConfigRunsUnchanged runs a configuration written the way
// Vault Agent's documentation writes one (pid_file, vault with retry,
// approle auto-auth keeping its secret ID file, a sink, an empty cache
// stanza, api_proxy, unix and tcp listeners, template files with source,
// log_level) and checks each part did its job.
func TestVaultAgentConfigRunsUnchanged(t *testing.T) {
	addr, root := servertest.StartDev(t)
	c := vaultClient(t, addr, root)
	dir := t.TempDir()
	roleID, secretID := appRole(t, c, dir, `path "secret/data/web/*" { capabilities = ["read"] }`)
	kvPut(t, c, "web/tls", map[string]any{"key": "-----KEY-----", "cert": "-----CERT-----"})
	writeFile(t, filepath.Join(dir, "server.key.ctmpl"), `{{- with secret "secret/data/web/tls" -}}
{{ .Data.data.key }}
{{- end }}
`)
	writeFile(t, filepath.Join(dir, "server.crt.ctmpl"), `{{ with secret "secret/data/web/tls" }}{{ .Data.data.cert }}{{ end }}`)
	socket := filepath.Join(dir, "agent.sock")
	listen := freePort(t)
	pidFile := filepath.Join(dir, "pidfile")
	p := startAgent(t, dir, fmt.Sprintf(`
pid_file = %q
log_level = "debug"
log_file  = %q

vault {
  address = %q
  retry {
    num_retries = 5
  }
}

auto_auth {
  method "approle" {
    mount_path = "auth/approle"
    config = {
      role_id_file_path                   = %q
      secret_id_file_path                 = %q
      remove_secret_id_file_after_reading = false
    }
  }

  sink "file" {
    config = {
      path = %q
    }
  }
}

cache {
  // An empty cache stanza
}

api_proxy {
  use_auto_auth_token = true
}

listener "unix" {
  address     = %q
  tls_disable = true
}

listener "tcp" {
  address     = %q
  tls_disable = true
}

template {
  source      = %q
  destination = %q
}

template {
  source      = %q
  destination = %q
}
`, pidFile, filepath.Join(dir, "agent.log"), addr, roleID, secretID, filepath.Join(dir, "sink"), socket, listen,
		filepath.Join(dir, "server.key.ctmpl"), filepath.Join(dir, "server.key"),
		filepath.Join(dir, "server.crt.ctmpl"), filepath.Join(dir, "server.crt")))

	waitFor(t, 20*time.Second, "server.key", fileIs(filepath.Join(dir, "server.key"), "-----KEY-----\n"))
	waitFor(t, 10*time.Second, "server.crt", fileIs(filepath.Join(dir, "server.crt"), "-----CERT-----"))
	if got := strings.TrimSpace(readFile(t, pidFile)); got != fmt.Sprint(p.cmd.Process.Pid) {
		t.Fatalf("pid_file holds %q, want %d", got, p.cmd.Process.Pid)
	}
	if _, err := os.Stat(secretID); err != nil {
		t.Fatalf("remove_secret_id_file_after_reading = false, yet the file is gone: %v", err)
	}
	if log := readFile(t, filepath.Join(dir, "agent.log")); !strings.Contains(log, "rendered") {
		t.Fatalf("log_file holds no render:\n%s", log)
	}
	for _, proxyAddr := range []string{"unix://" + socket, "http://" + listen} {
		app := vaultClient(t, proxyAddr, "")
		app.ClearToken()
		s, err := app.Logical().Read("secret/data/web/tls")
		if err != nil || s == nil {
			t.Fatalf("read through the proxy at %s: %v", proxyAddr, err)
		}
	}
	p.stopWith(t, syscall.SIGTERM, 0)
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Fatalf("the pid_file was left behind (stat: %v)", err)
	}
}

// TestAgentExitAfterAuth: with exit_after_auth the agent logs in, writes
// its sink, renders its templates once and exits 0 (an init container's
// job).
func TestAgentExitAfterAuth(t *testing.T) {
	addr, root := servertest.StartDev(t)
	c := vaultClient(t, addr, root)
	dir := t.TempDir()
	roleID, secretID := appRole(t, c, dir, `path "secret/data/app/*" { capabilities = ["read"] }`)
	kvPut(t, c, "app/db", map[string]any{"password": "once"})
	sink, dest := filepath.Join(dir, "token"), filepath.Join(dir, "out")
	p := startAgent(t, dir, fmt.Sprintf(`
exit_after_auth = true
vault { address = %q }
auto_auth {
  method "approle" {
    config = {
      role_id_file_path   = %q
      secret_id_file_path = %q
    }
  }
  sink "file" { config = { path = %q } }
}
template {
  contents    = "{{ with secret \"secret/data/app/db\" }}{{ .Data.data.password }}{{ end }}"
  destination = %q
}
`, addr, roleID, secretID, sink, dest))
	if code := p.exited(t, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	if got := readFile(t, dest); got != "once" {
		t.Fatalf("rendered %q, want once", got)
	}
	if _, err := vaultClient(t, addr, strings.TrimSpace(readFile(t, sink))).Auth().Token().LookupSelf(); err != nil {
		t.Fatalf("the sink's token does not work: %v", err)
	}
}

// TestAgentTemplateWaitAndErrorFatal: wait { min } lets a burst of changes
// render once (the version in between never reaches the file or the
// command), and a template with error_fatal = false that cannot render
// leaves the agent running and the other templates rendering.
func TestAgentTemplateWaitAndErrorFatal(t *testing.T) {
	addr, root := servertest.StartDev(t)
	c := vaultClient(t, addr, root)
	kvPut(t, c, "app/db", map[string]any{"password": "v1"})
	dir := t.TempDir()
	tokenFile := tokenFileWith(t, dir, root)
	dest, broken, ran := filepath.Join(dir, "out"), filepath.Join(dir, "broken"), filepath.Join(dir, "ran")
	startAgent(t, dir, tokenAuthHCL(addr, tokenFile)+fmt.Sprintf(`
template_config { static_secret_render_interval = "200ms" }
template {
  contents    = "{{ with secret \"secret/data/app/db\" }}{{ .Data.data.password }}{{ end }}"
  destination = %q
  command     = "cat %s >> %s; echo >> %s"
  wait {
    min = "3s"
    max = "10s"
  }
}
template {
  contents             = "{{ with secret \"secret/data/app/db\" }}{{ .Data.data.later }}{{ end }}"
  destination          = %q
  error_on_missing_key = true
  error_fatal          = false
}
`, dest, dest, ran, ran, broken))

	waitFor(t, 20*time.Second, "the first render", fileIs(ran, "v1\n"))
	kvPut(t, c, "app/db", map[string]any{"password": "v2"})
	time.Sleep(400 * time.Millisecond)
	kvPut(t, c, "app/db", map[string]any{"password": "v3", "later": "now-here"})
	waitFor(t, 20*time.Second, "the render after the burst", fileIs(ran, "v1\nv3\n"))
	waitFor(t, 20*time.Second, "the template that could not render before", fileIs(broken, "now-here"))
}

// TestAgentTemplateOwner: run as root, the agent gives a rendered file the
// template's user and group.
func TestAgentTemplateOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root can give a file another owner")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	addr, root := servertest.StartDev(t)
	kvPut(t, vaultClient(t, addr, root), "app/db", map[string]any{"password": "owned"})
	dir := t.TempDir()
	tokenFile := tokenFileWith(t, dir, root)
	dest := filepath.Join(dir, "out")
	startAgent(t, dir, tokenAuthHCL(addr, tokenFile)+fmt.Sprintf(`
template {
  contents    = "{{ with secret \"secret/data/app/db\" }}{{ .Data.data.password }}{{ end }}"
  destination = %q
  user        = "nobody"
  group       = %q
  perms       = "0640"
}
`, dest, nobody.Gid))
	waitFor(t, 20*time.Second, "the render", fileIs(dest, "owned"))
	fi, err := os.Stat(dest)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fmt.Sprint(st.Uid) != nobody.Uid || fmt.Sprint(st.Gid) != nobody.Gid {
		t.Fatalf("owner %d:%d, want nobody %s:%s", st.Uid, st.Gid, nobody.Uid, nobody.Gid)
	}
}

// TestAgentSurvivesSIGHUP: a service manager's reload (SIGHUP) does not
// kill the agent; it says the configuration is read once and goes on.
func TestAgentSurvivesSIGHUP(t *testing.T) {
	addr, root := servertest.StartDev(t)
	c := vaultClient(t, addr, root)
	kvPut(t, c, "app/db", map[string]any{"password": "before"})
	dir := t.TempDir()
	dest := filepath.Join(dir, "out")
	p := startAgent(t, dir, tokenAuthHCL(addr, tokenFileWith(t, dir, root))+fmt.Sprintf(`
template_config { static_secret_render_interval = "200ms" }
template {
  contents    = "{{ with secret \"secret/data/app/db\" }}{{ .Data.data.password }}{{ end }}"
  destination = %q
}
`, dest))
	waitFor(t, 20*time.Second, "the first render", fileIs(dest, "before"))
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 10*time.Second, "the agent to note the SIGHUP", func() bool { return strings.Contains(p.out.String(), "SIGHUP") })
	kvPut(t, c, "app/db", map[string]any{"password": "after"})
	waitFor(t, 20*time.Second, "a render after the SIGHUP", fileIs(dest, "after"))
	p.stopWith(t, syscall.SIGTERM, 0)
}
