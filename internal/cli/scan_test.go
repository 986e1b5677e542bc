package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestScanCommand(t *testing.T) {
	dir := t.TempDir()
	key := "AKIAQYLPMN5HHHFPZAM2"
	os.WriteFile(filepath.Join(dir, "app.env"), []byte("AWS_ACCESS_KEY_ID="+key+"\n"), 0o644)

	// Findings: exit 1, a JSON report with the secret redacted by default.
	report := filepath.Join(t.TempDir(), "r.json")
	code, _, errOut := arca(t, "", "scan", "dir", "--report-path", report, dir)
	if code != 1 || !strings.Contains(errOut, "leaks found: 1") {
		t.Fatalf("scan dir: exit %d, %s", code, errOut)
	}
	raw, _ := os.ReadFile(report)
	var fs []map[string]any
	if err := json.Unmarshal(raw, &fs); err != nil || len(fs) != 1 || fs[0]["Secret"] != "REDACTED" || strings.Contains(string(raw), key) {
		t.Fatalf("report: %v %s", err, raw)
	}
	// --redact=false shows it; --exit-code changes the code; SARIF to stdout.
	code, out, _ := arca(t, "", "scan", "dir", "--redact=false", "--exit-code=3", "-r", "-", dir)
	if code != 3 || !strings.Contains(out, key) {
		t.Fatalf("redact=false: exit %d\n%s", code, out)
	}
	if code, out, _ := arca(t, "", "scan", "dir", "-f", "sarif", "-r", "-", dir); code != 1 || !strings.Contains(out, `"version": "2.1.0"`) {
		t.Fatalf("sarif: exit %d\n%s", code, out)
	}
	// An ignore file in the target suppresses by fingerprint.
	fp := fs[0]["Fingerprint"].(string)
	os.WriteFile(filepath.Join(dir, ".arcaignore"), []byte(fp+"\n"), 0o644)
	if code, _, errOut := arca(t, "", "scan", "dir", dir); code != 0 {
		t.Fatalf("ignored finding still fails: %d %s", code, errOut)
	}
	os.Remove(filepath.Join(dir, ".arcaignore"))
	// A .gitleaks.toml in the target replaces the rules.
	os.WriteFile(filepath.Join(dir, ".gitleaks.toml"), []byte("[[rules]]\nid = \"only-acme\"\nregex = '''acme_[a-z0-9]{8}'''\nkeywords = [\"acme_\"]\n"), 0o644)
	if code, _, _ := arca(t, "", "scan", "dir", dir); code != 0 {
		t.Fatalf("custom config not used: exit %d", code)
	}
	// stdin, and errors exit 2.
	if code, _, _ := arca(t, "log line "+key+"\n", "scan", "stdin"); code != 1 {
		t.Fatalf("stdin: exit %d", code)
	}
	if code, _, _ := arca(t, "", "scan", "dir", filepath.Join(dir, "missing")); code != 2 {
		t.Fatalf("missing path: exit %d, want 2", code)
	}
	if code, _, _ := arca(t, "", "scan", "git", t.TempDir()); code != 2 {
		t.Fatalf("not a repository: exit %d, want 2", code)
	}
	if code, _, _ := arca(t, "", "scan", "dir", "--config", filepath.Join(dir, "app.env"), dir); code != 2 {
		t.Fatalf("bad config: exit %d, want 2", code)
	}
}

func TestScanFlagsAfterTarget(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.env"), []byte("aws_key = \"AKIAQWERTYUIOPASDFGH\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(t.TempDir(), "out.csv")
	code, _, errOut := arca(t, "", "scan", "dir", dir, "-f", "csv", "-r", report, "--exit-code", "0")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	raw, err := os.ReadFile(report)
	if err != nil || !strings.HasPrefix(string(raw), "RuleID,") || !strings.Contains(string(raw), "aws-access-token") {
		t.Fatalf("flags after the target were not applied: %v %q", err, raw)
	}
	if code, _, _ := arca(t, "", "scan", "dir", dir, "other"); code != 2 {
		t.Fatalf("two targets: exit %d, want 2", code)
	}
}
