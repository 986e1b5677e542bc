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
// down when the test ends (shutting it down earlier is fine). When log is
// not nil, the server logs to it.
func startFromConfig(t *testing.T, text string, log ...io.Writer) (*server.Server, string) {
	t.Helper()
	conf, err := server.ParseConfig(text)
	if err != nil {
		t.Fatalf("parsing the configuration: %v\n%s", err, text)
	}
	w := io.Discard
	if len(log) > 0 {
		w = log[0]
	}
	srv, err := server.New(conf, slog.New(slog.NewTextHandler(w, nil)))
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

// TestAuditDeviceDeclaredInConfig starts a server from a configuration file
// with an audit stanza: the device is enabled at unseal and records
// requests, the API can neither enable another device nor disable this
// one, a changed stanza keeps the device's salt across a restart, a removed
// stanza disables the device, and a stanza at the path of a device enabled
// through the API stops the unseal with the path named.
func TestAuditDeviceDeclaredInConfig(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "audit.log")
	srv, addr := startFromConfig(t, boltConfig(dir, declaredFile("declared", logPath, "from the file")))
	c := newClient(t, addr, "")
	root, key := initAndUnseal(t, c)
	c.SetToken(root)

	audits, err := c.Sys().ListAudit()
	if err != nil || len(audits) != 1 || audits["declared/"] == nil || audits["declared/"].Type != "file" ||
		audits["declared/"].Description != "from the file" || audits["declared/"].Options["file_path"] != logPath {
		t.Fatalf("sys/audit lists %+v (err %v), want the declared device", audits, err)
	}
	if _, err := c.Auth().Token().LookupSelf(); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(logPath)
	if lines := parseAuditLines(t, raw); findEntry(lines, "response", "read", "auth/token/lookup-self") == nil {
		t.Fatalf("the declared device did not record lookup-self:\n%s", raw)
	}
	if fi, _ := os.Stat(logPath); fi.Mode().Perm() != 0o600 {
		t.Errorf("the declared device's file is %v, want 0600", fi.Mode().Perm())
	}

	other := filepath.Join(dir, "other.log")
	err = c.Sys().EnableAuditWithOptions("other", &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": other}})
	if statusOf(err) != 400 || !strings.Contains(err.Error(), "unsafe_allow_api_audit_creation") {
		t.Fatalf("enabling through the API without unsafe_allow_api_audit_creation: %v", err)
	}
	if _, err := os.Stat(other); err == nil {
		t.Fatal("the refused device created its file")
	}
	err = c.Sys().DisableAudit("declared")
	if statusOf(err) != 400 || !strings.Contains(err.Error(), "declared/") || !strings.Contains(err.Error(), "server configuration") {
		t.Fatalf("disabling the declared device through the API: %v", err)
	}
	before, err := c.Sys().AuditHash("declared", "some value")
	if err != nil {
		t.Fatal(err)
	}

	// A changed stanza changes the device and keeps its salt.
	restart := func(extra string) *vault.Client {
		t.Helper()
		shutdown(srv)
		srv, addr = startFromConfig(t, boltConfig(dir, extra))
		c := newClient(t, addr, root)
		if _, err := c.Sys().Unseal(key); err != nil {
			t.Fatalf("unseal after restart: %v", err)
		}
		return c
	}
	c = restart(declaredFile("declared", logPath, "changed in the file") + "unsafe_allow_api_audit_creation = true\n")
	audits, err = c.Sys().ListAudit()
	if err != nil || audits["declared/"] == nil || audits["declared/"].Description != "changed in the file" {
		t.Fatalf("after changing the stanza sys/audit lists %+v (%v)", audits, err)
	}
	if after, err := c.Sys().AuditHash("declared", "some value"); err != nil || after != before {
		t.Fatalf("audit-hash after a changed stanza = %q, %v; want %q (the same salt)", after, err, before)
	}
	// Allowing API creation does not make a declared device the API's.
	if err := c.Sys().DisableAudit("declared"); statusOf(err) != 400 {
		t.Fatalf("disabling the declared device through the API: %v", err)
	}

	// A removed stanza disables the device.
	c = restart("unsafe_allow_api_audit_creation = true\n")
	if audits, err := c.Sys().ListAudit(); err != nil || len(audits) != 0 {
		t.Fatalf("after removing the stanza sys/audit lists %+v (%v), want none", audits, err)
	}

	// A stanza does not take over a device enabled through the API.
	if err := c.Sys().EnableAuditWithOptions("declared", &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": other}}); err != nil {
		t.Fatal(err)
	}
	shutdown(srv)
	var serverLog lockedBuffer
	srv, addr = startFromConfig(t, boltConfig(dir, declaredFile("declared", logPath, "")), &serverLog)
	c = newClient(t, addr, root)
	if _, err := c.Sys().Unseal(key); err == nil {
		t.Fatal("unseal with a stanza at the path of an API device succeeded")
	}
	if l := serverLog.String(); !strings.Contains(l, "declared/") || !strings.Contains(l, "through the API") {
		t.Fatalf("the server log does not say which stanza stopped the unseal:\n%s", l)
	}
	if st, err := c.Sys().SealStatus(); err != nil || !st.Sealed {
		t.Fatalf("the server unsealed anyway: %+v, %v", st, err)
	}
}

// TestAuditStanzaErrorsStopTheServer checks that a bad audit stanza or
// setting is an error when the server starts, naming what is wrong.
func TestAuditStanzaErrorsStopTheServer(t *testing.T) {
	base := `storage "inmem" {}
listener "tcp" {
  address     = "127.0.0.1:0"
  tls_disable = true
}
`
	for _, tc := range []struct {
		name, config string
		want         []string
	}{
		{"unknown type", `audit "tape" "t" { options { x = "1" } }`, []string{"t/", "tape"}},
		{"executable mode", `audit "file" "f" { options { file_path = "/tmp/a.log", mode = "0755" } }`, []string{"f/", "mode"}},
		{"misspelt option", `audit "file" "f" { options { file_path = "/tmp/a.log", file_pth = "/tmp/b.log" } }`, []string{"f/", "file_pth"}},
		{"no file_path", `audit "file" "f" { description = "x" }`, []string{"f/", "file_path"}},
		{"prefix not allowed", `audit "file" "f" { options { file_path = "stdout", prefix = "x" } }`, []string{"f/", "prefix", "allow_audit_log_prefixing"}},
		{"same path twice", "audit \"file\" \"f\" { options { file_path = \"stdout\" } }\naudit \"file\" \"f/\" { options { file_path = \"discard\" } }", []string{"f/", "conflicts"}},
		{"nested paths", "audit \"file\" \"a\" { options { file_path = \"stdout\" } }\naudit \"file\" \"a/b\" { options { file_path = \"discard\" } }", []string{"a/", "conflicts"}},
		{"unknown key", `audit "file" "f" { bogus = 1 }`, []string{"bogus"}},
		{"no path label", `audit "file" { options { file_path = "stdout" } }`, []string{`audit "<type>" "<path>"`}},
		{"options not a block", `audit "file" "f" { options = "x" }`, []string{"options"}},
		{"local not a bool", `audit "file" "f" { local = "maybe"
  options { file_path = "stdout" } }`, []string{"local"}},
		{"setting not a bool", `unsafe_allow_api_audit_creation = "yes please"`, []string{"unsafe_allow_api_audit_creation"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf, err := server.ParseConfig(base + tc.config)
			if err == nil {
				var srv *server.Server
				srv, err = server.New(conf, slog.New(slog.NewTextHandler(io.Discard, nil)))
				if err == nil {
					shutdown(srv)
				}
			}
			if err == nil {
				t.Fatal("the server started")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}

	// The same stanza in JSON, and prefix where it is allowed, start.
	for _, text := range []string{
		`{"storage": {"inmem": {}}, "listener": {"tcp": {"address": "127.0.0.1:0", "tls_disable": true}},
		  "audit": [{"file": {"to-stdout": {"description": "d", "local": true, "options": {"file_path": "discard"}}}}]}`,
		base + "allow_audit_log_prefixing = true\n" + `audit "file" "f" { options { file_path = "discard", prefix = "x" } }`,
	} {
		conf, err := server.ParseConfig(text)
		if err != nil {
			t.Fatalf("parsing %s: %v", text, err)
		}
		if len(conf.Audit) != 1 || conf.Audit[0].Type != "file" || conf.Audit[0].Options["file_path"] != "discard" {
			t.Fatalf("parsed audit stanzas %+v", conf.Audit)
		}
		srv, err := server.New(conf, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatalf("starting from %s: %v", text, err)
		}
		shutdown(srv)
	}
}

// TestAuditTokensInPathsAreHMACd uses the token method's paths that carry a
// token or an accessor (lookup, renew, revoke, revoke-orphan,
// lookup-accessor, revoke-accessor) and reads the audit files: no token
// appears in plaintext, its HMAC from sys/audit-hash does, and accessors in
// paths follow hmac_accessor.
func TestAuditTokensInPathsAreHMACd(t *testing.T) {
	_, addr, root := servertest.StartDevServer(t, nil)
	c := newClient(t, addr, root)
	dir := t.TempDir()
	hashed, plainAccessors := filepath.Join(dir, "hashed.log"), filepath.Join(dir, "plain-accessors.log")
	if err := c.Sys().EnableAuditWithOptions("file", &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": hashed}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().EnableAuditWithOptions("plain", &vault.EnableAuditOptions{Type: "file",
		Options: map[string]string{"file_path": plainAccessors, "hmac_accessor": "false"}}); err != nil {
		t.Fatal(err)
	}
	newToken := func() (token, accessor string) {
		t.Helper()
		s, err := c.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"default"}})
		if err != nil {
			t.Fatal(err)
		}
		return s.Auth.ClientToken, s.Auth.Accessor
	}
	tok, acc := newToken()
	orphan, _ := newToken()
	byAccessor, byAccessorAcc := newToken()
	mistyped, _ := newToken()

	if s, err := c.Logical().Read("auth/token/lookup/" + tok); err != nil || s == nil || s.Data["accessor"] != acc {
		t.Fatalf("lookup/<token>: %v, %v", s, err)
	}
	for _, p := range []string{"auth/token/renew/" + tok, "auth/token/lookup-accessor/" + acc} {
		if _, err := c.Logical().Write(p, map[string]any{}); err != nil {
			t.Fatalf("%s: %v", strings.SplitAfterN(p, "/", 4)[2], err)
		}
	}
	for _, p := range []string{"auth/token/revoke-orphan/" + orphan, "auth/token/revoke/" + tok, "auth/token/revoke-accessor/" + byAccessorAcc} {
		if _, err := c.Logical().Write(p, map[string]any{}); err != nil {
			t.Fatalf("%s: %v", strings.SplitAfterN(p, "/", 4)[2], err)
		}
	}
	if s, err := c.Logical().Read("auth/token/Lookup/" + mistyped); err == nil && s != nil {
		t.Fatalf("a mistyped path answered %v", s.Data)
	}

	hash := func(device, v string) string {
		t.Helper()
		h, err := c.Sys().AuditHash(device, v)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	for _, f := range []struct {
		device, path   string
		accessorsPlain bool
	}{{"file", hashed, false}, {"plain", plainAccessors, true}} {
		raw, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		for name, secret := range map[string]string{"token": tok, "orphan token": orphan, "token revoked by accessor": byAccessor, "token in a mistyped path": mistyped} {
			if bytes.Contains(raw, []byte(secret)) {
				t.Errorf("%s: the %s is in the audit file in plaintext", f.device, name)
			}
		}
		for _, accessor := range []string{acc, byAccessorAcc} {
			if got := bytes.Contains(raw, []byte(accessor)); got != f.accessorsPlain {
				t.Errorf("%s: accessor in plaintext = %v, want %v", f.device, got, f.accessorsPlain)
			}
		}
		lines := parseAuditLines(t, raw)
		accessorInPath := func(a string) string {
			if f.accessorsPlain {
				return a
			}
			return hash(f.device, a)
		}
		for _, want := range []struct{ op, path string }{
			{"read", "auth/token/lookup/" + hash(f.device, tok)},
			{"update", "auth/token/renew/" + hash(f.device, tok)},
			{"update", "auth/token/revoke-orphan/" + hash(f.device, orphan)},
			{"update", "auth/token/revoke/" + hash(f.device, tok)},
			{"update", "auth/token/lookup-accessor/" + accessorInPath(acc)},
			{"update", "auth/token/revoke-accessor/" + accessorInPath(byAccessorAcc)},
			{"read", "auth/token/Lookup/" + hash(f.device, mistyped)},
		} {
			if findEntry(lines, "request", want.op, want.path) == nil {
				t.Errorf("%s: no %s request entry for %s", f.device, want.op, want.path)
			}
		}
	}
}

// TestAuditDeclaredDeviceFailsClosedUntilItCanWrite declares a file device
// in a directory that does not exist yet: the server still initialises and
// unseals, refuses requests it cannot record while the device is its only
// one, says which device in its log, and records again once the directory
// exists.
func TestAuditDeclaredDeviceFailsClosedUntilItCanWrite(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "later", "audit.log")
	var serverLog lockedBuffer
	_, addr := startFromConfig(t, boltConfig(dir, declaredFile("later", logPath, "")), &serverLog)
	c := newClient(t, addr, "")
	root, _ := initAndUnseal(t, c)
	c.SetToken(root)

	if _, err := c.Auth().Token().LookupSelf(); statusOf(err) != 500 || !strings.Contains(err.Error(), "could not be recorded") {
		t.Fatalf("a request the only device cannot record: %v", err)
	}
	if l := serverLog.String(); !strings.Contains(l, "later/") || !strings.Contains(l, "no such file or directory") {
		t.Fatalf("the server log does not name the device and its trouble:\n%s", l)
	}
	if err := os.Mkdir(filepath.Dir(logPath), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Auth().Token().LookupSelf(); err != nil {
		t.Fatalf("once the directory exists: %v", err)
	}
	raw, _ := os.ReadFile(logPath)
	if findEntry(parseAuditLines(t, raw), "response", "read", "auth/token/lookup-self") == nil {
		t.Fatalf("the device did not record lookup-self:\n%s", raw)
	}
}

// TestAuditDeclaredDeviceMovedBelowItsOldPath moves a declared device from
// a/ to a/b/ in the configuration: the old device goes before the new path
// is checked for overlaps, so the server unseals with only the new one.
func TestAuditDeclaredDeviceMovedBelowItsOldPath(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "audit.log")
	srv, addr := startFromConfig(t, boltConfig(dir, declaredFile("a", logPath, "")))
	c := newClient(t, addr, "")
	root, key := initAndUnseal(t, c)
	shutdown(srv)

	_, addr = startFromConfig(t, boltConfig(dir, declaredFile("a/b", logPath, "")))
	c = newClient(t, addr, root)
	if _, err := c.Sys().Unseal(key); err != nil {
		t.Fatalf("unseal after moving the device: %v", err)
	}
	audits, err := c.Sys().ListAudit()
	if err != nil || len(audits) != 1 || audits["a/b/"] == nil {
		t.Fatalf("sys/audit lists %+v (%v), want only a/b/", audits, err)
	}
}
