package compat

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/server"
	"github.com/arcasec/arca/internal/server/servertest"
)

func devClient(t *testing.T) *vault.Client {
	t.Helper()
	addr, root := servertest.StartDev(t)
	return newClient(t, addr, root)
}

// devClientOn is devClient on the given storage (servertest.EachStorage).
func devClientOn(t *testing.T, sc server.StorageConfig) *vault.Client {
	t.Helper()
	addr, root := servertest.StartDevOn(t, sc)
	return newClient(t, addr, root)
}

func newClient(t *testing.T, addr, token string) *vault.Client {
	t.Helper()
	conf := vault.DefaultConfig()
	conf.Address = addr
	conf.MaxRetries = 0
	c, err := vault.NewClient(conf)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
}

// statusOf returns the HTTP status of a vault/api error, or 0.
func statusOf(err error) int {
	var re *vault.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

func TestKVv2Lifecycle(t *testing.T) { servertest.EachStorage(t, testKVv2Lifecycle) }

func testKVv2Lifecycle(t *testing.T, store server.StorageConfig) {
	ctx := context.Background()
	c := devClientOn(t, store)
	kv := c.KVv2("secret")

	// Write, then read back with metadata.
	v1, err := kv.Put(ctx, "app/db", map[string]any{"username": "app", "password": "hunter2"})
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	if v1.VersionMetadata.Version != 1 {
		t.Fatalf("first write is version %d, want 1", v1.VersionMetadata.Version)
	}
	got, err := kv.Get(ctx, "app/db")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.Data["password"] != "hunter2" || got.VersionMetadata.Version != 1 {
		t.Fatalf("get = %v (version %d)", got.Data, got.VersionMetadata.Version)
	}

	// A second version, and check-and-set: a stale cas fails, the right one passes.
	if _, err := kv.Put(ctx, "app/db", map[string]any{"username": "app", "password": "v2"}); err != nil {
		t.Fatal(err)
	}
	_, err = kv.Put(ctx, "app/db", map[string]any{"password": "stale"}, vault.WithCheckAndSet(1))
	if err == nil || statusOf(err) != http.StatusBadRequest {
		t.Fatalf("stale cas write: err = %v, want 400", err)
	}
	if _, err := kv.Put(ctx, "app/db", map[string]any{"username": "app", "password": "v3"}, vault.WithCheckAndSet(2)); err != nil {
		t.Fatalf("cas=2 write: %v", err)
	}
	old, err := kv.GetVersion(ctx, "app/db", 1)
	if err != nil || old.Data["password"] != "hunter2" {
		t.Fatalf("version 1 = %v, %v", old, err)
	}

	// Patch merges into the latest version.
	patched, err := kv.Patch(ctx, "app/db", map[string]any{"password": "v4", "port": "5432"})
	if err != nil {
		t.Fatalf("patch: %v", err)
	}
	if patched.VersionMetadata.Version != 4 {
		t.Fatalf("patch made version %d, want 4", patched.VersionMetadata.Version)
	}
	latest, err := kv.Get(ctx, "app/db")
	if err != nil || latest.Data["username"] != "app" || latest.Data["port"] != "5432" || latest.Data["password"] != "v4" {
		t.Fatalf("after patch = %v, %v", latest, err)
	}

	// Soft delete the latest version: reading it reports deletion, undelete restores it.
	if err := kv.Delete(ctx, "app/db"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	// A soft-deleted version reads as a 404 that still carries its metadata.
	if del, err := kv.Get(ctx, "app/db"); err != nil || del.Data != nil || del.VersionMetadata.DeletionTime.IsZero() {
		t.Fatalf("read of soft-deleted version = %+v, %v; want no data and a deletion_time", del, err)
	}
	meta, err := kv.GetMetadata(ctx, "app/db")
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	if meta.CurrentVersion != 4 || len(meta.Versions) != 4 || meta.Versions["4"].DeletionTime.IsZero() {
		t.Fatalf("metadata after delete = %+v", meta)
	}
	if err := kv.Undelete(ctx, "app/db", []int{4}); err != nil {
		t.Fatalf("undelete: %v", err)
	}
	if got, err := kv.Get(ctx, "app/db"); err != nil || got.Data["password"] != "v4" {
		t.Fatalf("after undelete = %v, %v", got, err)
	}

	// Destroy removes a version for good.
	if err := kv.Destroy(ctx, "app/db", []int{1}); err != nil {
		t.Fatalf("destroy: %v", err)
	}
	if gone, err := kv.GetVersion(ctx, "app/db", 1); err != nil || gone.Data != nil || !gone.VersionMetadata.Destroyed {
		t.Fatalf("read of destroyed version = %+v, %v; want no data and destroyed", gone, err)
	}
	if meta, _ := kv.GetMetadata(ctx, "app/db"); !meta.Versions["1"].Destroyed {
		t.Fatalf("version 1 not marked destroyed: %+v", meta.Versions["1"])
	}

	// Rollback writes an old version's data as a new version.
	rb, err := kv.Rollback(ctx, "app/db", 2)
	if err != nil || rb.VersionMetadata.Version != 5 {
		t.Fatalf("rollback = %+v, %v", rb, err)
	}
	if cur, err := kv.Get(ctx, "app/db"); err != nil || cur.Data["password"] != "v2" {
		t.Fatalf("after rollback = %+v, %v", cur, err)
	}

	// Metadata: max_versions, custom_metadata, cas_required.
	err = kv.PutMetadata(ctx, "app/db", vault.KVMetadataPutInput{
		MaxVersions:    3,
		CASRequired:    true,
		CustomMetadata: map[string]any{"owner": "payments"},
	})
	if err != nil {
		t.Fatalf("put metadata: %v", err)
	}
	meta, err = kv.GetMetadata(ctx, "app/db")
	if err != nil || meta.MaxVersions != 3 || !meta.CASRequired || meta.CustomMetadata["owner"] != "payments" {
		t.Fatalf("metadata = %+v, %v", meta, err)
	}
	if _, err := kv.Put(ctx, "app/db", map[string]any{"x": "no cas"}); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("write without cas on a cas_required key: err = %v, want 400", err)
	}

	// Listing through metadata/.
	if _, err := kv.Put(ctx, "app/api", map[string]any{"k": "v"}); err == nil {
		t.Log("app/api written")
	} else {
		t.Fatal(err)
	}
	list, err := c.Logical().List("secret/metadata/app")
	if err != nil || list == nil {
		t.Fatalf("list: %v, %v", list, err)
	}
	keys := list.Data["keys"].([]any)
	if len(keys) != 2 || keys[0] != "api" || keys[1] != "db" {
		t.Fatalf("list keys = %v", keys)
	}

	// Deleting metadata removes every version.
	if err := kv.DeleteMetadata(ctx, "app/db"); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.GetMetadata(ctx, "app/db"); err == nil {
		t.Fatal("metadata still readable after delete")
	}
}

func TestKVv1(t *testing.T) { servertest.EachStorage(t, testKVv1) }

func testKVv1(t *testing.T, store server.StorageConfig) {
	ctx := context.Background()
	c := devClientOn(t, store)
	if err := c.Sys().Mount("kv1", &vault.MountInput{Type: "kv"}); err != nil {
		t.Fatalf("mount: %v", err)
	}
	kv := c.KVv1("kv1")
	if err := kv.Put(ctx, "team/a", map[string]any{"token": "abc", "ttl": "1h"}); err != nil {
		t.Fatal(err)
	}
	s, err := kv.Get(ctx, "team/a")
	if err != nil || s.Data["token"] != "abc" {
		t.Fatalf("get = %+v, %v", s, err)
	}
	raw, err := c.Logical().Read("kv1/team/a")
	if err != nil || raw.LeaseDuration != 3600 {
		t.Fatalf("lease_duration = %v, %v; want 3600", raw, err)
	}
	list, err := c.Logical().List("kv1/team")
	if err != nil || len(list.Data["keys"].([]any)) != 1 {
		t.Fatalf("list = %v, %v", list, err)
	}
	if err := kv.Delete(ctx, "team/a"); err != nil {
		t.Fatal(err)
	}
	if s, err := c.Logical().Read("kv1/team/a"); err != nil || s != nil {
		t.Fatalf("read after delete = %v, %v", s, err)
	}
	mounts, err := c.Sys().ListMounts()
	if err != nil || mounts["kv1/"] == nil || mounts["kv1/"].Type != "kv" {
		t.Fatalf("mounts = %v, %v", mounts, err)
	}
	// The vault CLI's preflight learns the KV version of a mount.
	pre, err := c.Logical().Read("sys/internal/ui/mounts/secret/app/x")
	if err != nil || pre.Data["path"] != "secret/" || pre.Data["options"].(map[string]any)["version"] != "2" {
		t.Fatalf("preflight = %+v, %v", pre, err)
	}
}

func TestTokenHierarchyAndExpiry(t *testing.T) {
	servertest.EachStorage(t, testTokenHierarchyAndExpiry)
}

func testTokenHierarchyAndExpiry(t *testing.T, store server.StorageConfig) {
	c := devClientOn(t, store)
	auth := c.Auth().Token()
	// Only tokens whose policies allow auth/token/create may make children.
	if err := c.Sys().PutPolicy("token-creator", `path "auth/token/create" { capabilities = ["update"] }`); err != nil {
		t.Fatal(err)
	}
	if _, err := newClient(t, c.Address(), mustToken(t, c, "default")).Auth().Token().Create(&vault.TokenCreateRequest{}); statusOf(err) != http.StatusForbidden {
		t.Fatalf("default-only token created a token: err = %v, want 403", err)
	}

	parent, err := auth.Create(&vault.TokenCreateRequest{Policies: []string{"token-creator"}, TTL: "1h"})
	if err != nil {
		t.Fatalf("create parent: %v", err)
	}
	if !strings.HasPrefix(parent.Auth.ClientToken, "hvs.") || parent.Auth.LeaseDuration != 3600 {
		t.Fatalf("parent auth = %+v", parent.Auth)
	}
	// The parent creates a child with its own token.
	pc := c.WithNamespace("")
	pc.SetToken(parent.Auth.ClientToken)
	child, err := pc.Auth().Token().Create(&vault.TokenCreateRequest{TTL: "30m"})
	if err != nil {
		t.Fatalf("create child: %v", err)
	}
	look, err := auth.Lookup(child.Auth.ClientToken)
	if err != nil {
		t.Fatalf("lookup child: %v", err)
	}
	if ttl, _ := look.TokenTTL(); ttl <= 0 || ttl > 30*time.Minute {
		t.Fatalf("child ttl = %v", ttl)
	}
	if pols, _ := look.TokenPolicies(); !slices.Equal(pols, []string{"default", "token-creator"}) {
		t.Fatalf("child policies = %v, want the parent's [default token-creator]", pols)
	}
	// A child may not hold policies its parent lacks.
	if _, err := pc.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"admin"}}); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("escalation: err = %v, want 400", err)
	}

	// lookup-self, renew-self.
	self, err := pc.Auth().Token().LookupSelf()
	if err != nil || self.Data["accessor"] != parent.Auth.Accessor {
		t.Fatalf("lookup-self = %v, %v", self, err)
	}
	ren, err := pc.Auth().Token().RenewSelf(600)
	if err != nil || ren.Auth.LeaseDuration != 600 {
		t.Fatalf("renew-self = %+v, %v", ren, err)
	}

	// Revoking the parent revokes the child.
	if err := auth.RevokeTree(parent.Auth.ClientToken); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if _, err := auth.Lookup(child.Auth.ClientToken); statusOf(err) != http.StatusForbidden {
		t.Fatalf("child lookup after parent revoke: err = %v, want 403", err)
	}
	cc := newClient(t, c.Address(), child.Auth.ClientToken)
	if _, err := cc.Auth().Token().LookupSelf(); statusOf(err) != http.StatusForbidden {
		t.Fatalf("revoked child still works: %v", err)
	}

	// An orphan survives its creator; revoke-orphan keeps children alive.
	p2, _ := auth.Create(&vault.TokenCreateRequest{Policies: []string{"token-creator"}})
	p2c := newClient(t, c.Address(), p2.Auth.ClientToken)
	kid, err := p2c.Auth().Token().Create(&vault.TokenCreateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if err := auth.RevokeOrphan(p2.Auth.ClientToken); err != nil {
		t.Fatalf("revoke-orphan: %v", err)
	}
	if l, err := auth.Lookup(kid.Auth.ClientToken); err != nil || l.Data["orphan"] != true {
		t.Fatalf("child after revoke-orphan = %v, %v", l, err)
	}

	// Expiry: a 1s token is refused once it lapses.
	short, err := auth.Create(&vault.TokenCreateRequest{Policies: []string{"default"}, TTL: "1s"})
	if err != nil {
		t.Fatal(err)
	}
	sc := newClient(t, c.Address(), short.Auth.ClientToken)
	if _, err := sc.Auth().Token().LookupSelf(); err != nil {
		t.Fatalf("fresh token refused: %v", err)
	}
	time.Sleep(1500 * time.Millisecond)
	if _, err := sc.Auth().Token().LookupSelf(); statusOf(err) != http.StatusForbidden {
		t.Fatalf("expired token: err = %v, want 403", err)
	}

	// num_uses: a two-use token works twice.
	two, _ := auth.Create(&vault.TokenCreateRequest{Policies: []string{"default"}, NumUses: 2})
	tc := newClient(t, c.Address(), two.Auth.ClientToken)
	for i := 0; i < 2; i++ {
		if _, err := tc.Auth().Token().LookupSelf(); err != nil {
			t.Fatalf("use %d: %v", i+1, err)
		}
	}
	if _, err := tc.Auth().Token().LookupSelf(); statusOf(err) != http.StatusForbidden {
		t.Fatalf("third use: err = %v, want 403", err)
	}

	// Accessors: lookup and revoke by accessor.
	acc, _ := auth.Create(&vault.TokenCreateRequest{Policies: []string{"default"}})
	la, err := auth.LookupAccessor(acc.Auth.Accessor)
	if err != nil || la.Data["id"] != "" || la.Data["accessor"] != acc.Auth.Accessor {
		t.Fatalf("lookup-accessor = %v, %v", la, err)
	}
	if err := auth.RevokeAccessor(acc.Auth.Accessor); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Lookup(acc.Auth.ClientToken); statusOf(err) != http.StatusForbidden {
		t.Fatalf("lookup after revoke-accessor: %v", err)
	}

	// Both header styles authenticate.
	req, _ := http.NewRequest("GET", c.Address()+"/v1/auth/token/lookup-self", nil)
	req.Header.Set("Authorization", "Bearer "+c.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("bearer auth: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestTokenRoles(t *testing.T) {
	c := devClient(t)
	_, err := c.Logical().Write("auth/token/roles/ci", map[string]any{
		"allowed_policies": "ci,default", "orphan": true, "token_period": "1h",
	})
	if err != nil {
		t.Fatal(err)
	}
	role, err := c.Logical().Read("auth/token/roles/ci")
	if err != nil || role.Data["orphan"] != true {
		t.Fatalf("role = %v, %v", role, err)
	}
	tok, err := c.Auth().Token().CreateWithRole(&vault.TokenCreateRequest{Policies: []string{"ci"}}, "ci")
	if err != nil {
		t.Fatalf("create with role: %v", err)
	}
	if !tok.Auth.Orphan || tok.Auth.LeaseDuration != 3600 {
		t.Fatalf("role token = %+v", tok.Auth)
	}
	if _, err := c.Auth().Token().CreateWithRole(&vault.TokenCreateRequest{Policies: []string{"admin"}}, "ci"); statusOf(err) != 400 {
		t.Fatalf("policy outside role: %v", err)
	}
	list, err := c.Logical().List("auth/token/roles")
	if err != nil || len(list.Data["keys"].([]any)) != 1 {
		t.Fatalf("roles list = %v, %v", list, err)
	}
}

const appReadPolicy = `
path "secret/data/app/*" {
  capabilities = ["read"]
}
path "secret/metadata/app/*" {
  capabilities = ["list"]
}
`

func TestPolicyReadOnlyApp(t *testing.T) { servertest.EachStorage(t, testPolicyReadOnlyApp) }

func testPolicyReadOnlyApp(t *testing.T, store server.StorageConfig) {
	ctx := context.Background()
	c := devClientOn(t, store)
	if _, err := c.KVv2("secret").Put(ctx, "app/db", map[string]any{"password": "p"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KVv2("secret").Put(ctx, "other/x", map[string]any{"password": "q"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().PutPolicy("app-read", appReadPolicy); err != nil {
		t.Fatalf("put policy: %v", err)
	}
	text, err := c.Sys().GetPolicy("app-read")
	if err != nil || text != appReadPolicy {
		t.Fatalf("get policy = %q, %v", text, err)
	}
	names, err := c.Sys().ListPolicies()
	if err != nil || !slices.Contains(names, "app-read") || !slices.Contains(names, "default") || !slices.Contains(names, "root") {
		t.Fatalf("policies = %v, %v", names, err)
	}
	tok, err := c.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"app-read"}})
	if err != nil {
		t.Fatal(err)
	}
	app := newClient(t, c.Address(), tok.Auth.ClientToken)

	if s, err := app.KVv2("secret").Get(ctx, "app/db"); err != nil || s.Data["password"] != "p" {
		t.Fatalf("allowed read: %v, %v", s, err)
	}
	if _, err := app.KVv2("secret").Put(ctx, "app/db", map[string]any{"password": "x"}); statusOf(err) != http.StatusForbidden {
		t.Fatalf("write on read-only path: err = %v, want 403", err)
	}
	if _, err := app.KVv2("secret").Get(ctx, "other/x"); statusOf(err) != http.StatusForbidden {
		t.Fatalf("read outside policy: err = %v, want 403", err)
	}
	if _, err := app.Logical().Read("sys/mounts"); statusOf(err) != http.StatusForbidden {
		t.Fatalf("sys/mounts with app token: err = %v, want 403", err)
	}
	if l, err := app.Logical().List("secret/metadata/app/"); err != nil || l == nil {
		t.Fatalf("list allowed: %v, %v", l, err)
	}

	caps, err := app.Sys().CapabilitiesSelf("secret/data/app/db")
	if err != nil || !slices.Equal(caps, []string{"read"}) {
		t.Fatalf("capabilities-self = %v, %v", caps, err)
	}
	caps, err = c.Sys().Capabilities(tok.Auth.ClientToken, "secret/data/other/x")
	if err != nil || !slices.Equal(caps, []string{"deny"}) {
		t.Fatalf("capabilities on denied path = %v, %v", caps, err)
	}
	caps, err = c.Sys().CapabilitiesSelf("secret/data/anything")
	if err != nil || !slices.Equal(caps, []string{"root"}) {
		t.Fatalf("root capabilities = %v, %v", caps, err)
	}

	// A policy change applies to live tokens at once.
	if err := c.Sys().PutPolicy("app-read", `path "secret/data/app/*" { capabilities = ["read", "update", "create"] }`); err != nil {
		t.Fatal(err)
	}
	if _, err := app.KVv2("secret").Put(ctx, "app/db", map[string]any{"password": "x"}); err != nil {
		t.Fatalf("write after policy grant: %v", err)
	}
	if err := c.Sys().DeletePolicy("app-read"); err != nil {
		t.Fatal(err)
	}
	if _, err := app.KVv2("secret").Get(ctx, "app/db"); statusOf(err) != http.StatusForbidden {
		t.Fatalf("read after policy delete: err = %v, want 403", err)
	}
	if err := c.Sys().DeletePolicy("root"); statusOf(err) != 400 {
		t.Fatalf("deleting root policy: err = %v, want 400", err)
	}
}

func TestMounts(t *testing.T) {
	c := devClient(t)
	sys := c.Sys()
	if err := sys.Mount("team-kv", &vault.MountInput{Type: "kv-v2", Description: "team secrets",
		Config: vault.MountConfigInput{DefaultLeaseTTL: "1h", MaxLeaseTTL: "2h"}}); err != nil {
		t.Fatalf("mount: %v", err)
	}
	if err := sys.Mount("team-kv", &vault.MountInput{Type: "kv"}); err == nil {
		t.Fatal("mounting twice at one path succeeded")
	}
	cfg, err := sys.MountConfig("team-kv")
	if err != nil || cfg.DefaultLeaseTTL != 3600 || cfg.MaxLeaseTTL != 7200 {
		t.Fatalf("mount config = %+v, %v", cfg, err)
	}
	if err := sys.TuneMount("team-kv", vault.MountConfigInput{DefaultLeaseTTL: "30m", Description: ptr("tuned")}); err != nil {
		t.Fatalf("tune: %v", err)
	}
	if cfg, _ := sys.MountConfig("team-kv"); cfg.DefaultLeaseTTL != 1800 {
		t.Fatalf("after tune: %+v", cfg)
	}
	if _, err := c.KVv2("team-kv").Put(context.Background(), "a", map[string]any{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	if err := sys.Remount("team-kv", "moved-kv"); err != nil {
		t.Fatalf("remount: %v", err)
	}
	if s, err := c.KVv2("moved-kv").Get(context.Background(), "a"); err != nil || s.Data["k"] != "v" {
		t.Fatalf("data after remount: %v, %v", s, err)
	}
	if err := sys.Unmount("moved-kv"); err != nil {
		t.Fatalf("unmount: %v", err)
	}
	// Re-enabling at the same path starts empty: disabling deleted the data.
	if err := sys.Mount("moved-kv", &vault.MountInput{Type: "kv-v2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KVv2("moved-kv").Get(context.Background(), "a"); !errors.Is(err, vault.ErrSecretNotFound) {
		t.Fatalf("data survived unmount: %v", err)
	}
	if err := sys.Unmount("sys"); err == nil {
		t.Fatal("unmounting sys/ succeeded")
	}
	auths, err := sys.ListAuth()
	if err != nil || auths["token/"] == nil || auths["token/"].Type != "token" {
		t.Fatalf("auth list = %v, %v", auths, err)
	}
}

func TestInitUnsealSeal(t *testing.T) {
	addr := servertest.StartSealed(t)
	c := newClient(t, addr, "")
	sys := c.Sys()

	st, err := sys.SealStatus()
	if err != nil || st.Initialized || !st.Sealed {
		t.Fatalf("seal-status before init = %+v, %v", st, err)
	}
	health, err := sys.Health()
	if err != nil || health.Initialized {
		t.Fatalf("health before init = %+v, %v", health, err)
	}
	init, err := sys.Init(&vault.InitRequest{SecretShares: 5, SecretThreshold: 3})
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	if len(init.Keys) != 5 || len(init.KeysB64) != 5 || init.RootToken == "" {
		t.Fatalf("init response = %+v", init)
	}
	if _, err := sys.Init(&vault.InitRequest{SecretShares: 1, SecretThreshold: 1}); statusOf(err) != 400 {
		t.Fatalf("second init: %v", err)
	}
	// While sealed, secret paths answer 503.
	c.SetToken(init.RootToken)
	if _, err := c.Logical().Read("secret/data/x"); statusOf(err) != http.StatusServiceUnavailable {
		t.Fatalf("read while sealed: err = %v, want 503", err)
	}
	for i, k := range []string{init.Keys[0], init.KeysB64[3]} {
		st, err := sys.Unseal(k)
		if err != nil || !st.Sealed || st.Progress != i+1 {
			t.Fatalf("unseal step %d = %+v, %v", i+1, st, err)
		}
	}
	// A duplicate share does not count.
	if _, err := sys.Unseal(init.Keys[0]); err == nil {
		t.Log("duplicate share accepted without error")
	}
	st, err = sys.Unseal(init.Keys[4])
	if err != nil || st.Sealed {
		t.Fatalf("final unseal = %+v, %v", st, err)
	}
	if !strings.HasPrefix(st.Version, "1.") {
		t.Fatalf("version %q is not a Vault API semver", st.Version)
	}
	if err := sys.Mount("kv", &vault.MountInput{Type: "kv-v2"}); err != nil {
		t.Fatal(err)
	}
	ks, err := sys.KeyStatus()
	if err != nil || ks.Term != 1 {
		t.Fatalf("key-status = %+v, %v", ks, err)
	}
	if err := sys.Rotate(); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	if ks, _ := sys.KeyStatus(); ks.Term != 2 {
		t.Fatalf("term after rotate = %d", ks.Term)
	}
	// A non-root token cannot seal.
	tok, _ := c.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"default"}})
	if err := newClient(t, addr, tok.Auth.ClientToken).Sys().Seal(); statusOf(err) != http.StatusForbidden {
		t.Fatalf("seal with default token: err = %v, want 403", err)
	}
	if err := sys.Seal(); err != nil {
		t.Fatalf("seal: %v", err)
	}
	if st, _ := sys.SealStatus(); !st.Sealed {
		t.Fatal("still unsealed after seal")
	}
	resp, err := c.Logical().Read("auth/token/lookup-self")
	if statusOf(err) != http.StatusServiceUnavailable {
		t.Fatalf("lookup-self while sealed = %v, %v", resp, err)
	}
	// Reset discards progress.
	sys.Unseal(init.Keys[1])
	if st, err := sys.ResetUnsealProcess(); err != nil || st.Progress != 0 {
		t.Fatalf("reset = %+v, %v", st, err)
	}
}

func ptr[T any](v T) *T { return &v }

// mustToken creates a token with the given policies.
func mustToken(t *testing.T, c *vault.Client, policies ...string) string {
	t.Helper()
	s, err := c.Auth().Token().Create(&vault.TokenCreateRequest{Policies: policies})
	if err != nil {
		t.Fatal(err)
	}
	return s.Auth.ClientToken
}
