package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// TestAuditRotateAndRestart runs the real binary on bolt: a file audit
// device survives a restart (the salt is behind the barrier, so sys/audit-hash
// gives the same HMAC), SIGHUP reopens the file after logrotate moves it
// away, and the access report is still there after the restart.
func TestAuditRotateAndRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	logPath := filepath.Join(dir, "audit.log")
	srv := startBoltServer(t, dir)
	c := client(t, srv.addr, "")
	init := initServer(t, c, 1, 1)
	if err := c.Sys().EnableAuditWithOptions("file", &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": logPath}}); err != nil {
		t.Fatal(err)
	}
	const marker = "rotate-marker-51c0"
	if _, err := c.KVv2("secret").Put(ctx, "app", map[string]any{"v": marker}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KVv2("secret").Get(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	before, _ := c.Sys().AuditHash("file", marker)

	// logrotate: move the file away, then SIGHUP.
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	srv.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(logPath); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SIGHUP did not reopen the audit file: %s", srv.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := c.KVv2("secret").Get(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(logPath)
	if !strings.Contains(string(raw), `"path":"secret/data/app"`) || strings.Contains(string(raw), marker) {
		t.Fatalf("the reopened file holds:\n%s", raw)
	}
	old, _ := os.ReadFile(logPath + ".1")
	if !strings.Contains(string(old), before) {
		t.Fatal("the rotated file lacks the HMAC of the written value")
	}

	srv.stop(t)
	srv = startBoltServer(t, dir)
	c = client(t, srv.addr, init.RootToken)
	unseal(t, c, init.Keys)
	after, err := c.Sys().AuditHash("file", marker)
	if err != nil || after != before {
		t.Fatalf("audit-hash after restart = %q, %v; want %q", after, err, before)
	}
	rep, err := c.Logical().Read("sys/access-report/secret/data/app")
	if err != nil || rep == nil || rep.Data["reads"] == nil || rep.Data["reads"].(interface{ String() string }).String() != "2" {
		t.Fatalf("access report after restart: %v, %v", rep, err)
	}
}
