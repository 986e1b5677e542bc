// Package scan finds leaked secrets in files, git history, staged changes
// and logs. Rules use gitleaks's configuration format, so existing custom
// rules keep working; detection runs one case-insensitive keyword pass over
// the raw bytes and checks each rule only in a window around its keyword
// hits.
package scan

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/arcasec/arca/internal/scan/rules"
)

// Config is a set of rules and global allowlists.
type Config struct {
	Title      string
	Rules      []*Rule
	Allowlists []*Allowlist
}

// Rule is one detector.
type Rule struct {
	ID          string
	Description string
	Regex       *regexp.Regexp
	SecretGroup int
	Entropy     float64
	Keywords    []string
	Path        *regexp.Regexp
	Tags        []string
	Allowlists  []*Allowlist
	// window is how many bytes around a keyword hit one match can reach;
	// multiline says whether a match can cross a line break.
	window    int
	multiline bool
}

// Allowlist drops findings that match it.
type Allowlist struct {
	Description string
	Condition   string // "OR" (default) or "AND"
	RegexTarget string // "secret" (default), "match" or "line"
	Regexes     []*regexp.Regexp
	Paths       []*regexp.Regexp
	Stopwords   []string
	Commits     []string
}

// The TOML shapes, as gitleaks writes them.
type tomlConfig struct {
	Title       string
	Description string
	// MinVersion is the lowest gitleaks version a config is written for;
	// Arca reads every version's format, so it is accepted and not checked.
	MinVersion string `toml:"minVersion"`
	Extend     tomlExtend
	Rules      []tomlRule
	Allowlist  *tomlAllowlist
	// [[allowlists]] (gitleaks 8.25+)
	Allowlists []tomlAllowlist
}

type tomlExtend struct {
	UseDefault    bool     `toml:"useDefault"`
	Path          string   `toml:"path"`
	DisabledRules []string `toml:"disabledRules"`
}

type tomlRule struct {
	ID          string          `toml:"id"`
	Description string          `toml:"description"`
	Regex       string          `toml:"regex"`
	SecretGroup int             `toml:"secretGroup"`
	Entropy     float64         `toml:"entropy"`
	Keywords    []string        `toml:"keywords"`
	Path        string          `toml:"path"`
	Tags        []string        `toml:"tags"`
	Allowlist   *tomlAllowlist  `toml:"allowlist"`
	Allowlists  []tomlAllowlist `toml:"allowlists"`
}

type tomlAllowlist struct {
	Description string   `toml:"description"`
	Condition   string   `toml:"condition"`
	RegexTarget string   `toml:"regexTarget"`
	Regexes     []string `toml:"regexes"`
	Paths       []string `toml:"paths"`
	Stopwords   []string `toml:"stopwords"`
	Commits     []string `toml:"commits"`
	// TargetRules limits a global allowlist to these rules.
	TargetRules []string `toml:"targetRules"`
}

// DefaultConfig returns the built-in rules.
func DefaultConfig() *Config {
	c, err := ParseConfig(string(rules.DefaultTOML))
	if err != nil {
		panic("scan: the built-in rules do not parse: " + err.Error())
	}
	return c
}

// LoadConfig reads a gitleaks-format TOML file. With [extend] useDefault
// (or path), its rules are layered over the built-in ones (or the other
// file's) as gitleaks layers them: a rule with an id already there changes
// only the fields it sets and adds its keywords, tags and allowlists, and
// disabledRules are removed.
func LoadConfig(path string) (*Config, error) { return loadConfig(path, 0) }

// maxExtendDepth is how many configs deep [extend] path may chain, as in
// gitleaks: a config, the one it extends, and the one that extends.
const maxExtendDepth = 2

func loadConfig(path string, depth int) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the scan config: %w", err)
	}
	c, err := parseConfig(string(raw), depth)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseConfig parses gitleaks-format TOML.
func ParseConfig(text string) (*Config, error) { return parseConfig(text, 0) }

// parseConfig parses a config that depth others extend.
func parseConfig(text string, depth int) (*Config, error) {
	var tc tomlConfig
	md, err := toml.Decode(text, &tc)
	if err != nil {
		return nil, fmt.Errorf("parsing the scan config: %w", err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		keys := make([]string, len(undecoded))
		for i, k := range undecoded {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("unknown keys in the scan config: %s", strings.Join(keys, ", "))
	}
	if tc.Extend.UseDefault && tc.Extend.Path != "" {
		return nil, errors.New("[extend] sets both useDefault and path: choose one")
	}
	c := &Config{Title: tc.Title}
	if tc.Allowlist != nil {
		tc.Allowlists = append(tc.Allowlists, *tc.Allowlist)
	}
	targeted := map[string][]*Allowlist{}
	var targets []string
	for i := range tc.Allowlists {
		al, err := compileAllowlist(&tc.Allowlists[i])
		if err != nil {
			return nil, fmt.Errorf("global allowlist %d: %w", i+1, err)
		}
		if len(tc.Allowlists[i].TargetRules) == 0 {
			c.Allowlists = append(c.Allowlists, al)
		}
		for _, id := range tc.Allowlists[i].TargetRules {
			if targeted[id] == nil {
				targets = append(targets, id)
			}
			targeted[id] = append(targeted[id], al)
		}
	}
	seen := map[string]bool{}
	for i := range tc.Rules {
		r, err := compileRule(&tc.Rules[i])
		if err != nil {
			return nil, err
		}
		if seen[r.ID] {
			return nil, fmt.Errorf("rule %q is defined twice", r.ID)
		}
		seen[r.ID] = true
		c.Rules = append(c.Rules, r)
	}
	if tc.Extend.UseDefault || tc.Extend.Path != "" {
		if depth >= maxExtendDepth {
			return nil, fmt.Errorf("[extend]: configs may extend each other at most %d deep (is there a loop?)", maxExtendDepth)
		}
		var base *Config
		if tc.Extend.Path != "" {
			if base, err = loadConfig(tc.Extend.Path, depth+1); err != nil {
				return nil, fmt.Errorf("[extend] path: %w", err)
			}
		} else {
			base = DefaultConfig()
		}
		c = base.merge(c, tc.Extend.DisabledRules)
	}
	// A rule is complete only once merged over the one it extends.
	byID := map[string]*Rule{}
	for _, r := range c.Rules {
		if r.Regex == nil && r.Path == nil {
			return nil, fmt.Errorf("rule %q needs a regex or a path", r.ID)
		}
		if r.Regex != nil && r.SecretGroup > r.Regex.NumSubexp() {
			return nil, fmt.Errorf("rule %q: secretGroup %d, but the regex has %d groups", r.ID, r.SecretGroup, r.Regex.NumSubexp())
		}
		byID[r.ID] = r
	}
	for _, id := range targets {
		r, ok := byID[id]
		if !ok {
			return nil, fmt.Errorf("a global allowlist targets the rule %q, which does not exist", id)
		}
		r.Allowlists = append(r.Allowlists, targeted[id]...)
	}
	return c, nil
}

// merge layers over on top of c, as gitleaks extends a config: a rule of
// over with an id c has is merged into c's (see mergeRule), disabled rules
// of c are dropped, and over's other rules and allowlists are added.
func (c *Config) merge(over *Config, disabled []string) *Config {
	off := map[string]bool{}
	for _, id := range disabled {
		off[id] = true
	}
	pending := map[string]*Rule{}
	for _, r := range over.Rules {
		pending[r.ID] = r
	}
	out := &Config{Title: over.Title, Allowlists: append(append([]*Allowlist{}, c.Allowlists...), over.Allowlists...)}
	for _, r := range c.Rules {
		nr, ok := pending[r.ID]
		switch {
		case off[r.ID]:
			// over's own rule of that id, if any, is added below as it is.
		case ok:
			out.Rules = append(out.Rules, mergeRule(r, nr))
			delete(pending, r.ID)
		default:
			out.Rules = append(out.Rules, r)
		}
	}
	for _, r := range over.Rules {
		if _, ok := pending[r.ID]; ok {
			out.Rules = append(out.Rules, r)
		}
	}
	return out
}

// mergeRule returns base changed by over: the description, entropy, secret
// group, regex and path over sets replace base's; its keywords, tags and
// allowlists are added to base's. base itself is not changed.
func mergeRule(base, over *Rule) *Rule {
	m := *base
	if over.Description != "" {
		m.Description = over.Description
	}
	if over.Entropy != 0 {
		m.Entropy = over.Entropy
	}
	if over.SecretGroup != 0 {
		m.SecretGroup = over.SecretGroup
	}
	if over.Regex != nil {
		m.Regex, m.window, m.multiline = over.Regex, over.window, over.multiline
	}
	if over.Path != nil {
		m.Path = over.Path
	}
	m.Keywords = slices.Compact(slices.Sorted(slices.Values(append(slices.Clip(base.Keywords), over.Keywords...))))
	m.Tags = append(slices.Clip(base.Tags), over.Tags...)
	m.Allowlists = append(slices.Clip(base.Allowlists), over.Allowlists...)
	return &m
}

func compileRule(tr *tomlRule) (*Rule, error) {
	if tr.ID == "" {
		return nil, errors.New("a rule has no id")
	}
	r := &Rule{ID: tr.ID, Description: tr.Description, SecretGroup: tr.SecretGroup, Entropy: tr.Entropy, Tags: tr.Tags}
	for _, k := range tr.Keywords {
		if k = strings.ToLower(strings.TrimSpace(k)); k != "" {
			r.Keywords = append(r.Keywords, k)
		}
	}
	var err error
	if tr.Regex != "" {
		if r.Regex, err = regexp.Compile(tr.Regex); err != nil {
			return nil, fmt.Errorf("rule %q: regex: %w", tr.ID, err)
		}
	}
	if tr.Path != "" {
		if r.Path, err = regexp.Compile(tr.Path); err != nil {
			return nil, fmt.Errorf("rule %q: path: %w", tr.ID, err)
		}
	}
	if tr.Allowlist != nil {
		tr.Allowlists = append(tr.Allowlists, *tr.Allowlist)
	}
	for i := range tr.Allowlists {
		if len(tr.Allowlists[i].TargetRules) > 0 {
			return nil, fmt.Errorf("rule %q: allowlist %d: targetRules belongs in a global [[allowlists]]", tr.ID, i+1)
		}
		al, err := compileAllowlist(&tr.Allowlists[i])
		if err != nil {
			return nil, fmt.Errorf("rule %q: allowlist %d: %w", tr.ID, i+1, err)
		}
		r.Allowlists = append(r.Allowlists, al)
	}
	if r.Regex != nil {
		r.window, r.multiline = regexShape(tr.Regex)
	}
	return r, nil
}

func compileAllowlist(ta *tomlAllowlist) (*Allowlist, error) {
	al := &Allowlist{Description: ta.Description, Condition: strings.ToUpper(ta.Condition), RegexTarget: ta.RegexTarget, Commits: ta.Commits}
	if al.Condition == "" {
		al.Condition = "OR"
	}
	if al.Condition != "OR" && al.Condition != "AND" {
		return nil, fmt.Errorf("condition %q: use OR or AND", ta.Condition)
	}
	switch al.RegexTarget {
	case "", "secret", "match", "line":
	default:
		return nil, fmt.Errorf("regexTarget %q: use secret, match or line", ta.RegexTarget)
	}
	for _, s := range ta.Regexes {
		re, err := regexp.Compile(s)
		if err != nil {
			return nil, fmt.Errorf("regex %q: %w", s, err)
		}
		al.Regexes = append(al.Regexes, re)
	}
	for _, s := range ta.Paths {
		re, err := regexp.Compile(s)
		if err != nil {
			return nil, fmt.Errorf("path %q: %w", s, err)
		}
		al.Paths = append(al.Paths, re)
	}
	for _, w := range ta.Stopwords {
		al.Stopwords = append(al.Stopwords, strings.ToLower(w))
	}
	return al, nil
}
