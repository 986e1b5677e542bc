package template

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var fuzzNumber = regexp.MustCompile(`[0-9][0-9a-zA-Z_.]*`)

// expensive reports templates the fuzz target leaves alone: big literal
// counts (a range over a billion runs for minutes; templates are written by
// the operator, not an attacker) and functions that reach the network.
func expensive(text string) bool {
	if len(text) > 4096 || strings.Contains(text, "getHostByName") || strings.Contains(text, "genCA") ||
		strings.Contains(text, "genPrivateKey") || strings.Contains(text, "SignedCert") || strings.Contains(text, "bcrypt") ||
		strings.Contains(text, "htpasswd") || strings.Contains(text, "file") {
		return true
	}
	for _, n := range fuzzNumber.FindAllString(text, -1) {
		if i, err := strconv.ParseInt(strings.TrimRight(n, "."), 0, 64); err != nil || i > 10000 || i < -10000 {
			if _, ferr := strconv.ParseFloat(n, 64); ferr == nil && len(n) < 6 {
				continue
			}
			return true
		}
	}
	return false
}

// FuzzAgentTemplate parses and renders arbitrary templates against a fake
// source: nothing panics, and no error holds the secret's value unless the
// template text itself spells it.
func FuzzAgentTemplate(f *testing.F) {
	for _, seed := range []string{
		`{{ with secret "secret/data/app/db" }}{{ .Data.data.password }}{{ end }}`,
		`{{ with secret "database/creds/readonly" }}{{ .Data.username }} {{ .LeaseID }} {{ .LeaseDuration }}{{ end }}`,
		`{{ with secret "pki/issue/web" "common_name=a.example" }}{{ .Data.certificate }}{{ end }}`,
		`{{ range secrets "secret/metadata/" }}{{ . }}{{ end }}`,
		`{{ with secret "secret/data/app/db" }}{{ .Data.data.password | parseInt }}{{ end }}`,
		`{{ with secret "secret/data/app/db" }}{{ range .Data.data.password }}{{ end }}{{ end }}`,
		`{{ with secret "secret/data/app/db" }}{{ .Data.data.json | parseJSON | toYAML | indent 2 }}{{ end }}`,
		`{{ "a,b" | split "," | join ";" | toUpper | base64Encode | base64Decode }}`,
		`{{ 3 | add 4 | multiply 2 | divide 0 }}`,
		`{{ scratch.MapSet "m" "k" "v" }}{{ scratch.MapValues "m" | toJSON }}`,
		`{{ range loop 3 }}{{ . | sprig_toString | sprig_upper }}{{ end }}`,
		`{{ define "x" }}{{ . }}{{ end }}{{ template "x" timestamp }}`,
		`{{ if containsAny ("a" | split ",") ("a,b" | split ",") }}y{{ else }}n{{ end }}`,
		`{{ with secret "secret/data/app/db" }}{{ .Data.data.password | sprig_mustToDate "2006" }}{{ end }}`,
		`{{ key "x" }}`,
		`{{ with secret "secret/data/deleted" }}{{ .Data.data.x }}{{ end }}`,
	} {
		f.Add(seed, false)
	}
	f.Fuzz(func(t *testing.T, text string, strict bool) {
		if expensive(text) {
			t.Skip()
		}
		tmpl, err := Parse("fuzz.tmpl", text, Options{ErrorOnMissingKey: strict})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.tmpl") {
				t.Fatalf("parse error does not name the template: %v", err)
			}
			return
		}
		out, err := tmpl.Execute(testSource())
		if err != nil {
			if out != nil {
				t.Fatal("a failed render returned output")
			}
			if strings.Contains(err.Error(), dbPassword) && !strings.Contains(text, dbPassword) {
				t.Fatalf("error holds the secret: %v", err)
			}
		}
	})
}
