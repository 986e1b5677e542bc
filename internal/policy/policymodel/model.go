// Package policymodel is a reference model of Vault's ACL policy semantics,
// written for clarity rather than speed. Tests compare the compiled ACL in
// internal/policy against it; nothing else should use it.
//
// The semantics, as Vault's policy documentation states them:
//
//   - A pattern is exact, ends in a '*' glob (prefix match), or has '+'
//     segments (each matches exactly one path segment, which may be empty).
//   - Rules for the same pattern in several policies are merged: their
//     capabilities are unioned, and a deny among them leaves only deny.
//   - Exactly one pattern decides a path: an exact match if there is one,
//     else the matching wildcard pattern of highest priority (see outranks).
//   - A list request's path ends in '/'; when no pattern matches it exactly,
//     an exact pattern without the trailing '/' decides.
//   - Parameter constraints apply to read, create, update and patch.
package policymodel

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Rule is one path block of a policy.
type Rule struct {
	Pattern  string
	Caps     []string // create, read, update, patch, delete, list, sudo, deny
	Allowed  map[string][]any
	Denied   map[string][]any
	Required []string
}

// Policy is a named list of rules.
type Policy struct {
	Name  string
	Rules []Rule
}

// merged is every rule for one pattern, across all policies.
type merged struct {
	pattern  string
	caps     map[string]bool
	allowed  map[string][]any // nil when no policy constrains allowed parameters
	denied   map[string][]any
	required []string
}

// Model is a token's set of policies.
type Model struct {
	root  bool
	rules map[string]*merged
}

// New builds the model of a token holding policies.
func New(policies ...Policy) *Model {
	m := &Model{rules: map[string]*merged{}}
	for _, p := range policies {
		if p.Name == "root" {
			m.root = true
		}
		for _, r := range p.Rules {
			// Policy text may spell a path with a leading '/'; request
			// paths never have one.
			pattern := strings.TrimPrefix(r.Pattern, "/")
			mr := m.rules[pattern]
			if mr == nil {
				mr = &merged{pattern: pattern, caps: map[string]bool{}}
				m.rules[pattern] = mr
			}
			for _, c := range r.Caps {
				mr.caps[c] = true
			}
			mr.allowed = mergeValues(mr.allowed, r.Allowed)
			mr.denied = mergeValues(mr.denied, r.Denied)
			for _, k := range r.Required {
				if !slices.Contains(mr.required, k) {
					mr.required = append(mr.required, k)
				}
			}
		}
	}
	return m
}

// mergeValues unions two parameter constraint maps. Keys are case-insensitive.
// An empty value list means any value, so it absorbs a populated one.
func mergeValues(dst, src map[string][]any) map[string][]any {
	if len(src) == 0 {
		return dst
	}
	if dst == nil {
		dst = map[string][]any{}
	}
	for k, vs := range src {
		k = strings.ToLower(k)
		cur, seen := dst[k]
		switch {
		case !seen:
			dst[k] = slices.Clone(vs)
		case len(cur) == 0 || len(vs) == 0:
			dst[k] = []any{}
		default:
			dst[k] = append(cur, vs...)
		}
	}
	return dst
}

// segments splits pattern without its trailing '*' into path segments.
func segments(pattern string) []string {
	return strings.Split(strings.TrimSuffix(pattern, "*"), "/")
}

// isWildcard reports whether pattern has a '+' segment or a trailing '*'.
func isWildcard(pattern string) bool {
	return strings.HasSuffix(pattern, "*") || slices.Contains(segments(pattern), "+")
}

// matches reports whether a wildcard pattern matches path.
func matches(pattern, path string) bool {
	glob := strings.HasSuffix(pattern, "*")
	want := segments(pattern)
	got := strings.Split(path, "/")
	if len(got) < len(want) || !glob && len(got) != len(want) {
		return false
	}
	for i, w := range want {
		last := i == len(want)-1
		switch {
		case w == "+":
		case last && glob:
			if !strings.HasPrefix(got[i], w) {
				return false
			}
		case w != got[i]:
			return false
		}
	}
	return true
}

// firstWildcard is the offset of the first '+' segment, or else of the
// trailing '*'.
func firstWildcard(pattern string) int {
	at := 0
	for _, seg := range segments(pattern) {
		if seg == "+" {
			return at
		}
		at += len(seg) + 1
	}
	return len(strings.TrimSuffix(pattern, "*"))
}

func plusSegments(pattern string) int {
	n := 0
	for _, seg := range segments(pattern) {
		if seg == "+" {
			n++
		}
	}
	return n
}

// outranks reports whether wildcard pattern a has priority over b, by the
// documented rules, each deciding only when the ones before it tie:
// a later first wildcard wins; not ending in '*' wins; fewer '+' segments
// win; longer wins; lexicographically greater wins.
func outranks(a, b string) bool {
	if fa, fb := firstWildcard(a), firstWildcard(b); fa != fb {
		return fa > fb
	}
	if ga, gb := strings.HasSuffix(a, "*"), strings.HasSuffix(b, "*"); ga != gb {
		return gb
	}
	if pa, pb := plusSegments(a), plusSegments(b); pa != pb {
		return pa < pb
	}
	if len(a) != len(b) {
		return len(a) > len(b)
	}
	return a > b
}

// decide returns the rule that decides path, or nil.
func (m *Model) decide(path string, list bool) *merged {
	if r, ok := m.rules[path]; ok && !isWildcard(path) {
		return r
	}
	if list {
		trimmed := strings.TrimSuffix(path, "/")
		if r, ok := m.rules[trimmed]; ok && !isWildcard(trimmed) {
			return r
		}
	}
	var best *merged
	for pattern, r := range m.rules {
		if isWildcard(pattern) && matches(pattern, path) && (best == nil || outranks(pattern, best.pattern)) {
			best = r
		}
	}
	return best
}

// Allowed reports whether op (create, read, update, patch, delete, list) on
// path with request parameters data is allowed. It does not consider sudo.
func (m *Model) Allowed(op, path string, data map[string]any) bool {
	if m.root {
		return true
	}
	r := m.decide(path, op == "list")
	if r == nil || r.caps["deny"] || !r.caps[op] {
		return false
	}
	switch op {
	case "read", "create", "update", "patch":
		return r.paramsAllowed(data)
	}
	return true
}

// Sudo reports whether the rule deciding path grants sudo.
func (m *Model) Sudo(path string, list bool) bool {
	if m.root {
		return true
	}
	r := m.decide(path, list)
	return r != nil && !r.caps["deny"] && r.caps["sudo"]
}

// Capabilities is what sys/capabilities reports for path: ["root"], or the
// sorted capabilities of the deciding rule, or ["deny"]. The lookup is the
// one a list request makes, so a path with a trailing '/' falls back to the
// exact pattern without it.
func (m *Model) Capabilities(path string) []string {
	if m.root {
		return []string{"root"}
	}
	r := m.decide(path, true)
	if r == nil || r.caps["deny"] || len(r.caps) == 0 {
		return []string{"deny"}
	}
	var out []string
	for c := range r.caps {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

func (r *merged) paramsAllowed(data map[string]any) bool {
	for _, k := range r.required {
		if _, ok := data[strings.ToLower(k)]; !ok {
			return false
		}
	}
	if len(data) == 0 {
		return true
	}
	if _, all := r.denied["*"]; all {
		return false
	}
	for k, v := range data {
		if vals, ok := r.denied[strings.ToLower(k)]; ok && (len(vals) == 0 || anyMatches(vals, v)) {
			return false
		}
	}
	if len(r.allowed) == 0 {
		return true
	}
	_, anyName := r.allowed["*"]
	for k, v := range data {
		vals, ok := r.allowed[strings.ToLower(k)]
		if !ok && !anyName {
			return false
		}
		if ok && len(vals) > 0 && !allMatch(vals, v) {
			return false
		}
	}
	return true
}

// anyMatches reports whether v, or any element of a list v, matches one of
// the patterns: a denied value anywhere in a list denies it.
func anyMatches(patterns []any, v any) bool {
	if list, ok := v.([]any); ok {
		return slices.ContainsFunc(list, func(e any) bool { return anyMatches(patterns, e) })
	}
	return slices.ContainsFunc(patterns, func(p any) bool { return valueMatches(p, v) })
}

// allMatch reports whether v, or every element of a list v, matches one of
// the patterns: a list is allowed only if each of its values is.
func allMatch(patterns []any, v any) bool {
	if list, ok := v.([]any); ok {
		for _, e := range list {
			if !allMatch(patterns, e) {
				return false
			}
		}
		return true
	}
	return slices.ContainsFunc(patterns, func(p any) bool { return valueMatches(p, v) })
}

// valueMatches compares one policy value with one request value by their
// text; a policy string starting and/or ending in '*' matches by suffix,
// prefix or substring, and "*" alone matches any scalar.
func valueMatches(pattern, v any) bool {
	ps, ok1 := scalar(pattern)
	vs, ok2 := scalar(v)
	if !ok1 || !ok2 {
		return false
	}
	if _, isString := pattern.(string); !isString || len(ps) == 0 {
		return ps == vs
	}
	pre, suf := strings.HasSuffix(ps, "*"), strings.HasPrefix(ps, "*")
	switch {
	case ps == "*":
		return true
	case pre && suf:
		return strings.Contains(vs, ps[1:len(ps)-1])
	case suf:
		return strings.HasSuffix(vs, ps[1:])
	case pre:
		return strings.HasPrefix(vs, ps[:len(ps)-1])
	}
	return ps == vs
}

// scalar is the text of a string, number or boolean; ok is false for
// anything else (null, objects, lists), which no policy value matches.
func scalar(v any) (s string, ok bool) {
	switch t := v.(type) {
	case string:
		return t, true
	case json.Number:
		return t.String(), true
	case bool, int, int64, float64:
		return fmt.Sprint(t), true
	}
	return "", false
}
