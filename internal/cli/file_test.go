package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"filippo.io/age"
	"gopkg.in/yaml.v3"
)

// sopsBinary finds the real sops the test command installs. In CI its
// absence is a failure; elsewhere the interop tests skip.
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

// ageEnv makes a test-only age key, points SOPS_AGE_KEY_FILE at it and
// returns the recipient.
func ageEnv(t *testing.T) (recipient string) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "keys.txt")
	os.WriteFile(keyFile, []byte("# test key\n"+id.String()+"\n"), 0o600)
	t.Setenv("SOPS_AGE_KEY_FILE", keyFile)
	t.Setenv("SOPS_AGE_KEY", "")
	t.Setenv("SOPS_AGE_RECIPIENTS", "")
	t.Setenv("XDG_CONFIG_HOME", dir)
	t.Setenv("HOME", dir)
	return id.Recipient().String()
}

var interopSamples = map[string]string{
	"app.yaml": "name: app\nport: 5432\nratio: 1.5\nenabled: true\nnested:\n    password: s3cr3t\n    hosts:\n        - a\n        - b\npublic_unencrypted: visible\n",
	"app.json": "{\n\t\"name\": \"app\",\n\t\"port\": 5432,\n\t\"nested\": {\n\t\t\"password\": \"s3cr3t\",\n\t\t\"list\": [\n\t\t\t1,\n\t\t\ttrue\n\t\t]\n\t}\n}\n",
	"app.env":  "NAME=app\nPASSWORD=s3cr3t\n",
	"app.ini":  "[db]\nuser     = app\npassword = s3cr3t\n\n[api]\ntoken = abc123\n",
	"app.bin":  "raw \x00 bytes\nPASSWORD=s3cr3t\n",
}

// sameDocument compares two decrypted documents: exactly, or as parsed
// YAML/JSON when only layout differs.
func sameDocument(t *testing.T, name string, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	if strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".json") {
		var a, b any
		if yaml.Unmarshal(got, &a) == nil && yaml.Unmarshal(want, &b) == nil && equalYAML(a, b) {
			return
		}
	}
	t.Fatalf("%s: decrypted content differs:\n--- got\n%q\n--- want\n%q", name, got, want)
}

func equalYAML(a, b any) bool {
	ab, _ := yaml.Marshal(a)
	bb, _ := yaml.Marshal(b)
	return bytes.Equal(ab, bb)
}

func TestFileInteropWithSops(t *testing.T) {
	sops := sopsBinary(t)
	recipient := ageEnv(t)
	dir := t.TempDir()
	for name, plain := range interopSamples {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			os.WriteFile(path, []byte(plain), 0o600)

			// Arca encrypts, sops decrypts.
			code, enc, errOut := arca(t, "", "file", "encrypt", "--age", recipient, path)
			if code != 0 {
				t.Fatalf("arca file encrypt: %d %s", code, errOut)
			}
			if strings.Contains(enc, "s3cr3t") {
				t.Fatalf("plaintext in the encrypted output:\n%s", enc)
			}
			encPath := filepath.Join(dir, "arca-"+name)
			os.WriteFile(encPath, []byte(enc), 0o600)
			cmd := exec.Command(sops, "--decrypt", encPath)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("sops -d of arca's file: %v\n%s", err, exitStderr(err))
			}
			sameDocument(t, name, out, []byte(plain))

			// sops encrypts, Arca decrypts.
			sopsEnc, err := exec.Command(sops, "--encrypt", "--age", recipient, path).Output()
			if err != nil {
				t.Fatalf("sops -e: %v\n%s", err, exitStderr(err))
			}
			sopsPath := filepath.Join(dir, "sops-"+name)
			os.WriteFile(sopsPath, sopsEnc, 0o600)
			code, dec, errOut := arca(t, "", "file", "decrypt", sopsPath)
			if code != 0 {
				t.Fatalf("arca file decrypt of sops's file: %d %s\n%s", code, errOut, sopsEnc)
			}
			sameDocument(t, name, []byte(dec), []byte(plain))
		})
	}
}

func exitStderr(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

func TestFileKeyGroupsInteropWithSops(t *testing.T) {
	sops := sopsBinary(t)
	recipient := ageEnv(t)
	other1, _ := age.GenerateX25519Identity()
	other2, _ := age.GenerateX25519Identity()
	dir := t.TempDir()
	// Three groups, threshold 2: our key is in groups 1 and 3.
	cfg := "creation_rules:\n  - path_regex: \\.yaml$\n    shamir_threshold: 2\n    key_groups:\n" +
		"      - age: [" + recipient + "]\n      - age: [" + other1.Recipient().String() + "]\n" +
		"      - age: [" + recipient + ", " + other2.Recipient().String() + "]\n"
	os.WriteFile(filepath.Join(dir, ".sops.yaml"), []byte(cfg), 0o600)
	t.Chdir(dir)
	os.WriteFile("g.yaml", []byte("token: abc\n"), 0o600)
	if code, _, errOut := arca(t, "", "file", "encrypt", "-i", "g.yaml"); code != 0 {
		t.Fatalf("encrypt with key groups: %s", errOut)
	}
	enc, _ := os.ReadFile("g.yaml")
	if !bytes.Contains(enc, []byte("key_groups")) || !bytes.Contains(enc, []byte("shamir_threshold: 2")) {
		t.Fatalf("no key groups in:\n%s", enc)
	}
	out, err := exec.Command(sops, "-d", "g.yaml").Output()
	if err != nil || string(out) != "token: abc\n" {
		t.Fatalf("sops -d of a key-group file: %q %v %s", out, err, exitStderr(err))
	}
}

func TestFileCommands(t *testing.T) {
	recipient := ageEnv(t)
	dir := t.TempDir()
	t.Chdir(dir)
	os.WriteFile(".sops.yaml", []byte("creation_rules:\n  - path_regex: secrets/.*\\.yaml$\n    encrypted_regex: ^(password|token)$\n    age: "+recipient+"\n"), 0o600)
	os.MkdirAll("secrets", 0o700)
	plain := "user: app\npassword: s3cr3t\nport: 5432\n"
	os.WriteFile("secrets/db.yaml", []byte(plain), 0o600)

	// The creation rule supplies the key and the encrypted_regex.
	if code, _, errOut := arca(t, "", "file", "encrypt", "-i", "secrets/db.yaml"); code != 0 {
		t.Fatalf("encrypt: %s", errOut)
	}
	enc, _ := os.ReadFile("secrets/db.yaml")
	if !bytes.Contains(enc, []byte("user: app")) || bytes.Contains(enc, []byte("s3cr3t")) || !bytes.Contains(enc, []byte("encrypted_regex")) {
		t.Fatalf("creation rule not applied:\n%s", enc)
	}
	if code, out, _ := arca(t, "", "file", "filestatus", "secrets/db.yaml"); code != 0 || !strings.Contains(out, `"encrypted":true`) {
		t.Fatalf("filestatus: %s", out)
	}
	if code, _, _ := arca(t, "", "file", "encrypt", "secrets/db.yaml"); code != exitFileAlreadyEncr {
		t.Fatalf("encrypting twice: exit %d, want %d", code, exitFileAlreadyEncr)
	}
	if code, out, _ := arca(t, "", "file", "decrypt", "--extract", `["password"]`, "secrets/db.yaml"); code != 0 || out != "s3cr3t" {
		t.Fatalf("extract: %d %q", code, out)
	}
	// set / unset.
	if code, _, errOut := arca(t, "", "file", "set", "secrets/db.yaml", `["password"]`, `"rotated"`); code != 0 {
		t.Fatalf("set: %s", errOut)
	}
	arca(t, "", "file", "unset", "secrets/db.yaml", `["port"]`)
	if _, out, _ := arca(t, "", "file", "decrypt", "secrets/db.yaml"); out != "user: app\npassword: rotated\n" {
		t.Fatalf("after set/unset: %q", out)
	}
	// rotate changes the data key and keeps the content.
	before, _ := os.ReadFile("secrets/db.yaml")
	if code, _, errOut := arca(t, "", "file", "rotate", "-i", "secrets/db.yaml"); code != 0 {
		t.Fatalf("rotate: %s", errOut)
	}
	after, _ := os.ReadFile("secrets/db.yaml")
	if bytes.Equal(before, after) {
		t.Fatal("rotate changed nothing")
	}
	if _, out, _ := arca(t, "", "file", "decrypt", "secrets/db.yaml"); out != "user: app\npassword: rotated\n" {
		t.Fatalf("after rotate: %q", out)
	}
	// exec-env passes top-level values to the child; with -mask=false its
	// output is left alone.
	if code, out, errOut := arca(t, "", "file", "exec-env", "-mask=false", "secrets/db.yaml", "--", "echo $password-$user"); code != 0 || out != "rotated-app\n" {
		t.Fatalf("exec-env: %d %q %s", code, out, errOut)
	}
	// Output that is not a terminal is masked by default: the values
	// (here "rotated"; "app" is too short to mask), on stdout and stderr,
	// and their base64.
	if code, out, errOut := arca(t, "", "file", "exec-env", "secrets/db.yaml", "--", "echo $password-$user; echo err $password >&2; printf %s $password | base64"); code != 0 ||
		out != "*****-app\n*****\n" || errOut != "err *****\n" {
		t.Fatalf("exec-env masked: %d %q %q", code, out, errOut)
	}
	if code, out, _ := arca(t, "", "file", "exec-file", "secrets/db.yaml", "--", "grep -c rotated {}"); code != 0 || out != "1\n" {
		t.Fatalf("exec-file: %d %q", code, out)
	}
	// The child's exit code, a signal death (128+N) and --pristine.
	if code, _, _ := arca(t, "", "file", "exec-env", "secrets/db.yaml", "--", "exit 9"); code != 9 {
		t.Fatalf("exec-env exit code: %d, want 9", code)
	}
	if code, _, _ := arca(t, "", "file", "exec-file", "secrets/db.yaml", "--", "kill -TERM $$"); code != 143 {
		t.Fatalf("exec-file killed by TERM: %d, want 143", code)
	}
	t.Setenv("ARCA_FILE_TEST_OUTER", "outer")
	if code, out, errOut := arca(t, "", "file", "exec-env", "--pristine", "secrets/db.yaml", "--", "echo [$ARCA_FILE_TEST_OUTER][$user]"); code != 0 || out != "[][app]\n" {
		t.Fatalf("exec-env --pristine: %d %q %s", code, out, errOut)
	}
	// edit with a scripted editor.
	t.Setenv("EDITOR", "sed -i s/rotated/edited/")
	if code, _, errOut := arca(t, "", "file", "edit", "secrets/db.yaml"); code != 0 {
		t.Fatalf("edit: %s", errOut)
	}
	if _, out, _ := arca(t, "", "file", "decrypt", "secrets/db.yaml"); !strings.Contains(out, "password: edited") {
		t.Fatalf("after edit: %q", out)
	}
	t.Setenv("EDITOR", "true")
	if code, _, _ := arca(t, "", "file", "edit", "secrets/db.yaml"); code != exitFileNotModified {
		t.Fatalf("unchanged edit: exit %d, want %d", code, exitFileNotModified)
	}
	// No plaintext left behind by edit or exec-file.
	leftovers, _ := filepath.Glob(filepath.Join(os.TempDir(), "arca-edit-*"))
	leftovers2, _ := filepath.Glob(filepath.Join(os.TempDir(), "arca-exec-*"))
	if len(leftovers)+len(leftovers2) > 0 {
		t.Fatalf("temporary plaintext left behind: %v %v", leftovers, leftovers2)
	}
}

func TestFileTamperAndWrongKey(t *testing.T) {
	recipient := ageEnv(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "s.yaml")
	os.WriteFile(path, []byte("a: one\nb: two\n"), 0o600)
	arca(t, "", "file", "encrypt", "-i", "--age", recipient, path)
	good, _ := os.ReadFile(path)

	tampered := bytes.Replace(good, []byte("\nb: ENC"), []byte("\nc: ENC"), 1)
	os.WriteFile(path, tampered, 0o600)
	code, out, errOut := arca(t, "", "file", "decrypt", "-i", path)
	if code == 0 || out != "" || !strings.Contains(errOut, "Error") {
		t.Fatalf("renamed key: exit %d, stdout %q", code, out)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, tampered) {
		t.Fatal("a failed in-place decrypt changed the file")
	}
	lines := strings.SplitN(string(good), "\n", 3)
	swapped := lines[1] + "\n" + lines[0] + "\n" + lines[2]
	os.WriteFile(path, []byte(swapped), 0o600)
	if code, _, errOut := arca(t, "", "file", "decrypt", path); code != exitFileMACMismatch {
		t.Fatalf("reordered values: exit %d (%s), want %d", code, errOut, exitFileMACMismatch)
	}
	os.WriteFile(path, good, 0o600)
	ageEnv(t) // a different key
	if code, _, _ := arca(t, "", "file", "decrypt", path); code != exitFileNoDataKey {
		t.Fatalf("wrong key: exit %d, want %d", code, exitFileNoDataKey)
	}
}

func TestFileFixturesFromOlderSops(t *testing.T) {
	// Files written by sops 3.8.1 (metadata in struct order, JSON numbers as
	// floats), with the test-only key beside them.
	dir := filepath.Join("testdata", "sops-3.8.1")
	key, err := os.ReadFile(filepath.Join(dir, "keys.txt"))
	if err != nil {
		t.Skip("no fixtures")
	}
	t.Setenv("SOPS_AGE_KEY", string(key))
	t.Setenv("SOPS_AGE_KEY_FILE", "")
	for _, name := range []string{"app.yaml", "app.json", "app.env"} {
		want, _ := os.ReadFile(filepath.Join(dir, "plain-"+name))
		code, out, errOut := arca(t, "", "file", "decrypt", filepath.Join(dir, name))
		if code != 0 {
			t.Fatalf("%s: %s", name, errOut)
		}
		sameDocument(t, name, []byte(out), want)
	}
}

func TestFileKeepsForeignKeysAndGitDiff(t *testing.T) {
	recipient := ageEnv(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "s.yaml")
	os.WriteFile(path, []byte("token: abc\n"), 0o600)
	if code, _, errOut := arca(t, "", "file", "encrypt", "-i", "--age", recipient, path); code != 0 {
		t.Fatal(errOut)
	}
	// Add a PGP and a KMS entry, as a sops user with those keys would have.
	enc, _ := os.ReadFile(path)
	foreign := "    pgp:\n        - created_at: \"2024-01-01T00:00:00Z\"\n          enc: |\n            -----BEGIN PGP MESSAGE-----\n            wcBMA0xxx\n            -----END PGP MESSAGE-----\n          fp: 85D77543B3D624B63CEA9E6DBC17301B491B3F21\n" +
		"    kms:\n        - arn: arn:aws:kms:eu-west-1:111122223333:key/abcd\n          created_at: \"2024-01-01T00:00:00Z\"\n          enc: AQICAHh==\n          aws_profile: \"\"\n"
	withForeign := strings.Replace(string(enc), "    lastmodified:", foreign+"    lastmodified:", 1)
	os.WriteFile(path, []byte(withForeign), 0o600)
	// Editing a value keeps them, untouched.
	if code, _, errOut := arca(t, "", "file", "set", path, `["token"]`, `"xyz"`); code != 0 {
		t.Fatalf("set: %s", errOut)
	}
	after, _ := os.ReadFile(path)
	for _, want := range []string{"fp: 85D77543B3D624B63CEA9E6DBC17301B491B3F21", "wcBMA0xxx", "arn: arn:aws:kms:eu-west-1:111122223333:key/abcd", "enc: AQICAHh=="} {
		if !strings.Contains(string(after), want) {
			t.Fatalf("%q was lost:\n%s", want, after)
		}
	}
	// git-diff prints the decrypted text, and the file as it is without a key.
	if code, out, _ := arca(t, "", "file", "git-diff", path); code != 0 || out != "token: xyz\n" {
		t.Fatalf("git-diff: %d %q", code, out)
	}
	ageEnv(t)
	if code, out, _ := arca(t, "", "file", "git-diff", path); code != 0 || !strings.Contains(out, "ENC[AES256_GCM") {
		t.Fatalf("git-diff without a key: %d %q", code, out)
	}
}

// updatekeys re-wraps the data key for the creation rule's keys and leaves
// the values, the MAC and lastmodified as they were, as sops does; sops
// opens the result with the new key.
func TestFileUpdateKeysKeepsValues(t *testing.T) {
	first := ageEnv(t)
	second, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Chdir(dir)
	os.WriteFile("s.yaml", []byte("password: s3cr3t\nport: 5432\n"), 0o600)
	if code, _, errOut := arca(t, "", "file", "encrypt", "-i", "--age", first, "s.yaml"); code != 0 {
		t.Fatal(errOut)
	}
	before, _ := os.ReadFile("s.yaml")
	os.WriteFile(".sops.yaml", []byte("creation_rules:\n  - age: "+first+","+second.Recipient().String()+"\n"), 0o600)
	if code, _, errOut := arca(t, "", "file", "updatekeys", "-y", "s.yaml"); code != 0 {
		t.Fatalf("updatekeys: %s", errOut)
	}
	after, _ := os.ReadFile("s.yaml")
	keep := regexp.MustCompile(`(?m)^(password|port|    lastmodified|    mac): .*$`)
	if b, a := keep.FindAllString(string(before), -1), keep.FindAllString(string(after), -1); len(b) != 4 || strings.Join(b, "\n") != strings.Join(a, "\n") {
		t.Fatalf("updatekeys changed values, MAC or lastmodified:\n--- before\n%s\n--- after\n%s", before, after)
	}
	if strings.Count(string(after), "recipient: age1") != 2 {
		t.Fatalf("want two age entries:\n%s", after)
	}
	// The second key alone opens it, with arca and with sops.
	keyFile := filepath.Join(dir, "second.txt")
	os.WriteFile(keyFile, []byte(second.String()+"\n"), 0o600)
	t.Setenv("SOPS_AGE_KEY_FILE", keyFile)
	if code, out, errOut := arca(t, "", "file", "decrypt", "s.yaml"); code != 0 || out != "password: s3cr3t\nport: 5432\n" {
		t.Fatalf("decrypt with the added key: %d %q %s", code, out, errOut)
	}
	out, err := exec.Command(sopsBinary(t), "--decrypt", "s.yaml").Output()
	if err != nil || string(out) != "password: s3cr3t\nport: 5432\n" {
		t.Fatalf("sops -d after updatekeys: %v %q %s", err, out, exitStderr(err))
	}
}

// Transit key URIs are checked before anything is sent, and a missing
// token is named, not sent as an empty header.
func TestFileTransitFlagErrors(t *testing.T) {
	ageEnv(t)
	t.Setenv("ARCA_TOKEN", "")
	t.Setenv("VAULT_TOKEN", "")
	t.Setenv("SOPS_VAULT_URIS", "")
	dir := t.TempDir()
	path := filepath.Join(dir, "a.yaml")
	os.WriteFile(path, []byte("k: v\n"), 0o600)
	for uri, want := range map[string]string{
		"https://arca.example.com/transit/keys/k":      "--hc-vault-transit: transit key URI \"https://arca.example.com/transit/keys/k\": the path must start with /v1/",
		"arca.example.com/v1/transit/keys/k":           "is not a URL like https://",
		"https://arca.example.com/v1/transit/keys/a/b": "is not a transit key name",
	} {
		code, _, errOut := arca(t, "", "file", "encrypt", "--hc-vault-transit", uri, path)
		if code == 0 || !strings.Contains(errOut, want) {
			t.Errorf("%s: exit %d, %q; want an error saying %q", uri, code, errOut, want)
		}
	}
	code, _, errOut := arca(t, "", "file", "encrypt", "--hc-vault-transit", "http://127.0.0.1:1/v1/transit/keys/k", path)
	if code == 0 || !strings.Contains(errOut, "no token for the transit engine at http://127.0.0.1:1") {
		t.Fatalf("no token: exit %d, %q", code, errOut)
	}
}

// rotate --add-*/--rm-* change who can open the file, as in sops; a
// removal that does not apply changes nothing.
func TestFileRotateAddsAndRemovesKeys(t *testing.T) {
	first := ageEnv(t)
	firstKeys := os.Getenv("SOPS_AGE_KEY_FILE")
	second, _ := age.GenerateX25519Identity()
	other, _ := age.GenerateX25519Identity()
	dir := t.TempDir()
	secondKeys := filepath.Join(dir, "second.txt")
	os.WriteFile(secondKeys, []byte(second.String()+"\n"), 0o600)
	path := filepath.Join(dir, "s.yaml")
	os.WriteFile(path, []byte("token: abc\n"), 0o600)
	if code, _, errOut := arca(t, "", "file", "encrypt", "-i", "--age", first, path); code != 0 {
		t.Fatal(errOut)
	}
	opens := func(keyFile string) bool {
		t.Setenv("SOPS_AGE_KEY_FILE", keyFile)
		code, out, _ := arca(t, "", "file", "decrypt", path)
		return code == 0 && out == "token: abc\n"
	}
	if code, _, errOut := arca(t, "", "file", "rotate", "-i", "--add-age", second.Recipient().String(), path); code != 0 {
		t.Fatalf("rotate --add-age: %s", errOut)
	}
	if !opens(firstKeys) || !opens(secondKeys) {
		t.Fatal("after --add-age both keys should open the file")
	}
	before, _ := os.ReadFile(path)
	for _, bad := range [][]string{
		{"--rm-age", other.Recipient().String()},
		{"--rm-hc-vault-transit", "https://arca.example.com:8200/v1/transit/keys/k"},
		{"--rm-age", first + "," + second.Recipient().String()},
	} {
		code, _, errOut := arca(t, "", append([]string{"file", "rotate", "-i"}, append(bad, path)...)...)
		if code == 0 {
			t.Fatalf("rotate %v succeeded", bad)
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
			t.Fatalf("rotate %v failed (%s) but changed the file", bad, errOut)
		}
	}
	if code, _, errOut := arca(t, "", "file", "rotate", "-i", "--rm-age", first, path); code != 0 {
		t.Fatalf("rotate --rm-age: %s", errOut)
	}
	if opens(firstKeys) || !opens(secondKeys) {
		t.Fatal("after --rm-age only the second key should open the file")
	}
}
