package policy

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func mustACL(t testing.TB, texts ...string) *ACL {
	t.Helper()
	var ps []*Policy
	for i, text := range texts {
		p, err := Parse("p"+string(rune('a'+i)), text)
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		ps = append(ps, p)
	}
	a, err := NewACL(ps...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestParseHCLAndJSON(t *testing.T) {
	hclText := `
path "secret/data/app/*" {
  capabilities = ["read", "list"]
}
path "secret/data/admin" { policy = "write" }
`
	jsonText := `{"path": {"secret/data/app/*": {"capabilities": ["read", "list"]}, "secret/data/admin": {"policy": "write"}}}`
	for _, text := range []string{hclText, jsonText} {
		p, err := Parse("x", text)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Paths) != 2 {
			t.Fatalf("paths = %d", len(p.Paths))
		}
		a, _ := NewACL(p)
		if !a.Check("secret/data/app/db", Read, nil).Allowed || a.Check("secret/data/app/db", Update, nil).Allowed {
			t.Fatal("app rule wrong")
		}
		if !a.Check("secret/data/admin", Update, nil).Allowed {
			t.Fatal("legacy write shorthand not applied")
		}
		if a.Check("secret/data/admin", Patch, nil).Allowed {
			t.Fatal("legacy write shorthand grants patch, which Vault's does not")
		}
	}
}

func TestParseErrors(t *testing.T) {
	cases := map[string]string{
		`path "a" { capabilities = ["fly"] }`:      "fly",
		`path "a/*/b" { capabilities = ["read"] }`: "'*'",
		`path "a" { capabilites = ["read"] }`:      "capabilites",
		`path "a" { policy = "all" }`:              "all",
		`path "a" { capabilities = ["read"]`:       "",
		`pth "a" { capabilities = ["read"] }`:      "pth",
		`path { capabilities = ["read"] }`:         "",
	}
	for text, mention := range cases {
		_, err := Parse("bad", text)
		if err == nil {
			t.Errorf("%q parsed", text)
			continue
		}
		if mention != "" && !strings.Contains(err.Error(), mention) {
			t.Errorf("%q: error %q does not name %q", text, err, mention)
		}
	}
}

func TestDenyByDefaultAndDenyWins(t *testing.T) {
	a := mustACL(t,
		`path "secret/*" { capabilities = ["read", "update"] }`,
		`path "secret/*" { capabilities = ["deny"] }
		 path "secret/open" { capabilities = ["read"] }`)
	if a.Check("other/x", Read, nil).Allowed {
		t.Fatal("ungranted path allowed")
	}
	if a.Check("secret/x", Read, nil).Allowed {
		t.Fatal("deny on the same pattern did not win")
	}
	if !a.Check("secret/open", Read, nil).Allowed {
		t.Fatal("exact rule should beat the denied glob")
	}
	if got := a.Capabilities("secret/x"); !slices.Equal(got, []string{"deny"}) {
		t.Fatalf("capabilities = %v", got)
	}
}

func TestMergeAcrossPolicies(t *testing.T) {
	a := mustACL(t, `path "kv/a" { capabilities = ["read"] }`, `path "kv/a" { capabilities = ["update", "sudo"] }`)
	d := a.Check("kv/a", Update, nil)
	if !d.Allowed || !d.Sudo {
		t.Fatalf("merged = %+v", d)
	}
	if got := a.Capabilities("kv/a"); !slices.Equal(got, []string{"read", "sudo", "update"}) {
		t.Fatalf("capabilities = %v", got)
	}
}

func TestPriorityMatching(t *testing.T) {
	a := mustACL(t, `
path "secret/*"            { capabilities = ["read"] }
path "secret/data/*"       { capabilities = ["list"] }
path "secret/+/app"        { capabilities = ["update"] }
path "secret/+/+"          { capabilities = ["delete"] }
path "secret/data/app/x*"  { capabilities = ["create"] }
path "+/data/app/y"        { capabilities = ["patch"] }
path "*"                   { capabilities = ["sudo"] }
`)
	cases := []struct {
		path string
		want Capability
	}{
		{"secret/data/app/xyz", Create}, // longest glob
		{"secret/data/app/q", List},     // secret/data/* beats secret/* (longer prefix)
		{"secret/meta/app", Update},     // '+' first at 7 beats secret/* (first wildcard at 7, but '*' loses to non-*)
		{"secret/meta/other", Delete},   // secret/+/+ vs secret/*: same first wildcard, non-glob wins
		{"secret/data/app", List},       // secret/data/* (wildcard at 12) beats secret/+/app (at 7)
		{"nothing/here", Sudo},          // the catch-all
		{"kv/data/app/y", Patch},        // '+' pattern beats '*'
		{"secret/data/app/y", List},     // +/data/app/y has first wildcard at 0; secret/data/* at 12 wins
	}
	for _, c := range cases {
		d := a.Check(c.path, c.want, nil)
		if !d.Allowed || d.Capabilities != c.want {
			t.Errorf("%s: decided by caps %v, want %v", c.path, d.Capabilities.Strings(), c.want.Strings())
		}
	}
}

func TestListWithTrailingSlash(t *testing.T) {
	a := mustACL(t, `path "secret/metadata/app/*" { capabilities = ["list"] }`)
	if !a.Check("secret/metadata/app/", List, nil).Allowed {
		t.Fatal("listing the folder of a glob rule denied")
	}
	if a.Check("secret/metadata/", List, nil).Allowed {
		t.Fatal("listing the parent allowed")
	}
}

func TestParameterRules(t *testing.T) {
	a := mustACL(t, `
path "cfg/a" {
  capabilities = ["create", "update"]
  allowed_parameters = { "color" = ["red", "blue*"], "size" = [] }
  denied_parameters  = { "size" = ["huge"] }
  required_parameters = ["color"]
}
path "cfg/b" {
  capabilities = ["update"]
  denied_parameters = { "*" = [] }
}`)
	cases := []struct {
		data map[string]any
		ok   bool
		bad  string
	}{
		{map[string]any{"color": "red"}, true, ""},
		{map[string]any{"color": "blueish", "size": json.Number("3")}, true, ""},
		{map[string]any{"color": "green"}, false, "color"},
		{map[string]any{"size": "s"}, false, "color"},
		{map[string]any{"color": "red", "size": "huge"}, false, "size"},
		{map[string]any{"color": "red", "shape": "x"}, false, "shape"},
	}
	for _, c := range cases {
		d := a.Check("cfg/a", Update, c.data)
		if d.Allowed != c.ok || d.DeniedParam != c.bad {
			t.Errorf("%v: %+v", c.data, d)
		}
	}
	if a.Check("cfg/b", Update, map[string]any{"x": 1}).Allowed {
		t.Fatal(`denied "*" let a parameter through`)
	}
	if !a.Check("cfg/b", Update, nil).Allowed {
		t.Fatal(`denied "*" refused an empty write`)
	}
}

func TestRootAndAnyCapabilityUnder(t *testing.T) {
	r := RootACL()
	if !r.Check("anything", Delete, nil).Sudo || !slices.Equal(r.Capabilities("x"), []string{"root"}) {
		t.Fatal("root ACL")
	}
	a := mustACL(t, `path "secret/data/app/*" { capabilities = ["read"] }
path "team/+/x" { capabilities = ["read"] }
path "gone/*" { capabilities = ["deny"] }`)
	for prefix, want := range map[string]bool{"secret/": true, "team/": true, "gone/": false, "other/": false} {
		if got := a.AnyCapabilityUnder(prefix); got != want {
			t.Errorf("AnyCapabilityUnder(%q) = %v", prefix, got)
		}
	}
}

func TestDefaultPolicyParses(t *testing.T) {
	a := mustACL(t, DefaultPolicy)
	if !a.Check("auth/token/lookup-self", Read, nil).Allowed || a.Check("secret/data/x", Read, nil).Allowed {
		t.Fatal("default policy")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(`path "a/*" { capabilities = ["read"] }`)
	f.Add(`{"path":{"a/+/b":{"capabilities":["deny"],"allowed_parameters":{"x":[1]}}}}`)
	f.Add(DefaultPolicy)
	f.Fuzz(func(t *testing.T, text string) {
		p, err := Parse("f", text)
		if err != nil {
			return
		}
		a, err := NewACL(p)
		if err != nil {
			t.Fatalf("parsed policy does not compile: %v", err)
		}
		for _, path := range []string{"a/b", "a/x/b", "", "a/"} {
			a.Check(path, Update, map[string]any{"x": "1"})
			a.Capabilities(path)
		}
		a.AnyCapabilityUnder("a/")
	})
}

func BenchmarkCheck(b *testing.B) {
	var sb strings.Builder
	for i := 0; i < 200; i++ {
		sb.WriteString(`path "team` + string(rune('a'+i%26)) + `/` + strings.Repeat("x", i%7) + `/*" { capabilities = ["read"] }` + "\n")
	}
	sb.WriteString(`path "secret/data/app/*" { capabilities = ["read"] }
path "secret/+/team" { capabilities = ["read"] }`)
	a := mustACL(b, sb.String())
	b.ReportAllocs()
	for b.Loop() {
		a.Check("secret/data/app/db", Read, nil)
	}
}
