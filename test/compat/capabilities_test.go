package compat

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/policy/policymodel"
	"github.com/arcasec/arca/internal/server/servertest"
)

// allowedBy reports whether a request got past the ACL: anything but 403
// (a missing key is a 404 the policy allowed). A 5xx fails the test.
func allowedBy(t *testing.T, what string, err error) bool {
	t.Helper()
	code := statusOf(err)
	if code >= 500 || err != nil && code == 0 {
		t.Fatalf("%s: %v", what, err)
	}
	return code != http.StatusForbidden
}

func has(caps []string, c string) bool {
	return slices.Contains(caps, c) || slices.Equal(caps, []string{"root"})
}

// TestCapabilitiesAgreeWithRequests generates policies with overlapping
// exact, glob and '+' patterns on a KV v1 mount, and checks that for each
// path what sys/capabilities reports is what the reference model
// decides and exactly what read, write, delete and list requests get.
func TestCapabilitiesAgreeWithRequests(t *testing.T) {
	addr, root := servertest.StartDev(t)
	c := newClient(t, addr, root)
	if err := c.Sys().Mount("kv", &vault.MountInput{Type: "kv"}); err != nil {
		t.Fatal(err)
	}
	seeds := []string{"kv/a", "kv/ab", "kv/a/b", "kv/b/a", "kv/abc/ba"}
	g := policymodel.Generator{C: policymodel.Rand(7), Prefix: "kv/", PlainPaths: true, NoParams: true}
	checked := 0
	for round := range 80 {
		for _, p := range seeds {
			if _, err := c.Logical().Write(p, map[string]any{"v": "1"}); err != nil {
				t.Fatal(err)
			}
		}
		ps := g.Policies()
		var names []string
		for _, p := range ps {
			name := p.Name
			if name != "root" {
				name = fmt.Sprintf("r%d-%s", round, p.Name)
				if err := c.Sys().PutPolicy(name, policymodel.HCL(p)); err != nil {
					t.Fatalf("put policy:\n%s\n%v", policymodel.HCL(p), err)
				}
			}
			names = append(names, name)
		}
		tok, err := c.Auth().Token().Create(&vault.TokenCreateRequest{Policies: names, NoDefaultPolicy: true})
		if err != nil {
			t.Fatal(err)
		}
		u := newClient(t, addr, tok.Auth.ClientToken)
		model := policymodel.New(ps...)
		var texts []string
		for _, p := range ps {
			texts = append(texts, p.Name+":\n"+policymodel.HCL(p))
		}
		for range 8 {
			path := g.Path()
			caps, err := c.Sys().Capabilities(tok.Auth.ClientToken, path)
			if err != nil {
				t.Fatal(err)
			}
			folderCaps, err := c.Sys().Capabilities(tok.Auth.ClientToken, path+"/")
			if err != nil {
				t.Fatal(err)
			}
			fail := func(format string, args ...any) {
				t.Helper()
				t.Errorf("%s (capabilities %v, of %s/: %v): %s\npolicies:\n%s", path, caps, path, folderCaps,
					fmt.Sprintf(format, args...), strings.Join(texts, "\n"))
			}
			if want := model.Capabilities(path); !slices.Equal(caps, want) {
				fail("model says %v", want)
			}
			if want := model.Capabilities(path + "/"); !slices.Equal(folderCaps, want) {
				fail("model says %v for %s/", want, path)
			}

			_, err = u.Logical().Read(path)
			if got := allowedBy(t, "read "+path, err); got != has(caps, "read") {
				fail("read allowed = %v", got)
			}
			_, err = u.Logical().List(path)
			if got := allowedBy(t, "list "+path, err); got != has(folderCaps, "list") {
				fail("list allowed = %v", got)
			}
			existing, err := c.Logical().Read(path)
			if err != nil {
				t.Fatal(err)
			}
			need := "create"
			if existing != nil {
				need = "update"
			}
			_, err = u.Logical().Write(path, map[string]any{"v": "2"})
			if got := allowedBy(t, "write "+path, err); got != has(caps, need) {
				fail("write allowed = %v, needing %s", got, need)
			}
			_, err = u.Logical().Delete(path)
			if got := allowedBy(t, "delete "+path, err); got != has(caps, "delete") {
				fail("delete allowed = %v", got)
			}
			checked++
		}
	}
	t.Logf("%d paths checked with 6 requests each", checked)
}

func TestCapabilitiesEndpoints(t *testing.T) {
	addr, root := servertest.StartDev(t)
	c := newClient(t, addr, root)
	if err := c.Sys().PutPolicy("lister", `
path "secret/metadata/team" { capabilities = ["list"] }
path "secret/data/team/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	tok, err := c.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"lister"}})
	if err != nil {
		t.Fatal(err)
	}
	u := newClient(t, addr, tok.Auth.ClientToken)

	// LIST secret/metadata/team arrives as secret/metadata/team/ and is
	// decided by the exact rule without the slash; capabilities agree.
	if _, err := u.Logical().List("secret/metadata/team"); !allowedBy(t, "list", err) {
		t.Fatal("LIST secret/metadata/team is denied, though the policy grants list on it")
	}
	for _, p := range []string{"secret/metadata/team", "secret/metadata/team/"} {
		if caps, err := u.Sys().CapabilitiesSelf(p); err != nil || !slices.Equal(caps, []string{"list"}) {
			t.Errorf("capabilities-self %s = %v, %v; want [list]", p, caps, err)
		}
	}
	if _, err := u.Logical().List("secret/metadata/other"); allowedBy(t, "list", err) {
		t.Fatal("LIST outside the policy allowed")
	}

	// capabilities-self is about the caller, whatever token the body names.
	s, err := u.Logical().Write("sys/capabilities-self", map[string]any{"token": root, "paths": []string{"sys/mounts"}})
	if err != nil || !slices.Equal(toStrings(s.Data["capabilities"]), []string{"deny"}) {
		t.Fatalf("capabilities-self naming the root token = %v, %v; want [deny]", s, err)
	}

	// Several paths: one key per path and no combined list, as in Vault.
	s, err = c.Logical().Write("sys/capabilities", map[string]any{"token": tok.Auth.ClientToken, "paths": []string{"secret/data/team/x", "/sys/mounts"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := toStrings(s.Data["secret/data/team/x"]); !slices.Equal(got, []string{"read"}) {
		t.Errorf("secret/data/team/x = %v", got)
	}
	if got := toStrings(s.Data["/sys/mounts"]); !slices.Equal(got, []string{"deny"}) {
		t.Errorf("/sys/mounts = %v", got)
	}
	if _, ok := s.Data["capabilities"]; ok {
		t.Errorf("capabilities for several paths has a combined list: %v", s.Data)
	}

	caps, err := c.Sys().CapabilitiesAccessor(tok.Auth.Accessor, "secret/data/team/x")
	if err != nil || !slices.Equal(caps, []string{"read"}) {
		t.Errorf("capabilities-accessor = %v, %v", caps, err)
	}
	_, err = c.Sys().CapabilitiesAccessor("no-such-accessor", "secret/data/team/x")
	if statusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "invalid accessor") {
		t.Errorf("unknown accessor: %v, want 400 invalid accessor", err)
	}
	_, err = c.Sys().Capabilities("no-such-token", "secret/data/team/x")
	if statusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "invalid token") {
		t.Errorf("unknown token: %v, want 400 invalid token", err)
	}
	if caps, err := c.Sys().CapabilitiesSelf("anything/at/all"); err != nil || !slices.Equal(caps, []string{"root"}) {
		t.Errorf("root capabilities = %v, %v", caps, err)
	}
}

// TestPolicyUpdateIsNeverUndone flips a policy between two versions while
// readers keep compiling it, and checks after each write that the version
// written last is the one enforced. Run it with -race.
func TestPolicyUpdateIsNeverUndone(t *testing.T) {
	addr, root := servertest.StartDev(t)
	c := newClient(t, addr, root)
	if err := c.Sys().Mount("kv", &vault.MountInput{Type: "kv"}); err != nil {
		t.Fatal(err)
	}
	version := func(key string) string { return fmt.Sprintf(`path "kv/%s" { capabilities = ["read"] }`, key) }
	if err := c.Sys().PutPolicy("flip", version("x")); err != nil {
		t.Fatal(err)
	}
	tok, err := c.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"flip"}})
	if err != nil {
		t.Fatal(err)
	}
	u := newClient(t, addr, tok.Auth.ClientToken)
	for round := range 40 {
		key := []string{"x", "y"}[round%2]
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
						u.Logical().Read("kv/x") // each read may compile the ACL
					}
				}
			}()
		}
		err := c.Sys().PutPolicy("flip", version(key))
		close(stop)
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"x", "y"} {
			_, err := u.Logical().Read("kv/" + k)
			if got := allowedBy(t, "read", err); got != (k == key) {
				t.Fatalf("round %d: policy grants kv/%s, but reading kv/%s allowed = %v", round, key, k, got)
			}
		}
	}
}

// TestHelpNeedsOnlyAValidToken: as in Vault, a path's help is no secret.
// A token whose policy grants nothing on a path still reads its help, on a
// sudo path too, while requests without a valid token are refused.
func TestHelpNeedsOnlyAValidToken(t *testing.T) {
	addr, root := servertest.StartDev(t)
	c := newClient(t, addr, root)
	if err := c.Sys().PutPolicy("nothing", `path "secret/data/other" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	tok, err := c.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"nothing"}})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path, token string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, addr+"/v1/"+path, nil)
		if token != "" {
			req.Header.Set("X-Vault-Token", token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	user := tok.Auth.ClientToken
	for _, p := range []string{"secret/data/app", "sys/audit/file", "auth/token/accessors/"} {
		if code := get(p+"?help=1", user); code != http.StatusOK {
			t.Errorf("help of %s with a token that may not use it: %d, want 200", p, code)
		}
		if code := get(p+"?help=1", ""); code != http.StatusForbidden {
			t.Errorf("help of %s without a token: %d, want 403", p, code)
		}
	}
	if code := get("secret/data/app", user); code != http.StatusForbidden {
		t.Errorf("a read the policy does not grant: %d, want 403", code)
	}
}

// TestCapabilitiesFollowCaseInsensitiveNames: a name a method keeps in
// lowercase is answered for as the request to it would be decided, so
// capabilities never promise what the ACL refuses on users/ALICE.
func TestCapabilitiesFollowCaseInsensitiveNames(t *testing.T) {
	c := devClient(t)
	if err := c.Sys().EnableAuthWithOptions("userpass", &vault.EnableAuthOptions{Type: "userpass"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().PutPolicy("users-but-alice", `
path "auth/userpass/users/*"     { capabilities = ["read", "update"] }
path "auth/userpass/users/alice" { capabilities = ["deny"] }
`); err != nil {
		t.Fatal(err)
	}
	tok, err := c.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"users-but-alice"}})
	if err != nil {
		t.Fatal(err)
	}
	caps, err := c.Sys().CapabilitiesAccessor(tok.Auth.Accessor, "auth/userpass/users/ALICE")
	if err != nil {
		t.Fatal(err)
	}
	if len(caps) != 1 || caps[0] != "deny" {
		t.Fatalf("capabilities on users/ALICE = %v, want [deny] as for users/alice", caps)
	}
	user := newClient(t, c.Address(), tok.Auth.ClientToken)
	if _, err := user.Logical().Write("auth/userpass/users/ALICE", map[string]any{"password": "x"}); statusOf(err) != http.StatusForbidden {
		t.Fatalf("writing users/ALICE: %v, want 403", err)
	}
	caps, err = c.Sys().CapabilitiesAccessor(tok.Auth.Accessor, "auth/userpass/users/Bob")
	if err != nil || len(caps) != 2 {
		t.Fatalf("capabilities on users/Bob = %v (%v), want read and update", caps, err)
	}
}
