package compat

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/testutil/oidctest"
)

// These probes play an attacker with no token against the userpass login
// surface. Each asserts the safe answer: no token, a 4xx, and nothing
// changed behind the login path.

// noTokenIn fails when a response body carries a client token.
func noTokenIn(t *testing.T, what string, body []byte) {
	t.Helper()
	var out struct {
		Auth *struct {
			ClientToken string `json:"client_token"`
		} `json:"auth"`
	}
	_ = json.Unmarshal(body, &out)
	if out.Auth != nil && out.Auth.ClientToken != "" {
		t.Fatalf("%s issued a token: %s", what, body)
	}
}

func TestProbeUserpassLoginPathTricks(t *testing.T) {
	root := devClient(t)
	enableUserpass(t, root)
	writeUser(t, root, "alice", map[string]any{"password": "alice pw"})
	writeUser(t, root, "bob", map[string]any{"password": "bob pw"})
	addr := root.Address()
	body := `{"password":"alice pw"}`

	for _, p := range []string{
		"auth/userpass/login/..",
		"auth/userpass/login/%2e%2e",
		"auth/userpass/login/.",
		"auth/userpass/login/alice/../users/alice",
		"auth/userpass/login/alice/%2e%2e/%2e%2e/users/alice",
		"auth/userpass/login/alice%2F..%2F..%2Fusers%2Falice",
		"auth/userpass/login/alice%2Fx",
		"auth/userpass/login/alice%00",
		"auth/userpass/login/alice%00bob",
		"auth/userpass/login/" + strings.Repeat("a", 70000),
		"auth/userpass/login/",
		"auth/userpass/login",
		"auth/userpass/login/alice/password",
		"auth/userpass//login/alice/..",
	} {
		st, _, raw := rawRequest(t, http.MethodPost, addr+"/v1/"+p, "", body)
		if st < 400 || st >= 500 {
			t.Errorf("POST %.80s without a token: %d %s, want a 4xx", p, st, raw)
		}
		noTokenIn(t, p, raw)
	}

	// A trailing slash is not a way around the password.
	st, _, raw := rawRequest(t, http.MethodPost, addr+"/v1/auth/userpass/login/alice/", "", `{"password":"wrong"}`)
	if st < 400 || st >= 500 {
		t.Fatalf("login/alice/ with a wrong password: %d %s, want a 4xx", st, raw)
	}
	noTokenIn(t, "login/alice/ with a wrong password", raw)

	// Paths next to login are not served without a token: changing alice's
	// password, reading her, listing users.
	for _, r := range []struct{ method, path, body string }{
		{http.MethodPost, "auth/userpass/users/alice", `{"password":"mine now"}`},
		{http.MethodPost, "auth/userpass/users/alice/password", `{"password":"mine now"}`},
		{http.MethodPost, "auth/userpass/users/alice/policies", `{"token_policies":"root"}`},
		{http.MethodPost, "auth/userpass/users/mallory", `{"password":"x","token_policies":"root"}`},
		{http.MethodGet, "auth/userpass/users/alice", ""},
		{"LIST", "auth/userpass/users", ""},
		{http.MethodDelete, "auth/userpass/users/alice", ""},
		{http.MethodPost, "auth/userpass/loginx/alice", body},
		{http.MethodPost, "auth/userpass/Login/alice", body},
		{http.MethodPost, "auth/userpass/users/../login/alice", body},
	} {
		st, _, raw := rawRequest(t, r.method, addr+"/v1/"+r.path, "", r.body)
		if st != http.StatusForbidden && st != http.StatusBadRequest {
			t.Errorf("%s %s without a token: %d %s, want 403 (or 400 for a bad path)", r.method, r.path, st, raw)
		}
	}
	// Alice's password still works, and "mine now" does not.
	loginUserpass(t, root, "alice", "alice pw")
	if err := tryLogin(newClient(t, addr, ""), "alice", "mine now"); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("alice with the attacker's password: %v, want 400", err)
	}
	if u, _ := root.Logical().Read("auth/userpass/users/mallory"); u != nil {
		t.Fatal("a user was created without a token")
	}

	// The URL names the user; a username in the body does not switch it.
	st, _, raw = rawRequest(t, http.MethodPost, addr+"/v1/auth/userpass/login/bob", "", `{"username":"alice","password":"alice pw"}`)
	if st != http.StatusBadRequest {
		t.Fatalf("login/bob with alice's name and password in the body: %d %s, want 400", st, raw)
	}
	noTokenIn(t, "login/bob with username=alice in the body", raw)
}

func TestProbeUserpassLoginTypeConfusion(t *testing.T) {
	root := devClient(t)
	enableUserpass(t, root)
	writeUser(t, root, "alice", map[string]any{"password": "alice pw"})
	writeUser(t, root, "num", map[string]any{"password": "12345"})
	addr := root.Address()

	for _, body := range []string{
		`{"password":["alice pw","x"]}`,
		`{"password":{"alice pw":true}}`,
		`{"password":{"$ne":""}}`,
		`{"password":true}`,
		`{"password":null}`,
		`{"password":""}`,
		`{"password":[]}`,
		`{}`,
		`[]`,
		`"alice pw"`,
		`{"password":"alice pw"`,
		`{"password":"alice pw"} {"password":"x"}`,
		`{"password":1e400}`,
		"\x00",
	} {
		st, _, raw := rawRequest(t, http.MethodPost, addr+"/v1/auth/userpass/login/alice", "", body)
		if st != http.StatusBadRequest {
			t.Errorf("login with body %q: %d %s, want 400", body, st, raw)
		}
		noTokenIn(t, body, raw)
		if bytes.Contains(raw, []byte("alice pw")) {
			t.Errorf("the error for %q echoes the password: %s", body, raw)
		}
	}
	// A JSON number is the string of its digits, as in Vault (weak decoding).
	st, _, raw := rawRequest(t, http.MethodPost, addr+"/v1/auth/userpass/login/num", "", `{"password":12345}`)
	if st != http.StatusOK {
		t.Fatalf("password given as a number: %d %s, want 200 as Vault", st, raw)
	}
	// A number that reads differently as a string does not match.
	st, _, raw = rawRequest(t, http.MethodPost, addr+"/v1/auth/userpass/login/num", "", `{"password":12345.0}`)
	if st != http.StatusBadRequest && st != http.StatusOK {
		t.Fatalf("password 12345.0: %d %s", st, raw)
	}
}

func TestProbeLoginEnormousBodies(t *testing.T) {
	root := devClient(t)
	enableUserpass(t, root)
	enableAppRole(t, root, "r", map[string]any{})
	writeUser(t, root, "alice", map[string]any{"password": "alice pw"})
	addr := root.Address()
	huge := `{"password":"` + strings.Repeat("A", 40<<20) + `"}`
	for _, p := range []string{"auth/userpass/login/alice", "auth/approle/login"} {
		st, _, raw := rawRequest(t, http.MethodPost, addr+"/v1/"+p, "", huge)
		if st != http.StatusRequestEntityTooLarge {
			t.Errorf("a 40 MiB login body to %s: %d %.200s, want 413", p, st, raw)
		}
	}
	// A password longer than bcrypt takes is refused like any wrong one,
	// and never logs in as the user whose password it starts with.
	long := strings.Repeat("p", 72)
	writeUser(t, root, "longpw", map[string]any{"password": long})
	st, _, raw := rawRequest(t, http.MethodPost, addr+"/v1/auth/userpass/login/longpw", "", `{"password":"`+long+`EXTRA"}`)
	if st != http.StatusBadRequest {
		t.Fatalf("a password with bytes past bcrypt's 72: %d %s, want 400", st, raw)
	}
	noTokenIn(t, "an over-long password", raw)
	// Deeply nested JSON is refused, not a stack exhaustion.
	deep := `{"password":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}`
	st, _, _ = rawRequest(t, http.MethodPost, addr+"/v1/auth/userpass/login/alice", "", deep)
	if st != http.StatusBadRequest {
		t.Fatalf("deeply nested JSON: %d, want 400", st)
	}
	// Many fields are refused or ignored, never served as a login.
	var b strings.Builder
	b.WriteString(`{"password":"wrong"`)
	for i := 0; i < 200000; i++ {
		b.WriteString(`,"f` + strings.Repeat("x", 1) + string(rune('a'+i%26)) + `":1`)
	}
	b.WriteString("}")
	st, _, raw = rawRequest(t, http.MethodPost, addr+"/v1/auth/userpass/login/alice", "", b.String())
	if st < 400 || st >= 500 {
		t.Fatalf("a body with many fields: %d %.200s, want a 4xx", st, raw)
	}
}

// TestProbeLockoutCaseVariants: userpass lowercases names, so failures
// spread across Alice, ALICE and alice count toward one lock, and the lock
// holds for every spelling.
func TestProbeLockoutCaseVariants(t *testing.T) {
	root := devClient(t)
	acc := enableUserpass(t, root)
	if err := root.Sys().TuneMount("auth/userpass", vault.MountConfigInput{
		UserLockoutConfig: &vault.UserLockoutConfigInput{LockoutThreshold: "3"},
	}); err != nil {
		t.Fatal(err)
	}
	writeUser(t, root, "alice", map[string]any{"password": "right"})
	anon := newClient(t, root.Address(), "")
	for _, n := range []string{"Alice", "ALICE", "aLiCe"} {
		failLogins(t, anon, n, 1)
	}
	for _, n := range []string{"alice", "Alice", "ALICE"} {
		wantLocked(t, tryLogin(anon, n, "right"), n)
	}
	byMount, total := lockedUsers(t, root, acc)
	if total != 1 || len(byMount[acc]) != 1 || byMount[acc][0] != "alice" {
		t.Fatalf("locked users %v (total %d), want alice once", byMount, total)
	}
}

// TestProbeLockoutPerMount: a lock on one userpass mount does not lock the
// same name on another, and unlocking on one does not unlock the other.
func TestProbeLockoutPerMount(t *testing.T) {
	root := devClient(t)
	accA := enableUserpass(t, root)
	if err := root.Sys().EnableAuthWithOptions("up2", &vault.EnableAuthOptions{Type: "userpass"}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"userpass", "up2"} {
		if err := root.Sys().TuneMount("auth/"+m, vault.MountConfigInput{
			UserLockoutConfig: &vault.UserLockoutConfigInput{LockoutThreshold: "2"},
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := root.Logical().Write("auth/"+m+"/users/alice", map[string]any{"password": "right"}); err != nil {
			t.Fatal(err)
		}
	}
	anon := newClient(t, root.Address(), "")
	failLogins(t, anon, "alice", 2)
	wantLocked(t, tryLogin(anon, "alice", "right"), "alice on userpass/")
	if _, err := anon.Logical().Write("auth/up2/login/alice", map[string]any{"password": "right"}); err != nil {
		t.Fatalf("alice on up2/ while locked on userpass/: %v", err)
	}
	// The lock survives a login on the other mount.
	wantLocked(t, tryLogin(anon, "alice", "right"), "alice on userpass/ after up2/")
	byMount, total := lockedUsers(t, root, "")
	if total != 1 || len(byMount[accA]) != 1 {
		t.Fatalf("locked users %v (total %d), want only alice under %s", byMount, total, accA)
	}
}

// TestProbeLoginCannotMintRoot: an operator who may write userpass users,
// AppRole roles or JWT roles gives them the root policy under any spelling;
// no login yields a token that acts as root.
func TestProbeLoginCannotMintRoot(t *testing.T) {
	root := devClient(t)
	addr := root.Address()
	enableUserpass(t, root)
	roleSettings := map[string]any{}
	enableAppRole(t, root, "base", roleSettings)
	key := oidctest.NewEC(t, "k")
	const iss = "https://issuer.example"
	mountJWT(t, root, "jwt", "jwt", map[string]any{"jwt_validation_pubkeys": []string{key.PublicPEM(t)}, "bound_issuer": iss})
	for i, pol := range []string{"root", "ROOT", " root", "root ", "Root,default", "default, root"} {
		name := "u" + string(rune('a'+i))
		_, uerr := root.Logical().Write("auth/userpass/users/"+name, map[string]any{"password": "pw", "token_policies": pol})
		_, rerr := root.Logical().Write("auth/approle/role/"+name, map[string]any{"token_policies": pol})
		if uerr == nil {
			s, err := newClient(t, addr, "").Logical().Write("auth/userpass/login/"+name, map[string]any{"password": "pw"})
			notRoot(t, addr, "userpass with "+pol, s, err)
		}
		if rerr == nil {
			rid, _ := root.Logical().Read("auth/approle/role/" + name + "/role-id")
			sid, _ := newSecretID(t, root, name, nil)
			s, err := appRoleLogin(root, rid.Data["role_id"].(string), sid)
			notRoot(t, addr, "approle with "+pol, s, err)
		}
		if _, err := root.Logical().Write("auth/jwt/role/"+name, map[string]any{"role_type": "jwt", "user_claim": "sub", "bound_audiences": "arca", "token_policies": pol}); err == nil {
			s, err := newClient(t, addr, "").Logical().Write("auth/jwt/login", map[string]any{"role": name, "jwt": oidctest.Sign(t, key, probeClaims(iss, "svc"))})
			notRoot(t, addr, "jwt with "+pol, s, err)
		}
	}
}

// notRoot fails if a login succeeded with a token that can do what only
// root can (list policies, read sys/auth).
func notRoot(t *testing.T, addr, what string, s *vault.Secret, err error) {
	t.Helper()
	if err != nil {
		if st := statusOf(err); st < 400 || st >= 500 {
			t.Errorf("%s: %v, want a 4xx refusal or a non-root token", what, err)
		}
		return
	}
	c := newClient(t, addr, s.Auth.ClientToken)
	if _, err := c.Sys().ListPolicies(); statusOf(err) != http.StatusForbidden {
		t.Errorf("%s: the login token lists policies (%v): it acts as root; policies %v", what, err, s.Auth.Policies)
	}
	if _, err := c.Sys().ListAuth(); statusOf(err) != http.StatusForbidden {
		t.Errorf("%s: the login token reads sys/auth (%v)", what, err)
	}
}

// TestProbeOnlyLoginPathsAreOpen: on every login method, the paths next
// to login (config, roles, users, secret IDs) need a token.
func TestProbeOnlyLoginPathsAreOpen(t *testing.T) {
	root := devClient(t)
	addr := root.Address()
	enableUserpass(t, root)
	enableAppRole(t, root, "r", nil)
	key := oidctest.NewEC(t, "k")
	mountJWT(t, root, "jwt", "jwt", map[string]any{"jwt_validation_pubkeys": []string{key.PublicPEM(t)}})
	mustWrite(t, root, "auth/jwt/role/r", map[string]any{"role_type": "jwt", "user_claim": "sub", "bound_audiences": "arca"})
	for _, r := range []struct{ method, path, body string }{
		{http.MethodGet, "auth/jwt/config", ""},
		{http.MethodPost, "auth/jwt/config", `{"jwks_url":"http://127.0.0.1:1/keys"}`},
		{http.MethodPost, "auth/jwt/role/r", `{"token_policies":"admin"}`},
		{http.MethodGet, "auth/jwt/role/r", ""},
		{"LIST", "auth/jwt/role", ""},
		{http.MethodPost, "auth/jwt/login/extra", `{"role":"r","jwt":"x"}`},
		{http.MethodGet, "auth/approle/role/r", ""},
		{http.MethodPost, "auth/approle/role/r", `{"token_policies":"admin"}`},
		{"LIST", "auth/approle/role/r/secret-id", ""},
		{http.MethodPost, "auth/approle/role/r/secret-id/lookup", `{"secret_id":"x"}`},
		{http.MethodPost, "auth/approle/login/r", `{"role_id":"x"}`},
		{http.MethodGet, "auth/userpass/users/x", ""},
		{http.MethodGet, "sys/auth", ""},
		{http.MethodGet, "identity/entity/id", ""},
		{"LIST", "identity/entity/id", ""},
	} {
		st, _, raw := rawRequest(t, r.method, addr+"/v1/"+r.path, "", r.body)
		if st != http.StatusForbidden && st != http.StatusNotFound && st != http.StatusMethodNotAllowed {
			t.Errorf("%s %s without a token: %d %s, want 403 (or 404/405)", r.method, r.path, st, raw)
		}
		noTokenIn(t, r.path, raw)
	}
	if s, _ := root.Logical().Read("auth/jwt/config"); s == nil || s.Data["jwks_url"] != "" && s.Data["jwks_url"] != nil {
		t.Fatalf("jwt config changed without a token: %v", s)
	}
}

// TestProbeNoMountEnumeration: a caller without a token, or with a token
// whose policy does not reach a path, cannot tell a path no mount serves
// from one it may not use: both are 403, as in Vault. Only a caller the
// ACL allows there learns that nothing is mounted (404).
func TestProbeNoMountEnumeration(t *testing.T) {
	root := devClient(t)
	addr := root.Address()
	if err := root.Sys().PutPolicy("kv-reader", `path "secret/data/*" { capabilities = ["read"] }
path "nothing-here/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	tok := mustToken(t, root, "kv-reader")
	for _, p := range []string{"nothing-here/x", "auth/nothing/login", "secret-ish/data/x", "transit/keys/k"} {
		for _, who := range []string{"", "not-a-token", tok} {
			if who == tok && strings.HasPrefix(p, "nothing-here/") {
				continue
			}
			for _, m := range []string{http.MethodGet, http.MethodPost, "LIST"} {
				st, _, raw := rawRequest(t, m, addr+"/v1/"+p, who, `{}`)
				if st != http.StatusForbidden {
					t.Errorf("%s %s with token %.8q: %d %s, want 403", m, p, who, st, raw)
				}
			}
		}
	}
	// Allowed there but nothing mounted: 404, for the ordinary token and root.
	for _, who := range []string{tok, root.Token()} {
		if st, _, raw := rawRequest(t, http.MethodGet, addr+"/v1/nothing-here/x", who, ""); st != http.StatusNotFound {
			t.Errorf("GET nothing-here/x allowed by policy: %d %s, want 404", st, raw)
		}
	}
}

// TestProbeUserpassCaseAroundDeny: userpass names are case-insensitive, but
// ACL paths are not. A helpdesk policy that may manage users but not the
// admin must not be sidestepped by spelling the admin's name in capitals:
// the path the ACL checks must be the user the backend changes.
func TestProbeUserpassCaseAroundDeny(t *testing.T) {
	root := devClient(t)
	addr := root.Address()
	enableUserpass(t, root)
	writeUser(t, root, "admin", map[string]any{"password": "admin pw", "token_policies": "admin"})
	if err := root.Sys().PutPolicy("helpdesk", `path "auth/userpass/users/*" { capabilities = ["create", "read", "update", "delete"] }
path "auth/userpass/users/admin" { capabilities = ["deny"] }
path "auth/userpass/users/admin/*" { capabilities = ["deny"] }`); err != nil {
		t.Fatal(err)
	}
	hd := newClient(t, addr, mustToken(t, root, "helpdesk"))
	for _, w := range []struct {
		path string
		data map[string]any
	}{
		{"auth/userpass/users/ADMIN", map[string]any{"password": "mine"}},
		{"auth/userpass/users/Admin", map[string]any{"password": "mine", "token_policies": "admin"}},
		{"auth/userpass/users/aDmIn/password", map[string]any{"password": "mine"}},
		{"auth/userpass/users/ADMIN/policies", map[string]any{"token_policies": "admin,root-ish"}},
	} {
		_, err := hd.Logical().Write(w.path, w.data)
		if st := statusOf(err); st != http.StatusBadRequest && st != http.StatusForbidden {
			t.Errorf("helpdesk writing %s: %v, want 400 or 403", w.path, err)
		}
	}
	if _, err := hd.Logical().Delete("auth/userpass/users/ADMIN"); statusOf(err) != http.StatusBadRequest && statusOf(err) != http.StatusForbidden {
		t.Errorf("helpdesk deleting users/ADMIN: %v, want 400 or 403", err)
	}
	if s, err := hd.Logical().Read("auth/userpass/users/ADMIN"); err == nil && s != nil {
		t.Errorf("helpdesk read the admin as users/ADMIN: %v", s.Data)
	}
	// The admin is untouched.
	loginUserpass(t, root, "admin", "admin pw")
	if err := tryLogin(newClient(t, addr, ""), "admin", "mine"); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("admin with the helpdesk's password: %v, want 400", err)
	}
	// The helpdesk still manages other users, in lowercase.
	if _, err := hd.Logical().Write("auth/userpass/users/bob", map[string]any{"password": "bob pw"}); err != nil {
		t.Fatalf("helpdesk writing bob: %v", err)
	}
}
