package scan

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"

	ac "github.com/petar-dambovaliev/aho-corasick"

	"github.com/arcasec/arca/internal/scan/rules"
)

// Finding is one detected secret, with gitleaks's JSON field names.
type Finding struct {
	RuleID      string
	Description string
	StartLine   int
	EndLine     int
	StartColumn int
	EndColumn   int
	Match       string
	Secret      string
	File        string
	SymlinkFile string
	Commit      string
	Entropy     float32
	Author      string
	Email       string
	Date        string
	Message     string
	Tags        []string
	Fingerprint string

	line string // the line holding the match, for line allowlists
}

// Fragment is a piece of text to scan and where it came from.
type Fragment struct {
	Raw  []byte
	Path string
	// StartLine is the file line of Raw's first line (1 when Raw is a
	// whole file; a hunk's start for git diffs).
	StartLine int
	Commit    string
	Author    string
	Email     string
	Date      string
	Message   string
}

// Detector runs a Config over fragments. It is safe for concurrent use.
type Detector struct {
	cfg       *Config
	keywords  ac.AhoCorasick
	byKeyword [][]int // keyword index -> rules
	noKeyword []int   // regex rules without keywords: run on every fragment
	pathOnly  []int   // rules that match on the path alone
	// Validate rejects candidates that are not real secrets; nil keeps all.
	Validate func(ruleID, secret string) bool
}

// NewDetector compiles cfg.
func NewDetector(cfg *Config) *Detector {
	d := &Detector{cfg: cfg, Validate: rules.Validate}
	index := map[string]int{}
	var words []string
	for i, r := range cfg.Rules {
		switch {
		case r.Regex == nil:
			d.pathOnly = append(d.pathOnly, i)
			continue
		case len(r.Keywords) == 0:
			d.noKeyword = append(d.noKeyword, i)
			continue
		}
		for _, k := range r.Keywords {
			ki, ok := index[k]
			if !ok {
				ki = len(words)
				index[k] = ki
				words = append(words, k)
				d.byKeyword = append(d.byKeyword, nil)
			}
			d.byKeyword[ki] = append(d.byKeyword[ki], i)
		}
	}
	b := ac.NewAhoCorasickBuilder(ac.Opts{AsciiCaseInsensitive: true, MatchKind: ac.StandardMatch, DFA: true})
	d.keywords = b.Build(words)
	return d
}

// allowedPath reports whether the whole path is skipped: one of the
// scanner's own files, or a path a global allowlist skips.
func (d *Detector) allowedPath(path string) bool {
	if scannerFile(path) {
		return true
	}
	for _, al := range d.cfg.Allowlists {
		if len(al.Regexes) == 0 && len(al.Stopwords) == 0 && matchesAny(al.Paths, path) {
			return true
		}
	}
	return false
}

func matchesAny(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

// window is the span of Raw a rule's regex is run on.
type window struct{ start, end int }

// Detect returns the findings in one fragment.
func (d *Detector) Detect(f Fragment) []Finding {
	if d.allowedPath(f.Path) {
		return nil
	}
	return d.detect(f)
}

// detect is Detect for a fragment whose path the caller has already checked
// against the allowlist (git history checks it once per file, not once per
// run of added lines).
func (d *Detector) detect(f Fragment) []Finding {
	if f.StartLine == 0 {
		f.StartLine = 1
	}
	raw := f.Raw
	var out []Finding
	seen := map[[2]int]bool{} // rule, match start
	scanned := make(map[int]window)
	run := func(ri int, w window) {
		r := d.cfg.Rules[ri]
		if r.Path != nil && !r.Path.MatchString(f.Path) {
			return
		}
		for _, m := range r.Regex.FindAllSubmatchIndex(raw[w.start:w.end], -1) {
			start, end := w.start+m[0], w.start+m[1]
			if seen[[2]int{ri, start}] {
				continue
			}
			seen[[2]int{ri, start}] = true
			secStart, secEnd := start, end
			if g := r.SecretGroup; g > 0 && m[2*g] >= 0 {
				secStart, secEnd = w.start+m[2*g], w.start+m[2*g+1]
			} else {
				for g := 1; 2*g+1 < len(m); g++ {
					if m[2*g] >= 0 && m[2*g+1] > m[2*g] {
						secStart, secEnd = w.start+m[2*g], w.start+m[2*g+1]
						break
					}
				}
			}
			if fd, ok := d.check(r, f, start, end, secStart, secEnd); ok {
				out = append(out, fd)
			}
		}
	}
	// Keyword-anchored rules: only a window around each hit.
	it := d.keywords.IterOverlappingByte(raw)
	for m := it.Next(); m != nil; m = it.Next() {
		for _, ri := range d.byKeyword[m.Pattern()] {
			r := d.cfg.Rules[ri]
			w := hitWindow(raw, m.Start(), m.End(), r.window, r.multiline)
			if prev, ok := scanned[ri]; ok && w.start >= prev.start && w.end <= prev.end {
				continue
			}
			scanned[ri] = w
			run(ri, w)
		}
	}
	for _, ri := range d.noKeyword {
		run(ri, window{0, len(raw)})
	}
	for _, ri := range d.pathOnly {
		r := d.cfg.Rules[ri]
		if r.Path.MatchString(f.Path) {
			out = append(out, Finding{RuleID: r.ID, Description: r.Description, File: f.Path, Tags: r.Tags,
				Commit: f.Commit, Author: f.Author, Email: f.Email, Date: f.Date, Message: f.Message,
				Fingerprint: fingerprint(r.ID, f.Path, "file:"+f.Path)})
		}
	}
	return dedupeGeneric(out)
}

// hitWindow is the part of raw a match around a keyword hit can occupy:
// span bytes to either side, and no further than the hit's own line when
// the rule cannot match across lines. The window starts at a line start so
// anchors and word boundaries see what they would in the whole text.
func hitWindow(raw []byte, s, e, span int, multiline bool) window {
	lo := max(s-span, 0)
	hi := min(e+span, len(raw))
	if !multiline {
		if i := bytes.LastIndexByte(raw[lo:s], '\n'); i >= 0 {
			lo += i + 1
		}
		if i := bytes.IndexByte(raw[e:hi], '\n'); i >= 0 {
			hi = e + i
		}
	}
	// Back up to a line start so a match starting at lo is not cut.
	if lo > 0 {
		if i := bytes.LastIndexByte(raw[:lo], '\n'); i >= 0 && lo-i < 4096 {
			lo = i + 1
		} else if i < 0 && lo < 4096 {
			lo = 0
		}
	}
	return window{lo, hi}
}

// check applies entropy, validators, allowlists and inline allow comments
// to a candidate, and builds the finding.
func (d *Detector) check(r *Rule, f Fragment, start, end, secStart, secEnd int) (Finding, bool) {
	raw := f.Raw
	secret := string(raw[secStart:secEnd])
	match := string(raw[start:end])
	entropy := shannon(secret)
	if r.Entropy > 0 && entropy <= r.Entropy {
		return Finding{}, false
	}
	if d.Validate != nil && !d.Validate(r.ID, secret) {
		return Finding{}, false
	}
	if slices.Contains(r.Tags, "generic") && namesItself(string(raw[start:secStart]), secret) {
		return Finding{}, false
	}
	if insideBase64(raw, secStart) {
		return Finding{}, false
	}
	lineStart := bytes.LastIndexByte(raw[:start], '\n') + 1
	lineEnd := bytes.IndexByte(raw[end:], '\n')
	if lineEnd < 0 {
		lineEnd = len(raw)
	} else {
		lineEnd += end
	}
	line := string(raw[lineStart:lineEnd])
	if inlineAllowed(line) {
		return Finding{}, false
	}
	for _, al := range append(r.Allowlists, d.cfg.Allowlists...) {
		if al.allows(f, secret, match, line) {
			return Finding{}, false
		}
	}
	startLine := f.StartLine + bytes.Count(raw[:start], []byte{'\n'})
	endLine := startLine + strings.Count(match, "\n")
	endCol := end - (bytes.LastIndexByte(raw[:end], '\n') + 1)
	return Finding{
		RuleID: r.ID, Description: r.Description,
		StartLine: startLine, EndLine: endLine, StartColumn: start - lineStart + 1, EndColumn: endCol,
		Match: match, Secret: secret, File: f.Path, Commit: f.Commit, Entropy: float32(entropy),
		Author: f.Author, Email: f.Email, Date: f.Date, Message: f.Message, Tags: r.Tags,
		Fingerprint: fingerprint(r.ID, f.Path, secret), line: line,
	}, true
}

// insideBase64 reports whether the secret starting at i continues a long
// run of base64 text: "EAAA..." after "...Qm+" in an encoded binary is a
// coincidence of the alphabet, not a token. A token after a URL's "/v1/"
// is not affected: the run before it is short.
func insideBase64(raw []byte, i int) bool {
	if i == 0 || (raw[i-1] != '+' && raw[i-1] != '/') {
		return false
	}
	n := 0
	for j := i - 1; j >= 0 && n < 16; j-- {
		c := raw[j]
		if !(c == '+' || c == '/' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			break
		}
		n++
	}
	return n >= 16
}

// namesItself reports whether a generic assignment's value contains the
// name it is assigned to ("encryptionKey": "encryptionKey1024", Credit :=
// flags&gcDrainFlushBgCredit): an identifier or a placeholder, not a
// secret. before is the match up to the value.
func namesItself(before, secret string) bool {
	end := len(before)
	for end > 0 && !isNameByte(before[end-1]) {
		end--
	}
	begin := end
	for begin > 0 && isNameByte(before[begin-1]) {
		begin--
	}
	name := before[begin:end]
	return len(name) >= 4 && strings.Contains(strings.ToLower(secret), strings.ToLower(name))
}

func isNameByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

var inlineMarkers = []string{"gitleaks:allow", "arca:allow", "pragma: allowlist secret", "trufflehog:ignore"}

func inlineAllowed(line string) bool {
	for _, m := range inlineMarkers {
		if strings.Contains(line, m) {
			return true
		}
	}
	return false
}

// allows reports whether the allowlist drops a candidate.
func (al *Allowlist) allows(f Fragment, secret, match, line string) bool {
	target := secret
	switch al.RegexTarget {
	case "match":
		target = match
	case "line":
		target = line
	}
	var checks []bool
	if len(al.Commits) > 0 {
		hit := false
		for _, c := range al.Commits {
			if c != "" && c == f.Commit {
				hit = true
			}
		}
		checks = append(checks, hit)
	}
	if len(al.Paths) > 0 {
		checks = append(checks, matchesAny(al.Paths, f.Path))
	}
	if len(al.Regexes) > 0 {
		checks = append(checks, matchesAny(al.Regexes, target))
	}
	if len(al.Stopwords) > 0 {
		lower := strings.ToLower(secret)
		hit := false
		for _, w := range al.Stopwords {
			if strings.Contains(lower, w) {
				hit = true
				break
			}
		}
		checks = append(checks, hit)
	}
	if len(checks) == 0 {
		return false
	}
	if al.Condition == "AND" {
		for _, c := range checks {
			if !c {
				return false
			}
		}
		return true
	}
	for _, c := range checks {
		if c {
			return true
		}
	}
	return false
}

// dedupeGeneric drops a generic finding when a specific rule found a
// secret containing it on the same line.
func dedupeGeneric(fs []Finding) []Finding {
	if len(fs) < 2 {
		return fs
	}
	out := fs[:0:0]
	for i, f := range fs {
		drop := false
		if strings.Contains(f.RuleID, "generic") {
			for j, o := range fs {
				if i != j && !strings.Contains(o.RuleID, "generic") && o.StartLine == f.StartLine && strings.Contains(o.Secret, f.Secret) {
					drop = true
					break
				}
			}
		}
		if !drop {
			out = append(out, f)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].StartLine != out[j].StartLine {
			return out[i].StartLine < out[j].StartLine
		}
		return out[i].StartColumn < out[j].StartColumn
	})
	return out
}

// shannon is the Shannon entropy of s in bits per byte.
func shannon(s string) float64 {
	if s == "" {
		return 0
	}
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	n := float64(len(s))
	var h float64
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}

// fingerprint identifies a finding by rule, file and a hash of the secret,
// not by line: moving code keeps it suppressed, and a new secret on an
// ignored line is not hidden.
func fingerprint(ruleID, file, secret string) string {
	sum := sha256.Sum256([]byte(ruleID + "\x00" + file + "\x00" + secret))
	return ruleID + ":" + file + ":" + hex.EncodeToString(sum[:16])
}
