package policy

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestTemplateParseRefusesUnknownOrMalformed(t *testing.T) {
	for _, path := range []string{
		"secret/{{identity.entity.nickname}}/*",
		"secret/{{identity.entity.name}",
		"secret/identity.entity.name}}/x",
		"secret/{{identity.entity.aliases.acc.token}}",
		"secret/{{identity.groups.ids.x.id}}",
		"secret/{{ something.else }}",
	} {
		if _, err := Parse("t", `path "`+path+`" { capabilities = ["read"] }`); err == nil {
			t.Errorf("%s: parsed", path)
		}
	}
	for _, path := range []string{
		"secret/{{identity.entity.id}}/*",
		"secret/{{ identity.entity.name }}/x",
		"secret/{{identity.entity.metadata.team}}",
		"secret/{{identity.entity.aliases.auth_jwt_1234.name}}/{{identity.entity.aliases.auth_jwt_1234.metadata.repo}}",
		"secret/{{identity.groups.names.devs.id}}/{{identity.groups.ids.abc.name}}",
	} {
		if _, err := Parse("t", `path "`+path+`" { capabilities = ["read"] }`); err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}
}

func TestTemplateFill(t *testing.T) {
	p, err := Parse("t", `
path "secret/data/{{identity.entity.name}}/*" { capabilities = ["read"] }
path "secret/data/team/{{identity.entity.metadata.team}}" { capabilities = ["read"] }
path "secret/data/shared" { capabilities = ["read"] }
`)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Templated() {
		t.Fatal("a policy with templates says it has none")
	}
	values := map[string]string{"identity.entity.name": "alice"}
	lookup := func(k string) (string, bool) { v, ok := values[k]; return v, ok }
	a, err := NewACL(p.Fill(lookup))
	if err != nil {
		t.Fatal(err)
	}
	// The team path cannot be filled (no metadata): it is dropped, the
	// others stand.
	for path, want := range map[string]bool{
		"secret/data/alice/x": true, "secret/data/bob/x": false, "secret/data/shared": true,
		"secret/data/team/": false, "secret/data/team/{{identity.entity.metadata.team}}": false,
	} {
		if got := a.Check(path, Read, nil).Allowed; got != want {
			t.Errorf("%s: allowed %v, want %v", path, got, want)
		}
	}
	// Without an identity every templated path is dropped.
	none, _ := NewACL(p.Fill(nil))
	if none.Check("secret/data/alice/x", Read, nil).Allowed || !none.Check("secret/data/shared", Read, nil).Allowed {
		t.Fatal("templated paths without an identity")
	}
	// A value that would widen the path drops it.
	for _, v := range []string{"*", "a*", "+", "x/../y", "", "{{identity.entity.id}}"} {
		values["identity.entity.name"] = v
		a, _ := NewACL(p.Fill(lookup))
		for _, path := range []string{"secret/data/alice/x", "secret/data/" + strings.TrimSuffix(v, "*") + "/x"} {
			if a.Check(path, Read, nil).Allowed {
				t.Errorf("name %q: %s allowed", v, path)
			}
		}
	}
}

// wildcards counts what in a policy path widens it: '+' segments, '.' and
// '..' segments, and '*'.
func wildcards(path string) int {
	n := strings.Count(path, "*")
	for _, seg := range strings.Split(path, "/") {
		if seg == "+" || seg == "." || seg == ".." {
			n++
		}
	}
	return n
}

// FuzzTemplateFill parses a policy path holding identity templates and
// fills it with an arbitrary value. Parsing refuses garbage with an error;
// nothing panics; a filled policy compiles; and a value never adds a
// wildcard (a '+', '.' or '..' segment, or a '*') that the path does not
// have when its templates hold a plain word.
func FuzzTemplateFill(f *testing.F) {
	for _, s := range []struct{ path, value string }{
		{"secret/data/{{identity.entity.name}}/*", "alice"},
		{"secret/data/{{identity.entity.name}}/*", "*"},
		{"secret/+{{identity.entity.name}}", "/x"},
		{"secret/{{identity.entity.name}}+/x", "a/"},
		{"secret/.{{identity.entity.metadata.team}}", "./x"},
		{"secret/{{identity.entity.aliases.acc.name}}/{{identity.entity.aliases.acc.metadata.repo}}", "a/b"},
		{"secret/{{ identity.groups.names.devs.id }}", "+"},
		{"secret/{{identity.entity.id}", "x"},
		{"{{identity.entity.name}}", ".."},
		{"a/{{identity.entity.name}}/{{identity.entity.name}}*", "{{"},
	} {
		f.Add(s.path, s.value)
	}
	f.Fuzz(func(t *testing.T, path, value string) {
		doc, err := json.Marshal(map[string]any{"path": map[string]any{path: map[string]any{"capabilities": []string{"read"}}}})
		if err != nil {
			return
		}
		p, err := Parse("f", string(doc))
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an empty error")
			}
			return
		}
		fill := func(v string) *Policy {
			return p.Fill(func(string) (string, bool) { return v, true })
		}
		plain, filled := fill("word"), fill(value)
		if _, err := NewACL(filled); err != nil {
			t.Fatalf("a filled policy does not compile: %v", err)
		}
		if len(filled.Paths) > len(p.Paths) {
			t.Fatalf("filling made %d paths from %d", len(filled.Paths), len(p.Paths))
		}
		for _, fp := range filled.Paths {
			if strings.Contains(fp.Path, "{{") && p.Templated() && !strings.Contains(path, "{{") {
				t.Fatalf("a template appeared: %q", fp.Path)
			}
			if len(plain.Paths) == 1 && wildcards(fp.Path) > wildcards(plain.Paths[0].Path) {
				t.Fatalf("path %q filled with %q is %q: more wildcards than %q", path, value, fp.Path, plain.Paths[0].Path)
			}
		}
	})
}
