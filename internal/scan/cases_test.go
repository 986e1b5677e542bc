package scan

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/BurntSushi/toml"
)

type ruleCases struct {
	Rule string   `toml:"rule" json:"rule"`
	TP   []string `toml:"tp" json:"tp"`
	FP   []string `toml:"fp" json:"fp"`
}

// casePath names a file the rule applies to: rules restricted to some
// files (Terraform, nuget.config, ...) get one of those.
func casePath(d *Detector, rule string) string {
	for _, r := range d.cfg.Rules {
		if r.ID != rule || r.Path == nil {
			continue
		}
		for _, p := range []string{"main.tf", "nuget.config", "NuGet.Config", "index.php", "secret.yaml", "deploy.yml", "app.properties", "settings.xml", "Dockerfile", ".npmrc", ".pypirc", "id_rsa", "config.json", "x.p12"} {
			if r.Path.MatchString(p) {
				return p
			}
		}
	}
	return "case.txt"
}

// found reports whether the engine reports rule in text.
func found(d *Detector, rule, text string) bool {
	for _, f := range d.Detect(Fragment{Raw: []byte(text + "\n"), Path: casePath(d, rule)}) {
		if f.RuleID == rule {
			return true
		}
	}
	return false
}

// TestRuleCasesThroughEngine runs every built-in rule's true and false
// positives through the whole engine (keyword pass, windows, entropy,
// allowlists, validators), in the syntaxes the cases use.
func TestRuleCasesThroughEngine(t *testing.T) {
	var file struct {
		Case []ruleCases `toml:"case"`
	}
	if _, err := toml.DecodeFile(filepath.Join("rules", "testdata", "cases.toml"), &file); err != nil {
		t.Fatal(err)
	}
	d := NewDetector(DefaultConfig())
	var tps, hit, fps, falseHit int
	for _, c := range file.Case {
		for _, tp := range c.TP {
			tps++
			if found(d, c.Rule, tp) {
				hit++
			} else {
				t.Errorf("%s: true positive missed: %q", c.Rule, tp)
			}
		}
		for _, fp := range c.FP {
			fps++
			if found(d, c.Rule, fp) {
				falseHit++
				t.Errorf("%s: false positive reported: %q", c.Rule, fp)
			}
		}
	}
	t.Logf("built-in cases through the engine: recall %d/%d, false positives %d/%d", hit, tps, falseHit, fps)
}

// TestGitleaksCompatibility runs gitleaks's public rule test cases through
// the engine and holds recall and false-positive rate to the levels the
// rules reach, so a regression in the engine or the rules fails.
func TestGitleaksCompatibility(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("rules", "testdata", "gitleaks_cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []ruleCases
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	d := NewDetector(DefaultConfig())
	known := map[string]bool{}
	for _, r := range d.cfg.Rules {
		known[r.ID] = true
	}
	var tps, hit, fps, falseHit int
	for _, c := range cases {
		if !known[c.Rule] {
			continue
		}
		for _, tp := range c.TP {
			tps++
			if found(d, c.Rule, tp) {
				hit++
			}
		}
		for _, fp := range c.FP {
			fps++
			if found(d, c.Rule, fp) {
				falseHit++
			}
		}
	}
	recall := float64(hit) / float64(tps)
	fpr := float64(falseHit) / float64(fps)
	t.Logf("gitleaks cases: recall %.1f%% (%d/%d), false-positive rate %.1f%% (%d/%d)", 100*recall, hit, tps, 100*fpr, falseHit, fps)
	if recall < 0.92 {
		t.Errorf("recall on gitleaks's cases fell to %.1f%%", 100*recall)
	}
	if fpr > 0.07 {
		t.Errorf("false-positive rate on gitleaks's cases rose to %.1f%%", 100*fpr)
	}
}
