package core

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/arcasec/arca/internal/logical"
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
	ExpireTime     time.Time         `json:"expire_time"` // zero: never expires
	ExplicitMaxTTL time.Duration     `json:"explicit_max_ttl"`
	Period         time.Duration     `json:"period"`
	Renewable      bool              `json:"renewable"`
	Path           string            `json:"path"`
	Role           string            `json:"role,omitempty"`
	EntityID       string            `json:"entity_id,omitempty"`
	InternalData   map[string]any    `json:"internal_data,omitempty"`
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
	}
}

// tokenStore issues, looks up, renews and revokes tokens. Entries live
// behind the barrier under hashes of their IDs; a cache of live entries
// keeps lookups off storage on the hot path. Entries are never mutated in
// place: a change stores a new *TokenEntry.
type tokenStore struct {
	core *Core
	view storage.Storage

	mu    sync.RWMutex
	cache map[string]*TokenEntry // by token ID

	tidyStop chan struct{}
	tidyDone chan struct{}
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
	return &tokenStore{core: c, view: v, cache: make(map[string]*TokenEntry)}
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
		CreationTime: time.Now().UTC(),
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
	if c.Sealed() {
		return "", logical.ErrSealed
	}
	te := &TokenEntry{
		ID:           id,
		Policies:     []string{"root"},
		DisplayName:  "root",
		Path:         "auth/token/root",
		CreationTime: time.Now().UTC(),
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
	if c.Sealed() {
		return logical.ErrSealed
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
	if err := storage.Apply(ctx, ts.view, ops); err != nil {
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
	} else {
		ts.cache[te.ID] = te
	}
	ts.mu.Unlock()
	return te, nil
}

// lookup returns the live entry for id, or nil when the token is unknown,
// revoked or expired. An expired token is revoked in the background.
func (ts *tokenStore) lookup(ctx context.Context, id string) (*TokenEntry, error) {
	te, err := ts.load(ctx, id)
	if err != nil || te == nil {
		return nil, err
	}
	if te.expired(time.Now()) {
		go ts.revokeTree(context.Background(), te.ID)
		return nil, nil
	}
	if te.NumUses < 0 { // exhausted, revocation pending
		return nil, nil
	}
	return te, nil
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

// replace stores an updated copy of an entry.
func (ts *tokenStore) replace(ctx context.Context, te *TokenEntry) error {
	e := mustJSONEntry(tokenIDPrefix+hashID(te.ID), te)
	if err := ts.view.Put(ctx, e); err != nil {
		return err
	}
	ts.mu.Lock()
	ts.cache[te.ID] = te
	ts.mu.Unlock()
	return nil
}

// use counts one use of a token with a use limit and reports whether that
// was its last, in which case the caller revokes it after the request.
func (ts *tokenStore) use(ctx context.Context, te *TokenEntry) (last bool, err error) {
	if te.NumUses == 0 {
		return false, nil
	}
	ts.mu.Lock()
	cur := ts.cache[te.ID]
	if cur == nil {
		cur = te
	}
	if cur.NumUses <= 0 {
		ts.mu.Unlock()
		return false, logical.ErrPermissionDenied
	}
	next := *cur
	next.NumUses--
	if next.NumUses == 0 {
		next.NumUses = -1 // spent: refused from now on
		last = true
	}
	ts.cache[te.ID] = &next
	ts.mu.Unlock()
	return last, ts.replace(ctx, &next)
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

// revokeOne deletes a single token and its indexes.
func (ts *tokenStore) revokeOne(ctx context.Context, h string) error {
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
	if err := storage.Apply(ctx, ts.view, ops); err != nil {
		return err
	}
	if err := ts.core.destroyCubbyhole(ctx, h); err != nil {
		ts.core.logger.Warn("destroying a revoked token's cubbyhole failed", "accessor", te.Accessor, "error", err)
	}
	ts.mu.Lock()
	delete(ts.cache, te.ID)
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
			orphan := *te
			orphan.Parent = ""
			if err := ts.replace(ctx, &orphan); err != nil {
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

// tidy revokes expired and spent tokens.
func (ts *tokenStore) tidy(ctx context.Context) error {
	now := time.Now()
	return ts.walk(ctx, func(h string, te *TokenEntry) error {
		if te.expired(now) || te.NumUses < 0 {
			return ts.revokeHashTree(ctx, h)
		}
		return nil
	})
}

const tidyInterval = time.Minute

func (ts *tokenStore) startTidy() {
	ts.tidyStop, ts.tidyDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ts.tidyDone)
		t := time.NewTicker(tidyInterval)
		defer t.Stop()
		for {
			select {
			case <-ts.tidyStop:
				return
			case <-t.C:
				if err := ts.tidy(context.Background()); err != nil && !errors.Is(err, logical.ErrSealed) {
					ts.core.logger.Warn("token tidy failed", "error", err)
				}
			}
		}
	}()
}

func (ts *tokenStore) stopTidy() {
	if ts.tidyStop != nil {
		close(ts.tidyStop)
		<-ts.tidyDone
		ts.tidyStop = nil
	}
}

// renew extends a token's lifetime by increment (0: its creation TTL),
// within its maximum.
func (ts *tokenStore) renew(ctx context.Context, te *TokenEntry, increment time.Duration) (*TokenEntry, error) {
	if te.ExpireTime.IsZero() {
		return te, nil // never expires: nothing to renew
	}
	if !te.Renewable {
		return nil, logical.BadRequest("token is not renewable")
	}
	now := time.Now().UTC()
	ttl := increment
	if te.Period > 0 {
		ttl = te.Period
	} else if ttl <= 0 {
		ttl = te.CreationTTL
	}
	expire := now.Add(ttl)
	if max := ts.maxExpire(te); !max.IsZero() && expire.After(max) {
		expire = max
	}
	next := *te
	next.ExpireTime = expire
	if err := ts.replace(ctx, &next); err != nil {
		return nil, err
	}
	return &next, nil
}

// maxExpire is the latest a token may live: its explicit max TTL, and for
// non-periodic tokens the system max TTL, counted from creation.
func (ts *tokenStore) maxExpire(te *TokenEntry) time.Time {
	var max time.Time
	if te.Period == 0 {
		max = te.CreationTime.Add(ts.core.tokenMountSystemView().MaxLeaseTTL())
	}
	if te.ExplicitMaxTTL > 0 {
		em := te.CreationTime.Add(te.ExplicitMaxTTL)
		if max.IsZero() || em.Before(max) {
			max = em
		}
	}
	return max
}

func (c *Core) tokenMountSystemView() logical.SystemView {
	if c.mounts != nil {
		if m := c.mounts.get("auth/token/"); m != nil {
			return m.sys
		}
	}
	return c
}
