package transit

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/storage"
)

// clock is a settable time source.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func testBackend(t testing.TB) (*backend, logical.Storage, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	return newBackend(nil, clk.now), storage.NewInmem(), clk
}

func do(t testing.TB, b *backend, s logical.Storage, op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	t.Helper()
	return b.HandleRequest(context.Background(), &logical.Request{Operation: op, Path: path, Data: data, Storage: s})
}

func must(t testing.TB, b *backend, s logical.Storage, op logical.Operation, path string, data map[string]any) *logical.Response {
	t.Helper()
	resp, err := do(t, b, s, op, path, data)
	if err != nil {
		t.Fatalf("%s %s: %v", op, path, err)
	}
	return resp
}

func TestAutoRotate(t *testing.T) {
	b, s, clk := testBackend(t)
	ctx := context.Background()
	must(t, b, s, logical.UpdateOperation, "keys/daily", map[string]any{"auto_rotate_period": "24h"})
	must(t, b, s, logical.UpdateOperation, "keys/manual", nil)
	latest := func(name string) int {
		return must(t, b, s, logical.ReadOperation, "keys/"+name, nil).Data["latest_version"].(int)
	}
	// The core sends every mount a RollbackOperation about once a minute;
	// that is what runs the scheduled rotation.
	rollback := func() error {
		_, err := b.HandleRequest(ctx, &logical.Request{Operation: logical.RollbackOperation, Storage: s})
		return err
	}

	clk.t = clk.t.Add(23 * time.Hour)
	if err := rollback(); err != nil {
		t.Fatal(err)
	}
	if latest("daily") != 1 {
		t.Fatal("rotated before its period passed")
	}
	clk.t = clk.t.Add(time.Hour)
	if err := rollback(); err != nil {
		t.Fatal(err)
	}
	if latest("daily") != 2 || latest("manual") != 1 {
		t.Fatalf("after 24h: daily v%d, manual v%d; want 2 and 1", latest("daily"), latest("manual"))
	}
	// The period counts from the newest version.
	clk.t = clk.t.Add(time.Hour)
	if err := rollback(); err != nil {
		t.Fatal(err)
	}
	if latest("daily") != 2 {
		t.Fatal("rotated again an hour after the scheduled rotation")
	}
	if _, err := do(t, b, s, logical.UpdateOperation, "keys/manual/config", map[string]any{"auto_rotate_period": "10m"}); logical.StatusOf(err) != http.StatusBadRequest {
		t.Fatalf("auto_rotate_period of 10m: %v", err)
	}
}

// TestKeysSurviveRestart: a new backend on the same storage (a remount, a
// restart) reads the keys as stored and decrypts what the first one wrote.
func TestKeysSurviveRestart(t *testing.T) {
	b, s, clk := testBackend(t)
	for _, typ := range []string{"aes256-gcm96", "ecdsa-p384", "rsa-2048", "ed25519"} {
		must(t, b, s, logical.UpdateOperation, "keys/"+typ, map[string]any{"type": typ})
	}
	ct := must(t, b, s, logical.UpdateOperation, "encrypt/aes256-gcm96", map[string]any{"plaintext": "aGVsbG8="}).Data["ciphertext"]
	sig := must(t, b, s, logical.UpdateOperation, "sign/ecdsa-p384", map[string]any{"input": "aGVsbG8="}).Data["signature"]
	rsaCT := must(t, b, s, logical.UpdateOperation, "encrypt/rsa-2048", map[string]any{"plaintext": "aGVsbG8="}).Data["ciphertext"]

	b2 := newBackend(nil, clk.now)
	if got := must(t, b2, s, logical.UpdateOperation, "decrypt/aes256-gcm96", map[string]any{"ciphertext": ct}).Data["plaintext"]; got != "aGVsbG8=" {
		t.Fatalf("decrypt after restart = %v", got)
	}
	if got := must(t, b2, s, logical.UpdateOperation, "decrypt/rsa-2048", map[string]any{"ciphertext": rsaCT}).Data["plaintext"]; got != "aGVsbG8=" {
		t.Fatalf("RSA decrypt after restart = %v", got)
	}
	if got := must(t, b2, s, logical.UpdateOperation, "verify/ecdsa-p384", map[string]any{"input": "aGVsbG8=", "signature": sig}).Data["valid"]; got != true {
		t.Fatalf("verify after restart = %v", got)
	}
	// Stored keys carry Vault's field names (the backup format relies on them).
	e, _ := s.Get(context.Background(), policyPrefix+"aes256-gcm96")
	var raw map[string]any
	if err := json.Unmarshal(e.Value, &raw); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"name", "keys", "latest_version", "min_decryption_version", "type", "allow_plaintext_backup"} {
		if _, ok := raw[f]; !ok {
			t.Errorf("stored key lacks %q", f)
		}
	}
}

func TestBatchBound(t *testing.T) {
	b, s, _ := testBackend(t)
	must(t, b, s, logical.UpdateOperation, "keys/k", nil)
	in := make([]any, maxBatchItems+1)
	for i := range in {
		in[i] = map[string]any{"plaintext": ""}
	}
	_, err := do(t, b, s, logical.UpdateOperation, "encrypt/k", map[string]any{"batch_input": in})
	if logical.StatusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "batch_input") {
		t.Fatalf("%d items: %v", len(in), err)
	}
	resp := must(t, b, s, logical.UpdateOperation, "encrypt/k", map[string]any{"batch_input": in[:maxBatchItems]})
	if n := len(resp.Data["batch_results"].([]batchResult)); n != maxBatchItems {
		t.Fatalf("%d results for %d items", n, maxBatchItems)
	}
}

// TestEncryptOnMissingKeyCreates: Vault creates a missing key on encrypt
// (create operation), derived when a context is given.
func TestEncryptOnMissingKeyCreates(t *testing.T) {
	b, s, _ := testBackend(t)
	must(t, b, s, logical.CreateOperation, "encrypt/new", map[string]any{"plaintext": "eA==", "context": "Yw=="})
	if d := must(t, b, s, logical.ReadOperation, "keys/new", nil).Data; d["derived"] != true || d["type"] != "aes256-gcm96" {
		t.Fatalf("created key = %v", d)
	}
	// config/keys disable_upsert stops that, and survives a remount.
	must(t, b, s, logical.UpdateOperation, "config/keys", map[string]any{"disable_upsert": true})
	b2, err := Factory(context.Background(), &logical.BackendConfig{Storage: s})
	if err != nil {
		t.Fatal(err)
	}
	for _, be := range []logical.Backend{b, b2} {
		_, err := be.HandleRequest(context.Background(), &logical.Request{Operation: logical.CreateOperation, Path: "encrypt/other", Data: map[string]any{"plaintext": "eA=="}, Storage: s})
		if logical.StatusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "not found") {
			t.Fatalf("encrypt with a missing key under disable_upsert: %v", err)
		}
	}
	if got := must(t, b, s, logical.ReadOperation, "config/keys", nil).Data["disable_upsert"]; got != true {
		t.Fatalf("config/keys disable_upsert = %v", got)
	}
}

func FuzzParseCiphertext(f *testing.F) {
	p := &policy{Name: "k", Type: typeAES256GCM96}
	if err := p.rotate(time.Unix(0, 0)); err != nil {
		f.Fatal(err)
	}
	if err := p.prepare(); err != nil {
		f.Fatal(err)
	}
	ct, _, _ := p.encrypt(0, nil, []byte("seed"), nil)
	f.Add(ct)
	f.Add("vault:v1:")
	f.Add("vault:v0:AAAA")
	f.Add("vault:v-1:AAAA")
	f.Add("vault:v99999999999999999999:AAAA")
	f.Add("vault:v1:" + base64.StdEncoding.EncodeToString(make([]byte, 12)))
	f.Fuzz(func(t *testing.T, s string) {
		ver, raw, err := parseCiphertext(s)
		if err != nil {
			if logical.StatusOf(err) != http.StatusBadRequest {
				t.Fatalf("parse error is not a 400: %v", err)
			}
			return
		}
		if ver < 1 || !strings.HasPrefix(s, versionPrefix) {
			t.Fatalf("parsed %q as version %d", s, ver)
		}
		_ = raw
		// Decrypting anything must fail cleanly or succeed, never panic or 500.
		if _, _, err := p.decrypt(s, nil, nil); err != nil && logical.StatusOf(err) != http.StatusBadRequest {
			t.Fatalf("decrypt(%q) = %v, want a 400", s, err)
		}
	})
}

func BenchmarkEncrypt64(b *testing.B) {
	be, s, _ := testBackend(b)
	must(b, be, s, logical.UpdateOperation, "keys/bench", nil)
	data := map[string]any{"plaintext": base64.StdEncoding.EncodeToString(make([]byte, 64))}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req := &logical.Request{Operation: logical.UpdateOperation, Path: "encrypt/bench", Data: data, Storage: s}
		if _, err := be.HandleRequest(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncryptBatch(b *testing.B) {
	be, s, _ := testBackend(b)
	must(b, be, s, logical.UpdateOperation, "keys/bench", nil)
	in := make([]any, 1000)
	for i := range in {
		in[i] = map[string]any{"plaintext": base64.StdEncoding.EncodeToString(make([]byte, 64))}
	}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		req := &logical.Request{Operation: logical.UpdateOperation, Path: "encrypt/bench", Data: map[string]any{"batch_input": in}, Storage: s}
		if _, err := be.HandleRequest(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(in))/b.Elapsed().Seconds(), "items/s")
}

// TestConcurrentRotateAndEncrypt: requests in flight while the key rotates
// and is reconfigured always see a whole key, and every ciphertext made
// during the rotations decrypts afterwards.
func TestConcurrentRotateAndEncrypt(t *testing.T) {
	b, s, _ := testBackend(t)
	must(t, b, s, logical.UpdateOperation, "keys/k", nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 20 {
			if _, err := do(t, b, s, logical.UpdateOperation, "keys/k/rotate", nil); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	cts := make(chan string, 400)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			for range 100 {
				resp, err := do(t, b, s, logical.UpdateOperation, "encrypt/k", map[string]any{"plaintext": "cGF5bG9hZA=="})
				if err != nil {
					errs <- err
					return
				}
				cts <- resp.Data["ciphertext"].(string)
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	<-done
	close(cts)
	for ct := range cts {
		if got := must(t, b, s, logical.UpdateOperation, "decrypt/k", map[string]any{"ciphertext": ct}).Data["plaintext"]; got != "cGF5bG9hZA==" {
			t.Fatalf("%s decrypts to %v", ct, got)
		}
	}
}

// FuzzRestore feeds restore arbitrary backups: a bad one is a 400, never a
// panic or a 500, and a restored key works for what its type does.
func FuzzRestore(f *testing.F) {
	b, s, _ := testBackend(f)
	for _, typ := range []string{"aes128-gcm96", "chacha20-poly1305", "ed25519", "ecdsa-p256", "hmac"} {
		must(f, b, s, logical.UpdateOperation, "keys/"+typ, map[string]any{"type": typ, "exportable": true, "allow_plaintext_backup": true})
		backup := must(f, b, s, logical.ReadOperation, "backup/"+typ, nil).Data["backup"].(string)
		raw, _ := base64.StdEncoding.DecodeString(backup)
		f.Add(raw)
	}
	must(f, b, s, logical.UpdateOperation, "keys/derived", map[string]any{"derived": true, "convergent_encryption": true, "exportable": true, "allow_plaintext_backup": true})
	raw, _ := base64.StdEncoding.DecodeString(must(f, b, s, logical.ReadOperation, "backup/derived", nil).Data["backup"].(string))
	f.Add(raw)
	f.Fuzz(func(t *testing.T, raw []byte) {
		b, s, _ := testBackend(t)
		_, err := do(t, b, s, logical.UpdateOperation, "restore/k", map[string]any{"backup": base64.StdEncoding.EncodeToString(raw)})
		if err != nil {
			if logical.StatusOf(err) != http.StatusBadRequest {
				t.Fatalf("restore: %v, want a 400", err)
			}
			return
		}
		for _, op := range []struct {
			path string
			data map[string]any
		}{
			{"encrypt/k", map[string]any{"plaintext": "eA==", "context": "Yw=="}},
			{"encrypt/k", map[string]any{"plaintext": "eA=="}},
			{"sign/k", map[string]any{"input": "eA==", "context": "Yw=="}},
			{"hmac/k", map[string]any{"input": "eA=="}},
			{"keys/k", nil},
			{"export/hmac-key/k", nil},
			{"export/public-key/k", nil},
		} {
			opn := logical.UpdateOperation
			if op.data == nil {
				opn = logical.ReadOperation
			}
			if _, err := do(t, b, s, opn, op.path, op.data); err != nil && logical.StatusOf(err) >= 500 {
				t.Fatalf("%s after restoring: %v", op.path, err)
			}
		}
	})
}

// TestLegacyCounterKDF: a derived key made by an old Vault (kdf 0) derives
// with NIST SP 800-108 counter mode, HMAC-SHA256, one block of 256 bits:
// HMAC(key, 00000000 || context || 00000100).
func TestLegacyCounterKDF(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	p := &policy{Name: "old", Type: typeAES256GCM96, Derived: true, KDF: kdfCounter, LatestVersion: 1, MinDecryptionVersion: 1,
		Keys: map[string]keyEntry{"1": {Key: key, HMACKey: key}}}
	if err := p.decoded(); err != nil {
		t.Fatal(err)
	}
	if err := p.prepare(); err != nil {
		t.Fatal(err)
	}
	ct, _, err := p.encrypt(0, []byte("ctx"), []byte("legacy"), nil)
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte{0, 0, 0, 0})
	m.Write([]byte("ctx"))
	m.Write([]byte{0, 0, 1, 0})
	block, _ := aes.NewCipher(m.Sum(nil))
	gcm, _ := cipher.NewGCM(block)
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(ct, "vault:v1:"))
	plain, err := gcm.Open(nil, raw[:12], raw[12:], nil)
	if err != nil || string(plain) != "legacy" {
		t.Fatalf("counter-mode key opens %q as %q, %v", ct, plain, err)
	}
}

// FuzzRequests sends arbitrary requests to a backend holding a key of
// every type: whatever the path and body, the answer is a success or a
// 4xx, never a panic or a 500.
func FuzzRequests(f *testing.F) {
	b, s, _ := testBackend(f)
	types := []string{"aes128-gcm96", "aes256-gcm96", "chacha20-poly1305", "ed25519", "ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "rsa-2048", "hmac"}
	for _, typ := range types {
		must(f, b, s, logical.UpdateOperation, "keys/"+typ, map[string]any{"type": typ, "exportable": true, "allow_plaintext_backup": true})
	}
	must(f, b, s, logical.UpdateOperation, "keys/conv", map[string]any{"derived": true, "convergent_encryption": true})
	must(f, b, s, logical.UpdateOperation, "keys/ded", map[string]any{"type": "ed25519", "derived": true})
	ct := must(f, b, s, logical.UpdateOperation, "encrypt/aes256-gcm96", map[string]any{"plaintext": "eA=="}).Data["ciphertext"].(string)
	seeds := []struct {
		op   byte
		path string
		body string
	}{
		{1, "encrypt/chacha20-poly1305", `{"plaintext":"eA==","associated_data":"YQ=="}`},
		{1, "decrypt/aes256-gcm96", `{"ciphertext":"` + ct + `"}`},
		{1, "rewrap/aes256-gcm96", `{"batch_input":[{"ciphertext":"` + ct + `"},{"ciphertext":"vault:v1:"}]}`},
		{1, "encrypt/conv", `{"batch_input":[{"plaintext":"eA==","context":"Yw==","key_version":1}]}`},
		{1, "sign/ecdsa-p384/sha3-384", `{"input":"eA==","marshaling_algorithm":"jws"}`},
		{1, "sign/rsa-2048", `{"input":"eA==","signature_algorithm":"pkcs1v15","hash_algorithm":"none","prehashed":true}`},
		{1, "verify/ded", `{"input":"eA==","context":"Yw==","signature":"vault:v1:AAAA"}`},
		{1, "hmac/hmac/sha2-512", `{"batch_input":[{"input":"eA=="}]}`},
		{1, "verify/hmac", `{"input":"eA==","hmac":"vault:v1:AAAA"}`},
		{1, "verify/ecdsa-p256", `{"input":"eA==","hmac":"vault:v1:AAAA","hash_algorithm":"none","prehashed":true,"signature_algorithm":"pkcs1v15"}`},
		{1, "datakey/plaintext/aes128-gcm96", `{"bits":512}`},
		{1, "keys/aes256-gcm96/config", `{"min_decryption_version":1,"min_encryption_version":1,"auto_rotate_period":"2h"}`},
		{1, "keys/aes256-gcm96/trim", `{"min_available_version":1}`},
		{1, "keys/new", `{"type":"ecdsa-p256","derived":true}`},
		{0, "export/signing-key/ecdsa-p521/latest", `{}`},
		{0, "backup/hmac", `{}`},
		{0, "keys/ded", `{"context":"Yw=="}`},
		{1, "random/hex/16", `{}`},
		{1, "hash/sha2-224", `{"input":"eA==","format":"base64"}`},
		{1, "cache-config", `{"size":12}`},
		{2, "keys/", `{}`},
	}
	for _, sd := range seeds {
		f.Add(sd.op, sd.path, []byte(sd.body))
	}
	ops := []logical.Operation{logical.ReadOperation, logical.UpdateOperation, logical.ListOperation, logical.DeleteOperation, logical.CreateOperation}
	f.Fuzz(func(t *testing.T, op byte, path string, body []byte) {
		var data map[string]any
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if dec.Decode(&data) != nil {
			return
		}
		req := &logical.Request{Operation: ops[int(op)%len(ops)], Path: path, Data: data, Storage: s}
		if _, err := b.HandleRequest(context.Background(), req); err != nil && logical.StatusOf(err) >= 500 {
			t.Fatalf("%s %s %s: %v", req.Operation, path, body, err)
		}
	})
}

// countingStorage counts reads.
type countingStorage struct {
	logical.Storage
	gets int
}

func (c *countingStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	c.gets++
	return c.Storage.Get(ctx, key)
}

// TestCachedKeyReadsNoStorage: once a key is decoded, encrypting and
// decrypting with it read nothing from storage; a fresh backend (a remount)
// reads the key once.
func TestCachedKeyReadsNoStorage(t *testing.T) {
	b, inner, clk := testBackend(t)
	s := &countingStorage{Storage: inner}
	must(t, b, s, logical.UpdateOperation, "keys/k", nil)
	s.gets = 0
	for range 10 {
		ct := must(t, b, s, logical.UpdateOperation, "encrypt/k", map[string]any{"plaintext": "eA=="}).Data["ciphertext"]
		must(t, b, s, logical.UpdateOperation, "decrypt/k", map[string]any{"ciphertext": ct})
	}
	if s.gets != 0 {
		t.Fatalf("%d storage reads for 20 operations on a cached key", s.gets)
	}
	b2 := newBackend(nil, clk.now)
	for range 10 {
		must(t, b2, s, logical.UpdateOperation, "encrypt/k", map[string]any{"plaintext": "eA=="})
	}
	if s.gets != 1 {
		t.Fatalf("a fresh backend read storage %d times for 10 encryptions, want 1", s.gets)
	}
}
