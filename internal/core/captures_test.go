package core

import (
	"context"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"testing"

	"github.com/arcasec/arca/internal/engines/kv"
	"github.com/arcasec/arca/internal/logical"
	fw "github.com/arcasec/arca/internal/logical/framework"
)

// TestCapturesComeFromThePath walks every declared path of every built-in
// backend (sys/, auth/token/, cubbyhole/, identity/, KV v1 and v2). For each pattern
// with named groups it sends every declared operation, and the existence
// check, on a path the pattern matches, once with its optional parts
// present and once without (so captures that can be empty are empty), with
// request data that names every group. The handler must see each group's
// field exactly as the path captured it, never the data.
func TestCapturesComeFromThePath(t *testing.T) {
	ctx := context.Background()
	backends := map[string]logical.Backend{
		"sys":        newSystemBackend(nil),
		"auth/token": newTokenBackend(nil),
		"cubbyhole":  newCubbyholeBackend(nil),
		"identity":   newIdentityBackend(nil),
	}
	for _, v := range []string{"1", "2"} {
		b, err := kv.Factory(ctx, &logical.BackendConfig{Options: map[string]string{"version": v}})
		if err != nil {
			t.Fatal(err)
		}
		backends["kv v"+v] = b
	}
	for name, b := range backends {
		fb, ok := b.(*fw.Backend)
		if !ok {
			t.Fatalf("%s is a %T, not a framework backend", name, b)
		}
		t.Run(name, func(t *testing.T) { checkCaptures(t, fb) })
	}
}

// handled is what a probe handler saw: the declared path and its fields.
type handled struct {
	path *fw.Path
	data *fw.FieldData
}

// checkCaptures routes requests through a copy of b whose handlers and
// existence checks only record what they were given.
func checkCaptures(t *testing.T, b *fw.Backend) {
	ctx := context.Background()
	var got *handled
	probe := &fw.Backend{}
	for _, p := range b.Paths {
		if err := fw.CheckPattern(p.Pattern); err != nil {
			t.Error(err)
		}
		q := *p
		q.Operations = map[logical.Operation]fw.OperationFunc{}
		for op := range p.Operations {
			q.Operations[op] = func(_ context.Context, _ *logical.Request, d *fw.FieldData) (*logical.Response, error) {
				got = &handled{p, d}
				return nil, nil
			}
		}
		if p.ExistenceCheck != nil {
			q.ExistenceCheck = func(_ context.Context, _ *logical.Request, d *fw.FieldData) (bool, error) {
				got = &handled{p, d}
				return true, nil
			}
		}
		probe.Paths = append(probe.Paths, &q)
	}

	patterns := 0
	for _, p := range b.Paths {
		groups := namedGroups(p.Pattern)
		if len(groups) == 0 {
			continue
		}
		patterns++
		for _, full := range []bool{true, false} {
			path := samplePath(t, p.Pattern, full)
			data := map[string]any{}
			for name, f := range p.Fields {
				if f.Required {
					data[name] = sampleValue(f.Type)
				}
			}
			for _, g := range groups {
				data[g] = "injected-" + g
			}
			ops := make([]logical.Operation, 0, len(p.Operations))
			for op := range p.Operations {
				ops = append(ops, op)
			}
			slices.Sort(ops)
			for _, op := range ops {
				got = nil
				_, err := probe.HandleRequest(ctx, &logical.Request{Operation: op, Path: path, Data: data})
				if err != nil || got == nil {
					t.Errorf("%s %q (pattern %q): handler not reached: %v", op, path, p.Pattern, err)
					continue
				}
				checkFields(t, string(op), path, got)
			}
			if p.ExistenceCheck != nil {
				got = nil
				checked, _, err := probe.ExistenceCheck(ctx, &logical.Request{Operation: logical.UpdateOperation, Path: path, Data: data})
				if checked && (err != nil || got == nil) {
					t.Errorf("existence check of %q (pattern %q): %v", path, p.Pattern, err)
				} else if checked {
					checkFields(t, "existence check", path, got)
				}
			}
		}
	}
	if patterns == 0 {
		t.Fatal("no pattern with a named group: nothing was checked")
	}
}

// checkFields checks that every named group of the path that handled the
// request reached the handler as the path captured it.
func checkFields(t *testing.T, what, path string, h *handled) {
	t.Helper()
	re := regexp.MustCompile("^(?:" + h.path.Pattern + ")$")
	m := re.FindStringSubmatch(path)
	if m == nil {
		t.Fatalf("%s %q: handled by pattern %q, which does not match it", what, path, h.path.Pattern)
	}
	for i, name := range re.SubexpNames() {
		if name == "" {
			continue
		}
		if v := h.data.Get(name); v != m[i] {
			t.Errorf("%s %q (pattern %q): field %q = %q, want %q from the path", what, path, h.path.Pattern, name, v, m[i])
		}
	}
}

func namedGroups(pattern string) []string {
	var out []string
	for _, n := range regexp.MustCompile(pattern).SubexpNames() {
		if n != "" {
			out = append(out, n)
		}
	}
	return out
}

// samplePath returns a path pattern matches: with full, optional and
// repeated parts are present once; without, they are absent.
func samplePath(t *testing.T, pattern string, full bool) string {
	t.Helper()
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		t.Fatal(err)
	}
	var s strings.Builder
	var walk func(re *syntax.Regexp)
	walk = func(re *syntax.Regexp) {
		switch re.Op {
		case syntax.OpLiteral:
			s.WriteString(string(re.Rune))
		case syntax.OpCharClass:
			s.WriteRune(classRune(re.Rune))
		case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
			s.WriteRune('v')
		case syntax.OpCapture, syntax.OpAlternate: // an alternation's first branch
			walk(re.Sub[0])
		case syntax.OpConcat:
			for _, sub := range re.Sub {
				walk(sub)
			}
		case syntax.OpQuest, syntax.OpStar:
			if full {
				walk(re.Sub[0])
			}
		case syntax.OpPlus:
			walk(re.Sub[0])
		case syntax.OpRepeat:
			n := re.Min
			if full && n == 0 {
				n = 1
			}
			for range n {
				walk(re.Sub[0])
			}
		}
	}
	walk(re)
	path := s.String()
	if !regexp.MustCompile("^(?:" + pattern + ")$").MatchString(path) {
		t.Fatalf("sample %q does not match pattern %q", path, pattern)
	}
	return path
}

// classRune picks a rune of a character class given as ranges, preferring
// a letter that no literal segment starts with.
func classRune(ranges []rune) rune {
	for i := 0; i < len(ranges); i += 2 {
		if ranges[i] <= 'v' && 'v' <= ranges[i+1] {
			return 'v'
		}
	}
	for i := 0; i < len(ranges); i += 2 {
		for r := ranges[i]; r <= ranges[i+1]; r++ {
			if r > ' ' && r != '/' {
				return r
			}
		}
	}
	return ranges[0]
}

// sampleValue is a valid value of a field type, for required fields.
func sampleValue(t fw.FieldType) any {
	switch t {
	case fw.TypeInt, fw.TypeCommaIntSlice:
		return "1"
	case fw.TypeBool:
		return true
	case fw.TypeDuration:
		return "1s"
	case fw.TypeMap, fw.TypeKVPairs:
		return map[string]any{}
	}
	return "x"
}
