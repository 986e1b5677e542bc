package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arcasec/arca/internal/server/servertest"
)

// arca runs the CLI in-process and returns its exit code and output.
func arca(t *testing.T, in string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	stdin, stdout, stderr = strings.NewReader(in), &out, &errb
	defer func() { stdin, stdout, stderr = os.Stdin, os.Stdout, os.Stderr }()
	code := Run(args)
	return code, out.String(), errb.String()
}

func devEnv(t *testing.T) (addr, root string) {
	t.Helper()
	addr, root = servertest.StartDev(t)
	t.Setenv("HOME", t.TempDir())
	t.Setenv("VAULT_ADDR", addr)
	t.Setenv("VAULT_TOKEN", root)
	t.Setenv("ARCA_ADDR", "")
	t.Setenv("ARCA_TOKEN", "")
	t.Setenv("VAULT_FORMAT", "")
	return addr, root
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := arca(t, "", args...)
	if code != 0 {
		t.Fatalf("arca %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func TestKVCommands(t *testing.T) {
	devEnv(t)
	out := mustRun(t, "kv", "put", "secret/app/db", "username=app", "password=s3cr3t")
	if !strings.Contains(out, "secret/data/app/db") || !strings.Contains(out, "version") {
		t.Fatalf("kv put output:\n%s", out)
	}
	out = mustRun(t, "kv", "get", "secret/app/db")
	for _, want := range []string{"==== Secret Path ====", "secret/data/app/db", "==== Metadata ====", "==== Data ====", "password", "s3cr3t"} {
		if !strings.Contains(out, want) {
			t.Fatalf("kv get output lacks %q:\n%s", want, out)
		}
	}
	if out := mustRun(t, "kv", "get", "-field=password", "secret/app/db"); out != "s3cr3t\n" {
		t.Fatalf("-field output %q", out)
	}
	if out := mustRun(t, "kv", "get", "-format=json", "-field=password", "secret/app/db"); out != "\"s3cr3t\"\n" {
		t.Fatalf("-format=json -field output %q", out)
	}
	out = mustRun(t, "kv", "get", "-format=json", "secret/app/db")
	var env struct {
		Data struct {
			Data     map[string]string
			Metadata map[string]any
		}
	}
	if err := json.Unmarshal([]byte(out), &env); err != nil || env.Data.Data["username"] != "app" {
		t.Fatalf("json output %q: %v", out, err)
	}
	if out := mustRun(t, "kv", "get", "-format=yaml", "secret/app/db"); !strings.Contains(out, "username: app") {
		t.Fatalf("yaml output:\n%s", out)
	}
	// -mount form, patch, cas.
	mustRun(t, "kv", "patch", "-mount=secret", "app/db", "password=rotated")
	if out := mustRun(t, "kv", "get", "-field=password", "-mount=secret", "app/db"); out != "rotated\n" {
		t.Fatalf("after patch %q", out)
	}
	code, _, errOut := arca(t, "", "kv", "put", "-cas=1", "secret/app/db", "password=x")
	if code == 0 || !strings.Contains(errOut, "check-and-set") {
		t.Fatalf("stale cas: exit %d, %q", code, errOut)
	}
	if out := mustRun(t, "kv", "get", "-version=1", "-field=password", "secret/app/db"); out != "s3cr3t\n" {
		t.Fatalf("version 1 = %q", out)
	}
	mustRun(t, "kv", "put", "secret/app/api", "key=k")
	if out := mustRun(t, "kv", "list", "secret/app"); !strings.Contains(out, "api") || !strings.Contains(out, "db") {
		t.Fatalf("list:\n%s", out)
	}
	mustRun(t, "kv", "delete", "secret/app/db")
	code, _, _ = arca(t, "", "kv", "get", "-field=password", "secret/app/db")
	if code == 0 {
		t.Fatal("read of a deleted version succeeded")
	}
	mustRun(t, "kv", "undelete", "-versions=2", "secret/app/db")
	mustRun(t, "kv", "destroy", "-versions=1", "secret/app/db")
	mustRun(t, "kv", "rollback", "-version=2", "secret/app/db")
	if out := mustRun(t, "kv", "get", "-field=password", "secret/app/db"); out != "rotated\n" {
		t.Fatalf("after rollback %q", out)
	}
	mustRun(t, "kv", "metadata", "put", "-max-versions=5", "-custom-metadata=owner=team-a", "secret/app/db")
	out = mustRun(t, "kv", "metadata", "get", "secret/app/db")
	if !strings.Contains(out, "owner:team-a") || !strings.Contains(out, "==== Version 3 ====") {
		t.Fatalf("metadata get:\n%s", out)
	}
	mustRun(t, "kv", "metadata", "delete", "secret/app/db")
	if code, _, _ := arca(t, "", "kv", "get", "secret/app/db"); code != 2 {
		t.Fatalf("get after metadata delete: exit %d, want 2", code)
	}

	// KV v1 through the same commands.
	mustRun(t, "secrets", "enable", "-path=old", "-version=1", "kv")
	mustRun(t, "kv", "put", "old/x", "a=b")
	if out := mustRun(t, "kv", "get", "-field=a", "old/x"); out != "b\n" {
		t.Fatalf("v1 get %q", out)
	}
}

func TestPolicyTokenCommands(t *testing.T) {
	addr, _ := devEnv(t)
	dir := t.TempDir()
	pf := filepath.Join(dir, "app.hcl")
	os.WriteFile(pf, []byte(`path "secret/data/app/*" { capabilities = ["read"] }
path   "secret/metadata/app/*"   {
capabilities = [ "list" ] }`), 0o644)
	mustRun(t, "policy", "write", "app-read", pf)
	if out := mustRun(t, "policy", "list"); !strings.Contains(out, "app-read") || !strings.Contains(out, "default") {
		t.Fatalf("policy list:\n%s", out)
	}
	if out := mustRun(t, "policy", "read", "app-read"); !strings.Contains(out, "secret/data/app/*") {
		t.Fatalf("policy read:\n%s", out)
	}
	mustRun(t, "policy", "fmt", pf)
	formatted, _ := os.ReadFile(pf)
	if !strings.Contains(string(formatted), "path \"secret/metadata/app/*\" {\n  capabilities = [\"list\"]\n}") {
		t.Fatalf("policy fmt:\n%s", formatted)
	}
	mustRun(t, "kv", "put", "secret/app/db", "password=p")
	tok := strings.TrimSpace(mustRun(t, "token", "create", "-policy=app-read", "-ttl=1h", "-field=token"))
	if !strings.HasPrefix(tok, "hvs.") {
		t.Fatalf("token create -field=token = %q", tok)
	}
	if out := mustRun(t, "token", "capabilities", tok, "secret/data/app/db"); out != "read\n" {
		t.Fatalf("capabilities = %q", out)
	}
	if out := mustRun(t, "token", "lookup", tok); !strings.Contains(out, "app-read") {
		t.Fatalf("lookup:\n%s", out)
	}
	// Log in as the app token: reads work, writes are denied with one clear line.
	if code, _, errOut := arca(t, "", "login", "-address="+addr, tok); code != 0 {
		t.Fatalf("login: %s", errOut)
	}
	t.Setenv("VAULT_TOKEN", "")
	if out := mustRun(t, "kv", "get", "-field=password", "secret/app/db"); out != "p\n" {
		t.Fatalf("read as app token %q", out)
	}
	code, _, errOut := arca(t, "", "kv", "put", "secret/app/db", "password=x")
	if code == 0 || !strings.Contains(errOut, "permission denied") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Fatalf("denied write: exit %d, stderr %q", code, errOut)
	}
	if out := mustRun(t, "token", "renew", "-increment=30m"); !strings.Contains(out, "30m") {
		t.Fatalf("renew:\n%s", out)
	}
	mustRun(t, "token", "revoke", "-self")
	if code, _, _ := arca(t, "", "token", "lookup"); code == 0 {
		t.Fatal("revoked token still looks itself up")
	}
}

func TestOperatorAndStatus(t *testing.T) {
	addr := servertest.StartSealed(t)
	t.Setenv("HOME", t.TempDir())
	t.Setenv("VAULT_ADDR", addr)
	t.Setenv("VAULT_TOKEN", "")
	t.Setenv("ARCA_ADDR", "")
	t.Setenv("ARCA_TOKEN", "")
	if code, out, _ := arca(t, "", "status"); code != 2 || !strings.Contains(out, "Initialized") {
		t.Fatalf("status before init: exit %d\n%s", code, out)
	}
	out := mustRun(t, "operator", "init", "-key-shares=3", "-key-threshold=2", "-format=json")
	var init struct {
		Keys []string `json:"unseal_keys_b64"`
		Root string   `json:"root_token"`
	}
	if err := json.Unmarshal([]byte(out), &init); err != nil || len(init.Keys) != 3 {
		t.Fatalf("init output %q: %v", out, err)
	}
	if out := mustRun(t, "operator", "unseal", init.Keys[0]); !strings.Contains(out, "1/2") {
		t.Fatalf("unseal 1:\n%s", out)
	}
	// The second key comes from stdin, as at the prompt.
	if code, out, _ := arca(t, init.Keys[2]+"\n", "operator", "unseal"); code != 0 || !strings.Contains(out, "Sealed          false") {
		t.Fatalf("unseal 2: %d\n%s", code, out)
	}
	t.Setenv("ARCA_TOKEN", init.Root)
	if code, out, _ := arca(t, "", "status"); code != 0 || !strings.Contains(out, "Sealed          false") {
		t.Fatalf("status unsealed: %d\n%s", code, out)
	}
	mustRun(t, "secrets", "enable", "-path=kv", "-version=2", "kv")
	if out := mustRun(t, "secrets", "list"); !strings.Contains(out, "kv/") || !strings.Contains(out, "sys/") {
		t.Fatalf("secrets list:\n%s", out)
	}
	mustRun(t, "secrets", "tune", "-default-lease-ttl=1h", "kv")
	mustRun(t, "secrets", "move", "kv", "kv2")
	mustRun(t, "secrets", "disable", "kv2")
	if out := mustRun(t, "operator", "key-status"); !strings.Contains(out, "Key Term") {
		t.Fatalf("key-status:\n%s", out)
	}
	mustRun(t, "operator", "rotate")
	mustRun(t, "write", "sys/policies/acl/x", `policy=path "a/*" { capabilities = ["read"] }`)
	if out := mustRun(t, "read", "-field=policy", "sys/policies/acl/x"); !strings.Contains(out, `path "a/*"`) {
		t.Fatalf("generic read:\n%s", out)
	}
	if out := mustRun(t, "list", "sys/policies/acl"); !strings.Contains(out, "x") {
		t.Fatalf("generic list:\n%s", out)
	}
	mustRun(t, "delete", "sys/policies/acl/x")
	mustRun(t, "operator", "seal")
	if code, _, _ := arca(t, "", "status"); code != 2 {
		t.Fatalf("status when sealed: exit %d, want 2", code)
	}
}

func TestErrorsAreOneLine(t *testing.T) {
	t.Setenv("VAULT_ADDR", "http://127.0.0.1:1")
	t.Setenv("ARCA_ADDR", "")
	code, _, errOut := arca(t, "", "read", "secret/x")
	if code == 0 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.HasPrefix(errOut, "Error") {
		t.Fatalf("unreachable server: exit %d, stderr %q", code, errOut)
	}
	if code, _, _ := arca(t, "", "nonsense"); code != 1 {
		t.Fatalf("unknown command exit %d", code)
	}
	if code, _, errOut := arca(t, "", "kv", "get", "-format=xml", "secret/x"); code != 1 || !strings.Contains(errOut, "format") {
		t.Fatalf("bad format: %d %q", code, errOut)
	}
}

func TestArcaEnvWins(t *testing.T) {
	addr, root := devEnv(t)
	t.Setenv("VAULT_ADDR", "http://127.0.0.1:1")
	t.Setenv("VAULT_TOKEN", "wrong")
	t.Setenv("ARCA_ADDR", addr)
	t.Setenv("ARCA_TOKEN", root)
	mustRun(t, "kv", "put", "secret/env", "a=1")
}
