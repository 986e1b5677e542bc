package ha_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/server"
	"github.com/arcasec/arca/internal/storage"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// node is one in-process server of a cluster sharing an in-memory store.
type node struct {
	srv  *server.Server
	addr string
}

// startNodes starts n servers on one in-memory HA store, each advertising
// its own listener.
func startNodes(t *testing.T, n int, redirect bool) (*storage.InmemHA, []*node) {
	t.Helper()
	return startNodesWith(t, n, server.Config{StandbyRedirect: redirect})
}

// startNodesWith is startNodes with the catalog, clock, redirect and
// API audit settings of base.
func startNodesWith(t *testing.T, n int, base server.Config) (*storage.InmemHA, []*node) {
	t.Helper()
	store := storage.NewInmemHA()
	var nodes []*node
	for i := 0; i < n; i++ {
		srv, err := server.New(&server.Config{
			Storage:         server.StorageConfig{Type: "inmem"},
			StorageBackend:  store,
			Listeners:       []server.ListenerConfig{{Type: "tcp", Address: "127.0.0.1:0", TLSDisable: true}},
			StepDownWait:    300 * time.Millisecond,
			StandbyRedirect: base.StandbyRedirect,
			Catalog:         base.Catalog,
			Clock:           base.Clock,

			UnsafeAllowAPIAuditCreation: base.UnsafeAllowAPIAuditCreation,
		}, quiet())
		if err != nil {
			t.Fatal(err)
		}
		addrs, err := srv.Start()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			srv.Shutdown(ctx)
		})
		nodes = append(nodes, &node{srv: srv, addr: "http://" + addrs[0]})
	}
	return store, nodes
}

func client(t *testing.T, addr, token string) *vault.Client {
	t.Helper()
	conf := vault.DefaultConfig()
	conf.Address = addr
	conf.MaxRetries = 0
	c, err := vault.NewClient(conf)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
}

// initCluster initialises the store through the first node and unseals
// every node given; it returns the root token and the key.
func initCluster(t *testing.T, nodes []*node, unseal ...int) (root, key string) {
	t.Helper()
	c := client(t, nodes[0].addr, "")
	res, err := c.Sys().Init(&vault.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range unseal {
		if _, err := client(t, nodes[i].addr, "").Sys().Unseal(res.Keys[0]); err != nil {
			t.Fatal(err)
		}
	}
	return res.RootToken, res.Keys[0]
}

// waitActive waits until exactly one of nodes answers sys/health with 200
// as the active server, and returns its index. The deadline only stops a
// broken test from hanging.
func waitActive(t *testing.T, nodes []*node, skip ...int) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		active := -1
		count := 0
		for i, n := range nodes {
			if contains(skip, i) {
				continue
			}
			if healthCode(t, n.addr, "") == http.StatusOK {
				active, count = i, count+1
			}
		}
		if count > 1 {
			t.Fatalf("%d servers report active at once", count)
		}
		if count == 1 {
			return active
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no server became active")
	return -1
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func healthCode(t *testing.T, addr, query string) int {
	t.Helper()
	resp, err := http.Get(addr + "/v1/sys/health" + query)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestStandbyForwardsAndReportsLeader(t *testing.T) {
	_, nodes := startNodes(t, 3, false)
	root, _ := initCluster(t, nodes, 0, 1, 2)
	a := waitActive(t, nodes)
	s := (a + 1) % 3

	if got := healthCode(t, nodes[s].addr, ""); got != http.StatusTooManyRequests {
		t.Errorf("sys/health on a standby = %d, want 429", got)
	}
	if got := healthCode(t, nodes[s].addr, "?standbyok=true"); got != http.StatusOK {
		t.Errorf("sys/health?standbyok=true on a standby = %d, want 200", got)
	}
	if got := healthCode(t, nodes[s].addr, "?standbycode=299"); got != 299 {
		t.Errorf("sys/health?standbycode=299 on a standby = %d", got)
	}

	// A client pointed at a standby writes and reads through the active server.
	sc := client(t, nodes[s].addr, root)
	if err := sc.Sys().Mount("secret", &vault.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.KVv2("secret").Put(context.Background(), "app", map[string]any{"v": "1"}); err != nil {
		t.Fatal(err)
	}
	got, err := client(t, nodes[a].addr, root).KVv2("secret").Get(context.Background(), "app")
	if err != nil || got.Data["v"] != "1" {
		t.Fatalf("read on the active server after a write through a standby: %v %v", got, err)
	}

	// Headers travel with the body: a wrapping request through the standby
	// comes back wrapped by the active server.
	req, _ := http.NewRequest(http.MethodPost, nodes[s].addr+"/v1/sys/wrapping/wrap", strings.NewReader(`{"k":"v"}`))
	req.Header.Set("X-Vault-Token", root)
	req.Header.Set("X-Vault-Wrap-TTL", "60")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var wrapped struct {
		WrapInfo *struct {
			Token string `json:"token"`
		} `json:"wrap_info"`
	}
	json.NewDecoder(resp.Body).Decode(&wrapped)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || wrapped.WrapInfo == nil || wrapped.WrapInfo.Token == "" {
		t.Fatalf("wrap through a standby: status %d, %+v", resp.StatusCode, wrapped)
	}
	un, err := client(t, nodes[a].addr, wrapped.WrapInfo.Token).Logical().Unwrap("")
	if err != nil || un.Data["k"] != "v" {
		t.Fatalf("unwrapping on the active server: %v %v", un, err)
	}

	ls, err := sc.Sys().Leader()
	if err != nil {
		t.Fatal(err)
	}
	if !ls.HAEnabled || ls.IsSelf || ls.LeaderAddress != nodes[a].addr {
		t.Errorf("sys/leader on a standby = %+v, want the active server %s", ls, nodes[a].addr)
	}
	la, err := client(t, nodes[a].addr, root).Sys().Leader()
	if err != nil || !la.IsSelf || la.LeaderAddress != nodes[a].addr {
		t.Errorf("sys/leader on the active server = %+v, %v", la, err)
	}

	// Every node sent a heartbeat at unseal: ha-status lists all three.
	hs, err := sc.Sys().HAStatus()
	if err != nil {
		t.Fatal(err)
	}
	if len(hs.Nodes) != 3 {
		t.Fatalf("sys/ha-status lists %d nodes, want 3: %+v", len(hs.Nodes), hs.Nodes)
	}
	for _, n := range hs.Nodes {
		if n.ActiveNode != (n.APIAddress == nodes[a].addr) {
			t.Errorf("ha-status node %s active_node=%v", n.APIAddress, n.ActiveNode)
		}
	}
}

func TestStandbyRedirects(t *testing.T) {
	_, nodes := startNodes(t, 2, true)
	root, _ := initCluster(t, nodes, 0, 1)
	a := waitActive(t, nodes)
	s := 1 - a
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodGet, nodes[s].addr+"/v1/sys/mounts?x=1", nil)
	req.Header.Set("X-Vault-Token", root)
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != nodes[a].addr+"/v1/sys/mounts?x=1" {
		t.Fatalf("standby answered %d Location=%q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// vault/api follows the redirect, with the body of a write.
	sc := client(t, nodes[s].addr, root)
	if _, err := sc.Sys().ListMounts(); err != nil {
		t.Fatal(err)
	}
	if err := sc.Sys().Mount("secret", &vault.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.KVv2("secret").Put(context.Background(), "app", map[string]any{"v": "redirected"}); err != nil {
		t.Fatal(err)
	}
	got, err := client(t, nodes[a].addr, root).KVv2("secret").Get(context.Background(), "app")
	if err != nil || got.Data["v"] != "redirected" {
		t.Fatalf("a write redirected by the standby, read on the active server: %v %v", got, err)
	}
}

func TestStepDownHandsOver(t *testing.T) {
	_, nodes := startNodes(t, 3, false)
	root, _ := initCluster(t, nodes, 0, 1, 2)
	a := waitActive(t, nodes)
	c := client(t, nodes[a].addr, root)
	if err := c.Sys().Mount("secret", &vault.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatal(err)
	}
	// A key rotation on the active server: the next one must read what
	// was written under the new key.
	if err := c.Sys().Rotate(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KVv2("secret").Put(context.Background(), "before", map[string]any{"v": "1"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().StepDown(); err != nil {
		t.Fatal(err)
	}
	// Right after step-down returns, the old active server is a standby.
	if got := healthCode(t, nodes[a].addr, ""); got == http.StatusOK {
		t.Fatalf("the server that stepped down still reports active")
	}
	b := waitActive(t, nodes)
	if b == a {
		t.Fatalf("the server that stepped down took the lock back before the others")
	}
	got, err := client(t, nodes[a].addr, root).KVv2("secret").Get(context.Background(), "before")
	if err != nil || got.Data["v"] != "1" {
		t.Fatalf("a write acknowledged before step-down, read through the old active: %v %v", got, err)
	}
	ks, err := client(t, nodes[b].addr, root).Sys().KeyStatus()
	if err != nil || ks.Term != 2 {
		t.Fatalf("key status on the new active server: %+v %v, want term 2", ks, err)
	}
}

func TestLostLockStopsServing(t *testing.T) {
	store, nodes := startNodes(t, 2, false)
	root, _ := initCluster(t, nodes, 0, 1)
	a := waitActive(t, nodes)
	c := client(t, nodes[a].addr, root)
	if _, err := c.Sys().ListMounts(); err != nil {
		t.Fatal(err)
	}
	// Someone else takes the lock: the active server loses it and must stop
	// serving, so nobody serves.
	foreign := store.Seize("core/lock", `{"node_id":"elsewhere"}`)
	waitFor(t, func() bool { return healthCode(t, nodes[a].addr, "") == http.StatusTooManyRequests })
	for i, n := range nodes {
		if got := healthCode(t, n.addr, ""); got != http.StatusTooManyRequests {
			t.Errorf("node %d: sys/health = %d while another holds the lock, want 429", i, got)
		}
	}
	var re *vault.ResponseError
	if _, err := c.Sys().ListMounts(); !errors.As(err, &re) || re.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a request to the server that lost the lock: %v, want 503", err)
	}
	// The lock is free again: one of them takes it and serves.
	foreign.Unlock()
	b := waitActive(t, nodes)
	if _, err := client(t, nodes[b].addr, root).Sys().ListMounts(); err != nil {
		t.Fatal(err)
	}
}

func TestSealedStandbyNeverActive(t *testing.T) {
	_, nodes := startNodes(t, 2, false)
	root, _ := initCluster(t, nodes, 0) // node 1 stays sealed
	a := waitActive(t, nodes)
	if a != 0 {
		t.Fatalf("active = %d", a)
	}
	if err := client(t, nodes[0].addr, root).Sys().Seal(); err != nil {
		t.Fatal(err)
	}
	// No server holds the lock now: node 1 is sealed and never contends.
	time.Sleep(500 * time.Millisecond)
	for i, n := range nodes {
		if got := healthCode(t, n.addr, ""); got != http.StatusServiceUnavailable {
			t.Errorf("node %d: sys/health = %d, want 503 (sealed)", i, got)
		}
	}
}

func TestSealActiveHandsOver(t *testing.T) {
	_, nodes := startNodes(t, 2, false)
	root, _ := initCluster(t, nodes, 0, 1)
	a := waitActive(t, nodes)
	if err := client(t, nodes[a].addr, root).Sys().Seal(); err != nil {
		t.Fatal(err)
	}
	b := waitActive(t, nodes, a)
	if b == a {
		t.Fatal("sealed server is active")
	}
	var re *vault.ResponseError
	_, err := client(t, nodes[a].addr, root).Sys().ListMounts()
	if !errors.As(err, &re) || re.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a sealed former active server answered %v", err)
	}
}
