package scan

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTerraform(t *testing.T) {
	fs, err := NewDetector(DefaultConfig()).ScanDir(context.Background(), filepath.Join("testdata", "terraform"), DirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range fs {
		got[f.RuleID+" "+f.File+" "+f.Match] = true
		if f.StartLine < 1 {
			t.Errorf("no line for %+v", f)
		}
	}
	want := []string{
		`terraform-s3-backend-unencrypted main.tf backend "s3"`,
		`terraform-hardcoded-secret main.tf secret_key = "k9Qw2ZxR7vB1nM4tY6uP0sLd3HfJ8gCa5eTiVoXy"`,
		`terraform-variable-not-sensitive main.tf variable "db_password"`,
		`terraform-variable-secret-default main.tf default = "Sup3r-S3cret-Pa55w0rd!"`,
		`terraform-output-not-sensitive main.tf output "db_password" = aws_db_instance.main.password`,
		`terraform-nonsensitive main.tf nonsensitive(var.api_token)`,
		`terraform-hardcoded-secret prod.tfvars admin_password = "Xq7!vB2#mN9pL4wZ"`,
		`terraform-state-secret terraform.tfstate random_password.db.result`,
		`terraform-state-secret terraform.tfstate aws_db_instance.main.password`,
		`terraform-state-secret terraform.tfstate tls_private_key.ssh.private_key_openssh`,
		`terraform-state-secret terraform.tfstate output.root_token`,
		`terraform-plan-secret plan.json aws_ssm_parameter.token.value`,
		`terraform-plan-secret plan.json var.db_password`,
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("missing: %s", w)
		}
	}
	notWant := []string{
		`terraform-variable-not-sensitive main.tf variable "api_token"`,
		`terraform-variable-not-sensitive main.tf variable "password_length"`,
		`terraform-output-not-sensitive main.tf output "db_password_safe" = aws_db_instance.main.password`,
		`terraform-state-secret terraform.tfstate output.db_endpoint`,
		`terraform-state-secret terraform.tfstate tls_private_key.ssh.public_key_openssh`,
		`terraform-plan-secret plan.json var.region`,
	}
	for _, w := range notWant {
		if got[w] {
			t.Errorf("false positive: %s", w)
		}
	}
	if t.Failed() {
		for k := range got {
			t.Log(k)
		}
	}
}

// TestTerraformJSONPositions checks that a secret in state or a plan is
// reported where it is written, whatever escapes its JSON uses, and that
// the columns span exactly its text in the file.
func TestTerraformJSONPositions(t *testing.T) {
	type want struct {
		file, match string
		startLine   int
		endLine     int
	}
	var wants []want
	var lines []string
	// add appends a line of JSON; when match is set, the line holds that
	// secret (or opens it, for a value spanning endOffset more lines).
	add := func(file, match, line string, endOffset int) {
		lines = append(lines, line)
		if match != "" {
			wants = append(wants, want{file, match, len(lines), len(lines) + endOffset})
		}
	}
	const state = "terraform.tfstate"
	add(state, "", `{"version": 4, "terraform_version": "1.9.5",`, 0)
	add(state, "", ` "resources": [`, 0)
	add(state, "", `  {"mode": "managed", "type": "aws_db_instance", "name": "lt", "instances": [{"attributes": {`, 0)
	add(state, "aws_db_instance.lt.password", `    "id": "db-1", "password": "Kp9<xQ2>mZ&w7-plain"`, 0)
	add(state, "", `  }}]},`, 0)
	add(state, "", `  {"mode": "managed", "type": "aws_db_instance", "name": "esc", "instances": [{"attributes": {`, 0)
	add(state, "aws_db_instance.esc.password", `    "password": "Kp9\u003cxQ2\u003emZ\u0026w7-escaped"`, 0)
	add(state, "", `  }}]},`, 0)
	add(state, "", `  {"mode": "managed", "type": "aws_db_instance", "name": "quote", "instances": [{"attributes": {`, 0)
	add(state, "aws_db_instance.quote.password", `    "password": "say \"Rt5vB8nL\" \\ back\\slash\/"`, 0)
	add(state, "", `  }}]},`, 0)
	add(state, "", `  {"mode": "managed", "type": "aws_db_instance", "name": "ctl", "instances": [{"attributes": {`, 0)
	add(state, "aws_db_instance.ctl.password", `    "password": "line1\nline2\tHq3wE6yU\r\n"`, 0)
	add(state, "", `  }}]},`, 0)
	add(state, "", `  {"mode": "managed", "type": "aws_db_instance", "name": "uni", "instances": [{"attributes": {`, 0)
	add(state, "aws_db_instance.uni.password", `    "password": "pässwörd-Zx8Lm4-\u00e9t\u00e9-\ud83d\udd11"`, 0)
	add(state, "", `  }}]},`, 0)
	add(state, "", `  {"mode": "managed", "type": "kubernetes_secret", "name": "app", "instances": [{"index_key": "a<b", "attributes": {`, 0)
	add(state, "kubernetes_secret.app[a<b].data", `    "data": {"token": "Vn3<Jk8&Wq1",`, 1)
	add(state, "", `      "other": "x"}`, 0)
	add(state, "", `  }}]}`, 0)
	add(state, "", ` ],`, 0)
	// The same value as aws_db_instance.lt.password, on its own line.
	add(state, "", ` "outputs": {"db": {"sensitive": true,`, 0)
	add(state, "output.db", `   "value": "Kp9<xQ2>mZ&w7-plain"}}`, 0)
	add(state, "", `}`, 0)
	stateText := strings.Join(lines, "\n") + "\n"

	lines = nil
	const plan = "plan.json"
	add(plan, "", `{"format_version": "1.2", "terraform_version": "1.9.5",`, 0)
	add(plan, "", ` "variables": {"region": {"value": "eu-west-1"},`, 0)
	add(plan, "var.db_password", `  "db_password": {"value": "\u003cSw7&Gh2>\"q\""}},`, 0)
	add(plan, "", ` "resource_changes": [{"address": "aws_ssm_parameter.token", "type": "aws_ssm_parameter",`, 0)
	add(plan, "aws_ssm_parameter.token.value", `  "change": {"after": {"name": "/app/token", "value": "Bn6<Tz4>\\Pq9&"}}}]`, 0)
	add(plan, "", `}`, 0)
	planText := strings.Join(lines, "\n") + "\n"

	dir := t.TempDir()
	texts := map[string]string{state: stateText, plan: planText}
	for name, text := range texts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	fs, err := NewDetector(DefaultConfig()).ScanDir(context.Background(), dir, DirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Finding{}
	for _, f := range fs {
		if f.RuleID == "terraform-state-secret" || f.RuleID == "terraform-plan-secret" {
			got[f.File+" "+f.Match] = f
		}
	}
	for _, w := range wants {
		f, ok := got[w.file+" "+w.match]
		if !ok {
			t.Errorf("%s: no finding for %s", w.file, w.match)
			continue
		}
		if f.StartLine != w.startLine || f.EndLine != w.endLine {
			t.Errorf("%s %s: lines %d-%d, want %d-%d", w.file, w.match, f.StartLine, f.EndLine, w.startLine, w.endLine)
			continue
		}
		fileLines := strings.Split(texts[w.file], "\n")
		first, last := fileLines[f.StartLine-1], fileLines[f.EndLine-1]
		if f.StartColumn < 2 || f.StartColumn > len(first) || f.EndColumn < 1 || f.EndColumn > len(last) {
			t.Errorf("%s %s: columns %d-%d out of the lines %q .. %q", w.file, w.match, f.StartColumn, f.EndColumn, first, last)
			continue
		}
		// The columns hold the value as written: for a string, the text
		// between its quotes, which decodes to the reported secret.
		written := strings.Join(fileLines[f.StartLine-1:f.EndLine], "\n")
		written = written[f.StartColumn-1 : len(written)-len(last)+f.EndColumn]
		if first[f.StartColumn-2] == '"' {
			var secret string
			if err := json.Unmarshal([]byte(`"`+written+`"`), &secret); err != nil || secret != f.Secret {
				t.Errorf("%s %s: columns %d-%d hold %q, which is not the secret %q (%v)", w.file, w.match, f.StartColumn, f.EndColumn, written, f.Secret, err)
			}
			if last[f.EndColumn] != '"' {
				t.Errorf("%s %s: the value does not end at column %d: %q", w.file, w.match, f.EndColumn, last)
			}
		} else if !json.Valid([]byte(written)) || !strings.HasPrefix(written, "{") {
			t.Errorf("%s %s: columns %d-%d hold %q, not the whole object", w.file, w.match, f.StartColumn, f.EndColumn, written)
		} else if !strings.Contains(f.Secret, `"Vn3<Jk8&Wq1"`) {
			t.Errorf("%s %s: the object is rendered %q, not as written", w.file, w.match, f.Secret)
		}
	}
}

// TestTerraformCodePositions checks that findings in .tf code are placed
// by byte columns like every other finding: the columns hold the reported
// text, also after non-ASCII characters on the same line.
func TestTerraformCodePositions(t *testing.T) {
	code := `terraform {
  backend "s3" { bucket = "état" }
}

resource "aws_db_instance" "café" { password = "Xq7!vB2#mN9pL4wZ" }

provider "aws" {
  secret_key    =   "k9Qw2ZxR7vB1nM4tY6uP0sLd3HfJ8gCa5eTiVoXy"
}

variable "db_password" { default = "Sup3r-S3cret-Pa55w0rd!" }
`
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(code), 0o600); err != nil {
		t.Fatal(err)
	}
	fs, err := NewDetector(DefaultConfig()).ScanDir(context.Background(), dir, DirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(code, "\n")
	want := map[string]int{
		`terraform-s3-backend-unencrypted backend "s3"`:                                      2,
		`terraform-hardcoded-secret password = "Xq7!vB2#mN9pL4wZ"`:                           5,
		`terraform-hardcoded-secret secret_key = "k9Qw2ZxR7vB1nM4tY6uP0sLd3HfJ8gCa5eTiVoXy"`: 8,
		`terraform-variable-not-sensitive variable "db_password"`:                            11,
		`terraform-variable-secret-default default = "Sup3r-S3cret-Pa55w0rd!"`:               11,
	}
	for _, f := range fs {
		key := f.RuleID + " " + f.Match
		wantLine, ok := want[key]
		if !ok {
			continue
		}
		delete(want, key)
		if f.StartLine != wantLine || f.EndLine != wantLine {
			t.Errorf("%s: lines %d-%d, want %d", key, f.StartLine, f.EndLine, wantLine)
			continue
		}
		line := lines[f.StartLine-1]
		if f.StartColumn < 1 || f.EndColumn > len(line) || f.StartColumn > f.EndColumn {
			t.Errorf("%s: columns %d-%d outside %q", key, f.StartColumn, f.EndColumn, line)
			continue
		}
		// The columns hold exactly the text reported, with its spacing
		// made single in the match.
		text := line[f.StartColumn-1 : f.EndColumn]
		if text != strings.TrimSpace(text) || strings.Join(strings.Fields(text), " ") != f.Match {
			t.Errorf("%s: columns %d-%d hold %q", key, f.StartColumn, f.EndColumn, text)
		}
	}
	for key := range want {
		t.Errorf("no finding %s", key)
	}
}

// FuzzTerraformJSON feeds arbitrary state-like JSON to the state checks:
// they never panic, and every finding lies inside the text.
func FuzzTerraformJSON(f *testing.F) {
	for _, name := range []string{"terraform.tfstate", "plan.json"} {
		raw, err := os.ReadFile(filepath.Join("testdata", "terraform", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(`{"outputs": {"token": {"value": "a\u003cb\"c\\d\ne", "sensitive": true}}}`))
	d := NewDetector(DefaultConfig())
	f.Fuzz(func(t *testing.T, raw []byte) {
		lines := strings.Split(string(raw), "\n")
		for _, fd := range d.scanTerraformJSON(raw, "terraform.tfstate") {
			if fd.StartLine < 1 || fd.EndLine < fd.StartLine || fd.EndLine > len(lines) ||
				fd.StartColumn < 1 || fd.StartColumn > len(lines[fd.StartLine-1]) || fd.EndColumn < 1 || fd.EndColumn > len(lines[fd.EndLine-1]) {
				t.Fatalf("finding outside the text: %+v", fd)
			}
		}
	})
}
