package core

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/arcasec/arca/internal/policy"
	"github.com/arcasec/arca/internal/storage"
)

// pausedGets lets a test hold a storage read after it has read its value,
// so a write can land between the read and what the reader does with it.
type pausedGets struct {
	storage.Storage
	pause   chan struct{} // non-nil: the next Get reports on read and waits for resume
	read    chan struct{}
	resumed chan struct{}
}

func (p *pausedGets) Get(ctx context.Context, key string) (*storage.Entry, error) {
	e, err := p.Storage.Get(ctx, key)
	if p.pause != nil {
		p.pause = nil
		close(p.read)
		<-p.resumed
	}
	return e, err
}

func grants(a *policy.ACL, path string) bool { return a.Check(path, policy.Read, nil).Allowed }

// TestPolicyReadRacingWriteIsNotCached holds a reader between reading the
// old policy text and caching what it compiled, writes the new text, then
// lets the reader finish: the new text must be what is enforced after.
func TestPolicyReadRacingWriteIsNotCached(t *testing.T) {
	ctx := context.Background()
	view := &pausedGets{Storage: storage.NewInmem()}
	if err := newPolicyStore(view).set(ctx, "p", `path "old" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	ps := newPolicyStore(view) // a fresh store, as after a restart: nothing cached
	view.pause, view.read, view.resumed = make(chan struct{}), make(chan struct{}), make(chan struct{})

	stale := make(chan *policy.ACL)
	go func() {
		a, err := ps.acl(ctx, []string{"p"})
		if err != nil {
			t.Error(err)
		}
		stale <- a
	}()
	<-view.read
	if err := ps.set(ctx, "p", `path "new" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	close(view.resumed)
	if a := <-stale; !grants(a, "old") {
		t.Fatal("the racing reader did not compile the text it read")
	}

	a, err := ps.acl(ctx, []string{"p"})
	if err != nil {
		t.Fatal(err)
	}
	if grants(a, "old") || !grants(a, "new") {
		t.Fatal("the policy written last is not the one enforced: a racing read cached the old text")
	}
	p, err := ps.get(ctx, "p")
	if err != nil || len(p.Paths) != 1 || p.Paths[0].Path != "new" {
		t.Fatalf("cached policy = %+v, %v; want the new text", p, err)
	}
}

// TestPolicyStoreConcurrentWritersAndReaders runs writers and compiling
// readers together (under -race in CI) and checks that once they stop, the
// cached policy and ACL are those of the text stored last.
func TestPolicyStoreConcurrentWritersAndReaders(t *testing.T) {
	ctx := context.Background()
	view := storage.NewInmem()
	ps := newPolicyStore(view)
	for round := range 50 {
		var writers, readers sync.WaitGroup
		stop := make(chan struct{})
		for range 4 {
			readers.Add(1)
			go func() {
				defer readers.Done()
				for {
					select {
					case <-stop:
						return
					default:
						if _, err := ps.acl(ctx, []string{"default", "p"}); err != nil {
							t.Error(err)
							return
						}
					}
				}
			}()
		}
		for w := range 3 {
			writers.Add(1)
			go func() {
				defer writers.Done()
				for i := range 5 {
					text := fmt.Sprintf(`path "v%d-%d-%d" { capabilities = ["read"] }`, round, w, i)
					if err := ps.set(ctx, "p", text); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		writers.Wait()
		close(stop)
		readers.Wait()

		stored, err := newPolicyStore(view).get(ctx, "p") // nothing cached
		if err != nil {
			t.Fatal(err)
		}
		cached, err := ps.get(ctx, "p")
		if err != nil || cached.Raw != stored.Raw {
			t.Fatalf("round %d: cached policy %q, stored %q (%v)", round, cached.Raw, stored.Raw, err)
		}
		a, err := ps.acl(ctx, []string{"default", "p"})
		if err != nil {
			t.Fatal(err)
		}
		if !grants(a, stored.Paths[0].Path) {
			t.Fatalf("round %d: %q is stored but not enforced", round, stored.Raw)
		}
	}
}
