package scan

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultConfigLoads(t *testing.T) {
	c := DefaultConfig()
	if len(c.Rules) < 150 {
		t.Fatalf("only %d built-in rules", len(c.Rules))
	}
}

func detect(t *testing.T, path, text string) []Finding {
	t.Helper()
	return NewDetector(DefaultConfig()).Detect(Fragment{Raw: []byte(text), Path: path})
}

func TestDetectBasics(t *testing.T) {
	// A syntactically valid GitHub token with a correct checksum is built
	// by the rules package's tests; here an AWS key and a PEM block.
	text := "config:\n  aws_access_key_id: AKIAQYLPMN5HHHFPZAM2\n  other: 1\n"
	fs := detect(t, "app.yaml", text)
	if len(fs) != 1 || fs[0].RuleID != "aws-access-token" || fs[0].StartLine != 2 || fs[0].Secret != "AKIAQYLPMN5HHHFPZAM2" {
		t.Fatalf("findings = %+v", fs)
	}
	if fs[0].StartColumn != 22 {
		t.Fatalf("column = %d", fs[0].StartColumn)
	}
	// Documented example value: dropped.
	if fs := detect(t, "a.env", "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n"); len(fs) != 0 {
		t.Fatalf("example key reported: %+v", fs)
	}
	// Inline allow comments.
	for _, marker := range []string{"gitleaks:allow", "arca:allow"} {
		if fs := detect(t, "a.go", `key := "AKIAQYLPMN5HHHFPZAM2" // `+marker+"\n"); len(fs) != 0 {
			t.Fatalf("%s ignored: %+v", marker, fs)
		}
	}
	// Lockfiles are skipped whole.
	if fs := detect(t, "web/package-lock.json", text); len(fs) != 0 {
		t.Fatalf("lockfile scanned: %+v", fs)
	}
}

func TestFingerprintIgnoresLineNumbers(t *testing.T) {
	a := detect(t, "x.env", "A=1\nAWS=AKIAQYLPMN5HHHFPZAM2\n")
	b := detect(t, "x.env", "A=1\nB=2\nC=3\nAWS=AKIAQYLPMN5HHHFPZAM2\n")
	c := detect(t, "x.env", "A=1\nAWS=AKIAQYLPMN5HHHFPZAX7\n")
	if len(a) != 1 || len(b) != 1 || len(c) != 1 {
		t.Fatalf("findings: %d %d %d", len(a), len(b), len(c))
	}
	if a[0].Fingerprint != b[0].Fingerprint {
		t.Fatal("moving a line changed the fingerprint")
	}
	if a[0].Fingerprint == c[0].Fingerprint {
		t.Fatal("a different secret on the same line has the same fingerprint")
	}
}

func TestCustomConfigExtendsDefaults(t *testing.T) {
	c, err := ParseConfig(`
[extend]
useDefault = true
disabledRules = ["aws-access-token"]

[[rules]]
id = "acme-token"
description = "ACME internal token"
regex = '''acme_[a-z0-9]{24}'''
keywords = ["acme_"]
`)
	if err != nil {
		t.Fatal(err)
	}
	d := NewDetector(c)
	fs := d.Detect(Fragment{Raw: []byte("t = acme_q8w2e7r1t5y9u3i6o0p4a8s2\nk = AKIAQYLPMN5HHHFPZAM2\n"), Path: "x"})
	if len(fs) != 1 || fs[0].RuleID != "acme-token" {
		t.Fatalf("findings = %+v", fs)
	}
}

func TestConfigErrors(t *testing.T) {
	for text, mention := range map[string]string{
		`[[rules]]
id = "x"
regex = "("`: "regex",
		`[[rules]]
regex = "x"`: "id",
		`[[rules]]
id = "x"
regx = "x"`: "regx",
		`not toml`: "",
	} {
		_, err := ParseConfig(text)
		if err == nil || !strings.Contains(err.Error(), mention) {
			t.Errorf("%q: err = %v", text, err)
		}
	}
}

// TestGenericValueNamingItself drops assignments whose value contains the
// name it is assigned to: identifiers and placeholders, not secrets.
func TestGenericValueNamingItself(t *testing.T) {
	d := NewDetector(DefaultConfig())
	for _, line := range []string{
		`"encryptionKey": "encryptionKey1024"`,
		"flushBgCredit := flags&gcDrainFlushBgCredit != 0",
		"api_token = api_token_v2_prod",
	} {
		if fs := d.Detect(Fragment{Raw: []byte(line + "\n"), Path: "x.go"}); len(fs) != 0 {
			t.Errorf("%q reported: %+v", line, fs)
		}
	}
	if fs := d.Detect(Fragment{Raw: []byte("api_token = \"Xk9mQ2vL7pRtW4ab\"\n"), Path: "x.env"}); len(fs) != 1 {
		t.Errorf("a real generic secret is no longer reported: %+v", fs)
	}
}

func TestGoTestOutputIsNotAPassword(t *testing.T) {
	d := NewDetector(DefaultConfig())
	log := "=== RUN   TestLogin/wrong_password\n--- PASS: TestAddrStringAllocs/ipv4-in-ipv6+zone (0.00s)\n    --- FAIL: TestPasswordReset9 (0.01s)\n"
	if fs := d.Detect(Fragment{Raw: []byte(log), Path: "ci.log"}); len(fs) != 0 {
		t.Fatalf("go test output reported: %+v", fs)
	}
}

func TestTokenInsideBase64IsCoincidence(t *testing.T) {
	d := NewDetector(DefaultConfig())
	blob := "f0VMRgIBAQAAAAAAAAAAAAIAPgABAAAAADtFAAAAAABAAAAAAAAAAMgBAAAAAAAA+EAAAAAAA5mRABAAB0C0mLTjCQiZkQAQAAgD22CQkAAHQmSIN6\n"
	if fs := d.Detect(Fragment{Raw: []byte(blob), Path: "x.base64"}); len(fs) != 0 {
		t.Fatalf("a token shape inside base64 reported: %+v", fs)
	}
	if fs := d.Detect(Fragment{Raw: []byte("GET https://api.example.com/v1/" + awsKey + "\n"), Path: "x.log"}); len(fs) != 1 {
		t.Fatalf("a key after a short URL path is no longer reported: %+v", fs)
	}
}

func TestGenericSkipsMinifiedBundles(t *testing.T) {
	d := NewDetector(DefaultConfig())
	long := strings.Repeat("a.b=function(c){return c};", 40)
	line := long + `config={apiToken:"Xk9mQ2vL7pRtW4ab"};` + long + "\n"
	if fs := d.Detect(Fragment{Raw: []byte(line), Path: "static/bundle.js"}); len(fs) != 0 {
		t.Fatalf("generic match in a minified bundle: %+v", fs)
	}
	if fs := d.Detect(Fragment{Raw: []byte(long + "AWS=" + awsKey + ";" + long + "\n"), Path: "static/bundle.js"}); len(fs) != 1 {
		t.Fatalf("a provider key in a minified bundle is no longer found: %+v", fs)
	}
	if fs := d.Detect(Fragment{Raw: []byte(line), Path: "state.json"}); len(fs) == 0 {
		t.Fatal("a long JSON line lost its generic findings")
	}
}

// TestExtendMergesRules checks gitleaks's extend semantics: a rule with an
// id the extended config has changes only what it sets, global allowlists
// may target rules, and the keys gitleaks's own config carries are read.
func TestExtendMergesRules(t *testing.T) {
	const otherKey = "AKIAQWERTYUIOPASDFGH"
	c, err := ParseConfig(`
title = "ours"
description = "the default rules, with our reviewed keys"
minVersion = "v8.25.0"

[extend]
useDefault = true

# Only an allowlist and a description: the built-in regex stays.
[[rules]]
id = "aws-access-token"
description = "AWS key (see the runbook)"
[[rules.allowlists]]
regexes = ['''^` + awsKey + `$''']

[[allowlists]]
description = "drop every GitHub token, and only those"
targetRules = ["github-pat"]
regexes = ['''.''']
`)
	if err != nil {
		t.Fatal(err)
	}
	text := "a = " + awsKey + "\nb = " + otherKey + "\nc = " + ghToken + "\n"
	fs := NewDetector(c).Detect(Fragment{Raw: []byte(text), Path: "keys.txt"})
	if len(fs) != 1 || fs[0].RuleID != "aws-access-token" || fs[0].Secret != otherKey || fs[0].Description != "AWS key (see the runbook)" {
		t.Fatalf("findings = %+v", fs)
	}

	// [extend] path: the same merge over another file's rules.
	base := filepath.Join(t.TempDir(), "base.toml")
	if err := os.WriteFile(base, []byte(`
[[rules]]
id = "acme"
regex = '''acme_([a-z0-9]{8})'''
keywords = ["acme_"]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = ParseConfig("[extend]\npath = '''" + base + "'''\n[[rules]]\nid = \"acme\"\nsecretGroup = 1\nkeywords = [\"acme\"]\n")
	if err != nil {
		t.Fatal(err)
	}
	fs = NewDetector(c).Detect(Fragment{Raw: []byte("t = acme_q8w2e7r1\n"), Path: "x"})
	if len(fs) != 1 || fs[0].Secret != "q8w2e7r1" {
		t.Fatalf("extend path: %+v", fs)
	}

	// A chain as deep as gitleaks allows loads; a loop is an error, not a
	// stack overflow.
	mid := filepath.Join(t.TempDir(), "mid.toml")
	if err := os.WriteFile(mid, []byte("[extend]\npath = '''"+base+"'''\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err = ParseConfig("[extend]\npath = '''" + mid + "'''\n"); err != nil || len(c.Rules) != 1 || c.Rules[0].ID != "acme" {
		t.Fatalf("a chain of extends: %v %+v", err, c)
	}
	loop := filepath.Join(t.TempDir(), "loop.toml")
	if err := os.WriteFile(loop, []byte("[extend]\npath = '''"+loop+"'''\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(loop); err == nil || !strings.Contains(err.Error(), "at most 2 deep") {
		t.Fatalf("a config extending itself: %v", err)
	}

	for text, mention := range map[string]string{
		"[extend]\nuseDefault = true\npath = 'x.toml'\n":                                       "useDefault and path",
		"[[rules]]\nid = \"lonely\"\ndescription = \"no regex\"\n":                             `"lonely" needs a regex or a path`,
		"[extend]\nuseDefault = true\n[[allowlists]]\ntargetRules = ['nope']\npaths = ['x']\n": `"nope"`,
		"[[rules]]\nid = 'a'\nregex = 'a'\n[[rules.allowlists]]\ntargetRules = ['a']\n":        "targetRules",
		"[extend]\nuseDefault = true\n[[rules]]\nid = 'jwt'\nsecretGroup = 9\n":                "secretGroup 9",
		"[[rules]]\nid = 'a'\nregex = 'a'\n[[rules.required]]\nid = 'b'\n":                     "required",
	} {
		if _, err := ParseConfig(text); err == nil || !strings.Contains(err.Error(), mention) {
			t.Errorf("%q: err = %v, want it to mention %s", text, err, mention)
		}
	}
}
