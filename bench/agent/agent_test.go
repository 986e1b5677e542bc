// Package agent measures `arca agent` with 20 templates: its resident
// memory and CPU while idle, and the time from a `kv put` to the
// re-rendered file with a low render interval. The same run measures
// OpenBao's agent (Vault Agent's code) when $ARCA_PEER_BAO names a bao
// binary built outside the repository.
//
// It runs only when asked:
//
//	ARCA_AGENT_BENCH=1 [ARCA_PEER_BAO=/path/to/bao] [ARCA_AGENT_INTERVALS=5m,1s,250ms] go test ./bench/agent/ -run TestAgentFootprint -v -timeout 20m
package agent

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/testutil/arcaproc"
)

const (
	templates = 20
	idleFor   = 30 * time.Second
	puts      = 20
)

func TestMain(m *testing.M) {
	code := m.Run()
	arcaproc.Cleanup()
	os.Exit(code)
}

func TestAgentFootprint(t *testing.T) {
	if os.Getenv("ARCA_AGENT_BENCH") == "" {
		t.Skip("set ARCA_AGENT_BENCH=1 to run the agent benchmark")
	}
	arca, err := arcaproc.Binary()
	if err != nil {
		t.Fatal(err)
	}
	bins := []struct{ name, bin string }{{"arca", arca}}
	if bao := os.Getenv("ARCA_PEER_BAO"); bao != "" {
		bins = append(bins, struct{ name, bin string }{"bao", bao})
	}
	for _, b := range bins {
		intervals := []string{"5m", "1s"}
		if list := os.Getenv("ARCA_AGENT_INTERVALS"); list != "" {
			intervals = strings.Split(list, ",")
		}
		for _, interval := range intervals {
			t.Run(b.name+"/interval="+interval, func(t *testing.T) { measure(t, b.bin, interval) })
		}
	}
}

func measure(t *testing.T, bin, interval string) {
	dir := t.TempDir()
	addr := freeAddr(t)
	server := exec.Command(bin, "server", "-dev", "-dev-listen-address="+addr, "-dev-root-token-id=bench-root")
	var serverLog bytes.Buffer
	server.Stdout, server.Stderr = &serverLog, &serverLog
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { server.Process.Kill(); server.Wait() }()

	conf := vault.DefaultConfig()
	conf.Address = "http://" + addr
	c, err := vault.NewClient(conf)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken("bench-root")
	waitUntil(t, 30*time.Second, func() bool { _, err := c.Sys().Health(); return err == nil })
	for i := range templates {
		if _, err := c.Logical().Write(fmt.Sprintf("secret/data/bench/s%d", i), map[string]any{
			"data": map[string]any{"password": fmt.Sprintf("v0-%d", i)},
		}); err != nil {
			t.Fatal(err)
		}
	}

	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("bench-root"), 0o600)
	var hcl strings.Builder
	fmt.Fprintf(&hcl, `
vault { address = "http://%s" }
auto_auth {
  method "token_file" { config = { token_file_path = %q } }
}
template_config { static_secret_render_interval = %q }
`, addr, tokenFile, interval)
	for i := range templates {
		fmt.Fprintf(&hcl, `
template {
  contents    = "{{ with secret \"secret/data/bench/s%d\" }}{{ .Data.data.password }}{{ end }}"
  destination = %q
}
`, i, filepath.Join(dir, fmt.Sprintf("out-%d", i)))
	}
	agentConf := filepath.Join(dir, "agent.hcl")
	os.WriteFile(agentConf, []byte(hcl.String()), 0o600)
	agent := exec.Command(bin, "agent", "-config="+agentConf)
	var agentLog bytes.Buffer
	agent.Stdout, agent.Stderr = &agentLog, &agentLog
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { agent.Process.Kill(); agent.Wait() }()
	for i := range templates {
		waitUntil(t, 60*time.Second, func() bool {
			b, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("out-%d", i)))
			return string(b) == fmt.Sprintf("v0-%d", i)
		})
	}

	// Idle: let start-up settle, then count CPU ticks over idleFor.
	time.Sleep(5 * time.Second)
	cpu0 := cpuTicks(t, agent.Process.Pid)
	time.Sleep(idleFor)
	cpu1 := cpuTicks(t, agent.Process.Pid)
	rss := rssKB(t, agent.Process.Pid)
	cpuPct := float64(cpu1-cpu0) / 100 / idleFor.Seconds() * 100
	t.Logf("idle with %d templates, interval %s: RSS %.1f MiB, CPU %.3f%% of one core (%d ticks in %s)",
		templates, interval, float64(rss)/1024, cpuPct, cpu1-cpu0, idleFor)

	if step, _ := time.ParseDuration(interval); step > 10*time.Second {
		return
	}
	// Latency from a put to the re-rendered file. Each put waits a random
	// part of the interval first, so puts do not line up with the re-reads.
	var lat []time.Duration
	step, _ := time.ParseDuration(interval)
	for n := 1; n <= puts; n++ {
		time.Sleep(rand.N(step))
		i := n % templates
		want := fmt.Sprintf("v%d-%d", n, i)
		start := time.Now()
		if _, err := c.Logical().Write(fmt.Sprintf("secret/data/bench/s%d", i), map[string]any{
			"data": map[string]any{"password": want},
		}); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, fmt.Sprintf("out-%d", i))
		waitUntilFast(t, 30*time.Second, func() bool { b, _ := os.ReadFile(out); return string(b) == want })
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	t.Logf("kv put → re-rendered file, interval %s, %d puts: min %s, median %s, p90 %s, max %s",
		interval, puts, lat[0].Round(time.Millisecond), lat[len(lat)/2].Round(time.Millisecond),
		lat[len(lat)*9/10].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitUntil(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitUntilFast polls every millisecond, for latency figures.
func waitUntilFast(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}

// cpuTicks is the process's user+system time in clock ticks (1/100 s).
func cpuTicks(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name, which ends with ')'.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return utime + stime
}

func rssKB(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return kb
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
