package compat

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/server"
	"github.com/arcasec/arca/internal/server/servertest"
)

// These tests check that an audit device cannot be turned against the
// host: file modes, the prefix option, devices declared in the server
// configuration, and tokens that appear in request paths.

// startFromConfig parses configuration text as `arca server -config` does,
// starts the server, and returns it with its address. The server is shut
// down when the test ends (shutting it down earlier is fine).
func startFromConfig(t *testing.T, text string) (*server.Server, string) {
	t.Helper()
	conf, err := server.ParseConfig(text)
	if err != nil {
		t.Fatalf("parsing the configuration: %v\n%s", err, text)
	}
	srv, err := server.New(conf, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("creating the server: %v", err)
	}
	addrs, err := srv.Start()
	if err != nil {
		t.Fatalf("starting the server: %v", err)
	}
	t.Cleanup(func() { shutdown(srv) })
	return srv, "http://" + addrs[0]
}

func shutdown(srv *server.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
}

// boltConfig is a server configuration on a bolt file in dir, with extra
// appended.
func boltConfig(dir, extra string) string {
	return fmt.Sprintf(`storage "bolt" { path = %q }
listener "tcp" {
  address     = "127.0.0.1:0"
  tls_disable = true
}
`, filepath.Join(dir, "arca.db")) + extra
}

func declaredFile(path, logPath, description string) string {
	return fmt.Sprintf(`audit "file" %q {
  description = %q
  options {
    file_path = %q
  }
}
`, path, description, logPath)
}

func TestAuditFileModeNeverExecutableNorWidened(t *testing.T) {
	_, addr, root := servertest.StartDevServer(t, nil)
	c := newClient(t, addr, root)
	dir := t.TempDir()
	enable := func(path, file, mode string) error {
		return c.Sys().EnableAuditWithOptions(path, &vault.EnableAuditOptions{Type: "file",
			Options: map[string]string{"file_path": filepath.Join(dir, file), "mode": mode}})
	}

	for _, mode := range []string{"0755", "0700", "0601", "0610", "1600", "4600", "01600", "0o600", "rw"} {
		err := enable("bad", "bad.log", mode)
		if statusOf(err) != 400 || !strings.Contains(err.Error(), "mode") {
			t.Errorf("mode %s: got %v, want a 400 naming mode", mode, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.log")); err == nil {
		t.Fatal("a refused device created its file")
	}

	// An existing file is never made more permissive...
	kept := filepath.Join(dir, "kept.log")
	if err := os.WriteFile(kept, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := enable("kept", "kept.log", "0644"); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(kept); fi.Mode().Perm() != 0o600 {
		t.Errorf("existing 0600 file with mode=0644 became %v", fi.Mode().Perm())
	}
	// ...but may be narrowed to the mode asked for.
	narrowed := filepath.Join(dir, "narrowed.log")
	if err := os.WriteFile(narrowed, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(narrowed, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := enable("narrowed", "narrowed.log", "0640"); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(narrowed); fi.Mode().Perm() != 0o640 {
		t.Errorf("existing 0666 file with mode=0640 is %v, want 0640", fi.Mode().Perm())
	}
	// A file the device creates gets the mode asked for.
	if err := enable("created", "created.log", "0640"); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "created.log")); fi.Mode().Perm() != 0o640 {
		t.Errorf("created file is %v, want 0640", fi.Mode().Perm())
	}
	// A device enabled again on a file grown too permissive narrows it.
	if err := os.Chmod(kept, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().DisableAudit("kept"); err != nil {
		t.Fatal(err)
	}
	if err := enable("kept", "kept.log", "0600"); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(kept); fi.Mode().Perm() != 0o600 {
		t.Errorf("existing 0644 file with mode=0600 is %v, want 0600", fi.Mode().Perm())
	}

	// Only regular files: a FIFO nobody reads is refused at once rather
	// than blocking the request.
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	err := c.Sys().EnableAuditWithOptions("fifo", &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": fifo}})
	if statusOf(err) != 400 {
		t.Errorf("a FIFO as file_path: got %v, want 400", err)
	}
	err = c.Sys().EnableAuditWithOptions("dir", &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": dir}})
	if statusOf(err) != 400 {
		t.Errorf("a directory as file_path: got %v, want 400", err)
	}
	audits, err := c.Sys().ListAudit()
	if err != nil || len(audits) != 3 || audits["bad/"] != nil || audits["fifo/"] != nil {
		t.Fatalf("sys/audit lists %v (%v), want kept/, narrowed/ and created/", audits, err)
	}
}

func TestAuditPrefixNeedsServerSetting(t *testing.T) {
	_, addr, root := servertest.StartDevServer(t, nil)
	c := newClient(t, addr, root)
	logPath := filepath.Join(t.TempDir(), "audit.log")
	err := c.Sys().EnableAuditWithOptions("file", &vault.EnableAuditOptions{Type: "file",
		Options: map[string]string{"file_path": logPath, "prefix": "#!/bin/sh\n"}})
	if statusOf(err) != 400 || !strings.Contains(err.Error(), "prefix") || !strings.Contains(err.Error(), "allow_audit_log_prefixing") {
		t.Fatalf("prefix on a server that does not allow it: %v", err)
	}
	if audits, _ := c.Sys().ListAudit(); len(audits) != 0 {
		t.Fatalf("the refused device is listed: %v", audits)
	}
	if _, err := os.Stat(logPath); err == nil {
		t.Fatal("the refused device created its file")
	}

	// A server whose configuration allows it writes the prefix.
	dir := t.TempDir()
	_, addr = startFromConfig(t, boltConfig(dir, "unsafe_allow_api_audit_creation = true\nallow_audit_log_prefixing = true\n"))
	c = newClient(t, addr, "")
	root, _ = initAndUnseal(t, c)
	c.SetToken(root)
	if err := c.Sys().EnableAuditWithOptions("file", &vault.EnableAuditOptions{Type: "file",
		Options: map[string]string{"file_path": logPath, "prefix": "ARCA "}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Auth().Token().LookupSelf(); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(logPath)
	if !bytes.HasPrefix(raw, []byte(`ARCA {"time":`)) {
		t.Fatalf("the audit file does not start with the prefix:\n%s", raw)
	}
}

// initAndUnseal initialises a server with one key share, unseals it and
// returns the root token and the unseal key.
func initAndUnseal(t *testing.T, c *vault.Client) (root, key string) {
	t.Helper()
	res, err := c.Sys().Init(&vault.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	if _, err := c.Sys().Unseal(res.Keys[0]); err != nil {
		t.Fatalf("unseal: %v", err)
	}
	return res.RootToken, res.Keys[0]
}
