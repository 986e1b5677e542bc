package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPidFile: with pid_file set, the server writes its process ID there
// while it runs and removes the file when it stops.
func TestPidFile(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "arca.pid")
	conf := filepath.Join(dir, "server.hcl")
	hcl := fmt.Sprintf(`storage "inmem" {}
disable_mlock = true
pid_file = %q
listener "tcp" {
  address     = %q
  tls_disable = true
}
`, pidFile, freeAddr(t))
	if err := os.WriteFile(conf, []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(arcaBinary(t), "server", "-config="+conf)
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	var raw []byte
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if b, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(b), "\n") {
			raw = b
			break
		}
	}
	if raw == nil {
		cmd.Process.Kill()
		cmd.Wait() // the output is complete once the process is gone
		t.Fatalf("no pid file written; server output:\n%s", output.String())
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(string(raw))); err != nil || pid != cmd.Process.Pid {
		t.Fatalf("pid file holds %q, want %d", raw, cmd.Process.Pid)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("server exit after SIGTERM: %v", err)
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Fatalf("pid file after shutdown: %v, want it removed", err)
	}
}
