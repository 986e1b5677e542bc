package core

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/policy"
	"github.com/arcasec/arca/internal/seal"
	"github.com/arcasec/arca/internal/storage"
)

func quietCoreLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

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

// A store written before the identity mount existed gains it on unseal,
// and entities survive a seal and unseal.
func TestIdentityMountAddedAndEntitiesKeptAcrossUnseal(t *testing.T) {
	ctx := context.Background()
	c, err := New(Config{Storage: storage.NewInmem(), Logger: quietCoreLogger()})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Init(ctx, seal.Config{Shares: 1, Threshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Unseal(ctx, res.Shares[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := call(c, res.RootToken, logical.UpdateOperation, "identity/entity", map[string]any{"name": "kept"}); err != nil {
		t.Fatal(err)
	}
	// Drop identity/ from the stored mount table, as an older version wrote it.
	var entries []*MountEntry
	if _, err := c.getJSON(ctx, mountTableKey, &entries); err != nil {
		t.Fatal(err)
	}
	var older []*MountEntry
	for _, e := range entries {
		if e.Path != "identity/" {
			older = append(older, e)
		}
	}
	if len(older) != len(entries)-1 {
		t.Fatalf("mount table %v has no identity/", entries)
	}
	if err := c.putJSON(ctx, mountTableKey, older); err != nil {
		t.Fatal(err)
	}
	c.Seal(ctx)
	if err := c.Unseal(ctx, res.Shares[0]); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Seal(context.Background()) })
	resp, err := call(c, res.RootToken, logical.ReadOperation, "identity/entity/name/kept", nil)
	if err != nil || resp == nil || resp.Data["name"] != "kept" {
		t.Fatalf("after unseal: %v, %v", resp, err)
	}
}

// A templated policy set compiles per entity and is cached for it; an
// untemplated one compiles once for every caller.
func TestTemplatedACLCachedPerEntity(t *testing.T) {
	ctx := context.Background()
	c, _, root := newClockedCore(t)
	if err := c.policies.set(ctx, "tmpl", `path "secret/{{identity.entity.name}}/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	if err := c.policies.set(ctx, "plain", `path "secret/shared" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	ents := map[string]*resolvedEntity{}
	for _, name := range []string{"alice", "bob"} {
		resp, err := call(c, root, logical.UpdateOperation, "identity/entity", map[string]any{"name": name})
		if err != nil {
			t.Fatal(err)
		}
		ents[name] = c.identity.resolve(resp.Data["id"].(string))
	}
	acl := func(pol string, e *resolvedEntity) *policy.ACL {
		a, err := c.policies.aclFor(ctx, []string{pol}, e)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if acl("plain", ents["alice"]) != acl("plain", ents["bob"]) {
		t.Error("an untemplated set compiled per entity")
	}
	a1, a2, b := acl("tmpl", ents["alice"]), acl("tmpl", ents["alice"]), acl("tmpl", ents["bob"])
	if a1 != a2 {
		t.Error("a templated set compiled again for the same entity")
	}
	if !a1.Check("secret/alice/x", policy.Read, nil).Allowed || b.Check("secret/alice/x", policy.Read, nil).Allowed {
		t.Fatal("the templated ACLs do not follow the entity's name")
	}
}
