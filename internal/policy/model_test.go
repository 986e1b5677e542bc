package policy_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/arcasec/arca/internal/policy"
	"github.com/arcasec/arca/internal/policy/policymodel"
)

var modelCases = flag.Int("acl-model-cases", 50_000, "decisions TestACLAgreesWithModel compares against the reference model")

var opCaps = map[string]policy.Capability{
	"create": policy.Create, "read": policy.Read, "update": policy.Update,
	"patch": policy.Patch, "delete": policy.Delete, "list": policy.List,
}

// compiled is one generated token: its policies compiled both ways.
type compiled struct {
	texts []string
	acl   *policy.ACL
	model *policymodel.Model
}

func compile(tb testing.TB, ps []policymodel.Policy) compiled {
	tb.Helper()
	var parsed []*policy.Policy
	var texts []string
	for _, p := range ps {
		text := policymodel.HCL(p)
		texts = append(texts, p.Name+":\n"+text)
		pp, err := policy.Parse(p.Name, text)
		if err != nil {
			tb.Fatalf("generated policy does not parse: %v\n%s", err, text)
		}
		parsed = append(parsed, pp)
	}
	acl, err := policy.NewACL(parsed...)
	if err != nil {
		tb.Fatalf("compile: %v", err)
	}
	return compiled{texts: texts, acl: acl, model: policymodel.New(ps...)}
}

// compare checks one request against both and reports a disagreement. It
// returns whether they agree and whether the request was allowed.
func (cp compiled) compare(tb testing.TB, op, path string, data map[string]any) (agree, allowed bool) {
	tb.Helper()
	if op == "list" && !strings.HasSuffix(path, "/") {
		path += "/" // the server adds it to every list request
	}
	dec := cp.acl.Check(path, opCaps[op], data)
	want := cp.model.Allowed(op, path, data)
	gotCaps, wantCaps := cp.acl.Capabilities(path), cp.model.Capabilities(path)
	wantSudo := cp.model.Sudo(path, op == "list")
	if dec.Allowed == want && slices.Equal(gotCaps, wantCaps) && dec.Sudo == wantSudo {
		return true, want
	}
	raw, _ := json.Marshal(data)
	tb.Errorf("%s %q data %s: allowed %v, model %v; capabilities %v, model %v; sudo %v, model %v\npolicies:\n%s",
		op, path, raw, dec.Allowed, want, gotCaps, wantCaps, dec.Sudo, wantSudo, strings.Join(cp.texts, "\n"))
	return false, want
}

// TestACLAgreesWithModel compares the compiled ACL with the reference model
// on random policies and requests. -acl-model-cases=1000000 runs a million.
func TestACLAgreesWithModel(t *testing.T) {
	g := policymodel.Generator{C: policymodel.Rand(1)}
	const perToken = 32
	cases, allowed, disagreements := 0, 0, 0
	for cases < *modelCases && disagreements < 5 {
		cp := compile(t, g.Policies())
		for range perToken {
			agree, ok := cp.compare(t, g.Op(), g.Path(), g.Data())
			if !agree {
				disagreements++
			}
			if ok {
				allowed++
			}
			cases++
		}
	}
	t.Logf("%d decisions compared with the model (%d allowed), %d disagreements", cases, allowed, disagreements)
}

func FuzzACLAgainstModel(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x02\x01\x03\x00\x01\x01\x01\x01\x01\x01\x00\x04\x03\x02\x01"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		g := policymodel.Generator{C: policymodel.Bytes(raw)}
		cp := compile(t, g.Policies())
		for range 4 {
			cp.compare(t, g.Op(), g.Path(), g.Data())
		}
	})
}

// toModel turns parsed policies into the model's input, so a documented
// example is written once and decided by both.
func toModel(ps []*policy.Policy) []policymodel.Policy {
	var out []policymodel.Policy
	for _, p := range ps {
		mp := policymodel.Policy{Name: p.Name}
		for _, pr := range p.Paths {
			mp.Rules = append(mp.Rules, policymodel.Rule{
				Pattern: pr.Path, Caps: pr.Capabilities.Strings(),
				Allowed: pr.AllowedParameters, Denied: pr.DeniedParameters, Required: pr.RequiredParameters,
			})
		}
		out = append(out, mp)
	}
	return out
}

// TestDocumentedExamples decides every example of Vault's policy
// documentation (concepts/policies) with both the ACL and the model.
func TestDocumentedExamples(t *testing.T) {
	type req struct {
		op, path string
		data     string // JSON, as a client sends it
		want     bool
	}
	examples := []struct {
		name     string
		policies []string
		reqs     []req
	}{
		{"exact path", []string{`path "secret/foo" { capabilities = ["read"] }`}, []req{
			{"read", "secret/foo", ``, true}, {"update", "secret/foo", ``, false}, {"delete", "secret/foo", ``, false},
			{"read", "secret/food", ``, false}, {"read", "secret/foo/bar", ``, false},
		}},
		{"glob below a folder", []string{`path "secret/bar/*" { capabilities = ["read"] }`}, []req{
			{"read", "secret/bar/zip", ``, true}, {"read", "secret/bar/zip/zap", ``, true}, {"read", "secret/bars/zip", ``, false},
		}},
		{"glob on a name prefix", []string{`path "secret/zip-*" { capabilities = ["read"] }`}, []req{
			{"read", "secret/zip-zap", ``, true}, {"read", "secret/zip-zap/zong", ``, true}, {"read", "secret/zip/zap", ``, false},
		}},
		{"glob matches longer names", []string{`path "secret/foo*" { capabilities = ["read"] }`}, []req{
			{"read", "secret/foobar", ``, true}, {"read", "secret/foo", ``, true}, {"read", "secret/fo", ``, false},
		}},
		{"one segment wildcard", []string{`path "secret/+/teamb" { capabilities = ["read"] }`}, []req{
			{"read", "secret/foo/teamb", ``, true}, {"read", "secret/foo/bar/teamb", ``, false}, {"read", "secret/foo/teamc", ``, false},
		}},
		{"two segment wildcards", []string{`path "secret/+/+/teamb" { capabilities = ["read"] }`}, []req{
			{"read", "secret/foo/bar/teamb", ``, true}, {"read", "secret/bar/foo/teamb", ``, true}, {"read", "secret/foo/teamb", ``, false},
		}},
		{"deny takes precedence over a broader grant", []string{`
path "secret/*" { capabilities = ["create", "read", "update", "patch", "delete", "list"] }
path "secret/super-secret" { capabilities = ["deny"] }
path "secret/restricted" {
  capabilities = ["create"]
  allowed_parameters = {
    "foo" = []
    "bar" = ["zip", "zap"]
  }
}`}, []req{
			{"read", "secret/super-secret", ``, false}, {"update", "secret/super-secret", ``, false},
			{"read", "secret/other", ``, true}, {"list", "secret/", ``, true},
			{"create", "secret/restricted", `{"foo":"anything","bar":"zip"}`, true},
			{"create", "secret/restricted", `{"bar":"zap"}`, true},
			{"create", "secret/restricted", `{"bar":"zop"}`, false},
			{"create", "secret/restricted", `{"baz":"1"}`, false},
			{"read", "secret/restricted", ``, false},
		}},
		{"priority: fewer + segments wins", []string{`
path "secret/*" { capabilities = ["read"] }
path "secret/+/+/foo/*" { capabilities = ["deny"] }`}, []req{
			{"read", "secret/a/b/foo/c", ``, true},
		}},
		{"same path in two policies: union", []string{
			`path "secret/app" { capabilities = ["read"] }`,
			`path "secret/app" { capabilities = ["update"] }`}, []req{
			{"read", "secret/app", ``, true}, {"update", "secret/app", ``, true}, {"delete", "secret/app", ``, false},
		}},
		{"deny beats sudo", []string{
			`path "sys/audit/*" { capabilities = ["sudo", "update"] }`,
			`path "sys/audit/*" { capabilities = ["deny"] }`}, []req{
			{"update", "sys/audit/file", ``, false},
		}},
		{"required parameters", []string{`path "secret/profile" { capabilities = ["create"] required_parameters = ["name", "id"] }`}, []req{
			{"create", "secret/profile", `{"name":"n","id":"1"}`, true},
			{"create", "secret/profile", `{"name":"n"}`, false},
			{"create", "secret/profile", ``, false},
		}},
		{"allowed parameter with any value", []string{`path "auth/userpass/users/*" { capabilities = ["update"] allowed_parameters = { "password" = [] } }`}, []req{
			{"update", "auth/userpass/users/bob", `{"password":"s3cret"}`, true},
			{"update", "auth/userpass/users/bob", `{"password":"s3cret","token_ttl":"1h"}`, false},
		}},
		{"allowed parameter values", []string{`path "transit/keys/*" { capabilities = ["create", "update"] allowed_parameters = { "auto_rotate_period" = ["8h", "24h", "5d"] } }`}, []req{
			{"update", "transit/keys/k", `{"auto_rotate_period":"24h"}`, true},
			{"update", "transit/keys/k", `{"auto_rotate_period":"1h"}`, false},
		}},
		{"allowed values with any other parameter", []string{`path "secret/foo" { capabilities = ["create"] allowed_parameters = { "bar" = ["zip", "zap"] "*" = [] } }`}, []req{
			{"create", "secret/foo", `{"bar":"zip","other":"x"}`, true},
			{"create", "secret/foo", `{"other":"x"}`, true},
			{"create", "secret/foo", `{"bar":"zop","other":"x"}`, false},
		}},
		{"denied parameters with any value", []string{`path "auth/userpass/users/*" { capabilities = ["update"] denied_parameters = { "token_policies" = [] "policies" = [] } }`}, []req{
			{"update", "auth/userpass/users/bob", `{"password":"p"}`, true},
			{"update", "auth/userpass/users/bob", `{"password":"p","policies":["admin"]}`, false},
			{"update", "auth/userpass/users/bob", `{"token_policies":"x"}`, false},
		}},
		{"denied parameter values", []string{`path "auth/token/roles/*" { capabilities = ["create", "update"] denied_parameters = { "allowed_policies" = ["admin"] } }`}, []req{
			{"update", "auth/token/roles/r", `{"allowed_policies":"dev"}`, true},
			{"update", "auth/token/roles/r", `{"allowed_policies":"admin"}`, false},
			{"update", "auth/token/roles/r", `{"allowed_policies":["dev","admin"]}`, false},
		}},
		{"deny every parameter", []string{`path "transit/keys/*" { capabilities = ["create", "update"] denied_parameters = { "*" = [] } }`}, []req{
			{"update", "transit/keys/k", ``, true},
			{"update", "transit/keys/k", `{"exportable":true}`, false},
		}},
		{"globbed parameter values", []string{`path "secret/foo" { capabilities = ["create"] allowed_parameters = { "bar" = ["foo-*"] } }`}, []req{
			{"create", "secret/foo", `{"bar":"foo-1"}`, true},
			{"create", "secret/foo", `{"bar":"bar-1"}`, false},
		}},
		{"denied value without required", []string{`path "secret/foo" { capabilities = ["create"] denied_parameters = { "no_store" = [false, "false"] } }`}, []req{
			{"create", "secret/foo", `{"no_store":false,"value":"bar"}`, false},
			{"create", "secret/foo", `{"no_store":"false","value":"bar"}`, false},
			{"create", "secret/foo", `{"value":"bar"}`, true},
		}},
		{"denied value with required", []string{`path "secret/foo" { capabilities = ["create"] required_parameters = ["no_store"] denied_parameters = { "no_store" = [false, "false"] } }`}, []req{
			{"create", "secret/foo", `{"value":"bar"}`, false},
			{"create", "secret/foo", `{"no_store":true,"value":"bar"}`, true},
		}},
		{"list on a folder: pattern with or without the slash", []string{`
path "secret/metadata/app" { capabilities = ["list"] }
path "secret/metadata/team/" { capabilities = ["list"] }`}, []req{
			{"list", "secret/metadata/app/", ``, true},
			{"read", "secret/metadata/app/", ``, false},
			{"list", "secret/metadata/team/", ``, true},
			{"list", "secret/metadata/other/", ``, false},
		}},
		{"templated-style KV layout", []string{`
path "secret/data/u1/*" { capabilities = ["create", "update", "patch", "read", "delete"] }
path "secret/metadata/u1/*" { capabilities = ["list"] }`}, []req{
			{"read", "secret/data/u1/db", ``, true}, {"list", "secret/metadata/u1/", ``, true},
			{"read", "secret/data/u2/db", ``, false}, {"list", "secret/metadata/u1", ``, true},
		}},
	}
	for _, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			var parsed []*policy.Policy
			for i, text := range ex.policies {
				p, err := policy.Parse(fmt.Sprintf("p%d", i), text)
				if err != nil {
					t.Fatal(err)
				}
				parsed = append(parsed, p)
			}
			acl, err := policy.NewACL(parsed...)
			if err != nil {
				t.Fatal(err)
			}
			model := policymodel.New(toModel(parsed)...)
			for _, r := range ex.reqs {
				path := r.path
				if r.op == "list" && !strings.HasSuffix(path, "/") {
					path += "/"
				}
				var data map[string]any
				if r.data != "" {
					dec := json.NewDecoder(strings.NewReader(r.data))
					dec.UseNumber()
					if err := dec.Decode(&data); err != nil {
						t.Fatal(err)
					}
				}
				if got := acl.Check(path, opCaps[r.op], data).Allowed; got != r.want {
					t.Errorf("ACL: %s %s %s = %v, documented %v", r.op, path, r.data, got, r.want)
				}
				if got := model.Allowed(r.op, path, data); got != r.want {
					t.Errorf("model: %s %s %s = %v, documented %v", r.op, path, r.data, got, r.want)
				}
			}
		})
	}
}
