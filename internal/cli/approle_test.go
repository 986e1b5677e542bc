package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arcasec/arca/api"
)

// The AppRole method end to end through the CLI against a real server:
// enable, a role, its role ID, a secret ID, and arca login -method=approle
// with the secret ID from stdin; the stored token is the login's.
func TestApproleThroughCLI(t *testing.T) {
	devEnv(t)
	mustRun(t, "auth", "enable", "approle")
	mustRun(t, "write", "auth/approle/role/ci", "token_policies=default", "secret_id_num_uses=1")
	var roleID struct {
		Data struct {
			RoleID string `json:"role_id"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, "read", "-format=json", "auth/approle/role/ci/role-id")), &roleID); err != nil || roleID.Data.RoleID == "" {
		t.Fatalf("role-id: %v", err)
	}
	secretID := strings.TrimSpace(mustRun(t, "write", "-f", "-field=secret_id", "auth/approle/role/ci/secret-id"))
	if secretID == "" {
		t.Fatal("no secret ID")
	}
	t.Setenv("VAULT_TOKEN", "")
	code, out, errOut := arca(t, secretID+"\n", "login", "-method=approle", "role_id="+roleID.Data.RoleID, "secret_id=-")
	if code != 0 {
		t.Fatalf("login: exit %d\n%s\n%s", code, out, errOut)
	}
	stored, err := os.ReadFile(filepath.Join(os.Getenv("HOME"), api.TokenFile))
	if err != nil || len(strings.TrimSpace(string(stored))) == 0 {
		t.Fatalf("no stored token: %v", err)
	}
	if out := mustRun(t, "token", "lookup"); !strings.Contains(out, "role_name") {
		t.Fatalf("the stored token is not the approle login's:\n%s", out)
	}
	// The secret ID was single-use.
	if code, _, errOut := arca(t, secretID+"\n", "login", "-method=approle", "role_id="+roleID.Data.RoleID, "secret_id=-"); code == 0 || !strings.Contains(errOut, "invalid role or secret ID") {
		t.Fatalf("second login with a single-use secret ID: exit %d, %s", code, errOut)
	}
}
