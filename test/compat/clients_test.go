package compat

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/arcasec/arca/internal/server/servertest"
)

// runClient runs a client script against a fresh dev server and a fresh
// uninitialised one. A missing client fails in CI (the test command
// installs it) and skips elsewhere.
func runClient(t *testing.T, installed func() bool, what string, name string, args ...string) {
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
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s failed: %v\n%s", what, err, out)
	}
	t.Logf("%s", out)
}

func TestNodeVault(t *testing.T) {
	runClient(t, func() bool {
		_, err := os.Stat(filepath.Join("node", "node_modules", "node-vault", "package.json"))
		_, nodeErr := exec.LookPath("node")
		return err == nil && nodeErr == nil
	}, "npm node-vault", "node", filepath.Join("node", "compat.js"))
}

func TestPythonHvac(t *testing.T) {
	runClient(t, func() bool {
		return exec.Command("/usr/bin/python3", "-c", "import hvac").Run() == nil
	}, "Debian python3-hvac", "/usr/bin/python3", filepath.Join("python", "compat.py"))
}
