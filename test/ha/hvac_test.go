package ha_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestHvacAgainstCluster runs python/ha.py, which drives a two-server
// cluster with Python hvac: standby health codes, sys/leader, a write
// through the standby, sys/ha-status and step-down.
func TestHvacAgainstCluster(t *testing.T) {
	if exec.Command("/usr/bin/python3", "-c", "import hvac").Run() != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("Python hvac is not installed: scripts/setup.d should have installed it")
		}
		t.Skip("Python hvac is not installed; run ./scripts/test to install it")
	}
	_, nodes := startNodes(t, 2, false)
	root, _ := initCluster(t, nodes, 0, 1)
	a := waitActive(t, nodes)
	cmd := exec.Command("/usr/bin/python3", filepath.Join("python", "ha.py"))
	cmd.Env = append(os.Environ(), "ACTIVE_ADDR="+nodes[a].addr, "STANDBY_ADDR="+nodes[1-a].addr, "VAULT_TOKEN="+root)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ha.py: %v\n%s", err, out)
	}
	t.Logf("%s", out)
	if b := waitActive(t, nodes); b == a {
		t.Fatal("after hvac's step-down the same server is active")
	}
}
