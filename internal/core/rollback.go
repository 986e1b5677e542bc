package core

import (
	"context"
	"errors"
	"time"

	"github.com/arcasec/arca/internal/logical"
)

// rollbackInterval is how often every mount gets a RollbackOperation: its
// periodic function and the rollback of its stale write-ahead log entries.
const rollbackInterval = time.Minute

func (c *Core) startRollback() {
	stop, done := make(chan struct{}), make(chan struct{})
	c.rollbackStop, c.rollbackDone = stop, done
	mounts := c.mounts
	// The first wait starts now, not when the goroutine gets to run, so a
	// clock moved right after unseal is seen.
	tick := c.conf.Clock.After(rollbackInterval)
	go func() {
		defer close(done)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		for {
			select {
			case <-stop:
				return
			case <-tick:
				c.rollbackAll(ctx, mounts)
				tick = c.conf.Clock.After(rollbackInterval)
			}
		}
	}()
}

func (c *Core) stopRollback() {
	if c.rollbackStop != nil {
		close(c.rollbackStop)
		<-c.rollbackDone
		c.rollbackStop = nil
	}
}

// rollbackAll sends a RollbackOperation to every mount, one at a time.
func (c *Core) rollbackAll(ctx context.Context, mt *mountTable) {
	mt.mu.RLock()
	all := make([]*mount, 0, len(mt.byPath))
	for _, m := range mt.byPath {
		all = append(all, m)
	}
	mt.mu.RUnlock()
	for _, m := range all {
		if ctx.Err() != nil {
			return
		}
		req := &logical.Request{
			ID:         newUUID(),
			Operation:  logical.RollbackOperation,
			Storage:    m.view,
			MountPoint: m.entry.routePath(),
			MountType:  m.entry.Type,
			Data:       map[string]any{},
		}
		_, err := m.backend.HandleRequest(ctx, req)
		if err != nil && !errors.Is(err, logical.ErrUnsupportedOperation) && !errors.Is(err, logical.ErrUnsupportedPath) {
			c.logger.Warn("a mount's periodic work failed; it runs again next time", "path", m.entry.routePath(), "error", err)
		}
	}
}
