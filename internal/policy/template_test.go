package policy

import (
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
