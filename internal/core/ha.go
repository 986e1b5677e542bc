package core

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/arcasec/arca/internal/logical"
	fw "github.com/arcasec/arca/internal/logical/framework"
	"github.com/arcasec/arca/internal/storage"
	"github.com/arcasec/arca/internal/version"
)

// High availability: several servers share one store; the one that holds
// the store's HA lock is active and serves, the others are standbys. A
// standby is unsealed (it holds the keyring, so it takes over without
// anyone typing keys) but loads nothing else and serves nothing behind the
// barrier; its HTTP layer forwards requests to the active server. Taking
// the lock loads the mount table, policies, tokens and lease index and
// starts expiry and the rollback loop; losing it, stepping down or sealing
// stops them before the lock is let go, so two servers never act as the
// active one at once.

// ErrStandby is returned by the request paths of a standby core: the
// request belongs to the active server.
var ErrStandby = logical.Errorf(http.StatusServiceUnavailable, "this server is a standby: send the request to the active server")

const (
	haLockKey      = "core/lock"
	haNodesPrefix  = "core/ha-nodes/"
	haEchoInterval = 5 * time.Second
	// haNodeExpiry is how long a node that stopped echoing is still listed
	// by sys/ha-status.
	haNodeExpiry        = 30 * time.Second
	defaultStepDownWait = 2 * time.Second
	haRetryWait         = time.Second
)

// haState is the core's part in the election.
type haState struct {
	nodeID   string
	stop     chan struct{} // closed by Seal: stop contending, let the lock go
	done     chan struct{} // closed once the lock is let go
	stepDown chan chan struct{}
}

// haLockValue is what the lock holder advertises.
type haLockValue struct {
	NodeID      string `json:"node_id"`
	APIAddr     string `json:"api_addr"`
	ClusterAddr string `json:"cluster_addr"`
}

// haNode is a server's heartbeat, stored outside the barrier (addresses,
// no secrets) so standbys can write it without the keyring being current.
type haNode struct {
	NodeID      string    `json:"node_id"`
	Hostname    string    `json:"hostname"`
	APIAddr     string    `json:"api_address"`
	ClusterAddr string    `json:"cluster_address"`
	LastEcho    time.Time `json:"last_echo"`
}

// haBackend is the storage's lock, or nil when HA is off.
func (c *Core) haBackend() storage.HABackend {
	if hb, ok := c.conf.Storage.(storage.HABackend); ok && hb.HAEnabled() {
		return hb
	}
	return nil
}

// HAEnabled reports whether this server takes part in an HA cluster.
func (c *Core) HAEnabled() bool { return c.haBackend() != nil }

// Standby reports whether the core is an unsealed standby.
func (c *Core) Standby() bool { return c.standby.Load() }

// checkActive is the error of a core that cannot serve: sealed, or standby.
func (c *Core) checkActive() error {
	if c.Sealed() {
		return logical.ErrSealed
	}
	if c.standby.Load() {
		return ErrStandby
	}
	return nil
}

func (c *Core) clusterAddr() string {
	if c.conf.ClusterAddr != "" {
		return c.conf.ClusterAddr
	}
	return c.conf.APIAddr
}

// loadClusterInfo reads the cluster's name and ID from behind the barrier.
func (c *Core) loadClusterInfo(ctx context.Context) error {
	var ci clusterInfo
	if _, err := c.getJSON(ctx, clusterKey, &ci); err != nil {
		return err
	}
	c.clusterID = ci.ID
	c.clusterName = ci.Name
	if c.clusterName == "" && len(ci.ID) >= 8 {
		c.clusterName = "arca-cluster-" + ci.ID[:8]
	}
	return nil
}

// enterStandby opens the core as a standby and starts contending for the
// lock; the barrier is open and c.stateLock is held.
func (c *Core) enterStandby(ctx context.Context) error {
	if err := c.loadClusterInfo(ctx); err != nil {
		return err
	}
	c.barrier.SetPassive(true)
	c.standby.Store(true)
	c.sealed.Store(false)
	c.ha.stop, c.ha.done = make(chan struct{}), make(chan struct{})
	go c.runHA(c.ha.stop, c.ha.done)
	c.logger.Info("core unsealed as a standby; waiting for the HA lock")
	return nil
}

// stopHA tells the election loop to stop and returns the channel that
// closes once it has let the lock go; c.stateLock is held.
func (c *Core) stopHA() chan struct{} {
	if c.ha.stop == nil {
		return nil
	}
	close(c.ha.stop)
	done := c.ha.done
	c.ha.stop, c.ha.done = nil, nil
	return done
}

// runHA contends for the lock until stop closes: it serves while it holds
// the lock and goes back to standby when it loses it or steps down.
func (c *Core) runHA(stop, done chan struct{}) {
	var echoes sync.WaitGroup
	echoes.Add(1)
	go func() {
		defer echoes.Done()
		c.echoLoop(stop)
	}()
	defer close(done)
	defer echoes.Wait()
	ctx := context.Background()
	raw, _ := json.Marshal(haLockValue{NodeID: c.ha.nodeID, APIAddr: c.conf.APIAddr, ClusterAddr: c.clusterAddr()})
	for {
		lock, err := c.haBackend().LockWith(haLockKey, string(raw))
		var lost <-chan struct{}
		if err == nil {
			lost, err = lock.Lock(stop)
		}
		if err != nil {
			c.logger.Warn("contending for the HA lock failed; retrying", "error", err)
			if !sleepOrStop(stop, haRetryWait) {
				return
			}
			continue
		}
		if lost == nil {
			return // stopped
		}
		c.stateLock.Lock()
		if c.Sealed() {
			c.stateLock.Unlock()
			c.unlock(lock)
			return
		}
		if err := c.becomeActive(ctx); err != nil {
			c.teardown(ctx)
			c.barrier.SetPassive(true)
			c.stateLock.Unlock()
			c.unlock(lock)
			c.logger.Error("taking over as the active server failed; staying standby", "error", err)
			if !sleepOrStop(stop, haRetryWait) {
				return
			}
			continue
		}
		c.stateLock.Unlock()
		c.logger.Info("acquired the HA lock: this server is active")

		var stepped chan struct{}
		select {
		case <-stop:
			// Seal tears down under the state lock: wait for it, then let go.
			c.stateLock.Lock()
			c.stateLock.Unlock()
			c.unlock(lock)
			return
		case <-lost:
			c.fenced.Store(true)
			c.logger.Warn("lost the HA lock: this server stops serving and becomes a standby")
		case stepped = <-c.ha.stepDown:
			c.logger.Info("stepping down: this server becomes a standby")
		}
		// New requests go to the active server from now on; those under way
		// finish before the state is torn down.
		c.standby.Store(true)
		c.stateLock.Lock()
		sealed := c.Sealed()
		if sealed {
			c.standby.Store(false) // Seal tore down; a sealed core is no standby
		} else {
			c.teardown(ctx)
			c.barrier.SetPassive(true)
		}
		c.stateLock.Unlock()
		c.unlock(lock)
		c.fenced.Store(false)
		if stepped != nil {
			close(stepped)
		}
		if sealed {
			return
		}
		if stepped != nil {
			wait := c.conf.StepDownWait
			if wait <= 0 {
				wait = defaultStepDownWait
			}
			if !sleepOrStop(stop, wait) {
				return
			}
		}
	}
}

// becomeActive loads the state behind the barrier; c.stateLock is held.
func (c *Core) becomeActive(ctx context.Context) error {
	// Step-down requests made while standby are stale.
	for {
		select {
		case ch := <-c.ha.stepDown:
			close(ch)
			continue
		default:
		}
		break
	}
	if err := c.barrier.Reload(ctx); err != nil {
		return err
	}
	c.barrier.SetPassive(false)
	if err := c.postUnseal(ctx); err != nil {
		return err
	}
	c.standby.Store(false)
	return nil
}

func (c *Core) unlock(l storage.Lock) {
	if err := l.Unlock(); err != nil {
		c.logger.Warn("releasing the HA lock failed; it expires on its own", "error", err)
	}
}

func sleepOrStop(stop <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-stop:
		return false
	case <-t.C:
		return true
	}
}

// StepDown makes the active server give up the lock and become a standby;
// it returns once it has (or ctx ends). On a server without HA it does
// nothing.
func (c *Core) StepDown(ctx context.Context) error {
	if c.haBackend() == nil {
		return nil
	}
	if err := c.checkActive(); err != nil {
		return err
	}
	done := make(chan struct{})
	select {
	case c.ha.stepDown <- done:
	default:
		return nil // a step-down is already under way
	}
	// A seal at the same moment ends the election loop without answering;
	// the wait is bounded so the caller is not held forever.
	t := time.NewTimer(stepDownAnswerWait)
	defer t.Stop()
	select {
	case <-done:
	case <-ctx.Done():
	case <-t.C:
	}
	return nil
}

const stepDownAnswerWait = 30 * time.Second

// echoLoop writes this node's heartbeat until stop, then removes it.
func (c *Core) echoLoop(stop <-chan struct{}) {
	host, _ := os.Hostname()
	key := haNodesPrefix + c.ha.nodeID
	for {
		n := haNode{NodeID: c.ha.nodeID, Hostname: host, APIAddr: c.conf.APIAddr, ClusterAddr: c.clusterAddr(), LastEcho: time.Now().UTC()}
		ctx, cancel := context.WithTimeout(context.Background(), haEchoInterval)
		if err := c.phys.Put(ctx, &storage.Entry{Key: key, Value: mustJSON(n)}); err != nil {
			c.logger.Debug("writing the HA heartbeat failed", "error", err)
		}
		cancel()
		if !sleepOrStop(stop, haEchoInterval) {
			ctx, cancel := context.WithTimeout(context.Background(), haEchoInterval)
			_ = c.phys.Delete(ctx, key)
			cancel()
			return
		}
	}
}

// LeaderStatus is what sys/leader reports.
type LeaderStatus struct {
	HAEnabled            bool
	IsSelf               bool
	ActiveTime           time.Time
	LeaderAddress        string
	LeaderClusterAddress string
}

// Leader reports which server is active.
func (c *Core) Leader() (LeaderStatus, error) {
	hb := c.haBackend()
	if hb == nil {
		return LeaderStatus{}, nil
	}
	if c.Sealed() {
		return LeaderStatus{}, logical.ErrSealed
	}
	st := LeaderStatus{HAEnabled: true}
	if !c.standby.Load() {
		c.stateLock.RLock()
		at := c.activeTime
		c.stateLock.RUnlock()
		st.IsSelf, st.ActiveTime = true, at
		st.LeaderAddress, st.LeaderClusterAddress = c.conf.APIAddr, c.clusterAddr()
		return st, nil
	}
	l, err := hb.LockWith(haLockKey, "")
	if err != nil {
		return st, err
	}
	held, raw, err := l.Value()
	if err != nil || !held {
		return st, err
	}
	var v haLockValue
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		return st, errors.New("the HA lock holds a value this server cannot read")
	}
	st.IsSelf = v.NodeID == c.ha.nodeID
	st.LeaderAddress, st.LeaderClusterAddress = v.APIAddr, v.ClusterAddr
	return st, nil
}

// HANode is one server in sys/ha-status.
type HANode struct {
	Hostname       string
	APIAddress     string
	ClusterAddress string
	ActiveNode     bool
	LastEcho       time.Time
}

// HAStatus lists the servers that sent a heartbeat lately, the active one
// marked.
func (c *Core) HAStatus(ctx context.Context) ([]HANode, error) {
	if c.haBackend() == nil {
		return nil, logical.BadRequest("this server does not run with HA storage")
	}
	if err := c.checkActive(); err != nil {
		return nil, err
	}
	keys, err := c.phys.List(ctx, haNodesPrefix)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var out []HANode
	for _, k := range keys {
		if strings.HasSuffix(k, "/") {
			continue
		}
		e, err := c.phys.Get(ctx, haNodesPrefix+k)
		if err != nil {
			return nil, err
		}
		var n haNode
		if e == nil || json.Unmarshal(e.Value, &n) != nil || now.Sub(n.LastEcho) > haNodeExpiry {
			continue
		}
		out = append(out, HANode{Hostname: n.Hostname, APIAddress: n.APIAddr, ClusterAddress: n.ClusterAddr,
			ActiveNode: n.NodeID == c.ha.nodeID, LastEcho: n.LastEcho})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].APIAddress < out[j].APIAddress })
	return out, nil
}

// haStatus serves sys/ha-status.
func (b *systemBackend) haStatus(ctx context.Context, _ *logical.Request, _ *fw.FieldData) (*logical.Response, error) {
	nodes, err := b.core.HAStatus(ctx)
	if err != nil {
		return nil, err
	}
	list := make([]any, 0, len(nodes))
	for _, n := range nodes {
		list = append(list, map[string]any{
			"hostname":        n.Hostname,
			"api_address":     n.APIAddress,
			"cluster_address": n.ClusterAddress,
			"active_node":     n.ActiveNode,
			"last_echo":       n.LastEcho.UTC().Format(time.RFC3339Nano),
			"version":         version.VaultAPI,
		})
	}
	return &logical.Response{Data: map[string]any{"nodes": list}}, nil
}

// SetAPIAddr sets the address this server advertises when it holds the
// lock, for a server whose api_addr comes from its listener; call it
// before unsealing.
func (c *Core) SetAPIAddr(addr string) {
	c.stateLock.Lock()
	defer c.stateLock.Unlock()
	c.conf.APIAddr = addr
}

// errFenced is what a write through the barrier meets on a server that
// has lost the HA lock and not finished stepping back to standby.
var errFenced = logical.Errorf(http.StatusServiceUnavailable, "this server lost the HA lock and no longer writes; retry, and the request goes to the active server")

// fencedStorage is the storage under the barrier: it refuses writes while
// fenced is set, so a request still running on a server that lost the lock
// cannot write after another server became active.
type fencedStorage struct {
	storage.Backend
	fenced *atomic.Bool
}

func (f fencedStorage) Put(ctx context.Context, e *storage.Entry) error {
	if f.fenced.Load() {
		return errFenced
	}
	return f.Backend.Put(ctx, e)
}

func (f fencedStorage) Delete(ctx context.Context, key string) error {
	if f.fenced.Load() {
		return errFenced
	}
	return f.Backend.Delete(ctx, key)
}

func (f fencedStorage) Transaction(ctx context.Context, ops []storage.Op) error {
	if f.fenced.Load() {
		return errFenced
	}
	return f.Backend.Transaction(ctx, ops)
}
