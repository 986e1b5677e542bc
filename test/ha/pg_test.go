package ha_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/testutil/arcaproc"
	"github.com/arcasec/arca/internal/testutil/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	arcaproc.Cleanup()
	os.Exit(code)
}

// pgCluster starts PostgreSQL and three arca processes on one database,
// initialised and unsealed, with KV v2 at secret/. It returns the servers,
// the root token and the index of the active one.
func pgCluster(t *testing.T) (*pgtest.Cluster, []*arcaproc.Server, string, int) {
	pg, servers, root, _, a := pgClusterUnsealed(t, 3)
	return pg, servers, root, a
}

// pgClusterUnsealed is pgCluster with only the first unsealed servers
// unsealed.
func pgClusterUnsealed(t *testing.T, unsealed int) (pg *pgtest.Cluster, servers []*arcaproc.Server, root, key string, active int) {
	t.Helper()
	if _, err := arcaproc.Binary(); err != nil {
		t.Fatal(err)
	}
	pg = pgtest.Start(t)
	stanza := fmt.Sprintf(`storage "postgresql" {
  connection_url = %q
  ha_enabled     = "true"
  max_parallel   = "8"
}
`, pg.URL())
	for i := 0; i < 3; i++ {
		s, err := arcaproc.Start(t.TempDir(), stanza)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("server %s log:\n%s", s.Addr, s.Log())
			}
			s.Kill()
		})
		servers = append(servers, s)
	}
	root, key, err := arcaproc.InitAndUnseal(servers[:unsealed])
	if err != nil {
		t.Fatal(err)
	}
	a, err := arcaproc.WaitActive(servers, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := arcaproc.Client(servers[a].Addr, root)
	if err := c.Sys().Mount("secret", &vault.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatal(err)
	}
	return pg, servers, root, key, a
}

// load is several clients writing unique keys, each pointed at one server
// (standbys forward), recording every write the cluster acknowledged.
type load struct {
	mu    sync.Mutex
	acked map[string]time.Time
	stop  chan struct{}
	wg    sync.WaitGroup
}

func startLoad(t *testing.T, servers []*arcaproc.Server, root string, writers int) *load {
	t.Helper()
	l := &load{acked: map[string]time.Time{}, stop: make(chan struct{})}
	for w := 0; w < writers; w++ {
		c, err := arcaproc.Client(servers[w%len(servers)].Addr, root)
		if err != nil {
			t.Fatal(err)
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for n := 0; ; n++ {
				select {
				case <-l.stop:
					return
				default:
				}
				key := fmt.Sprintf("w%d/k%d", w, n)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := c.KVv2("secret").Put(ctx, key, map[string]any{"v": key})
				cancel()
				if err == nil {
					l.mu.Lock()
					l.acked[key] = time.Now()
					l.mu.Unlock()
				} else {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	return l
}

// count is how many writes were acknowledged, and how many after since.
func (l *load) count(since time.Time) (all, after int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, at := range l.acked {
		all++
		if at.After(since) {
			after++
		}
	}
	return all, after
}

// firstAfter is the earliest acknowledgement after since.
func (l *load) firstAfter(since time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var first time.Time
	for _, at := range l.acked {
		if at.After(since) && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	return first, !first.IsZero()
}

func (l *load) waitFor(t *testing.T, since time.Time, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, after := l.count(since); after >= n {
			return
		}
		if time.Now().After(deadline) {
			_, after := l.count(since)
			t.Fatalf("only %d writes acknowledged after %s", after, since.Format(time.RFC3339Nano))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (l *load) finish() map[string]time.Time {
	close(l.stop)
	l.wg.Wait()
	return l.acked
}

// checkAcked reads every acknowledged write through addr.
func checkAcked(t *testing.T, addr, root string, acked map[string]time.Time) {
	t.Helper()
	c, _ := arcaproc.Client(addr, root)
	missing := 0
	for key := range acked {
		s, err := c.KVv2("secret").Get(context.Background(), key)
		if err != nil || s.Data["v"] != key {
			missing++
			if missing <= 5 {
				t.Errorf("acknowledged write %s: %v %v", key, s, err)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged writes are missing", missing, len(acked))
	}
	t.Logf("all %d acknowledged writes read back through %s", len(acked), addr)
}

// TestPGKillActiveUnderLoad: kill -9 of the active server while six
// clients (two per server) write; a standby takes over, every
// acknowledged write is readable afterwards, and the clients pointed at the
// surviving servers keep working.
func TestPGKillActiveUnderLoad(t *testing.T) {
	_, servers, root, a := pgCluster(t)
	l := startLoad(t, servers, root, 6)
	l.waitFor(t, time.Time{}, 60)

	servers[a].Kill()
	killed := time.Now()
	rest := append(append([]*arcaproc.Server{}, servers[:a]...), servers[a+1:]...)
	b, err := arcaproc.WaitActive(rest, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	l.waitFor(t, killed, 60)
	first, _ := l.firstAfter(killed)
	failover := first.Sub(killed)
	t.Logf("failover: kill -9 to the first acknowledged write on the new active server: %s", failover.Round(time.Millisecond))
	if failover > 30*time.Second {
		t.Errorf("failover took %s", failover)
	}
	acked := l.finish()
	checkAcked(t, rest[b].Addr, root, acked)
	checkAcked(t, rest[1-b].Addr, root, acked) // through the standby
}

// TestPGStepDownUnderLoad: sys/step-down under load hands over without
// losing an acknowledged write.
func TestPGStepDownUnderLoad(t *testing.T) {
	_, servers, root, a := pgCluster(t)
	l := startLoad(t, servers, root, 6)
	l.waitFor(t, time.Time{}, 60)
	c, _ := arcaproc.Client(servers[a].Addr, root)
	if err := c.Sys().StepDown(); err != nil {
		t.Fatal(err)
	}
	stepped := time.Now()
	b, err := arcaproc.WaitActive(servers, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if b == a {
		t.Fatal("the server that stepped down is active again at once")
	}
	l.waitFor(t, stepped, 60)
	acked := l.finish()
	checkAcked(t, servers[b].Addr, root, acked)
}

// TestPGRestartUnderLoad: PostgreSQL stopped (connections cut) for five
// seconds and started again under load; the servers reconnect, one is
// active, and nothing acknowledged is lost.
func TestPGRestartUnderLoad(t *testing.T) {
	pg, servers, root, _ := pgCluster(t)
	l := startLoad(t, servers, root, 6)
	l.waitFor(t, time.Time{}, 60)
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	// Longer than the holder waits for a renewal: the active server gives
	// the lock up, and the servers elect one again once the database is back.
	time.Sleep(5 * time.Second)
	if err := pg.Restart(); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	l.waitFor(t, restarted, 60)
	gaveUp := false
	for _, s := range servers {
		gaveUp = gaveUp || strings.Contains(s.Log(), "lost the HA lock")
	}
	if !gaveUp {
		t.Error("no server reports giving up the lock during a 5 s outage of the database")
	}
	acked := l.finish()
	b, err := arcaproc.WaitActive(servers, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	checkAcked(t, servers[b].Addr, root, acked)
}

// TestPGSealedStandbyNeverActive: with the active server killed and the
// other servers sealed, nobody becomes active; unsealing one makes it
// active, with the data the first one wrote.
func TestPGSealedStandbyNeverActive(t *testing.T) {
	_, servers, root, key, a := pgClusterUnsealed(t, 1)
	if a != 0 {
		t.Fatalf("active = %d, want the only unsealed server", a)
	}
	servers[0].Kill()
	// Longer than the lock's lifetime: a sealed server would have taken it.
	time.Sleep(8 * time.Second)
	for _, i := range []int{1, 2} {
		if got := arcaproc.Health(servers[i].Addr); got != 503 {
			t.Fatalf("sealed server %d: sys/health = %d, want 503", i, got)
		}
	}
	c, _ := arcaproc.Client(servers[1].Addr, "")
	st, err := c.Sys().SealStatus()
	if err != nil || !st.Initialized {
		t.Fatalf("seal-status of server 1: %+v %v", st, err)
	}
	if err := arcaproc.Unseal(servers[1], key); err != nil {
		t.Fatal(err)
	}
	if b, err := arcaproc.WaitActive(servers[1:], 30*time.Second); err != nil || b != 0 {
		t.Fatalf("after unsealing server 1: active %d, %v", b+1, err)
	}
	c.SetToken(root)
	if mounts, err := c.Sys().ListMounts(); err != nil || mounts["secret/"] == nil {
		t.Fatalf("the new active server's mounts: %v %v", mounts, err)
	}
}
