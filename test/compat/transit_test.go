package compat

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"testing"

	vault "github.com/hashicorp/vault/api"
)

// transitClient is a dev server with transit mounted at transit/.
func transitClient(t *testing.T) *vault.Client {
	t.Helper()
	c := devClient(t)
	if err := c.Sys().Mount("transit", &vault.MountInput{Type: "transit"}); err != nil {
		t.Fatalf("mount transit: %v", err)
	}
	return c
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func write(t *testing.T, c *vault.Client, path string, data map[string]any) *vault.Secret {
	t.Helper()
	s, err := c.Logical().Write(path, data)
	if err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return s
}

// writeErr writes and returns the HTTP status and error text of a refusal.
func writeErr(t *testing.T, c *vault.Client, path string, data map[string]any) (int, string) {
	t.Helper()
	_, err := c.Logical().Write(path, data)
	if err == nil {
		t.Fatalf("write %s: succeeded, want an error", path)
	}
	return statusOf(err), err.Error()
}

func TestTransitEveryKeyType(t *testing.T) {
	c := transitClient(t)
	for _, typ := range []string{"aes128-gcm96", "aes256-gcm96", "chacha20-poly1305", "rsa-2048", "rsa-3072", "rsa-4096"} {
		t.Run("encrypt/"+typ, func(t *testing.T) {
			write(t, c, "transit/keys/k-"+typ, map[string]any{"type": typ})
			enc := write(t, c, "transit/encrypt/k-"+typ, map[string]any{"plaintext": b64("attack at dawn")})
			ct := enc.Data["ciphertext"].(string)
			if !strings.HasPrefix(ct, "vault:v1:") {
				t.Fatalf("ciphertext %q lacks vault:v1:", ct)
			}
			dec := write(t, c, "transit/decrypt/k-"+typ, map[string]any{"ciphertext": ct})
			if dec.Data["plaintext"] != b64("attack at dawn") {
				t.Fatalf("decrypt = %v", dec.Data["plaintext"])
			}
		})
	}
	for _, typ := range []string{"ed25519", "ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "rsa-2048", "rsa-3072", "rsa-4096"} {
		t.Run("sign/"+typ, func(t *testing.T) {
			name := "s-" + typ
			write(t, c, "transit/keys/"+name, map[string]any{"type": typ})
			input := []byte("the message")
			sig := write(t, c, "transit/sign/"+name, map[string]any{"input": base64.StdEncoding.EncodeToString(input)}).Data["signature"].(string)
			ok := write(t, c, "transit/verify/"+name, map[string]any{"input": base64.StdEncoding.EncodeToString(input), "signature": sig}).Data["valid"]
			if ok != true {
				t.Fatalf("verify of own signature = %v", ok)
			}
			bad := write(t, c, "transit/verify/"+name, map[string]any{"input": b64("another message"), "signature": sig}).Data["valid"]
			if bad != false {
				t.Fatalf("verify of another message = %v", bad)
			}
			// The signature verifies with Go's crypto and the exported public key.
			exp, err := c.Logical().Read("transit/export/public-key/" + name + "/1")
			if err != nil {
				t.Fatal(err)
			}
			pubText := exp.Data["keys"].(map[string]any)["1"].(string)
			raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sig, "vault:v1:"))
			if err != nil {
				t.Fatal(err)
			}
			digest := sha256.Sum256(input)
			switch {
			case typ == "ed25519":
				pub, _ := base64.StdEncoding.DecodeString(pubText)
				if !ed25519.Verify(pub, input, raw) {
					t.Fatal("ed25519 signature does not verify with crypto/ed25519")
				}
			default:
				block, _ := pem.Decode([]byte(pubText))
				if block == nil {
					t.Fatalf("public key is not PEM: %q", pubText)
				}
				pub, err := x509.ParsePKIXPublicKey(block.Bytes)
				if err != nil {
					t.Fatal(err)
				}
				switch k := pub.(type) {
				case *ecdsa.PublicKey:
					if !ecdsa.VerifyASN1(k, digest[:], raw) {
						t.Fatal("ECDSA signature does not verify with crypto/ecdsa")
					}
				case *rsa.PublicKey:
					if err := rsa.VerifyPSS(k, crypto.SHA256, digest[:], raw, nil); err != nil {
						t.Fatalf("RSA PSS signature does not verify with crypto/rsa: %v", err)
					}
				}
			}
		})
	}
	t.Run("hmac", func(t *testing.T) {
		write(t, c, "transit/keys/h", map[string]any{"type": "hmac", "key_size": 64})
		mac := write(t, c, "transit/hmac/h/sha2-512", map[string]any{"input": b64("data")}).Data["hmac"].(string)
		if write(t, c, "transit/verify/h/sha2-512", map[string]any{"input": b64("data"), "hmac": mac}).Data["valid"] != true {
			t.Fatal("HMAC does not verify")
		}
		if write(t, c, "transit/verify/h/sha2-512", map[string]any{"input": b64("datA"), "hmac": mac}).Data["valid"] != false {
			t.Fatal("HMAC of other data verifies")
		}
	})
}

func TestTransitRSAPKCS1AndJWS(t *testing.T) {
	c := transitClient(t)
	write(t, c, "transit/keys/r", map[string]any{"type": "rsa-2048", "exportable": true})
	write(t, c, "transit/keys/e", map[string]any{"type": "ecdsa-p256"})
	input := []byte("payload")
	sig := write(t, c, "transit/sign/r/sha2-384", map[string]any{"input": base64.StdEncoding.EncodeToString(input), "signature_algorithm": "pkcs1v15"}).Data["signature"].(string)
	pemText := mustRead(t, c, "transit/export/signing-key/r/latest").Data["keys"].(map[string]any)["1"].(string)
	block, _ := pem.Decode([]byte(pemText))
	priv, err := x509.ParsePKCS1PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(sig, "vault:v1:"))
	h := crypto.SHA384.New()
	h.Write(input)
	if err := rsa.VerifyPKCS1v15(&priv.PublicKey, crypto.SHA384, h.Sum(nil), raw); err != nil {
		t.Fatalf("pkcs1v15 signature does not verify: %v", err)
	}
	jws := write(t, c, "transit/sign/e", map[string]any{"input": base64.StdEncoding.EncodeToString(input), "marshaling_algorithm": "jws"}).Data["signature"].(string)
	rawJWS, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(jws, "vault:v1:"))
	if err != nil || len(rawJWS) != 64 {
		t.Fatalf("jws signature is %d bytes (%v), want r||s of 64", len(rawJWS), err)
	}
	if write(t, c, "transit/verify/e", map[string]any{"input": base64.StdEncoding.EncodeToString(input), "signature": jws, "marshaling_algorithm": "jws"}).Data["valid"] != true {
		t.Fatal("jws signature does not verify")
	}
}

func mustRead(t *testing.T, c *vault.Client, path string) *vault.Secret {
	t.Helper()
	s, err := c.Logical().Read(path)
	if err != nil || s == nil {
		t.Fatalf("read %s: %v, %v", path, s, err)
	}
	return s
}

func TestTransitConvergentAndDerived(t *testing.T) {
	c := transitClient(t)
	write(t, c, "transit/keys/conv", map[string]any{"derived": true, "convergent_encryption": true})
	enc := func(pt, ctx string) string {
		return write(t, c, "transit/encrypt/conv", map[string]any{"plaintext": b64(pt), "context": b64(ctx)}).Data["ciphertext"].(string)
	}
	a, b := enc("4111-1111", "tenant-1"), enc("4111-1111", "tenant-1")
	if a != b {
		t.Fatalf("convergent ciphertexts differ: %s vs %s", a, b)
	}
	if enc("4111-1111", "tenant-2") == a || enc("4111-1112", "tenant-1") == a {
		t.Fatal("convergent ciphertext ignores the context or the plaintext")
	}
	// The wrong context does not decrypt.
	if code, msg := writeErr(t, c, "transit/decrypt/conv", map[string]any{"ciphertext": a, "context": b64("tenant-2")}); code != http.StatusBadRequest {
		t.Fatalf("wrong context: %d %s", code, msg)
	}
	if got := write(t, c, "transit/decrypt/conv", map[string]any{"ciphertext": a, "context": b64("tenant-1")}).Data["plaintext"]; got != b64("4111-1111") {
		t.Fatalf("decrypt = %v", got)
	}
	// A derived key needs a context.
	if code, msg := writeErr(t, c, "transit/encrypt/conv", map[string]any{"plaintext": b64("x")}); code != http.StatusBadRequest || !strings.Contains(msg, "context") {
		t.Fatalf("no context on a derived key: %d %s", code, msg)
	}
	// Convergent without derived is refused.
	if code, msg := writeErr(t, c, "transit/keys/bad", map[string]any{"convergent_encryption": true}); code != http.StatusBadRequest || !strings.Contains(msg, "derived") {
		t.Fatalf("convergent without derived: %d %s", code, msg)
	}
	// A derived ed25519 key signs per context and returns the derived public key.
	write(t, c, "transit/keys/ded", map[string]any{"type": "ed25519", "derived": true})
	s := write(t, c, "transit/sign/ded", map[string]any{"input": b64("m"), "context": b64("c1")})
	pub, _ := base64.StdEncoding.DecodeString(s.Data["public_key"].(string))
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(s.Data["signature"].(string), "vault:v1:"))
	if !ed25519.Verify(pub, []byte("m"), raw) {
		t.Fatal("derived ed25519 signature does not verify with its public key")
	}
}

func TestTransitRotateRewrapMinDecryption(t *testing.T) {
	c := transitClient(t)
	write(t, c, "transit/keys/app", nil)
	old := write(t, c, "transit/encrypt/app", map[string]any{"plaintext": b64("v1 data")}).Data["ciphertext"].(string)
	write(t, c, "transit/keys/app/rotate", nil)
	key := mustRead(t, c, "transit/keys/app")
	if n, _ := key.Data["latest_version"].(json.Number).Int64(); n != 2 {
		t.Fatalf("latest_version after rotate = %v", key.Data["latest_version"])
	}
	// The old ciphertext still decrypts; rewrap moves it to v2.
	if got := write(t, c, "transit/decrypt/app", map[string]any{"ciphertext": old}).Data["plaintext"]; got != b64("v1 data") {
		t.Fatalf("old ciphertext decrypts to %v", got)
	}
	rw := write(t, c, "transit/rewrap/app", map[string]any{"ciphertext": old}).Data["ciphertext"].(string)
	if !strings.HasPrefix(rw, "vault:v2:") {
		t.Fatalf("rewrapped ciphertext %q is not v2", rw)
	}
	// min_decryption_version refuses the v1 ciphertext, not the rewrapped one.
	write(t, c, "transit/keys/app/config", map[string]any{"min_decryption_version": 2})
	if code, msg := writeErr(t, c, "transit/decrypt/app", map[string]any{"ciphertext": old}); code != http.StatusBadRequest || !strings.Contains(msg, "too old") {
		t.Fatalf("v1 ciphertext under min_decryption_version=2: %d %s", code, msg)
	}
	if got := write(t, c, "transit/decrypt/app", map[string]any{"ciphertext": rw}).Data["plaintext"]; got != b64("v1 data") {
		t.Fatalf("rewrapped ciphertext decrypts to %v", got)
	}
	// Trim removes v1 for good; it cannot go above min_decryption_version.
	if code, _ := writeErr(t, c, "transit/keys/app/trim", map[string]any{"min_available_version": 3}); code != http.StatusBadRequest {
		t.Fatalf("trim above min_decryption_version: %d", code)
	}
	write(t, c, "transit/keys/app/trim", map[string]any{"min_available_version": 2})
	keys := mustRead(t, c, "transit/keys/app").Data["keys"].(map[string]any)
	if _, ok := keys["1"]; ok || len(keys) != 1 {
		t.Fatalf("keys after trim = %v", keys)
	}
	// Deletion needs deletion_allowed.
	if _, err := c.Logical().Delete("transit/keys/app"); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("delete without deletion_allowed: %v", err)
	}
	write(t, c, "transit/keys/app/config", map[string]any{"deletion_allowed": true})
	if _, err := c.Logical().Delete("transit/keys/app"); err != nil {
		t.Fatal(err)
	}
	if s, err := c.Logical().Read("transit/keys/app"); err != nil || s != nil {
		t.Fatalf("read after delete = %v, %v", s, err)
	}
}

func TestTransitBatch(t *testing.T) {
	c := transitClient(t)
	write(t, c, "transit/keys/b", nil)
	in := []any{
		map[string]any{"plaintext": b64("one"), "reference": "r1"},
		map[string]any{"plaintext": "not base64!", "reference": "r2"},
		map[string]any{"plaintext": b64("three")},
	}
	// Vault answers 400 when an item failed; partial_failure_response_code
	// turns it into a success that still carries every result.
	if code, _ := writeErr(t, c, "transit/encrypt/b", map[string]any{"batch_input": in}); code != http.StatusBadRequest {
		t.Fatalf("batch with a bad item: %d, want 400", code)
	}
	s := write(t, c, "transit/encrypt/b", map[string]any{"batch_input": in, "partial_failure_response_code": 207})
	res := s.Data["batch_results"].([]any)
	if len(res) != 3 {
		t.Fatalf("batch_results = %v", res)
	}
	r0, r1, r2 := res[0].(map[string]any), res[1].(map[string]any), res[2].(map[string]any)
	if r0["reference"] != "r1" || r1["reference"] != "r2" || r1["error"] == nil || r1["ciphertext"] != nil || r2["ciphertext"] == nil {
		t.Fatalf("batch_results = %v", res)
	}
	dec := write(t, c, "transit/decrypt/b", map[string]any{"batch_input": []any{
		map[string]any{"ciphertext": r0["ciphertext"]}, map[string]any{"ciphertext": r2["ciphertext"]},
	}}).Data["batch_results"].([]any)
	if dec[0].(map[string]any)["plaintext"] != b64("one") || dec[1].(map[string]any)["plaintext"] != b64("three") {
		t.Fatalf("batch decrypt = %v", dec)
	}
	// A batch is bounded: the listener refuses a JSON array of more than
	// 10,000 elements before the engine sees it (the engine's own bound is
	// the same; see TestBatchBound).
	huge := make([]any, 100000)
	for i := range huge {
		huge[i] = map[string]any{"plaintext": ""}
	}
	if code, msg := writeErr(t, c, "transit/encrypt/b", map[string]any{"batch_input": huge}); code != http.StatusBadRequest || !strings.Contains(msg, "10000") {
		t.Fatalf("100,000 items: %d %s", code, msg)
	}
}

func TestTransitBadInput(t *testing.T) {
	c := transitClient(t)
	write(t, c, "transit/keys/k", nil)
	write(t, c, "transit/keys/ad", map[string]any{"type": "chacha20-poly1305"})
	good := write(t, c, "transit/encrypt/k", map[string]any{"plaintext": b64("secret")}).Data["ciphertext"].(string)
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(good, "vault:v1:"))
	tampered := append([]byte(nil), raw...)
	tampered[len(tampered)-1] ^= 1
	cases := []struct {
		path string
		data map[string]any
		want string
	}{
		{"transit/keys/x", map[string]any{"type": "aes512-gcm"}, "unknown key type"},
		{"transit/decrypt/k", map[string]any{"ciphertext": "vlt:v1:" + base64.StdEncoding.EncodeToString(raw)}, "vault:v"},
		{"transit/decrypt/k", map[string]any{"ciphertext": "vault:v1:" + base64.StdEncoding.EncodeToString(raw[:10])}, "too short"},
		{"transit/decrypt/k", map[string]any{"ciphertext": "vault:v1:" + base64.StdEncoding.EncodeToString(tampered)}, "authentication failed"},
		{"transit/decrypt/k", map[string]any{"ciphertext": "vault:v7:" + base64.StdEncoding.EncodeToString(raw)}, "newer"},
		{"transit/decrypt/k", map[string]any{"ciphertext": "vault:vX:abc"}, "not a number"},
		{"transit/encrypt/k", map[string]any{"plaintext": b64("p"), "context": b64("c")}, "not derived"},
		{"transit/encrypt/k", map[string]any{"plaintext": "%%%"}, "plaintext"},
		{"transit/encrypt/k", map[string]any{"plaintext": b64("p"), "key_version": 9}, "key_version"},
		{"transit/sign/k", map[string]any{"input": b64("p")}, "does not support signing"},
		{"transit/datakey/plaintext/k", map[string]any{"bits": 100}, "bits"},
		{"transit/datakey/both/k", nil, "datakey"},
		{"transit/decrypt/missing", map[string]any{"ciphertext": good}, "not found"},
		{"transit/random/0", nil, "bytes"},
		{"transit/hash/md5", map[string]any{"input": b64("x")}, "hash algorithm"},
	}
	for _, tc := range cases {
		code, msg := writeErr(t, c, tc.path, tc.data)
		if code != http.StatusBadRequest || !strings.Contains(msg, tc.want) {
			t.Errorf("%s %v: %d %q, want 400 naming %q", tc.path, tc.data, code, msg, tc.want)
		}
	}
	// associated_data binds the ciphertext.
	ct := write(t, c, "transit/encrypt/ad", map[string]any{"plaintext": b64("p"), "associated_data": b64("hdr")}).Data["ciphertext"].(string)
	if code, _ := writeErr(t, c, "transit/decrypt/ad", map[string]any{"ciphertext": ct, "associated_data": b64("other")}); code != http.StatusBadRequest {
		t.Fatalf("wrong associated_data: %d", code)
	}
	if got := write(t, c, "transit/decrypt/ad", map[string]any{"ciphertext": ct, "associated_data": b64("hdr")}).Data["plaintext"]; got != b64("p") {
		t.Fatalf("decrypt with associated_data = %v", got)
	}
}

func TestTransitDatakeyExportBackupRestore(t *testing.T) {
	c := transitClient(t)
	write(t, c, "transit/keys/dk", map[string]any{"exportable": true})
	for _, bits := range []int{128, 256, 512} {
		s := write(t, c, "transit/datakey/plaintext/dk", map[string]any{"bits": bits})
		pt, _ := base64.StdEncoding.DecodeString(s.Data["plaintext"].(string))
		if len(pt) != bits/8 {
			t.Fatalf("bits=%d gave %d bytes", bits, len(pt))
		}
		dec := write(t, c, "transit/decrypt/dk", map[string]any{"ciphertext": s.Data["ciphertext"]}).Data["plaintext"]
		if dec != s.Data["plaintext"] {
			t.Fatal("the wrapped data key does not decrypt to the plaintext one")
		}
	}
	if w := write(t, c, "transit/datakey/wrapped/dk", nil); w.Data["plaintext"] != nil || w.Data["ciphertext"] == nil {
		t.Fatalf("wrapped datakey = %v", w.Data)
	}
	// Backup needs allow_plaintext_backup.
	if _, err := c.Logical().Read("transit/backup/dk"); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("backup without allow_plaintext_backup: %v", err)
	}
	write(t, c, "transit/keys/dk/config", map[string]any{"allow_plaintext_backup": true})
	ct := write(t, c, "transit/encrypt/dk", map[string]any{"plaintext": b64("kept")}).Data["ciphertext"]
	write(t, c, "transit/keys/dk/rotate", nil)
	backup := mustRead(t, c, "transit/backup/dk").Data["backup"].(string)
	write(t, c, "transit/restore/copy", map[string]any{"backup": backup})
	if got := write(t, c, "transit/decrypt/copy", map[string]any{"ciphertext": ct}).Data["plaintext"]; got != b64("kept") {
		t.Fatalf("restored key decrypts to %v", got)
	}
	if code, msg := writeErr(t, c, "transit/restore/copy", map[string]any{"backup": backup}); code != http.StatusBadRequest || !strings.Contains(msg, "force") {
		t.Fatalf("restore over an existing key: %d %s", code, msg)
	}
	// An encryption key exported by Arca decrypts its ciphertexts: nonce
	// first, then ciphertext and tag, as Vault writes them.
	keys := mustRead(t, c, "transit/export/encryption-key/dk/1").Data["keys"].(map[string]any)
	key, err := base64.StdEncoding.DecodeString(keys["1"].(string))
	if err != nil || len(keys) != 1 {
		t.Fatalf("export = %v", keys)
	}
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(ct.(string), "vault:v1:"))
	block, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(block)
	plain, err := gcm.Open(nil, raw[:gcm.NonceSize()], raw[gcm.NonceSize():], nil)
	if err != nil || string(plain) != "kept" {
		t.Fatalf("the exported key opens the ciphertext as %q, %v", plain, err)
	}
}

func TestTransitRandomHashCacheConfig(t *testing.T) {
	c := transitClient(t)
	r := write(t, c, "transit/random/16", map[string]any{"format": "hex"}).Data["random_bytes"].(string)
	if len(r) != 32 {
		t.Fatalf("16 random bytes in hex = %q", r)
	}
	sum := write(t, c, "transit/hash/sha2-256", map[string]any{"input": b64("abc")}).Data["sum"]
	want := sha256.Sum256([]byte("abc"))
	if sum != fmt.Sprintf("%x", want) {
		t.Fatalf("sha2-256 = %v", sum)
	}
	if code, _ := writeErr(t, c, "transit/cache-config", map[string]any{"size": 5}); code != http.StatusBadRequest {
		t.Fatalf("cache size 5: %d", code)
	}
	write(t, c, "transit/cache-config", map[string]any{"size": 20})
	if got := mustRead(t, c, "transit/cache-config").Data["size"].(json.Number).String(); got != "20" {
		t.Fatalf("cache-config size = %s", got)
	}
}

// TestTransitRestoresVaultBackup restores a backup in the shape Vault
// writes (a policy with Vault's field names and numeric key type, and its
// archived versions) and decrypts ciphertexts made the way Vault makes
// them: a random 12-byte nonce, then the AES-GCM ciphertext and tag; and,
// for a convergent derived key, keys from HKDF-SHA256(key, context) whose
// second half keys the HMAC-SHA256 of the plaintext that gives the nonce.
func TestTransitRestoresVaultBackup(t *testing.T) {
	c := transitClient(t)
	key := []byte("0123456789abcdef0123456789abcdef")
	hmacKey := []byte("01234567890123456789012345678901")
	entry := map[string]any{"key": key, "hmac_key": hmacKey, "time": "2024-01-01T00:00:00Z", "creation_time": 1704067200, "convergent_version": 0}
	policy := map[string]any{
		"name": "from-vault", "type": 0, "keys": map[string]any{"1": entry},
		"derived": false, "kdf": 0, "convergent_encryption": false, "exportable": true, "allow_plaintext_backup": true,
		"min_decryption_version": 1, "min_encryption_version": 0, "latest_version": 1, "archive_version": 1,
		"archive_min_version": 0, "min_available_version": 0, "deletion_allowed": false, "convergent_version": 0,
		"backup_info": map[string]any{"time": "2024-01-01T00:00:00Z", "version": 1}, "restore_info": nil,
		"version_template": "", "storage_prefix": "", "auto_rotate_period": 0,
	}
	backup := func(p map[string]any) string {
		raw, err := json.Marshal(map[string]any{"policy": p, "archived_keys": map[string]any{"keys": []any{map[string]any{}, p["keys"].(map[string]any)["1"]}}})
		if err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(raw)
	}
	write(t, c, "transit/restore", map[string]any{"backup": backup(policy)})

	nonce := []byte("fixed nonce!")
	block, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(block)
	ct := "vault:v1:" + base64.StdEncoding.EncodeToString(gcm.Seal(append([]byte(nil), nonce...), nonce, []byte("from vault"), nil))
	if got := write(t, c, "transit/decrypt/from-vault", map[string]any{"ciphertext": ct}).Data["plaintext"]; got != b64("from vault") {
		t.Fatalf("Vault-shaped ciphertext decrypts to %v", got)
	}
	// The HMAC key came along: HMAC-SHA256 of "the quick brown fox" under it.
	mac := write(t, c, "transit/hmac/from-vault", map[string]any{"input": b64("the quick brown fox")}).Data["hmac"]
	if mac != "vault:v1:UcBvm5VskkukzZHlPgm3p5P/Yr/PV6xpuOGZISya3A4=" {
		t.Fatalf("hmac = %v", mac)
	}

	// HashiCorp Vault numbers hmac keys 11; such a backup restores as an hmac key.
	vaultHMAC := map[string]any{}
	for k, v := range policy {
		vaultHMAC[k] = v
	}
	vaultHMAC["name"], vaultHMAC["type"], vaultHMAC["key_size"] = "vault-hmac", 11, 32
	vaultHMAC["keys"] = map[string]any{"1": map[string]any{"key": hmacKey, "hmac_key": hmacKey, "time": "2024-01-01T00:00:00Z"}}
	write(t, c, "transit/restore", map[string]any{"backup": backup(vaultHMAC)})
	if typ := mustRead(t, c, "transit/keys/vault-hmac").Data["type"]; typ != "hmac" {
		t.Fatalf("Vault hmac key restored as %v", typ)
	}
	if mac := write(t, c, "transit/hmac/vault-hmac", map[string]any{"input": b64("the quick brown fox")}).Data["hmac"]; mac != "vault:v1:UcBvm5VskkukzZHlPgm3p5P/Yr/PV6xpuOGZISya3A4=" {
		t.Fatalf("hmac with the restored Vault hmac key = %v", mac)
	}

	// A convergent derived key.
	conv := map[string]any{}
	for k, v := range policy {
		conv[k] = v
	}
	conv["name"], conv["derived"], conv["kdf"], conv["convergent_encryption"], conv["convergent_version"] = "conv-vault", true, 1, true, 3
	convEntry := map[string]any{}
	for k, v := range entry {
		convEntry[k] = v
	}
	convEntry["convergent_version"] = 3
	conv["keys"] = map[string]any{"1": convEntry}
	write(t, c, "transit/restore", map[string]any{"backup": backup(conv)})
	context := []byte("tenant-7")
	derived, err := hkdf.Key(sha256.New, key, nil, string(context), 64)
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, derived[32:])
	m.Write([]byte("card 4111"))
	convNonce := m.Sum(nil)[:12]
	block, _ = aes.NewCipher(derived[:32])
	gcm, _ = cipher.NewGCM(block)
	want := "vault:v1:" + base64.StdEncoding.EncodeToString(gcm.Seal(append([]byte(nil), convNonce...), convNonce, []byte("card 4111"), nil))
	got := write(t, c, "transit/encrypt/conv-vault", map[string]any{"plaintext": b64("card 4111"), "context": base64.StdEncoding.EncodeToString(context)}).Data["ciphertext"]
	if got != want {
		t.Fatalf("convergent ciphertext = %v, want Vault's %v", got, want)
	}
}

// TestTransitPolicies: a policy means what it says. Encrypting with a
// missing key creates it only with the create capability, and encrypt
// does not grant decrypt.
func TestTransitPolicies(t *testing.T) {
	c := transitClient(t)
	write(t, c, "transit/keys/existing", nil)
	if err := c.Sys().PutPolicy("enc-only", `path "transit/encrypt/*" { capabilities = ["update"] }`); err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().PutPolicy("enc-create", `path "transit/encrypt/*" { capabilities = ["create", "update"] }`); err != nil {
		t.Fatal(err)
	}
	token := func(policy string) *vault.Client {
		s, err := c.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{policy}})
		if err != nil {
			t.Fatal(err)
		}
		u, _ := c.Clone()
		u.SetToken(s.Auth.ClientToken)
		return u
	}
	enc := token("enc-only")
	ct := write(t, enc, "transit/encrypt/existing", map[string]any{"plaintext": b64("x")}).Data["ciphertext"]
	if code, _ := writeErr(t, enc, "transit/encrypt/new-key", map[string]any{"plaintext": b64("x")}); code != http.StatusForbidden {
		t.Fatalf("encrypt creating a key with update only: %d, want 403", code)
	}
	if code, _ := writeErr(t, enc, "transit/decrypt/existing", map[string]any{"ciphertext": ct}); code != http.StatusForbidden {
		t.Fatalf("decrypt with an encrypt-only token: %d, want 403", code)
	}
	write(t, token("enc-create"), "transit/encrypt/new-key", map[string]any{"plaintext": b64("x")})
	if k := mustRead(t, c, "transit/keys/new-key"); k.Data["type"] != "aes256-gcm96" {
		t.Fatalf("key created by encrypt: %v", k.Data)
	}
}
