package core

import (
	"context"
	"time"

	"github.com/arcasec/arca/internal/logical"
)

// periodicInterval is how often backends' scheduled work runs.
const periodicInterval = time.Minute

// startPeriodic calls, every periodicInterval until cleanup, the Periodic
// function of each mounted backend that has one (logical.PeriodicBackend).
func (mt *mountTable) startPeriodic() {
	mt.periodicStop, mt.periodicDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(mt.periodicDone)
		t := time.NewTicker(periodicInterval)
		defer t.Stop()
		for {
			select {
			case <-mt.periodicStop:
				return
			case <-t.C:
				mt.runPeriodic(context.Background())
			}
		}
	}()
}

func (mt *mountTable) stopPeriodic() {
	if mt.periodicStop != nil {
		close(mt.periodicStop)
		<-mt.periodicDone
		mt.periodicStop = nil
	}
}

// runPeriodic runs every periodic backend once, one after the other,
// outside the table's lock so that requests and mount changes go on.
func (mt *mountTable) runPeriodic(ctx context.Context) {
	mt.mu.RLock()
	var due []*mount
	for _, m := range mt.byPath {
		if _, ok := m.backend.(logical.PeriodicBackend); ok {
			due = append(due, m)
		}
	}
	mt.mu.RUnlock()
	for _, m := range due {
		if err := m.backend.(logical.PeriodicBackend).Periodic(ctx, m.view); err != nil {
			mt.core.logger.Warn("a backend's periodic work failed", "mount", m.entry.Path, "error", err)
		}
	}
}
