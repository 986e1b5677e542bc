package compat

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// Policies that let a token create tokens, without and with sudo.
const (
	creatorPolicy = `
path "auth/token/create" { capabilities = ["update"] }
path "auth/token/create-orphan" { capabilities = ["update"] }
path "auth/token/create/*" { capabilities = ["update"] }
path "auth/token/renew-self" { capabilities = ["update"] }
`
	sudoCreatorPolicy = `
path "auth/token/create" { capabilities = ["update", "sudo"] }
path "auth/token/create/*" { capabilities = ["update", "sudo"] }
`
)

// tokenRig is a dev server with the creator policies and a client per
// kind of caller.
type tokenRig struct {
	root    *vault.Client
	creator *vault.Client // may create tokens, no sudo
	sudo    *vault.Client // may create tokens, with sudo
}

func newTokenRig(t *testing.T) *tokenRig {
	t.Helper()
	root := devClient(t)
	for name, rules := range map[string]string{"creator": creatorPolicy, "sudo-creator": sudoCreatorPolicy, "admin": `path "*" { capabilities = ["read"] }`} {
		if err := root.Sys().PutPolicy(name, rules); err != nil {
			t.Fatal(err)
		}
	}
	return &tokenRig{
		root:    root,
		creator: newClient(t, root.Address(), mustToken(t, root, "creator")),
		sudo:    newClient(t, root.Address(), mustToken(t, root, "sudo-creator")),
	}
}

// wantBadRequest fails unless err is a 400 whose message names what.
func wantBadRequest(t *testing.T, err error, what string) {
	t.Helper()
	if statusOf(err) != http.StatusBadRequest {
		t.Fatalf("err = %v, want a 400 naming %q", err, what)
	}
	var re *vault.ResponseError
	if errors.As(err, &re) && !strings.Contains(strings.Join(re.Errors, " "), what) {
		t.Fatalf("400 %q does not name %q", re.Errors, what)
	}
}

// lookup returns the token's lookup data, as root sees it.
func (r *tokenRig) lookup(t *testing.T, token string) *vault.Secret {
	t.Helper()
	s, err := r.root.Auth().Token().Lookup(token)
	if err != nil {
		t.Fatalf("lookup: %v", err)
	}
	return s
}

func policiesOf(t *testing.T, s *vault.Secret) []string {
	t.Helper()
	p, err := s.TokenPolicies()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func secondsOf(t *testing.T, s *vault.Secret, field string) int64 {
	t.Helper()
	n, ok := s.Data[field].(json.Number)
	if !ok {
		t.Fatalf("%s = %#v, want a number", field, s.Data[field])
	}
	v, err := n.Int64()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// role_name in the body of auth/token/create does not select a role: only
// the path auth/token/create/<role> does, and the ACL decides who may use it.
func TestTokenCreateRoleOnlyFromPath(t *testing.T) {
	r := newTokenRig(t)
	if _, err := r.root.Logical().Write("auth/token/roles/powerful", map[string]any{"allowed_policies": "admin"}); err != nil {
		t.Fatal(err)
	}
	if err := r.root.Sys().PutPolicy("no-roles", creatorPolicy+`path "auth/token/create/*" { capabilities = ["deny"] }`); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, r.root.Address(), mustToken(t, r.root, "no-roles"))

	_, err := c.Logical().Write("auth/token/create", map[string]any{"role_name": "powerful", "policies": "admin"})
	wantBadRequest(t, err, "admin")

	s, err := c.Logical().Write("auth/token/create", map[string]any{"role_name": "powerful"})
	if err != nil {
		t.Fatal(err)
	}
	look := r.lookup(t, s.Auth.ClientToken)
	if got := policiesOf(t, look); !slices.Equal(got, []string{"default", "no-roles"}) {
		t.Fatalf("policies = %v, want the parent's [default no-roles]", got)
	}
	if _, ok := look.Data["role"]; ok {
		t.Fatalf("token has role %v, want none", look.Data["role"])
	}

	if _, err := c.Auth().Token().CreateWithRole(&vault.TokenCreateRequest{}, "powerful"); statusOf(err) != http.StatusForbidden {
		t.Fatalf("create/powerful past a deny: err = %v, want 403", err)
	}
}

// Negative and overflowing durations and counts are refused by name
// instead of making tokens that never expire.
func TestTokenCreateRefusesBadDurations(t *testing.T) {
	r := newTokenRig(t)
	bad := []any{"-1", "-5m", -30, json.Number("10000000000"), "10000000000", "200000d", 1e19, []any{"10000000000"}}
	for _, field := range []string{"ttl", "explicit_max_ttl", "period", "lease"} {
		for _, v := range bad {
			t.Run(fmt.Sprintf("%s=%v", field, v), func(t *testing.T) {
				_, err := r.root.Logical().Write("auth/token/create", map[string]any{field: v, "policies": "default"})
				wantBadRequest(t, err, field)
			})
		}
	}
	_, err := r.root.Auth().Token().Create(&vault.TokenCreateRequest{NumUses: -1})
	wantBadRequest(t, err, "num_uses")

	for _, field := range []string{"token_period", "period", "token_explicit_max_ttl", "explicit_max_ttl"} {
		_, err := r.root.Logical().Write("auth/token/roles/r", map[string]any{field: "-1h"})
		wantBadRequest(t, err, field)
	}
	_, err = r.root.Logical().Write("auth/token/roles/r", map[string]any{"token_num_uses": -2})
	wantBadRequest(t, err, "token_num_uses")

	tok := mustToken(t, r.root, "default")
	_, err = r.root.Logical().Write("auth/token/renew", map[string]any{"token": tok, "increment": -60})
	wantBadRequest(t, err, "increment")
}

// A periodic token needs root or sudo, or a role that sets a period.
func TestTokenPeriodNeedsSudoOrRole(t *testing.T) {
	r := newTokenRig(t)
	_, err := r.creator.Auth().Token().Create(&vault.TokenCreateRequest{Period: "1h"})
	wantBadRequest(t, err, "period")

	s, err := r.sudo.Auth().Token().Create(&vault.TokenCreateRequest{Period: "1h"})
	if err != nil {
		t.Fatalf("sudo periodic token: %v", err)
	}
	if look := r.lookup(t, s.Auth.ClientToken); secondsOf(t, look, "period") != 3600 || secondsOf(t, look, "ttl") > 3600 {
		t.Fatalf("sudo periodic token = %v", look.Data)
	}
	// A periodic token renews by its period, whatever the increment.
	if ren, err := r.root.Auth().Token().Renew(s.Auth.ClientToken, 10*3600); err != nil || ren.Auth.LeaseDuration != 3600 {
		t.Fatalf("renewing a periodic token = %+v, %v; want 3600s", ren, err)
	}

	if _, err := r.root.Logical().Write("auth/token/roles/periodic", map[string]any{"token_period": "30m"}); err != nil {
		t.Fatal(err)
	}
	s, err = r.creator.Auth().Token().CreateWithRole(&vault.TokenCreateRequest{}, "periodic")
	if err != nil {
		t.Fatalf("periodic role: %v", err)
	}
	if look := r.lookup(t, s.Auth.ClientToken); secondsOf(t, look, "period") != 1800 {
		t.Fatalf("role token period = %v, want 1800", look.Data["period"])
	}
}

// A token with a use limit cannot create tokens.
func TestTokenUseLimitedCannotCreate(t *testing.T) {
	r := newTokenRig(t)
	s, err := r.root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"creator"}, NumUses: 5})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, r.root.Address(), s.Auth.ClientToken)
	_, err = c.Auth().Token().Create(&vault.TokenCreateRequest{})
	wantBadRequest(t, err, "use limit")
	_, err = c.Auth().Token().CreateOrphan(&vault.TokenCreateRequest{})
	wantBadRequest(t, err, "use limit")
}

// Only root creates root tokens, and an expiring root token cannot create
// one that never expires.
func TestTokenRootTokens(t *testing.T) {
	r := newTokenRig(t)
	_, err := r.sudo.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"root"}})
	wantBadRequest(t, err, "root")

	forever, err := r.root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"root"}})
	if err != nil {
		t.Fatal(err)
	}
	if look := r.lookup(t, forever.Auth.ClientToken); secondsOf(t, look, "ttl") != 0 || look.Data["expire_time"] != nil {
		t.Fatalf("root token without a ttl expires: %v", look.Data)
	}

	expiring, err := r.root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"root"}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	ec := newClient(t, r.root.Address(), expiring.Auth.ClientToken)
	_, err = ec.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"root"}})
	wantBadRequest(t, err, "never expires")
	_, err = ec.Auth().Token().CreateOrphan(&vault.TokenCreateRequest{Policies: []string{"root"}})
	wantBadRequest(t, err, "never expires")
	if _, err := ec.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"root"}, TTL: "10m"}); err != nil {
		t.Fatalf("expiring root creating an expiring root: %v", err)
	}
}

// id and no_parent need root or sudo; create-orphan needs only the ACL;
// policies beyond the caller's own need root or sudo.
func TestTokenPrivilegedOptions(t *testing.T) {
	r := newTokenRig(t)
	_, err := r.creator.Auth().Token().Create(&vault.TokenCreateRequest{ID: "chosen-by-creator"})
	wantBadRequest(t, err, "id")
	_, err = r.creator.Auth().Token().Create(&vault.TokenCreateRequest{NoParent: true})
	wantBadRequest(t, err, "no_parent")
	_, err = r.creator.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"admin"}})
	wantBadRequest(t, err, "admin")
	_, err = r.creator.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"creator", "admin"}})
	wantBadRequest(t, err, "admin")

	orphan, err := r.creator.Auth().Token().CreateOrphan(&vault.TokenCreateRequest{})
	if err != nil {
		t.Fatalf("create-orphan: %v", err)
	}
	if !orphan.Auth.Orphan || r.lookup(t, orphan.Auth.ClientToken).Data["orphan"] != true {
		t.Fatalf("create-orphan made a child: %+v", orphan.Auth)
	}
	sub, err := r.creator.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"creator"}})
	if err != nil {
		t.Fatalf("subset of the parent's policies: %v", err)
	}
	if got := sub.Auth.Policies; !slices.Equal(got, []string{"creator", "default"}) {
		t.Fatalf("subset policies = %v", got)
	}

	for _, id := range []string{"hvs.forged", "s.forged", "a.b"} {
		_, err = r.sudo.Auth().Token().Create(&vault.TokenCreateRequest{ID: id})
		wantBadRequest(t, err, "id")
	}
	chosen, err := r.sudo.Auth().Token().Create(&vault.TokenCreateRequest{ID: "chosen-by-sudo", NoParent: true, Policies: []string{"admin"}})
	if err != nil {
		t.Fatalf("sudo options: %v", err)
	}
	if chosen.Auth.ClientToken != "chosen-by-sudo" || !chosen.Auth.Orphan || !slices.Contains(chosen.Auth.Policies, "admin") {
		t.Fatalf("sudo token = %+v", chosen.Auth)
	}
}

// The default policy is added unless no_default_policy says otherwise.
func TestTokenDefaultPolicy(t *testing.T) {
	r := newTokenRig(t)
	with, err := r.root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"admin"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := with.Auth.Policies; !slices.Equal(got, []string{"admin", "default"}) {
		t.Fatalf("policies = %v, want [admin default]", got)
	}
	without, err := r.root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"admin"}, NoDefaultPolicy: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := policiesOf(t, r.lookup(t, without.Auth.ClientToken)); !slices.Equal(got, []string{"admin"}) {
		t.Fatalf("no_default_policy policies = %v, want [admin]", got)
	}
	inherited, err := r.creator.Auth().Token().Create(&vault.TokenCreateRequest{NoDefaultPolicy: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := inherited.Auth.Policies; !slices.Equal(got, []string{"creator"}) {
		t.Fatalf("inherited without default = %v, want [creator]", got)
	}
}

// explicit_max_ttl caps the TTL, renewals and children; the system maximum
// caps what a token asks for.
func TestTokenLifetimeLimits(t *testing.T) {
	r := newTokenRig(t)
	auth := r.root.Auth().Token()
	capped, err := auth.Create(&vault.TokenCreateRequest{Policies: []string{"creator"}, TTL: "1h", ExplicitMaxTTL: "10m"})
	if err != nil {
		t.Fatal(err)
	}
	if d := capped.Auth.LeaseDuration; d <= 0 || d > 600 {
		t.Fatalf("ttl with explicit_max_ttl=10m = %ds", d)
	}
	ren, err := auth.Renew(capped.Auth.ClientToken, 3600)
	if err != nil {
		t.Fatal(err)
	}
	if d := ren.Auth.LeaseDuration; d <= 0 || d > 600 {
		t.Fatalf("renewed past explicit_max_ttl: %ds", d)
	}
	child, err := newClient(t, r.root.Address(), capped.Auth.ClientToken).Auth().Token().Create(&vault.TokenCreateRequest{TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	if d := child.Auth.LeaseDuration; d <= 0 || d > 600 {
		t.Fatalf("child outlives its parent: %ds", d)
	}

	onlyMax, err := auth.Create(&vault.TokenCreateRequest{Policies: []string{"default"}, ExplicitMaxTTL: "5m"})
	if err != nil {
		t.Fatal(err)
	}
	if d := onlyMax.Auth.LeaseDuration; d != 300 {
		t.Fatalf("ttl with only explicit_max_ttl=5m = %ds, want 300", d)
	}

	long, err := auth.Create(&vault.TokenCreateRequest{Policies: []string{"default"}, TTL: "10000h"})
	if err != nil {
		t.Fatal(err)
	}
	if d := long.Auth.LeaseDuration; d != 768*3600 {
		t.Fatalf("ttl=10000h gave %ds, want the system maximum %d", d, 768*3600)
	}
	if len(long.Warnings) != 1 || !strings.Contains(long.Warnings[0], "768h") {
		t.Fatalf("warnings of a capped TTL = %q, want one naming the maximum", long.Warnings)
	}
	ren, err = auth.Renew(long.Auth.ClientToken, 20000*3600)
	if err != nil {
		t.Fatal(err)
	}
	if d := ren.Auth.LeaseDuration; d > 768*3600 {
		t.Fatalf("renewed past the system maximum: %ds", d)
	}
}

// Roles: allowed and disallowed policies and their globs, orphan,
// renewable, path_suffix, no default policy, use limits, periods, and the
// lesser of the role's and the request's explicit max TTL.
func TestTokenRoleRules(t *testing.T) {
	r := newTokenRig(t)
	write := func(name string, data map[string]any) {
		t.Helper()
		if _, err := r.root.Logical().Write("auth/token/roles/"+name, data); err != nil {
			t.Fatal(err)
		}
	}
	create := func(role string, req *vault.TokenCreateRequest) (*vault.Secret, error) {
		return r.creator.Auth().Token().CreateWithRole(req, role)
	}
	_, err := create("missing", &vault.TokenCreateRequest{})
	wantBadRequest(t, err, "missing")

	write("apps", map[string]any{"allowed_policies_glob": "app-*", "disallowed_policies_glob": "app-admin*"})
	if s, err := create("apps", &vault.TokenCreateRequest{Policies: []string{"app-web"}}); err != nil || !slices.Equal(s.Auth.Policies, []string{"app-web", "default"}) {
		t.Fatalf("glob-allowed policy: %v, %v", s, err)
	}
	_, err = create("apps", &vault.TokenCreateRequest{Policies: []string{"app-admin-x"}})
	wantBadRequest(t, err, "app-admin-x")
	_, err = create("apps", &vault.TokenCreateRequest{Policies: []string{"other"}})
	wantBadRequest(t, err, "other")

	write("listed", map[string]any{"allowed_policies": "a,b", "disallowed_policies": "b"})
	if s, err := create("listed", &vault.TokenCreateRequest{Policies: []string{"a"}}); err != nil || !slices.Equal(s.Auth.Policies, []string{"a", "default"}) {
		t.Fatalf("allowed policy: %v, %v", s, err)
	}
	// A role that does not make orphans is not overridden by no_parent.
	if s, err := r.sudo.Auth().Token().CreateWithRole(&vault.TokenCreateRequest{Policies: []string{"a"}, NoParent: true}, "listed"); err != nil || s.Auth.Orphan {
		t.Fatalf("no_parent against a role without orphan: %+v, %v", s, err)
	}
	_, err = create("listed", &vault.TokenCreateRequest{Policies: []string{"b"}})
	wantBadRequest(t, err, `"b"`)
	_, err = create("listed", &vault.TokenCreateRequest{Policies: []string{"admin"}})
	wantBadRequest(t, err, "admin")

	write("no-secret", map[string]any{"disallowed_policies": "creator"})
	_, err = create("no-secret", &vault.TokenCreateRequest{})
	wantBadRequest(t, err, "creator")

	write("shaped", map[string]any{
		"allowed_policies": "a", "orphan": true, "renewable": false, "path_suffix": "ci",
		"token_no_default_policy": true, "token_num_uses": 3, "token_explicit_max_ttl": "5m",
	})
	s, err := create("shaped", &vault.TokenCreateRequest{ExplicitMaxTTL: "1h", NumUses: 10})
	if err != nil {
		t.Fatal(err)
	}
	look := r.lookup(t, s.Auth.ClientToken)
	if look.Data["orphan"] != true || look.Data["renewable"] != false || look.Data["path"] != "auth/token/create/shaped/ci" ||
		look.Data["role"] != "shaped" || secondsOf(t, look, "num_uses") != 3 || secondsOf(t, look, "explicit_max_ttl") != 300 ||
		!slices.Equal(policiesOf(t, look), []string{"a"}) {
		t.Fatalf("role token = %v", look.Data)
	}
	if _, err := r.root.Auth().Token().Renew(s.Auth.ClientToken, 60); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("renewing a token of a non-renewable role: err = %v, want 400", err)
	}

	// token_type: Vault's default reads back as such; batch is refused.
	if role, err := r.root.Logical().Read("auth/token/roles/shaped"); err != nil || role.Data["token_type"] != "default-service" {
		t.Fatalf("role token_type = %v, %v; want default-service", role, err)
	}
	write("typed", map[string]any{"token_type": "default-service"})
	for _, typ := range []string{"batch", "default-batch"} {
		_, err = r.root.Logical().Write("auth/token/roles/typed", map[string]any{"token_type": typ})
		wantBadRequest(t, err, typ)
	}
}

// display_name becomes "token-" and the name with anything but letters,
// digits and dashes turned into dashes.
func TestTokenDisplayName(t *testing.T) {
	r := newTokenRig(t)
	s, err := r.root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"default"}, DisplayName: "CI job #42!"})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.lookup(t, s.Auth.ClientToken).Data["display_name"]; got != "token-CI-job--42" {
		t.Fatalf("display_name = %q, want token-CI-job--42", got)
	}
}

// Sixteen concurrent requests with a one-use token get exactly one
// success; with a three-use token exactly three. The token is revoked
// after its last use.
func TestTokenUseLimitIsAtomic(t *testing.T) {
	r := newTokenRig(t)
	if err := r.root.Sys().PutPolicy("reader", `path "secret/data/shared" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	if _, err := r.root.Logical().Write("secret/data/shared", map[string]any{"data": map[string]any{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	for round := range 6 {
		uses := 1 + 2*(round%2)
		s, err := r.root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"reader"}, NumUses: uses})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		statuses := make([]int, 16)
		for i := range statuses {
			wg.Go(func() {
				req, _ := http.NewRequest("GET", r.root.Address()+"/v1/secret/data/shared", nil)
				req.Header.Set("X-Vault-Token", s.Auth.ClientToken)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return
				}
				resp.Body.Close()
				statuses[i] = resp.StatusCode
			})
		}
		wg.Wait()
		ok := 0
		for _, code := range statuses {
			switch code {
			case http.StatusOK:
				ok++
			case http.StatusForbidden:
			default:
				t.Fatalf("round %d: status %d, want 200 or 403", round, code)
			}
		}
		if ok != uses {
			t.Fatalf("round %d: %d of 16 requests succeeded with a %d-use token", round, ok, uses)
		}
		if _, err := r.root.Auth().Token().Lookup(s.Auth.ClientToken); statusOf(err) != http.StatusForbidden {
			t.Fatalf("round %d: spent token still exists: %v", round, err)
		}
	}
}

// The request that spends a token's last use completes, even one that
// looks the token itself up.
func TestTokenLastUseCompletes(t *testing.T) {
	r := newTokenRig(t)
	s, err := r.root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"default"}, NumUses: 1})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, r.root.Address(), s.Auth.ClientToken)
	self, err := c.Auth().Token().LookupSelf()
	if err != nil {
		t.Fatalf("last use refused: %v", err)
	}
	if self.Data["accessor"] != s.Auth.Accessor {
		t.Fatalf("lookup-self = %v", self.Data)
	}
	if _, err := c.Auth().Token().LookupSelf(); statusOf(err) != http.StatusForbidden {
		t.Fatalf("use after the last: err = %v, want 403", err)
	}

	s, err = r.root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"default"}, NumUses: 1})
	if err != nil {
		t.Fatal(err)
	}
	caps, err := newClient(t, r.root.Address(), s.Auth.ClientToken).Sys().CapabilitiesSelf("cubbyhole/x")
	if err != nil || !slices.Contains(caps, "read") {
		t.Fatalf("capabilities-self on the last use = %v, %v", caps, err)
	}
}

// A token's cubbyhole is destroyed with the token, however it is revoked:
// a token created again with the same ID finds it empty.
func TestTokenCubbyholeDestroyedWithToken(t *testing.T) {
	r := newTokenRig(t)
	auth := r.root.Auth().Token()
	issue := func(id string, numUses int) *vault.Client {
		t.Helper()
		if _, err := auth.Create(&vault.TokenCreateRequest{ID: id, Policies: []string{"default"}, NumUses: numUses}); err != nil {
			t.Fatal(err)
		}
		return newClient(t, r.root.Address(), id)
	}
	empty := func(how, id string) {
		t.Helper()
		s, err := issue(id, 0).Logical().Read("cubbyhole/note")
		if err != nil || s != nil {
			t.Fatalf("%s: cubbyhole of a new token with the old ID = %v, %v; want nothing", how, s, err)
		}
	}
	store := func(c *vault.Client) {
		t.Helper()
		if _, err := c.Logical().Write("cubbyhole/note", map[string]any{"v": "private"}); err != nil {
			t.Fatal(err)
		}
	}

	c := issue("cubby-revoked", 0)
	store(c)
	if s, err := c.Logical().Read("cubbyhole/note"); err != nil || s.Data["v"] != "private" {
		t.Fatalf("cubbyhole read = %v, %v", s, err)
	}
	if err := auth.RevokeTree("cubby-revoked"); err != nil {
		t.Fatal(err)
	}
	empty("revoke", "cubby-revoked")

	c = issue("cubby-spent", 2)
	store(c)
	if s, err := c.Logical().Read("cubbyhole/note"); err != nil || s.Data["v"] != "private" { // the last use
		t.Fatalf("cubbyhole read on the last use = %v, %v", s, err)
	}
	empty("uses spent", "cubby-spent")

	parent, err := auth.Create(&vault.TokenCreateRequest{Policies: []string{"root"}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	pc := newClient(t, r.root.Address(), parent.Auth.ClientToken)
	if _, err := pc.Auth().Token().Create(&vault.TokenCreateRequest{ID: "cubby-child", Policies: []string{"default"}}); err != nil {
		t.Fatal(err)
	}
	store(newClient(t, r.root.Address(), "cubby-child"))
	if err := auth.RevokeTree(parent.Auth.ClientToken); err != nil {
		t.Fatal(err)
	}
	empty("parent revoked", "cubby-child")
}

// Options Arca cannot enforce are refused rather than accepted and ignored.
func TestTokenUnenforceableOptionsRefused(t *testing.T) {
	r := newTokenRig(t)
	_, err := r.root.Logical().Write("auth/token/roles/net", map[string]any{"token_bound_cidrs": "10.0.0.0/8"})
	wantBadRequest(t, err, "token_bound_cidrs")
	_, err = r.root.Logical().Write("auth/token/roles/net", map[string]any{"bound_cidrs": []string{"10.0.0.0/8"}})
	wantBadRequest(t, err, "bound_cidrs")
	// entity_alias binds a token to an entity only through a token role
	// that allows the alias (see identity_test.go).
	_, err = r.root.Auth().Token().Create(&vault.TokenCreateRequest{EntityAlias: "someone"})
	wantBadRequest(t, err, "entity_alias")
	_, err = r.root.Auth().Token().Create(&vault.TokenCreateRequest{Type: "batch"})
	wantBadRequest(t, err, "batch")
}

// Creating a token with a policy that does not exist works, with a warning.
func TestTokenCreateWarnsOfMissingPolicy(t *testing.T) {
	r := newTokenRig(t)
	s, err := r.root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"admin", "not-written"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Warnings) != 1 || !strings.Contains(s.Warnings[0], `"not-written"`) {
		t.Fatalf("warnings = %q, want one naming not-written", s.Warnings)
	}
}

// TestTokenLastRenewal: a token's lookup shows last_renewal_time and
// last_renewal only once it has been renewed, as Vault's does (agents read
// them to see their renewals land).
func TestTokenLastRenewal(t *testing.T) {
	r := newTokenRig(t)
	s, err := r.root.Auth().Token().Create(&vault.TokenCreateRequest{TTL: "1h", Policies: []string{"default"}})
	if err != nil {
		t.Fatal(err)
	}
	tok := s.Auth.ClientToken
	if d := r.lookup(t, tok).Data; d["last_renewal_time"] != nil || d["last_renewal"] != nil {
		t.Fatalf("a token never renewed shows a renewal: %v %v", d["last_renewal_time"], d["last_renewal"])
	}
	before := time.Now().Add(-time.Second).Unix()
	if _, err := newClient(t, r.root.Address(), tok).Auth().Token().RenewSelf(3600); err != nil {
		t.Fatal(err)
	}
	d := r.lookup(t, tok).Data
	if secondsOf(t, &vault.Secret{Data: d}, "last_renewal_time") < before {
		t.Fatalf("last_renewal_time %v is not the renewal's", d["last_renewal_time"])
	}
	if ts, ok := d["last_renewal"].(string); !ok {
		t.Fatalf("last_renewal %v is not a time", d["last_renewal"])
	} else if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		t.Fatalf("last_renewal %q: %v", ts, err)
	}
}
