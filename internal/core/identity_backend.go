package core

import (
	"context"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/arcasec/arca/internal/logical"
	fw "github.com/arcasec/arca/internal/logical/framework"
)

// identityBackend serves identity/: Vault's identity store API over the
// core's identityStore (entities, entity aliases, groups, group aliases and
// lookups).
type identityBackend struct{ core *Core }

func newIdentityBackend(c *Core) logical.Backend {
	b := &identityBackend{core: c}
	entityFields := map[string]*fw.FieldSchema{
		"id":       {Type: fw.TypeString, Description: "the entity's ID (to update an existing entity)"},
		"name":     {Type: fw.TypeString, Description: "the entity's name; generated when empty"},
		"policies": {Type: fw.TypeCommaStringSlice, Description: "policies every token of the entity gains"},
		"metadata": {Type: fw.TypeKVPairs, Description: "metadata of the entity"},
		"disabled": {Type: fw.TypeBool, Description: "refuse the entity's tokens and logins"},
	}
	aliasFields := map[string]*fw.FieldSchema{
		"id":             {Type: fw.TypeString, Description: "the alias's ID"},
		"name":           {Type: fw.TypeString, Description: "the name the auth method knows the login by"},
		"mount_accessor": {Type: fw.TypeString, Description: "the accessor of the auth mount"},
		"canonical_id":   {Type: fw.TypeString, Description: "the ID of the entity (or group) the alias belongs to"},
		"entity_id":      {Type: fw.TypeString, Description: "deprecated name of canonical_id"},
		"group_id":       {Type: fw.TypeString, Description: "deprecated name of canonical_id"},
	}
	groupFields := map[string]*fw.FieldSchema{
		"id":                {Type: fw.TypeString, Description: "the group's ID (to update an existing group)"},
		"name":              {Type: fw.TypeString, Description: "the group's name; generated when empty"},
		"type":              {Type: fw.TypeString, Description: "internal (members listed) or external (members from group aliases at login)"},
		"policies":          {Type: fw.TypeCommaStringSlice, Description: "policies every member gains"},
		"member_entity_ids": {Type: fw.TypeCommaStringSlice, Description: "member entities of an internal group"},
		"member_group_ids":  {Type: fw.TypeCommaStringSlice, Description: "member groups of an internal group"},
		"metadata":          {Type: fw.TypeKVPairs, Description: "metadata of the group"},
	}
	lookupFields := map[string]*fw.FieldSchema{
		"id":                   {Type: fw.TypeString},
		"name":                 {Type: fw.TypeString},
		"alias_id":             {Type: fw.TypeString},
		"alias_name":           {Type: fw.TypeString},
		"alias_mount_accessor": {Type: fw.TypeString},
	}
	rud := func(read, update, del fw.OperationFunc) map[logical.Operation]fw.OperationFunc {
		return map[logical.Operation]fw.OperationFunc{logical.ReadOperation: read, logical.UpdateOperation: update, logical.DeleteOperation: del}
	}
	list := func(f fw.OperationFunc) map[logical.Operation]fw.OperationFunc { return ops(logical.ListOperation, f) }
	up := logical.UpdateOperation
	rd := func(f storeOp) fw.OperationFunc { return b.withStore(false, f) }
	wr := func(f storeOp) fw.OperationFunc { return b.withStore(true, f) }
	return &fw.Backend{
		Help: "The identity store: entities, their aliases on auth mounts, and groups.",
		Paths: []*fw.Path{
			{Pattern: "entity", Fields: entityFields, Operations: ops(up, b.writeEntity(""))},
			{Pattern: "entity/id/?", Operations: list(b.listEntities(true))},
			{Pattern: "entity/batch-delete", Fields: map[string]*fw.FieldSchema{
				"entity_ids": {Type: fw.TypeCommaStringSlice, Description: "IDs of the entities to delete; unknown IDs are skipped"},
			}, Operations: ops(up, b.batchDeleteEntities)},
			{Pattern: "entity/id/(?P<id>[^/]+)", Fields: entityFields, Operations: rud(entityKind.read(b, "id"), b.writeEntity("id"), b.deleteEntity("id"))},
			{Pattern: "entity/name/?", Operations: list(b.listEntities(false))},
			{Pattern: "entity/name/(?P<name>.+)", Fields: entityFields, Operations: rud(entityKind.read(b, "name"), b.writeEntity("name"), b.deleteEntity("name"))},
			{Pattern: "entity-alias", Fields: aliasFields, Operations: ops(up, wr(b.writeAlias))},
			{Pattern: "entity-alias/id/?", Operations: list(rd(b.listAliases))},
			{Pattern: "entity-alias/id/(?P<id>[^/]+)", Fields: aliasFields, Operations: rud(rd(b.readAlias), wr(b.writeAlias), wr(b.deleteAlias))},
			{Pattern: "group", Fields: groupFields, Operations: ops(up, b.writeGroup(""))},
			{Pattern: "group/id/?", Operations: list(b.listGroups(true))},
			{Pattern: "group/id/(?P<id>[^/]+)", Fields: groupFields, Operations: rud(groupKind.read(b, "id"), b.writeGroup("id"), b.deleteGroup("id"))},
			{Pattern: "group/name/?", Operations: list(b.listGroups(false))},
			{Pattern: "group/name/(?P<name>.+)", Fields: groupFields, Operations: rud(groupKind.read(b, "name"), b.writeGroup("name"), b.deleteGroup("name"))},
			{Pattern: "group-alias", Fields: aliasFields, Operations: ops(up, wr(b.writeGroupAlias))},
			{Pattern: "group-alias/id/?", Operations: list(rd(b.listGroupAliases))},
			{Pattern: "group-alias/id/(?P<id>[^/]+)", Fields: aliasFields, Operations: rud(rd(b.readGroupAlias), wr(b.writeGroupAlias), wr(b.deleteGroupAlias))},
			{Pattern: "lookup/entity", Fields: lookupFields, Operations: ops(up, entityKind.lookup(b))},
			{Pattern: "lookup/group", Fields: lookupFields, Operations: ops(up, groupKind.lookup(b))},
		},
	}
}

func (b *identityBackend) store() (*identityStore, error) {
	if s := b.core.identity; s != nil {
		return s, nil
	}
	return nil, logical.ErrSealed
}

func identityTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// authMountByAccessor returns the auth mount with the accessor, or nil.
func (c *Core) authMountByAccessor(accessor string) *MountEntry {
	for _, e := range c.mounts.entries(authTable) {
		if e.Accessor == accessor {
			return e
		}
	}
	return nil
}

func (b *identityBackend) aliasData(a *identityAlias) map[string]any {
	path, typ := "", ""
	if m := b.core.authMountByAccessor(a.MountAccessor); m != nil {
		path, typ = m.routePath(), m.Type
	}
	return map[string]any{
		"id":                        a.ID,
		"canonical_id":              a.CanonicalID,
		"name":                      a.Name,
		"mount_accessor":            a.MountAccessor,
		"mount_path":                path,
		"mount_type":                typ,
		"metadata":                  a.Metadata,
		"custom_metadata":           map[string]string{},
		"creation_time":             identityTime(a.CreationTime),
		"last_update_time":          identityTime(a.LastUpdate),
		"local":                     false,
		"merged_from_canonical_ids": nil,
		"namespace_id":              "root",
	}
}

// aliasListInfo is an alias's key_info entry in a list, Vault's fields.
func aliasListInfo(ad map[string]any) map[string]any {
	out := map[string]any{}
	for _, k := range []string{"canonical_id", "name", "mount_accessor", "mount_path", "mount_type", "metadata", "custom_metadata", "local"} {
		out[k] = ad[k]
	}
	return out
}

// aliasList answers a list of aliases: their IDs with Vault's key_info;
// nothing (404) when there are none.
func (b *identityBackend) aliasList(aliases []*identityAlias) *logical.Response {
	if len(aliases) == 0 {
		return nil
	}
	keys := make([]string, 0, len(aliases))
	info := map[string]any{}
	for _, a := range aliases {
		keys = append(keys, a.ID)
		info[a.ID] = aliasListInfo(b.aliasData(a))
	}
	sort.Strings(keys)
	return &logical.Response{Data: map[string]any{"keys": keys, "key_info": info}}
}

// aliasSummary is an alias as an entity or group list's key_info shows it.
func (b *identityBackend) aliasSummary(a *identityAlias) map[string]any {
	ad := b.aliasData(a)
	return map[string]any{"id": a.ID, "name": a.Name, "mount_accessor": a.MountAccessor,
		"mount_path": ad["mount_path"], "mount_type": ad["mount_type"]}
}

// listKey is an entity's or group's key in a list by ID or by name.
func listKey(byID bool, id, name string) string {
	if byID {
		return id
	}
	return name
}

// keyedList answers a list of entities or groups: by ID with key_info, by
// name the keys alone.
func keyedList(byID bool, keys []string, info map[string]any) *logical.Response {
	sort.Strings(keys)
	if !byID {
		return listResponse(keys)
	}
	return &logical.Response{Data: map[string]any{"keys": keys, "key_info": info}}
}

func groupIDs(gs []*identityGroup) []string {
	ids := make([]string, 0, len(gs))
	for _, g := range gs {
		ids = append(ids, g.ID)
	}
	sort.Strings(ids)
	return ids
}

func (b *identityBackend) entityData(s *identityStore, e *identityEntity) map[string]any {
	aliases := make([]any, 0, len(e.Aliases))
	for _, a := range e.Aliases {
		aliases = append(aliases, b.aliasData(a))
	}
	direct, inherited, all := []string{}, []string{}, []string{}
	if r := s.resolve(e.ID); r != nil {
		direct, inherited, all = groupIDs(r.directGroups), groupIDs(r.inherited), r.allGroupIDs()
	}
	return map[string]any{
		"id":                  e.ID,
		"name":                e.Name,
		"policies":            nonNil(e.Policies),
		"metadata":            e.Metadata,
		"disabled":            e.Disabled,
		"aliases":             aliases,
		"creation_time":       identityTime(e.CreationTime),
		"last_update_time":    identityTime(e.LastUpdate),
		"direct_group_ids":    direct,
		"group_ids":           all,
		"inherited_group_ids": inherited,
		"merged_entity_ids":   nil,
		"namespace_id":        "root",
		"mfa_secrets":         map[string]any{},
	}
}

func (b *identityBackend) groupData(s *identityStore, g *identityGroup) map[string]any {
	var alias any = map[string]any{}
	if g.Alias != nil {
		alias = b.aliasData(g.Alias)
	}
	s.mu.RLock()
	var parents []string
	for _, p := range s.groups {
		if slices.Contains(p.MemberGroupIDs, g.ID) {
			parents = append(parents, p.ID)
		}
	}
	s.mu.RUnlock()
	sort.Strings(parents)
	return map[string]any{
		"id":                g.ID,
		"name":              g.Name,
		"type":              g.Type,
		"policies":          nonNil(g.Policies),
		"member_entity_ids": nonNil(g.MemberEntityIDs),
		"member_group_ids":  nonNil(g.MemberGroupIDs),
		"parent_group_ids":  nonNil(parents),
		"metadata":          g.Metadata,
		"alias":             alias,
		"creation_time":     identityTime(g.CreationTime),
		"last_update_time":  identityTime(g.LastUpdate),
		"modify_index":      0,
		"namespace_id":      "root",
	}
}

// identityPolicyNames normalises the policies of an entity or group; root
// cannot be among them, so no identity makes every token of it root.
func identityPolicyNames(names []string) ([]string, error) {
	pols := policyNames(names)
	if slices.Contains(pols, "root") {
		return nil, logical.BadRequest("policies: the root policy cannot be given to an entity or group")
	}
	slices.Sort(pols)
	return slices.Compact(pols), nil
}

// findEntity finds an entity by the path capture (by "id" or "name").
func (s *identityStore) findEntity(by, key string) *identityEntity {
	return findByIDOrName(s, s.entities, s.entityByName, by, key)
}

func (s *identityStore) findGroup(by, key string) *identityGroup {
	return findByIDOrName(s, s.groups, s.groupByName, by, key)
}

// findByIDOrName looks key up in byID, or (by "name") through byName first.
func findByIDOrName[T any](s *identityStore, byID map[string]*T, byName map[string]string, by, key string) *T {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if by == "name" {
		return byID[byName[key]]
	}
	return byID[key]
}

// storeOp is a handler body that runs with the identity store.
type storeOp func(ctx context.Context, s *identityStore, d *fw.FieldData) (*logical.Response, error)

// withStore makes an operation of f, run with the identity store (an error
// while sealed); locked, f also holds the store's write lock.
func (b *identityBackend) withStore(locked bool, f storeOp) fw.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
		s, err := b.store()
		if err != nil {
			return nil, err
		}
		if locked {
			s.writeMu.Lock()
			defer s.writeMu.Unlock()
		}
		return f(ctx, s, d)
	}
}

// identityKind is what the handlers shared by entities and groups need to
// know of one of them.
type identityKind[T any] struct {
	noun string // "entity" or "group", in messages
	find func(s *identityStore, by, key string) *T
	// byAlias finds the holder of an alias by the alias's ID.
	byAlias func(s *identityStore, id string) *T
	// byAliasKeyLocked finds the holder of an alias by mount accessor and
	// name; the caller holds s.mu.
	byAliasKeyLocked func(s *identityStore, accessor, name string) *T
	data             func(b *identityBackend, s *identityStore, v *T) map[string]any
	id               func(v *T) string
}

var (
	entityKind = identityKind[identityEntity]{
		noun: "entity",
		find: (*identityStore).findEntity,
		byAlias: func(s *identityStore, id string) *identityEntity {
			_, e := s.findAlias(id)
			return e
		},
		byAliasKeyLocked: func(s *identityStore, accessor, name string) *identityEntity {
			return s.entities[s.aliasByID[s.aliasByKey[aliasKey(accessor, name)]]]
		},
		data: (*identityBackend).entityData,
		id:   func(e *identityEntity) string { return e.ID },
	}
	groupKind = identityKind[identityGroup]{
		noun:    "group",
		find:    (*identityStore).findGroup,
		byAlias: (*identityStore).findGroupAlias,
		byAliasKeyLocked: func(s *identityStore, accessor, name string) *identityGroup {
			return s.groups[s.gAliasByID[s.gAliasByKey[aliasKey(accessor, name)]]]
		},
		data: (*identityBackend).groupData,
		id:   func(g *identityGroup) string { return g.ID },
	}
)

// read serves a read by the path capture (by "id" or "name").
func (k identityKind[T]) read(b *identityBackend, by string) fw.OperationFunc {
	return b.withStore(false, func(ctx context.Context, s *identityStore, d *fw.FieldData) (*logical.Response, error) {
		v := k.find(s, by, d.String(by))
		if v == nil {
			return nil, nil
		}
		return &logical.Response{Data: k.data(b, s, v)}, nil
	})
}

// lookup serves lookup/entity or lookup/group.
func (k identityKind[T]) lookup(b *identityBackend) fw.OperationFunc {
	return b.withStore(false, func(ctx context.Context, s *identityStore, d *fw.FieldData) (*logical.Response, error) {
		by, err := lookupCriteria(d)
		if err != nil {
			return nil, err
		}
		var v *T
		switch by {
		case "id", "name":
			v = k.find(s, by, d.String(by))
		case "alias_id":
			v = k.byAlias(s, d.String("alias_id"))
		case "alias_name":
			s.mu.RLock()
			v = k.byAliasKeyLocked(s, d.String("alias_mount_accessor"), d.String("alias_name"))
			s.mu.RUnlock()
		}
		if v == nil {
			return nil, nil
		}
		return &logical.Response{Data: k.data(b, s, v)}, nil
	})
}

// target finds what a write updates: by the ID or name in the path, or on
// the bare path by the id given, else by the name given; nil for a new one.
func (k identityKind[T]) target(s *identityStore, by string, d *fw.FieldData) (*T, error) {
	var v *T
	switch {
	case by != "":
		v = k.find(s, by, d.String(by))
		if v == nil && by == "id" {
			return nil, logical.BadRequest("%s not found from id %q", k.noun, d.String("id"))
		}
	case d.String("id") != "":
		if v = k.find(s, "id", d.String("id")); v == nil {
			return nil, logical.BadRequest("%s not found from id %q", k.noun, d.String("id"))
		}
	case d.String("name") != "":
		v = k.find(s, "name", d.String("name"))
	}
	return v, nil
}

// identityFields are the fields entities and groups share.
type identityFields struct {
	id       string
	name     *string
	policies *[]string
	metadata *map[string]string
}

// set applies name, policies and metadata from d; a name another of the
// kind holds is refused.
func (k identityKind[T]) set(s *identityStore, d *fw.FieldData, f identityFields) error {
	if name, ok := d.GetOk("name"); ok && name.(string) != "" && name.(string) != *f.name {
		if other := k.find(s, "name", name.(string)); other != nil && k.id(other) != f.id {
			return logical.BadRequest("%s name %q is already in use", k.noun, name)
		}
		*f.name = name.(string)
	}
	if v, ok := d.GetOk("policies"); ok {
		pols, err := identityPolicyNames(v.([]string))
		if err != nil {
			return err
		}
		*f.policies = pols
	}
	if v, ok := d.GetOk("metadata"); ok {
		*f.metadata = v.(map[string]string)
	}
	return nil
}

// writeEntity creates or updates an entity: by the ID or name in the path,
// or on identity/entity by the id given, else by the name given.
func (b *identityBackend) writeEntity(by string) fw.OperationFunc {
	return b.withStore(true, func(ctx context.Context, s *identityStore, d *fw.FieldData) (*logical.Response, error) {
		e, err := entityKind.target(s, by, d)
		if err != nil {
			return nil, err
		}
		now := b.core.Now().UTC()
		created := e == nil
		if created {
			e = &identityEntity{ID: newUUID(), Name: d.String("name"), CreationTime: now}
			if e.Name == "" {
				e.Name = newEntityName()
			}
		} else {
			e = e.clone()
		}
		if err := entityKind.set(s, d, identityFields{e.ID, &e.Name, &e.Policies, &e.Metadata}); err != nil {
			return nil, err
		}
		if v, ok := d.GetOk("disabled"); ok {
			e.Disabled = v.(bool)
		}
		e.LastUpdate = now
		if err := s.commit(ctx, []*identityEntity{e}, nil, nil, nil); err != nil {
			return nil, err
		}
		if !created {
			// Vault answers an update of an existing entity with 204.
			return nil, nil
		}
		aliasIDs := make([]string, 0, len(e.Aliases))
		for _, a := range e.Aliases {
			aliasIDs = append(aliasIDs, a.ID)
		}
		return &logical.Response{Data: map[string]any{"id": e.ID, "name": e.Name, "aliases": aliasIDs}}, nil
	})
}

func (b *identityBackend) deleteEntity(by string) fw.OperationFunc {
	return b.withStore(true, func(ctx context.Context, s *identityStore, d *fw.FieldData) (*logical.Response, error) {
		e := s.findEntity(by, d.String(by))
		if e == nil {
			return nil, nil
		}
		return nil, s.deleteEntities(ctx, []string{e.ID})
	})
}

// deleteEntities deletes the entities (with their aliases) and takes them
// out of the groups they are members of, in one commit.
func (s *identityStore) deleteEntities(ctx context.Context, del []string) error {
	var groups []*identityGroup
	s.mu.RLock()
	for _, g := range s.groups {
		if slices.ContainsFunc(g.MemberEntityIDs, func(m string) bool { return slices.Contains(del, m) }) {
			g = g.clone()
			g.MemberEntityIDs = slices.DeleteFunc(g.MemberEntityIDs, func(m string) bool { return slices.Contains(del, m) })
			groups = append(groups, g)
		}
	}
	s.mu.RUnlock()
	return s.commit(ctx, nil, groups, del, nil)
}

// batchDeleteEntities deletes several entities (with their aliases, and
// from their groups) in one commit, as Vault's entity/batch-delete does.
func (b *identityBackend) batchDeleteEntities(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	ids := d.Strings("entity_ids")
	if len(ids) == 0 {
		return nil, logical.BadRequest("missing entity_ids: the IDs of the entities to delete")
	}
	return b.withStore(true, func(ctx context.Context, s *identityStore, d *fw.FieldData) (*logical.Response, error) {
		var del []string
		for _, id := range ids {
			if e := s.findEntity("id", id); e != nil && !slices.Contains(del, e.ID) {
				del = append(del, e.ID)
			}
		}
		if len(del) == 0 {
			return nil, nil
		}
		return nil, s.deleteEntities(ctx, del)
	})(ctx, req, d)
}

func (b *identityBackend) listEntities(byID bool) fw.OperationFunc {
	return b.withStore(false, func(ctx context.Context, s *identityStore, d *fw.FieldData) (*logical.Response, error) {
		s.mu.RLock()
		entities := slices.Collect(maps.Values(s.entities))
		s.mu.RUnlock()
		if len(entities) == 0 {
			return nil, nil
		}
		keys := make([]string, 0, len(entities))
		info := map[string]any{}
		for _, e := range entities {
			aliases := make([]any, 0, len(e.Aliases))
			for _, a := range e.Aliases {
				aliases = append(aliases, b.aliasSummary(a))
			}
			key := listKey(byID, e.ID, e.Name)
			keys = append(keys, key)
			info[key] = map[string]any{"name": e.Name, "id": e.ID, "aliases": aliases}
		}
		return keyedList(byID, keys, info), nil
	})
}

// canonical reads canonical_id or its deprecated names.
func canonical(d *fw.FieldData, old string) (string, bool) {
	for _, f := range []string{"canonical_id", old} {
		if v, ok := d.GetOk(f); ok {
			return v.(string), true
		}
	}
	return "", false
}

func (b *identityBackend) checkAccessor(accessor string) error {
	if accessor == "" {
		return logical.BadRequest("missing required field \"mount_accessor\"")
	}
	if b.core.authMountByAccessor(accessor) == nil {
		return logical.BadRequest("invalid mount accessor %q: no auth mount has it", accessor)
	}
	return nil
}

// setAliasName applies the name and mount_accessor given to an alias.
func setAliasName(alias *identityAlias, d *fw.FieldData) {
	if v, ok := d.GetOk("name"); ok {
		alias.Name = v.(string)
	}
	if v, ok := d.GetOk("mount_accessor"); ok {
		alias.MountAccessor = v.(string)
	}
}

// writeAlias creates an entity alias (identity/entity-alias) or updates one
// (by the id in the path or the body).
func (b *identityBackend) writeAlias(ctx context.Context, s *identityStore, d *fw.FieldData) (*logical.Response, error) {
	now := b.core.Now().UTC()
	var from *identityEntity // the entity the alias belongs to now
	var alias *identityAlias
	id := d.String("id")
	if id == "" {
		// As in Vault, a write naming the mount accessor and name of an
		// existing alias updates that alias.
		s.mu.RLock()
		id = s.aliasByKey[aliasKey(d.String("mount_accessor"), d.String("name"))]
		s.mu.RUnlock()
	}
	var before identityAlias
	if id != "" {
		s.mu.RLock()
		from = s.entities[s.aliasByID[id]]
		s.mu.RUnlock()
		if from == nil {
			return nil, logical.BadRequest("entity alias not found from id %q", id)
		}
		for _, a := range from.Aliases {
			if a.ID == id {
				before = *a
				c := *a
				alias = &c
			}
		}
	} else {
		alias = &identityAlias{ID: newUUID(), CreationTime: now}
	}
	setAliasName(alias, d)
	canonicalID, _ := canonical(d, "entity_id")
	canonicalGiven := canonicalID != "" // an empty one moves nothing
	if canonicalGiven {
		alias.CanonicalID = canonicalID
	}
	if alias.Name == "" {
		return nil, logical.BadRequest("missing required field \"name\"")
	}
	if before.ID != "" && alias.Name == before.Name && alias.MountAccessor == before.MountAccessor &&
		(!canonicalGiven || canonicalID == before.CanonicalID) {
		// Nothing changes: 204, as Vault answers an idempotent write.
		return nil, nil
	}
	if err := b.checkAccessor(alias.MountAccessor); err != nil {
		return nil, err
	}
	// An alias given without an entity gets a new one, as in Vault.
	to := s.findEntity("id", alias.CanonicalID)
	if alias.CanonicalID != "" && to == nil {
		return nil, logical.BadRequest("entity not found from canonical_id %q", alias.CanonicalID)
	}
	s.mu.RLock()
	if other, ok := s.aliasByKey[aliasKey(alias.MountAccessor, alias.Name)]; ok && other != alias.ID {
		s.mu.RUnlock()
		return nil, logical.BadRequest("an entity alias named %q already exists on mount accessor %q", alias.Name, alias.MountAccessor)
	}
	s.mu.RUnlock()
	var entities []*identityEntity
	if to == nil {
		to = &identityEntity{ID: newUUID(), Name: newEntityName(), CreationTime: now, LastUpdate: now}
	} else {
		to = to.clone()
	}
	alias.CanonicalID = to.ID
	alias.LastUpdate = now
	for _, a := range to.Aliases {
		if a.MountAccessor == alias.MountAccessor && a.ID != alias.ID {
			return nil, logical.BadRequest("entity %q already has an alias on mount accessor %q: an entity has one alias per auth mount", to.ID, alias.MountAccessor)
		}
	}
	if from != nil && from.ID != to.ID {
		from = from.clone()
		from.Aliases = slices.DeleteFunc(from.Aliases, func(a *identityAlias) bool { return a.ID == alias.ID })
		from.LastUpdate = now
		entities = append(entities, from)
	}
	to.Aliases = slices.DeleteFunc(to.Aliases, func(a *identityAlias) bool { return a.ID == alias.ID })
	to.Aliases = append(to.Aliases, alias)
	to.LastUpdate = now
	entities = append(entities, to)
	if err := s.commit(ctx, entities, nil, nil, nil); err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{"id": alias.ID, "canonical_id": alias.CanonicalID}}, nil
}

// findAlias returns an entity alias by ID and its entity.
func (s *identityStore) findAlias(id string) (*identityAlias, *identityEntity) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.entities[s.aliasByID[id]]
	if e == nil {
		return nil, nil
	}
	for _, a := range e.Aliases {
		if a.ID == id {
			return a, e
		}
	}
	return nil, nil
}

func (b *identityBackend) readAlias(ctx context.Context, s *identityStore, d *fw.FieldData) (*logical.Response, error) {
	a, _ := s.findAlias(d.String("id"))
	if a == nil {
		return nil, nil
	}
	return &logical.Response{Data: b.aliasData(a)}, nil
}

func (b *identityBackend) deleteAlias(ctx context.Context, s *identityStore, d *fw.FieldData) (*logical.Response, error) {
	a, e := s.findAlias(d.String("id"))
	if a == nil {
		return nil, nil
	}
	e = e.clone()
	e.Aliases = slices.DeleteFunc(e.Aliases, func(x *identityAlias) bool { return x.ID == a.ID })
	e.LastUpdate = b.core.Now().UTC()
	return nil, s.commit(ctx, []*identityEntity{e}, nil, nil, nil)
}

func (b *identityBackend) listAliases(ctx context.Context, s *identityStore, d *fw.FieldData) (*logical.Response, error) {
	s.mu.RLock()
	entities := slices.Collect(maps.Values(s.entities))
	s.mu.RUnlock()
	var aliases []*identityAlias
	for _, e := range entities {
		aliases = append(aliases, e.Aliases...)
	}
	return b.aliasList(aliases), nil
}

// writeGroup creates or updates a group.
func (b *identityBackend) writeGroup(by string) fw.OperationFunc {
	return b.withStore(true, func(ctx context.Context, s *identityStore, d *fw.FieldData) (*logical.Response, error) {
		g, err := groupKind.target(s, by, d)
		if err != nil {
			return nil, err
		}
		now := b.core.Now().UTC()
		created := g == nil
		if created {
			g = &identityGroup{ID: newUUID(), Name: d.String("name"), Type: "internal", CreationTime: now}
			if g.Name == "" {
				g.Name = "group_" + newUUID()[:8]
			}
			if t := strings.ToLower(d.String("type")); t != "" {
				g.Type = t
			}
		} else {
			g = g.clone()
			if t := strings.ToLower(d.String("type")); t != "" && t != g.Type {
				return nil, logical.BadRequest("a group's type cannot change (it is %q)", g.Type)
			}
		}
		if g.Type != "internal" && g.Type != "external" {
			return nil, logical.BadRequest("invalid type %q: internal or external", g.Type)
		}
		if err := groupKind.set(s, d, identityFields{g.ID, &g.Name, &g.Policies, &g.Metadata}); err != nil {
			return nil, err
		}
		s.mu.RLock()
		err = b.setMembersLocked(s, g, d)
		s.mu.RUnlock()
		if err != nil {
			return nil, err
		}
		g.LastUpdate = now
		if err := s.commit(ctx, nil, []*identityGroup{g}, nil, nil); err != nil {
			return nil, err
		}
		if !created {
			// Vault answers an update of an existing group with 204.
			return nil, nil
		}
		return &logical.Response{Data: map[string]any{"id": g.ID, "name": g.Name}}, nil
	})
}

// setMembersLocked applies member_entity_ids and member_group_ids to g,
// checking that the members exist and no group becomes its own member.
func (b *identityBackend) setMembersLocked(s *identityStore, g *identityGroup, d *fw.FieldData) error {
	if v, ok := d.GetOk("member_entity_ids"); ok {
		ids := v.([]string)
		if g.Type == "external" && len(ids) > 0 {
			return logical.BadRequest("member_entity_ids cannot be set on an external group: its members come from group aliases at login")
		}
		for _, id := range ids {
			if s.entities[id] == nil {
				return logical.BadRequest("member_entity_ids: entity %q does not exist", id)
			}
		}
		if g.Type == "internal" {
			slices.Sort(ids)
			g.MemberEntityIDs = slices.Compact(ids)
		}
	}
	if v, ok := d.GetOk("member_group_ids"); ok {
		ids := v.([]string)
		if g.Type == "external" && len(ids) > 0 {
			return logical.BadRequest("member_group_ids cannot be set on an external group")
		}
		for _, id := range ids {
			if s.groups[id] == nil {
				return logical.BadRequest("member_group_ids: group %q does not exist", id)
			}
			if id == g.ID || s.groupContainsLocked(id, g.ID, map[string]bool{}) {
				return logical.BadRequest("member_group_ids: group %q would make a cycle of member groups", id)
			}
		}
		slices.Sort(ids)
		g.MemberGroupIDs = slices.Compact(ids)
	}
	return nil
}

// groupContainsLocked reports whether group id holds target among its
// member groups, transitively.
func (s *identityStore) groupContainsLocked(id, target string, seen map[string]bool) bool {
	if seen[id] {
		return false
	}
	seen[id] = true
	g := s.groups[id]
	if g == nil {
		return false
	}
	for _, m := range g.MemberGroupIDs {
		if m == target || s.groupContainsLocked(m, target, seen) {
			return true
		}
	}
	return false
}

func (b *identityBackend) deleteGroup(by string) fw.OperationFunc {
	return b.withStore(true, func(ctx context.Context, s *identityStore, d *fw.FieldData) (*logical.Response, error) {
		g := s.findGroup(by, d.String(by))
		if g == nil {
			return nil, nil
		}
		var parents []*identityGroup
		s.mu.RLock()
		for _, p := range s.groups {
			if p.ID != g.ID && slices.Contains(p.MemberGroupIDs, g.ID) {
				p = p.clone()
				p.MemberGroupIDs = slices.DeleteFunc(p.MemberGroupIDs, func(m string) bool { return m == g.ID })
				parents = append(parents, p)
			}
		}
		s.mu.RUnlock()
		return nil, s.commit(ctx, nil, parents, nil, []string{g.ID})
	})
}

func (b *identityBackend) listGroups(byID bool) fw.OperationFunc {
	return b.withStore(false, func(ctx context.Context, s *identityStore, d *fw.FieldData) (*logical.Response, error) {
		s.mu.RLock()
		groups := slices.Collect(maps.Values(s.groups))
		s.mu.RUnlock()
		if len(groups) == 0 {
			return nil, nil
		}
		parents := map[string]int{}
		for _, g := range groups {
			for _, m := range g.MemberGroupIDs {
				parents[m]++
			}
		}
		var keys []string
		info := map[string]any{}
		for _, g := range groups {
			key := listKey(byID, g.ID, g.Name)
			keys = append(keys, key)
			// Vault's key_info: the name and member counts, and the alias if any.
			gi := map[string]any{"name": g.Name, "id": g.ID, "type": g.Type,
				"num_member_entities": len(g.MemberEntityIDs), "num_parent_groups": parents[g.ID]}
			if a := g.Alias; a != nil {
				gi["alias"] = b.aliasSummary(a)
			}
			info[key] = gi
		}
		return keyedList(byID, keys, info), nil
	})
}

// writeGroupAlias creates or updates the alias of an external group.
func (b *identityBackend) writeGroupAlias(ctx context.Context, s *identityStore, d *fw.FieldData) (*logical.Response, error) {
	now := b.core.Now().UTC()
	var from *identityGroup
	alias := &identityAlias{ID: newUUID(), CreationTime: now}
	if id := d.String("id"); id != "" {
		s.mu.RLock()
		from = s.groups[s.gAliasByID[id]]
		s.mu.RUnlock()
		if from == nil || from.Alias == nil {
			return nil, logical.BadRequest("group alias not found from id %q", id)
		}
		c := *from.Alias
		alias = &c
	}
	setAliasName(alias, d)
	if v, ok := canonical(d, "group_id"); ok {
		alias.CanonicalID = v
	}
	if alias.Name == "" {
		return nil, logical.BadRequest("missing required field \"name\"")
	}
	if err := b.checkAccessor(alias.MountAccessor); err != nil {
		return nil, err
	}
	to := s.findGroup("id", alias.CanonicalID)
	if to == nil {
		return nil, logical.BadRequest("group not found from canonical_id %q", alias.CanonicalID)
	}
	if to.Type != "external" {
		return nil, logical.BadRequest("group %q is internal: only external groups have aliases", to.Name)
	}
	if to.Alias != nil && to.Alias.ID != alias.ID {
		return nil, logical.BadRequest("group %q already has an alias (%s)", to.Name, to.Alias.ID)
	}
	s.mu.RLock()
	other, taken := s.gAliasByKey[aliasKey(alias.MountAccessor, alias.Name)]
	s.mu.RUnlock()
	if taken && other != alias.ID {
		return nil, logical.BadRequest("a group alias named %q already exists on mount accessor %q", alias.Name, alias.MountAccessor)
	}
	alias.LastUpdate = now
	var groups []*identityGroup
	if from != nil && from.ID != to.ID {
		from = from.clone()
		from.Alias, from.LastUpdate = nil, now
		groups = append(groups, from)
	}
	to = to.clone()
	to.Alias, to.LastUpdate = alias, now
	groups = append(groups, to)
	if err := s.commit(ctx, nil, groups, nil, nil); err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{"id": alias.ID, "canonical_id": alias.CanonicalID}}, nil
}

func (s *identityStore) findGroupAlias(id string) *identityGroup {
	s.mu.RLock()
	defer s.mu.RUnlock()
	g := s.groups[s.gAliasByID[id]]
	if g == nil || g.Alias == nil || g.Alias.ID != id {
		return nil
	}
	return g
}

func (b *identityBackend) readGroupAlias(ctx context.Context, s *identityStore, d *fw.FieldData) (*logical.Response, error) {
	g := s.findGroupAlias(d.String("id"))
	if g == nil {
		return nil, nil
	}
	return &logical.Response{Data: b.aliasData(g.Alias)}, nil
}

func (b *identityBackend) deleteGroupAlias(ctx context.Context, s *identityStore, d *fw.FieldData) (*logical.Response, error) {
	g := s.findGroupAlias(d.String("id"))
	if g == nil {
		return nil, nil
	}
	g = g.clone()
	g.Alias, g.LastUpdate = nil, b.core.Now().UTC()
	return nil, s.commit(ctx, nil, []*identityGroup{g}, nil, nil)
}

func (b *identityBackend) listGroupAliases(ctx context.Context, s *identityStore, d *fw.FieldData) (*logical.Response, error) {
	s.mu.RLock()
	groups := slices.Collect(maps.Values(s.groups))
	s.mu.RUnlock()
	var aliases []*identityAlias
	for _, g := range groups {
		if g.Alias != nil {
			aliases = append(aliases, g.Alias)
		}
	}
	return b.aliasList(aliases), nil
}

// lookupCriteria checks that exactly one way of naming the target was
// given: id, name, alias_id, or alias_name with alias_mount_accessor.
func lookupCriteria(d *fw.FieldData) (string, error) {
	var given []string
	for _, f := range []string{"id", "name", "alias_id"} {
		if d.String(f) != "" {
			given = append(given, f)
		}
	}
	an, am := d.String("alias_name"), d.String("alias_mount_accessor")
	if an != "" || am != "" {
		if an == "" || am == "" {
			return "", logical.BadRequest("alias_name and alias_mount_accessor must be given together")
		}
		given = append(given, "alias_name")
	}
	switch len(given) {
	case 0:
		return "", logical.BadRequest("missing lookup criteria: one of id, name, alias_id, or alias_name with alias_mount_accessor")
	case 1:
		return given[0], nil
	}
	return "", logical.BadRequest("only one lookup criterion may be given, not %s", strings.Join(given, ", "))
}
