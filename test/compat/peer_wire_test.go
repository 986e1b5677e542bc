package compat

// Wire details found by sending the same requests to OpenBao and to Arca side
// by side: each test pins the behaviour Vault documents and OpenBao shows.

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/server/servertest"
)

// TestPeerEmptyListIs404 checks that a LIST with nothing to list answers 404,
// as a read of nothing does, for every method's lists (the vault CLI prints
// "No value found" on it, and clients treat 404 as an empty list).
func TestPeerEmptyListIs404(t *testing.T) {
	addr, root := servertest.StartDev(t)
	c := newClient(t, addr, root)
	for _, m := range []string{"approle", "jwt", "userpass"} {
		if err := c.Sys().EnableAuthWithOptions(m, &vault.EnableAuthOptions{Type: m}); err != nil {
			t.Fatalf("enabling %s: %v", m, err)
		}
	}
	if code, _, body := rawRequest(t, "LIST", addr+"/v1/auth/approle/role", root, ""); code != http.StatusNotFound {
		t.Errorf("LIST auth/approle/role with no roles = %d %s, want 404", code, body)
	}
	if _, err := c.Logical().Write("auth/approle/role/r1", map[string]any{"token_ttl": "5m"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"auth/approle/role/r1/secret-id", "auth/jwt/role", "auth/userpass/users", "identity/group/id", "identity/group-alias/id"} {
		code, _, body := rawRequest(t, "LIST", addr+"/v1/"+p, root, "")
		if code != http.StatusNotFound {
			t.Errorf("LIST %s = %d %s, want 404", p, code, body)
		}
	}
	// A list with keys still answers 200 with them.
	s, err := c.Logical().List("auth/approle/role")
	if err != nil || s == nil || !strings.Contains(strings.Join(toStrings(s.Data["keys"]), ","), "r1") {
		t.Fatalf("LIST auth/approle/role = %v, %v; want keys [r1]", s, err)
	}
	if _, err := c.Logical().Delete("auth/approle/role/r1"); err != nil {
		t.Fatal(err)
	}
	if s, err := c.Logical().List("auth/approle/role"); err != nil || s != nil {
		t.Fatalf("LIST after the last role is deleted = %v, %v; want nothing (404)", s, err)
	}
}

// TestPeerIdentityUpdateIs204 checks that writing to an existing entity or
// group (by ID, by name, or by POSTing a name that exists) answers 204, and
// only a write that creates one answers 200 with its ID.
func TestPeerIdentityUpdateIs204(t *testing.T) {
	addr, root := servertest.StartDev(t)
	c := newClient(t, addr, root)
	e := mustWrite(t, c, "identity/entity", map[string]any{"name": "e1", "policies": "p1"})
	if e == nil || e.Data["id"] == nil || e.Data["name"] != "e1" {
		t.Fatalf("creating an entity = %v; want 200 with id and name", e)
	}
	id := e.Data["id"].(string)
	for _, p := range []string{"identity/entity", "identity/entity/id/" + id, "identity/entity/name/e1"} {
		code, _, body := rawRequest(t, "POST", addr+"/v1/"+p, root, `{"name":"e1","policies":["p2"]}`)
		if code != http.StatusNoContent {
			t.Errorf("updating an entity at %s = %d %s, want 204", p, code, body)
		}
	}
	got, err := c.Logical().Read("identity/entity/id/" + id)
	if err != nil || got == nil || strings.Join(strList(got.Data["policies"]), ",") != "p2" {
		t.Fatalf("entity after updates = %v, %v; want policies [p2]", got, err)
	}
	// Writing a new name under entity/name/ creates it: 200 with its ID.
	if s := mustWrite(t, c, "identity/entity/name/e2", map[string]any{}); s == nil || s.Data["id"] == nil {
		t.Fatalf("creating an entity by name = %v; want its id", s)
	}

	g := mustWrite(t, c, "identity/group", map[string]any{"name": "g1"})
	if g == nil || g.Data["id"] == nil || g.Data["name"] != "g1" {
		t.Fatalf("creating a group = %v; want 200 with id and name", g)
	}
	gid := g.Data["id"].(string)
	for _, p := range []string{"identity/group", "identity/group/id/" + gid, "identity/group/name/g1"} {
		code, _, body := rawRequest(t, "POST", addr+"/v1/"+p, root, `{"name":"g1","policies":["gp"]}`)
		if code != http.StatusNoContent {
			t.Errorf("updating a group at %s = %d %s, want 204", p, code, body)
		}
	}
	if got, err := c.Logical().Read("identity/group/id/" + gid); err != nil || got == nil || strings.Join(strList(got.Data["policies"]), ",") != "gp" {
		t.Fatalf("group after updates = %v, %v; want policies [gp]", got, err)
	}
}

// TestPeerAppRoleSecretIDListMissingRole checks that listing the secret IDs
// of a role that does not exist is a 400 naming the role, while a role with
// no secret IDs lists as 404 (nothing there).
func TestPeerAppRoleSecretIDListMissingRole(t *testing.T) {
	addr, root := servertest.StartDev(t)
	c := newClient(t, addr, root)
	enableAppRole(t, c, "r1", map[string]any{"token_ttl": "5m"})
	code, _, body := rawRequest(t, "LIST", addr+"/v1/auth/approle/role/nosuch/secret-id", root, "")
	if code != http.StatusBadRequest || !strings.Contains(string(body), "nosuch") {
		t.Errorf("LIST secret-id of a missing role = %d %s, want 400 naming it", code, body)
	}
	if code, _, body := rawRequest(t, "LIST", addr+"/v1/auth/approle/role/r1/secret-id", root, ""); code != http.StatusNotFound {
		t.Errorf("LIST secret-id of a role with none = %d %s, want 404", code, body)
	}
	_, acc := newSecretID(t, c, "r1", nil)
	s, err := c.Logical().List("auth/approle/role/r1/secret-id")
	if err != nil || s == nil || strings.Join(toStrings(s.Data["keys"]), ",") != acc {
		t.Fatalf("LIST secret-id = %v, %v; want the accessor %s", s, err, acc)
	}
}

// TestPeerAuthMountConfig checks what sys/auth says of an auth mount: its
// config carries token_type and the tuned listing_visibility, in the list, in
// the read and (token_type) in the tune read, as Vault reports them.
func TestPeerAuthMountConfig(t *testing.T) {
	addr, root := servertest.StartDev(t)
	c := newClient(t, addr, root)
	if err := c.Sys().EnableAuthWithOptions("userpass", &vault.EnableAuthOptions{Type: "userpass"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().TuneMount("auth/userpass", vault.MountConfigInput{ListingVisibility: "unauth"}); err != nil {
		t.Fatal(err)
	}
	auths, err := c.Sys().ListAuth()
	if err != nil {
		t.Fatal(err)
	}
	up := auths["userpass/"]
	if up == nil || up.Config.TokenType != "default-service" || up.Config.ListingVisibility != "unauth" {
		t.Fatalf("sys/auth userpass/ = %+v; want config token_type default-service, listing_visibility unauth", up)
	}
	if tok := auths["token/"]; tok == nil || tok.Config.TokenType != "default-service" || tok.Config.ListingVisibility != "" {
		t.Fatalf("sys/auth token/ = %+v; want token_type default-service and no listing_visibility", tok)
	}
	s, err := c.Logical().Read("sys/auth/userpass")
	if err != nil || s == nil {
		t.Fatalf("reading sys/auth/userpass: %v", err)
	}
	if conf, _ := s.Data["config"].(map[string]any); conf["token_type"] != "default-service" || conf["listing_visibility"] != "unauth" {
		t.Fatalf("sys/auth/userpass config = %v", s.Data["config"])
	}
	tune, err := c.Sys().MountConfig("auth/userpass")
	if err != nil || tune.TokenType != "default-service" || tune.ListingVisibility != "unauth" {
		t.Fatalf("sys/auth/userpass/tune = %+v, %v", tune, err)
	}
	// Options of a mount enabled without any read back as {}, not null.
	if opts, ok := s.Data["options"].(map[string]any); !ok || len(opts) != 0 {
		t.Fatalf("sys/auth/userpass options = %#v; want {}", s.Data["options"])
	}
	// A secrets mount has no token_type.
	mounts, err := c.Sys().ListMounts()
	if err != nil || mounts["secret/"] == nil || mounts["secret/"].Config.TokenType != "" {
		t.Fatalf("sys/mounts secret/ = %+v, %v; want no token_type", mounts["secret/"], err)
	}
}

// TestPeerEntityAliasCreateOrUpdate checks that writing identity/entity-alias
// with the name and mount accessor of an existing alias updates that alias (a
// "create or update", as hvac and Terraform use it) instead of failing, and
// that a write changing nothing answers 204.
func TestPeerEntityAliasCreateOrUpdate(t *testing.T) {
	addr, root := servertest.StartDev(t)
	c := newClient(t, addr, root)
	auths, err := c.Sys().ListAuth()
	if err != nil {
		t.Fatal(err)
	}
	acc := auths["token/"].Accessor
	e1 := mustWrite(t, c, "identity/entity", map[string]any{"name": "e1"}).Data["id"].(string)
	e2 := mustWrite(t, c, "identity/entity", map[string]any{"name": "e2"}).Data["id"].(string)
	a := mustWrite(t, c, "identity/entity-alias", map[string]any{"name": "login1", "mount_accessor": acc, "canonical_id": e1})
	if a == nil || a.Data["canonical_id"] != e1 {
		t.Fatalf("creating an alias = %v", a)
	}
	aid := a.Data["id"].(string)
	body := `{"name":"login1","mount_accessor":"` + acc + `","canonical_id":"` + e1 + `"}`
	if code, _, out := rawRequest(t, "POST", addr+"/v1/identity/entity-alias", root, body); code != http.StatusNoContent {
		t.Fatalf("writing the same alias again = %d %s, want 204", code, out)
	}
	if code, _, out := rawRequest(t, "POST", addr+"/v1/identity/entity-alias/id/"+aid, root, `{"name":"login1"}`); code != http.StatusNoContent {
		t.Fatalf("writing an unchanged alias by ID = %d %s, want 204", code, out)
	}
	// Naming another entity moves the alias there: the same alias ID.
	moved := mustWrite(t, c, "identity/entity-alias", map[string]any{"name": "login1", "mount_accessor": acc, "canonical_id": e2})
	if moved == nil || moved.Data["id"] != aid || moved.Data["canonical_id"] != e2 {
		t.Fatalf("moving the alias = %v; want id %s on entity %s", moved, aid, e2)
	}
	got, err := c.Logical().Read("identity/entity/id/" + e1)
	if err != nil || got == nil || len(got.Data["aliases"].([]any)) != 0 {
		t.Fatalf("entity e1 after the move = %v, %v; want no aliases", got, err)
	}
	list, err := c.Logical().List("identity/entity-alias/id")
	if err != nil || list == nil || len(toStrings(list.Data["keys"])) != 1 {
		t.Fatalf("aliases = %v, %v; want exactly one", list, err)
	}
}

// TestPeerAppRoleDisplayName checks that an AppRole login token's
// display_name is the mount's ("approle"), as Vault names it, not the role's.
func TestPeerAppRoleDisplayName(t *testing.T) {
	c := devClient(t)
	roleID := enableAppRole(t, c, "ci", map[string]any{"token_ttl": "5m"})
	sid, _ := newSecretID(t, c, "ci", nil)
	s, err := appRoleLogin(c, roleID, sid)
	if err != nil {
		t.Fatal(err)
	}
	lc, _ := c.Clone()
	lc.SetToken(s.Auth.ClientToken)
	self, err := lc.Auth().Token().LookupSelf()
	if err != nil || self.Data["display_name"] != "approle" || self.Data["path"] != "auth/approle/login" {
		t.Fatalf("lookup-self = %v, %v; want display_name approle, path auth/approle/login", self, err)
	}
}

// TestPeerIdentityListKeyInfo checks the key_info of identity lists: a group
// carries its name and member counts (num_member_entities, num_parent_groups),
// an alias its name, mount, metadata and local flag, as Vault lists them.
func TestPeerIdentityListKeyInfo(t *testing.T) {
	addr, root := servertest.StartDev(t)
	c := newClient(t, addr, root)
	e := mustWrite(t, c, "identity/entity", map[string]any{"name": "e1"}).Data["id"].(string)
	child := mustWrite(t, c, "identity/group", map[string]any{"name": "child", "member_entity_ids": e}).Data["id"].(string)
	mustWrite(t, c, "identity/group", map[string]any{"name": "parent", "member_group_ids": child})
	l, err := c.Logical().List("identity/group/id")
	if err != nil || l == nil {
		t.Fatalf("listing groups: %v", err)
	}
	ki, _ := l.Data["key_info"].(map[string]any)
	ci, _ := ki[child].(map[string]any)
	if ci["name"] != "child" || ci["num_member_entities"] != json.Number("1") || ci["num_parent_groups"] != json.Number("1") {
		t.Fatalf("key_info of group child = %v; want name child, 1 member entity, 1 parent group", ci)
	}
	auths, err := c.Sys().ListAuth()
	if err != nil {
		t.Fatal(err)
	}
	a := mustWrite(t, c, "identity/entity-alias", map[string]any{"name": "login1", "mount_accessor": auths["token/"].Accessor, "canonical_id": e}).Data["id"].(string)
	al, err := c.Logical().List("identity/entity-alias/id")
	if err != nil || al == nil {
		t.Fatalf("listing aliases: %v", err)
	}
	ai, _ := al.Data["key_info"].(map[string]any)[a].(map[string]any)
	for _, k := range []string{"canonical_id", "name", "mount_accessor", "mount_path", "mount_type", "metadata", "custom_metadata", "local"} {
		if _, ok := ai[k]; !ok {
			t.Errorf("key_info of alias lacks %q: %v", k, ai)
		}
	}
	if ai["name"] != "login1" || ai["canonical_id"] != e || ai["mount_type"] != "token" || ai["local"] != false {
		t.Fatalf("key_info of alias = %v", ai)
	}
}

// TestPeerBoundCIDRsDisplay checks that a token bound CIDR block of one
// address reads back as the bare address, as Vault shows it: in a userpass
// user, in lookup-self of its login token and in an AppRole secret ID.
func TestPeerBoundCIDRsDisplay(t *testing.T) {
	c := devClient(t)
	if err := c.Sys().EnableAuthWithOptions("userpass", &vault.EnableAuthOptions{Type: "userpass"}); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, c, "auth/userpass/users/alice", map[string]any{"password": "pw", "token_bound_cidrs": "127.0.0.1/32,10.0.0.0/8"})
	u, err := c.Logical().Read("auth/userpass/users/alice")
	if err != nil || u == nil || strings.Join(toStrings(u.Data["token_bound_cidrs"]), ",") != "127.0.0.1,10.0.0.0/8" {
		t.Fatalf("user token_bound_cidrs = %v, %v; want [127.0.0.1 10.0.0.0/8]", u, err)
	}
	lc, _ := c.Clone()
	lc.ClearToken()
	s, err := lc.Logical().Write("auth/userpass/login/alice", map[string]any{"password": "pw"})
	if err != nil {
		t.Fatal(err)
	}
	lc.SetToken(s.Auth.ClientToken)
	self, err := lc.Auth().Token().LookupSelf()
	if err != nil || strings.Join(toStrings(self.Data["bound_cidrs"]), ",") != "127.0.0.1,10.0.0.0/8" {
		t.Fatalf("lookup-self bound_cidrs = %v, %v", self, err)
	}
	enableAppRole(t, c, "r1", map[string]any{"token_bound_cidrs": "127.0.0.1"})
	sid, err := c.Logical().Write("auth/approle/role/r1/secret-id", map[string]any{"token_bound_cidrs": "127.0.0.1/32"})
	if err != nil {
		t.Fatal(err)
	}
	look, err := c.Logical().Write("auth/approle/role/r1/secret-id/lookup", map[string]any{"secret_id": sid.Data["secret_id"]})
	if err != nil || look == nil || strings.Join(toStrings(look.Data["token_bound_cidrs"]), ",") != "127.0.0.1" {
		t.Fatalf("secret-id lookup token_bound_cidrs = %v, %v", look, err)
	}
	r, err := c.Logical().Read("auth/approle/role/r1")
	if err != nil || strings.Join(toStrings(r.Data["token_bound_cidrs"]), ",") != "127.0.0.1" {
		t.Fatalf("role token_bound_cidrs = %v, %v", r, err)
	}
}

// TestPeerIdentityListOfAnItem checks that LIST on one entity, alias or group
// (not a list path) is a 404, as in Vault, and that an ID is one path segment.
func TestPeerIdentityListOfAnItem(t *testing.T) {
	addr, root := servertest.StartDev(t)
	c := newClient(t, addr, root)
	e := mustWrite(t, c, "identity/entity", map[string]any{"name": "e1"}).Data["id"].(string)
	g := mustWrite(t, c, "identity/group", map[string]any{"name": "g1"}).Data["id"].(string)
	for _, p := range []string{"identity/entity/id/" + e, "identity/group/id/" + g} {
		if code, _, body := rawRequest(t, "LIST", addr+"/v1/"+p, root, ""); code != http.StatusNotFound {
			t.Errorf("LIST %s = %d %s, want 404", p, code, body)
		}
	}
	if code, _, body := rawRequest(t, "GET", addr+"/v1/identity/entity/id/"+e+"/x", root, ""); code != http.StatusNotFound {
		t.Errorf("GET entity/id/<id>/x = %d %s, want 404", code, body)
	}
	if s, err := c.Logical().Read("identity/entity/id/" + e); err != nil || s == nil || s.Data["name"] != "e1" {
		t.Fatalf("reading the entity = %v, %v", s, err)
	}
}

// TestPeerEntityBatchDelete checks identity/entity/batch-delete: the listed
// entities go (with their aliases, and from their groups), unknown IDs are
// skipped, others stay, and an empty list is a 400.
func TestPeerEntityBatchDelete(t *testing.T) {
	addr, root := servertest.StartDev(t)
	c := newClient(t, addr, root)
	auths, err := c.Sys().ListAuth()
	if err != nil {
		t.Fatal(err)
	}
	e1 := mustWrite(t, c, "identity/entity", map[string]any{"name": "e1"}).Data["id"].(string)
	e2 := mustWrite(t, c, "identity/entity", map[string]any{"name": "e2"}).Data["id"].(string)
	e3 := mustWrite(t, c, "identity/entity", map[string]any{"name": "e3"}).Data["id"].(string)
	mustWrite(t, c, "identity/entity-alias", map[string]any{"name": "l1", "mount_accessor": auths["token/"].Accessor, "canonical_id": e1})
	g := mustWrite(t, c, "identity/group", map[string]any{"name": "g", "member_entity_ids": []string{e1, e3}}).Data["id"].(string)

	if code, _, body := rawRequest(t, "POST", addr+"/v1/identity/entity/batch-delete", root, `{"entity_ids":["`+e1+`","`+e2+`","nosuch"]}`); code != http.StatusNoContent {
		t.Fatalf("batch-delete = %d %s, want 204", code, body)
	}
	for _, id := range []string{e1, e2} {
		if s, err := c.Logical().Read("identity/entity/id/" + id); err != nil || s != nil {
			t.Errorf("entity %s after batch-delete = %v, %v; want gone", id, s, err)
		}
	}
	if s, err := c.Logical().Read("identity/entity/id/" + e3); err != nil || s == nil {
		t.Fatalf("entity e3 (not listed) = %v, %v; want kept", s, err)
	}
	if s, err := c.Logical().List("identity/entity-alias/id"); err != nil || s != nil {
		t.Fatalf("aliases after batch-delete = %v, %v; want none", s, err)
	}
	grp, err := c.Logical().Read("identity/group/id/" + g)
	if err != nil || strings.Join(strList(grp.Data["member_entity_ids"]), ",") != e3 {
		t.Fatalf("group members after batch-delete = %v, %v; want [%s]", grp, err, e3)
	}
	if code, _, body := rawRequest(t, "POST", addr+"/v1/identity/entity/batch-delete", root, `{}`); code != http.StatusBadRequest || !strings.Contains(string(body), "entity_ids") {
		t.Fatalf("batch-delete of nothing = %d %s, want 400 naming entity_ids", code, body)
	}
}
