package policy

import (
	"encoding/json"
	"fmt"
	"reflect"
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
	segments      []string // for "+" patterns
	firstWild     int      // index of the first '+' or '*'; len(pattern) when none
	glob          bool     // ends in '*'
	plusCount     int
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
	if i := strings.IndexAny(pattern, "+*"); i >= 0 {
		r.firstWild = i
	}
	r.segments = strings.Split(pattern, "/")
	for _, s := range r.segments {
		if s == "+" {
			r.plusCount++
		}
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
	r.required = append(r.required, pr.RequiredParameters...)
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
// list of values.
func mergeParams(dst, src map[string][]any) map[string][]any {
	if len(src) == 0 {
		return dst
	}
	if dst == nil {
		dst = map[string][]any{}
	}
	for k, vs := range src {
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

// matchPlus reports whether path matches a pattern with '+' segments.
func (r *rule) matchPlus(path string) bool {
	segs := r.segments
	for i, s := range segs {
		last := i == len(segs)-1
		if last && r.glob {
			prefix := strings.TrimSuffix(s, "*")
			if s == "*" {
				return true
			}
			// The rest of the path must start with the segment's prefix.
			return strings.HasPrefix(path, prefix)
		}
		var seg string
		j := strings.IndexByte(path, '/')
		if j < 0 {
			seg, path = path, ""
			if !last {
				// The path ran out before the pattern.
				return false
			}
		} else {
			seg, path = path[:j], path[j+1:]
			if last {
				return false
			}
		}
		if s == "+" {
			if seg == "" {
				return false
			}
			continue
		}
		if s != seg {
			return false
		}
	}
	return path == ""
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

// match finds the rule that decides path, or nil.
func (a *ACL) match(path string) *rule {
	if r, ok := a.exact[path]; ok {
		return r
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
	r := a.match(path)
	if r == nil || r.caps&Deny != 0 {
		return Decision{}
	}
	d := Decision{Sudo: r.caps&Sudo != 0, Capabilities: r.caps, MinWrappingTTL: r.minWrap, MaxWrappingTTL: r.maxWrap}
	if r.caps&op == 0 {
		return d
	}
	if r.hasParamRules && op&(Create|Update|Patch) != 0 {
		if p := r.checkParams(data); p != "" {
			d.DeniedParam = p
			return d
		}
	}
	d.Allowed = true
	return d
}

// checkParams applies denied, required and allowed parameter rules; it
// returns the offending parameter name, or "".
func (r *rule) checkParams(data map[string]any) string {
	if vals, ok := r.denied["*"]; ok && len(vals) == 0 && len(data) > 0 {
		for k := range data {
			return k
		}
	}
	for k, v := range data {
		if vals, ok := r.denied[k]; ok {
			if len(vals) == 0 || valueMatches(vals, v) {
				return k
			}
		}
	}
	for _, k := range r.required {
		if _, ok := data[k]; !ok {
			return k
		}
	}
	if len(r.allowed) == 0 {
		return ""
	}
	for k, v := range data {
		vals, ok := r.allowed[k]
		if !ok {
			vals, ok = r.allowed["*"]
		}
		if !ok {
			return k
		}
		if len(vals) > 0 && !valueMatches(vals, v) {
			return k
		}
	}
	return ""
}

// valueMatches reports whether v equals one of allowed, where a string with
// a leading or trailing '*' matches by suffix or prefix. A list value
// matches when every element does.
func valueMatches(allowed []any, v any) bool {
	if list, ok := v.([]any); ok {
		for _, e := range list {
			if !valueMatches(allowed, e) {
				return false
			}
		}
		return len(list) > 0
	}
	s := scalarString(v)
	for _, a := range allowed {
		as := scalarString(a)
		switch {
		case as == "*":
			return true
		case strings.HasPrefix(as, "*") && strings.HasSuffix(s, as[1:]):
			return true
		case strings.HasSuffix(as, "*") && strings.HasPrefix(s, as[:len(as)-1]):
			return true
		case as == s:
			return true
		case reflect.DeepEqual(a, v):
			return true
		}
	}
	return false
}

func scalarString(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case json.Number:
		return t.String()
	}
	return fmt.Sprint(v)
}

// Capabilities returns what sys/capabilities reports for path.
func (a *ACL) Capabilities(path string) []string {
	if a.root {
		return []string{"root"}
	}
	r := a.match(path)
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
	ps := strings.Split(strings.TrimSuffix(prefix, "/"), "/")
	for i, s := range ps {
		if i >= len(r.segments) {
			return false
		}
		rs := r.segments[i]
		if rs == "+" || strings.HasSuffix(rs, "*") && strings.HasPrefix(s, strings.TrimSuffix(rs, "*")) {
			if strings.HasSuffix(rs, "*") {
				return true
			}
			continue
		}
		if rs != s {
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
