package compat

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	vault "github.com/hashicorp/vault/api"
	"gopkg.in/yaml.v3"

	"github.com/arcasec/arca/internal/server/servertest"
)

// sopsBinary finds the real sops that scripts/setup.d/40-sops.sh installs.
// In CI its absence is a failure; elsewhere the test skips.
func sopsBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("sops"); err == nil {
		return p
	}
	out, _ := exec.Command("go", "env", "GOPATH").Output()
	p := filepath.Join(strings.TrimSpace(string(out)), "bin", "sops")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("sops is not installed: scripts/setup.d/40-sops.sh should have installed it")
	}
	t.Skip("sops is not installed; run ./scripts/test to install it")
	return ""
}

// buildArca builds cmd/arca, so that `arca file` runs as users run it.
func buildArca(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "arca")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/arcasec/arca/cmd/arca").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// transitServer starts a dev server with the transit engine mounted at
// transit/ and keys named sops and other. It skips only when the server says it
// has no transit engine.
func transitServer(t *testing.T) (addr, root string, c *vault.Client) {
	t.Helper()
	addr, root = servertest.StartDev(t)
	c = newClient(t, addr, root)
	if err := c.Sys().Mount("transit", &vault.MountInput{Type: "transit"}); err != nil {
		if statusOf(err) == http.StatusBadRequest && strings.Contains(err.Error(), "plugin not found") {
			t.Skipf("this tree has no transit engine yet (the server answered: %v)", err)
		}
		t.Fatalf("mounting transit: %v", err)
	}
	for _, name := range []string{"sops", "other"} {
		if _, err := c.Logical().Write("transit/keys/"+name, nil); err != nil {
			t.Fatalf("creating the transit key %s: %v", name, err)
		}
	}
	return addr, root, c
}

// run runs a command in dir with env and returns its stdout, failing the
// test on a non-zero exit.
func run(t *testing.T, dir string, env []string, name string, args ...string) []byte {
	t.Helper()
	out, err := runCode(dir, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v", filepath.Base(name), strings.Join(args, " "), err)
	}
	return out
}

type cmdError struct {
	err    error
	stderr string
}

func (e *cmdError) Error() string { return e.err.Error() + "\n" + e.stderr }

func runCode(dir string, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Env = dir, env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, &cmdError{err: err, stderr: stderr.String()}
	}
	return out, nil
}

// sameYAML compares two documents (YAML or JSON) as parsed values.
func sameYAML(t *testing.T, what string, got, want []byte) {
	t.Helper()
	var a, b any
	if err := yaml.Unmarshal(got, &a); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, got)
	}
	yaml.Unmarshal(want, &b)
	ab, _ := yaml.Marshal(a)
	bb, _ := yaml.Marshal(b)
	if !bytes.Equal(ab, bb) {
		t.Fatalf("%s: decrypted content differs:\n--- got\n%s\n--- want\n%s", what, got, want)
	}
}

// transitEncs returns the enc values of a file's hc_vault entries.
func transitEncs(t *testing.T, enc []byte) []string {
	t.Helper()
	var out []string
	for _, m := range regexp.MustCompile(`vault:v\d+:[A-Za-z0-9+/=]+`).FindAll(enc, -1) {
		out = append(out, string(m))
	}
	if len(out) == 0 {
		t.Fatalf("no transit ciphertext in:\n%s", enc)
	}
	return out
}

func TestSopsTransitInterop(t *testing.T) {
	sopsBinary(t)
	addr, root, c := transitServer(t)
	sopsTransitRoundTrips(t, addr, root, func() {
		if _, err := c.Logical().Write("transit/keys/sops/rotate", nil); err != nil {
			t.Fatalf("rotating the transit key: %v", err)
		}
	})
}

// sopsTransitRoundTrips drives sops and arca file against the transit keys
// at addr/v1/transit/keys/{sops,other}; rotate rotates the first.
func sopsTransitRoundTrips(t *testing.T, addr, root string, rotate func()) {
	sops := sopsBinary(t)
	arca := buildArca(t)
	dir := t.TempDir()
	uri := addr + "/v1/transit/keys/sops"
	home := t.TempDir()
	env := []string{
		"HOME=" + home, "PATH=" + os.Getenv("PATH"), "XDG_CONFIG_HOME=" + home,
		"VAULT_ADDR=" + addr, "VAULT_TOKEN=" + root,
	}

	plain := map[string]string{
		"app.yaml": "db:\n    user: app\n    password: s3cr3t\nport: 5432\n",
		"app.json": "{\n\t\"token\": \"s3cr3t\",\n\t\"list\": [\n\t\t1,\n\t\ttrue\n\t]\n}\n",
	}
	for name, text := range plain {
		os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600)

		// sops writes, Arca reads.
		sopsEnc := run(t, dir, env, sops, "--encrypt", "--hc-vault-transit", uri, name)
		if bytes.Contains(sopsEnc, []byte("s3cr3t")) || !bytes.Contains(sopsEnc, []byte("hc_vault")) {
			t.Fatalf("sops's file:\n%s", sopsEnc)
		}
		os.WriteFile(filepath.Join(dir, "sops."+name), sopsEnc, 0o600)
		sameYAML(t, "arca file decrypt of sops's "+name, run(t, dir, env, arca, "file", "decrypt", "sops."+name), []byte(text))

		// Arca writes, sops reads.
		arcaEnc := run(t, dir, env, arca, "file", "encrypt", "--hc-vault-transit", uri, name)
		if bytes.Contains(arcaEnc, []byte("s3cr3t")) {
			t.Fatalf("plaintext in arca's file:\n%s", arcaEnc)
		}
		if enc := transitEncs(t, arcaEnc); !strings.HasPrefix(enc[0], "vault:v1:") {
			t.Fatalf("arca's enc = %s, want vault:v1:", enc[0])
		}
		os.WriteFile(filepath.Join(dir, "arca."+name), arcaEnc, 0o600)
		sameYAML(t, "sops -d of arca's "+name, run(t, dir, env, sops, "--decrypt", "arca."+name), []byte(text))
	}

	// The transit key rotates. `arca file rotate` makes a new data key
	// wrapped by version 2; `arca file updatekeys` re-wraps the existing
	// data key with version 2 for the .sops.yaml rule. sops opens both.
	rotate()
	run(t, dir, env, arca, "file", "rotate", "-i", "arca.app.yaml")
	rotated, _ := os.ReadFile(filepath.Join(dir, "arca.app.yaml"))
	if enc := transitEncs(t, rotated); !strings.HasPrefix(enc[0], "vault:v2:") {
		t.Fatalf("after rotate, enc = %s, want vault:v2:", enc[0])
	}
	sameYAML(t, "sops -d after arca file rotate", run(t, dir, env, sops, "--decrypt", "arca.app.yaml"), []byte(plain["app.yaml"]))

	os.WriteFile(filepath.Join(dir, ".sops.yaml"), []byte("creation_rules:\n  - path_regex: \\.json$\n    hc_vault_transit_uri: "+uri+"\n"), 0o600)
	before, _ := os.ReadFile(filepath.Join(dir, "sops.app.json"))
	run(t, dir, env, arca, "file", "updatekeys", "-y", "sops.app.json")
	after, _ := os.ReadFile(filepath.Join(dir, "sops.app.json"))
	if enc := transitEncs(t, after); !strings.HasPrefix(enc[0], "vault:v2:") {
		t.Fatalf("after updatekeys, enc = %s, want vault:v2:", enc[0])
	}
	if valueOf(t, before, "token") != valueOf(t, after, "token") || valueOf(t, before, "lastmodified") != valueOf(t, after, "lastmodified") {
		t.Fatalf("updatekeys changed the values or lastmodified: it must change only the keys\n--- before\n%s\n--- after\n%s", before, after)
	}
	sameYAML(t, "sops -d after arca file updatekeys", run(t, dir, env, sops, "--decrypt", "sops.app.json"), []byte(plain["app.json"]))

	// A file from .sops.yaml, encrypted by Arca without a key flag.
	os.WriteFile(filepath.Join(dir, "new.json"), []byte(plain["app.json"]), 0o600)
	run(t, dir, env, arca, "file", "encrypt", "-i", "new.json")
	sameYAML(t, "sops -d of a file encrypted from .sops.yaml", run(t, dir, env, sops, "--decrypt", "new.json"), []byte(plain["app.json"]))

	// Moving a file to another transit key.
	otherURI := addr + "/v1/transit/keys/other"
	run(t, dir, env, arca, "file", "rotate", "-i", "--add-hc-vault-transit", otherURI, "--rm-hc-vault-transit", uri, "new.json")
	moved, _ := os.ReadFile(filepath.Join(dir, "new.json"))
	if n := len(transitEncs(t, moved)); n != 1 || !bytes.Contains(moved, []byte(`"key_name": "other"`)) {
		t.Fatalf("after moving to the other key, %d entries:\n%s", n, moved)
	}
	sameYAML(t, "sops -d after moving to another key", run(t, dir, env, sops, "--decrypt", "new.json"), []byte(plain["app.json"]))

	// sops rotates a file Arca wrote; Arca still opens it.
	run(t, dir, env, sops, "rotate", "-i", "arca.app.json")
	sameYAML(t, "arca file decrypt after sops rotate", run(t, dir, env, arca, "file", "decrypt", "arca.app.json"), []byte(plain["app.json"]))
}

// valueOf returns the string value of a JSON key.
func valueOf(t *testing.T, doc []byte, key string) string {
	t.Helper()
	m := regexp.MustCompile(`"` + key + `": "([^"]+)"`).FindSubmatch(doc)
	if m == nil {
		t.Fatalf("no %q in:\n%s", key, doc)
	}
	return string(m[1])
}

// A token's policy decides what `arca file` may do with the transit key:
// decrypt-only can open files and cannot make new ones.
func TestSopsTransitPolicy(t *testing.T) {
	_, root, c := transitServer(t)
	if err := c.Sys().PutPolicy("files-read", `path "transit/decrypt/sops" { capabilities = ["update"] }`); err != nil {
		t.Fatal(err)
	}
	s, err := c.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"files-read"}})
	if err != nil {
		t.Fatal(err)
	}
	sopsTransitDecryptOnly(t, c.Address(), root, s.Auth.ClientToken)
}

// sopsTransitDecryptOnly checks what a token that may only decrypt with
// addr/v1/transit/keys/sops can do.
func sopsTransitDecryptOnly(t *testing.T, addr, root, decryptOnly string) {
	arca := buildArca(t)
	dir, uri := t.TempDir(), addr+"/v1/transit/keys/sops"
	env := func(token string) []string {
		// A broken age setup does not matter to a file with only transit keys.
		return []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH"), "ARCA_TOKEN=" + token, "VAULT_TOKEN=wrong",
			"SOPS_AGE_KEY_FILE=" + filepath.Join(dir, "missing-keys.txt")}
	}
	os.WriteFile(filepath.Join(dir, "a.yaml"), []byte("password: s3cr3t\n"), 0o600)
	run(t, dir, env(root), arca, "file", "encrypt", "-i", "--hc-vault-transit", uri, "a.yaml")

	sameYAML(t, "decrypt with a decrypt-only token", run(t, dir, env(decryptOnly), arca, "file", "decrypt", "a.yaml"), []byte("password: s3cr3t\n"))
	os.WriteFile(filepath.Join(dir, "b.yaml"), []byte("k: v\n"), 0o600)
	_, err := runCode(dir, env(decryptOnly), arca, "file", "encrypt", "--hc-vault-transit", uri, "b.yaml")
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("encrypt with a decrypt-only token: err = %v, want permission denied", err)
	}
	if strings.Contains(err.Error(), decryptOnly) {
		t.Fatal("the error shows the token")
	}
}
