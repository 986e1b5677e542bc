package core

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/storage"
)

// MountEntry is one row of the mount table.
type MountEntry struct {
	Table       string            `json:"table"` // "mounts" or "auth"
	Path        string            `json:"path"`  // with trailing "/"; auth mounts without the "auth/" prefix
	Type        string            `json:"type"`
	Description string            `json:"description"`
	UUID        string            `json:"uuid"`
	Accessor    string            `json:"accessor"`
	Options     map[string]string `json:"options"`
	Config      MountConfig       `json:"config"`
	Local       bool              `json:"local"`
	SealWrap    bool              `json:"seal_wrap"`
}

// MountConfig holds a mount's tunables.
type MountConfig struct {
	DefaultLeaseTTL   time.Duration `json:"default_lease_ttl"`
	MaxLeaseTTL       time.Duration `json:"max_lease_ttl"`
	ListingVisibility string        `json:"listing_visibility,omitempty"`
	// Keys of request and response data that audit devices write in
	// plaintext instead of HMAC'd.
	AuditNonHMACRequestKeys  []string `json:"audit_non_hmac_request_keys,omitempty"`
	AuditNonHMACResponseKeys []string `json:"audit_non_hmac_response_keys,omitempty"`
	// UserLockout is an auth mount's user_lockout_config tune; nil: the
	// server's user_lockout stanzas decide.
	UserLockout *UserLockoutConfig `json:"user_lockout_config,omitempty"`
}

// routePath is the path the router matches: "auth/<path>" for auth mounts.
func (m *MountEntry) routePath() string {
	if m.Table == authTable {
		return "auth/" + m.Path
	}
	return m.Path
}

func (m *MountEntry) storagePrefix() string {
	if m.Table == authTable {
		return "auth/" + m.UUID + "/"
	}
	return "logical/" + m.UUID + "/"
}

const (
	mountsTable = "mounts"
	authTable   = "auth"

	mountTableKey = "core/mounts"
	authTableKey  = "core/auth"
)

// mount is a live mount: its entry, its backend and its storage view.
type mount struct {
	entry   *MountEntry
	backend logical.Backend
	view    *view
	sys     *mountSystemView
}

// mountSystemView is the SystemView a mount's backend sees: the mount's own
// TTLs, falling back to the system's. It follows the mount through tunes,
// which replace the entry rather than change it in place.
type mountSystemView struct {
	core  *Core
	entry atomic.Pointer[MountEntry]
}

func newMountSystemView(c *Core, e *MountEntry) *mountSystemView {
	s := &mountSystemView{core: c}
	s.entry.Store(e)
	return s
}

func (s *mountSystemView) DefaultLeaseTTL() time.Duration {
	if d := s.entry.Load().Config.DefaultLeaseTTL; d > 0 {
		return d
	}
	return s.core.conf.DefaultLeaseTTL
}

func (s *mountSystemView) Now() time.Time { return s.core.Now() }

func (s *mountSystemView) MaxLeaseTTL() time.Duration {
	if d := s.entry.Load().Config.MaxLeaseTTL; d > 0 {
		return d
	}
	return s.core.conf.MaxLeaseTTL
}

// mountTable is the router: live mounts by route path.
type mountTable struct {
	core *Core
	mu   sync.RWMutex
	// byPath maps a route path ("secret/", "auth/token/") to its mount.
	byPath map[string]*mount
}

// builtin mounts that always exist and cannot be moved or disabled.
var protectedMounts = map[string]bool{"sys/": true, "auth/token/": true, "cubbyhole/": true, "identity/": true}

func defaultMountEntries() []*MountEntry {
	return []*MountEntry{
		{Table: mountsTable, Path: "sys/", Type: "system", Description: "Arca's own endpoints: seal, mounts, policies, audit and tokens' capabilities"},
		{Table: mountsTable, Path: "cubbyhole/", Type: "cubbyhole", Description: "storage private to each token, destroyed with it", Local: true},
		identityMountEntry(),
		{Table: authTable, Path: "token/", Type: "token", Description: "Arca's token store"},
	}
}

func identityMountEntry() *MountEntry {
	return &MountEntry{Table: mountsTable, Path: "identity/", Type: "identity", Description: "identity store: entities, aliases and groups"}
}

// ensureBuiltin mounts a builtin that a store written by an older version
// lacks.
func (mt *mountTable) ensureBuiltin(ctx context.Context, e *MountEntry) error {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	if _, ok := mt.byPath[e.routePath()]; ok {
		return nil
	}
	e.UUID = newUUID()
	e.Accessor = newAccessor(e)
	m, err := mt.instantiate(ctx, e)
	if err != nil {
		return err
	}
	mt.byPath[e.routePath()] = m
	if err := mt.persistLocked(ctx, e.Table); err != nil {
		delete(mt.byPath, e.routePath())
		return fmt.Errorf("adding the %s mount: %w", e.routePath(), err)
	}
	return nil
}

func writeDefaultMounts(ctx context.Context, s storage.Storage) error {
	var mounts, auths []*MountEntry
	for _, e := range defaultMountEntries() {
		e.UUID = newUUID()
		e.Accessor = newAccessor(e)
		if e.Table == authTable {
			auths = append(auths, e)
		} else {
			mounts = append(mounts, e)
		}
	}
	if err := putJSONTo(ctx, s, mountTableKey, mounts); err != nil {
		return err
	}
	return putJSONTo(ctx, s, authTableKey, auths)
}

func newAccessor(e *MountEntry) string {
	if e.Table == authTable {
		return "auth_" + e.Type + "_" + randomHex(4)
	}
	return e.Type + "_" + randomHex(4)
}

func loadMountTable(ctx context.Context, c *Core) (*mountTable, error) {
	mt := &mountTable{core: c, byPath: make(map[string]*mount)}
	for _, key := range []string{mountTableKey, authTableKey} {
		var entries []*MountEntry
		if _, err := c.getJSON(ctx, key, &entries); err != nil {
			return nil, fmt.Errorf("loading the mount table: %w", err)
		}
		for _, e := range entries {
			m, err := mt.instantiate(ctx, e)
			if err != nil {
				c.logger.Error("mount failed to load; it stays unavailable", "path", e.routePath(), "type", e.Type, "error", err)
				continue
			}
			mt.byPath[e.routePath()] = m
		}
	}
	return mt, nil
}

func (mt *mountTable) instantiate(ctx context.Context, e *MountEntry) (*mount, error) {
	c := mt.core
	m := &mount{entry: e, view: newView(c.barrier, e.storagePrefix())}
	m.sys = newMountSystemView(c, e)
	var err error
	switch {
	case e.Type == "system":
		m.backend = newSystemBackend(c)
	case e.Type == "token" && e.Table == authTable:
		m.backend = newTokenBackend(c)
	case e.Type == "cubbyhole":
		m.backend = newCubbyholeBackend(c)
	case e.Type == "identity" && e.Path == "identity/":
		m.backend = newIdentityBackend(c)
	default:
		catalog := c.conf.Catalog.Secrets
		if e.Table == authTable {
			catalog = c.conf.Catalog.Auth
		}
		factory, ok := catalog[e.Type]
		if !ok {
			return nil, logical.BadRequest("plugin not found in the catalog: %s", e.Type)
		}
		m.backend, err = factory(ctx, &logical.BackendConfig{
			Storage:   m.view,
			System:    m.sys,
			Logger:    c.logger.With("mount", e.routePath()),
			MountPath: e.routePath(),
			Options:   e.Options,
		})
		if err != nil {
			return nil, logical.BadRequest("%v", err)
		}
	}
	return m, nil
}

// route finds the mount for a request path: the longest mount path that is
// a prefix of it. A path equal to a mount path without its trailing slash
// routes to the mount too.
func (mt *mountTable) route(path string) (*mount, string) {
	mt.mu.RLock()
	defer mt.mu.RUnlock()
	best := -1
	var found *mount
	for i := 0; i < len(path); i++ {
		if path[i] != '/' {
			continue
		}
		if m, ok := mt.byPath[path[:i+1]]; ok && i > best {
			best, found = i, m
		}
	}
	if m, ok := mt.byPath[path+"/"]; ok {
		return m, ""
	}
	if found == nil {
		return nil, ""
	}
	return found, path[best+1:]
}

func (mt *mountTable) get(routePath string) *mount {
	mt.mu.RLock()
	defer mt.mu.RUnlock()
	return mt.byPath[routePath]
}

// entries returns the entries of one table, sorted by path.
func (mt *mountTable) entries(table string) []*MountEntry {
	mt.mu.RLock()
	defer mt.mu.RUnlock()
	var out []*MountEntry
	for _, m := range mt.byPath {
		if m.entry.Table == table {
			out = append(out, m.entry)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// persist writes one table. Callers hold mt.mu for writing.
func (mt *mountTable) persistLocked(ctx context.Context, table string) error {
	var entries []*MountEntry
	for _, m := range mt.byPath {
		if m.entry.Table == table {
			entries = append(entries, m.entry)
		}
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	key := mountTableKey
	if table == authTable {
		key = authTableKey
	}
	return putJSONTo(ctx, mt.core.barrier, key, entries)
}

// normalizeMountPath checks a user-supplied mount path and gives it a
// trailing slash.
func normalizeMountPath(p string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return "", logical.BadRequest("mount path must not be empty")
	}
	if !utf8.ValidString(p) {
		return "", logical.BadRequest("mount path %q is not valid UTF-8", p)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", logical.BadRequest("mount path %q is not valid: empty, '.' or '..' segment", p)
		}
	}
	return p + "/", nil
}

// mountConflict reports whether routePath would overlap an existing mount.
func (mt *mountTable) conflictLocked(routePath string) string {
	for existing := range mt.byPath {
		if strings.HasPrefix(routePath, existing) || strings.HasPrefix(existing, routePath) {
			return existing
		}
	}
	return ""
}

// enable adds a mount.
func (mt *mountTable) enable(ctx context.Context, e *MountEntry) error {
	if e.Table == mountsTable {
		for _, reserved := range []string{"sys/", "auth/", "cubbyhole/", "identity/"} {
			if strings.HasPrefix(e.Path, reserved) || reserved == e.Path {
				return logical.BadRequest("cannot mount at %q: the %q prefix is reserved", e.Path, reserved)
			}
		}
	}
	if e.Type == "" {
		return logical.BadRequest("missing required field \"type\"")
	}
	if e.Type == "kv" || e.Type == "kv-v2" || e.Type == "generic" {
		if e.Type == "kv-v2" {
			if e.Options == nil {
				e.Options = map[string]string{}
			}
			e.Options["version"] = "2"
		}
		e.Type = "kv"
		if e.Options == nil || e.Options["version"] == "" {
			if e.Options == nil {
				e.Options = map[string]string{}
			}
			e.Options["version"] = "1"
		}
	}
	e.UUID = newUUID()
	e.Accessor = newAccessor(e)
	mt.mu.Lock()
	defer mt.mu.Unlock()
	if existing := mt.conflictLocked(e.routePath()); existing != "" {
		return logical.Errorf(400, "path is already in use at %s", existing)
	}
	m, err := mt.instantiate(ctx, e)
	if err != nil {
		return err
	}
	mt.byPath[e.routePath()] = m
	if err := mt.persistLocked(ctx, e.Table); err != nil {
		delete(mt.byPath, e.routePath())
		return err
	}
	return nil
}

// disable removes a mount and deletes its data.
func (mt *mountTable) disable(ctx context.Context, routePath string) error {
	mt.mu.Lock()
	m, ok := mt.byPath[routePath]
	if !ok {
		mt.mu.Unlock()
		return nil
	}
	if protectedMounts[routePath] {
		mt.mu.Unlock()
		return logical.BadRequest("cannot unmount %q", routePath)
	}
	mt.mu.Unlock()
	// What the mount issued is revoked through it first; if that fails the
	// mount stays, as its leases still need it.
	if em := mt.core.expiration; em != nil {
		if err := em.revokeByMount(ctx, m.entry.Accessor); err != nil {
			return logical.Errorf(400, "failed to revoke the leases of %s, so it stays mounted: %v", routePath, err)
		}
	}
	mt.mu.Lock()
	if mt.byPath[routePath] != m {
		mt.mu.Unlock()
		return nil
	}
	delete(mt.byPath, routePath)
	err := mt.persistLocked(ctx, m.entry.Table)
	mt.mu.Unlock()
	if err != nil {
		return err
	}
	m.backend.Cleanup(ctx)
	if m.entry.Table == authTable {
		// What the method issued goes with it, wherever it was mounted.
		if ls := mt.core.lockout; ls != nil {
			ls.dropMount(ctx, m.entry.Accessor)
		}
		if err := mt.core.tokens.revokeIssuedBy(ctx, m.entry.Accessor, routePath); err != nil {
			mt.core.logger.Warn("revoking tokens of a disabled auth mount failed", "path", routePath, "error", err)
		}
	}
	return m.view.clear(ctx)
}

// remount moves a mount to a new path, keeping its data.
func (mt *mountTable) remount(ctx context.Context, from, to string) error {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	m, ok := mt.byPath[from]
	if !ok {
		return logical.BadRequest("no mount at %q", from)
	}
	if protectedMounts[from] {
		return logical.BadRequest("cannot remount %q", from)
	}
	if strings.HasPrefix(from, "auth/") != strings.HasPrefix(to, "auth/") {
		return logical.BadRequest("cannot move a mount between the secrets and auth tables")
	}
	delete(mt.byPath, from)
	if existing := mt.conflictLocked(to); existing != "" {
		mt.byPath[from] = m
		return logical.BadRequest("path is already in use at %s", existing)
	}
	m.entry.Path = strings.TrimPrefix(to, "auth/")
	mt.byPath[to] = m
	if err := mt.persistLocked(ctx, m.entry.Table); err != nil {
		delete(mt.byPath, to)
		m.entry.Path = strings.TrimPrefix(from, "auth/")
		mt.byPath[from] = m
		return err
	}
	return nil
}

// tune updates a mount's config and persists it.
func (mt *mountTable) tune(ctx context.Context, routePath string, apply func(*MountEntry) error) error {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	m, ok := mt.byPath[routePath]
	if !ok {
		return logical.BadRequest("no mount at %q", routePath)
	}
	updated := *m.entry
	updated.Options = cloneStringMap(m.entry.Options)
	if err := apply(&updated); err != nil {
		return err
	}
	// Requests in flight keep reading the mount they routed to, so the
	// tuned mount is a new value, not the old one changed in place.
	tuned := &mount{entry: &updated, backend: m.backend, view: m.view, sys: m.sys}
	mt.byPath[routePath] = tuned
	if err := mt.persistLocked(ctx, updated.Table); err != nil {
		mt.byPath[routePath] = m
		return err
	}
	m.sys.entry.Store(&updated)
	return nil
}

func (mt *mountTable) cleanup(ctx context.Context) {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	for _, m := range mt.byPath {
		m.backend.Cleanup(ctx)
	}
}

func cloneStringMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// EnableSecretsEngine mounts a secrets engine (used by dev mode).
func (c *Core) EnableSecretsEngine(ctx context.Context, path, typ string, options map[string]string, description string) error {
	c.stateLock.RLock()
	defer c.stateLock.RUnlock()
	if err := c.checkActive(); err != nil {
		return err
	}
	p, err := normalizeMountPath(path)
	if err != nil {
		return err
	}
	return c.mounts.enable(ctx, &MountEntry{Table: mountsTable, Path: p, Type: typ, Options: options, Description: description})
}
