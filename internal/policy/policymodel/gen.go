package policymodel

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Chooser is the source of a generated case's choices.
type Chooser interface{ Intn(n int) int }

// Rand is a seeded, reproducible Chooser.
func Rand(seed uint64) Chooser { return prng{rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))} }

type prng struct{ r *rand.Rand }

func (p prng) Intn(n int) int { return p.r.IntN(n) }

// Bytes is a Chooser reading fuzz input; once the input runs out every
// choice is 0, so any input makes a complete case.
func Bytes(b []byte) Chooser { return &byteChooser{b} }

type byteChooser struct{ b []byte }

func (c *byteChooser) Intn(n int) int {
	if len(c.b) == 0 {
		return 0
	}
	v := int(c.b[0]) % n
	c.b = c.b[1:]
	return v
}

func pick[T any](c Chooser, xs []T) T { return xs[c.Intn(len(xs))] }

// The vocabularies are small so that generated patterns overlap and paths
// miss them by one character, one segment or one slash.
var (
	patternSegs = []string{"a", "b", "ab", "+", "+", ""}
	globTails   = []string{"a*", "ab*", "*", "+*", "b*"}
	pathSegs    = []string{"a", "b", "ab", "abc", "ba", "", "+", "a*"}
	plainSegs   = []string{"a", "b", "ab", "abc", "ba"}
	capNames    = []string{"create", "read", "update", "patch", "delete", "list", "sudo"}
	ops         = []string{"create", "read", "update", "patch", "delete", "list"}
	paramNames  = []string{"x", "y", "X", "*"}
	paramVals   = []any{"v", "w", "v*", "*v", "*", "*v*", "", 1, true, false, "1"}
	dataNames   = []string{"x", "y", "X", "z"}
	dataVals    = []any{"v", "w", "vw", "wv", "", "*", "1", json.Number("1"), true, false, nil,
		[]any{"v", "w"}, []any{"v"}, []any{}, map[string]any{"v": "v"}}
)

// Generator makes random policies and requests that exercise the corners
// of the semantics: overlapping patterns, near-miss paths, empty segments,
// deny, and parameter constraints. A choice of 0 always takes the plain
// branch (no deny, no parameters, not root), so short fuzz inputs make
// plain cases.
type Generator struct {
	C Chooser
	// Prefix is put before every pattern and path, e.g. a mount path.
	Prefix string
	// PlainPaths keeps request paths to non-empty segments of letters, as
	// an HTTP client sends them.
	PlainPaths bool
	// NoParams leaves out parameter constraints.
	NoParams bool
}

// Op returns an operation name.
func (g Generator) Op() string { return pick(g.C, ops) }

// Pattern returns a policy path pattern.
func (g Generator) Pattern() string {
	n := 1 + g.C.Intn(4)
	segs := make([]string, n)
	for i := range segs {
		segs[i] = pick(g.C, patternSegs)
	}
	if g.C.Intn(2) == 0 {
		segs[n-1] = pick(g.C, globTails)
	}
	return g.Prefix + strings.Join(segs, "/")
}

// Path returns a request path (without the '/' a list request adds).
func (g Generator) Path() string {
	vocab := pathSegs
	if g.PlainPaths {
		vocab = plainSegs
	}
	n := 1 + g.C.Intn(5)
	segs := make([]string, n)
	for i := range segs {
		segs[i] = pick(g.C, vocab)
	}
	return g.Prefix + strings.Join(segs, "/")
}

func (g Generator) params(withStar bool) map[string][]any {
	if g.NoParams || g.C.Intn(3) != 2 {
		return nil
	}
	m := map[string][]any{}
	for range 1 + g.C.Intn(2) {
		name := pick(g.C, paramNames)
		if name == "*" && !withStar {
			continue
		}
		vals := []any{}
		for range g.C.Intn(3) {
			vals = append(vals, pick(g.C, paramVals))
		}
		m[name] = vals
	}
	return m
}

// Rule returns one path block.
func (g Generator) Rule() Rule {
	r := Rule{Pattern: g.Pattern()}
	if g.C.Intn(8) == 7 {
		r.Caps = []string{"deny"}
	} else {
		for _, name := range capNames {
			if g.C.Intn(2) == 0 {
				r.Caps = append(r.Caps, name)
			}
		}
	}
	r.Allowed = g.params(true)
	r.Denied = g.params(g.C.Intn(4) == 0)
	if !g.NoParams && g.C.Intn(5) == 4 {
		r.Required = []string{pick(g.C, []string{"x", "y"})}
	}
	return r
}

// Policies returns one to three policies named p0, p1, ..., rarely "root".
func (g Generator) Policies() []Policy {
	ps := make([]Policy, 1+g.C.Intn(3))
	for i := range ps {
		ps[i].Name = fmt.Sprintf("p%d", i)
		if g.C.Intn(64) == 63 {
			ps[i].Name = "root"
		}
		for range 1 + g.C.Intn(5) {
			ps[i].Rules = append(ps[i].Rules, g.Rule())
		}
	}
	return ps
}

// Data returns request parameters, as decoded from JSON, or nil.
func (g Generator) Data() map[string]any {
	if g.C.Intn(3) == 0 {
		return nil
	}
	d := map[string]any{}
	for range 1 + g.C.Intn(3) {
		d[pick(g.C, dataNames)] = pick(g.C, dataVals)
	}
	return d
}

// HCL renders a policy as policy text.
func HCL(p Policy) string {
	var b strings.Builder
	for _, r := range p.Rules {
		fmt.Fprintf(&b, "path %q {\n  capabilities = %s\n", r.Pattern, hclList(toAny(r.Caps)))
		writeParams(&b, "allowed_parameters", r.Allowed)
		writeParams(&b, "denied_parameters", r.Denied)
		if r.Required != nil {
			fmt.Fprintf(&b, "  required_parameters = %s\n", hclList(toAny(r.Required)))
		}
		b.WriteString("}\n")
	}
	return b.String()
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func writeParams(b *strings.Builder, key string, m map[string][]any) {
	if m == nil {
		return
	}
	fmt.Fprintf(b, "  %s = {\n", key)
	for k, vs := range m {
		fmt.Fprintf(b, "    %q = %s\n", k, hclList(vs))
	}
	b.WriteString("  }\n")
}

func hclList(vs []any) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		if s, ok := v.(string); ok {
			parts[i] = strconv.Quote(s)
		} else {
			parts[i] = fmt.Sprint(v)
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
