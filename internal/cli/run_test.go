package cli

import (
	"encoding/base64"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runSecret is a value with characters that URL and JSON encode.
const runSecret = "pa55/w0rd+P@ss word&x"

// TestRunMasksSecrets: a child that prints the secret whole, split across
// two writes, base64-encoded (alone and as HTTP Basic credentials) and
// URL-encoded inside a URL, on stdout and stderr: none of it appears.
func TestRunMasksSecrets(t *testing.T) {
	devEnv(t)
	mustRun(t, "kv", "put", "secret/app/db", "password="+runSecret, "username=app")
	half := len(runSecret) / 2
	script := `
printf '%s\n' "whole: $DB_PASSWORD"
printf 'split: %s' "$HEAD"; sleep 0.3; printf '%s\n' "$TAIL"
printf '%s' "$DB_PASSWORD" | base64
printf 'user:%s' "$DB_PASSWORD" | base64
echo "https://db.example.com/connect?user=app&password=$1&ssl=1"
echo "stderr: $DB_PASSWORD" >&2
`
	// The halves come in through the environment of the script, not as
	// secrets, so only the whole value is known to the mask.
	t.Setenv("HEAD", runSecret[:half])
	t.Setenv("TAIL", runSecret[half:])
	code, out, errOut := arca(t, "", "run", "-secret", "DB_PASSWORD=secret/app/db#password",
		"--", "/bin/sh", "-c", script, "sh", url.QueryEscape(runSecret))
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	all := out + errOut
	for name, form := range map[string]string{
		"whole":          runSecret,
		"base64":         base64.StdEncoding.EncodeToString([]byte(runSecret)),
		"basic auth":     base64.StdEncoding.EncodeToString([]byte("user:" + runSecret)),
		"url-encoded":    url.QueryEscape(runSecret),
		"the first half": runSecret[:half],
	} {
		if strings.Contains(all, form) {
			t.Errorf("%s form %q appears in the output:\n%s", name, form, all)
		}
	}
	for _, want := range []string{"whole: *****\n", "split: *****\n", "user=app&password=*****&ssl=1"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if errOut != "stderr: *****\n" {
		t.Errorf("stderr %q", errOut)
	}
	// -mask=false leaves the output alone.
	code, out, _ = arca(t, "", "run", "-mask=false", "-secret", "DB_PASSWORD=secret/app/db#password", "--", "/bin/sh", "-c", `echo "$DB_PASSWORD"`)
	if code != 0 || out != runSecret+"\n" {
		t.Fatalf("-mask=false: %d %q", code, out)
	}
}

func TestRunSecretPathAndKVv1(t *testing.T) {
	devEnv(t)
	mustRun(t, "kv", "put", "secret/app/api", "api-key=k-123456", "Client.ID=c-42", "port=8080")
	mustRun(t, "secrets", "enable", "-path=old", "-version=1", "kv")
	mustRun(t, "kv", "put", "old/legacy", "token=t-legacy")
	code, out, errOut := arca(t, "", "run", "-mask=false", "-secret-path", "secret/app/api",
		"-secret", "LEGACY=old/legacy#token", "--", "/bin/sh", "-c", `echo "$API_KEY|$CLIENT_ID|$PORT|$LEGACY"`)
	if code != 0 || out != "k-123456|c-42|8080|t-legacy\n" {
		t.Fatalf("exit %d, stdout %q, stderr %s", code, out, errOut)
	}
}

func TestRunErrors(t *testing.T) {
	devEnv(t)
	mustRun(t, "kv", "put", "secret/app/api", "api-key=k-123456")
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"missing field", []string{"-secret", "X=secret/app/api#nope"}, []string{`no field "nope"`, "secret/app/api"}},
		{"no field given", []string{"-secret", "X=secret/app/api"}, []string{"VAR=path#field"}},
		{"conflict", []string{"-secret", "API_KEY=secret/app/api#api-key", "-secret-path", "secret/app/api"},
			[]string{"API_KEY", "-secret API_KEY=secret/app/api#api-key", `-secret-path secret/app/api (field "api-key")`}},
		{"no secret", []string{"-secret", "X=secret/app/none#a"}, []string{"secret/data/app/none"}},
		{"nothing asked", nil, []string{"-secret"}},
	} {
		args := append(append([]string{"run"}, tc.args...), "--", "/bin/true")
		code, _, errOut := arca(t, "", args...)
		if code == 0 {
			t.Errorf("%s: exit 0", tc.name)
		}
		for _, w := range tc.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%s: stderr lacks %q: %s", tc.name, w, errOut)
			}
		}
		if strings.Contains(errOut, "k-123456") {
			t.Errorf("%s: the secret value is in the error: %s", tc.name, errOut)
		}
	}
}

func TestRunExitCodeAndPristine(t *testing.T) {
	devEnv(t)
	mustRun(t, "kv", "put", "secret/app/api", "api-key=k-123456")
	if code, _, _ := arca(t, "", "run", "-secret", "K=secret/app/api#api-key", "--", "/bin/sh", "-c", "exit 7"); code != 7 {
		t.Fatalf("exit code %d, want 7", code)
	}
	if code, _, errOut := arca(t, "", "run", "-secret", "K=secret/app/api#api-key", "--", "no-such-command-arca"); code != 127 || !strings.Contains(errOut, "no-such-command-arca") {
		t.Fatalf("missing command: %d %s", code, errOut)
	}
	t.Setenv("ARCA_RUN_TEST_OUTER", "outer")
	_, out, _ := arca(t, "", "run", "-mask=false", "-secret", "K=secret/app/api#api-key", "--", "/bin/sh", "-c", `echo "[$ARCA_RUN_TEST_OUTER][$K]"`)
	if out != "[outer][k-123456]\n" {
		t.Fatalf("inherited environment: %q", out)
	}
	_, out, _ = arca(t, "", "run", "-pristine", "-mask=false", "-secret", "K=secret/app/api#api-key", "--", "/bin/sh", "-c", `echo "[$ARCA_RUN_TEST_OUTER][$K]"`)
	if out != "[][k-123456]\n" {
		t.Fatalf("-pristine: %q", out)
	}
}

func TestRunDotenvTemplate(t *testing.T) {
	devEnv(t)
	mustRun(t, "kv", "put", "secret/app/db", "password="+runSecret, "username=app")
	dir := t.TempDir()
	tmpl := filepath.Join(dir, "secrets.env.tmpl")
	os.WriteFile(tmpl, []byte(`# rendered by arca run
{{ with secret "secret/data/app/db" }}
DB_USER={{ .Data.data.username }}
export DB_PASSWORD="{{ .Data.data.password }}"
{{ end }}
STATIC='single $quoted'
`), 0o600)
	code, out, errOut := arca(t, "", "run", "-dotenv", tmpl, "--", "/bin/sh", "-c", `echo "$DB_USER|$STATIC|$DB_PASSWORD"`)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	// Every value the template renders counts as a secret ("app" is too
	// short to mask).
	if out != "app|*****|*****\n" {
		t.Fatalf("stdout %q", out)
	}
	// The values reached the child intact.
	_, out, _ = arca(t, "", "run", "-mask=false", "-dotenv", tmpl, "--", "/bin/sh", "-c", `echo "$STATIC|$DB_PASSWORD"`)
	if out != "single $quoted|"+runSecret+"\n" {
		t.Fatalf("unmasked: %q", out)
	}
	// A variable set both by -secret and by the template names both.
	code, _, errOut = arca(t, "", "run", "-dotenv", tmpl, "-secret", "DB_USER=secret/app/db#username", "--", "/bin/true")
	if code == 0 || !strings.Contains(errOut, "-secret DB_USER=secret/app/db#username") || !strings.Contains(errOut, "-dotenv "+tmpl+" (line") {
		t.Fatalf("conflict: %d %s", code, errOut)
	}
}

func TestParseDotenv(t *testing.T) {
	got, err := parseDotenv("A=1\n# c\n\nexport B = two words # note\nC='lit $X \\n'\nD=\"l1\\nl2 \\\"q\\\" \\$HOME\"\nE=\"multi\nline\"\nF=\n")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"A": "1", "B": "two words", "C": `lit $X \n`, "D": "l1\nl2 \"q\" $HOME", "E": "multi\nline", "F": ""}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for _, e := range got {
		if want[e.name] != e.value {
			t.Errorf("%s = %q, want %q", e.name, e.value, want[e.name])
		}
	}
	for _, bad := range []string{"novalue\n", "A='open\n", "A=\"open\n", "A=\"x\" y\n", "BAD KEY=1\n"} {
		if _, err := parseDotenv(bad); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
