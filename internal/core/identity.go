package core

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/policy"
	"github.com/arcasec/arca/internal/storage"
)

// The identity store: entities (a person or a pipeline), their aliases
// (the entity's name within one auth mount, keyed by the mount's accessor)
// and groups (internal ones list their member entities; external ones are
// filled at login from group aliases, e.g. a JWT groups claim). Every
// login whose method names an alias resolves to an entity, created on
// first login; the token carries the entity's ID, and its effective
// policies add the entity's and its groups' policies at request time.
//
// Everything is kept behind the barrier under sys/identity/ and held in
// memory; stored values are never changed in place, so a reader holding
// one needs no lock.

type identityAlias struct {
	ID            string            `json:"id"`
	CanonicalID   string            `json:"canonical_id"`
	Name          string            `json:"name"`
	MountAccessor string            `json:"mount_accessor"`
	Metadata      map[string]string `json:"metadata,omitempty"`
	CreationTime  time.Time         `json:"creation_time"`
	LastUpdate    time.Time         `json:"last_update_time"`
}

type identityEntity struct {
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	Policies     []string          `json:"policies,omitempty"`
	Metadata     map[string]string `json:"metadata,omitempty"`
	Disabled     bool              `json:"disabled,omitempty"`
	Aliases      []*identityAlias  `json:"aliases,omitempty"`
	CreationTime time.Time         `json:"creation_time"`
	LastUpdate   time.Time         `json:"last_update_time"`
}

type identityGroup struct {
	ID              string            `json:"id"`
	Name            string            `json:"name"`
	Type            string            `json:"type"` // internal or external
	Policies        []string          `json:"policies,omitempty"`
	MemberEntityIDs []string          `json:"member_entity_ids,omitempty"`
	MemberGroupIDs  []string          `json:"member_group_ids,omitempty"`
	Metadata        map[string]string `json:"metadata,omitempty"`
	Alias           *identityAlias    `json:"alias,omitempty"`
	CreationTime    time.Time         `json:"creation_time"`
	LastUpdate      time.Time         `json:"last_update_time"`
}

func (e *identityEntity) clone() *identityEntity {
	c := *e
	c.Policies = slices.Clone(e.Policies)
	c.Metadata = maps.Clone(e.Metadata)
	c.Aliases = make([]*identityAlias, len(e.Aliases))
	for i, a := range e.Aliases {
		ac := *a
		ac.Metadata = maps.Clone(a.Metadata)
		c.Aliases[i] = &ac
	}
	return &c
}

func (g *identityGroup) clone() *identityGroup {
	c := *g
	c.Policies = slices.Clone(g.Policies)
	c.MemberEntityIDs = slices.Clone(g.MemberEntityIDs)
	c.MemberGroupIDs = slices.Clone(g.MemberGroupIDs)
	c.Metadata = maps.Clone(g.Metadata)
	if g.Alias != nil {
		a := *g.Alias
		a.Metadata = maps.Clone(g.Alias.Metadata)
		c.Alias = &a
	}
	return &c
}

// resolvedEntity is an entity with what follows from it: its groups and
// identity policies. It is computed once per entity and identity change.
type resolvedEntity struct {
	entity       *identityEntity
	gen          uint64
	directGroups []*identityGroup
	// inherited are the groups that hold a direct group as a member group,
	// transitively.
	inherited []*identityGroup
	policies  []string // the entity's and its groups' policies, sorted
	// groupByID and groupByName hold every group, direct or inherited.
	groupByID   map[string]*identityGroup
	groupByName map[string]*identityGroup
}

// allGroupIDs are the IDs of the direct and inherited groups, sorted.
func (r *resolvedEntity) allGroupIDs() []string {
	ids := make([]string, 0, len(r.groupByID))
	for id := range r.groupByID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// templateValue fills one identity template key for this entity.
func (r *resolvedEntity) templateValue(key string) (string, bool) {
	if r == nil {
		return "", false
	}
	e := r.entity
	parts := strings.Split(key, ".")
	if len(parts) < 3 || parts[0] != "identity" {
		return "", false
	}
	switch parts[1] {
	case "entity":
		switch {
		case len(parts) == 3 && parts[2] == "id":
			return e.ID, true
		case len(parts) == 3 && parts[2] == "name":
			return e.Name, e.Name != ""
		case len(parts) == 4 && parts[2] == "metadata":
			v, ok := e.Metadata[parts[3]]
			return v, ok
		case len(parts) >= 5 && parts[2] == "aliases":
			for _, a := range e.Aliases {
				if a.MountAccessor != parts[3] {
					continue
				}
				switch {
				case len(parts) == 5 && parts[4] == "id":
					return a.ID, true
				case len(parts) == 5 && parts[4] == "name":
					return a.Name, true
				case len(parts) == 6 && parts[4] == "metadata":
					v, ok := a.Metadata[parts[5]]
					return v, ok
				}
			}
		}
	case "groups":
		if len(parts) != 5 {
			return "", false
		}
		switch {
		case parts[2] == "ids" && parts[4] == "name":
			if g := r.groupByID[parts[3]]; g != nil {
				return g.Name, true
			}
		case parts[2] == "names" && parts[4] == "id":
			if g := r.groupByName[parts[3]]; g != nil {
				return g.ID, true
			}
		}
	}
	return "", false
}

type identityStore struct {
	core *Core
	view storage.Storage

	// writeMu serialises every change, so a change is always made to the
	// latest stored state and concurrent first logins of one alias make
	// one entity.
	writeMu sync.Mutex

	mu            sync.RWMutex
	gen           uint64 // bumped by every change
	entities      map[string]*identityEntity
	entityByName  map[string]string // name → entity ID
	aliasByID     map[string]string // alias ID → entity ID
	aliasByKey    map[string]string // accessor\x00name → alias ID
	groups        map[string]*identityGroup
	groupByName   map[string]string // name → group ID
	gAliasByID    map[string]string // group alias ID → group ID
	gAliasByKey   map[string]string // accessor\x00name → group alias ID
	resolvedCache map[string]*resolvedEntity
}

const (
	identityPrefix       = "sys/identity/"
	identityEntityPrefix = "entity/"
	identityGroupPrefix  = "group/"
)

func aliasKey(accessor, name string) string { return accessor + "\x00" + name }

func newIdentityStore(c *Core, v storage.Storage) *identityStore {
	return &identityStore{
		core: c, view: v,
		entities: map[string]*identityEntity{}, entityByName: map[string]string{},
		aliasByID: map[string]string{}, aliasByKey: map[string]string{},
		groups: map[string]*identityGroup{}, groupByName: map[string]string{},
		gAliasByID: map[string]string{}, gAliasByKey: map[string]string{},
		resolvedCache: map[string]*resolvedEntity{},
	}
}

// load reads every entity and group into memory.
func (s *identityStore) load(ctx context.Context) error {
	for _, prefix := range []string{identityEntityPrefix, identityGroupPrefix} {
		keys, err := s.view.List(ctx, prefix)
		if err != nil {
			return fmt.Errorf("loading the identity store: %w", err)
		}
		for _, k := range keys {
			if prefix == identityEntityPrefix {
				var e identityEntity
				if found, err := getJSONFrom(ctx, s.view, prefix+k, &e); err != nil {
					return fmt.Errorf("loading identity entity %s: %w", k, err)
				} else if found {
					s.indexEntity(&e)
				}
				continue
			}
			var g identityGroup
			if found, err := getJSONFrom(ctx, s.view, prefix+k, &g); err != nil {
				return fmt.Errorf("loading identity group %s: %w", k, err)
			} else if found {
				s.indexGroup(&g)
			}
		}
	}
	return nil
}

// indexEntity and the functions below change the in-memory state; callers
// hold s.mu for writing (or own s exclusively, as load does).
func (s *identityStore) indexEntity(e *identityEntity) {
	s.entities[e.ID] = e
	s.entityByName[e.Name] = e.ID
	for _, a := range e.Aliases {
		s.aliasByID[a.ID] = e.ID
		s.aliasByKey[aliasKey(a.MountAccessor, a.Name)] = a.ID
	}
}

func (s *identityStore) unindexEntity(id string) {
	e := s.entities[id]
	if e == nil {
		return
	}
	delete(s.entities, id)
	if s.entityByName[e.Name] == id {
		delete(s.entityByName, e.Name)
	}
	for _, a := range e.Aliases {
		delete(s.aliasByID, a.ID)
		if s.aliasByKey[aliasKey(a.MountAccessor, a.Name)] == a.ID {
			delete(s.aliasByKey, aliasKey(a.MountAccessor, a.Name))
		}
	}
}

func (s *identityStore) indexGroup(g *identityGroup) {
	s.groups[g.ID] = g
	s.groupByName[g.Name] = g.ID
	if a := g.Alias; a != nil {
		s.gAliasByID[a.ID] = g.ID
		s.gAliasByKey[aliasKey(a.MountAccessor, a.Name)] = a.ID
	}
}

func (s *identityStore) unindexGroup(id string) {
	g := s.groups[id]
	if g == nil {
		return
	}
	delete(s.groups, id)
	if s.groupByName[g.Name] == id {
		delete(s.groupByName, g.Name)
	}
	if a := g.Alias; a != nil {
		delete(s.gAliasByID, a.ID)
		if s.gAliasByKey[aliasKey(a.MountAccessor, a.Name)] == a.ID {
			delete(s.gAliasByKey, aliasKey(a.MountAccessor, a.Name))
		}
	}
}

// commit stores the changed entities and groups in one transaction and
// then makes them current in memory. nil values with an ID in the delete
// lists remove them. Callers hold writeMu.
func (s *identityStore) commit(ctx context.Context, entities []*identityEntity, groups []*identityGroup, delEntities, delGroups []string) error {
	var ops []storage.Op
	for _, e := range entities {
		ops = append(ops, storage.Op{Kind: storage.OpPut, Entry: mustJSONEntry(identityEntityPrefix+e.ID, e)})
	}
	for _, g := range groups {
		ops = append(ops, storage.Op{Kind: storage.OpPut, Entry: mustJSONEntry(identityGroupPrefix+g.ID, g)})
	}
	for _, id := range delEntities {
		ops = append(ops, storage.Op{Kind: storage.OpDelete, Entry: &storage.Entry{Key: identityEntityPrefix + id}})
	}
	for _, id := range delGroups {
		ops = append(ops, storage.Op{Kind: storage.OpDelete, Entry: &storage.Entry{Key: identityGroupPrefix + id}})
	}
	if len(ops) == 0 {
		return nil
	}
	if err := storage.Apply(ctx, s.view, ops); err != nil {
		return fmt.Errorf("storing the identity change: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range delEntities {
		s.unindexEntity(id)
	}
	for _, id := range delGroups {
		s.unindexGroup(id)
	}
	for _, e := range entities {
		s.unindexEntity(e.ID)
		s.indexEntity(e)
	}
	for _, g := range groups {
		s.unindexGroup(g.ID)
		s.indexGroup(g)
	}
	s.gen++
	// What an entity resolves to depends on the entity and on every group:
	// a change to groups drops every resolution, a change to entities only
	// theirs, so one login creating an entity costs the others nothing
	// (their templated ACLs stay cached).
	if len(groups) > 0 || len(delGroups) > 0 {
		clear(s.resolvedCache)
	} else {
		for _, e := range entities {
			delete(s.resolvedCache, e.ID)
		}
		for _, id := range delEntities {
			delete(s.resolvedCache, id)
		}
	}
	return nil
}

// entity returns the entity with id, or nil.
func (s *identityStore) entity(id string) *identityEntity {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.entities[id]
}

// resolve returns the entity with id and what follows from it, or nil
// when there is none.
func (s *identityStore) resolve(id string) *resolvedEntity {
	if s == nil || id == "" {
		return nil
	}
	s.mu.RLock()
	r, ok := s.resolvedCache[id]
	if ok {
		s.mu.RUnlock()
		return r
	}
	e := s.entities[id]
	if e == nil {
		s.mu.RUnlock()
		return nil
	}
	r = &resolvedEntity{entity: e, gen: s.gen, groupByID: map[string]*identityGroup{}, groupByName: map[string]*identityGroup{}}
	for _, g := range s.groups {
		if slices.Contains(g.MemberEntityIDs, id) {
			r.directGroups = append(r.directGroups, g)
			r.groupByID[g.ID] = g
		}
	}
	// Parents of a group: groups listing it among their member groups.
	queue := slices.Clone(r.directGroups)
	for len(queue) > 0 {
		child := queue[0]
		queue = queue[1:]
		for _, g := range s.groups {
			if _, seen := r.groupByID[g.ID]; seen || !slices.Contains(g.MemberGroupIDs, child.ID) {
				continue
			}
			r.groupByID[g.ID] = g
			r.inherited = append(r.inherited, g)
			queue = append(queue, g)
		}
	}
	pols := slices.Clone(e.Policies)
	for _, g := range r.groupByID {
		r.groupByName[g.Name] = g
		pols = append(pols, g.Policies...)
	}
	sort.Strings(pols)
	r.policies = slices.Compact(pols)
	gen := s.gen
	s.mu.RUnlock()
	s.mu.Lock()
	if s.gen == gen {
		s.resolvedCache[id] = r
	}
	s.mu.Unlock()
	return r
}

// names returns an entity's name and its alias on the mount with
// accessor, for the access report; empty when unknown.
func (s *identityStore) names(entityID, accessor string) (entity, alias string) {
	e := s.entity(entityID)
	if e == nil {
		return "", ""
	}
	for _, a := range e.Aliases {
		if a.MountAccessor == accessor {
			return e.Name, a.Name
		}
	}
	return e.Name, ""
}

// newEntityName is the name Vault gives an entity it creates at login.
func newEntityName() string { return "entity_" + newUUID()[:8] }

// resolveLogin finds or creates the entity of a login on the mount with
// accessor through auth.Alias, makes its external group memberships those
// auth.GroupAliases name, and returns the entity's ID ("" when the method
// named no alias). A disabled entity's login is refused.
func (c *Core) resolveLogin(ctx context.Context, accessor string, auth *logical.Auth) (string, error) {
	if auth == nil || auth.Alias == nil || auth.Alias.Name == "" || c.identity == nil {
		return "", nil
	}
	return c.identity.resolveAlias(ctx, accessor, auth.Alias, auth.GroupAliases, true)
}

// resolveAlias finds or creates the entity of the alias (accessor, name).
// With syncGroups, the entity's external groups on that mount become
// those groupAliases name.
func (s *identityStore) resolveAlias(ctx context.Context, accessor string, alias *logical.Alias, groupAliases []*logical.Alias, syncGroups bool) (string, error) {
	key := aliasKey(accessor, alias.Name)
	// The common case, an existing alias with nothing to change, takes
	// only the read lock.
	s.mu.RLock()
	id, changed := s.loginChangesLocked(key, accessor, alias, groupAliases, syncGroups)
	s.mu.RUnlock()
	if !changed {
		return id, s.refuseDisabled(id)
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.RLock()
	id, changed = s.loginChangesLocked(key, accessor, alias, groupAliases, syncGroups)
	var e *identityEntity
	if aid, ok := s.aliasByKey[key]; ok {
		e = s.entities[s.aliasByID[aid]]
	}
	desired := s.desiredGroupsLocked(accessor, groupAliases)
	var groups []*identityGroup
	s.mu.RUnlock()
	if !changed {
		return id, s.refuseDisabled(id)
	}
	now := s.core.Now().UTC()
	var entities []*identityEntity
	if e == nil {
		e = &identityEntity{ID: newUUID(), Name: newEntityName(), CreationTime: now, LastUpdate: now}
		e.Aliases = []*identityAlias{{ID: newUUID(), CanonicalID: e.ID, Name: alias.Name, MountAccessor: accessor,
			Metadata: maps.Clone(alias.Metadata), CreationTime: now, LastUpdate: now}}
		entities = append(entities, e)
	} else if e.Disabled {
		return "", errEntityDisabled
	} else {
		for _, a := range e.Aliases {
			if a.MountAccessor == accessor && a.Name == alias.Name && len(alias.Metadata) > 0 && !maps.Equal(a.Metadata, alias.Metadata) {
				e = e.clone()
				for _, a := range e.Aliases {
					if a.MountAccessor == accessor && a.Name == alias.Name {
						a.Metadata, a.LastUpdate = maps.Clone(alias.Metadata), now
					}
				}
				entities = append(entities, e)
				break
			}
		}
	}
	if syncGroups {
		s.mu.RLock()
		for _, g := range s.groups {
			if g.Type != "external" || g.Alias == nil || g.Alias.MountAccessor != accessor {
				continue
			}
			has, want := slices.Contains(g.MemberEntityIDs, e.ID), desired[g.ID]
			if has == want {
				continue
			}
			g = g.clone()
			if want {
				g.MemberEntityIDs = append(g.MemberEntityIDs, e.ID)
			} else {
				g.MemberEntityIDs = slices.DeleteFunc(g.MemberEntityIDs, func(m string) bool { return m == e.ID })
			}
			g.LastUpdate = now
			groups = append(groups, g)
		}
		s.mu.RUnlock()
	}
	if err := s.commit(ctx, entities, groups, nil, nil); err != nil {
		return "", err
	}
	return e.ID, nil
}

var errEntityDisabled = logical.Errorf(403, "permission denied: the identity entity of this login is disabled")

func (s *identityStore) refuseDisabled(id string) error {
	if e := s.entity(id); e != nil && e.Disabled {
		return errEntityDisabled
	}
	return nil
}

// desiredGroupsLocked maps the IDs of the external groups groupAliases name
// on the mount with accessor.
func (s *identityStore) desiredGroupsLocked(accessor string, groupAliases []*logical.Alias) map[string]bool {
	out := map[string]bool{}
	for _, ga := range groupAliases {
		if ga == nil {
			continue
		}
		if aid, ok := s.gAliasByKey[aliasKey(accessor, ga.Name)]; ok {
			if g := s.groups[s.gAliasByID[aid]]; g != nil && g.Type == "external" {
				out[g.ID] = true
			}
		}
	}
	return out
}

// loginChangesLocked returns the entity ID of the alias and whether the
// login changes anything: a new entity, new alias metadata, or external
// group memberships to add or drop.
func (s *identityStore) loginChangesLocked(key, accessor string, alias *logical.Alias, groupAliases []*logical.Alias, syncGroups bool) (string, bool) {
	aid, ok := s.aliasByKey[key]
	if !ok {
		return "", true
	}
	e := s.entities[s.aliasByID[aid]]
	if e == nil {
		return "", true
	}
	for _, a := range e.Aliases {
		if a.ID == aid && len(alias.Metadata) > 0 && !maps.Equal(a.Metadata, alias.Metadata) {
			return e.ID, true
		}
	}
	if !syncGroups {
		return e.ID, false
	}
	desired := s.desiredGroupsLocked(accessor, groupAliases)
	for _, g := range s.groups {
		if g.Type == "external" && g.Alias != nil && g.Alias.MountAccessor == accessor &&
			slices.Contains(g.MemberEntityIDs, e.ID) != desired[g.ID] {
			return e.ID, true
		}
	}
	return e.ID, false
}

// identityOf returns the resolved entity of a token (nil: none),
// refusing a disabled entity's token.
func (c *Core) identityOf(te *TokenEntry) (*resolvedEntity, error) {
	if te == nil || te.EntityID == "" || c.identity == nil {
		return nil, nil
	}
	r := c.identity.resolve(te.EntityID)
	if r == nil {
		// The entity was deleted: as in Vault, its tokens go with it,
		// rather than living on without its policies and groups.
		return nil, errEntityGoneToken
	}
	if r.entity.Disabled {
		return nil, errEntityDisabledToken
	}
	return r, nil
}

var (
	errEntityDisabledToken = logical.Errorf(403, "permission denied: the identity entity of this token is disabled")
	errEntityGoneToken     = logical.Errorf(403, "permission denied: the identity entity of this token no longer exists")
)

// effectivePolicies are the token's policies with its entity's identity
// policies added, sorted and without duplicates.
func effectivePolicies(te *TokenEntry, r *resolvedEntity) []string {
	if r == nil || len(r.policies) == 0 {
		return te.Policies
	}
	pols := append(slices.Clone(te.Policies), r.policies...)
	sort.Strings(pols)
	return slices.Compact(pols)
}

// tokenACL compiles the ACL a token acts under: its own policies and its
// identity's, with templates filled from its entity.
func (c *Core) tokenACL(ctx context.Context, te *TokenEntry) (*aclResult, error) {
	r, err := c.identityOf(te)
	if err != nil {
		return nil, err
	}
	names := effectivePolicies(te, r)
	acl, err := c.policies.aclFor(ctx, names, r)
	if err != nil {
		return nil, err
	}
	res := &aclResult{acl: acl, entity: r}
	if r != nil {
		res.identityPolicies = r.policies
	}
	return res, nil
}

// applyIdentity adds the token's identity policies to an Auth block, as
// requests, login responses and audit entries show it.
func applyIdentity(a *logical.Auth, te *TokenEntry, r *resolvedEntity) {
	if a == nil || r == nil {
		return
	}
	a.IdentityPolicies = r.policies
	a.Policies = effectivePolicies(te, r)
}

// aclOf is the ACL a token acts under (see tokenACL).
func (c *Core) aclOf(ctx context.Context, te *TokenEntry) (*policy.ACL, error) {
	r, err := c.tokenACL(ctx, te)
	if err != nil {
		return nil, err
	}
	return r.acl, nil
}

// identifyToken names the entity of a token and its alias on the auth
// mount that issued the token, for the access report.
func (c *Core) identifyToken(te *TokenEntry) (entityName, aliasName string) {
	if c.identity == nil || te.EntityID == "" {
		return "", ""
	}
	accessor := ""
	if m, _ := c.mounts.route(te.Path); m != nil {
		accessor = m.entry.Accessor
	}
	return c.identity.names(te.EntityID, accessor)
}

// tokenEntityAlias finds or creates the entity whose alias on the token
// auth mount is name, for auth/token/create/<role> with entity_alias.
func (c *Core) tokenEntityAlias(ctx context.Context, name string) (string, error) {
	m := c.mounts.get("auth/token/")
	if m == nil || c.identity == nil {
		return "", fmt.Errorf("the token auth mount is missing, so entity_alias cannot be resolved")
	}
	return c.identity.resolveAlias(ctx, m.entry.Accessor, &logical.Alias{Name: name}, nil, false)
}

// withIdentity adds identity_policies to a token lookup's data, as Vault
// shows them for a token with an entity.
func (c *Core) withIdentity(data map[string]any, te *TokenEntry) map[string]any {
	if r := c.identity.resolve(te.EntityID); r != nil && len(r.policies) > 0 {
		data["identity_policies"] = r.policies
	}
	return data
}
