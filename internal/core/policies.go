package core

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/policy"
	"github.com/arcasec/arca/internal/storage"
)

// policyStore keeps ACL policies behind the barrier, with parsed policies
// and compiled ACLs cached in memory. Any change clears both caches' stale
// entries and bumps gen, so a read or compile that started before the change
// never stores its (possibly old) result afterwards.
type policyStore struct {
	view storage.Storage

	// writeMu orders writes and deletes, so the cached parsed policy is
	// always the one stored last.
	writeMu sync.Mutex

	mu     sync.RWMutex
	gen    uint64 // incremented by every policy write or delete
	parsed map[string]*policy.Policy
	acls   map[string]*policy.ACL // by sorted, comma-joined policy names
}

// invalidate records a change to the named policy: its parsed form and
// every compiled ACL are dropped, and work begun before now is not cached.
func (ps *policyStore) invalidate(name string, p *policy.Policy) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.gen++
	if p != nil {
		ps.parsed[name] = p
	} else {
		delete(ps.parsed, name)
	}
	ps.acls = map[string]*policy.ACL{}
}

type storedPolicy struct {
	Name string `json:"name"`
	Raw  string `json:"raw"`
}

func newPolicyStore(v storage.Storage) *policyStore {
	return &policyStore{view: v, parsed: map[string]*policy.Policy{}, acls: map[string]*policy.ACL{}}
}

func (ps *policyStore) setupDefaults(ctx context.Context) error {
	p, err := ps.get(ctx, "default")
	if err != nil {
		return err
	}
	if p == nil {
		return ps.set(ctx, "default", policy.DefaultPolicy)
	}
	return nil
}

func normalizePolicyName(name string) string { return strings.ToLower(strings.TrimSpace(name)) }

// get returns the named policy, or nil when there is none.
func (ps *policyStore) get(ctx context.Context, name string) (*policy.Policy, error) {
	name = normalizePolicyName(name)
	if name == responseWrappingPolicyName {
		return responseWrappingPolicy, nil
	}
	ps.mu.RLock()
	p, ok := ps.parsed[name]
	gen := ps.gen
	ps.mu.RUnlock()
	if ok {
		return p, nil
	}
	var sp storedPolicy
	found, err := getJSONFrom(ctx, ps.view, name, &sp)
	if err != nil || !found {
		return nil, err
	}
	p, err = policy.Parse(name, sp.Raw)
	if err != nil {
		return nil, err
	}
	ps.mu.Lock()
	if ps.gen == gen {
		ps.parsed[name] = p
	}
	ps.mu.Unlock()
	return p, nil
}

func (ps *policyStore) set(ctx context.Context, name, text string) error {
	name = normalizePolicyName(name)
	if name == "" {
		return logical.BadRequest("policy name must not be empty")
	}
	if name == "root" || name == responseWrappingPolicyName {
		return logical.BadRequest("cannot update the built-in %s policy", name)
	}
	if strings.ContainsAny(name, "/") {
		return logical.BadRequest("policy name %q must not contain '/'", name)
	}
	p, err := policy.Parse(name, text)
	if err != nil {
		return logical.BadRequest("failed to parse policy: %v", err)
	}
	if _, err := policy.NewACL(p); err != nil {
		return logical.BadRequest("failed to compile policy: %v", err)
	}
	ps.writeMu.Lock()
	defer ps.writeMu.Unlock()
	if err := putJSONTo(ctx, ps.view, name, storedPolicy{Name: name, Raw: text}); err != nil {
		return err
	}
	ps.invalidate(name, p)
	return nil
}

func (ps *policyStore) delete(ctx context.Context, name string) error {
	name = normalizePolicyName(name)
	switch name {
	case "root", responseWrappingPolicyName:
		return logical.BadRequest("cannot delete the built-in %s policy", name)
	case "default":
		return logical.BadRequest("cannot delete default policy")
	}
	ps.writeMu.Lock()
	defer ps.writeMu.Unlock()
	if err := ps.view.Delete(ctx, name); err != nil {
		return err
	}
	ps.invalidate(name, nil)
	return nil
}

func (ps *policyStore) list(ctx context.Context) ([]string, error) {
	keys, err := ps.view.List(ctx, "")
	if err != nil {
		return nil, err
	}
	out := append([]string{}, keys...)
	out = append(out, "root")
	sort.Strings(out)
	return out, nil
}

// acl returns the compiled ACL for a set of policy names. Unknown names are
// skipped, as Vault does: a token may outlive a policy.
func (ps *policyStore) acl(ctx context.Context, names []string) (*policy.ACL, error) {
	key := strings.Join(names, ",")
	ps.mu.RLock()
	a, ok := ps.acls[key]
	gen := ps.gen
	ps.mu.RUnlock()
	if ok {
		return a, nil
	}
	var pols []*policy.Policy
	for _, n := range names {
		if n == "root" {
			a = policy.RootACL()
			break
		}
		p, err := ps.get(ctx, n)
		if err != nil {
			return nil, err
		}
		if p != nil {
			pols = append(pols, p)
		}
	}
	if a == nil {
		var err error
		if a, err = policy.NewACL(pols...); err != nil {
			return nil, errors.Join(errors.New("compiling the token's policies"), err)
		}
	}
	// A policy changed while this ACL compiled: it may hold the old text,
	// so serve it to this one request but do not cache it.
	ps.mu.Lock()
	if ps.gen == gen {
		ps.acls[key] = a
	}
	ps.mu.Unlock()
	return a, nil
}
