package compat

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/server/servertest"
)

// attackerPolicy allows everything under secret/ and kv1/ except the admin/
// subtrees. The ACL only ever sees the request path, so a backend that took
// the path it acts on from request data would let this token reach admin/.
const attackerPolicy = `
path "secret/data/*"           { capabilities = ["create", "read", "update", "delete", "list"] }
path "secret/metadata*"        { capabilities = ["create", "read", "update", "delete", "list"] }
path "secret/data/admin/*"     { capabilities = ["deny"] }
path "secret/metadata/admin/*" { capabilities = ["deny"] }
path "kv1*"                     { capabilities = ["create", "read", "update", "delete", "list"] }
path "kv1/admin/*"             { capabilities = ["deny"] }
`

// captureFixture is a dev server with admin secrets in KV v2 (secret/) and
// KV v1 (kv1/), and a token whose policy denies them.
type captureFixture struct {
	addr     string
	root     *vault.Client
	attacker *vault.Client
}

func newCaptureFixture(t *testing.T) *captureFixture {
	t.Helper()
	ctx := context.Background()
	addr, rootToken := servertest.StartDev(t)
	root := newClient(t, addr, rootToken)
	if err := root.Sys().Mount("kv1", &vault.MountInput{Type: "kv"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"admin/db", "admin/x", "app/db"} {
		if _, err := root.KVv2("secret").Put(ctx, p, map[string]any{"password": "v-" + p}); err != nil {
			t.Fatal(err)
		}
		if err := root.KVv1("kv1").Put(ctx, p, map[string]any{"password": "v-" + p}); err != nil {
			t.Fatal(err)
		}
	}
	if err := root.Sys().PutPolicy("attacker", attackerPolicy); err != nil {
		t.Fatal(err)
	}
	f := &captureFixture{addr: addr, root: root, attacker: newClient(t, addr, mustToken(t, root, "attacker"))}
	// The policy means what the test relies on: admin/ is out of reach.
	for _, p := range []string{"secret/data/admin/db", "secret/metadata/admin/db", "kv1/admin/db"} {
		if _, err := f.attacker.Logical().Read(p); statusOf(err) != http.StatusForbidden {
			t.Fatalf("direct read of %s: err = %v, want 403", p, err)
		}
	}
	return f
}

// do sends a request as the attacker and returns the status and body.
func (f *captureFixture) do(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	status, _, raw := rawRequest(t, method, f.addr+"/v1/"+path, f.attacker.Token(), body)
	return status, string(raw)
}

// adminIntact checks, as root, that the admin secrets are as written.
func (f *captureFixture) adminIntact(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for _, p := range []string{"admin/db", "admin/x"} {
		s, err := f.root.KVv2("secret").Get(ctx, p)
		if err != nil || s.Data["password"] != "v-"+p || s.VersionMetadata.Version != 1 {
			t.Errorf("secret/%s after the attack: %+v, %v", p, s, err)
		}
		m, err := f.root.KVv2("secret").GetMetadata(ctx, p)
		if err != nil || m.MaxVersions != 0 || len(m.CustomMetadata) != 0 {
			t.Errorf("secret/metadata/%s after the attack: %+v, %v", p, m, err)
		}
		v1, err := f.root.KVv1("kv1").Get(ctx, p)
		if err != nil || len(v1.Data) != 1 || v1.Data["password"] != "v-"+p {
			t.Errorf("kv1/%s after the attack: %+v, %v", p, v1, err)
		}
	}
}

func listKeys(t *testing.T, body string) []string {
	t.Helper()
	var out struct {
		Data struct {
			Keys []string `json:"keys"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("list response %q: %v", body, err)
	}
	return out.Data.Keys
}

// TestCapturesKVv2Metadata sends a path in the query string or body of
// requests on secret/metadata: the metadata acted on is always the one the
// URL names, so the admin/ secrets the policy denies stay out of reach.
func TestCapturesKVv2Metadata(t *testing.T) {
	f := newCaptureFixture(t)

	for _, path := range []string{"secret/metadata/?path=admin/db", "secret/metadata?path=admin/db"} {
		if status, body := f.do(t, "GET", path, ""); status != http.StatusBadRequest || !strings.Contains(body, "path") {
			t.Errorf("GET %s: %d %s; want 400 naming the missing path", path, status, body)
		}
	}
	// The data's path is ignored: LIST on the root lists the root.
	status, body := f.do(t, "LIST", "secret/metadata/?path=admin/", "")
	if keys := listKeys(t, body); status != http.StatusOK || !slices.Equal(keys, []string{"admin/", "app/"}) {
		t.Errorf("LIST secret/metadata/?path=admin/: %d %s; want the root's keys", status, body)
	}
	if status, body := f.do(t, "DELETE", "secret/metadata/?path=admin/x", ""); status != http.StatusBadRequest {
		t.Errorf("DELETE secret/metadata/?path=admin/x: %d %s; want 400", status, body)
	}
	for _, path := range []string{"secret/metadata", "secret/metadata/"} {
		status, body := f.do(t, "POST", path, `{"path":"admin/db","max_versions":1,"custom_metadata":{"owner":"attacker"}}`)
		if status != http.StatusBadRequest {
			t.Errorf("POST %s with a path in the body: %d %s; want 400", path, status, body)
		}
	}
	// "metadata" is a whole segment: metadataadmin/db is not metadata/admin/db.
	for _, method := range []string{"GET", "POST", "DELETE"} {
		if status, body := f.do(t, method, "secret/metadataadmin/db", `{"max_versions":1}`); status != http.StatusNotFound {
			t.Errorf("%s secret/metadataadmin/db: %d %s; want 404", method, status, body)
		}
	}
	f.adminIntact(t)
}

// TestCapturesKVv1Root sends a path in the query string or body of requests
// on the root of a KV v1 mount: they act on the empty path, as Vault's do
// (read: 404, write: 400, delete: nothing, list: the root).
func TestCapturesKVv1Root(t *testing.T) {
	f := newCaptureFixture(t)

	if status, body := f.do(t, "GET", "kv1/?path=admin/db", ""); status != http.StatusNotFound || strings.Contains(body, "v-admin") {
		t.Errorf("GET kv1/?path=admin/db: %d %s; want 404", status, body)
	}
	if status, body := f.do(t, "POST", "kv1/", `{"path":"admin/db","password":"pwned"}`); status != http.StatusBadRequest || !strings.Contains(body, "path") {
		t.Errorf("POST kv1/ with a path in the body: %d %s; want 400 naming the path", status, body)
	}
	if status, body := f.do(t, "DELETE", "kv1/?path=admin/db", ""); status >= 300 {
		t.Errorf("DELETE kv1/?path=admin/db: %d %s; want the no-op of an empty path", status, body)
	}
	status, body := f.do(t, "LIST", "kv1/?path=admin/", "")
	if keys := listKeys(t, body); status != http.StatusOK || !slices.Equal(keys, []string{"admin/", "app/"}) {
		t.Errorf("LIST kv1/?path=admin/: %d %s; want the root's keys", status, body)
	}
	f.adminIntact(t)
}

// TestCapturesVaultAPIClient drives the same attacks through the Vault Go
// client's calls that carry data, and checks that a KV v1 secret may still
// hold a key called "path".
func TestCapturesVaultAPIClient(t *testing.T) {
	ctx := context.Background()
	f := newCaptureFixture(t)
	a := f.attacker.Logical()
	adminPath := map[string][]string{"path": {"admin/db"}}

	if s, err := a.ReadWithDataWithContext(ctx, "kv1/", adminPath); err != nil || s != nil {
		t.Errorf("ReadWithData(kv1/, path=admin/db) = %+v, %v; want nothing", s, err)
	}
	if s, err := a.ReadWithDataWithContext(ctx, "secret/metadata/", adminPath); statusOf(err) != http.StatusBadRequest {
		t.Errorf("ReadWithData(secret/metadata/, path=admin/db) = %+v, %v; want 400", s, err)
	}
	if s, err := a.DeleteWithDataWithContext(ctx, "secret/metadata/", map[string][]string{"path": {"admin/x"}}); statusOf(err) != http.StatusBadRequest {
		t.Errorf("DeleteWithData(secret/metadata/, path=admin/x) = %+v, %v; want 400", s, err)
	}
	if _, err := a.DeleteWithDataWithContext(ctx, "kv1/", adminPath); err != nil {
		t.Errorf("DeleteWithData(kv1/, path=admin/db): %v; want the no-op of an empty path", err)
	}
	if s, err := a.WriteWithContext(ctx, "kv1/", map[string]any{"path": "admin/db", "password": "pwned"}); statusOf(err) != http.StatusBadRequest {
		t.Errorf("Write(kv1/, path=admin/db) = %+v, %v; want 400", s, err)
	}
	if s, err := a.WriteWithContext(ctx, "secret/metadata", map[string]any{"path": "admin/db", "max_versions": 1}); statusOf(err) != http.StatusBadRequest {
		t.Errorf("Write(secret/metadata, path=admin/db) = %+v, %v; want 400", s, err)
	}
	list, err := a.ListWithContext(ctx, "secret/metadata/")
	if err != nil || list == nil || !slices.Equal(toStrings(list.Data["keys"]), []string{"admin/", "app/"}) {
		t.Errorf("List(secret/metadata/) = %+v, %v; want the root's keys", list, err)
	}
	f.adminIntact(t)

	// A KV v1 secret may hold a key called "path": it is content, stored
	// where the URL says.
	if _, err := a.WriteWithContext(ctx, "kv1/team/b", map[string]any{"path": "admin/db", "password": "mine"}); err != nil {
		t.Fatal(err)
	}
	s, err := a.ReadWithContext(ctx, "kv1/team/b")
	if err != nil || s == nil || s.Data["path"] != "admin/db" || s.Data["password"] != "mine" {
		t.Fatalf("kv1/team/b = %+v, %v; want the written map, path key included", s, err)
	}
	f.adminIntact(t)
}

// TestCapturesAudit checks that the audit log records the path a request
// acted on: a read of kv1/ with a path in its query returns no secret, so
// the entry for kv1/ holds none either.
func TestCapturesAudit(t *testing.T) {
	ctx := context.Background()
	f := newCaptureFixture(t)
	logPath := filepath.Join(t.TempDir(), "audit.log")
	if err := f.root.Sys().EnableAuditWithOptionsWithContext(ctx, "file", &vault.EnableAuditOptions{
		Type: "file", Options: map[string]string{"file_path": logPath},
	}); err != nil {
		t.Fatal(err)
	}
	f.do(t, "GET", "kv1/?path=admin/db", "")
	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	e := findEntry(parseAuditLines(t, raw), "response", "read", "kv1/")
	if e == nil {
		t.Fatalf("no response entry for the read of kv1/ in %s", raw)
	}
	if e.Response != nil && e.Response.Data["password"] != nil {
		t.Fatalf("the read of kv1/ returned a secret: %+v", e.Response.Data)
	}
}

// TestCapturesTokenRole: a token role is named by the path of
// auth/token/create/<role>, which the ACL checks; a role_name in the body of
// auth/token/create or create-orphan is not a role to create against.
func TestCapturesTokenRole(t *testing.T) {
	c := devClient(t)
	if err := c.Sys().PutPolicy("admin", `path "secret/*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }`); err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().PutPolicy("creator", `
path "auth/token/create"        { capabilities = ["update"] }
path "auth/token/create-orphan" { capabilities = ["update"] }
`); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("auth/token/roles/priv", map[string]any{"allowed_policies": "admin"}); err != nil {
		t.Fatal(err)
	}
	creator := newClient(t, c.Address(), mustToken(t, c, "creator"))
	if _, err := creator.Logical().Write("auth/token/create/priv", map[string]any{}); statusOf(err) != http.StatusForbidden {
		t.Fatalf("create against the role: err = %v, want 403", err)
	}
	for _, path := range []string{"auth/token/create", "auth/token/create-orphan"} {
		s, err := creator.Logical().Write(path, map[string]any{"role_name": "priv"})
		if err != nil {
			t.Errorf("%s with role_name in the body: %v", path, err)
			continue
		}
		if slices.Contains(s.Auth.Policies, "admin") {
			t.Errorf("%s with role_name in the body issued a token of the role: policies %v", path, s.Auth.Policies)
		}
	}
}
