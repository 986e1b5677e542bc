package core

import (
	"context"
	"encoding/hex"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/storage"
)

// Login lockout (Vault's user_lockout): after lockout_threshold failed
// logins in a row for one name on one auth mount, with no more than
// lockout_counter_reset between them, the name is locked out of that mount
// for lockout_duration, whatever password it then gives. Failure counts
// live in memory; a lock is stored behind the barrier, so a restart keeps
// it, and sys/locked-users lists and lifts locks.

// Defaults, as Vault's.
const (
	DefaultLockoutThreshold    = 5
	DefaultLockoutDuration     = 15 * time.Minute
	DefaultLockoutCounterReset = 15 * time.Minute
)

// lockoutTypes are the auth method types lockout applies to.
var lockoutTypes = []string{"userpass", "approle", "ldap"}

// UserLockoutConfig is one user_lockout stanza of the server configuration
// or a mount's user_lockout_config tune. A nil field is not set and falls
// back: a mount's tune to the stanza for its type, that to the "all"
// stanza, that to the defaults.
type UserLockoutConfig struct {
	Threshold    *int           `json:"lockout_threshold,omitempty"`
	Duration     *time.Duration `json:"lockout_duration,omitempty"`
	CounterReset *time.Duration `json:"lockout_counter_reset,omitempty"`
	Disable      *bool          `json:"lockout_disable,omitempty"`
}

// lockoutPolicy is the lockout in force on one mount.
type lockoutPolicy struct {
	threshold    int
	duration     time.Duration
	counterReset time.Duration
	disabled     bool
}

func (p *lockoutPolicy) apply(c *UserLockoutConfig) {
	if c == nil {
		return
	}
	if c.Threshold != nil && *c.Threshold > 0 {
		p.threshold = *c.Threshold
	}
	if c.Duration != nil && *c.Duration > 0 {
		p.duration = *c.Duration
	}
	if c.CounterReset != nil && *c.CounterReset > 0 {
		p.counterReset = *c.CounterReset
	}
	if c.Disable != nil {
		p.disabled = *c.Disable
	}
}

// lockoutPolicyFor is the lockout of a mount: the defaults, the server's
// "all" stanza, its stanza for the mount's type, the mount's tune.
func (c *Core) lockoutPolicyFor(e *MountEntry) lockoutPolicy {
	p := lockoutPolicy{threshold: DefaultLockoutThreshold, duration: DefaultLockoutDuration, counterReset: DefaultLockoutCounterReset}
	if e.Table != authTable || !slices.Contains(lockoutTypes, e.Type) {
		p.disabled = true
		return p
	}
	if all, ok := c.conf.UserLockout["all"]; ok {
		p.apply(&all)
	}
	if own, ok := c.conf.UserLockout[e.Type]; ok {
		p.apply(&own)
	}
	p.apply(e.Config.UserLockout)
	return p
}

// ValidateUserLockout checks the server's user_lockout stanzas.
func ValidateUserLockout(conf map[string]UserLockoutConfig) error {
	for typ, c := range conf {
		if typ != "all" && !slices.Contains(lockoutTypes, typ) {
			return logical.BadRequest("user_lockout %q: lockout applies to all, userpass, approle or ldap", typ)
		}
		if err := c.validate(); err != nil {
			return logical.BadRequest("user_lockout %q: %v", typ, err)
		}
	}
	return nil
}

func (c *UserLockoutConfig) validate() error {
	switch {
	case c.Threshold != nil && *c.Threshold < 0:
		return logical.BadRequest("lockout_threshold must not be negative")
	case c.Duration != nil && *c.Duration < 0:
		return logical.BadRequest("lockout_duration must not be negative")
	case c.CounterReset != nil && *c.CounterReset < 0:
		return logical.BadRequest("lockout_counter_reset must not be negative")
	}
	return nil
}

// lockKey names a login on a mount.
type lockKey struct{ accessor, name string }

type failedLogins struct {
	count int
	last  time.Time
}

// lockedRecord is a stored lock.
type lockedRecord struct {
	Name     string    `json:"name"`
	LockedAt time.Time `json:"locked_at"`
}

// maxFailedEntries bounds the failure counts kept in memory for one mount;
// past it, the stale ones go first, then half of the rest, fewest failures
// and oldest first. The bound is per mount so that a flood of cheap failed
// logins on one mount (AppRole's cost no bcrypt) cannot push another
// mount's counts out; and the lowest counts go first so that a flood of
// single failures cannot clear the count of a name being guessed at.
const maxFailedEntries = 100000

// lockoutStore keeps failure counts and locks for every mount.
type lockoutStore struct {
	core *Core
	view storage.Storage // <accessor>/<hex(name)> -> lockedRecord

	mu        sync.Mutex
	failed    map[lockKey]*failedLogins
	perMount  map[string]int // entries of failed by mount accessor
	maxFailed int            // per mount; maxFailedEntries but in tests
	locked    map[lockKey]time.Time
}

const lockedUsersPrefix = "sys/locked-users/"

func newLockoutStore(c *Core, v storage.Storage) *lockoutStore {
	return &lockoutStore{core: c, view: v, failed: map[lockKey]*failedLogins{}, perMount: map[string]int{},
		maxFailed: maxFailedEntries, locked: map[lockKey]time.Time{}}
}

// load reads the stored locks.
func (ls *lockoutStore) load(ctx context.Context) error {
	accessors, err := ls.view.List(ctx, "")
	if err != nil {
		return err
	}
	for _, acc := range accessors {
		keys, err := ls.view.List(ctx, acc)
		if err != nil {
			return err
		}
		for _, k := range keys {
			var rec lockedRecord
			if _, err := getJSONFrom(ctx, ls.view, acc+k, &rec); err != nil {
				return err
			}
			ls.locked[lockKey{strings.TrimSuffix(acc, "/"), rec.Name}] = rec.LockedAt
		}
	}
	return nil
}

func lockStorageKey(k lockKey) string { return k.accessor + "/" + hex.EncodeToString([]byte(k.name)) }

// isLocked reports whether k is locked now; a lock that has run its
// course is lifted.
func (ls *lockoutStore) isLocked(ctx context.Context, k lockKey, p lockoutPolicy) bool {
	now := ls.core.Now()
	ls.mu.Lock()
	at, ok := ls.locked[k]
	if ok && now.Before(at.Add(p.duration)) {
		ls.mu.Unlock()
		return true
	}
	if ok {
		delete(ls.locked, k)
	}
	ls.mu.Unlock()
	if ok {
		ls.forget(ctx, k)
	}
	return false
}

func (ls *lockoutStore) forget(ctx context.Context, k lockKey) {
	if err := ls.view.Delete(context.WithoutCancel(ctx), lockStorageKey(k)); err != nil {
		ls.core.logger.Warn("removing a lifted login lock failed", "mount_accessor", k.accessor, "error", err)
	}
}

// fail counts a failed login and locks k when the count reaches the
// threshold.
func (ls *lockoutStore) fail(ctx context.Context, k lockKey, p lockoutPolicy) {
	now := ls.core.Now()
	ls.mu.Lock()
	f := ls.failed[k]
	if f == nil || now.Sub(f.last) > p.counterReset {
		if f == nil && ls.perMount[k.accessor] >= ls.maxFailed {
			ls.evictLocked(k.accessor, now, p.counterReset)
		}
		if f == nil {
			ls.perMount[k.accessor]++
		}
		f = &failedLogins{}
		ls.failed[k] = f
	}
	f.count++
	f.last = now
	lock := f.count >= p.threshold
	if lock {
		ls.dropFailedLocked(k)
		ls.locked[k] = now
	}
	held := len(ls.locked)
	ls.mu.Unlock()
	if !lock {
		return
	}
	if held > sweepAfter && held%sweepAfter == 1 {
		ls.sweep(ctx)
	}
	rec := lockedRecord{Name: k.name, LockedAt: now}
	if err := putJSONTo(context.WithoutCancel(ctx), ls.view, lockStorageKey(k), rec); err != nil {
		ls.core.logger.Warn("storing a login lock failed; it holds until a restart", "mount_accessor", k.accessor, "error", err)
	}
}

// dropFailedLocked forgets k's failure count. ls.mu is held.
func (ls *lockoutStore) dropFailedLocked(k lockKey) {
	if _, ok := ls.failed[k]; !ok {
		return
	}
	delete(ls.failed, k)
	if ls.perMount[k.accessor]--; ls.perMount[k.accessor] <= 0 {
		delete(ls.perMount, k.accessor)
	}
}

// evictLocked drops the mount's failure counts older than reset, then, if
// it is still full, half of them: the fewest failures first, and among
// equals the oldest. ls.mu is held.
func (ls *lockoutStore) evictLocked(accessor string, now time.Time, reset time.Duration) {
	type aged struct {
		k     lockKey
		count int
		t     time.Time
	}
	var all []aged
	for k, f := range ls.failed {
		if k.accessor != accessor {
			continue
		}
		if now.Sub(f.last) > reset {
			ls.dropFailedLocked(k)
			continue
		}
		all = append(all, aged{k, f.count, f.last})
	}
	if len(all) < ls.maxFailed {
		return
	}
	slices.SortFunc(all, func(a, b aged) int {
		if a.count != b.count {
			return a.count - b.count
		}
		return a.t.Compare(b.t)
	})
	for _, a := range all[:len(all)/2] {
		ls.dropFailedLocked(a.k)
	}
}

func (ls *lockoutStore) succeed(k lockKey) {
	ls.mu.Lock()
	ls.dropFailedLocked(k)
	ls.mu.Unlock()
}

// unlock lifts a lock and clears the failure count; it is not an error
// when k is not locked.
func (ls *lockoutStore) unlock(ctx context.Context, k lockKey) error {
	ls.mu.Lock()
	delete(ls.locked, k)
	ls.dropFailedLocked(k)
	ls.mu.Unlock()
	return ls.view.Delete(ctx, lockStorageKey(k))
}

// dropMount forgets every lock and count of a disabled mount.
func (ls *lockoutStore) dropMount(ctx context.Context, accessor string) {
	ls.mu.Lock()
	for k := range ls.locked {
		if k.accessor == accessor {
			delete(ls.locked, k)
		}
	}
	for k := range ls.failed {
		if k.accessor == accessor {
			ls.dropFailedLocked(k)
		}
	}
	ls.mu.Unlock()
	keys, err := ls.view.List(ctx, accessor+"/")
	if err == nil {
		for _, key := range keys {
			err = ls.view.Delete(ctx, accessor+"/"+key)
		}
	}
	if err != nil {
		ls.core.logger.Warn("removing the login locks of a disabled mount failed", "mount_accessor", accessor, "error", err)
	}
}

// lockedNames returns the names locked now on each mount (every mount when
// accessor is ""), sorted. Locks that have run their course, or whose
// mount is gone, are removed on the way.
func (ls *lockoutStore) lockedNames(ctx context.Context, accessor string) map[string][]string {
	now := ls.core.Now()
	ls.mu.Lock()
	locked := make(map[lockKey]time.Time, len(ls.locked))
	for k, at := range ls.locked {
		if accessor == "" || k.accessor == accessor {
			locked[k] = at
		}
	}
	ls.mu.Unlock()
	out := map[string][]string{}
	for k, at := range locked {
		if ls.expired(k, at, now) {
			ls.lift(ctx, k, at)
			continue
		}
		out[k.accessor] = append(out[k.accessor], k.name)
	}
	for _, names := range out {
		slices.Sort(names)
	}
	return out
}

// expired reports whether the lock on k, taken at at, no longer holds: it
// has run its course, lockout is off, or the mount is gone.
func (ls *lockoutStore) expired(k lockKey, at, now time.Time) bool {
	m := ls.core.mountByAccessor(k.accessor)
	if m == nil {
		return true
	}
	p := ls.core.lockoutPolicyFor(m.entry)
	return p.disabled || !now.Before(at.Add(p.duration))
}

// lift removes the lock on k if it is still the one taken at at.
func (ls *lockoutStore) lift(ctx context.Context, k lockKey, at time.Time) {
	ls.mu.Lock()
	cur, ok := ls.locked[k]
	if ok && cur.Equal(at) {
		delete(ls.locked, k)
	}
	ls.mu.Unlock()
	if ok && cur.Equal(at) {
		ls.forget(ctx, k)
	}
}

// sweepAfter is how many locks may be held before a new one sweeps out
// those that have run their course.
const sweepAfter = 1000

// sweep lifts every lock that no longer holds.
func (ls *lockoutStore) sweep(ctx context.Context) {
	now := ls.core.Now()
	ls.mu.Lock()
	locked := make(map[lockKey]time.Time, len(ls.locked))
	for k, at := range ls.locked {
		locked[k] = at
	}
	ls.mu.Unlock()
	for k, at := range locked {
		if ls.expired(k, at, now) {
			ls.lift(ctx, k, at)
		}
	}
}

// loginGuard is the logical.LoginGuard of one mount. It reads the mount's
// entry on every call, so a tune applies at once.
type loginGuard struct {
	sys *mountSystemView
}

func (g loginGuard) policy() (lockKey, lockoutPolicy, *lockoutStore) {
	e := g.sys.entry.Load()
	c := g.sys.core
	return lockKey{accessor: e.Accessor}, c.lockoutPolicyFor(e), c.lockout
}

func (g loginGuard) Locked(ctx context.Context, name string) bool {
	k, p, ls := g.policy()
	if p.disabled || ls == nil {
		return false
	}
	k.name = name
	return ls.isLocked(ctx, k, p)
}

func (g loginGuard) Failed(ctx context.Context, name string) {
	k, p, ls := g.policy()
	if p.disabled || ls == nil {
		return
	}
	k.name = name
	ls.fail(ctx, k, p)
}

func (g loginGuard) Succeeded(_ context.Context, name string) {
	k, p, ls := g.policy()
	if p.disabled || ls == nil {
		return
	}
	k.name = name
	ls.succeed(k)
}

// LoginGuard implements logical.SystemView: the mount's login lockout.
func (s *mountSystemView) LoginGuard() logical.LoginGuard { return loginGuard{sys: s} }

// LoginGuard implements logical.SystemView for the server as a whole: no
// lockout outside a mount.
func (c *Core) LoginGuard() logical.LoginGuard { return logical.NoLoginGuard{} }

// lockoutTuneData is how a mount's tune shows its lockout (Vault's keys).
func lockoutTuneData(p lockoutPolicy) map[string]any {
	return map[string]any{
		"user_lockout_threshold":              p.threshold,
		"user_lockout_duration":               int64(p.duration / time.Second),
		"user_lockout_counter_reset_duration": int64(p.counterReset / time.Second),
		"user_lockout_disable":                p.disabled,
	}
}
