package compat

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/arcasec/arca/internal/server/servertest"
	"github.com/arcasec/arca/internal/testutil/pgtest"
)

// runClient runs a client script against a fresh dev server and a fresh
// uninitialised one, with env added to its environment. A missing client
// fails in CI (the test command installs it) and skips elsewhere. It
// returns the script's output.
func runClient(t *testing.T, installed func() bool, env func() []string, what string, name string, args ...string) string {
	t.Helper()
	if !installed() {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed: scripts/setup.d should have installed it", what)
		}
		t.Skipf("%s is not installed; run ./scripts/test to install it", what)
	}
	addr, root := servertest.StartDev(t)
	sealed := servertest.StartSealed(t)
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "VAULT_ADDR="+addr, "VAULT_TOKEN="+root, "SEALED_ADDR="+sealed)
	if env != nil {
		cmd.Env = append(cmd.Env, env()...)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s failed: %v\n%s", what, err, out)
	}
	t.Logf("%s", out)
	return string(out)
}

// TestNodeVault runs node/compat.js, which also takes dynamic PostgreSQL
// credentials through their lease (read, renew, revoke) from a throwaway
// cluster, and prints the usernames it was issued so that PostgreSQL can
// be checked here: the revoked user is gone, the other one is still there.
func TestNodeVault(t *testing.T) {
	var pg *pgtest.Cluster
	out := runClient(t, func() bool {
		_, err := os.Stat(filepath.Join("node", "node_modules", "node-vault", "package.json"))
		_, nodeErr := exec.LookPath("node")
		return err == nil && nodeErr == nil
	}, func() []string {
		pg = pgtest.Start(t)
		return []string{"PG_HOST=" + pg.Host, "PG_PORT=" + strconv.Itoa(pg.Port), "PG_USER=" + pg.User, "PG_PASSWORD=" + pg.Password}
	}, "npm node-vault", "node", filepath.Join("node", "compat.js"))

	users := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && strings.HasPrefix(k, "DB_USER_") {
			users[k] = strings.TrimSpace(v)
		}
	}
	revoked, kept := users["DB_USER_REVOKED"], users["DB_USER_KEPT"]
	if revoked == "" || kept == "" {
		t.Fatalf("compat.js did not name the database users it was issued: %v", users)
	}
	exists := func(name string) bool { return pg.RoleExists(t, name) }
	if exists(revoked) {
		t.Fatalf("user %s survived sys/leases/revoke from node-vault", revoked)
	}
	if !exists(kept) {
		t.Fatalf("user %s, whose lease was not revoked, is gone", kept)
	}
}

func TestPythonHvac(t *testing.T) {
	runClient(t, func() bool {
		return exec.Command("/usr/bin/python3", "-c", "import hvac").Run() == nil
	}, nil, "Debian python3-hvac", "/usr/bin/python3", filepath.Join("python", "compat.py"))
}
