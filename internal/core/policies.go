package core

import (
	"context"
	"errors"
	"sort"
	"strconv"
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
	// templated marks the policy sets (keys of acls) that hold identity
	// templates: their ACLs differ by caller and are cached in
	// entityACLs, by set and entity (and identity generation).
	templated  map[string]bool
	entityACLs map[string]*policy.ACL
}

// maxEntityACLs bounds the per-entity ACL cache; when full, a quarter of
// it is dropped.
const maxEntityACLs = 4096

// aclResult is the ACL a token acts under, with the identity it came from.
type aclResult struct {
	acl              *policy.ACL
	entity           *resolvedEntity
	identityPolicies []string
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
	ps.templated = map[string]bool{}
	ps.entityACLs = map[string]*policy.ACL{}
}

type storedPolicy struct {
	Name string `json:"name"`
	Raw  string `json:"raw"`
}

func newPolicyStore(v storage.Storage) *policyStore {
	return &policyStore{view: v, parsed: map[string]*policy.Policy{}, acls: map[string]*policy.ACL{},
		templated: map[string]bool{}, entityACLs: map[string]*policy.ACL{}}
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

// acl returns the compiled ACL for a set of policy names, for a caller
// without an identity entity. Unknown names are skipped, as Vault does: a
// token may outlive a policy.
func (ps *policyStore) acl(ctx context.Context, names []string) (*policy.ACL, error) {
	return ps.aclFor(ctx, names, nil)
}

// aclFor returns the compiled ACL for a set of policy names and the
// caller's entity (nil: none). Templated policies are filled from the
// entity; a set without templates is compiled once for every caller.
func (ps *policyStore) aclFor(ctx context.Context, names []string, ent *resolvedEntity) (*policy.ACL, error) {
	key := strings.Join(names, ",")
	entKey := key + "\x00"
	if ent != nil {
		entKey += ent.entity.ID + "@" + strconv.FormatUint(ent.gen, 10)
	}
	ps.mu.RLock()
	templated := ps.templated[key]
	a, ok := ps.acls[key]
	if templated {
		a, ok = ps.entityACLs[entKey]
	}
	gen := ps.gen
	ps.mu.RUnlock()
	if ok {
		return a, nil
	}
	var pols []*policy.Policy
	root := false
	for _, n := range names {
		if n == "root" {
			root = true
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
	templated = false
	if root {
		a = policy.RootACL()
	} else {
		var lookup func(string) (string, bool)
		if ent != nil {
			lookup = ent.templateValue
		}
		filled := make([]*policy.Policy, len(pols))
		for i, p := range pols {
			templated = templated || p.Templated()
			filled[i] = p.Fill(lookup)
		}
		var err error
		if a, err = policy.NewACL(filled...); err != nil {
			return nil, errors.Join(errors.New("compiling the token's policies"), err)
		}
	}
	// A policy changed while this ACL compiled: it may hold the old text,
	// so serve it to this one request but do not cache it.
	ps.mu.Lock()
	if ps.gen == gen {
		if templated {
			ps.templated[key] = true
			if len(ps.entityACLs) >= maxEntityACLs {
				// Drop a quarter, chosen by map order (random), rather
				// than everything: busy entities recompile rarely.
				n := maxEntityACLs / 4
				for k := range ps.entityACLs {
					if n == 0 {
						break
					}
					delete(ps.entityACLs, k)
					n--
				}
			}
			ps.entityACLs[entKey] = a
		} else {
			ps.acls[key] = a
		}
	}
	ps.mu.Unlock()
	return a, nil
}
