package policy

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	radix "github.com/armon/go-radix"
)

// rule is the merged rules of every policy for one path pattern.
type rule struct {
	pattern  string
	caps     Capability
	allowed  map[string][]any
	denied   map[string][]any
	required []string
	// minWrap and maxWrap bound the response-wrapping TTL a request must
	// ask for; 0 sets no bound.
	minWrap, maxWrap time.Duration

	// Precomputed for priority matching.
	segments      []string // the pattern without its trailing '*', split at '/'
	firstWild     int      // offset of the first '+' segment, else of the '*'; len(pattern) when neither
	glob          bool     // ends in '*'
	plusCount     int      // number of '+' segments
	hasParamRules bool
}

// ACL is the compiled union of a token's policies. It is immutable and safe
// for concurrent use.
type ACL struct {
	root  bool
	exact map[string]*rule
	globs *radix.Tree // prefix (pattern without '*') -> *rule
	plus  []*rule     // patterns with a '+' segment
	all   []*rule
}

// RootACL allows everything, including sudo.
func RootACL() *ACL { return &ACL{root: true} }

// NewACL compiles policies into one ACL.
func NewACL(policies ...*Policy) (*ACL, error) {
	a := &ACL{exact: map[string]*rule{}, globs: radix.New()}
	byPattern := map[string]*rule{}
	for _, p := range policies {
		if p == nil {
			continue
		}
		if p.Name == "root" {
			return RootACL(), nil
		}
		for _, pr := range p.Paths {
			r, ok := byPattern[pr.Path]
			if !ok {
				r = newRule(pr.Path)
				byPattern[pr.Path] = r
			}
			r.merge(pr)
		}
	}
	for pattern, r := range byPattern {
		a.all = append(a.all, r)
		switch {
		case r.plusCount > 0:
			a.plus = append(a.plus, r)
		case r.glob:
			a.globs.Insert(strings.TrimSuffix(pattern, "*"), r)
		default:
			a.exact[pattern] = r
		}
	}
	return a, nil
}

func newRule(pattern string) *rule {
	r := &rule{pattern: pattern, glob: strings.HasSuffix(pattern, "*"), firstWild: len(pattern)}
	r.segments = strings.Split(strings.TrimSuffix(pattern, "*"), "/")
	at := 0
	for _, s := range r.segments {
		if s == "+" {
			if r.plusCount == 0 {
				r.firstWild = at
			}
			r.plusCount++
		}
		at += len(s) + 1
	}
	if r.plusCount == 0 && r.glob {
		r.firstWild = len(pattern) - 1
	}
	return r
}

// merge folds another policy's rules for the same pattern into r.
func (r *rule) merge(pr *PathRules) {
	if pr.Capabilities&Deny != 0 || r.caps&Deny != 0 {
		r.caps = Deny
	} else {
		r.caps |= pr.Capabilities
	}
	r.allowed = mergeParams(r.allowed, pr.AllowedParameters)
	r.denied = mergeParams(r.denied, pr.DeniedParameters)
	for _, k := range pr.RequiredParameters {
		if !slices.Contains(r.required, k) {
			r.required = append(r.required, k)
		}
	}
	// Where several policies bound the wrapping TTL, the lowest bound of
	// each kind stands, as in Vault.
	r.minWrap = lowestBound(r.minWrap, pr.MinWrappingTTL)
	r.maxWrap = lowestBound(r.maxWrap, pr.MaxWrappingTTL)
	r.hasParamRules = len(r.allowed) > 0 || len(r.denied) > 0 || len(r.required) > 0
}

// lowestBound is the lower of two bounds, where 0 means none.
func lowestBound(a, b time.Duration) time.Duration {
	if a == 0 || (b > 0 && b < a) {
		return b
	}
	return a
}

// mergeParams unions parameter rules; an empty list (any value) absorbs a
// list of values. Parameter names are case-insensitive, as in Vault, so they
// are kept in lower case.
func mergeParams(dst, src map[string][]any) map[string][]any {
	if len(src) == 0 {
		return dst
	}
	if dst == nil {
		dst = map[string][]any{}
	}
	for k, vs := range src {
		k = strings.ToLower(k)
		cur, ok := dst[k]
		switch {
		case !ok:
			dst[k] = append([]any(nil), vs...)
		case len(cur) == 0 || len(vs) == 0:
			dst[k] = []any{}
		default:
			dst[k] = append(cur, vs...)
		}
	}
	return dst
}

// matchPlus reports whether path matches a pattern with '+' segments. A '+'
// matches one whole segment, which may be empty; a trailing '*' lets the
// last segment match by prefix and any further segments follow.
func (r *rule) matchPlus(path string) bool {
	last := len(r.segments) - 1
	for i, s := range r.segments {
		seg, rest, more := strings.Cut(path, "/")
		switch {
		case s == "+":
		case i == last && r.glob:
			if !strings.HasPrefix(seg, s) {
				return false
			}
		case s != seg:
			return false
		}
		if i == last {
			return r.glob || !more
		}
		if !more {
			return false
		}
		path = rest
	}
	return false
}

// higher reports whether a outranks b by Vault's priority rules.
func higher(a, b *rule) bool {
	if a.firstWild != b.firstWild {
		return a.firstWild > b.firstWild
	}
	if a.glob != b.glob {
		return !a.glob
	}
	if a.plusCount != b.plusCount {
		return a.plusCount < b.plusCount
	}
	if len(a.pattern) != len(b.pattern) {
		return len(a.pattern) > len(b.pattern)
	}
	return a.pattern > b.pattern
}

// match finds the rule that decides path, or nil. A list request's path
// ends in '/'; when no pattern names it exactly, an exact pattern without
// the '/' decides, as in Vault.
func (a *ACL) match(path string, list bool) *rule {
	if r, ok := a.exact[path]; ok {
		return r
	}
	if list {
		if r, ok := a.exact[strings.TrimSuffix(path, "/")]; ok {
			return r
		}
	}
	var best *rule
	if _, v, ok := a.globs.LongestPrefix(path); ok {
		best = v.(*rule)
	}
	for _, r := range a.plus {
		if (best == nil || higher(r, best)) && r.matchPlus(path) {
			best = r
		}
	}
	return best
}

// Decision is the outcome of Check.
type Decision struct {
	Allowed      bool
	Sudo         bool
	Capabilities Capability
	// DeniedParam names the parameter that caused a denial, if one did.
	DeniedParam string
	// MinWrappingTTL and MaxWrappingTTL, when non-zero, bound the
	// response-wrapping TTL the request must ask for; the caller enforces
	// them, since only it knows the request's wrapping TTL.
	MinWrappingTTL time.Duration
	MaxWrappingTTL time.Duration
}

// Check decides op (one of Create, Read, Update, Patch, Delete, List) on
// path, given the request data for parameter rules.
func (a *ACL) Check(path string, op Capability, data map[string]any) Decision {
	if a.root {
		return Decision{Allowed: true, Sudo: true, Capabilities: Create | Read | Update | Patch | Delete | List | Sudo}
	}
	r := a.match(path, op == List)
	if r == nil || r.caps&Deny != 0 {
		return Decision{}
	}
	d := Decision{Sudo: r.caps&Sudo != 0, Capabilities: r.caps, MinWrappingTTL: r.minWrap, MaxWrappingTTL: r.maxWrap}
	if r.caps&op == 0 {
		return d
	}
	if r.hasParamRules && op&(Read|Create|Update|Patch) != 0 {
		if p := r.checkParams(data); p != "" {
			d.DeniedParam = p
			return d
		}
	}
	d.Allowed = true
	return d
}

// checkParams applies required, denied and allowed parameter rules, in
// that order; it returns the offending parameter name, or "". Request
// parameter names are matched case-insensitively.
func (r *rule) checkParams(data map[string]any) string {
	for _, k := range r.required {
		if _, ok := data[strings.ToLower(k)]; !ok {
			return k
		}
	}
	if len(data) == 0 {
		return ""
	}
	names := slices.Sorted(maps.Keys(data)) // the same parameter is named every time
	if _, all := r.denied["*"]; all {
		return names[0]
	}
	for _, k := range names {
		if vals, ok := r.denied[strings.ToLower(k)]; ok && (len(vals) == 0 || anyValueMatches(vals, data[k])) {
			return k
		}
	}
	if len(r.allowed) == 0 {
		return ""
	}
	_, anyName := r.allowed["*"]
	for _, k := range names {
		vals, ok := r.allowed[strings.ToLower(k)]
		if !ok && !anyName {
			return k
		}
		if ok && len(vals) > 0 && !everyValueMatches(vals, data[k]) {
			return k
		}
	}
	return ""
}

// anyValueMatches reports whether v, or any element of a list v, matches one
// of patterns: one denied value anywhere in a list denies the list.
func anyValueMatches(patterns []any, v any) bool {
	if list, ok := v.([]any); ok {
		return slices.ContainsFunc(list, func(e any) bool { return anyValueMatches(patterns, e) })
	}
	return slices.ContainsFunc(patterns, func(p any) bool { return valueMatches(p, v) })
}

// everyValueMatches reports whether v, or every element of a list v,
// matches one of patterns: a list is allowed only if each of its values is.
func everyValueMatches(patterns []any, v any) bool {
	if list, ok := v.([]any); ok {
		for _, e := range list {
			if !everyValueMatches(patterns, e) {
				return false
			}
		}
		return true
	}
	return slices.ContainsFunc(patterns, func(p any) bool { return valueMatches(p, v) })
}

// valueMatches compares a policy value with a scalar request value by their
// text. A policy string may glob: "*" matches any value, "*x" by suffix,
// "x*" by prefix, "*x*" by substring.
func valueMatches(pattern, v any) bool {
	ps, ok := scalarString(pattern)
	vs, ok2 := scalarString(v)
	if !ok || !ok2 {
		return false
	}
	if _, isString := pattern.(string); !isString || ps == "" {
		return ps == vs
	}
	prefix, suffix := strings.HasSuffix(ps, "*"), strings.HasPrefix(ps, "*")
	switch {
	case ps == "*":
		return true
	case prefix && suffix:
		return strings.Contains(vs, ps[1:len(ps)-1])
	case suffix:
		return strings.HasSuffix(vs, ps[1:])
	case prefix:
		return strings.HasPrefix(vs, ps[:len(ps)-1])
	}
	return ps == vs
}

// scalarString is the text of a string, number or boolean; ok is false for
// null, objects and lists, which no policy value matches.
func scalarString(v any) (s string, ok bool) {
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

// Capabilities returns what sys/capabilities reports for path: the
// capabilities of the rule a list request on path would be decided by, so
// "a/b/" reports an exact rule for "a/b" when there is none for "a/b/".
func (a *ACL) Capabilities(path string) []string {
	if a.root {
		return []string{"root"}
	}
	r := a.match(path, true)
	if r == nil || r.caps == 0 {
		return []string{"deny"}
	}
	return r.caps.Strings()
}

// AnyCapabilityUnder reports whether some rule grants a capability on
// prefix or below it.
func (a *ACL) AnyCapabilityUnder(prefix string) bool {
	if a.root {
		return true
	}
	for _, r := range a.all {
		if r.caps == 0 || r.caps&Deny != 0 {
			continue
		}
		lit := r.pattern[:r.firstWild]
		if strings.HasPrefix(lit, prefix) || (r.firstWild < len(r.pattern) && strings.HasPrefix(prefix, lit)) {
			if r.plusCount == 0 || r.couldMatchUnder(prefix) {
				return true
			}
		}
	}
	return false
}

// couldMatchUnder reports whether a '+' pattern can match some path under
// prefix, comparing the segments both spell out.
func (r *rule) couldMatchUnder(prefix string) bool {
	last := len(r.segments) - 1
	for i, s := range strings.Split(strings.TrimSuffix(prefix, "/"), "/") {
		if i > last {
			return false
		}
		rs := r.segments[i]
		switch {
		case i == last && r.glob:
			return rs == "+" || strings.HasPrefix(s, rs)
		case rs == "+":
		case rs != s:
			return false
		}
	}
	return true
}

// WrapTTLAllowed reports whether a request that asks for response wrapping
// with ttl (0: no wrapping) meets the decision's wrapping bounds.
func (d Decision) WrapTTLAllowed(ttl time.Duration) bool {
	if d.MinWrappingTTL > 0 && d.MaxWrappingTTL > 0 && d.MaxWrappingTTL < d.MinWrappingTTL {
		return false // merged policies leave no TTL that meets both
	}
	if d.MinWrappingTTL > 0 && ttl < d.MinWrappingTTL {
		return false
	}
	return d.MaxWrappingTTL == 0 || (ttl > 0 && ttl <= d.MaxWrappingTTL)
}
