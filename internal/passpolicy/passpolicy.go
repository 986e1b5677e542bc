// Package passpolicy parses password policies, in the HCL (or JSON) format of
// Vault's sys/policies/password, and generates passwords that follow them.
//
// A policy has a length and a list of charset rules. Every character of a
// password is drawn with crypto randomness, without modulo bias, from the
// union of the rules' charsets; a candidate that misses any rule's min-chars
// is thrown away whole and drawn again. Every password that meets the rules
// is therefore equally likely, and no character position is predictable.
//
//	length = 20
//	rule "charset" {
//	  charset   = "abcdefghijklmnopqrstuvwxyz"
//	  min-chars = 1
//	}
package passpolicy

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"unicode"
	"unicode/utf8"

	"github.com/arcasec/arca/internal/hclsafe"
)

// Bounds of a policy, as Vault enforces them.
const (
	MinLength  = 4
	MaxLength  = 100
	MaxCharset = 256 // distinct characters in the union of the charsets
)

const (
	// minAcceptance is the least share of random candidates that must meet
	// every rule. A stricter policy is refused when it is parsed, so that
	// generating never spins: at this share, maxAttempts candidates all
	// failing has a probability below e^-100.
	minAcceptance = 1e-4
	maxAttempts   = 1 << 20
	// maxStates bounds the work of computing the share: the product of
	// (min-chars+1) over the rules that have a min-chars.
	maxStates = 4096
)

// ErrTooRestrictive is returned by Generate when no candidate met the rules,
// which a policy accepted by Parse makes practically impossible.
var ErrTooRestrictive = errors.New("no random password met every rule of the policy; the policy is too restrictive")

// Rule asks for at least MinChars characters from Charset, and adds Charset
// to the characters passwords are drawn from.
type Rule struct {
	Charset  string
	MinChars int
}

// Policy is a parsed password policy. It is safe for concurrent use.
type Policy struct {
	length int
	rules  []Rule
	chars  []rune // sorted union of the rules' charsets
	// need holds the rules with a min-chars, as sets of indexes into chars.
	need []need
}

type need struct {
	min int
	in  [MaxCharset / 64]uint64
}

func (n *need) has(i byte) bool { return n.in[i/64]&(1<<(i%64)) != 0 }

// Length returns how many characters a password has.
func (p *Policy) Length() int { return p.length }

// Rules returns the policy's rules, in the order written.
func (p *Policy) Rules() []Rule { return append([]Rule(nil), p.rules...) }

// Charset returns the characters passwords are drawn from, sorted.
func (p *Policy) Charset() string { return string(p.chars) }

// DefaultText is Vault's default password policy: what engines use when no
// password_policy is configured.
const DefaultText = `length = 20
rule "charset" {
  charset = "abcdefghijklmnopqrstuvwxyz"
  min-chars = 1
}
rule "charset" {
  charset = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
  min-chars = 1
}
rule "charset" {
  charset = "0123456789"
  min-chars = 1
}
rule "charset" {
  charset = "-"
  min-chars = 1
}
`

// Default is DefaultText parsed: 20 characters from letters, digits and the
// dash, with at least one of each kind.
var Default = mustParse(DefaultText)

func mustParse(text string) *Policy {
	p, err := Parse(text)
	if err != nil {
		panic(err)
	}
	return p
}

// Parse parses a policy in HCL or JSON and checks that passwords can be
// generated from it: its length is within [MinLength, MaxLength], it has a
// charset, its min-chars fit in its length, and a random candidate meets its
// rules often enough.
func Parse(text string) (*Policy, error) {
	f, err := hclsafe.Parse(text)
	if err != nil {
		return nil, fmt.Errorf("the password policy is not valid HCL or JSON: %w", err)
	}
	var raw map[string]any
	if err := hclsafe.DecodeObject(&raw, f.Node); err != nil {
		return nil, fmt.Errorf("the password policy is not valid HCL or JSON: %w", err)
	}
	p := &Policy{}
	haveLength := false
	for _, key := range sortedKeys(raw) {
		switch key {
		case "length":
			n, ok := wholeNumber(raw[key])
			if !ok {
				return nil, fmt.Errorf("length must be a whole number, got %v", raw[key])
			}
			p.length, haveLength = n, true
		case "rule":
			if err := p.addRules(raw[key]); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("unknown key %q in the password policy: it has only length and rule blocks", key)
		}
	}
	if !haveLength {
		return nil, errors.New("length is required")
	}
	if err := p.compile(); err != nil {
		return nil, err
	}
	return p, nil
}

// wholeNumber returns v as an int when it is one: JSON writers may give
// 20 as 20.0, but 20.5 characters means nothing.
func wholeNumber(v any) (int, bool) {
	switch v := v.(type) {
	case int:
		return v, true
	case float64:
		if v == math.Trunc(v) && math.Abs(v) <= 1<<31 {
			return int(v), true
		}
	}
	return 0, false
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// addRules adds the rules of the decoded `rule "<type>" { ... }` blocks.
func (p *Policy) addRules(v any) error {
	blocks, ok := v.([]map[string]any)
	if !ok {
		return errors.New(`rule must be a block with a type, as in rule "charset" { charset = "abc" }`)
	}
	for _, block := range blocks {
		for _, typ := range sortedKeys(block) {
			if typ != "charset" {
				return fmt.Errorf("unknown rule type %q: the only rule type is charset", typ)
			}
			bodies, ok := block[typ].([]map[string]any)
			if !ok {
				return errors.New(`rule must be a block with a type, as in rule "charset" { charset = "abc" }`)
			}
			for _, body := range bodies {
				r, err := parseCharsetRule(body)
				if err != nil {
					return fmt.Errorf("rule %d (charset): %w", len(p.rules)+1, err)
				}
				p.rules = append(p.rules, r)
			}
		}
	}
	return nil
}

func parseCharsetRule(body map[string]any) (Rule, error) {
	var r Rule
	haveCharset := false
	for _, key := range sortedKeys(body) {
		switch key {
		case "charset":
			s, ok := body[key].(string)
			if !ok {
				return r, fmt.Errorf("charset must be a string, got %v", body[key])
			}
			r.Charset, haveCharset = s, true
		case "min-chars":
			n, ok := wholeNumber(body[key])
			if !ok || n < 0 {
				return r, fmt.Errorf("min-chars must be a whole number of 0 or more, got %v", body[key])
			}
			r.MinChars = n
		default:
			return r, fmt.Errorf("unknown key %q: a charset rule has only charset and min-chars", key)
		}
	}
	if !haveCharset || r.Charset == "" {
		return r, errors.New("charset is required and cannot be empty")
	}
	if !utf8.ValidString(r.Charset) {
		return r, errors.New("charset is not valid UTF-8")
	}
	for _, c := range r.Charset {
		if !unicode.IsPrint(c) {
			return r, fmt.Errorf("charset holds the character %U, which is not printable", c)
		}
	}
	return r, nil
}

// compile checks the policy and builds what Generate draws from.
func (p *Policy) compile() error {
	if p.length < MinLength || p.length > MaxLength {
		return fmt.Errorf("length must be between %d and %d, got %d", MinLength, MaxLength, p.length)
	}
	if len(p.rules) == 0 {
		return errors.New(`the policy has no charset to draw from: add at least one rule "charset" block`)
	}
	seen := map[rune]bool{}
	sum := 0
	for _, r := range p.rules {
		for _, c := range r.Charset {
			if !seen[c] {
				seen[c] = true
				p.chars = append(p.chars, c)
			}
		}
		sum += r.MinChars
	}
	if len(p.chars) > MaxCharset {
		return fmt.Errorf("the charsets hold %d distinct characters together; at most %d are allowed", len(p.chars), MaxCharset)
	}
	if sum > p.length {
		return fmt.Errorf("the rules ask for at least %d characters (the sum of their min-chars) but length is %d", sum, p.length)
	}
	sort.Slice(p.chars, func(i, j int) bool { return p.chars[i] < p.chars[j] })
	index := make(map[rune]byte, len(p.chars))
	for i, c := range p.chars {
		index[c] = byte(i)
	}
	for _, r := range p.rules {
		if r.MinChars == 0 {
			continue
		}
		n := need{min: r.MinChars}
		for _, c := range r.Charset {
			i := index[c]
			n.in[i/64] |= 1 << (i % 64)
		}
		p.need = append(p.need, n)
	}
	share, err := p.acceptance()
	if err != nil {
		return err
	}
	if share < minAcceptance {
		return fmt.Errorf("the policy is too restrictive: a random candidate meets its rules with probability %.2g, below %g; lengthen it, or lower min-chars of the rules with small charsets", share, minAcceptance)
	}
	return nil
}

// acceptance returns the probability that a candidate drawn uniformly from
// the charset meets every rule. It walks the candidate one character at a
// time, keeping the probability of each vector of per-rule counts (capped at
// each rule's min-chars).
func (p *Policy) acceptance() (float64, error) {
	if len(p.need) == 0 {
		return 1, nil
	}
	// A state is a mixed-radix number: digit j counts rule j, up to its min.
	states := 1
	for _, n := range p.need {
		states *= n.min + 1
		if states > maxStates {
			return 0, fmt.Errorf("the rules' min-chars are too many to check (more than %d combinations of counts): use fewer rules with min-chars or smaller min-chars", maxStates)
		}
	}
	// Characters that belong to the same rules act alike: group them by the
	// set of rules (at most 12, as each doubles the states) they count for.
	type group struct {
		weight float64
		rules  uint64
	}
	index := map[uint64]int{}
	var groups []group
	for i := range p.chars {
		var rules uint64
		for j := range p.need {
			if p.need[j].has(byte(i)) {
				rules |= 1 << j
			}
		}
		gi, ok := index[rules]
		if !ok {
			gi = len(groups)
			index[rules] = gi
			groups = append(groups, group{rules: rules})
		}
		groups[gi].weight += 1 / float64(len(p.chars))
	}
	next := make([]int, states*len(groups))
	for s := range states {
		for gi, g := range groups {
			t, stride := s, 1
			for j, n := range p.need {
				digit := (s / stride) % (n.min + 1)
				if digit < n.min && g.rules&(1<<j) != 0 {
					t += stride
				}
				stride *= n.min + 1
			}
			next[s*len(groups)+gi] = t
		}
	}
	cur, nxt := make([]float64, states), make([]float64, states)
	cur[0] = 1
	for range p.length {
		clear(nxt)
		for s, pr := range cur {
			if pr == 0 {
				continue
			}
			for gi, g := range groups {
				nxt[next[s*len(groups)+gi]] += pr * g.weight
			}
		}
		cur, nxt = nxt, cur
	}
	return cur[states-1], nil
}

// Source is what an engine's system view offers (logical.SystemView): a
// password generated from a named policy in sys/policies/password.
type Source interface {
	GeneratePasswordFromPolicy(ctx context.Context, policyName string) (string, error)
}

// FromPolicy returns a new password for an engine whose configuration may
// name a password policy: from the named policy through src, or from Default
// when name is empty.
func FromPolicy(ctx context.Context, src Source, name string) (string, error) {
	if name == "" {
		return Default.Generate(rand.Reader)
	}
	return src.GeneratePasswordFromPolicy(ctx, name)
}

// Generate returns a new password that meets every rule of the policy,
// reading randomness from random (crypto/rand's Reader when nil).
func (p *Policy) Generate(random io.Reader) (string, error) {
	if random == nil {
		random = rand.Reader
	}
	src := byteSource{r: random}
	n := len(p.chars)
	// Bytes at or above limit would favour the first characters: skip them.
	limit := 256 - 256%n
	candidate := make([]byte, p.length)
	for range maxAttempts {
		for i := range candidate {
			b, err := src.below(limit)
			if err != nil {
				return "", fmt.Errorf("reading randomness: %w", err)
			}
			candidate[i] = byte(b % n)
		}
		if p.meets(candidate) {
			out := make([]rune, len(candidate))
			for i, c := range candidate {
				out[i] = p.chars[c]
			}
			return string(out), nil
		}
	}
	return "", ErrTooRestrictive
}

// meets reports whether a candidate, as indexes into chars, meets every rule.
func (p *Policy) meets(candidate []byte) bool {
	for j := range p.need {
		count := 0
		for _, c := range candidate {
			if p.need[j].has(c) {
				count++
			}
		}
		if count < p.need[j].min {
			return false
		}
	}
	return true
}

// byteSource hands out random bytes from a buffer refilled from r.
type byteSource struct {
	r   io.Reader
	buf [256]byte
	pos int
	end int
}

// below returns the next random byte whose value is below limit (at most 256).
func (s *byteSource) below(limit int) (int, error) {
	for {
		if s.pos == s.end {
			if _, err := io.ReadFull(s.r, s.buf[:]); err != nil {
				return 0, err
			}
			s.pos, s.end = 0, len(s.buf)
		}
		b := int(s.buf[s.pos])
		s.pos++
		if b < limit {
			return b, nil
		}
	}
}
