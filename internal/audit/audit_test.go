package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arcasec/arca/internal/logical"
)

func newTestDevice(t *testing.T, opts map[string]string) (*Device, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	o := map[string]string{"file_path": path}
	for k, v := range opts {
		o[k] = v
	}
	salt, err := NewSalt()
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Path: "file/", Type: "file", Options: o, Salt: salt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, path
}

func readEntries(t *testing.T, path string) []map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("line is not JSON: %v: %s", err, line)
		}
		out = append(out, m)
	}
	return out
}

func dig(m any, keys ...string) any {
	for _, k := range keys {
		mm, _ := m.(map[string]any)
		m = mm[k]
	}
	return m
}

func TestEntryHashesEveryString(t *testing.T) {
	d, path := newTestDevice(t, nil)
	in := kvReadInput()
	in.Request.Operation = logical.UpdateOperation
	in.Request.Data = map[string]any{
		"data":  map[string]any{"password": "hunter2", "pin": json.Number("98765432101234567"), "list": []any{"a", true, nil}},
		"quote": "a \"quoted\"\n value\x01 \xff",
	}
	in.Err = errors.New("boom")
	if err := d.LogPair(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	for _, plain := range []string{"hunter2", "98765432101234567", "quoted", in.Request.ClientToken, in.Request.ClientTokenAccessor, "s3cr3t"} {
		if bytes.Contains(raw, []byte(plain)) {
			t.Errorf("the entry holds %q in plaintext", plain)
		}
	}
	entries := readEntries(t, path)
	if len(entries) != 2 || entries[0]["type"] != "request" || entries[1]["type"] != "response" {
		t.Fatalf("entries %v", entries)
	}
	req := entries[0]
	if got := dig(req, "request", "data", "data", "password"); got != d.Hash("hunter2") {
		t.Errorf("password %v, want %s", got, d.Hash("hunter2"))
	}
	if got := dig(req, "request", "data", "data", "pin"); got != d.Hash("98765432101234567") {
		t.Errorf("a number from JSON input is %v, want it hashed", got)
	}
	list, _ := dig(req, "request", "data", "data", "list").([]any)
	if len(list) != 3 || list[0] != d.Hash("a") || list[1] != true || list[2] != nil {
		t.Errorf("list %v", list)
	}
	if got := dig(req, "request", "data", "quote"); got != d.Hash("a \"quoted\"\n value\x01 \xff") {
		t.Errorf("escaped string hashed to %v", got)
	}
	if dig(req, "auth", "client_token") != d.Hash(in.Request.ClientToken) || dig(req, "request", "client_token") != d.Hash(in.Request.ClientToken) {
		t.Error("the client token is not hashed the same in auth and request")
	}
	if dig(req, "request", "remote_address") != "127.0.0.1" || dig(req, "request", "remote_port") != float64(51234) {
		t.Errorf("remote address %v:%v", dig(req, "request", "remote_address"), dig(req, "request", "remote_port"))
	}
	if dig(req, "request", "namespace", "id") != "root" || req["error"] != "boom" {
		t.Errorf("namespace %v error %v", dig(req, "request", "namespace"), req["error"])
	}
	resp := entries[1]
	if got := dig(resp, "response", "data", "metadata", "version"); got != float64(1) {
		t.Errorf("a backend's number is %v, want it as is", got)
	}
	if got := dig(resp, "response", "data", "data", "password"); got != d.Hash("s3cr3t") {
		t.Errorf("response password %v", got)
	}
	if got := dig(resp, "response", "data", "metadata", "deletion_time"); got != "" {
		t.Errorf("an empty string is written as %v", got)
	}
}

func TestEntryOptions(t *testing.T) {
	ctx := context.Background()

	d, path := newTestDevice(t, map[string]string{"log_raw": "true", "prefix": "AUDIT: "})
	if err := d.Log(ctx, "response", kvReadInput()); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if !bytes.HasPrefix(raw, []byte("AUDIT: {")) || !bytes.Contains(raw, []byte(`"password":"s3cr3t"`)) {
		t.Fatalf("log_raw with prefix wrote %s", raw)
	}

	d, path = newTestDevice(t, map[string]string{"hmac_accessor": "false"})
	in := kvReadInput()
	if err := d.Log(ctx, "request", in); err != nil {
		t.Fatal(err)
	}
	e := readEntries(t, path)[0]
	if dig(e, "request", "client_token_accessor") != in.Request.ClientTokenAccessor || dig(e, "request", "client_token") == in.Request.ClientToken {
		t.Fatalf("hmac_accessor=false: accessor %v token %v", dig(e, "request", "client_token_accessor"), dig(e, "request", "client_token"))
	}

	d, path = newTestDevice(t, map[string]string{"elide_list_responses": "true"})
	in = kvReadInput()
	in.Request.Operation = logical.ListOperation
	in.Response = &logical.Response{Data: map[string]any{"keys": []string{"a", "b", "c"}}}
	if err := d.Log(ctx, "response", in); err != nil {
		t.Fatal(err)
	}
	if got := dig(readEntries(t, path)[0], "response", "data", "keys"); got != float64(3) {
		t.Fatalf("elided keys = %v, want 3", got)
	}

	d, path = newTestDevice(t, nil)
	in = kvReadInput()
	in.NonHMACResponseKeys = []string{"username"}
	if err := d.Log(ctx, "response", in); err != nil {
		t.Fatal(err)
	}
	e = readEntries(t, path)[0]
	if dig(e, "response", "data", "data", "username") != "app" || dig(e, "response", "data", "data", "password") == "s3cr3t" {
		t.Fatalf("non-HMAC response keys: %v", dig(e, "response", "data", "data"))
	}

	for _, bad := range []map[string]string{
		{"format": "yaml"}, {"log_raw": "maybe"}, {"mode": "999"}, {"unknown_option": "1"},
	} {
		salt, _ := NewSalt()
		o := map[string]string{"file_path": filepath.Join(t.TempDir(), "x.log")}
		for k, v := range bad {
			o[k] = v
		}
		if _, err := New(Config{Path: "f/", Type: "file", Options: o, Salt: salt}); err == nil {
			t.Errorf("options %v accepted", bad)
		}
	}
	salt, _ := NewSalt()
	if _, err := New(Config{Path: "s/", Type: "socket", Options: map[string]string{"address": "127.0.0.1:1", "socket_type": "sctp"}, Salt: salt}); err == nil {
		t.Error("socket_type sctp accepted")
	}
}

func TestJSONx(t *testing.T) {
	d, path := newTestDevice(t, map[string]string{"format": "jsonx"})
	if err := d.LogPair(context.Background(), kvReadInput()); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	lines := bytes.Split(bytes.TrimSpace(raw), []byte("\n"))
	if len(lines) != 2 {
		t.Fatalf("%d lines", len(lines))
	}
	for _, line := range lines {
		dec := xml.NewDecoder(bytes.NewReader(line))
		names := map[string]bool{}
		for {
			tok, err := dec.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("jsonx line is not XML: %v: %s", err, line)
			}
			if se, ok := tok.(xml.StartElement); ok {
				for _, a := range se.Attr {
					if a.Name.Local == "name" {
						names[a.Value] = true
					}
				}
			}
		}
		if !names["request"] || !names["client_token"] || !bytes.HasPrefix(line, []byte(`<?xml version="1.0"`)) {
			t.Fatalf("jsonx line lacks the entry's members: %s", line)
		}
	}
}

// TestFileSinkConcurrentLines writes from many goroutines at once: every
// line arrives whole, none interleaved with another.
func TestFileSinkConcurrentLines(t *testing.T) {
	d, path := newTestDevice(t, nil)
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if err := d.LogPair(context.Background(), kvReadInput()); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := len(readEntries(t, path)); n != 16*200*2 {
		t.Fatalf("%d entries, want %d", n, 16*200*2)
	}
}

func TestBrokerFailsOnlyWhenNoDeviceRecords(t *testing.T) {
	ok, _ := newTestDevice(t, nil)
	salt, _ := NewSalt()
	dir := t.TempDir()
	broken, err := New(Config{Path: "broken/", Type: "file", Options: map[string]string{"file_path": filepath.Join(dir, "a.log")}, Salt: salt})
	if err != nil {
		t.Fatal(err)
	}
	b := NewBroker(slog.New(slog.NewTextHandler(io.Discard, nil)))
	var failures []string
	b.OnFailure = func(path, typ string) { failures = append(failures, path+typ) }
	if err := b.LogRequest(context.Background(), kvReadInput()); err != nil {
		t.Fatalf("no devices: %v", err)
	}
	b.Register(broken)
	// Break the device: its file becomes a directory.
	os.Remove(filepath.Join(dir, "a.log"))
	os.Mkdir(filepath.Join(dir, "a.log"), 0o700)
	if err := broken.Reopen(); err == nil {
		t.Fatal("reopen onto a directory succeeded")
	}
	if err := b.LogRequest(context.Background(), kvReadInput()); !errors.Is(err, ErrNotRecorded) {
		t.Fatalf("only a broken device: %v, want ErrNotRecorded", err)
	}
	b.Register(ok)
	if err := b.LogRequest(context.Background(), kvReadInput()); err != nil {
		t.Fatalf("one working device: %v", err)
	}
	if len(failures) != 2 || !strings.HasPrefix(failures[0], "broken/") {
		t.Fatalf("failures %v", failures)
	}
	if _, ok := b.Hash("file/", "x"); !ok {
		t.Fatal("Hash does not find the device")
	}
	b.Deregister("file/")
	if _, ok := b.Hash("file/", "x"); ok {
		t.Fatal("a deregistered device still hashes")
	}
}

func TestFailureLogThrottles(t *testing.T) {
	var f failureLog
	now := time.Now()
	if n, ok := f.note(now); !ok || n != 0 {
		t.Fatal("the first failure is not logged")
	}
	for i := 1; i <= 5; i++ {
		if _, ok := f.note(now.Add(time.Duration(i) * time.Second)); ok {
			t.Fatalf("failure %d within the interval was logged", i)
		}
	}
	if n, ok := f.note(now.Add(11 * time.Second)); !ok || n != 5 {
		t.Fatalf("after the interval: logged %v with %d skipped, want true and 5", ok, n)
	}
}

// TestFileModeExecuteBit: a new device with an executable mode is refused;
// one reloaded from an earlier version's table loses the bit and says so,
// rather than failing the unseal.
func TestFileModeExecuteBit(t *testing.T) {
	salt, _ := NewSalt()
	path := filepath.Join(t.TempDir(), "audit.log")
	conf := Config{Path: "file/", Type: "file", Options: map[string]string{"file_path": path, "mode": "0750"}, Salt: salt}
	if _, err := New(conf); err == nil || !strings.Contains(err.Error(), "mode") {
		t.Fatalf("New with mode 0750: %v", err)
	}
	if err := Check(conf); err == nil || !strings.Contains(err.Error(), "mode") {
		t.Fatalf("Check with mode 0750: %v", err)
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("the refused device created its file")
	}
	var logged bytes.Buffer
	conf.Logger = slog.New(slog.NewTextHandler(&logged, nil))
	d, err := NewLazy(conf)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("reloaded device's file: %v, %v; want mode 0640", fi, err)
	}
	if !strings.Contains(logged.String(), "execute bit") || !strings.Contains(logged.String(), "file/") {
		t.Fatalf("no warning about the dropped bit: %s", logged.String())
	}
}
