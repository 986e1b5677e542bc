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
	Title     string
	Extend    tomlExtend
	Rules     []tomlRule
	Allowlist *tomlAllowlist
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
}

// DefaultConfig returns the built-in rules.
func DefaultConfig() *Config {
	c, err := ParseConfig(string(rules.DefaultTOML))
	if err != nil {
		panic("scan: the built-in rules do not parse: " + err.Error())
	}
	return c
}

// LoadConfig reads a gitleaks-format TOML file. With [extend] useDefault,
// its rules are layered over the built-in ones (a rule with the same id
// replaces the built-in one) and disabledRules are removed.
func LoadConfig(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the scan config: %w", err)
	}
	c, err := ParseConfig(string(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseConfig parses gitleaks-format TOML.
func ParseConfig(text string) (*Config, error) {
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
	c := &Config{Title: tc.Title}
	if tc.Allowlist != nil {
		tc.Allowlists = append(tc.Allowlists, *tc.Allowlist)
	}
	for i := range tc.Allowlists {
		al, err := compileAllowlist(&tc.Allowlists[i])
		if err != nil {
			return nil, fmt.Errorf("global allowlist %d: %w", i+1, err)
		}
		c.Allowlists = append(c.Allowlists, al)
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
		var base *Config
		if tc.Extend.Path != "" {
			if base, err = LoadConfig(tc.Extend.Path); err != nil {
				return nil, fmt.Errorf("[extend] path: %w", err)
			}
		} else {
			base = DefaultConfig()
		}
		c = base.merge(c, tc.Extend.DisabledRules)
	}
	return c, nil
}

// merge layers over on top of c: rules with the same id are replaced.
func (c *Config) merge(over *Config, disabled []string) *Config {
	off := map[string]bool{}
	for _, id := range disabled {
		off[id] = true
	}
	replaced := map[string]*Rule{}
	for _, r := range over.Rules {
		replaced[r.ID] = r
	}
	out := &Config{Title: over.Title, Allowlists: append(append([]*Allowlist{}, c.Allowlists...), over.Allowlists...)}
	for _, r := range c.Rules {
		if nr, ok := replaced[r.ID]; ok {
			out.Rules = append(out.Rules, nr)
			delete(replaced, r.ID)
		} else if !off[r.ID] {
			out.Rules = append(out.Rules, r)
		}
	}
	for _, r := range over.Rules {
		if _, ok := replaced[r.ID]; ok {
			out.Rules = append(out.Rules, r)
		}
	}
	return out
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
		if tr.SecretGroup > r.Regex.NumSubexp() {
			return nil, fmt.Errorf("rule %q: secretGroup %d, but the regex has %d groups", tr.ID, tr.SecretGroup, r.Regex.NumSubexp())
		}
	}
	if tr.Path != "" {
		if r.Path, err = regexp.Compile(tr.Path); err != nil {
			return nil, fmt.Errorf("rule %q: path: %w", tr.ID, err)
		}
	}
	if r.Regex == nil && r.Path == nil {
		return nil, fmt.Errorf("rule %q needs a regex or a path", tr.ID)
	}
	if tr.Allowlist != nil {
		tr.Allowlists = append(tr.Allowlists, *tr.Allowlist)
	}
	for i := range tr.Allowlists {
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
