package compat

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	vault "github.com/hashicorp/vault/api"
)

// identityRig is a server with userpass users alice (the victim) and
// mallory (the attacker), each logged in once so each has an entity.
type identityRig struct {
	root, mallory, alice *vault.Client
	upAcc                string
	malloryEntity        string
	aliceEntity          string
}

func newIdentityRig(t *testing.T, malloryPolicies string) *identityRig {
	t.Helper()
	root := devClient(t)
	r := &identityRig{root: root, upAcc: enableUserpass(t, root)}
	writeUser(t, root, "alice", map[string]any{"password": "alice pw"})
	writeUser(t, root, "mallory", map[string]any{"password": "mallory pw", "token_policies": malloryPolicies})
	var s *vault.Secret
	r.alice, s = loginUserpass(t, root, "alice", "alice pw")
	r.aliceEntity = s.Auth.EntityID
	r.mallory, s = loginUserpass(t, root, "mallory", "mallory pw")
	r.malloryEntity = s.Auth.EntityID
	if r.aliceEntity == "" || r.malloryEntity == "" || r.aliceEntity == r.malloryEntity {
		t.Fatalf("entities: alice %q mallory %q", r.aliceEntity, r.malloryEntity)
	}
	return r
}

func wantDenied(t *testing.T, what string, err error) {
	t.Helper()
	if statusOf(err) != http.StatusForbidden {
		t.Errorf("%s: %v, want 403", what, err)
	}
}

// policiesOfEntity reads an entity's policies as root.
func policiesOfEntity(t *testing.T, root *vault.Client, id string) []string {
	t.Helper()
	e, err := root.Logical().Read("identity/entity/id/" + id)
	if err != nil || e == nil {
		t.Fatalf("reading entity %s: %v %v", id, e, err)
	}
	return strList(e.Data["policies"])
}

// TestProbeIdentityDefaultPolicy: with the default policy alone a token
// reads its own entity and nothing else of the identity store.
func TestProbeIdentityDefaultPolicy(t *testing.T) {
	r := newIdentityRig(t, "")
	m := r.mallory.Logical()
	own, err := m.Read("identity/entity/id/" + r.malloryEntity)
	if err != nil || own == nil {
		t.Fatalf("reading its own entity: %v %v", own, err)
	}
	if _, err := m.Read("identity/entity/name/" + own.Data["name"].(string)); err != nil {
		t.Fatalf("reading its own entity by name: %v", err)
	}
	victim, _ := r.root.Logical().Read("identity/entity/id/" + r.aliceEntity)
	victimName := victim.Data["name"].(string)
	aliasID := strList(nil)
	for _, a := range victim.Data["aliases"].([]any) {
		aliasID = append(aliasID, a.(map[string]any)["id"].(string))
	}

	reads := []string{
		"identity/entity/id/" + r.aliceEntity,
		"identity/entity/name/" + victimName,
		"identity/entity/id/" + r.malloryEntity + "/../" + r.aliceEntity,
		"identity/entity-alias/id/" + aliasID[0],
		"identity/group/id/x",
	}
	for _, p := range reads {
		_, err := m.Read(p)
		if st := statusOf(err); st != http.StatusForbidden && st != http.StatusBadRequest {
			t.Errorf("reading %s: %v, want 403 (or 400 for a bad path)", p, err)
		}
	}
	for _, p := range []string{"identity/entity/id", "identity/entity/name", "identity/entity-alias/id", "identity/group/id", "identity/group/name", "identity/group-alias/id"} {
		_, err := m.List(p)
		wantDenied(t, "listing "+p, err)
	}
	writes := []struct {
		path string
		data map[string]any
	}{
		{"identity/entity/id/" + r.malloryEntity, map[string]any{"policies": "admin"}},
		{"identity/entity/id/" + r.aliceEntity, map[string]any{"disabled": true}},
		{"identity/entity", map[string]any{"name": "mallory2", "policies": "admin"}},
		{"identity/entity-alias", map[string]any{"name": "mallory", "mount_accessor": r.upAcc, "canonical_id": r.aliceEntity}},
		{"identity/entity-alias/id/" + aliasID[0], map[string]any{"canonical_id": r.malloryEntity}},
		{"identity/group", map[string]any{"name": "g", "policies": "admin", "member_entity_ids": r.malloryEntity}},
		{"identity/group-alias", map[string]any{"name": "admins", "mount_accessor": r.upAcc, "canonical_id": "x"}},
		{"identity/lookup/entity", map[string]any{"name": victimName}},
		{"identity/lookup/group", map[string]any{"name": "g"}},
	}
	for _, w := range writes {
		_, err := m.Write(w.path, w.data)
		wantDenied(t, "writing "+w.path, err)
	}
	_, err = m.Delete("identity/entity/id/" + r.aliceEntity)
	wantDenied(t, "deleting alice's entity", err)
	if pols := policiesOfEntity(t, r.root, r.malloryEntity); len(pols) != 0 {
		t.Fatalf("mallory's entity policies changed to %v", pols)
	}
	if a, _ := r.root.Logical().Read("identity/entity/id/" + r.aliceEntity); a == nil || a.Data["disabled"] != false {
		t.Fatalf("alice's entity changed: %v", a)
	}
}

// TestProbeIdentityDelegated: a token whose policy grants identity writes
// (a delegated identity admin) still cannot give anyone root, steal an
// existing alias, or make a group its own member.
func TestProbeIdentityDelegated(t *testing.T) {
	root := devClient(t)
	if err := root.Sys().PutPolicy("id-admin", `path "identity/*" { capabilities = ["create", "read", "update", "list"] }`); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().PutPolicy("secrets", `path "secret/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	r := &identityRig{root: root, upAcc: enableUserpass(t, root)}
	writeUser(t, root, "alice", map[string]any{"password": "alice pw"})
	writeUser(t, root, "mallory", map[string]any{"password": "mallory pw", "token_policies": "id-admin"})
	_, s := loginUserpass(t, root, "alice", "alice pw")
	r.aliceEntity = s.Auth.EntityID
	mustWrite(t, root, "identity/entity/id/"+r.aliceEntity, map[string]any{"policies": "secrets"})
	var ms *vault.Secret
	r.mallory, ms = loginUserpass(t, root, "mallory", "mallory pw")
	r.malloryEntity = ms.Auth.EntityID
	m := r.mallory.Logical()

	for _, pols := range []any{"root", "ROOT", " root ", []string{"default", "root"}, "x,root"} {
		// (Mallory's own entity path is read-only to her: the default
		// policy's exact path for it wins over identity/*, as in Vault.)
		for _, p := range []string{"identity/entity/id/" + r.aliceEntity, "identity/entity"} {
			data := map[string]any{"policies": pols}
			if p == "identity/entity" {
				data["name"] = "evil"
			}
			if _, err := m.Write(p, data); statusOf(err) != http.StatusBadRequest {
				t.Errorf("policies %q on %s: %v, want 400", pols, p, err)
			}
		}
		if _, err := m.Write("identity/group", map[string]any{"name": "evil-g", "policies": pols, "member_entity_ids": r.malloryEntity}); statusOf(err) != http.StatusBadRequest {
			t.Errorf("group policies %q: %v, want 400", pols, err)
		}
	}
	// Mallory's token is still not root anywhere.
	if _, err := r.mallory.Sys().ListPolicies(); statusOf(err) != http.StatusForbidden {
		t.Fatalf("mallory listing policies: %v, want 403", err)
	}

	// Alice's login alias cannot be duplicated onto mallory's entity, nor
	// mallory's alias pointed at alice's entity by creating a twin.
	for _, a := range []map[string]any{
		{"name": "alice", "mount_accessor": r.upAcc, "canonical_id": r.malloryEntity},
		{"name": "mallory", "mount_accessor": r.upAcc, "canonical_id": r.aliceEntity},
	} {
		if _, err := m.Write("identity/entity-alias", a); statusOf(err) != http.StatusBadRequest {
			t.Errorf("a twin of alias %v: %v, want 400", a["name"], err)
		}
	}
	// An alias on a mount accessor that does not exist is refused.
	if _, err := m.Write("identity/entity-alias", map[string]any{"name": "x", "mount_accessor": "auth_userpass_nope", "canonical_id": r.malloryEntity}); statusOf(err) != http.StatusBadRequest {
		t.Errorf("an alias on an unknown mount accessor: %v, want 400", err)
	}
	// Alice still logs in as herself, with her policies.
	_, s = loginUserpass(t, root, "alice", "alice pw")
	if s.Auth.EntityID != r.aliceEntity {
		t.Fatalf("alice's login resolved to %s, want %s", s.Auth.EntityID, r.aliceEntity)
	}
	_, ms = loginUserpass(t, root, "mallory", "mallory pw")
	if ms.Auth.EntityID != r.malloryEntity {
		t.Fatalf("mallory's login resolved to %s, want her own %s", ms.Auth.EntityID, r.malloryEntity)
	}

	// Groups: a group cannot hold itself, directly or through a cycle.
	ga := mustWrite(t, r.mallory, "identity/group", map[string]any{"name": "ga"}).Data["id"].(string)
	gb := mustWrite(t, r.mallory, "identity/group", map[string]any{"name": "gb", "member_group_ids": ga}).Data["id"].(string)
	gc := mustWrite(t, r.mallory, "identity/group", map[string]any{"name": "gc", "member_group_ids": gb}).Data["id"].(string)
	for _, w := range []struct{ id, members string }{{ga, ga}, {ga, gb}, {ga, gc}, {gb, gc + "," + ga}} {
		if _, err := m.Write("identity/group/id/"+w.id, map[string]any{"member_group_ids": w.members}); statusOf(err) != http.StatusBadRequest {
			t.Errorf("member_group_ids %s on %s: %v, want 400 (cycle)", w.members, w.id, err)
		}
	}
	if _, err := m.Write("identity/group", map[string]any{"name": "gself", "id": "fixed", "member_group_ids": "fixed"}); statusOf(err) != http.StatusBadRequest {
		t.Errorf("a new group naming itself a member: %v, want 400", err)
	}
	// The identity store still answers (no loop) and mallory's token works.
	if _, err := r.mallory.Auth().Token().LookupSelf(); err != nil {
		t.Fatalf("lookup-self after the group probes: %v", err)
	}
	g, err := root.Logical().Read("identity/group/id/" + ga)
	if err != nil || g == nil || len(strList(g.Data["member_group_ids"])) != 0 {
		t.Fatalf("group ga after the probes: %v %v", g, err)
	}
	for _, id := range []string{r.malloryEntity, r.aliceEntity} {
		if pols := policiesOfEntity(t, root, id); slices.Contains(pols, "root") {
			t.Fatalf("entity %s has root: %v", id, pols)
		}
	}
}

// TestProbePolicyNameCaseAroundDeny: policy names are kept in lowercase. A
// policy admin who may write every policy but "admin" must not rewrite it
// as ADMIN, " admin" or through the legacy sys/policy path.
func TestProbePolicyNameCaseAroundDeny(t *testing.T) {
	root := devClient(t)
	addr := root.Address()
	const adminRules = `path "secret/*" { capabilities = ["read"] }`
	if err := root.Sys().PutPolicy("admin", adminRules); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().PutPolicy("policy-admin", `
path "sys/policies/acl/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "sys/policies/acl/admin" { capabilities = ["deny"] }
path "sys/policy/*" { capabilities = ["create", "read", "update", "delete"] }
path "sys/policy/admin" { capabilities = ["deny"] }
`); err != nil {
		t.Fatal(err)
	}
	pa := newClient(t, addr, mustToken(t, root, "policy-admin"))
	evil := `path "*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }`
	for _, p := range []string{"sys/policies/acl/ADMIN", "sys/policies/acl/Admin", "sys/policies/acl/admin%20", "sys/policies/acl/%20admin", "sys/policy/ADMIN", "sys/policy/Admin"} {
		body := `{"policy":` + strconvQuote(evil) + `}`
		st, _, raw := rawRequest(t, http.MethodPut, addr+"/v1/"+p, pa.Token(), body)
		if st != http.StatusBadRequest && st != http.StatusForbidden {
			t.Errorf("policy admin writing %s: %d %s, want 400 or 403", p, st, raw)
		}
		st, _, raw = rawRequest(t, http.MethodDelete, addr+"/v1/"+p, pa.Token(), "")
		if st != http.StatusBadRequest && st != http.StatusForbidden {
			t.Errorf("policy admin deleting %s: %d %s, want 400 or 403", p, st, raw)
		}
	}
	got, err := root.Sys().GetPolicy("admin")
	if err != nil || got != adminRules {
		t.Fatalf("the admin policy is now %q (%v)", got, err)
	}
	// Lowercase policies the admin may manage still work.
	if err := pa.Sys().PutPolicy("team", `path "secret/data/team/*" { capabilities = ["read"] }`); err != nil {
		t.Fatalf("writing policy team: %v", err)
	}
}

func strconvQuote(s string) string { b, _ := json.Marshal(s); return string(b) }

// TestProbeMountPathSpellingsAroundDeny: an operator who may manage mounts
// but not userpass/ or secret/ cannot disable or tune them by spelling the
// path with a trailing slash or doubled slashes.
func TestProbeMountPathSpellingsAroundDeny(t *testing.T) {
	root := devClient(t)
	addr := root.Address()
	enableUserpass(t, root)
	if err := root.Sys().PutPolicy("ops", `
path "sys/auth/*" { capabilities = ["create", "update", "delete", "read", "sudo"] }
path "sys/auth/userpass" { capabilities = ["deny"] }
path "sys/auth/userpass/tune" { capabilities = ["deny"] }
path "sys/mounts/*" { capabilities = ["create", "update", "delete", "read", "sudo"] }
path "sys/mounts/secret" { capabilities = ["deny"] }
path "sys/mounts/secret/tune" { capabilities = ["deny"] }
`); err != nil {
		t.Fatal(err)
	}
	tok := mustToken(t, root, "ops")
	for _, p := range []string{"sys/auth/userpass/", "sys/auth/userpass//", "sys/auth//userpass", "sys/mounts/secret/", "sys/mounts//secret", "sys/mounts/secret//"} {
		if st, _, raw := rawRequest(t, http.MethodDelete, addr+"/v1/"+p, tok, ""); st != http.StatusForbidden {
			t.Errorf("DELETE %s: %d %s, want 403", p, st, raw)
		}
	}
	for _, p := range []string{"sys/auth/userpass//tune", "sys/auth//userpass/tune", "sys/mounts//secret/tune", "sys/mounts/secret//tune"} {
		if st, _, raw := rawRequest(t, http.MethodPost, addr+"/v1/"+p, tok, `{"max_lease_ttl":"1s"}`); st != http.StatusForbidden && st != http.StatusBadRequest {
			t.Errorf("POST %s: %d %s, want 403 (or 400)", p, st, raw)
		}
	}
	auths, _ := root.Sys().ListAuth()
	mounts, _ := root.Sys().ListMounts()
	if auths["userpass/"] == nil || mounts["secret/"] == nil {
		t.Fatalf("a denied mount was disabled: userpass %v secret %v", auths["userpass/"] != nil, mounts["secret/"] != nil)
	}
	// Other mounts stay the operator's to manage, in either spelling.
	ops := newClient(t, addr, tok)
	if err := ops.Sys().Mount("kv2/", &vault.MountInput{Type: "kv"}); err != nil {
		t.Fatalf("mounting kv2/: %v", err)
	}
	if err := ops.Sys().Unmount("kv2"); err != nil {
		t.Fatalf("unmounting kv2: %v", err)
	}
}
