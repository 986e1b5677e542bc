package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// TestAuditRotateAndRestart runs the real binary on bolt with a file audit
// device declared in its configuration: the device is enabled at unseal,
// the API can neither enable another nor disable it, it survives a restart
// (the salt is behind the barrier, so sys/audit-hash gives the same HMAC),
// SIGHUP reopens the file after logrotate moves it away, and the access
// report is still there after the restart.
func TestAuditRotateAndRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	logPath := filepath.Join(dir, "audit.log")
	stanza := fmt.Sprintf(`audit "file" "file" {
  description = "declared"
  options {
    file_path = %q
  }
}
`, logPath)
	srv := startBoltServer(t, dir, stanza)
	c := client(t, srv.addr, "")
	init := initServer(t, c, 1, 1)
	audits, err := c.Sys().ListAudit()
	if err != nil || audits["file/"] == nil || audits["file/"].Options["file_path"] != logPath || audits["file/"].Description != "declared" {
		t.Fatalf("sys/audit lists %+v (err %v), want the declared device", audits, err)
	}
	err = c.Sys().EnableAuditWithOptions("other", &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": logPath + ".other"}})
	if statusOf(err) != 400 || !strings.Contains(err.Error(), "unsafe_allow_api_audit_creation") {
		t.Fatalf("enabling a device through the API on a server that does not allow it: %v", err)
	}
	if _, statErr := os.Stat(logPath + ".other"); statErr == nil {
		t.Fatal("the refused device created its file")
	}
	if err := c.Sys().DisableAudit("file"); statusOf(err) != 400 || !strings.Contains(err.Error(), "server configuration") {
		t.Fatalf("disabling the declared device through the API: %v", err)
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
	srv = startBoltServer(t, dir, stanza)
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

// statusOf returns the HTTP status of a vault/api error, or 0.
func statusOf(err error) int {
	var re *vault.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}
