package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/storage"
	"github.com/arcasec/arca/internal/testutil/pgtest"
)

// migrate runs `arca operator migrate` with a configuration of the two
// stanzas and returns its exit status and output.
func migrate(t *testing.T, dir, source, destination string, args ...string) (bool, string) {
	t.Helper()
	conf := filepath.Join(dir, "migrate.hcl")
	if err := os.WriteFile(conf, []byte(source+"\n"+destination+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(arcaBinary(t), append([]string{"operator", "migrate", "-config=" + conf}, args...)...).CombinedOutput()
	return err == nil, string(out)
}

// TestMigrateBoltToPostgresqlAndBack: a store written on bolt (KV versions,
// a policy, tokens) is copied to PostgreSQL and then to a new bolt file; a
// server on each copy unseals with the original keys and serves every
// version to the original tokens, with the same policies.
func TestMigrateBoltToPostgresqlAndBack(t *testing.T) {
	ctx := context.Background()
	pg := pgtest.Start(t)
	boltDir := t.TempDir()
	srv := startBoltServer(t, boltDir)
	c := client(t, srv.addr, "")
	init := initServer(t, c, 3, 2)
	kv := c.KVv2("secret")
	for v := 1; v <= 3; v++ {
		if _, err := kv.Put(ctx, "app/db", map[string]any{"password": fmt.Sprintf("v%d", v)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := kv.Put(ctx, "other/x", map[string]any{"k": "private"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().PutPolicy("app-read", `path "secret/data/app/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	appTok, err := c.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"app-read"}, TTL: "24h"})
	if err != nil {
		t.Fatal(err)
	}
	srv.stop(t)

	check := func(name, storageStanza string) {
		t.Helper()
		srv := startServer(t, t.TempDir(), storageStanza)
		defer srv.stop(t)
		c := client(t, srv.addr, init.RootToken)
		st, err := c.Sys().SealStatus()
		if err != nil || !st.Sealed || !st.Initialized {
			t.Fatalf("%s: a migrated store starts initialised and sealed: %+v, %v", name, st, err)
		}
		unseal(t, c, init.Keys[1:])
		kv := c.KVv2("secret")
		for v := 1; v <= 3; v++ {
			s, err := kv.GetVersion(ctx, "app/db", v)
			if err != nil || s.Data["password"] != fmt.Sprintf("v%d", v) {
				t.Fatalf("%s: version %d = %+v, %v", name, v, s, err)
			}
		}
		if meta, err := kv.GetMetadata(ctx, "app/db"); err != nil || meta.CurrentVersion != 3 {
			t.Fatalf("%s: metadata = %+v, %v", name, meta, err)
		}
		app := client(t, srv.addr, appTok.Auth.ClientToken)
		self, err := app.Auth().Token().LookupSelf()
		if err != nil {
			t.Fatalf("%s: the app token: %v", name, err)
		}
		if pols, _ := self.TokenPolicies(); strings.Join(pols, ",") != "app-read,default" {
			t.Fatalf("%s: app token policies = %v", name, pols)
		}
		if s, err := app.KVv2("secret").Get(ctx, "app/db"); err != nil || s.Data["password"] != "v3" {
			t.Fatalf("%s: app token reads app/db: %+v, %v", name, s, err)
		}
		if _, err := app.KVv2("secret").Get(ctx, "other/x"); err == nil || !strings.Contains(err.Error(), fmt.Sprint(http.StatusForbidden)) {
			t.Fatalf("%s: app token reading other/x: %v, want 403", name, err)
		}
	}

	boltSrc := fmt.Sprintf(`storage_source "bolt" { path = %q }`, filepath.Join(boltDir, "arca.db"))
	pgStanza := fmt.Sprintf(`"postgresql" {
  connection_url = %q
  table          = "migrated_kv"
}`, pg.URL())
	ok, out := migrate(t, t.TempDir(), boltSrc, "storage_destination "+pgStanza)
	if !ok || !strings.Contains(out, "Success! Copied") {
		t.Fatalf("bolt → postgresql: %s", out)
	}
	// A second copy into the same table is refused: it would mix stores.
	if ok, out := migrate(t, t.TempDir(), boltSrc, "storage_destination "+pgStanza); ok || !strings.Contains(out, "already holds data") {
		t.Fatalf("a migration into a store in use: ok=%v\n%s", ok, out)
	}
	check("postgresql", "storage "+pgStanza)

	backDir := t.TempDir()
	backPath := filepath.Join(backDir, "back.db")
	ok, out = migrate(t, t.TempDir(), "storage_source "+pgStanza, fmt.Sprintf(`storage_destination "file" { path = %q }`, backPath))
	if !ok || !strings.Contains(out, "Success! Copied") {
		t.Fatalf("postgresql → bolt: %s", out)
	}
	check("bolt again", fmt.Sprintf(`storage "bolt" { path = %q }`, backPath))

	// A server refuses a store whose migration lock a halted migration left.
	b, err := storage.OpenBolt(backPath)
	if err != nil {
		t.Fatal(err)
	}
	b.Put(ctx, &storage.Entry{Key: storage.MigrationLockKey, Value: []byte(`{"start":"2026-12-01T10:00:00Z"}`)})
	b.Close()
	conf := filepath.Join(backDir, "server.hcl")
	os.WriteFile(conf, []byte(fmt.Sprintf(`storage "bolt" { path = %q }
disable_mlock = true
listener "tcp" {
  address = "127.0.0.1:0"
  tls_disable = true
}
`, backPath)), 0o600)
	if out, err := exec.Command(arcaBinary(t), "server", "-config="+conf).CombinedOutput(); err == nil || !strings.Contains(string(out), "migration is in progress") {
		t.Fatalf("server on a locked store: %v\n%s", err, out)
	}
	if ok, out := migrate(t, t.TempDir(), fmt.Sprintf(`storage_source "bolt" { path = %q }`, backPath), `storage_destination "bolt" { path = "/nonexistent/never.db" }`, "-reset"); !ok || !strings.Contains(out, "lock reset") {
		t.Fatalf("migrate -reset: %s", out)
	}
}
