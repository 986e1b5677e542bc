package compat

import (
	"net/http"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// headerClient is a client that adds headers to every request.
func headerClient(t *testing.T, addr, token string, h map[string]string) *vault.Client {
	t.Helper()
	c := newClient(t, addr, token)
	hdr := http.Header{}
	for k, v := range h {
		hdr.Set(k, v)
	}
	c.SetHeaders(hdr)
	return c
}

var spoofHeaders = []map[string]string{
	{"X-Forwarded-For": "127.0.0.2"},
	{"X-Forwarded-For": "127.0.0.2, 127.0.0.1"},
	{"X-Real-IP": "127.0.0.2"},
	{"Forwarded": "for=127.0.0.2"},
	{"X-Forwarded-For": "10.1.2.3", "X-Real-IP": "10.1.2.3", "True-Client-IP": "10.1.2.3", "X-Client-IP": "10.1.2.3"},
}

// TestProbeBoundCIDRSpoofing: with no trusted-proxy setting, forwarding
// headers do not change the address bound CIDRs are checked against,
// neither for a token's use nor for a login or an AppRole secret ID.
func TestProbeBoundCIDRSpoofing(t *testing.T) {
	root := devClient(t)
	addr := root.Address()
	enableUserpass(t, root)
	writeUser(t, root, "two", map[string]any{"password": "pw", "token_bound_cidrs": "127.0.0.2/32"})
	writeUser(t, root, "far", map[string]any{"password": "pw", "token_bound_cidrs": "10.0.0.0/8"})
	from2 := clientFrom(t, addr, "", "127.0.0.2")
	s, err := from2.Logical().Write("auth/userpass/login/two", map[string]any{"password": "pw"})
	if err != nil {
		t.Fatalf("login from 127.0.0.2: %v", err)
	}
	tok := s.Auth.ClientToken

	for _, h := range spoofHeaders {
		c := headerClient(t, addr, tok, h)
		if _, err := c.Auth().Token().LookupSelf(); statusOf(err) != http.StatusForbidden {
			t.Errorf("a token bound to 127.0.0.2 used from 127.0.0.1 with %v: %v, want 403", h, err)
		}
		anon := headerClient(t, addr, "", h)
		if _, err := anon.Logical().Write("auth/userpass/login/far", map[string]any{"password": "pw"}); statusOf(err) != http.StatusForbidden {
			t.Errorf("a login bound to 10.0.0.0/8 from 127.0.0.1 with %v: %v, want 403", h, err)
		}
	}

	// AppRole: secret_id_bound_cidrs and a secret ID's cidr_list.
	roleID := enableAppRole(t, root, "r", map[string]any{"secret_id_bound_cidrs": "10.0.0.0/8"})
	sid, _ := newSecretID(t, root, "r", nil)
	roleID2 := enableAppRole(t, root, "r2", nil)
	sid2, _ := newSecretID(t, root, "r2", map[string]any{"cidr_list": "10.0.0.0/8"})
	for _, h := range spoofHeaders {
		anon := headerClient(t, addr, "", h)
		for _, c := range []struct{ role, secret string }{{roleID, sid}, {roleID2, sid2}} {
			_, err := anon.Logical().Write("auth/approle/login", map[string]any{"role_id": c.role, "secret_id": c.secret})
			if st := statusOf(err); st != http.StatusBadRequest && st != http.StatusForbidden {
				t.Errorf("an AppRole login bound to 10.0.0.0/8 from 127.0.0.1 with %v: %v, want 400/403", h, err)
			}
		}
	}
}

// TestProbeRenewalAfterRevocationOfTheSource: a token whose entity was
// disabled cannot renew; disabling the auth mount that issued a token
// revokes it; a login token is not renewed through sys/leases/renew.
func TestProbeRenewalAfterRevocationOfTheSource(t *testing.T) {
	root := devClient(t)
	addr := root.Address()
	enableUserpass(t, root)
	writeUser(t, root, "alice", map[string]any{"password": "pw", "token_ttl": "10m", "token_max_ttl": "1h"})

	// A disabled entity.
	c, s := loginUserpass(t, root, "alice", "pw")
	mustWrite(t, root, "identity/entity/id/"+s.Auth.EntityID, map[string]any{"disabled": true})
	if _, err := c.Auth().Token().RenewSelf(0); statusOf(err) != http.StatusForbidden {
		t.Errorf("renew-self by a disabled entity's token: %v, want 403", err)
	}
	if _, err := root.Auth().Token().Renew(s.Auth.ClientToken, 0); err == nil {
		// A root renewing the token on its behalf is allowed to fail or
		// succeed, but the token must still be unusable.
		if _, err := c.Auth().Token().LookupSelf(); statusOf(err) != http.StatusForbidden {
			t.Errorf("a disabled entity's token after a renewal by root: %v, want 403", err)
		}
	}
	if _, err := newClient(t, addr, "").Logical().Write("auth/userpass/login/alice", map[string]any{"password": "pw"}); err == nil {
		t.Errorf("a disabled entity logged in again")
	}
	mustWrite(t, root, "identity/entity/id/"+s.Auth.EntityID, map[string]any{"disabled": false})

	// A login token cannot be renewed through sys/leases/renew, by itself
	// or by root, with its token, its accessor or a made-up lease ID.
	c, s = loginUserpass(t, root, "alice", "pw")
	before, err := c.Auth().Token().LookupSelf()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{s.Auth.ClientToken, s.Auth.Accessor, "auth/userpass/login/alice/" + s.Auth.Accessor, "auth/userpass/login/alice"} {
		for _, who := range []*vault.Client{c, root} {
			_, err := who.Logical().Write("sys/leases/renew", map[string]any{"lease_id": id, "increment": "100h"})
			if st := statusOf(err); st < 400 || st >= 500 {
				t.Errorf("sys/leases/renew with lease_id %.30s: %v, want a 4xx", id, err)
			}
		}
	}
	after, err := c.Auth().Token().LookupSelf()
	if err != nil {
		t.Fatal(err)
	}
	if exp, _ := after.TokenTTL(); exp > 10*time.Minute+time.Second {
		bttl, _ := before.TokenTTL()
		t.Errorf("the token's TTL grew from %v to %v through sys/leases/renew", bttl, exp)
	}

	// Disabling the mount revokes its tokens; they cannot renew.
	if err := root.Sys().DisableAuth("userpass"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Auth().Token().RenewSelf(0); statusOf(err) != http.StatusForbidden {
		t.Errorf("renew-self after its mount was disabled: %v, want 403", err)
	}
	if _, err := c.Auth().Token().LookupSelf(); statusOf(err) != http.StatusForbidden {
		t.Errorf("lookup-self after its mount was disabled: %v, want 403", err)
	}
	if _, err := root.Auth().Token().LookupAccessor(s.Auth.Accessor); err == nil {
		t.Errorf("the token's accessor still resolves after its mount was disabled")
	}
	// Re-enabling a mount at the same path does not bring the token back.
	enableUserpass(t, root)
	if _, err := c.Auth().Token().LookupSelf(); statusOf(err) != http.StatusForbidden {
		t.Errorf("lookup-self after the path was re-enabled: %v, want 403", err)
	}
}

// TestProbeDeletedEntityToken: a token whose entity was deleted is refused
// (Vault: "the entity on the token is invalid"), and cannot renew; a new
// login makes a new entity.
func TestProbeDeletedEntityToken(t *testing.T) {
	root := devClient(t)
	enableUserpass(t, root)
	writeUser(t, root, "alice", map[string]any{"password": "pw"})
	c, s := loginUserpass(t, root, "alice", "pw")
	if _, err := root.Logical().Delete("identity/entity/id/" + s.Auth.EntityID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Auth().Token().LookupSelf(); statusOf(err) != http.StatusForbidden {
		t.Errorf("lookup-self with a deleted entity: %v, want 403", err)
	}
	if _, err := c.Auth().Token().RenewSelf(0); statusOf(err) != http.StatusForbidden {
		t.Errorf("renew-self with a deleted entity: %v, want 403", err)
	}
	_, s2 := loginUserpass(t, root, "alice", "pw")
	if s2.Auth.EntityID == "" || s2.Auth.EntityID == s.Auth.EntityID {
		t.Fatalf("a new login's entity %q (the deleted one was %q)", s2.Auth.EntityID, s.Auth.EntityID)
	}
	// The old token stays refused even though alice has an entity again.
	if _, err := c.Auth().Token().LookupSelf(); statusOf(err) != http.StatusForbidden {
		t.Errorf("the old token after a new entity was made: %v, want 403", err)
	}
}

// TestProbeChildTokenKeepsBindings: a child token carries its parent's
// bound CIDRs and entity (as in Vault), so a token cannot shed its address
// binding, or escape its entity being disabled, by creating a child.
func TestProbeChildTokenKeepsBindings(t *testing.T) {
	root := devClient(t)
	addr := root.Address()
	enableUserpass(t, root)
	if err := root.Sys().PutPolicy("maker", `path "auth/token/create" { capabilities = ["update"] }
path "secret/data/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	writeUser(t, root, "bound", map[string]any{"password": "pw", "token_policies": "maker", "token_bound_cidrs": "127.0.0.2/32"})
	from2 := clientFrom(t, addr, "", "127.0.0.2")
	s, err := from2.Logical().Write("auth/userpass/login/bound", map[string]any{"password": "pw"})
	if err != nil {
		t.Fatalf("login from 127.0.0.2: %v", err)
	}
	parentEntity := s.Auth.EntityID
	from2.SetToken(s.Auth.ClientToken)
	child, err := from2.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"maker"}})
	if err != nil {
		t.Fatalf("creating a child from 127.0.0.2: %v", err)
	}
	if child.Auth.EntityID != parentEntity {
		t.Errorf("the child's entity_id %q, want its parent's %q", child.Auth.EntityID, parentEntity)
	}
	// The child works where its parent does, and nowhere else.
	from2.SetToken(child.Auth.ClientToken)
	if _, err := from2.Auth().Token().LookupSelf(); err != nil {
		t.Fatalf("the child from 127.0.0.2: %v", err)
	}
	from1 := newClient(t, addr, child.Auth.ClientToken)
	if _, err := from1.Auth().Token().LookupSelf(); statusOf(err) != http.StatusForbidden {
		t.Errorf("the child of a token bound to 127.0.0.2, used from 127.0.0.1: %v, want 403", err)
	}
	// A grandchild made from 127.0.0.2 is bound too.
	grand, err := from2.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"maker"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newClient(t, addr, grand.Auth.ClientToken).Auth().Token().LookupSelf(); statusOf(err) != http.StatusForbidden {
		t.Errorf("a grandchild used from 127.0.0.1: %v, want 403", err)
	}
	// Disabling the entity stops the child too.
	mustWrite(t, root, "identity/entity/id/"+parentEntity, map[string]any{"disabled": true})
	if _, err := from2.Auth().Token().LookupSelf(); statusOf(err) != http.StatusForbidden {
		t.Errorf("the child after its entity was disabled: %v, want 403", err)
	}
}
