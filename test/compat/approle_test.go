package compat

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	approleauth "github.com/hashicorp/vault/api/auth/approle"

	"github.com/arcasec/arca/internal/logical/leasetest"
	"github.com/arcasec/arca/internal/server"
	"github.com/arcasec/arca/internal/server/servertest"
)

// enableAppRole mounts the AppRole method at auth/approle/ and creates a
// role with the given settings; it returns the role's role ID.
func enableAppRole(t testing.TB, c *vault.Client, roleName string, settings map[string]any) string {
	t.Helper()
	if err := c.Sys().EnableAuthWithOptions("approle", &vault.EnableAuthOptions{Type: "approle"}); err != nil && !strings.Contains(err.Error(), "in use") {
		t.Fatalf("enabling approle: %v", err)
	}
	if _, err := c.Logical().Write("auth/approle/role/"+roleName, settings); err != nil {
		t.Fatalf("creating role %s: %v", roleName, err)
	}
	s, err := c.Logical().Read("auth/approle/role/" + roleName + "/role-id")
	if err != nil || s == nil {
		t.Fatalf("reading role ID: %v", err)
	}
	return s.Data["role_id"].(string)
}

func newSecretID(t testing.TB, c *vault.Client, roleName string, data map[string]any) (secretID, accessor string) {
	t.Helper()
	s, err := c.Logical().Write("auth/approle/role/"+roleName+"/secret-id", data)
	if err != nil {
		t.Fatalf("generating a secret ID: %v", err)
	}
	return s.Data["secret_id"].(string), s.Data["secret_id_accessor"].(string)
}

func appRoleLogin(c *vault.Client, roleID, secretID string) (*vault.Secret, error) {
	lc, err := c.Clone()
	if err != nil {
		return nil, err
	}
	lc.ClearToken()
	return lc.Logical().Write("auth/approle/login", map[string]any{"role_id": roleID, "secret_id": secretID})
}

func TestAppRoleLifecycle(t *testing.T) {
	ctx := context.Background()
	c := devClient(t)
	if err := c.Sys().PutPolicy("reader", `path "secret/data/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	roleID := enableAppRole(t, c, "ci", map[string]any{
		"token_policies":     "reader",
		"token_ttl":          "20m",
		"token_max_ttl":      "1h",
		"secret_id_ttl":      "10m",
		"secret_id_num_uses": 5,
	})

	role, err := c.Logical().Read("auth/approle/role/ci")
	if err != nil || role == nil {
		t.Fatalf("reading role: %v", err)
	}
	if role.Data["bind_secret_id"] != true || role.Data["token_ttl"] != json.Number("1200") ||
		role.Data["secret_id_ttl"] != json.Number("600") || role.Data["secret_id_num_uses"] != json.Number("5") {
		t.Fatalf("role read back as %v", role.Data)
	}
	if pols, _ := role.Data["token_policies"].([]any); len(pols) != 1 || pols[0] != "reader" {
		t.Fatalf("token_policies read back as %v", role.Data["token_policies"])
	}
	list, err := c.Logical().List("auth/approle/role")
	if err != nil || list == nil || len(list.Data["keys"].([]any)) != 1 {
		t.Fatalf("listing roles: %v %v", list, err)
	}

	// Generate a secret ID with metadata; narrowing num_uses and ttl.
	gen, err := c.Logical().Write("auth/approle/role/ci/secret-id", map[string]any{
		"metadata": `{"pipeline":"deploy"}`, "num_uses": 3, "ttl": "5m",
	})
	if err != nil {
		t.Fatal(err)
	}
	secretID, accessor := gen.Data["secret_id"].(string), gen.Data["secret_id_accessor"].(string)
	if gen.Data["secret_id_ttl"] != json.Number("300") || gen.Data["secret_id_num_uses"] != json.Number("3") {
		t.Fatalf("secret-id response: %v", gen.Data)
	}
	// Widening the role's limits is refused, naming the field.
	for _, body := range []map[string]any{{"num_uses": 10}, {"num_uses": 0}, {"ttl": "1h"}} {
		_, err := c.Logical().Write("auth/approle/role/ci/secret-id", body)
		if statusOf(err) != http.StatusBadRequest {
			t.Fatalf("secret-id with %v: %v, want 400", body, err)
		}
	}

	// Log in through the vault/api AppRole helper.
	lc, _ := c.Clone()
	lc.ClearToken()
	auth, err := approleauth.NewAppRoleAuth(roleID, &approleauth.SecretID{FromString: secretID})
	if err != nil {
		t.Fatal(err)
	}
	s, err := lc.Auth().Login(ctx, auth)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if !slices.Contains(s.Auth.Policies, "reader") || s.Auth.Metadata["role_name"] != "ci" || s.Auth.Metadata["pipeline"] != "deploy" {
		t.Fatalf("login auth: %+v", s.Auth)
	}
	if s.Auth.LeaseDuration != 1200 {
		t.Fatalf("login token TTL %d, want the role's token_ttl 1200", s.Auth.LeaseDuration)
	}
	self, err := lc.Auth().Token().LookupSelf()
	if err != nil {
		t.Fatalf("the login token does not work: %v", err)
	}
	if meta, _ := self.Data["meta"].(map[string]any); meta["role_name"] != "ci" {
		t.Fatalf("token meta: %v", self.Data["meta"])
	}

	// The use was spent.
	look, err := c.Logical().Write("auth/approle/role/ci/secret-id/lookup", map[string]any{"secret_id": secretID})
	if err != nil || look == nil {
		t.Fatalf("secret-id lookup: %v", err)
	}
	if look.Data["secret_id_num_uses"] != json.Number("2") || look.Data["secret_id_accessor"] != accessor {
		t.Fatalf("lookup after one login: %v", look.Data)
	}
	for _, k := range []string{"cidr_list", "creation_time", "expiration_time", "last_updated_time", "metadata", "secret_id_ttl", "token_bound_cidrs"} {
		if _, ok := look.Data[k]; !ok {
			t.Fatalf("lookup lacks %s: %v", k, look.Data)
		}
	}
	accs, err := c.Logical().List("auth/approle/role/ci/secret-id")
	if err != nil || accs == nil || len(accs.Data["keys"].([]any)) != 1 || accs.Data["keys"].([]any)[0] != accessor {
		t.Fatalf("listing accessors: %v %v", accs, err)
	}
	byAcc, err := c.Logical().Write("auth/approle/role/ci/secret-id-accessor/lookup", map[string]any{"secret_id_accessor": accessor})
	if err != nil || byAcc.Data["secret_id_num_uses"] != json.Number("2") {
		t.Fatalf("accessor lookup: %v %v", byAcc, err)
	}

	// A wrong secret ID and an unknown role ID read the same.
	for _, creds := range [][2]string{{roleID, "not-the-secret"}, {"no-such-role-id", secretID}} {
		_, err := appRoleLogin(c, creds[0], creds[1])
		if statusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "invalid role or secret ID") {
			t.Fatalf("login with bad credentials: %v", err)
		}
	}

	// Destroyed through its accessor, the secret ID logs in no more.
	if _, err := c.Logical().Write("auth/approle/role/ci/secret-id-accessor/destroy", map[string]any{"secret_id_accessor": accessor}); err != nil {
		t.Fatal(err)
	}
	if _, err := appRoleLogin(c, roleID, secretID); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("login with a destroyed secret ID: %v", err)
	}

	// custom-secret-id, then secret-id/destroy.
	if _, err := c.Logical().Write("auth/approle/role/ci/custom-secret-id", map[string]any{"secret_id": "my-own-secret-id"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("auth/approle/role/ci/custom-secret-id", map[string]any{"secret_id": "my-own-secret-id"}); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("registering the same custom secret ID twice: %v", err)
	}
	if _, err := appRoleLogin(c, roleID, "my-own-secret-id"); err != nil {
		t.Fatalf("login with a custom secret ID: %v", err)
	}
	if _, err := c.Logical().Write("auth/approle/role/ci/secret-id/destroy", map[string]any{"secret_id": "my-own-secret-id"}); err != nil {
		t.Fatal(err)
	}
	if _, err := appRoleLogin(c, roleID, "my-own-secret-id"); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("login with a destroyed custom secret ID: %v", err)
	}

	// role-id: settable, unique across roles; the old one stops working.
	sid, _ := newSecretID(t, c, "ci", nil)
	if _, err := c.Logical().Write("auth/approle/role/ci/role-id", map[string]any{"role_id": "ci-role-id"}); err != nil {
		t.Fatal(err)
	}
	if _, err := appRoleLogin(c, roleID, sid); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("login with the replaced role ID: %v", err)
	}
	if _, err := appRoleLogin(c, "ci-role-id", sid); err != nil {
		t.Fatalf("login with the new role ID: %v", err)
	}
	if _, err := c.Logical().Write("auth/approle/role/other", map[string]any{"role_id": "ci-role-id"}); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("a second role with the same role_id: %v", err)
	}

	// Per-field sub-paths.
	if _, err := c.Logical().Write("auth/approle/role/ci/secret-id-ttl", map[string]any{"secret_id_ttl": "2m"}); err != nil {
		t.Fatal(err)
	}
	if f, err := c.Logical().Read("auth/approle/role/ci/secret-id-ttl"); err != nil || f.Data["secret_id_ttl"] != json.Number("120") {
		t.Fatalf("secret-id-ttl: %v %v", f, err)
	}
	if _, err := c.Logical().Write("auth/approle/role/ci/policies", map[string]any{"token_policies": "reader,other"}); err != nil {
		t.Fatal(err)
	}
	if f, err := c.Logical().Read("auth/approle/role/ci/policies"); err != nil || len(f.Data["token_policies"].([]any)) != 2 {
		t.Fatalf("policies: %v %v", f, err)
	}
	if _, err := c.Logical().Delete("auth/approle/role/ci/token-ttl"); err != nil {
		t.Fatal(err)
	}
	if f, err := c.Logical().Read("auth/approle/role/ci/token-ttl"); err != nil || f.Data["token_ttl"] != json.Number("0") {
		t.Fatalf("token-ttl after delete: %v %v", f, err)
	}

	// A role that constrains nothing is refused.
	if _, err := c.Logical().Write("auth/approle/role/loose", map[string]any{"bind_secret_id": false}); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("role without bind_secret_id or CIDRs: %v", err)
	}
	if _, err := c.Logical().Write("auth/approle/role/ci/bind-secret-id", map[string]any{"bind_secret_id": false}); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("turning off bind_secret_id on a role with no CIDRs: %v", err)
	}
	// Bad input names the field.
	if _, err := c.Logical().Write("auth/approle/role/bad", map[string]any{"secret_id_bound_cidrs": "not-a-cidr"}); statusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "secret_id_bound_cidrs") {
		t.Fatalf("bad CIDR: %v", err)
	}

	// Deleting the role ends its logins.
	if _, err := c.Logical().Delete("auth/approle/role/ci"); err != nil {
		t.Fatal(err)
	}
	if _, err := appRoleLogin(c, "ci-role-id", sid); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("login after the role was deleted: %v", err)
	}
}

// TestAppRoleTerraformLoginBody drives login with exactly the body the
// Terraform vault provider's auth_login block sends.
func TestAppRoleTerraformLoginBody(t *testing.T) {
	c := devClient(t)
	roleID := enableAppRole(t, c, "terraform", map[string]any{"token_policies": "default"})
	secretID, _ := newSecretID(t, c, "terraform", nil)

	body, _ := json.Marshal(map[string]string{"role_id": roleID, "secret_id": secretID})
	resp, err := http.Post(c.Address()+"/v1/auth/approle/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Auth struct {
			ClientToken string `json:"client_token"`
			Accessor    string `json:"accessor"`
			Renewable   bool   `json:"renewable"`
		} `json:"auth"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || out.Auth.ClientToken == "" || out.Auth.Accessor == "" || !out.Auth.Renewable {
		t.Fatalf("login: status %d, auth %+v", resp.StatusCode, out.Auth)
	}
	tc, _ := c.Clone()
	tc.SetToken(out.Auth.ClientToken)
	if _, err := tc.Auth().Token().LookupSelf(); err != nil {
		t.Fatalf("the token from the Terraform-shaped login does not work: %v", err)
	}
}

// TestAppRoleSingleUseUnderConcurrency: a secret ID with num_uses=1 logs in
// exactly once however many logins race for it.
func TestAppRoleSingleUseUnderConcurrency(t *testing.T) {
	c := devClient(t)
	for round := 0; round < 3; round++ {
		// A role per round: the losers of a round count as failed logins
		// of its role ID, which login lockout may lock.
		name := fmt.Sprintf("once%d", round)
		roleID := enableAppRole(t, c, name, map[string]any{})
		secretID, _ := newSecretID(t, c, name, map[string]any{"num_uses": 1})
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, refused, other := 0, 0, []error{}
		start := make(chan struct{})
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := appRoleLogin(c, roleID, secretID)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case statusOf(err) == http.StatusBadRequest,
					// Losers count as failed logins of the role ID, so
					// lockout (on by default) may lock the later ones.
					statusOf(err) == http.StatusForbidden && strings.Contains(errorText(err), "locked out"):
					refused++
				default:
					other = append(other, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if ok != 1 || refused != 15 || len(other) > 0 {
			t.Fatalf("round %d: %d logins succeeded, %d refused, other errors %v; want exactly 1 and 15", round, ok, refused, other)
		}
	}
}

func TestAppRoleBoundCIDRs(t *testing.T) {
	c := devClient(t)
	// The test server listens on 127.0.0.1: a role bound to 10.0.0.0/8
	// refuses it, one bound to 127.0.0.0/8 lets it in.
	farID := enableAppRole(t, c, "far", map[string]any{"secret_id_bound_cidrs": "10.0.0.0/8"})
	farSecret, _ := newSecretID(t, c, "far", nil)
	if _, err := appRoleLogin(c, farID, farSecret); statusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "CIDR") {
		t.Fatalf("login from outside secret_id_bound_cidrs: %v", err)
	}
	nearID := enableAppRole(t, c, "near", map[string]any{"secret_id_bound_cidrs": "127.0.0.0/8", "secret_id_num_uses": 2})
	nearSecret, _ := newSecretID(t, c, "near", nil)
	if _, err := appRoleLogin(c, nearID, nearSecret); err != nil {
		t.Fatalf("login from inside secret_id_bound_cidrs: %v", err)
	}
	// A refused login spends no use.
	look, err := c.Logical().Write("auth/approle/role/far/secret-id/lookup", map[string]any{"secret_id": farSecret})
	if err != nil || look == nil {
		t.Fatalf("the far secret ID is gone after a refused login: %v", err)
	}

	// A secret ID's cidr_list must lie within the role's, and binds too.
	if _, err := c.Logical().Write("auth/approle/role/near/secret-id", map[string]any{"cidr_list": "10.1.0.0/16"}); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("cidr_list outside the role's: %v", err)
	}
	narrowID := enableAppRole(t, c, "narrow", map[string]any{})
	narrowSecret, _ := newSecretID(t, c, "narrow", map[string]any{"cidr_list": "10.1.0.0/16"})
	if _, err := appRoleLogin(c, narrowID, narrowSecret); statusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "CIDR") {
		t.Fatalf("login from outside the secret ID's cidr_list: %v", err)
	}
	hereSecret, _ := newSecretID(t, c, "narrow", map[string]any{"cidr_list": "127.0.0.1/32", "token_bound_cidrs": "127.0.0.1"})
	s, err := appRoleLogin(c, narrowID, hereSecret)
	if err != nil {
		t.Fatalf("login from inside the secret ID's cidr_list: %v", err)
	}
	tc, _ := c.Clone()
	tc.SetToken(s.Auth.ClientToken)
	self, err := tc.Auth().Token().LookupSelf()
	if err != nil {
		t.Fatalf("token bound to 127.0.0.1, used from there: %v", err)
	}
	if cidrs, _ := self.Data["bound_cidrs"].([]any); len(cidrs) != 1 {
		t.Logf("token lookup does not show bound_cidrs (the core's part): %v", self.Data["bound_cidrs"])
	}

	// A role without bind_secret_id logs in by role ID alone, from its CIDRs.
	openID := enableAppRole(t, c, "open", map[string]any{"bind_secret_id": false, "secret_id_bound_cidrs": "127.0.0.0/8"})
	if _, err := appRoleLogin(c, openID, ""); err != nil {
		t.Fatalf("login by role ID alone: %v", err)
	}
}

// TestAppRoleSecretIDExpiry moves the server's clock past a secret ID's TTL.
func TestAppRoleSecretIDExpiry(t *testing.T) {
	clock := leasetest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	srv, res, err := server.StartDev(context.Background(), server.DevOptions{ListenAddress: "127.0.0.1:0", Clock: clock}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	c := newClient(t, "http://"+res.Address, res.RootToken)
	roleID := enableAppRole(t, c, "short", map[string]any{"secret_id_ttl": "60s"})
	expiring, _ := newSecretID(t, c, "short", nil)
	used, _ := newSecretID(t, c, "short", nil)
	if _, err := appRoleLogin(c, roleID, used); err != nil {
		t.Fatalf("login before expiry: %v", err)
	}
	clock.Advance(61 * time.Second)
	if _, err := appRoleLogin(c, roleID, used); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("login with an expired secret ID: %v", err)
	}
	if look, err := c.Logical().Write("auth/approle/role/short/secret-id/lookup", map[string]any{"secret_id": expiring}); err != nil || look != nil {
		t.Fatalf("lookup of an expired secret ID: %v %v", look, err)
	}
	if _, err := c.Logical().Write("auth/approle/tidy/secret-id", nil); err != nil {
		t.Fatalf("tidy: %v", err)
	}
	if accs, err := c.Logical().List("auth/approle/role/short/secret-id"); err != nil || accs != nil {
		t.Fatalf("expired secret IDs listed after tidy: %v %v", accs, err)
	}
}

// TestAppRoleWrappedSecretID: a CI system asks for a wrapped secret ID and
// hands the wrapping token to a job, which logs in with it once.
func TestAppRoleWrappedSecretID(t *testing.T) {
	ctx := context.Background()
	c := devClient(t)
	// Unlimited uses: only the wrapping token's single use is under test.
	roleID := enableAppRole(t, c, "job", map[string]any{})

	wc, _ := c.Clone()
	wc.SetToken(c.Token())
	wc.SetWrappingLookupFunc(func(string, string) string { return "2m" })
	wrapped, err := wc.Logical().Write("auth/approle/role/job/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	if wrapped.WrapInfo == nil || wrapped.WrapInfo.Token == "" || wrapped.Data != nil {
		t.Fatalf("secret-id with X-Vault-Wrap-TTL was not wrapped: %+v", wrapped)
	}

	lc, _ := c.Clone()
	lc.ClearToken()
	auth, err := approleauth.NewAppRoleAuth(roleID, &approleauth.SecretID{FromString: wrapped.WrapInfo.Token}, approleauth.WithWrappingToken())
	if err != nil {
		t.Fatal(err)
	}
	s, err := lc.Auth().Login(ctx, auth)
	if err != nil || s.Auth == nil || s.Auth.ClientToken == "" {
		t.Fatalf("login with a wrapped secret ID: %v", err)
	}
	// The wrapping token unwraps once: a second unwrap is refused.
	lc2, _ := c.Clone()
	lc2.ClearToken()
	if s, err := lc2.Logical().Unwrap(wrapped.WrapInfo.Token); err == nil {
		t.Fatalf("a wrapping token unwrapped twice: %v", s)
	}
	if _, err := lc2.Auth().Login(ctx, auth); err == nil {
		t.Fatal("a second login through the spent wrapping token")
	}
}

// BenchmarkAppRoleLogin measures logins per second through HTTP (vault/api
// client, in-memory storage), each with an unlimited-use secret ID;
// parallel with -cpu to see contention.
func BenchmarkAppRoleLogin(b *testing.B) {
	addr, root := servertest.StartDev(b)
	conf := vault.DefaultConfig()
	conf.Address = addr
	conf.MaxRetries = 0
	c, err := vault.NewClient(conf)
	if err != nil {
		b.Fatal(err)
	}
	c.SetToken(root)
	roleID := enableAppRole(b, c, "bench", map[string]any{"token_ttl": "1m"})
	secretID, _ := newSecretID(b, c, "bench", nil)
	lc, err := c.Clone()
	if err != nil {
		b.Fatal(err)
	}
	lc.ClearToken()
	body := map[string]any{"role_id": roleID, "secret_id": secretID}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := lc.Logical().Write("auth/approle/login", body); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
}

// BenchmarkTokenCreateBaseline is the floor BenchmarkAppRoleLogin compares
// with: creating a token through auth/token/create over HTTP, which issues
// a token like a login does but checks no credentials.
func BenchmarkTokenCreateBaseline(b *testing.B) {
	addr, root := servertest.StartDev(b)
	conf := vault.DefaultConfig()
	conf.Address = addr
	conf.MaxRetries = 0
	c, err := vault.NewClient(conf)
	if err != nil {
		b.Fatal(err)
	}
	c.SetToken(root)
	req := &vault.TokenCreateRequest{Policies: []string{"default"}, TTL: "1m"}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Auth().Token().Create(req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// TestAppRoleAuditHidesSecretIDs: the audit log records secret ID
// generation and the login with the secret ID and the issued token hashed,
// never in plain.
func TestAppRoleAuditHidesSecretIDs(t *testing.T) {
	c := devClient(t)
	logPath := filepath.Join(t.TempDir(), "audit.log")
	if err := c.Sys().EnableAuditWithOptions("file", &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": logPath}}); err != nil {
		t.Fatal(err)
	}
	roleID := enableAppRole(t, c, "audited", map[string]any{})
	secretID, _ := newSecretID(t, c, "audited", nil)
	s, err := appRoleLogin(c, roleID, secretID)
	if err != nil {
		t.Fatal(err)
	}
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(log, []byte("auth/approle/login")) {
		t.Fatal("the login is not in the audit log")
	}
	for name, v := range map[string]string{"secret ID": secretID, "login token": s.Auth.ClientToken} {
		if bytes.Contains(log, []byte(v)) {
			t.Fatalf("the audit log holds the %s in plain", name)
		}
	}
}

// TestAppRoleRenewalAsksTheRole: a login token renews while its role stands
// unchanged, and is refused once the role's policies change or the role is
// gone, as Vault's AppRole does.
func TestAppRoleRenewalAsksTheRole(t *testing.T) {
	c := devClient(t)
	roleID := enableAppRole(t, c, "renewer", map[string]any{"token_policies": "p1", "token_ttl": "10m", "token_max_ttl": "1h"})
	login := func() *vault.Client {
		secretID, _ := newSecretID(t, c, "renewer", nil)
		s, err := appRoleLogin(c, roleID, secretID)
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		tc, _ := c.Clone()
		tc.SetToken(s.Auth.ClientToken)
		return tc
	}
	tc := login()
	if s, err := tc.Auth().Token().RenewSelf(600); err != nil || s.Auth.LeaseDuration <= 0 {
		t.Fatalf("renewing under an unchanged role: %v", err)
	}
	if _, err := c.Logical().Write("auth/approle/role/renewer", map[string]any{"token_policies": "p1,p2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.Auth().Token().RenewSelf(600); err == nil || !strings.Contains(errorText(err), "policies") {
		t.Fatalf("renewing after the role's policies changed: %v, want a refusal", err)
	}
	tc = login()
	if _, err := c.Logical().Delete("auth/approle/role/renewer"); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.Auth().Token().RenewSelf(600); err == nil {
		t.Fatal("renewing after the role was deleted succeeded")
	}
}
