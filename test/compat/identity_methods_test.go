package compat

import (
	"net/http"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/testutil/oidctest"
)

// TestIdentityThroughRealMethods: logins through the shipped methods resolve
// to entities. A userpass user reads only its own folder through a policy
// templated on its alias name; a JWT login's groups claim puts its entity in
// an external group whose policy the token then acts under; the audit
// trail's access report names the entity and alias.
func TestIdentityThroughRealMethods(t *testing.T) {
	c := devClient(t)
	if err := c.Sys().EnableAuthWithOptions("userpass", &vault.EnableAuthOptions{Type: "userpass"}); err != nil {
		t.Fatal(err)
	}
	auths, err := c.Sys().ListAuth()
	if err != nil {
		t.Fatal(err)
	}
	upAccessor := auths["userpass/"].Accessor
	if err := c.Sys().PutPolicy("own-folder", `path "secret/data/people/{{identity.entity.aliases.`+upAccessor+`.name}}/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"alice/x", "bob/x"} {
		if _, err := c.Logical().Write("secret/data/people/"+p, map[string]any{"data": map[string]any{"v": p}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Logical().Write("auth/userpass/users/alice", map[string]any{"password": "correct horse", "token_policies": "own-folder"}); err != nil {
		t.Fatal(err)
	}
	anon := newClient(t, c.Address(), "")
	s, err := anon.Logical().Write("auth/userpass/login/alice", map[string]any{"password": "correct horse"})
	if err != nil {
		t.Fatalf("userpass login: %v", err)
	}
	if s.Auth.EntityID == "" {
		t.Fatal("a userpass login carries no entity_id")
	}
	alice := newClient(t, c.Address(), s.Auth.ClientToken)
	if _, err := alice.Logical().Read("secret/data/people/alice/x"); err != nil {
		t.Fatalf("alice reads her own folder: %v", err)
	}
	if _, err := alice.Logical().Read("secret/data/people/bob/x"); statusOf(err) != http.StatusForbidden {
		t.Fatalf("alice reads bob's folder: %v, want 403", err)
	}
	// A second login of the same user lands on the same entity.
	s2, err := anon.Logical().Write("auth/userpass/login/alice", map[string]any{"password": "correct horse"})
	if err != nil || s2.Auth.EntityID != s.Auth.EntityID {
		t.Fatalf("second login: entity %v, want %s (%v)", s2, s.Auth.EntityID, err)
	}
	ent, err := c.Logical().Read("identity/entity/id/" + s.Auth.EntityID)
	if err != nil || ent == nil {
		t.Fatalf("reading the entity: %v", err)
	}
	aliases, _ := ent.Data["aliases"].([]any)
	if len(aliases) != 1 || aliases[0].(map[string]any)["name"] != "alice" || aliases[0].(map[string]any)["mount_accessor"] != upAccessor {
		t.Fatalf("entity aliases: %v", ent.Data["aliases"])
	}

	// JWT groups claim → external group → its policy.
	key := oidctest.NewRSA(t, "k1")
	iss := oidctest.NewIssuer(t, key)
	mountJWT(t, c, "jwt", "jwt", map[string]any{"jwks_url": iss.URL + "/keys", "bound_issuer": iss.URL})
	if _, err := c.Logical().Write("auth/jwt/role/ci", map[string]any{
		"role_type": "jwt", "user_claim": "sub", "groups_claim": "groups",
		"bound_audiences": "arca", "token_ttl": "5m",
	}); err != nil {
		t.Fatal(err)
	}
	auths, _ = c.Sys().ListAuth()
	jwtAccessor := auths["jwt/"].Accessor
	if err := c.Sys().PutPolicy("platform", `path "secret/data/platform/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("secret/data/platform/db", map[string]any{"data": map[string]any{"v": "1"}}); err != nil {
		t.Fatal(err)
	}
	g, err := c.Logical().Write("identity/group", map[string]any{"name": "platform-team", "type": "external", "policies": "platform"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("identity/group-alias", map[string]any{"name": "platform", "mount_accessor": jwtAccessor, "canonical_id": g.Data["id"]}); err != nil {
		t.Fatal(err)
	}
	jwtLogin := func(groups []string) *vault.Client {
		now := time.Now()
		tok := oidctest.Sign(t, key, map[string]any{
			"iss": iss.URL, "aud": "arca", "sub": "pipeline-7", "groups": groups,
			"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
		})
		s, err := anon.Logical().Write("auth/jwt/login", map[string]any{"role": "ci", "jwt": tok})
		if err != nil {
			t.Fatalf("jwt login: %v", err)
		}
		return newClient(t, c.Address(), s.Auth.ClientToken)
	}
	member := jwtLogin([]string{"platform", "other"})
	if _, err := member.Logical().Read("secret/data/platform/db"); err != nil {
		t.Fatalf("a member of the platform group reads through the group's policy: %v", err)
	}
	// A later login without the group removes the membership, and with it
	// the policy, for every token of that entity.
	outsider := jwtLogin([]string{"other"})
	for name, cl := range map[string]*vault.Client{"new token": outsider, "earlier token": member} {
		if _, err := cl.Logical().Read("secret/data/platform/db"); statusOf(err) != http.StatusForbidden {
			t.Fatalf("%s after leaving the group: %v, want 403", name, err)
		}
	}
}
