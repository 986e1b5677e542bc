package core

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/arcasec/arca/internal/logical"
)

// rollbackInterval is how often every mount gets a RollbackOperation: its
// periodic function and the rollback of its stale write-ahead log entries.
const rollbackInterval = time.Minute

// startRollback starts the loop that sends every mount a RollbackOperation
// each rollbackInterval until stopRollback.
func (c *Core) startRollback() {
	stop, done := make(chan struct{}), make(chan struct{})
	c.rollbackStop, c.rollbackDone = stop, done
	mounts := c.mounts
	// The first wait starts now, not when the goroutine gets to run, so a
	// clock moved right after unseal is seen.
	tick := c.conf.Clock.After(rollbackInterval)
	go func() {
		defer close(done)
		r := &rollbacks{core: c, busy: map[*view]bool{}}
		ctx, cancel := context.WithCancel(context.Background())
		// On stop, the rollbacks still running are cancelled, then
		// waited for: none outlives the unsealed core.
		defer r.running.Wait()
		defer cancel()
		for {
			select {
			case <-stop:
				return
			case <-tick:
				r.startRound(ctx, mounts)
				tick = c.conf.Clock.After(rollbackInterval)
			}
		}
	}()
}

// stopRollback ends the loop and waits for the rollbacks it started.
func (c *Core) stopRollback() {
	if c.rollbackStop != nil {
		close(c.rollbackStop)
		<-c.rollbackDone
		c.rollbackStop = nil
	}
}

// rollbacks runs each mount's RollbackOperation on its own goroutine, so
// a mount that is slow, fails or panics holds up no other; a mount still
// busy with the last round skips this one rather than run twice at once.
type rollbacks struct {
	core    *Core
	running sync.WaitGroup

	mu   sync.Mutex
	busy map[*view]bool // by the mount's storage, which a tune keeps
}

// startRound starts a RollbackOperation on every mount not still busy.
func (r *rollbacks) startRound(ctx context.Context, mt *mountTable) {
	mt.mu.RLock()
	all := make([]*mount, 0, len(mt.byPath))
	for _, m := range mt.byPath {
		all = append(all, m)
	}
	mt.mu.RUnlock()

	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range all {
		if r.busy[m.view] {
			continue
		}
		r.busy[m.view] = true
		r.running.Add(1)
		go func() {
			defer r.running.Done()
			defer func() {
				r.mu.Lock()
				delete(r.busy, m.view)
				r.mu.Unlock()
			}()
			r.core.rollback(ctx, m)
		}()
	}
}

// rollback sends one mount its RollbackOperation and logs what went wrong.
func (c *Core) rollback(ctx context.Context, m *mount) {
	path := m.entry.routePath()
	defer func() {
		// A panic's value may carry the backend's data, so only the mount
		// is named.
		if recover() != nil {
			c.logger.Error("a mount's periodic work panicked; it runs again next time", "path", path)
		}
	}()
	req := &logical.Request{
		ID:         newUUID(),
		Operation:  logical.RollbackOperation,
		Storage:    m.view,
		MountPoint: path,
		MountType:  m.entry.Type,
		Data:       map[string]any{},
	}
	_, err := m.backend.HandleRequest(ctx, req)
	if err != nil && !errors.Is(err, logical.ErrUnsupportedOperation) && !errors.Is(err, logical.ErrUnsupportedPath) {
		c.logger.Warn("a mount's periodic work failed; it runs again next time", "path", path, "error", err)
	}
}
