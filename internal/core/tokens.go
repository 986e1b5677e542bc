package core

import (
	"context"
	"crypto/subtle"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/arcasec/arca/internal/logical"
	fw "github.com/arcasec/arca/internal/logical/framework"
	"github.com/arcasec/arca/internal/storage"
)

// TokenEntry is a service token as the token store keeps it.
type TokenEntry struct {
	ID             string            `json:"id"`
	Accessor       string            `json:"accessor"`
	Parent         string            `json:"parent,omitempty"` // parent token ID; "" for an orphan
	Policies       []string          `json:"policies"`         // sorted
	Meta           map[string]string `json:"meta,omitempty"`
	DisplayName    string            `json:"display_name"`
	NumUses        int               `json:"num_uses"`
	CreationTime   time.Time         `json:"creation_time"`
	CreationTTL    time.Duration     `json:"creation_ttl"`
	ExpireTime     time.Time         `json:"expire_time"`           // zero: never expires
	LastRenewal    time.Time         `json:"last_renewal,omitzero"` // zero: never renewed
	ExplicitMaxTTL time.Duration     `json:"explicit_max_ttl"`
	Period         time.Duration     `json:"period"`
	Renewable      bool              `json:"renewable"`
	Path           string            `json:"path"`
	Role           string            `json:"role,omitempty"`
	EntityID       string            `json:"entity_id,omitempty"`
	InternalData   map[string]any    `json:"internal_data,omitempty"`
	// BoundCIDRs, when set, are the only addresses the token may be used
	// from (a login's token_bound_cidrs); every request checks them.
	BoundCIDRs []string `json:"bound_cidrs,omitempty"`
	// MountAccessor is the accessor of the auth mount that issued a login
	// token; renewals ask that mount. Empty for the token store's own.
	MountAccessor string `json:"mount_accessor,omitempty"`
	// LoginPolicies are the policies the auth method granted at login, as
	// it gave them: a renewal hands them back to it to compare, whatever
	// the core added to Policies ("default", identity policies).
	LoginPolicies []string `json:"login_policies,omitempty"`
}

// allowedFrom reports whether the token may be used from remoteAddr.
func (te *TokenEntry) allowedFrom(remoteAddr string) bool {
	return len(te.BoundCIDRs) == 0 || fw.RemoteAddrAllowed(remoteAddr, te.BoundCIDRs)
}

func (te *TokenEntry) expired(now time.Time) bool {
	return !te.ExpireTime.IsZero() && !now.Before(te.ExpireTime)
}

func (te *TokenEntry) isRoot() bool { return slices.Contains(te.Policies, "root") }

// ttlLeft is the remaining lifetime, 0 for a token that never expires.
func (te *TokenEntry) ttlLeft(now time.Time) time.Duration {
	if te.ExpireTime.IsZero() {
		return 0
	}
	if d := te.ExpireTime.Sub(now); d > 0 {
		return d.Round(time.Second)
	}
	return 0
}

// auth describes the token as the Auth block of a response.
func (te *TokenEntry) auth(now time.Time) *logical.Auth {
	return &logical.Auth{
		ClientToken:    te.ID,
		Accessor:       te.Accessor,
		DisplayName:    te.DisplayName,
		Policies:       te.Policies,
		TokenPolicies:  te.Policies,
		Metadata:       te.Meta,
		TTL:            te.ttlLeft(now),
		ExplicitMaxTTL: te.ExplicitMaxTTL,
		Period:         te.Period,
		Renewable:      te.Renewable && !te.ExpireTime.IsZero(),
		NumUses:        te.NumUses,
		EntityID:       te.EntityID,
		TokenType:      "service",
		Orphan:         te.Parent == "",
		BoundCIDRs:     te.BoundCIDRs,
	}
}

// tokenStore issues, looks up, renews and revokes tokens. Entries live
// behind the barrier under hashes of their IDs; a cache of live entries
// keeps lookups off storage on the hot path. Entries are never mutated in
// place: a change stores a new *TokenEntry.
type tokenStore struct {
	core *Core
	view storage.Storage

	mu        sync.RWMutex
	cache     map[string]*TokenEntry // by token ID
	evictions uint64                 // revocations so far, to keep stale reads out of the cache

	// entryLocks serialise every read-modify-write of a stored entry (a
	// use, a renewal, orphaning, revocation), so no write is based on a
	// stale copy and a revoked entry is never written back. An entry's
	// lock is chosen by its hash: writes to different tokens rarely wait
	// for each other.
	entryLocks [256]sync.Mutex

	// now is the clock token lifetimes are measured against.
	now func() time.Time
}

// Storage layout inside the token store's view:
//
//	id/<sha256(id)>                   the entry
//	accessor/<sha256(accessor)>       {"id": token ID}
//	parent/<sha256(parent)>/<sha256(child)>  an index of children
//	roles/<name>                      token roles
const (
	tokenIDPrefix       = "id/"
	tokenAccessorPrefix = "accessor/"
	tokenParentPrefix   = "parent/"
	tokenRolePrefix     = "roles/"
)

const tokenIDPrefixStr = "hvs."

func newTokenStore(c *Core, v storage.Storage) *tokenStore {
	return &tokenStore{core: c, view: v, cache: make(map[string]*TokenEntry), now: c.Now}
}

// countTokens sets the core's token gauge from storage, once on unseal;
// create and revoke keep it current after that.
func (ts *tokenStore) countTokens(ctx context.Context) error {
	hashes, err := ts.view.List(ctx, tokenIDPrefix)
	if err != nil {
		return err
	}
	ts.core.tokenCount.Store(int64(len(hashes)))
	return nil
}

func newTokenID() string { return tokenIDPrefixStr + randomBase62(24) }

// createRoot issues a root token.
func (ts *tokenStore) createRoot(ctx context.Context) (string, error) {
	te := &TokenEntry{
		Policies:     []string{"root"},
		DisplayName:  "root",
		Path:         "auth/token/root",
		CreationTime: ts.now().UTC(),
	}
	if err := ts.create(ctx, te); err != nil {
		return "", err
	}
	return te.ID, nil
}

// CreateRootToken issues a root token with a chosen ID (dev mode).
func (c *Core) CreateRootToken(ctx context.Context, id string) (string, error) {
	c.stateLock.RLock()
	defer c.stateLock.RUnlock()
	if err := c.checkActive(); err != nil {
		return "", err
	}
	te := &TokenEntry{
		ID:           id,
		Policies:     []string{"root"},
		DisplayName:  "root",
		Path:         "auth/token/root",
		CreationTime: c.tokens.now().UTC(),
	}
	if err := c.tokens.create(ctx, te); err != nil {
		return "", err
	}
	return te.ID, nil
}

// RevokeToken revokes a token and its children.
func (c *Core) RevokeToken(ctx context.Context, id string) error {
	c.stateLock.RLock()
	defer c.stateLock.RUnlock()
	if err := c.checkActive(); err != nil {
		return err
	}
	return c.tokens.revokeTree(ctx, id)
}

// create stores a new entry, filling in its ID and accessor when empty.
func (ts *tokenStore) create(ctx context.Context, te *TokenEntry) error {
	if te.ID == "" {
		te.ID = newTokenID()
	}
	te.Accessor = randomBase62(24)
	sort.Strings(te.Policies)
	te.Policies = slices.Compact(te.Policies)
	if existing, err := ts.load(ctx, te.ID); err != nil {
		return err
	} else if existing != nil {
		return logical.BadRequest("a token with that ID already exists")
	}
	ops := []storage.Op{
		{Kind: storage.OpPut, Entry: mustJSONEntry(tokenIDPrefix+hashID(te.ID), te)},
		{Kind: storage.OpPut, Entry: mustJSONEntry(tokenAccessorPrefix+hashID(te.Accessor), accessorRecord{ID: te.ID})},
	}
	if te.Parent != "" {
		ops = append(ops, storage.Op{Kind: storage.OpPut, Entry: &storage.Entry{Key: tokenParentPrefix + hashID(te.Parent) + "/" + hashID(te.ID), Value: []byte("{}")}})
	}
	if err := ts.applyTokenOps(ctx, ops, hashID(te.ID), time.Time{}, te.ExpireTime); err != nil {
		return fmt.Errorf("storing the token: %w", err)
	}
	ts.mu.Lock()
	ts.cache[te.ID] = te
	ts.mu.Unlock()
	ts.core.tokenCount.Add(1)
	return nil
}

type accessorRecord struct {
	ID string `json:"id"`
}

// load returns the stored entry for id, expired or not, or nil.
func (ts *tokenStore) load(ctx context.Context, id string) (*TokenEntry, error) {
	if id == "" {
		return nil, nil
	}
	ts.mu.RLock()
	te, ok := ts.cache[id]
	ts.mu.RUnlock()
	if ok {
		return te, nil
	}
	return ts.loadByHash(ctx, hashID(id))
}

func (ts *tokenStore) loadByHash(ctx context.Context, h string) (*TokenEntry, error) {
	ts.mu.RLock()
	evictions := ts.evictions
	ts.mu.RUnlock()
	te := new(TokenEntry)
	found, err := getJSONFrom(ctx, ts.view, tokenIDPrefix+h, te)
	if err != nil {
		return nil, fmt.Errorf("reading a token: %w", err)
	}
	if !found {
		return nil, nil
	}
	ts.mu.Lock()
	if cached, ok := ts.cache[te.ID]; ok {
		te = cached
	} else if ts.evictions == evictions {
		// Cache what was read only if no token was revoked meanwhile: the
		// read may predate that revocation, and a cached copy would
		// outlive it.
		ts.cache[te.ID] = te
	}
	ts.mu.Unlock()
	return te, nil
}

// entryLock returns the lock of the entry whose ID hashes to h.
func (ts *tokenStore) entryLock(h string) *sync.Mutex {
	b, _ := strconv.ParseUint(h[:2], 16, 8) // h is hex: its first byte picks the lock
	return &ts.entryLocks[b]
}

// maxTokenDepth bounds a chain of tokens, and so the walk up a token's
// parents on each request. Real chains are short; no token is created
// deeper, and the walk stops there in case stored parents ever loop.
const maxTokenDepth = 256

// lookup returns the live entry for id, or nil when the token is unknown,
// revoked, spent or expired, or when any token above it is. A token found
// expired, or cut off from a parent that is gone, is revoked with its
// children before lookup returns, cubbyholes included.
func (ts *tokenStore) lookup(ctx context.Context, id string) (*TokenEntry, error) {
	return ts.lookupLive(ctx, id, false)
}

// lastUseKey marks the context of a request that spent the last use of a
// token; its value is that token's ID.
type lastUseKey struct{}

// lookupInFlight is lookup for the token of the request being served: it
// also returns the token whose last use this very request spent (as ctx
// records), so the request still completes; the core revokes the token
// after it. Any other spent token is refused as lookup refuses it.
func (ts *tokenStore) lookupInFlight(ctx context.Context, id string) (*TokenEntry, error) {
	spent, _ := ctx.Value(lastUseKey{}).(string)
	return ts.lookupLive(ctx, id, spent != "" && subtle.ConstantTimeCompare([]byte(spent), []byte(id)) == 1)
}

func (ts *tokenStore) lookupLive(ctx context.Context, id string, allowSpent bool) (*TokenEntry, error) {
	te, err := ts.load(ctx, id)
	if err != nil || te == nil {
		return nil, err
	}
	if te.NumUses < 0 && !allowSpent {
		return nil, nil // spent: the request that spent it revokes it
	}
	ok, stale, err := ts.vet(ctx, te, ts.now())
	if err != nil {
		return nil, err
	}
	if stale != "" {
		if err := ts.revokeTree(context.WithoutCancel(ctx), stale); err != nil {
			ts.core.logger.Warn("revoking an expired token failed", "error", err)
		}
	}
	if !ok {
		return nil, nil
	}
	return te, nil
}

// vet walks from te up through its parents, all of which must be alive for
// te to be used: none expired, spent or revoked. Parents come from the
// cache, so on the hot path each step is a map lookup. When te or a token
// above it has expired, or a parent is gone (a revocation that stopped
// part-way), stale is the ID of the token whose tree should be revoked.
func (ts *tokenStore) vet(ctx context.Context, te *TokenEntry, now time.Time) (ok bool, stale string, err error) {
	cur := te
	for depth := 0; ; depth++ {
		if cur.expired(now) {
			return false, cur.ID, nil
		}
		if cur != te && cur.NumUses < 0 {
			return false, "", nil
		}
		if cur.Parent == "" {
			return true, "", nil
		}
		if depth == maxTokenDepth {
			ts.core.logger.Warn("refusing a token whose chain of parents is too long", "accessor", te.Accessor)
			return false, "", nil
		}
		parent, err := ts.load(ctx, cur.Parent)
		if err != nil {
			return false, "", err
		}
		if parent == nil {
			return false, cur.ID, nil
		}
		cur = parent
	}
}

// depth counts the tokens from te up to the top of its chain, te included.
func (ts *tokenStore) depth(ctx context.Context, te *TokenEntry) (int, error) {
	n := 1
	for ; te.Parent != "" && n <= maxTokenDepth; n++ {
		parent, err := ts.load(ctx, te.Parent)
		if err != nil || parent == nil {
			return n, err
		}
		te = parent
	}
	return n, nil
}

func (ts *tokenStore) lookupAccessor(ctx context.Context, accessor string) (*TokenEntry, error) {
	if accessor == "" {
		return nil, nil
	}
	var rec accessorRecord
	found, err := getJSONFrom(ctx, ts.view, tokenAccessorPrefix+hashID(accessor), &rec)
	if err != nil || !found {
		return nil, err
	}
	return ts.lookup(ctx, rec.ID)
}

// update changes the stored entry for id: change edits a copy, which is
// then stored and cached. The read and the write happen under the entry's
// lock, so concurrent updates never undo each other. It returns nil,
// without calling change, when the token no longer exists.
func (ts *tokenStore) update(ctx context.Context, id string, change func(te *TokenEntry) error) (*TokenEntry, error) {
	lock := ts.entryLock(hashID(id))
	lock.Lock()
	defer lock.Unlock()
	cur, err := ts.load(ctx, id)
	if err != nil || cur == nil {
		return nil, err
	}
	next := *cur
	if err := change(&next); err != nil {
		return nil, err
	}
	put := storage.Op{Kind: storage.OpPut, Entry: mustJSONEntry(tokenIDPrefix+hashID(next.ID), &next)}
	// A new expiry moves the token's key in the expiration manager's time
	// index, in the same write.
	if err := ts.applyTokenOps(ctx, []storage.Op{put}, hashID(next.ID), cur.ExpireTime, next.ExpireTime); err != nil {
		return nil, fmt.Errorf("storing the token: %w", err)
	}
	ts.mu.Lock()
	ts.cache[next.ID] = &next
	ts.mu.Unlock()
	return &next, nil
}

// use consumes one use of a limited-use token, before the request it
// authorises runs. The count is read and decremented in one update and
// stored in one write, so concurrent requests can never spend the same use
// twice: of n requests racing for a token's last use exactly one wins.
// last reports that this was the final use; the caller revokes the token
// once its request is done.
func (ts *tokenStore) use(ctx context.Context, id string) (last bool, err error) {
	te, err := ts.update(ctx, id, func(te *TokenEntry) error {
		if te.NumUses < 0 {
			return logical.ErrPermissionDenied
		}
		te.NumUses--
		if te.NumUses == 0 {
			te.NumUses = -1 // spent: refused from now on
			last = true
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	if te == nil {
		return false, logical.ErrPermissionDenied // revoked meanwhile
	}
	return last, nil
}

// revokeTree revokes a token and every token below it.
func (ts *tokenStore) revokeTree(ctx context.Context, id string) error {
	return ts.revokeHashTree(ctx, hashID(id))
}

func (ts *tokenStore) revokeHashTree(ctx context.Context, h string) error {
	children, err := ts.view.List(ctx, tokenParentPrefix+h+"/")
	if err != nil {
		return err
	}
	for _, child := range children {
		if err := ts.revokeHashTree(ctx, strings.TrimSuffix(child, "/")); err != nil {
			return err
		}
	}
	return ts.revokeOne(ctx, h)
}

// revokeOne deletes a single token, its indexes and its cubbyhole. The
// cubbyhole goes first: if destroying it fails, the token is still there
// and the revocation can be retried.
func (ts *tokenStore) revokeOne(ctx context.Context, h string) error {
	if err := ts.core.destroyCubbyhole(ctx, h); err != nil {
		return fmt.Errorf("destroying the token's cubbyhole: %w", err)
	}
	if em := ts.core.expiration; em != nil {
		em.revokeByToken(ctx, h)
	}
	lock := ts.entryLock(h)
	lock.Lock()
	defer lock.Unlock()
	te := new(TokenEntry)
	found, err := getJSONFrom(ctx, ts.view, tokenIDPrefix+h, te)
	if err != nil {
		return err
	}
	if !found {
		return nil
	}
	ops := []storage.Op{
		{Kind: storage.OpDelete, Entry: &storage.Entry{Key: tokenIDPrefix + h}},
		{Kind: storage.OpDelete, Entry: &storage.Entry{Key: tokenAccessorPrefix + hashID(te.Accessor)}},
	}
	if te.Parent != "" {
		ops = append(ops, storage.Op{Kind: storage.OpDelete, Entry: &storage.Entry{Key: tokenParentPrefix + hashID(te.Parent) + "/" + h}})
	}
	if err := ts.applyTokenOps(ctx, ops, h, te.ExpireTime, time.Time{}); err != nil {
		return err
	}
	ts.mu.Lock()
	delete(ts.cache, te.ID)
	ts.evictions++
	ts.mu.Unlock()
	ts.core.tokenCount.Add(-1)
	return nil
}

// revokeOrphan revokes one token and makes its children orphans.
func (ts *tokenStore) revokeOrphan(ctx context.Context, id string) error {
	h := hashID(id)
	children, err := ts.view.List(ctx, tokenParentPrefix+h+"/")
	if err != nil {
		return err
	}
	for _, child := range children {
		ch := strings.TrimSuffix(child, "/")
		te, err := ts.loadByHash(ctx, ch)
		if err != nil {
			return err
		}
		if te != nil {
			if _, err := ts.update(ctx, te.ID, func(te *TokenEntry) error {
				te.Parent = ""
				return nil
			}); err != nil {
				return err
			}
		}
		if err := ts.view.Delete(ctx, tokenParentPrefix+h+"/"+ch); err != nil {
			return err
		}
	}
	return ts.revokeOne(ctx, h)
}

// revokeByPathPrefix revokes every token issued under a path prefix (used
// when an auth mount is disabled).
func (ts *tokenStore) revokeByPathPrefix(ctx context.Context, prefix string) error {
	if !strings.HasPrefix(prefix, "auth/") {
		return nil
	}
	return ts.walk(ctx, func(h string, te *TokenEntry) error {
		if strings.HasPrefix(te.Path, prefix) {
			return ts.revokeHashTree(ctx, h)
		}
		return nil
	})
}

// revokeIssuedBy revokes every token an auth mount issued at login, found
// by the mount's accessor (which survives a remount) or, for tokens from
// before accessors were recorded, by path.
func (ts *tokenStore) revokeIssuedBy(ctx context.Context, accessor, prefix string) error {
	return ts.walk(ctx, func(h string, te *TokenEntry) error {
		if (accessor != "" && te.MountAccessor == accessor) || strings.HasPrefix(te.Path, prefix) {
			return ts.revokeHashTree(ctx, h)
		}
		return nil
	})
}

// walk visits every stored token.
func (ts *tokenStore) walk(ctx context.Context, fn func(h string, te *TokenEntry) error) error {
	hashes, err := ts.view.List(ctx, tokenIDPrefix)
	if err != nil {
		return err
	}
	for _, h := range hashes {
		te := new(TokenEntry)
		found, err := getJSONFrom(ctx, ts.view, tokenIDPrefix+h, te)
		if err != nil {
			return err
		}
		if found {
			if err := fn(h, te); err != nil {
				return err
			}
		}
	}
	return nil
}

// tidy is auth/token/tidy: it reads every token, so nothing runs it on a
// schedule (the expiration manager revokes expired tokens through its time
// index). It revokes spent and expired tokens and those whose parent is
// gone, and gives an expiring token that has no key in the time index one.
func (ts *tokenStore) tidy(ctx context.Context) error {
	now := ts.now()
	return ts.walk(ctx, func(h string, te *TokenEntry) error {
		if te.NumUses < 0 {
			return ts.revokeHashTree(ctx, h)
		}
		if err := ts.indexTokenExpiry(ctx, h, te); err != nil {
			return err
		}
		_, stale, err := ts.vet(ctx, te, now)
		if err != nil || stale == "" {
			return err
		}
		return ts.revokeTree(ctx, stale)
	})
}

// renew extends a token's lifetime by increment (0: its creation TTL; a
// periodic token always gets its period), never past its maximum. A login
// token is renewed only if the auth method that issued it agrees (see
// authRenewTerms), on the terms it gives now and within its mount's TTLs.
func (ts *tokenStore) renew(ctx context.Context, te *TokenEntry, increment time.Duration) (*TokenEntry, error) {
	if te.ExpireTime.IsZero() {
		return te, nil // never expires: nothing to renew
	}
	if !te.Renewable {
		return nil, logical.BadRequest("token is not renewable")
	}
	var sys logical.LeaseClock = ts.core.tokenMountSystemView()
	defaultTTL, maxTTL, period := te.CreationTTL, time.Duration(0), te.Period
	if te.MountAccessor != "" {
		m, terms, err := ts.core.authRenewTerms(ctx, te)
		if err != nil {
			return nil, err
		}
		// The method's terms as they are now; a TTL of 0 is the mount's
		// default, as at login.
		sys, period, defaultTTL, maxTTL = m.sys, terms.Period, terms.TTL, terms.MaxTTL
	}
	renewed, err := ts.update(ctx, te.ID, func(te *TokenEntry) error {
		now := ts.now().UTC()
		if period > 0 {
			increment = 0 // a periodic token always gets its period
		}
		ttl, _ := logical.CalculateTTL(sys, logical.LeaseTerms{
			Requested: increment, Default: defaultTTL, Max: maxTTL, Period: period,
			ExplicitMax: te.ExplicitMaxTTL, Issued: te.CreationTime, Now: now,
		})
		te.Period = period
		te.ExpireTime = now.Add(ttl)
		te.LastRenewal = now
		return nil
	})
	if err != nil {
		return nil, err
	}
	if renewed == nil {
		return nil, logical.BadRequest("token was revoked")
	}
	return renewed, nil
}

// authRenewTerms asks the auth mount that issued a login token whether it
// may be renewed (logical.AuthRenewOperation), and returns the mount and
// the terms the method grants. The method refuses with an error: its user
// or role is gone, or the policies it would grant have changed.
func (c *Core) authRenewTerms(ctx context.Context, te *TokenEntry) (*mount, *logical.Auth, error) {
	m := c.mountByAccessor(te.MountAccessor)
	if m == nil {
		return nil, nil, logical.BadRequest("the auth method that issued this token is no longer mounted, so the token cannot be renewed")
	}
	auth := te.auth(c.tokens.now())
	auth.InternalData = te.InternalData
	auth.TTL = te.CreationTTL
	auth.Period = te.Period
	auth.TokenPolicies = slices.Clone(te.LoginPolicies)
	resp, err := m.backend.HandleRequest(ctx, &logical.Request{
		ID:                  newUUID(),
		Operation:           logical.AuthRenewOperation,
		Path:                "login",
		Storage:             m.view,
		MountPoint:          m.entry.routePath(),
		MountType:           m.entry.Type,
		Data:                map[string]any{},
		Auth:                auth,
		ClientTokenAccessor: te.Accessor,
		EntityID:            te.EntityID,
	})
	if err != nil {
		if logical.StatusOf(err) >= 500 {
			c.logger.Warn("an auth method failed to renew a token", "mount", m.entry.routePath(), "accessor", te.Accessor, "error", err)
		}
		return nil, nil, err
	}
	if resp == nil || resp.Auth == nil {
		return nil, nil, logical.BadRequest("the auth method that issued this token no longer vouches for its login, so the token cannot be renewed")
	}
	return m, resp.Auth, nil
}

func (c *Core) tokenMountSystemView() logical.SystemView {
	if c.mounts != nil {
		if m := c.mounts.get("auth/token/"); m != nil {
			return m.sys
		}
	}
	return c
}
