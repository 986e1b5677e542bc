package core

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/storage"
)

// slowStorage holds every write back a little, so concurrent logins
// overlap between finding no alias and storing a new entity.
type slowStorage struct{ *view }

func (s slowStorage) Transaction(ctx context.Context, ops []storage.Op) error {
	time.Sleep(2 * time.Millisecond)
	return s.view.Transaction(ctx, ops)
}

// Concurrent first logins of one alias make one entity, whichever login
// gets to create it.
func TestConcurrentFirstLoginsMakeOneEntity(t *testing.T) {
	c, _, _ := newClockedCore(t)
	acc := c.mounts.get("auth/token/").entry.Accessor
	c.identity.view = slowStorage{c.identity.view.(*view)}
	const n = 64
	ids := make([]string, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			ids[i], errs[i] = c.identity.resolveAlias(context.Background(), acc, &logical.Alias{Name: "same"}, nil, true)
		}(i)
	}
	close(start)
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] == "" || ids[i] != ids[0] {
			t.Fatalf("login %d: entity %q (first %q), err %v", i, ids[i], ids[0], errs[i])
		}
	}
	c.identity.mu.RLock()
	defer c.identity.mu.RUnlock()
	if len(c.identity.entities) != 1 {
		t.Fatalf("%d entities, want 1", len(c.identity.entities))
	}
}
