package compat

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/logical"
	fw "github.com/arcasec/arca/internal/logical/framework"
	"github.com/arcasec/arca/internal/server"
	"github.com/arcasec/arca/internal/server/servertest"
)

// stubLoginFactory is a test-only auth method: auth/<mount>/login with a
// name logs in as that name (the alias), with groups as group aliases.
func stubLoginFactory(_ context.Context, _ *logical.BackendConfig) (logical.Backend, error) {
	login := func(_ context.Context, _ *logical.Request, d *fw.FieldData) (*logical.Response, error) {
		name := d.String("name")
		if name == "" {
			return nil, logical.BadRequest("missing name")
		}
		auth := &logical.Auth{
			DisplayName: name,
			Policies:    d.Strings("policies"),
			Alias:       &logical.Alias{Name: name, Metadata: d.Get("meta").(map[string]string)},
		}
		for _, g := range d.Strings("groups") {
			auth.GroupAliases = append(auth.GroupAliases, &logical.Alias{Name: g})
		}
		return &logical.Response{Auth: auth}, nil
	}
	return &fw.Backend{
		PathsSpecial: &logical.Paths{Unauthenticated: []string{"login"}},
		Paths: []*fw.Path{{
			Pattern: "login",
			Fields: map[string]*fw.FieldSchema{
				"name":     {Type: fw.TypeString},
				"groups":   {Type: fw.TypeCommaStringSlice},
				"policies": {Type: fw.TypeCommaStringSlice},
				"meta":     {Type: fw.TypeKVPairs},
			},
			Operations: map[logical.Operation]fw.OperationFunc{logical.UpdateOperation: login},
		}},
	}, nil
}

// identityServer starts a dev server whose catalog has the stub login
// method as "stublogin", mounted at auth/stub/, and returns a root client
// and the stub mount's accessor.
func identityServer(t *testing.T) (c *vault.Client, addr, stubAccessor string) {
	t.Helper()
	cat := server.Catalog()
	cat.Auth["stublogin"] = stubLoginFactory
	srv, res, err := server.StartDev(context.Background(), server.DevOptions{ListenAddress: "127.0.0.1:0", Catalog: &cat},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	addr = "http://" + res.Address
	c = newClient(t, addr, res.RootToken)
	if err := c.Sys().EnableAuthWithOptions("stub", &vault.EnableAuthOptions{Type: "stublogin"}); err != nil {
		t.Fatal(err)
	}
	return c, addr, authAccessor(t, c, "stub/")
}

func authAccessor(t *testing.T, c *vault.Client, path string) string {
	t.Helper()
	auths, err := c.Sys().ListAuth()
	if err != nil {
		t.Fatal(err)
	}
	m, ok := auths[path]
	if !ok {
		t.Fatalf("no auth mount %s in %v", path, auths)
	}
	return m.Accessor
}

func mustWrite(t *testing.T, c *vault.Client, path string, data map[string]any) *vault.Secret {
	t.Helper()
	s, err := c.Logical().Write(path, data)
	if err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return s
}

func strList(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// TestIdentityEntitiesAliasesGroups creates an entity, an alias and a
// group through vault/api, and reads, lists and looks them up as Vault's
// identity API does.
func TestIdentityEntitiesAliasesGroups(t *testing.T) {
	c := devClient(t)
	tokenAcc := authAccessor(t, c, "token/")

	s := mustWrite(t, c, "identity/entity", map[string]any{"name": "alice", "policies": []string{"a", "b"}, "metadata": map[string]string{"team": "payments"}})
	id, _ := s.Data["id"].(string)
	if id == "" || s.Data["name"] != "alice" {
		t.Fatalf("create entity: %v", s.Data)
	}
	for _, path := range []string{"identity/entity/id/" + id, "identity/entity/name/alice"} {
		e, err := c.Logical().Read(path)
		if err != nil || e == nil {
			t.Fatalf("read %s: %v, %v", path, e, err)
		}
		if e.Data["id"] != id || e.Data["name"] != "alice" || !slices.Equal(strList(e.Data["policies"]), []string{"a", "b"}) {
			t.Fatalf("read %s: %v", path, e.Data)
		}
		if md, _ := e.Data["metadata"].(map[string]any); md["team"] != "payments" {
			t.Fatalf("metadata %v", e.Data["metadata"])
		}
		for _, f := range []string{"creation_time", "last_update_time", "aliases", "direct_group_ids", "group_ids", "inherited_group_ids", "disabled"} {
			if _, ok := e.Data[f]; !ok {
				t.Errorf("entity read lacks %s", f)
			}
		}
	}
	// A second entity may not take the name.
	if _, err := c.Logical().Write("identity/entity/id/"+id, map[string]any{"name": "alice"}); err != nil {
		t.Fatalf("renaming an entity to its own name: %v", err)
	}
	bob := mustWrite(t, c, "identity/entity", map[string]any{"name": "bob"})
	if _, err := c.Logical().Write("identity/entity/id/"+bob.Data["id"].(string), map[string]any{"name": "alice"}); statusOf(err) != 400 {
		t.Fatalf("taking another entity's name: %v", err)
	}

	if _, err := c.Logical().Write("identity/entity/id/"+id, map[string]any{"policies": "a,root"}); statusOf(err) != 400 {
		t.Fatalf("giving an entity the root policy: %v", err)
	}
	if _, err := c.Logical().Write("identity/group", map[string]any{"name": "roots", "policies": "root"}); statusOf(err) != 400 {
		t.Fatalf("giving a group the root policy: %v", err)
	}
	list, err := c.Logical().List("identity/entity/id")
	if err != nil || list == nil || len(strList(list.Data["keys"])) != 2 {
		t.Fatalf("list entities by id: %v, %v", list, err)
	}
	if info, _ := list.Data["key_info"].(map[string]any); info[id].(map[string]any)["name"] != "alice" {
		t.Fatalf("key_info %v", list.Data["key_info"])
	}
	names, err := c.Logical().List("identity/entity/name")
	if err != nil || !slices.Equal(strList(names.Data["keys"]), []string{"alice", "bob"}) {
		t.Fatalf("list entities by name: %v, %v", names, err)
	}

	// Alias on the token mount.
	if _, err := c.Logical().Write("identity/entity-alias", map[string]any{"name": "alice@corp", "mount_accessor": "auth_nope_123", "canonical_id": id}); statusOf(err) != 400 {
		t.Fatalf("alias on an unknown accessor: %v", err)
	}
	a := mustWrite(t, c, "identity/entity-alias", map[string]any{"name": "alice@corp", "mount_accessor": tokenAcc, "canonical_id": id})
	aliasID, _ := a.Data["id"].(string)
	if aliasID == "" || a.Data["canonical_id"] != id {
		t.Fatalf("create alias: %v", a.Data)
	}
	// The same name on the same mount is that alias: an update, here of nothing (Vault's 204).
	if s, err := c.Logical().Write("identity/entity-alias", map[string]any{"name": "alice@corp", "mount_accessor": tokenAcc}); err != nil || s != nil {
		t.Fatalf("writing the alias's name and mount again: %v, %v", s, err)
	}
	ar, err := c.Logical().Read("identity/entity-alias/id/" + aliasID)
	if err != nil || ar.Data["name"] != "alice@corp" || ar.Data["mount_accessor"] != tokenAcc || ar.Data["mount_type"] != "token" || ar.Data["canonical_id"] != id {
		t.Fatalf("read alias: %v, %v", ar, err)
	}
	al, err := c.Logical().List("identity/entity-alias/id")
	if err != nil || !slices.Equal(strList(al.Data["keys"]), []string{aliasID}) {
		t.Fatalf("list aliases: %v, %v", al, err)
	}

	// Lookups by every criterion find alice.
	for _, q := range []map[string]any{
		{"id": id}, {"name": "alice"}, {"alias_id": aliasID},
		{"alias_name": "alice@corp", "alias_mount_accessor": tokenAcc},
	} {
		l, err := c.Logical().Write("identity/lookup/entity", q)
		if err != nil || l == nil || l.Data["id"] != id {
			t.Fatalf("lookup %v: %v, %v", q, l, err)
		}
		if al := l.Data["aliases"].([]any); len(al) != 1 || al[0].(map[string]any)["id"] != aliasID {
			t.Fatalf("lookup %v aliases: %v", q, l.Data["aliases"])
		}
	}
	if l, err := c.Logical().Write("identity/lookup/entity", map[string]any{"name": "nobody"}); err != nil || l != nil {
		t.Fatalf("lookup of an unknown name: %v, %v", l, err)
	}
	if _, err := c.Logical().Write("identity/lookup/entity", map[string]any{"name": "alice", "id": id}); statusOf(err) != 400 {
		t.Fatalf("lookup with two criteria: %v", err)
	}

	// Groups: alice is a direct member of "eng", which is a member of "all".
	g := mustWrite(t, c, "identity/group", map[string]any{"name": "eng", "policies": "eng-pol", "member_entity_ids": []string{id}})
	engID := g.Data["id"].(string)
	all := mustWrite(t, c, "identity/group", map[string]any{"name": "all", "member_group_ids": []string{engID}})
	allID := all.Data["id"].(string)
	if _, err := c.Logical().Write("identity/group/id/"+engID, map[string]any{"member_group_ids": []string{allID}}); statusOf(err) != 400 {
		t.Fatalf("a cycle of member groups: %v", err)
	}
	if _, err := c.Logical().Write("identity/group", map[string]any{"name": "ghosts", "member_entity_ids": "no-such-entity"}); statusOf(err) != 400 {
		t.Fatalf("a group with an unknown member: %v", err)
	}
	e, _ := c.Logical().Read("identity/entity/id/" + id)
	if !slices.Equal(strList(e.Data["direct_group_ids"]), []string{engID}) || !slices.Equal(strList(e.Data["inherited_group_ids"]), []string{allID}) ||
		len(strList(e.Data["group_ids"])) != 2 {
		t.Fatalf("entity groups: direct %v inherited %v all %v", e.Data["direct_group_ids"], e.Data["inherited_group_ids"], e.Data["group_ids"])
	}
	gr, err := c.Logical().Read("identity/group/name/eng")
	if err != nil || gr.Data["type"] != "internal" || !slices.Equal(strList(gr.Data["member_entity_ids"]), []string{id}) ||
		!slices.Equal(strList(gr.Data["parent_group_ids"]), []string{allID}) {
		t.Fatalf("read group: %v, %v", gr, err)
	}
	if l, err := c.Logical().Write("identity/lookup/group", map[string]any{"name": "eng"}); err != nil || l == nil || l.Data["id"] != engID {
		t.Fatalf("lookup group: %v, %v", l, err)
	}
	gl, err := c.Logical().List("identity/group/name")
	if err != nil || !slices.Equal(strList(gl.Data["keys"]), []string{"all", "eng"}) {
		t.Fatalf("list groups: %v, %v", gl, err)
	}

	// Deleting the entity takes it out of its groups.
	if _, err := c.Logical().Delete("identity/entity/name/alice"); err != nil {
		t.Fatal(err)
	}
	if e, err := c.Logical().Read("identity/entity/id/" + id); err != nil || e != nil {
		t.Fatalf("deleted entity still reads: %v, %v", e, err)
	}
	if a, err := c.Logical().Read("identity/entity-alias/id/" + aliasID); err != nil || a != nil {
		t.Fatalf("deleted entity's alias still reads: %v, %v", a, err)
	}
	gr, _ = c.Logical().Read("identity/group/id/" + engID)
	if m := strList(gr.Data["member_entity_ids"]); len(m) != 0 {
		t.Fatalf("group still lists the deleted entity: %v", m)
	}
	// The identity mount cannot be disabled or moved.
	if err := c.Sys().Unmount("identity"); err == nil {
		t.Fatal("unmounting identity/ succeeded")
	}
}

// entityToken creates a token bound to the entity whose alias on the token
// mount is alias, through a token role that allows it (Vault's
// allowed_entity_aliases), with the default policy only.
func entityToken(t *testing.T, c *vault.Client, alias string) *vault.SecretAuth {
	t.Helper()
	mustWrite(t, c, "auth/token/roles/ident", map[string]any{"allowed_entity_aliases": "*", "allowed_policies": "default"})
	s, err := c.Auth().Token().CreateWithRole(&vault.TokenCreateRequest{EntityAlias: alias}, "ident")
	if err != nil {
		t.Fatalf("create token with entity_alias %s: %v", alias, err)
	}
	if s.Auth.EntityID == "" {
		t.Fatalf("token created with entity_alias %s has no entity_id", alias)
	}
	return s.Auth
}

// TestIdentityTemplatedPolicy: a policy granting secret/data/{{identity.entity.name}}/*
// lets alice's token read secret/data/alice/x and not secret/data/bob/x.
func TestIdentityTemplatedPolicy(t *testing.T) {
	ctx := context.Background()
	addr, root := servertest.StartDev(t)
	c := newClient(t, addr, root)
	tokenAcc := authAccessor(t, c, "token/")
	if err := c.Sys().PutPolicy("per-user", `
path "secret/data/{{identity.entity.name}}/*" { capabilities = ["read"] }
path "secret/data/team/{{identity.entity.metadata.team}}" { capabilities = ["read"] }
path "secret/data/alias/{{identity.entity.aliases.`+tokenAcc+`.name}}" { capabilities = ["read"] }
`); err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().PutPolicy("broken", `path "secret/data/{{identity.entity.nickname}}" { capabilities = ["read"] }`); statusOf(err) != 400 {
		t.Fatalf("a policy with an unknown template: %v", err)
	}
	for _, p := range []string{"alice/x", "bob/x", "team/pay", "alias/alice-login"} {
		if _, err := c.KVv2("secret").Put(ctx, p, map[string]any{"v": p}); err != nil {
			t.Fatal(err)
		}
	}
	e := mustWrite(t, c, "identity/entity", map[string]any{"name": "alice", "policies": "per-user", "metadata": map[string]string{"team": "pay"}})
	mustWrite(t, c, "identity/entity-alias", map[string]any{"name": "alice-login", "mount_accessor": tokenAcc, "canonical_id": e.Data["id"]})

	auth := entityToken(t, c, "alice-login")
	if auth.EntityID != e.Data["id"] {
		t.Fatalf("token entity %s, want alice's %v", auth.EntityID, e.Data["id"])
	}
	alice := newClient(t, addr, auth.ClientToken).KVv2("secret")
	for _, p := range []string{"alice/x", "team/pay", "alias/alice-login"} {
		if _, err := alice.Get(ctx, p); err != nil {
			t.Errorf("alice reading %s: %v", p, err)
		}
	}
	if _, err := alice.Get(ctx, "bob/x"); statusOf(err) != 403 {
		t.Fatalf("alice reading bob's secret: %v", err)
	}
	// Group templates: a path named by a group the entity is in.
	grp := mustWrite(t, c, "identity/group", map[string]any{"name": "team-a", "member_entity_ids": e.Data["id"]})
	gid := grp.Data["id"].(string)
	if err := c.Sys().PutPolicy("by-group", `path "secret/data/groups/{{identity.groups.names.team-a.id}}" { capabilities = ["read"] }
path "secret/data/groups/{{identity.groups.names.team-b.id}}-b" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, c, "identity/entity/id/"+e.Data["id"].(string), map[string]any{"policies": "per-user,by-group"})
	for _, p := range []string{"groups/" + gid, "groups/" + gid + "-b"} {
		if _, err := c.KVv2("secret").Put(ctx, p, map[string]any{"v": "g"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := alice.Get(ctx, "groups/"+gid); err != nil {
		t.Fatalf("reading through a group template: %v", err)
	}
	if _, err := alice.Get(ctx, "groups/"+gid+"-b"); statusOf(err) != 403 {
		t.Fatalf("a template naming a group the entity is not in granted: %v", err)
	}
	// The default policy lets a token read its own entity, and no other.
	ac := newClient(t, addr, auth.ClientToken)
	if own, err := ac.Logical().Read("identity/entity/id/" + auth.EntityID); err != nil || own == nil || own.Data["name"] != "alice" {
		t.Fatalf("reading its own entity: %v, %v", own, err)
	}
	other := mustWrite(t, c, "identity/entity", map[string]any{"name": "carol"})
	if _, err := ac.Logical().Read("identity/entity/id/" + other.Data["id"].(string)); statusOf(err) != 403 {
		t.Fatalf("reading another entity: %v", err)
	}
	// A token without an entity gets nothing from the templated paths.
	plain, err := c.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"per-user"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newClient(t, addr, plain.Auth.ClientToken).KVv2("secret").Get(ctx, "alice/x"); statusOf(err) != 403 {
		t.Fatalf("a token without an entity read through a templated path: %v", err)
	}
	// Renaming the entity moves what its existing token can read.
	mustWrite(t, c, "identity/entity/id/"+e.Data["id"].(string), map[string]any{"name": "bob"})
	if _, err := alice.Get(ctx, "bob/x"); err != nil {
		t.Fatalf("after the rename to bob: %v", err)
	}
	if _, err := alice.Get(ctx, "alice/x"); statusOf(err) != 403 {
		t.Fatalf("after the rename, alice/x: %v", err)
	}
	// Token lookup shows the entity and its identity policies.
	self, err := newClient(t, addr, auth.ClientToken).Auth().Token().LookupSelf()
	if err != nil {
		t.Fatal(err)
	}
	if self.Data["entity_id"] != e.Data["id"] || !slices.Equal(strList(self.Data["identity_policies"]), []string{"by-group", "per-user"}) {
		t.Fatalf("lookup-self entity_id %v identity_policies %v", self.Data["entity_id"], self.Data["identity_policies"])
	}
	// entity_alias needs a role that allows it.
	if _, err := c.Auth().Token().Create(&vault.TokenCreateRequest{EntityAlias: "alice-login"}); statusOf(err) != 400 {
		t.Fatalf("entity_alias without a role: %v", err)
	}
	mustWrite(t, c, "auth/token/roles/narrow", map[string]any{"allowed_entity_aliases": "svc-*"})
	if _, err := c.Auth().Token().CreateWithRole(&vault.TokenCreateRequest{EntityAlias: "alice-login"}, "narrow"); statusOf(err) != 400 {
		t.Fatalf("entity_alias outside the role's allowed_entity_aliases: %v", err)
	}
}

// TestIdentityPoliciesAtRequestTime: an entity's and its groups' policies
// apply to its existing tokens at once, and a disabled entity's tokens are
// refused.
func TestIdentityPoliciesAtRequestTime(t *testing.T) {
	ctx := context.Background()
	addr, root := servertest.StartDev(t)
	c := newClient(t, addr, root)
	if err := c.Sys().PutPolicy("app-read", `path "secret/data/app" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KVv2("secret").Put(ctx, "app", map[string]any{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	auth := entityToken(t, c, "ci-pipeline")
	tc := newClient(t, addr, auth.ClientToken)
	if _, err := tc.KVv2("secret").Get(ctx, "app"); statusOf(err) != 403 {
		t.Fatalf("before any identity policy: %v", err)
	}
	mustWrite(t, c, "identity/entity/id/"+auth.EntityID, map[string]any{"policies": "app-read"})
	if _, err := tc.KVv2("secret").Get(ctx, "app"); err != nil {
		t.Fatalf("after adding the entity policy: %v", err)
	}
	mustWrite(t, c, "identity/entity/id/"+auth.EntityID, map[string]any{"policies": []string{}})
	if _, err := tc.KVv2("secret").Get(ctx, "app"); statusOf(err) != 403 {
		t.Fatalf("after removing the entity policy: %v", err)
	}
	// Through an internal group.
	g := mustWrite(t, c, "identity/group", map[string]any{"name": "apps", "policies": "app-read", "member_entity_ids": auth.EntityID})
	if _, err := tc.KVv2("secret").Get(ctx, "app"); err != nil {
		t.Fatalf("as a member of a group with the policy: %v", err)
	}
	if _, err := c.Logical().Delete("identity/group/id/" + g.Data["id"].(string)); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.KVv2("secret").Get(ctx, "app"); statusOf(err) != 403 {
		t.Fatalf("after the group is deleted: %v", err)
	}
	mustWrite(t, c, "identity/entity/id/"+auth.EntityID, map[string]any{"policies": "app-read", "disabled": true})
	if _, err := tc.KVv2("secret").Get(ctx, "app"); statusOf(err) != 403 {
		t.Fatalf("a disabled entity's token read: %v", err)
	}
	if _, err := tc.Auth().Token().LookupSelf(); statusOf(err) != 403 {
		t.Fatalf("a disabled entity's token looked itself up: %v", err)
	}
	mustWrite(t, c, "identity/entity/id/"+auth.EntityID, map[string]any{"disabled": false})
	if _, err := tc.KVv2("secret").Get(ctx, "app"); err != nil {
		t.Fatalf("after re-enabling the entity: %v", err)
	}
}

func login(t *testing.T, addr string, data map[string]any) *vault.SecretAuth {
	t.Helper()
	s, err := newClient(t, addr, "").Logical().Write("auth/stub/login", data)
	if err != nil {
		t.Fatalf("login %v: %v", data, err)
	}
	return s.Auth
}

// TestIdentityLogin: a login resolves to an entity through its alias,
// creating it on first login (once, under concurrent first logins), and
// its group aliases make it a member of external groups, until a later
// login no longer names them.
func TestIdentityLogin(t *testing.T) {
	ctx := context.Background()
	c, addr, stubAcc := identityServer(t)

	first := login(t, addr, map[string]any{"name": "carol", "meta": map[string]string{"org": "acme"}})
	if first.EntityID == "" {
		t.Fatal("login token has no entity_id")
	}
	if again := login(t, addr, map[string]any{"name": "carol"}); again.EntityID != first.EntityID {
		t.Fatalf("second login entity %s, first %s", again.EntityID, first.EntityID)
	}
	e, err := c.Logical().Write("identity/lookup/entity", map[string]any{"alias_name": "carol", "alias_mount_accessor": stubAcc})
	if err != nil || e == nil || e.Data["id"] != first.EntityID {
		t.Fatalf("lookup by alias: %v, %v", e, err)
	}
	if name, _ := e.Data["name"].(string); len(name) < len("entity_") || name[:7] != "entity_" {
		t.Fatalf("created entity name %q", name)
	}
	al := e.Data["aliases"].([]any)[0].(map[string]any)
	if al["mount_path"] != "auth/stub/" || al["metadata"].(map[string]any)["org"] != "acme" {
		t.Fatalf("alias %v", al)
	}

	// Concurrent first logins of one name make one entity. Each client
	// opens its connection first, so the logins arrive together.
	const n = 32
	clients := make([]*vault.Client, n)
	for i := range clients {
		clients[i] = newClient(t, addr, "")
		if _, err := clients[i].Sys().Health(); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	ids := make([]string, n)
	errs := make([]error, n)
	for i := range ids {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			s, err := clients[i].Logical().Write("auth/stub/login", map[string]any{"name": "dave"})
			if err != nil {
				errs[i] = err
				return
			}
			ids[i] = s.Auth.EntityID
		}(i)
	}
	close(start)
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] == "" || ids[i] != ids[0] {
			t.Fatalf("concurrent login %d: entity %q (first %q), err %v", i, ids[i], ids[0], errs[i])
		}
	}
	list, _ := c.Logical().List("identity/entity/id")
	if n := len(strList(list.Data["keys"])); n != 2 {
		t.Fatalf("%d entities after logins of carol and dave, want 2", n)
	}

	// External group from a group alias.
	if err := c.Sys().PutPolicy("devs-read", `path "secret/data/devs" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KVv2("secret").Put(ctx, "devs", map[string]any{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	g := mustWrite(t, c, "identity/group", map[string]any{"name": "devs", "type": "external", "policies": "devs-read"})
	gid := g.Data["id"].(string)
	if _, err := c.Logical().Write("identity/group/id/"+gid, map[string]any{"member_entity_ids": first.EntityID}); statusOf(err) != 400 {
		t.Fatalf("setting members of an external group: %v", err)
	}
	ga := mustWrite(t, c, "identity/group-alias", map[string]any{"name": "github-devs", "mount_accessor": stubAcc, "canonical_id": gid})
	if r, err := c.Logical().Read("identity/group-alias/id/" + ga.Data["id"].(string)); err != nil || r.Data["name"] != "github-devs" {
		t.Fatalf("read group alias: %v, %v", r, err)
	}
	internal := mustWrite(t, c, "identity/group", map[string]any{"name": "internal-only"})
	if _, err := c.Logical().Write("identity/group-alias", map[string]any{"name": "x", "mount_accessor": stubAcc, "canonical_id": internal.Data["id"]}); statusOf(err) != 400 {
		t.Fatalf("alias on an internal group: %v", err)
	}

	member := login(t, addr, map[string]any{"name": "carol", "groups": "github-devs,unknown-group"})
	if !slices.Equal(member.IdentityPolicies, []string{"devs-read"}) || !slices.Contains(member.Policies, "devs-read") {
		t.Fatalf("login auth identity_policies %v policies %v", member.IdentityPolicies, member.Policies)
	}
	if _, err := newClient(t, addr, member.ClientToken).KVv2("secret").Get(ctx, "devs"); err != nil {
		t.Fatalf("group member reading: %v", err)
	}
	gr, _ := c.Logical().Read("identity/group/id/" + gid)
	if !slices.Equal(strList(gr.Data["member_entity_ids"]), []string{first.EntityID}) {
		t.Fatalf("external group members %v", gr.Data["member_entity_ids"])
	}
	// The next login without the group takes the entity out, and with it
	// what every token of the entity could read through the group.
	login(t, addr, map[string]any{"name": "carol"})
	if _, err := newClient(t, addr, member.ClientToken).KVv2("secret").Get(ctx, "devs"); statusOf(err) != 403 {
		t.Fatalf("after leaving the group: %v", err)
	}

	// A disabled entity cannot log in.
	mustWrite(t, c, "identity/entity/id/"+first.EntityID, map[string]any{"disabled": true})
	if _, err := newClient(t, addr, "").Logical().Write("auth/stub/login", map[string]any{"name": "carol"}); statusOf(err) != 403 {
		t.Fatalf("login of a disabled entity: %v", err)
	}
}

// TestIdentityInAuditAndAccessReport: the audit log's auth block carries
// the entity ID, and the access report names the entity and its alias.
func TestIdentityInAuditAndAccessReport(t *testing.T) {
	ctx := context.Background()
	c, addr, _ := identityServer(t)
	logPath := filepath.Join(t.TempDir(), "audit.log")
	if err := c.Sys().EnableAuditWithOptions("file", &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": logPath}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().PutPolicy("app-read", `path "secret/data/app" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KVv2("secret").Put(ctx, "app", map[string]any{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	auth := login(t, addr, map[string]any{"name": "deploy-bot", "policies": "app-read"})
	mustWrite(t, c, "identity/entity/id/"+auth.EntityID, map[string]any{"name": "deploy-pipeline"})
	if _, err := newClient(t, addr, auth.ClientToken).KVv2("secret").Get(ctx, "app"); err != nil {
		t.Fatal(err)
	}

	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	// The raw line carries the entity ID in the auth block.
	var sawEntity bool
	for _, line := range splitLines(raw) {
		var e struct {
			Type string `json:"type"`
			Auth struct {
				EntityID string `json:"entity_id"`
			} `json:"auth"`
			Request struct {
				Path string `json:"path"`
			} `json:"request"`
		}
		if json.Unmarshal(line, &e) == nil && e.Request.Path == "secret/data/app" && e.Auth.EntityID == auth.EntityID {
			sawEntity = true
		}
	}
	if !sawEntity {
		t.Fatalf("no audit entry for the read carries entity_id %s", auth.EntityID)
	}

	rep, err := c.Logical().Read("sys/access-report/secret/data/app")
	if err != nil || rep == nil {
		t.Fatalf("access report: %v, %v", rep, err)
	}
	readers, _ := rep.Data["readers"].([]any)
	if len(readers) != 1 {
		t.Fatalf("readers %v", readers)
	}
	r := readers[0].(map[string]any)
	if r["entity_id"] != auth.EntityID || r["entity_name"] != "deploy-pipeline" || r["alias_name"] != "deploy-bot" || r["auth_mount"] != "auth/stub/" {
		t.Fatalf("reader %v", r)
	}
}

func splitLines(raw []byte) [][]byte {
	var out [][]byte
	start := 0
	for i, b := range raw {
		if b == '\n' {
			if i > start {
				out = append(out, raw[start:i])
			}
			start = i + 1
		}
	}
	return out
}
