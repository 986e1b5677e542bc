package scan

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Redact hides secrets in findings: percent 100 replaces them with
// REDACTED; less keeps the first (100-percent)% of each secret.
func Redact(fs []Finding, percent int) {
	if percent <= 0 {
		return
	}
	for i := range fs {
		f := &fs[i]
		shown := ""
		if percent < 100 {
			n := len(f.Secret) * (100 - percent) / 100
			shown = f.Secret[:n] + "..."
		} else {
			shown = "REDACTED"
		}
		if f.Secret != "" {
			f.Match = strings.ReplaceAll(f.Match, f.Secret, shown)
		}
		f.Secret = shown
	}
}

// WriteReport writes findings in format: json, sarif, csv or junit.
func WriteReport(w io.Writer, format string, fs []Finding) error {
	if fs == nil {
		fs = []Finding{}
	}
	switch format {
	case "json", "":
		enc := json.NewEncoder(w)
		enc.SetIndent("", " ")
		return enc.Encode(fs)
	case "csv":
		return writeCSV(w, fs)
	case "sarif":
		return writeSARIF(w, fs)
	case "junit":
		return writeJUnit(w, fs)
	}
	return fmt.Errorf("unknown report format %q (json, sarif, csv, junit)", format)
}

var csvHeader = []string{"RuleID", "Commit", "File", "SymlinkFile", "Secret", "Match", "StartLine", "EndLine", "StartColumn", "EndColumn", "Author", "Message", "Date", "Email", "Fingerprint", "Tags"}

func writeCSV(w io.Writer, fs []Finding) error {
	cw := csv.NewWriter(w)
	cw.Write(csvHeader)
	for _, f := range fs {
		cw.Write([]string{f.RuleID, f.Commit, f.File, f.SymlinkFile, f.Secret, f.Match,
			strconv.Itoa(f.StartLine), strconv.Itoa(f.EndLine), strconv.Itoa(f.StartColumn), strconv.Itoa(f.EndColumn),
			f.Author, f.Message, f.Date, f.Email, f.Fingerprint, strings.Join(f.Tags, " ")})
	}
	cw.Flush()
	return cw.Error()
}

func writeSARIF(w io.Writer, fs []Finding) error {
	type msg struct {
		Text string `json:"text"`
	}
	type rule struct {
		ID               string `json:"id"`
		Name             string `json:"name"`
		ShortDescription msg    `json:"shortDescription"`
	}
	ruleSet := map[string]string{}
	for _, f := range fs {
		ruleSet[f.RuleID] = f.Description
	}
	ids := make([]string, 0, len(ruleSet))
	for id := range ruleSet {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	rules := []rule{}
	for _, id := range ids {
		rules = append(rules, rule{ID: id, Name: id, ShortDescription: msg{ruleSet[id]}})
	}
	results := []map[string]any{}
	for _, f := range fs {
		region := map[string]any{"startLine": max(f.StartLine, 1), "endLine": max(f.EndLine, 1)}
		if f.StartColumn > 0 {
			region["startColumn"] = f.StartColumn
			region["endColumn"] = max(f.EndColumn+1, f.StartColumn+1)
		}
		res := map[string]any{
			"ruleId":  f.RuleID,
			"level":   "error",
			"message": msg{f.RuleID + " has detected a secret in " + f.File},
			"locations": []any{map[string]any{"physicalLocation": map[string]any{
				"artifactLocation": map[string]any{"uri": f.File},
				"region":           region,
			}}},
			"partialFingerprints": map[string]string{"arcaFingerprint/v1": f.Fingerprint},
		}
		if f.Commit != "" {
			res["properties"] = map[string]string{"commit": f.Commit, "author": f.Author, "date": f.Date}
		}
		results = append(results, res)
	}
	doc := map[string]any{
		"$schema": "https://json.schemastore.org/sarif-2.1.0.json",
		"version": "2.1.0",
		"runs": []any{map[string]any{
			"tool": map[string]any{"driver": map[string]any{
				"name": "arca scan", "informationUri": "https://github.com/arcasec/arca", "version": "0.1.0", "rules": rules,
			}},
			"results": results,
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(doc)
}

func writeJUnit(w io.Writer, fs []Finding) error {
	type failure struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr"`
		Text    string `xml:",chardata"`
	}
	type testcase struct {
		Name      string   `xml:"name,attr"`
		Classname string   `xml:"classname,attr"`
		Failure   *failure `xml:"failure"`
	}
	type suite struct {
		XMLName   xml.Name   `xml:"testsuite"`
		Name      string     `xml:"name,attr"`
		Tests     int        `xml:"tests,attr"`
		Failures  int        `xml:"failures,attr"`
		Testcases []testcase `xml:"testcase"`
	}
	s := suite{Name: "arca scan", Tests: len(fs), Failures: len(fs)}
	for _, f := range fs {
		body, _ := json.MarshalIndent(f, "", " ")
		s.Testcases = append(s.Testcases, testcase{
			Name:      fmt.Sprintf("%s has detected a secret in %s:%d", f.RuleID, f.File, f.StartLine),
			Classname: f.RuleID,
			Failure:   &failure{Message: f.Description, Type: f.RuleID, Text: string(body)},
		})
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", " ")
	if err := enc.Encode(s); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// Suppressions are fingerprints to drop: from .gitleaksignore/.arcaignore
// files and from a baseline report.
type Suppressions struct {
	ids map[string]bool
	// Root is the directory a dir scan was given. gitleaks names the files
	// of such a scan with it in front ("sub/app.env" for "gitleaks dir
	// sub"), so its fingerprints are matched with and without it.
	Root string
}

// NewSuppressions returns an empty set.
func NewSuppressions() *Suppressions { return &Suppressions{ids: map[string]bool{}} }

// LoadIgnoreFile adds the fingerprints of an ignore file (one per line,
// '#' comments). A missing file is not an error.
func (s *Suppressions) LoadIgnoreFile(path string) error {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s.ids[strings.ReplaceAll(line, `\`, "/")] = true
	}
	return sc.Err()
}

// LoadBaseline adds every finding of an earlier JSON report (ours or
// gitleaks's).
func (s *Suppressions) LoadBaseline(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading the baseline: %w", err)
	}
	var old []Finding
	if err := json.Unmarshal(raw, &old); err != nil {
		return fmt.Errorf("the baseline %s is not a JSON report: %w", path, err)
	}
	for _, f := range old {
		s.ids[f.Fingerprint] = true
	}
	return nil
}

// Filter drops suppressed findings. gitleaks-style fingerprints
// (file:rule:line, commit:file:rule:line) are honoured for migration.
func (s *Suppressions) Filter(fs []Finding) []Finding {
	if len(s.ids) == 0 {
		return fs
	}
	out := fs[:0:0]
	for _, f := range fs {
		legacy := fmt.Sprintf("%s:%s:%d", f.File, f.RuleID, f.StartLine)
		if s.ids[f.Fingerprint] || s.ids[legacy] || (f.Commit != "" && s.ids[f.Commit+":"+legacy]) {
			continue
		}
		if s.Root != "" && s.ids[fmt.Sprintf("%s:%s:%d", path.Join(filepath.ToSlash(s.Root), f.File), f.RuleID, f.StartLine)] {
			continue
		}
		out = append(out, f)
	}
	return out
}
