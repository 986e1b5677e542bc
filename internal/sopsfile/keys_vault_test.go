package sopsfile

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeTransit speaks the documented wire format of a transit engine's
// encrypt and decrypt endpoints for one mount, with keys that rotate. It
// unit-tests the HTTP key source; the interop test in test/compat runs the
// real engine.
type fakeTransit struct {
	mount, token string

	mu       sync.Mutex
	versions map[string][]cipher.AEAD // key name -> AEAD per version (index 0 = v1)
	requests []string                 // method and path of every request
	tokens   []string                 // the token of every request
}

func newFakeTransit(t *testing.T, mount, token string) (*fakeTransit, *httptest.Server) {
	f := &fakeTransit{mount: mount, token: token, versions: map[string][]cipher.AEAD{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeTransit) rotate(t *testing.T, name string) {
	k := make([]byte, 32)
	rand.Read(k)
	b, _ := aes.NewCipher(k)
	g, err := cipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.versions[name] = append(f.versions[name], g)
}

func (f *fakeTransit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	f.tokens = append(f.tokens, r.Header.Get("X-Vault-Token"))
	fail := func(status int, msg string) {
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]any{"errors": []string{msg}})
	}
	if r.Header.Get("X-Vault-Token") != f.token {
		fail(http.StatusForbidden, "permission denied")
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/"+f.mount+"/")
	op, name, _ := strings.Cut(rest, "/")
	if !ok || (r.Method != http.MethodPost && r.Method != http.MethodPut) {
		fail(http.StatusNotFound, "unsupported path")
		return
	}
	var body map[string]string
	json.NewDecoder(r.Body).Decode(&body)
	keys := f.versions[name]
	if len(keys) == 0 {
		fail(http.StatusBadRequest, "encryption key not found")
		return
	}
	switch op {
	case "encrypt":
		pt, err := base64.StdEncoding.DecodeString(body["plaintext"])
		if err != nil {
			fail(http.StatusBadRequest, "plaintext is not base64")
			return
		}
		g := keys[len(keys)-1]
		nonce := make([]byte, g.NonceSize())
		rand.Read(nonce)
		ct := "vault:v" + strconv.Itoa(len(keys)) + ":" + base64.StdEncoding.EncodeToString(g.Seal(nonce, nonce, pt, nil))
		json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"ciphertext": ct, "key_version": len(keys)}})
	case "decrypt":
		parts := strings.SplitN(body["ciphertext"], ":", 3)
		if len(parts) != 3 || parts[0] != "vault" {
			fail(http.StatusBadRequest, "invalid ciphertext")
			return
		}
		v, _ := strconv.Atoi(strings.TrimPrefix(parts[1], "v"))
		raw, _ := base64.StdEncoding.DecodeString(parts[2])
		if v < 1 || v > len(keys) || len(raw) < 12 {
			fail(http.StatusBadRequest, "invalid ciphertext")
			return
		}
		pt, err := keys[v-1].Open(nil, raw[:12], raw[12:], nil)
		if err != nil {
			fail(http.StatusBadRequest, "cipher: message authentication failed")
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"plaintext": base64.StdEncoding.EncodeToString(pt)}})
	default:
		fail(http.StatusNotFound, "unsupported path")
	}
}

func (f *fakeTransit) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

// transitEnv clears every token source and sets VAULT_TOKEN.
func transitEnv(t *testing.T, vaultToken string) {
	t.Helper()
	t.Setenv("HOME", t.TempDir())
	t.Setenv("ARCA_TOKEN", "")
	t.Setenv("VAULT_TOKEN", vaultToken)
	t.Setenv(AllowlistEnv, "")
}

func transitKey(t *testing.T, uri string) []MasterKey {
	t.Helper()
	keys, err := ParseVaultTransitURIs(uri)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestParseVaultTransitURI(t *testing.T) {
	for uri, want := range map[string]VaultTransitKey{
		"https://arca.example.com:8200/v1/transit/keys/app": {Address: "https://arca.example.com:8200", EnginePath: "transit", KeyName: "app"},
		"http://127.0.0.1:8200/v1/team/a/transit/keys/db":   {Address: "http://127.0.0.1:8200", EnginePath: "team/a/transit", KeyName: "db"},
		"https://vault/v1/keys/keys/keys":                   {Address: "https://vault", EnginePath: "keys", KeyName: "keys"},
	} {
		k, err := ParseVaultTransitURI(uri)
		if err != nil {
			t.Fatalf("%s: %v", uri, err)
		}
		if *k != want {
			t.Fatalf("%s = %+v, want %+v", uri, *k, want)
		}
		if k.String() != uri {
			t.Fatalf("%s: String() = %s", uri, k)
		}
	}
	for uri, wantErr := range map[string]string{
		"vault.example.com/v1/transit/keys/app":     "not a URL",
		"ftp://vault/v1/transit/keys/app":           "not a URL",
		"https://vault/transit/keys/app":            "must start with /v1/",
		"https://vault/prefix/v1/transit/keys/app":  "must start with /v1/",
		"https://vault/v1/transit/app":              "must end with",
		"https://vault/v1/keys/app":                 "must end with",
		"https://vault/v1/transit/keys/":            "must not be empty",
		"https://vault/v1/transit/keys/a/b":         "not a transit key name",
		"https://vault/v1/../sys/keys/app":          "not a mount path",
		"https://vault/v1/transit//x/keys/app":      "not a mount path",
		"https://vault/v1/transit/keys/app?x=1":     "query",
		"https://user:pw@vault/v1/transit/keys/app": "user name",
	} {
		_, err := ParseVaultTransitURI(uri)
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%s: err = %v, want one saying %q", uri, err, wantErr)
		}
	}
}

// Whatever a URI holds, parsing never panics, and a parsed key's URI parses
// back to the same key, with names that stay within the engine.
func FuzzParseVaultTransitURI(f *testing.F) {
	f.Add("https://arca.example.com:8200/v1/transit/keys/app")
	f.Add("http://127.0.0.1:8200/v1/team/a/transit/keys/db")
	f.Add("https://vault/v1/../sys/keys/app")
	f.Fuzz(func(t *testing.T, uri string) {
		k, err := ParseVaultTransitURI(uri)
		if err != nil {
			return
		}
		again, err := ParseVaultTransitURI(k.String())
		if err != nil || *again != *k {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", uri, *k, k.String(), again, err)
		}
		if strings.Contains(k.KeyName, "/") || strings.Contains("/"+k.EnginePath+"/", "/../") {
			t.Fatalf("%q: names leave the engine: %+v", uri, *k)
		}
	})
}

func TestVaultTransitRoundTripAndRewrap(t *testing.T) {
	fake, srv := newFakeTransit(t, "team/transit", "s.goodtoken")
	fake.rotate(t, "app")
	transitEnv(t, "s.goodtoken")
	keys := transitKey(t, srv.URL+"/v1/team/transit/keys/app")

	enc, err := Encrypt([]byte("password: s3cr3t\n"), EncryptOptions{Format: YAML, KeyGroups: [][]MasterKey{keys}})
	if err != nil {
		t.Fatal(err)
	}
	file, err := Load(enc, YAML)
	if err != nil {
		t.Fatal(err)
	}
	entries := file.Metadata.KeyGroups[0]["hc_vault"]
	if len(entries) != 1 {
		t.Fatalf("hc_vault entries: %d, want 1\n%s", len(entries), enc)
	}
	for field, want := range map[string]string{"vault_address": srv.URL, "engine_path": "team/transit", "key_name": "app"} {
		if got, _ := entries[0].Get(field); got != want {
			t.Errorf("%s = %v, want %s", field, got, want)
		}
	}
	if v, _ := entries[0].Get("enc"); !strings.HasPrefix(v.(string), "vault:v1:") {
		t.Fatalf("enc = %v, want vault:v1:...", v)
	}
	created, _ := entries[0].Get("created_at")
	if want := "POST /v1/team/transit/encrypt/app"; fake.seen()[0] != want {
		t.Fatalf("request %q, want %q", fake.seen()[0], want)
	}

	sources := KeySources{"age": AgeIdentities{}, "hc_vault": VaultTransit{}}
	plain, err := Decrypt(enc, YAML, sources, false)
	if err != nil || string(plain) != "password: s3cr3t\n" {
		t.Fatalf("decrypt = %q, %v", plain, err)
	}

	// After the transit key rotates, a re-wrap uses its new version and
	// keeps the entry's creation time; the file still opens.
	fake.rotate(t, "app")
	dataKey, err := file.DataKey(sources)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := Rewrap(file.Metadata.KeyGroups, dataKey, 0)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := groups[0]["hc_vault"][0].Get("enc"); !strings.HasPrefix(v.(string), "vault:v2:") {
		t.Fatalf("re-wrapped enc = %v, want vault:v2:...", v)
	}
	if c, _ := groups[0]["hc_vault"][0].Get("created_at"); c != created {
		t.Fatalf("created_at %v became %v", created, c)
	}
	rewrapped, err := unwrapGroups(groups, 0, sources)
	if err != nil || string(rewrapped) != string(dataKey) {
		t.Fatalf("the re-wrapped data key does not unwrap to the same key: %v", err)
	}
}

func TestVaultTransitToken(t *testing.T) {
	fake, srv := newFakeTransit(t, "transit", "s.right")
	fake.rotate(t, "k")
	key := transitKey(t, srv.URL+"/v1/transit/keys/k")[0]

	// ARCA_TOKEN wins over VAULT_TOKEN.
	transitEnv(t, "s.wrong")
	t.Setenv("ARCA_TOKEN", "s.right")
	if _, err := key.Wrap(make([]byte, 32)); err != nil {
		t.Fatalf("with ARCA_TOKEN: %v", err)
	}
	// ~/.vault-token is used when no variable is set, as sops does.
	transitEnv(t, "")
	home, _ := os.UserHomeDir()
	os.WriteFile(filepath.Join(home, ".vault-token"), []byte("s.right\n"), 0o600)
	if _, err := key.Wrap(make([]byte, 32)); err != nil {
		t.Fatalf("with ~/.vault-token: %v", err)
	}
	// A wrong token gets the server's refusal, and the error never shows it.
	transitEnv(t, "s.wrong")
	_, err := key.Wrap(make([]byte, 32))
	if err == nil || !strings.Contains(err.Error(), "permission denied") || strings.Contains(err.Error(), "s.wrong") {
		t.Fatalf("wrong token: err = %v", err)
	}
	// No token at all is refused before any request.
	transitEnv(t, "")
	n := len(fake.seen())
	if _, err := key.Wrap(make([]byte, 32)); err == nil || !strings.Contains(err.Error(), "VAULT_TOKEN") {
		t.Fatalf("no token: err = %v", err)
	}
	if len(fake.seen()) != n {
		t.Fatal("a request went out without a token")
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if got := fake.tokens[0]; got != "s.right" {
		t.Fatalf("first request carried %q", got)
	}
}

func TestVaultTransitAllowlistAndHostileEntries(t *testing.T) {
	fake, srv := newFakeTransit(t, "transit", "s.tok")
	fake.rotate(t, "k")
	transitEnv(t, "s.tok")
	enc, err := Encrypt([]byte("a: b\n"), EncryptOptions{Format: YAML, KeyGroups: [][]MasterKey{transitKey(t, srv.URL+"/v1/transit/keys/k")}})
	if err != nil {
		t.Fatal(err)
	}
	sources := KeySources{"hc_vault": VaultTransit{}}
	n := len(fake.seen())
	for list, ok := range map[string]bool{"none": false, "https://elsewhere:8200": false, srv.URL: true, "https://elsewhere," + srv.URL + "/": true, "all": true} {
		t.Setenv(AllowlistEnv, list)
		_, err := Decrypt(enc, YAML, sources, false)
		if ok != (err == nil) {
			t.Fatalf("allowlist %q: err = %v", list, err)
		}
		if !ok && !strings.Contains(err.Error(), AllowlistEnv) {
			t.Fatalf("allowlist %q: the error does not say why: %v", list, err)
		}
	}
	if got := len(fake.seen()) - n; got != 3 {
		t.Fatalf("%d decrypt requests, want 3 (none for refused addresses)", got)
	}

	// An entry naming another path than the engine's decrypt endpoint is
	// refused before the token is sent anywhere.
	t.Setenv(AllowlistEnv, "")
	n = len(fake.seen())
	for field, bad := range map[string][2]string{
		"key_name":      {"../../sys/policies/acl/x", "key name"},
		"engine_path":   {"transit/../sys", "engine path"},
		"vault_address": {"file:///etc/passwd", "vault_address"},
	} {
		file, err := Load(enc, YAML)
		if err != nil {
			t.Fatal(err)
		}
		file.Metadata.KeyGroups[0]["hc_vault"][0].Set(field, bad[0])
		if _, err := file.DataKey(sources); err == nil || !strings.Contains(err.Error(), bad[1]) {
			t.Fatalf("%s=%q: err = %v, want one naming the %s", field, bad[0], err, bad[1])
		}
	}
	if len(fake.seen()) != n {
		t.Fatalf("hostile entries made requests: %v", fake.seen()[n:])
	}
}

func TestTransitAndAgeInOneGroup(t *testing.T) {
	fake, srv := newFakeTransit(t, "transit", "s.tok")
	fake.rotate(t, "k")
	transitEnv(t, "s.tok")
	age := newKey(t)
	group := append(transitKey(t, srv.URL+"/v1/transit/keys/k"), age.rcp...)
	enc, err := Encrypt([]byte("x: y\n"), EncryptOptions{Format: YAML, KeyGroups: [][]MasterKey{group}})
	if err != nil {
		t.Fatal(err)
	}
	// With the server gone, the age key still opens the file; without the
	// age identity, the transit key does.
	srv.Close()
	if _, err := Decrypt(enc, YAML, KeySources{"age": ids(age), "hc_vault": VaultTransit{}}, false); err != nil {
		t.Fatalf("age with the server down: %v", err)
	}
	_, err = Decrypt(enc, YAML, KeySources{"age": AgeIdentities{}, "hc_vault": VaultTransit{}}, false)
	if err == nil || !strings.Contains(err.Error(), "hc_vault") {
		t.Fatalf("neither key usable: err = %v", err)
	}
}

func TestConfigTransitKeys(t *testing.T) {
	dir := t.TempDir()
	age := newKey(t).id.Recipient().String()
	cfg := "creation_rules:\n" +
		"  - path_regex: flat\\.yaml$\n    age: " + age + "\n    hc_vault_transit_uri: http://a:8200/v1/transit/keys/one,http://b:8200/v1/t2/keys/two\n" +
		"  - path_regex: list\\.yaml$\n    hc_vault_transit_uri: [http://a:8200/v1/transit/keys/one]\n" +
		"  - path_regex: groups\\.yaml$\n    key_groups:\n      - hc_vault: [http://a:8200/v1/transit/keys/one]\n      - age: [" + age + "]\n        hc_vault: [http://b:8200/v1/t2/keys/two]\n" +
		"  - path_regex: bad\\.yaml$\n    hc_vault_transit_uri: http://a:8200/transit/keys/one\n"
	os.WriteFile(filepath.Join(dir, ConfigFileName), []byte(cfg), 0o600)
	c, err := LoadConfig(filepath.Join(dir, ConfigFileName))
	if err != nil {
		t.Fatal(err)
	}
	describe := func(name string) string {
		r, err := c.RuleFor(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		groups, err := r.Keys()
		if err != nil {
			return "error: " + err.Error()
		}
		var out []string
		for _, g := range groups {
			var ks []string
			for _, k := range g {
				if v, ok := k.(*VaultTransitKey); ok {
					ks = append(ks, v.String())
				} else {
					ks = append(ks, k.Kind())
				}
			}
			out = append(out, strings.Join(ks, " "))
		}
		return strings.Join(out, " | ")
	}
	for name, want := range map[string]string{
		"flat.yaml":   "age http://a:8200/v1/transit/keys/one http://b:8200/v1/t2/keys/two",
		"list.yaml":   "http://a:8200/v1/transit/keys/one",
		"groups.yaml": "http://a:8200/v1/transit/keys/one | age http://b:8200/v1/t2/keys/two",
		"bad.yaml":    "error: transit key URI \"http://a:8200/transit/keys/one\": the path must start with /v1/",
	} {
		if got := describe(name); !strings.HasPrefix(got, want) {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
}
