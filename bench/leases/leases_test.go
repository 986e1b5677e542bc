// Package leases benchmarks the expiration manager at scale: it fills a
// bolt-backed server with outstanding leases from a cheap stub engine, then
// restarts it in a child process and reports restart-to-ready time,
// resident memory, and the rate at which expired leases are revoked.
//
// It runs only when asked:
//
//	ARCA_LEASE_BENCH=1000000 go test ./bench/leases/ -run TestLeaseScale -v -timeout 2h
//
// ARCA_LEASE_BENCH_DIR puts the bolt file elsewhere than a temporary
// directory; ARCA_LEASE_BENCH_CRASH=1 kills the first restarted server
// instead of sealing it, so the second counts every lease after unseal.
package leases

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/logical/leasetest"
	"github.com/arcasec/arca/internal/server"
	"github.com/arcasec/arca/internal/server/servertest"
)

// shiftedClock is the real clock moved by an offset, so a restarted server
// finds leases expired without anyone waiting for them.
type shiftedClock struct{ offset time.Duration }

func (c shiftedClock) Now() time.Time                         { return time.Now().Add(c.offset) }
func (c shiftedClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

func newServer(dbPath, addr string, offset time.Duration, e *leasetest.Engine) (*server.Server, error) {
	cat := server.Catalog()
	cat.Secrets["stub"] = e.Factory
	return server.New(&server.Config{
		Storage:   server.StorageConfig{Type: "bolt", Options: map[string]string{"path": dbPath}},
		Listeners: []server.ListenerConfig{{Type: "tcp", Address: addr, TLSDisable: true}},
		Catalog:   &cat,
		Clock:     shiftedClock{offset},
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// TestMain makes the test binary double as the restarted server.
func TestMain(m *testing.M) {
	if os.Getenv("ARCA_LEASE_BENCH_CHILD") != "" {
		child()
		return
	}
	os.Exit(m.Run())
}

func child() {
	start := time.Now()
	offset, _ := time.ParseDuration(os.Getenv("ARCA_LEASE_BENCH_OFFSET"))
	srv, err := newServer(os.Getenv("ARCA_LEASE_BENCH_DB"), os.Getenv("ARCA_LEASE_BENCH_ADDR"), offset, leasetest.NewEngine(0))
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	if _, err := srv.Start(); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	key, _ := strconv.Unquote(os.Getenv("ARCA_LEASE_BENCH_KEY"))
	if err := srv.Core.Unseal(context.Background(), []byte(key)); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Printf("ready %d\n", time.Since(start).Milliseconds())
	// SIGTERM seals cleanly (the lease count is kept); SIGKILL is a crash.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
	srv.Shutdown(context.Background())
	os.Exit(0)
}

func TestLeaseScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("ARCA_LEASE_BENCH"))
	if n == 0 {
		t.Skip("set ARCA_LEASE_BENCH to the number of leases")
	}
	expiring := n / 5 // these get a 1h TTL, the rest 48h
	ctx := context.Background()
	dir := os.Getenv("ARCA_LEASE_BENCH_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	db := filepath.Join(dir, "arca.db")

	// Fill: the stub's TTL is switched half-way, so the first fifth expire
	// first.
	e := leasetest.NewEngine(0)
	e.TTL = time.Hour
	srv, err := newServer(db, "127.0.0.1:0", 0, e)
	if err != nil {
		t.Fatal(err)
	}
	root, key := servertest.InitUnseal(t, srv)
	if err := srv.Core.EnableSecretsEngine(ctx, "stub/", "stub", nil, ""); err != nil {
		t.Fatal(err)
	}
	fill := func(count int) {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(count) {
					_, err := srv.Core.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: "stub/creds/bench", ClientToken: root})
					if err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	}
	start := time.Now()
	fill(expiring)
	e.TTL = 48 * time.Hour
	fill(n - expiring)
	fillTime := time.Since(start)
	srv.Shutdown(ctx)
	st, _ := os.Stat(db)
	t.Logf("filled %d leases in %s (%.0f/s); bolt file %d MB", n, fillTime.Round(time.Millisecond), float64(n)/fillTime.Seconds(), st.Size()>>20)

	// Restart with every lease in place: time to ready and memory.
	run := func(offset time.Duration) (stop func(clean bool), readyMs string, wall time.Duration, pid int, addr string) {
		addr = "127.0.0.1:" + strconv.Itoa(18400+int(offset/time.Hour))
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "ARCA_LEASE_BENCH_CHILD=1", "ARCA_LEASE_BENCH_DB="+db, "ARCA_LEASE_BENCH_ADDR="+addr,
			"ARCA_LEASE_BENCH_OFFSET="+offset.String(), "ARCA_LEASE_BENCH_KEY="+strconv.Quote(string(key)))
		out, _ := cmd.StdoutPipe()
		begin := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var line [64]byte
		k, _ := out.Read(line[:])
		wall = time.Since(begin)
		got := strings.TrimSpace(string(line[:k]))
		if !strings.HasPrefix(got, "ready ") {
			cmd.Process.Kill()
			t.Fatalf("child: %q", got)
		}
		return func(clean bool) {
			if clean {
				cmd.Process.Signal(syscall.SIGTERM)
			} else {
				cmd.Process.Kill()
			}
			cmd.Wait()
		}, strings.TrimPrefix(got, "ready "), wall, cmd.Process.Pid, addr
	}
	stop, readyMs, wall, pid, addr := run(0)
	readyRSS := rss(pid)
	begin := time.Now()
	count := waitCount(t, addr, root, func(c int64) bool { return c == int64(n) })
	t.Logf("restart with %d leases: unsealed and serving in %s ms (process start to ready: %s); RSS at ready %s; lease count complete %s later; RSS then %s",
		count, readyMs, wall.Round(time.Millisecond), readyRSS, time.Since(begin).Round(time.Millisecond), rss(pid))
	stop(os.Getenv("ARCA_LEASE_BENCH_CRASH") == "")

	// Restart two hours later: the first fifth are due at once. Timed from
	// ready; after a crash (ARCA_LEASE_BENCH_CRASH=1) this includes
	// counting every lease first.
	stop, readyMs, _, pid, addr = run(2 * time.Hour)
	defer stop(false)
	begin = time.Now()
	target := int64(n - expiring)
	above := false
	waitCount(t, addr, root, func(c int64) bool {
		above = above || c > target
		return above && c <= target
	})
	took := time.Since(begin)
	t.Logf("revoked %d expired leases in %s: %.0f revocations/s (restart %s ms); RSS %s", expiring, took.Round(time.Millisecond), float64(expiring)/took.Seconds(), readyMs, rss(pid))
}

func waitCount(t *testing.T, addr, token string, done func(int64) bool) int64 {
	begin := time.Now()
	for {
		c := leaseCount(t, addr, token)
		if done(c) {
			return c
		}
		if time.Since(begin) > 30*time.Minute {
			t.Fatalf("lease count stuck at %d", c)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func leaseCount(t *testing.T, addr, token string) int64 {
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v1/sys/leases/count", nil)
	req.Header.Set("X-Vault-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			LeaseCount int64 `json:"lease_count"`
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Data.LeaseCount
}

func rss(pid int) string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	// RssFile is bolt's memory map: pages of the page cache the kernel
	// maps around each one read, shared and dropped under pressure.
	var parts []string
	for _, line := range strings.Split(string(raw), "\n") {
		for _, name := range []string{"VmRSS:", "RssAnon:", "RssFile:"} {
			if strings.HasPrefix(line, name) {
				parts = append(parts, strings.TrimSuffix(name, ":")+" "+strings.Join(strings.Fields(strings.TrimPrefix(line, name)), " "))
			}
		}
	}
	return strings.Join(parts, ", ")
}
