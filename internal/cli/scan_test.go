package cli

import (
	"encoding/json"
	"os"
	"os/exec"
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

// scanRules runs a scan with a JSON report on stdout and returns the exit
// code and the findings' rule ids and file names, in report order.
func scanRules(t *testing.T, args ...string) (int, []string) {
	t.Helper()
	code, out, errOut := arca(t, "", append([]string{"scan"}, append(args, "-r", "-")...)...)
	if code == 2 {
		return code, []string{oneLine(errOut)}
	}
	var fs []struct{ RuleID, File string }
	if err := json.Unmarshal([]byte(out), &fs); err != nil {
		t.Fatalf("scan %v: %v\n%s", args, err, out)
	}
	var ids []string
	for _, f := range fs {
		ids = append(ids, f.RuleID+" "+filepath.Base(f.File))
	}
	return code, ids
}

// gitIn runs git in dir with a fixed identity and returns its output.
func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Ada", "GIT_AUTHOR_EMAIL=ada@example.com",
		"GIT_COMMITTER_NAME=Ada", "GIT_COMMITTER_EMAIL=ada@example.com", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestScanConfigPrecedence follows gitleaks's order: --config, then
// GITLEAKS_CONFIG, then GITLEAKS_CONFIG_TOML, then .gitleaks.toml in the
// target directory, then the built-in rules.
func TestScanConfigPrecedence(t *testing.T) {
	t.Setenv("GITLEAKS_CONFIG", "")
	t.Setenv("GITLEAKS_CONFIG_TOML", "")
	dir := t.TempDir()
	write := func(path, text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rule := func(id, word string) string {
		return "[[rules]]\nid = \"" + id + "\"\nregex = '''" + word + "_[a-z0-9]{8}'''\nkeywords = [\"" + word + "_\"]\n"
	}
	write(filepath.Join(dir, "app.env"), "AWS_ACCESS_KEY_ID=AKIAQYLPMN5HHHFPZAM2\nA=acme_q8w2e7r1\nB=flag_k3j5h7g9\nC=envt_z1x2c3v4\nD=file_m9n8b7v6\n")
	other := t.TempDir()
	flagConfig := filepath.Join(other, "flag.toml")
	write(flagConfig, rule("from-flag", "flag"))
	envConfig := filepath.Join(other, "env.toml")
	write(envConfig, rule("from-env-file", "file"))

	check := func(name string, want []string, args ...string) {
		t.Helper()
		code, got := scanRules(t, args...)
		if strings.Join(got, ", ") != strings.Join(want, ", ") {
			t.Errorf("%s: exit %d, findings %q, want %q", name, code, got, want)
		}
	}
	check("built-in rules", []string{"aws-access-token app.env"}, "dir", dir)
	write(filepath.Join(dir, ".gitleaks.toml"), rule("from-target", "acme"))
	check("target .gitleaks.toml", []string{"from-target app.env"}, "dir", dir)
	// A file target has no config of its own: the built-in rules.
	check("file target", []string{"aws-access-token app.env"}, "dir", filepath.Join(dir, "app.env"))
	t.Setenv("GITLEAKS_CONFIG_TOML", rule("from-env-toml", "envt"))
	check("GITLEAKS_CONFIG_TOML over the target's", []string{"from-env-toml app.env"}, "dir", dir)
	t.Setenv("GITLEAKS_CONFIG", envConfig)
	check("GITLEAKS_CONFIG over GITLEAKS_CONFIG_TOML", []string{"from-env-file app.env"}, "dir", dir)
	check("--config over the environment", []string{"from-flag app.env"}, "dir", "--config", flagConfig, dir)
	check("-c after the target", []string{"from-flag app.env"}, "dir", dir, "-c", flagConfig)

	t.Setenv("GITLEAKS_CONFIG", "")
	t.Setenv("GITLEAKS_CONFIG_TOML", "[[rules]]\nid = 'x'\n")
	if code, got := scanRules(t, "dir", dir); code != 2 || !strings.Contains(got[0], "GITLEAKS_CONFIG_TOML") || !strings.Contains(got[0], `"x"`) {
		t.Errorf("a bad GITLEAKS_CONFIG_TOML: exit %d, %q", code, got)
	}
	t.Setenv("GITLEAKS_CONFIG_TOML", "")
	t.Setenv("GITLEAKS_CONFIG", filepath.Join(other, "missing.toml"))
	if code, got := scanRules(t, "dir", dir); code != 2 || !strings.Contains(got[0], "missing.toml") {
		t.Errorf("a missing GITLEAKS_CONFIG: exit %d, %q", code, got)
	}
	t.Setenv("GITLEAKS_CONFIG", "")

	// [extend] useDefault adds the built-in rules to the target's own.
	write(filepath.Join(dir, ".gitleaks.toml"), "[extend]\nuseDefault = true\n\n"+rule("from-target", "acme"))
	check("useDefault", []string{"aws-access-token app.env", "from-target app.env"}, "dir", dir)
	// The config in a repository applies to its history and staged changes.
	gitIn(t, dir, "init", "-q", "-b", "main")
	gitIn(t, dir, "add", "-A")
	check("staged", []string{"aws-access-token app.env", "from-target app.env"}, "staged", dir)
	gitIn(t, dir, "commit", "-q", "-m", "x")
	check("git", []string{"aws-access-token app.env", "from-target app.env"}, "git", dir)
}

// TestScanIgnoreFiles follows gitleaks: the target's .gitleaksignore is
// always read, and so is the one -i names (by default the working
// directory's), a file or a directory holding one.
func TestScanIgnoreFiles(t *testing.T) {
	t.Setenv("GITLEAKS_CONFIG", "")
	t.Setenv("GITLEAKS_CONFIG_TOML", "")
	dir := t.TempDir()
	write := func(path, text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "a.env"), "AWS_ACCESS_KEY_ID=AKIAQYLPMN5HHHFPZAM2\n")
	write(filepath.Join(dir, "b.env"), "\nAWS_ACCESS_KEY_ID=AKIAXK7PLM3NQRT5WZ2B\n")
	write(filepath.Join(dir, "c.env"), "\n\nAWS_ACCESS_KEY_ID=AKIAQWERTYUIOPASDFGH\n")
	check := func(name string, want []string, args ...string) {
		t.Helper()
		code, got := scanRules(t, args...)
		if strings.Join(got, ", ") != strings.Join(want, ", ") {
			t.Errorf("%s: exit %d, findings %q, want %q", name, code, got, want)
		}
	}
	all := []string{"aws-access-token a.env", "aws-access-token b.env", "aws-access-token c.env"}
	check("no ignore file", all, "dir", dir)
	// gitleaks's file:rule:line fingerprints, in the target.
	write(filepath.Join(dir, ".gitleaksignore"), "# reviewed\na.env:aws-access-token:1\n")
	check("target .gitleaksignore", all[1:], "dir", dir)
	// -i adds to the target's, as a directory or a file.
	elsewhere := t.TempDir()
	write(filepath.Join(elsewhere, ".gitleaksignore"), "b.env:aws-access-token:2\n")
	check("-i directory", all[2:], "dir", "-i", elsewhere, dir)
	write(filepath.Join(elsewhere, "ignored.txt"), "c.env:aws-access-token:3\n")
	check("-i file", []string{all[1]}, "dir", dir, "--gitleaks-ignore-path", filepath.Join(elsewhere, "ignored.txt"))
	// Without -i, the working directory's is read.
	t.Chdir(elsewhere)
	check("working directory", all[2:], "dir", dir)
	// A fingerprint from another rule or line does not hide a finding.
	write(filepath.Join(dir, ".gitleaksignore"), "a.env:generic-api-key:1\na.env:aws-access-token:2\n")
	check("other fingerprints", all[:2], "dir", "-i", filepath.Join(elsewhere, "ignored.txt"), dir)

	// gitleaks names the files of a dir scan with the target in front, so
	// its fingerprints do too.
	write(filepath.Join(dir, ".gitleaksignore"), filepath.ToSlash(filepath.Join(dir, "a.env"))+":aws-access-token:1\n")
	check("gitleaks fingerprint, absolute target", all[1:], "dir", "-i", filepath.Join(elsewhere, "none"), dir)
	t.Chdir(filepath.Dir(dir))
	write(filepath.Join(dir, ".gitleaksignore"), filepath.Base(dir)+"/b.env:aws-access-token:2\n")
	check("gitleaks fingerprint, relative target", []string{all[0], all[2]}, "dir", "-i", filepath.Join(elsewhere, "none"), filepath.Base(dir))

	// git and staged scans read the repository's, with gitleaks's
	// commit:file:rule:line fingerprints for history.
	repo := t.TempDir()
	write(filepath.Join(repo, "a.env"), "AWS_ACCESS_KEY_ID=AKIAQYLPMN5HHHFPZAM2\n")
	gitIn(t, repo, "init", "-q", "-b", "main")
	gitIn(t, repo, "add", "-A")
	gitIn(t, repo, "commit", "-q", "-m", "a")
	check("git, nothing ignored", all[:1], "git", "-i", repo, repo)
	write(filepath.Join(repo, ".gitleaksignore"), gitIn(t, repo, "rev-parse", "HEAD")+":a.env:aws-access-token:1\n")
	check("git, commit fingerprint", nil, "git", "-i", repo, repo)
	write(filepath.Join(repo, "b.env"), "\nAWS_ACCESS_KEY_ID=AKIAXK7PLM3NQRT5WZ2B\n")
	gitIn(t, repo, "add", "b.env")
	check("staged, nothing ignored", all[1:2], "staged", "-i", repo, repo)
	write(filepath.Join(repo, ".gitleaksignore"), "b.env:aws-access-token:2\n")
	check("staged, ignored", nil, "staged", "-i", repo, repo)
}
