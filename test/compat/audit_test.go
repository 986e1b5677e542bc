package compat

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/server"
	"github.com/arcasec/arca/internal/server/servertest"
)

// auditLine is the part of an audit entry the tests look at.
type auditLine struct {
	Type  string `json:"type"`
	Error string `json:"error"`
	Auth  struct {
		ClientToken string   `json:"client_token"`
		Accessor    string   `json:"accessor"`
		Policies    []string `json:"policies"`
	} `json:"auth"`
	Request struct {
		ID                  string         `json:"id"`
		Operation           string         `json:"operation"`
		Path                string         `json:"path"`
		MountType           string         `json:"mount_type"`
		ClientToken         string         `json:"client_token"`
		ClientTokenAccessor string         `json:"client_token_accessor"`
		RemoteAddress       string         `json:"remote_address"`
		Data                map[string]any `json:"data"`
	} `json:"request"`
	Response *struct {
		Data map[string]any `json:"data"`
	} `json:"response"`
}

func parseAuditLines(t *testing.T, raw []byte) []auditLine {
	t.Helper()
	var out []auditLine
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l auditLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("audit line is not JSON: %v: %q", err, sc.Text())
		}
		out = append(out, l)
	}
	return out
}

func findEntry(lines []auditLine, typ, op, path string) *auditLine {
	for i := range lines {
		l := &lines[i]
		if l.Type == typ && l.Request.Operation == op && l.Request.Path == path {
			return l
		}
	}
	return nil
}

// TestAuditFileHMAC enables a file audit device through the Vault Go client
// and checks the entries of a KV write and read: every secret and token is
// an HMAC that sys/audit-hash reproduces, and the plaintext is in neither
// the audit file nor the server log.
func TestAuditFileHMAC(t *testing.T) { servertest.EachStorage(t, testAuditFileHMAC) }

func testAuditFileHMAC(t *testing.T, store server.StorageConfig) {
	ctx := context.Background()
	var serverLog lockedBuffer
	_, addr, root := servertest.StartDevServerOn(t, store, &serverLog)
	c := newClient(t, addr, root)
	logPath := filepath.Join(t.TempDir(), "audit.log")
	if err := c.Sys().EnableAuditWithOptionsWithContext(ctx, "file", &vault.EnableAuditOptions{
		Type: "file", Options: map[string]string{"file_path": logPath},
	}); err != nil {
		t.Fatalf("enable audit: %v", err)
	}
	audits, err := c.Sys().ListAuditWithContext(ctx)
	if err != nil || audits["file/"] == nil || audits["file/"].Type != "file" || audits["file/"].Options["file_path"] != logPath {
		t.Fatalf("sys/audit lists %+v (err %v), want the file device", audits, err)
	}
	if fi, err := os.Stat(logPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("audit file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}

	const marker = "plaintext-marker-7f3a9c"
	kv := c.KVv2("secret")
	if _, err := kv.Put(ctx, "app", map[string]any{"password": marker}); err != nil {
		t.Fatal(err)
	}
	got, err := kv.Get(ctx, "app")
	if err != nil || got.Data["password"] != marker {
		t.Fatalf("read back %v, %v", got, err)
	}

	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(marker)) {
		t.Fatal("the audit file holds the secret in plaintext")
	}
	if bytes.Contains(raw, []byte(root)) {
		t.Fatal("the audit file holds the root token in plaintext")
	}
	if strings.Contains(serverLog.String(), marker) || strings.Contains(serverLog.String(), root) {
		t.Fatal("the server log holds a secret in plaintext")
	}
	lines := parseAuditLines(t, raw)

	wantHash, err := c.Sys().AuditHashWithContext(ctx, "file", marker)
	if err != nil || !strings.HasPrefix(wantHash, "hmac-sha256:") {
		t.Fatalf("audit-hash: %q, %v", wantHash, err)
	}
	tokenHash, _ := c.Sys().AuditHashWithContext(ctx, "file", root)

	write := findEntry(lines, "request", "create", "secret/data/app")
	if write == nil {
		write = findEntry(lines, "request", "update", "secret/data/app")
	}
	if write == nil {
		t.Fatalf("no request entry for the write among %d lines", len(lines))
	}
	data, _ := write.Request.Data["data"].(map[string]any)
	if data["password"] != wantHash {
		t.Fatalf("write entry holds password %v, want %s", data["password"], wantHash)
	}
	if write.Request.ClientToken != tokenHash || write.Auth.ClientToken != tokenHash {
		t.Fatalf("write entry's token is %q / %q, want the HMAC %s", write.Request.ClientToken, write.Auth.ClientToken, tokenHash)
	}
	if write.Request.MountType != "kv" || write.Request.RemoteAddress != "127.0.0.1" {
		t.Fatalf("write entry: mount_type %q remote_address %q", write.Request.MountType, write.Request.RemoteAddress)
	}

	read := findEntry(lines, "response", "read", "secret/data/app")
	if read == nil || read.Response == nil {
		t.Fatal("no response entry for the read")
	}
	inner, _ := read.Response.Data["data"].(map[string]any)
	if inner["password"] != wantHash {
		t.Fatalf("read response entry holds password %v, want %s", inner["password"], wantHash)
	}
	if req := findEntry(lines, "request", "read", "secret/data/app"); req == nil || req.Request.ID != read.Request.ID {
		t.Fatal("the read's request and response entries do not share a request ID")
	}
	// The server log names the same request ID at debug level.
	if !strings.Contains(serverLog.String(), `"request_id":"`+read.Request.ID+`"`) {
		t.Fatalf("the server log has no line for request %s", read.Request.ID)
	}

	// A denied request is audited with its error.
	other, err := c.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"default"}})
	if err != nil {
		t.Fatal(err)
	}
	c2 := newClient(t, addr, other.Auth.ClientToken)
	if _, err := c2.KVv2("secret").Get(ctx, "app"); statusOf(err) != 403 {
		t.Fatalf("read without a policy: %v, want 403", err)
	}
	raw, _ = os.ReadFile(logPath)
	denied := false
	for _, l := range parseAuditLines(t, raw) {
		if l.Request.Path == "secret/data/app" && l.Error == "permission denied" {
			denied = true
		}
	}
	if !denied {
		t.Fatal("the denied read is not in the audit log")
	}

	if err := c.Sys().DisableAuditWithContext(ctx, "file"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Sys().AuditHashWithContext(ctx, "file", marker); statusOf(err) != 400 {
		t.Fatalf("audit-hash on a disabled device: %v, want 400", err)
	}
}

// TestAuditFailClosed makes the only audit device unable to write: secret
// reads fail and return nothing; once the file can be written again, reads
// work again.
func TestAuditFailClosed(t *testing.T) {
	ctx := context.Background()
	srv, addr, root := servertest.StartDevServer(t, nil)
	c := newClient(t, addr, root)
	kv := c.KVv2("secret")
	if _, err := kv.Put(ctx, "app", map[string]any{"password": "pw-1"}); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "audit.log")
	if err := c.Sys().EnableAuditWithOptions("file", &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": logPath}}); err != nil {
		t.Fatal(err)
	}
	// Enabling a device that cannot open its file is refused.
	err := c.Sys().EnableAuditWithOptions("bad", &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": "/nonexistent-dir/audit.log"}})
	if statusOf(err) != 400 {
		t.Fatalf("enabling an unwritable device: %v, want 400", err)
	}
	err = c.Sys().EnableAuditWithOptions("typo", &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": logPath + "2", "fromat": "json"}})
	if statusOf(err) != 400 || !strings.Contains(err.Error(), "fromat") {
		t.Fatalf("enabling with a misspelt option: %v, want 400 naming it", err)
	}

	// Swap the file for a directory, as a full or broken disk would leave
	// it, and reopen as SIGHUP does.
	if err := os.Remove(logPath); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(logPath, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := srv.Core.ReopenAudit(); err == nil {
		t.Fatal("reopening onto a directory succeeded")
	}
	s, err := kv.Get(ctx, "app")
	if err == nil || statusOf(err) != 500 || s != nil {
		t.Fatalf("read with no working audit device: %v, %v; want a 500 and no secret", s, err)
	}
	if !strings.Contains(err.Error(), "audit") {
		t.Fatalf("the error does not say why: %v", err)
	}
	if _, err := kv.Put(ctx, "app", map[string]any{"password": "pw-2"}); err == nil {
		t.Fatal("a write succeeded with no working audit device")
	}

	// Restore the file: the device reopens on its next write.
	if err := os.Remove(logPath); err != nil {
		t.Fatal(err)
	}
	s, err = kv.Get(ctx, "app")
	if err != nil || s.Data["password"] != "pw-1" {
		t.Fatalf("read after restoring the audit file: %v, %v", s, err)
	}
	raw, _ := os.ReadFile(logPath)
	if findEntry(parseAuditLines(t, raw), "response", "read", "secret/data/app") == nil {
		t.Fatal("the read after the restore is not in the new audit file")
	}
}

// TestAuditSocket checks that a socket device with a live listener receives
// the same entries as a file device, and that a dead socket, as the only
// device, stops requests.
func TestAuditSocket(t *testing.T) {
	ctx := context.Background()
	_, addr, root := servertest.StartDevServer(t, nil)
	c := newClient(t, addr, root)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var received bytes.Buffer
	var conns []net.Conn
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			go func() {
				buf := make([]byte, 64<<10)
				for {
					n, err := conn.Read(buf)
					mu.Lock()
					received.Write(buf[:n])
					mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	logPath := filepath.Join(t.TempDir(), "audit.log")
	if err := c.Sys().EnableAuditWithOptions("file", &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": logPath}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().EnableAuditWithOptions("socket", &vault.EnableAuditOptions{Type: "socket", Options: map[string]string{"address": ln.Addr().String(), "socket_type": "tcp"}}); err != nil {
		t.Fatal(err)
	}
	kv := c.KVv2("secret")
	if _, err := kv.Put(ctx, "sock", map[string]any{"k": "socket-secret"}); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, "sock"); err != nil {
		t.Fatal(err)
	}
	fileRaw, _ := os.ReadFile(logPath)
	fileLines := parseAuditLines(t, fileRaw)
	var sockLines []auditLine
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		raw := append([]byte(nil), received.Bytes()...)
		mu.Unlock()
		// The socket saw everything the file saw after it was enabled.
		sockLines = parseAuditLines(t, raw[:bytes.LastIndexByte(append([]byte{'\n'}, raw...), '\n')])
		if findEntry(sockLines, "response", "read", "secret/data/sock") != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	fromFile := findEntry(fileLines, "response", "read", "secret/data/sock")
	fromSock := findEntry(sockLines, "response", "read", "secret/data/sock")
	if fromFile == nil || fromSock == nil {
		t.Fatalf("read entry in file: %v, in socket: %v", fromFile != nil, fromSock != nil)
	}
	if fromFile.Request.ID != fromSock.Request.ID {
		t.Fatal("file and socket entries name different requests")
	}
	sockHash, _ := c.Sys().AuditHash("socket", "socket-secret")
	if d, _ := fromSock.Response.Data["data"].(map[string]any); d["k"] != sockHash {
		t.Fatalf("socket entry holds %v, want its own device's HMAC %s", d["k"], sockHash)
	}

	// With the file device gone and the listener closed, nothing can record
	// a request, so requests fail.
	if err := c.Sys().DisableAudit("file"); err != nil {
		t.Fatal(err)
	}
	ln.Close()
	mu.Lock()
	for _, conn := range conns {
		conn.Close()
	}
	mu.Unlock()
	var failed bool
	for i := 0; i < 3 && !failed; i++ { // the first write may land in a socket buffer before the peer's reset arrives
		_, err = kv.Get(ctx, "sock")
		failed = err != nil
	}
	if !failed {
		t.Fatal("reads kept working with the only audit device's listener gone")
	}
}

// TestAccessReport reads a secret with two tokens and lists it with a
// third: the report names the two readers and not the lister.
func TestAccessReport(t *testing.T) {
	ctx := context.Background()
	_, addr, root := servertest.StartDevServer(t, nil)
	c := newClient(t, addr, root)
	if err := c.Sys().PutPolicy("reader", `path "secret/data/app" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().PutPolicy("lister", `path "secret/metadata/*" { capabilities = ["list"] }`); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KVv2("secret").Put(ctx, "app", map[string]any{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	mk := func(policy string) *vault.SecretAuth {
		s, err := c.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{policy}, DisplayName: policy})
		if err != nil {
			t.Fatal(err)
		}
		return s.Auth
	}
	a, b, l := mk("reader"), mk("reader"), mk("lister")
	for i, tok := range []*vault.SecretAuth{a, b, a} {
		if _, err := newClient(t, addr, tok.ClientToken).KVv2("secret").Get(ctx, "app"); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	if s, err := newClient(t, addr, l.ClientToken).Logical().List("secret/metadata/"); err != nil || s == nil {
		t.Fatalf("list: %v, %v", s, err)
	}

	rep, err := c.Logical().Read("sys/access-report/secret/data/app")
	if err != nil || rep == nil {
		t.Fatalf("access report: %v, %v", rep, err)
	}
	if n, _ := rep.Data["reads"].(json.Number).Int64(); n != 3 {
		t.Fatalf("reads = %v, want 3", rep.Data["reads"])
	}
	readers, _ := rep.Data["readers"].([]any)
	got := map[string]int64{}
	for _, r := range readers {
		m := r.(map[string]any)
		n, _ := m["reads"].(json.Number).Int64()
		got[m["accessor"].(string)] = n
		if m["auth_mount"] != "auth/token/" {
			t.Errorf("reader %v came from auth mount %v, want auth/token/", m["accessor"], m["auth_mount"])
		}
		if addrs, _ := m["remote_addresses"].([]any); len(addrs) != 1 || addrs[0] != "127.0.0.1" {
			t.Errorf("reader remote addresses %v", m["remote_addresses"])
		}
	}
	if len(got) != 2 || got[a.Accessor] != 2 || got[b.Accessor] != 1 {
		t.Fatalf("readers %v; want %s twice and %s once", got, a.Accessor, b.Accessor)
	}
	if _, ok := got[l.Accessor]; ok {
		t.Fatal("the token that only listed is named as a reader")
	}
	pols, _ := rep.Data["policies"].(map[string]any)
	if _, ok := pols["reader"]; !ok || pols["lister"] != nil {
		t.Fatalf("policies %v", pols)
	}

	// The report needs sudo: a reader cannot look at who else read.
	if _, err := newClient(t, addr, a.ClientToken).Logical().Read("sys/access-report/secret/data/app"); statusOf(err) != 403 {
		t.Fatalf("access report without sudo: %v, want 403", err)
	}
	keys, err := c.Logical().List("sys/access-report/")
	if err != nil || keys == nil || !strings.Contains(strings.Join(toStrings(keys.Data["keys"]), ","), "secret/data/app") {
		t.Fatalf("listing the report: %v, %v", keys, err)
	}
}

func toStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// lockedBuffer is a bytes.Buffer safe for the server's logger and the test
// to use at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestAuditSocketStalled points a socket device at a listener that accepts
// and never reads. Once the socket's buffers fill, each write waits at most
// write_timeout; the file device keeps recording, so requests keep being
// served rather than hanging behind the stuck peer.
func TestAuditSocketStalled(t *testing.T) {
	ctx := context.Background()
	_, addr, root := servertest.StartDevServer(t, nil)
	c := newClient(t, addr, root)
	sock := filepath.Join(t.TempDir(), "stall.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, conn) // never read
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()
	logPath := filepath.Join(t.TempDir(), "audit.log")
	if err := c.Sys().EnableAuditWithOptions("file", &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": logPath}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().EnableAuditWithOptions("stuck", &vault.EnableAuditOptions{Type: "socket", Options: map[string]string{
		"address": sock, "socket_type": "unix", "write_timeout": "200ms"}}); err != nil {
		t.Fatal(err)
	}
	// A payload big enough that a few hundred entries fill the socket.
	big := strings.Repeat("x", 16<<10)
	if _, err := c.KVv2("secret").Put(ctx, "big", map[string]any{"v": big}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		for i := 0; i < 300; i++ {
			if _, err := c.KVv2("secret").Get(ctx, "big"); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("a read failed with a working file device: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("requests hang behind a stalled audit socket")
	}
	mu.Lock()
	conns := len(held)
	mu.Unlock()
	if conns < 2 {
		t.Fatalf("the device connected %d times; a stalled socket should have been dropped and redialled", conns)
	}
}

// TestAuditSyslog enables a syslog device: it works where a local syslog
// daemon listens, and is refused with a clear 400 where none does.
func TestAuditSyslog(t *testing.T) {
	_, addr, root := servertest.StartDevServer(t, nil)
	c := newClient(t, addr, root)
	err := c.Sys().EnableAuditWithOptions("syslog", &vault.EnableAuditOptions{Type: "syslog", Options: map[string]string{"tag": "arca-test"}})
	if _, statErr := os.Stat("/dev/log"); statErr != nil {
		if statusOf(err) != 400 || !strings.Contains(err.Error(), "syslog") {
			t.Fatalf("syslog device without a daemon: %v, want a 400 that says so", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("syslog device with /dev/log present: %v", err)
	}
	if _, err := c.KVv2("secret").Get(context.Background(), "nothing"); statusOf(err) != 404 {
		t.Fatalf("read with a syslog device: %v", err)
	}
	if err := c.Sys().EnableAuditWithOptions("syslog2", &vault.EnableAuditOptions{Type: "syslog", Options: map[string]string{"facility": "NOPE"}}); statusOf(err) != 400 {
		t.Fatalf("unknown facility: %v, want 400", err)
	}
}

// TestAuditSeal checks that sealing, which the HTTP layer serves itself, is
// recorded like any other request, with the HMAC of the token that did it.
func TestAuditSeal(t *testing.T) {
	_, addr, root := servertest.StartDevServer(t, nil)
	c := newClient(t, addr, root)
	logPath := filepath.Join(t.TempDir(), "audit.log")
	if err := c.Sys().EnableAuditWithOptions("file", &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": logPath}}); err != nil {
		t.Fatal(err)
	}
	tokenHash, _ := c.Sys().AuditHash("file", root)
	if err := c.Sys().StepDown(); err != nil {
		t.Fatalf("step-down: %v", err)
	}
	if err := c.Sys().Seal(); err != nil {
		t.Fatalf("seal: %v", err)
	}
	raw, _ := os.ReadFile(logPath)
	lines := parseAuditLines(t, raw)
	for _, p := range []string{"sys/step-down", "sys/seal"} {
		e := findEntry(lines, "request", "update", p)
		if e == nil || e.Auth.ClientToken != tokenHash {
			t.Fatalf("no request entry for %s with the root token's HMAC in:\n%s", p, raw)
		}
	}
}

// TestServerLogRedactsTokensInPaths: a token that is part of a request's
// path (auth/token/lookup/<token> and the like) never reaches the server
// log, which records every request's path at debug level.
func TestServerLogRedactsTokensInPaths(t *testing.T) {
	var serverLog lockedBuffer
	_, addr, root := servertest.StartDevServer(t, &serverLog)
	c := newClient(t, addr, root)
	child, err := c.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"default"}})
	if err != nil {
		t.Fatal(err)
	}
	tok, acc := child.Auth.ClientToken, child.Auth.Accessor
	for _, p := range []string{"auth/token/lookup/" + tok, "AUTH/TOKEN/LOOKUP/" + tok, "auth/token/lookup-accessor/" + acc} {
		req, _ := http.NewRequest(http.MethodGet, addr+"/v1/"+p, nil)
		req.Header.Set("X-Vault-Token", root)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if _, err := c.Logical().Write("auth/token/revoke/"+tok, nil); err != nil {
		t.Fatal(err)
	}
	logText := serverLog.String()
	if !strings.Contains(logText, "auth/token/lookup/<redacted>") {
		t.Fatalf("the server log has no redacted lookup path:\n%s", logText)
	}
	if strings.Contains(logText, tok) || strings.Contains(logText, acc) {
		t.Fatal("the server log holds a token or accessor taken from a request path")
	}
}
