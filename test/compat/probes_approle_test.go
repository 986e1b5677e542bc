package compat

import (
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/testutil/oidctest"
)

// TestProbeAppRoleCrossRole: an operator of role b (a token whose policy
// covers only auth/approle/role/b/*) cannot use, see or destroy role a's
// secret IDs, and a secret ID of one role never logs in with another's
// role ID.
func TestProbeAppRoleCrossRole(t *testing.T) {
	root := devClient(t)
	roleA := enableAppRole(t, root, "a", map[string]any{"token_policies": "a-pol"})
	roleB := enableAppRole(t, root, "b", map[string]any{"token_policies": "b-pol"})
	secretA, accA := newSecretID(t, root, "a", nil)
	secretB, _ := newSecretID(t, root, "b", nil)
	if err := root.Sys().PutPolicy("b-operator", `path "auth/approle/role/b/*" { capabilities = ["create", "read", "update", "delete", "list"] }`); err != nil {
		t.Fatal(err)
	}
	op := newClient(t, root.Address(), mustToken(t, root, "b-operator"))

	for _, c := range []struct{ roleID, secretID, what string }{
		{roleB, secretA, "a's secret ID with b's role ID"},
		{roleA, secretB, "b's secret ID with a's role ID"},
		{roleA, accA, "a's accessor as a secret ID"},
		{roleA, "", "a's role ID without a secret ID"},
		{secretA, roleA, "swapped"},
	} {
		if _, err := appRoleLogin(root, c.roleID, c.secretID); statusOf(err) != http.StatusBadRequest {
			t.Errorf("%s: %v, want 400", c.what, err)
		}
	}

	// Through role b's paths, role a's secret ID and accessor are unknown.
	if s, err := op.Logical().Write("auth/approle/role/b/secret-id/lookup", map[string]any{"secret_id": secretA}); err != nil || s != nil {
		t.Errorf("looking up a's secret ID through b: %v %v, want nothing", s, err)
	}
	if _, err := op.Logical().Write("auth/approle/role/b/secret-id/destroy", map[string]any{"secret_id": secretA}); err != nil {
		t.Errorf("destroying a's secret ID through b: %v, want a quiet no-op", err)
	}
	for _, p := range []string{"auth/approle/role/b/secret-id-accessor/destroy", "auth/approle/role/b/secret-id-accessor/lookup"} {
		if _, err := op.Logical().Write(p, map[string]any{"secret_id_accessor": accA}); statusOf(err) != http.StatusNotFound {
			t.Errorf("%s with a's accessor: %v, want 404", p, err)
		}
	}
	// Role a's own paths are out of the operator's policy, however spelled.
	for _, p := range []string{
		"auth/approle/role/a/secret-id-accessor/destroy",
		"auth/approle/role/A/secret-id-accessor/destroy",
		"auth/approle/role/b/../a/secret-id-accessor/destroy",
		"auth/approle/role/b%2F..%2Fa/secret-id-accessor/destroy",
	} {
		_, err := op.Logical().Write(p, map[string]any{"secret_id_accessor": accA})
		if st := statusOf(err); st != http.StatusForbidden && st != http.StatusBadRequest && st != http.StatusNotFound {
			t.Errorf("%s: %v, want 403 (or 400/404)", p, err)
		}
	}
	if _, err := op.Logical().Read("auth/approle/role/a/role-id"); statusOf(err) != http.StatusForbidden {
		t.Errorf("reading a's role ID: %v, want 403", err)
	}
	// After all that, a's secret ID still logs in as a.
	s, err := appRoleLogin(root, roleA, secretA)
	if err != nil {
		t.Fatalf("a's login after the probes: %v", err)
	}
	if s.Auth.Metadata["role_name"] != "a" {
		t.Fatalf("a's login metadata %v", s.Auth.Metadata)
	}
}

// TestProbeAppRoleDestroyedAndCustom: a destroyed secret ID does not log
// in, a custom secret ID cannot overwrite an existing one, and destroying
// a limited-use secret ID while logins race with it leaves no use behind.
func TestProbeAppRoleDestroyedAndCustom(t *testing.T) {
	root := devClient(t)
	roleID := enableAppRole(t, root, "r", map[string]any{"token_policies": "r-pol"})
	// The races below fail many logins on purpose; lockout would hide
	// whether a use was left behind.
	if err := root.Sys().TuneMount("auth/approle", vault.MountConfigInput{UserLockoutConfig: &vault.UserLockoutConfigInput{DisableLockout: ptr(true)}}); err != nil {
		t.Fatal(err)
	}

	s1, _ := newSecretID(t, root, "r", nil)
	if _, err := root.Logical().Write("auth/approle/role/r/secret-id/destroy", map[string]any{"secret_id": s1}); err != nil {
		t.Fatal(err)
	}
	s2, acc2 := newSecretID(t, root, "r", nil)
	if _, err := root.Logical().Write("auth/approle/role/r/secret-id-accessor/destroy", map[string]any{"secret_id_accessor": acc2}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{s1, s2} {
		if _, err := appRoleLogin(root, roleID, s); statusOf(err) != http.StatusBadRequest {
			t.Errorf("a destroyed secret ID: %v, want 400", err)
		}
	}

	// A custom secret ID equal to an existing one is refused; the existing
	// one keeps its limits.
	s3, _ := newSecretID(t, root, "r", map[string]any{"num_uses": 1, "metadata": `{"owner":"ops"}`})
	if _, err := root.Logical().Write("auth/approle/role/r/custom-secret-id", map[string]any{"secret_id": s3, "num_uses": 0}); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("a custom secret ID equal to an existing one: %v, want 400", err)
	}
	if _, err := appRoleLogin(root, roleID, s3); err != nil {
		t.Fatalf("the existing secret ID: %v", err)
	}
	if _, err := appRoleLogin(root, roleID, s3); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("a one-use secret ID's second login: %v, want 400 (the custom twin must not have reset its uses)", err)
	}

	// Races: logins against a 3-use secret ID while it is destroyed. At
	// most 3 succeed, and none after the destroy returned.
	for round := 0; round < 5; round++ {
		sid, _ := newSecretID(t, root, "r", map[string]any{"num_uses": 3})
		var ok atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if _, err := appRoleLogin(root, roleID, sid); err == nil {
					ok.Add(1)
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if _, err := root.Logical().Write("auth/approle/role/r/secret-id/destroy", map[string]any{"secret_id": sid}); err != nil {
				t.Errorf("destroy: %v", err)
			}
		}()
		close(start)
		wg.Wait()
		if n := ok.Load(); n > 3 {
			t.Fatalf("round %d: %d logins with a 3-use secret ID", round, n)
		}
		if _, err := appRoleLogin(root, roleID, sid); statusOf(err) != http.StatusBadRequest {
			t.Fatalf("round %d: a login after the destroy: %v, want 400", round, err)
		}
	}
}

// TestProbeAppRoleLoginTypes: role_id and secret_id of the wrong JSON type
// are refused with a 400, never a 500 or a login.
func TestProbeAppRoleLoginTypes(t *testing.T) {
	root := devClient(t)
	roleID := enableAppRole(t, root, "r", nil)
	sid, _ := newSecretID(t, root, "r", nil)
	addr := root.Address()
	for _, body := range []string{
		`{"role_id":["` + roleID + `","x"],"secret_id":"` + sid + `"}`,
		`{"role_id":{"id":"` + roleID + `"},"secret_id":"` + sid + `"}`,
		`{"role_id":"` + roleID + `","secret_id":["` + sid + `","` + sid + `"]}`,
		`{"role_id":"` + roleID + `","secret_id":{"$gt":""}}`,
		`{"role_id":"` + roleID + `","secret_id":true}`,
		`{"role_id":"*","secret_id":"*"}`,
		`{"role_id":"` + roleID + `","secret_id":"` + sid[:8] + `"}`,
		`{"role_id":"` + roleID[:8] + `","secret_id":"` + sid + `"}`,
		`{"role_id":"` + roleID + "\u0000" + `","secret_id":"` + sid + `"}`,
		`{"role_id":null,"secret_id":null}`,
	} {
		st, _, raw := rawRequest(t, http.MethodPost, addr+"/v1/auth/approle/login", "", body)
		if st != http.StatusBadRequest {
			t.Errorf("approle login %s: %d %s, want 400", body, st, raw)
		}
		noTokenIn(t, body, raw)
	}
	// Only the login path is open without a token.
	for _, p := range []string{"auth/approle/role/r/secret-id", "auth/approle/role/r/role-id", "auth/approle/role/r/custom-secret-id", "auth/approle/tidy/secret-id"} {
		st, _, raw := rawRequest(t, http.MethodPost, addr+"/v1/"+p, "", `{"secret_id":"mine"}`)
		if st != http.StatusForbidden {
			t.Errorf("POST %s without a token: %d %s, want 403", p, st, raw)
		}
	}
}

// TestProbeAppRoleLockoutVariants: failures spelled with whitespace around
// the role ID, or with it in a one-element list, count toward the same
// lock; the lock holds for every spelling and not for another role.
func TestProbeAppRoleLockoutVariants(t *testing.T) {
	root := devClient(t)
	roleA := enableAppRole(t, root, "a", nil)
	roleB := enableAppRole(t, root, "b", nil)
	sidA, _ := newSecretID(t, root, "a", nil)
	sidB, _ := newSecretID(t, root, "b", nil)
	if err := root.Sys().TuneMount("auth/approle", vault.MountConfigInput{UserLockoutConfig: &vault.UserLockoutConfigInput{LockoutThreshold: "3"}}); err != nil {
		t.Fatal(err)
	}
	anon := newClient(t, root.Address(), "")
	for _, id := range []any{" " + roleA, roleA + "\n", []string{roleA}} {
		if _, err := anon.Logical().Write("auth/approle/login", map[string]any{"role_id": id, "secret_id": "wrong"}); statusOf(err) != http.StatusBadRequest {
			t.Fatalf("a wrong secret ID for role_id %q: %v, want 400", id, err)
		}
	}
	for _, id := range []any{roleA, " " + roleA, []string{roleA}} {
		if _, err := anon.Logical().Write("auth/approle/login", map[string]any{"role_id": id, "secret_id": sidA}); statusOf(err) != http.StatusForbidden {
			t.Errorf("role a after three failures, role_id %q: %v, want 403 locked", id, err)
		}
	}
	if _, err := appRoleLogin(root, roleB, sidB); err != nil {
		t.Fatalf("role b while a is locked: %v", err)
	}
}

// TestProbeRoleCaseAroundDeny: role names are case-insensitive, ACL paths
// are not. An operator whose policy allows every role but denies "admin"
// must not reach the admin role by spelling it in capitals: not to mint an
// AppRole secret ID, rewrite a JWT role, or create a token through a token
// role.
func TestProbeRoleCaseAroundDeny(t *testing.T) {
	root := devClient(t)
	addr := root.Address()
	enableAppRole(t, root, "admin", map[string]any{"token_policies": "admin"})
	key := oidctest.NewEC(t, "k")
	mountJWT(t, root, "jwt", "jwt", map[string]any{"jwt_validation_pubkeys": []string{key.PublicPEM(t)}})
	mustWrite(t, root, "auth/jwt/role/admin", map[string]any{"role_type": "jwt", "user_claim": "sub", "bound_audiences": "arca", "bound_subject": "the-admin", "token_policies": "admin"})
	mustWrite(t, root, "auth/token/roles/admin", map[string]any{"allowed_policies": "admin"})
	if err := root.Sys().PutPolicy("operator", `
path "auth/approle/role/*" { capabilities = ["create", "read", "update", "delete", "list"] }
path "auth/approle/role/admin" { capabilities = ["deny"] }
path "auth/approle/role/admin/*" { capabilities = ["deny"] }
path "auth/jwt/role/*" { capabilities = ["create", "read", "update", "delete"] }
path "auth/jwt/role/admin" { capabilities = ["deny"] }
path "auth/token/create/*" { capabilities = ["update"] }
path "auth/token/create/admin" { capabilities = ["deny"] }
path "auth/token/roles/*" { capabilities = ["create", "read", "update"] }
path "auth/token/roles/admin" { capabilities = ["deny"] }
`); err != nil {
		t.Fatal(err)
	}
	op := newClient(t, addr, mustToken(t, root, "operator"))
	for _, spelled := range []string{"ADMIN", "Admin", "aDmIn"} {
		for _, w := range []struct {
			path string
			data map[string]any
		}{
			{"auth/approle/role/" + spelled + "/secret-id", nil},
			{"auth/approle/role/" + spelled + "/custom-secret-id", map[string]any{"secret_id": "operator-chose-this"}},
			{"auth/approle/role/" + spelled, map[string]any{"token_policies": "admin,extra"}},
			{"auth/approle/role/" + spelled + "/role-id", map[string]any{"role_id": "operator-chose-this"}},
			{"auth/jwt/role/" + spelled, map[string]any{"bound_subject": "operator"}},
			{"auth/token/create/" + spelled, map[string]any{"policies": "admin"}},
			{"auth/token/roles/" + spelled, map[string]any{"allowed_policies": "admin,root-ish"}},
		} {
			s, err := op.Logical().Write(w.path, w.data)
			if st := statusOf(err); st != http.StatusBadRequest && st != http.StatusForbidden {
				t.Errorf("operator writing %s: %v %v, want 400 or 403", w.path, s, err)
			}
		}
		if s, err := op.Logical().Read("auth/approle/role/" + spelled + "/role-id"); err == nil && s != nil {
			t.Errorf("operator read the admin role's role ID as %s", spelled)
		}
	}
	// The admin roles are as root left them.
	j, _ := root.Logical().Read("auth/jwt/role/admin")
	if j.Data["bound_subject"] != "the-admin" {
		t.Fatalf("the JWT admin role changed: %v", j.Data)
	}
	list, _ := root.Logical().List("auth/approle/role/admin/secret-id")
	if list != nil && len(toStrings(list.Data["keys"])) > 0 {
		t.Fatalf("the admin AppRole role has secret IDs: %v", list.Data["keys"])
	}
	// Lowercase roles the operator may manage still work.
	if _, err := op.Logical().Write("auth/approle/role/app", map[string]any{"token_policies": "app"}); err != nil {
		t.Fatalf("operator writing role app: %v", err)
	}
}
