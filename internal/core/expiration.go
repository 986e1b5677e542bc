package core

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/storage"
)

// The expiration manager keeps every lease behind the barrier and revokes
// each through the backend that issued it when it expires, is revoked, or
// its token goes. Nothing about a lease is held in memory but the list of
// time buckets that hold some: a restart reads one marker key per bucket and
// is ready, whatever the number of leases, and the loop only ever reads the
// bucket that is due next.
//
// Storage layout in the manager's view (sys/expire/):
//
//	id/<lease ID>                          the lease (lease IDs are paths)
//	by-time/<bucket>/<due nanos>.<hash>    the lease ID, due at that time
//	buckets/<bucket>                       a marker: the bucket may hold keys
//	count                                  the lease count, kept over a clean seal
//	token/<hash(token)>/<index name>       the lease ID, for the token's leases
//	mount/<accessor>/<index name>          the lease ID, for the mount's leases
//	by-time/<bucket>/<due nanos>.t<hash>   a token's expiry (token_expiry.go)
//
// A lease's due time is its expiry, or after a failed revocation the time
// of the next attempt. A bucket is the due time in whole multiples of
// bucketWidth, zero-padded so keys sort by time. The random part of a lease
// ID starts with its issue time, and index names start with that part, so
// leases issued together sit together in storage and are deleted together
// when they expire, touching few pages.
const (
	expirePrefix      = "sys/expire/"
	leaseIDPrefix     = "id/"
	leaseTimePrefix   = "by-time/"
	leaseBucketPrefix = "buckets/"
	leaseCountKey     = "count"
	leaseTokenPrefix  = "token/"
	leaseMountPrefix  = "mount/"
	bucketWidth       = 10 * time.Second
	revokeBatch       = 4096
	revokeConcurrency = 1024

	// maxExpiryWait bounds the loop's sleep, so a clock that jumps (or a
	// lease added in a bucket the loop has not been told about) is noticed.
	maxExpiryWait = time.Minute
	// Failed revocations are retried after revokeBackoffBase, doubling per
	// attempt up to revokeBackoffMax, for ever: a lease is never dropped
	// because its backend failed, only by revoke-force.
	revokeBackoffBase = 5 * time.Second
	revokeBackoffMax  = time.Hour
)

// leaseEntry is one lease as stored.
type leaseEntry struct {
	LeaseID       string         `json:"lease_id"`
	Path          string         `json:"path"` // the request path that issued it
	MountAccessor string         `json:"mount_accessor"`
	TokenHash     string         `json:"token_hash,omitempty"`
	InternalData  map[string]any `json:"internal_data,omitempty"`
	Renewable     bool           `json:"renewable"`
	MaxTTL        time.Duration  `json:"max_ttl,omitempty"` // the backend's cap at issue
	IssueTime     time.Time      `json:"issue_time"`
	ExpireTime    time.Time      `json:"expire_time"`
	LastRenewal   time.Time      `json:"last_renewal,omitzero"`
	// DueTime is when the loop acts on the lease next: ExpireTime, or the
	// next revocation attempt. Its by-time key is derived from it.
	DueTime time.Time `json:"due_time"`
	// Revoking is set once revocation has been asked for (expiry or a
	// client); from then on only revocation attempts follow.
	Revoking        bool   `json:"revoking,omitempty"`
	RevokeAttempts  int    `json:"revoke_attempts,omitempty"`
	LastRevokeError string `json:"last_revoke_error,omitempty"`
}

func (le *leaseEntry) hash() string { return hashID(le.LeaseID) }

// indexName names the lease in the token and mount indexes: the random
// part of its ID (time first), and a hash of the whole ID.
func (le *leaseEntry) indexName() string {
	return le.LeaseID[strings.LastIndexByte(le.LeaseID, '/')+1:] + "." + le.hash()[:16]
}

// newLeaseSuffix is the random part of a lease ID: 24 base62 characters,
// the first 8 the issue time in milliseconds (so they sort by time), the
// other 16 (95 bits) from crypto/rand.
func newLeaseSuffix(now time.Time) string {
	var ts [8]byte
	ms := now.UnixMilli()
	for i := len(ts) - 1; i >= 0; i-- {
		ts[i] = base62[ms%62]
		ms /= 62
	}
	return string(ts[:]) + randomBase62(16)
}

func bucketKey(b int64) string { return fmt.Sprintf("%s%012d", leaseBucketPrefix, b) }

func (le *leaseEntry) timeKey() string { return leaseTimeKey(le.DueTime, le.hash()) }

func leaseTimeKey(due time.Time, hash string) string {
	return fmt.Sprintf("%s%012d/%020d.%s", leaseTimePrefix, bucketOf(due), due.UnixNano(), hash[:32])
}

func bucketOf(t time.Time) int64 { return t.UnixNano() / int64(bucketWidth) }

// expiration is the lease manager of an unsealed core.
type expiration struct {
	core   *Core
	view   *view
	clock  Clock
	count  *atomic.Int64   // the core's lease gauge
	revoks *revokeCounters // the core's counters

	// mu guards buckets, pins and gen. buckets lists, sorted, the time
	// buckets that may hold leases, each with a marker in storage; pins
	// counts the writes under way into each; gen counts them all. The loop
	// drops a bucket it found empty only if no write was under way or
	// started meanwhile.
	mu      sync.Mutex
	buckets []int64
	pins    map[int64]int
	gen     uint64

	leaseLocks [4096]sync.Mutex

	poke chan struct{}
	stop chan struct{}
	done chan struct{}

	tidying atomic.Bool
	// counted is set once the lease gauge is exact: read from the count a
	// clean seal stored, or counted after unseal.
	counted atomic.Bool
	// pending lists the buckets the count after unseal has yet to reach:
	// a write there leaves the gauge to the count. countMu is held for
	// reading by every write of a by-time key and for writing while the
	// count lists a bucket, so each lease is counted exactly once.
	countMu sync.RWMutex
	pending map[int64]bool
}

type revokeCounters struct{ ok, failed atomic.Int64 }

func newExpiration(c *Core) *expiration {
	return &expiration{
		core:   c,
		view:   newView(c.barrier, expirePrefix),
		clock:  c.conf.Clock,
		count:  &c.leaseCount,
		revoks: &c.leaseRevocations,
		poke:   make(chan struct{}, 1),
		pins:   map[int64]int{},
	}
}

// load reads the bucket markers: one key per bucket, never a lease.
func (em *expiration) load(ctx context.Context) error {
	names, err := em.view.List(ctx, leaseBucketPrefix)
	if err != nil {
		return fmt.Errorf("listing lease expiry buckets: %w", err)
	}
	for _, n := range names {
		b, err := strconv.ParseInt(n, 10, 64)
		if err != nil {
			em.core.logger.Warn("ignoring a malformed lease expiry bucket", "key", n)
			continue
		}
		em.buckets = append(em.buckets, b)
	}
	slices.Sort(em.buckets)
	em.pending = make(map[int64]bool, len(em.buckets))
	for _, b := range em.buckets {
		em.pending[b] = true
	}
	// The count a clean seal stored is exact; it is deleted at once, so a
	// crash later leaves none and the next unseal counts.
	if e, err := em.view.Get(ctx, leaseCountKey); err != nil {
		return fmt.Errorf("reading the lease count: %w", err)
	} else if e != nil {
		if n, err := strconv.ParseInt(string(e.Value), 10, 64); err == nil {
			em.count.Store(n)
			em.counted.Store(true)
			clear(em.pending)
		}
		if err := em.view.Delete(ctx, leaseCountKey); err != nil {
			return fmt.Errorf("clearing the stored lease count: %w", err)
		}
	}
	return nil
}

// saveCount stores the lease count on a clean seal, once the loop has
// stopped and no request runs, so the next unseal need not count.
func (em *expiration) saveCount(ctx context.Context) {
	if !em.counted.Load() {
		return
	}
	n := strconv.FormatInt(em.count.Load(), 10)
	if err := em.view.Put(ctx, &storage.Entry{Key: leaseCountKey, Value: []byte(n)}); err != nil {
		em.core.logger.Warn("storing the lease count failed; the next unseal counts the leases", "error", err)
	}
}

// countLeases counts the leases of every bucket into the lease gauge, when
// no clean seal stored the count. It runs beside the expiry loop, off the
// path to ready, one bucket at a time.
func (em *expiration) countLeases(ctx context.Context) {
	if em.counted.Load() {
		return
	}
	em.countMu.RLock()
	buckets := make([]int64, 0, len(em.pending))
	for b := range em.pending {
		buckets = append(buckets, b)
	}
	em.countMu.RUnlock()
	for _, b := range buckets {
		em.countMu.Lock()
		keys, err := em.view.List(ctx, fmt.Sprintf("%s%012d/", leaseTimePrefix, b))
		if err == nil {
			n := 0
			for _, k := range keys {
				if tokenOfTimeKey(k) == "" {
					n++ // tokens' keys share the index and are not leases
				}
			}
			em.count.Add(int64(n))
			delete(em.pending, b)
		}
		em.countMu.Unlock()
		if err != nil {
			em.core.logger.Warn("counting leases failed; the lease count is short until the next unseal", "error", err)
			return
		}
	}
	em.counted.Store(true)
}

// commit applies a write that adds a by-time key to bucket added and
// removes one from bucket removed (-1: none), and keeps the lease gauge in
// step.
func (em *expiration) commit(ctx context.Context, ops []storage.Op, added, removed int64) error {
	return em.commitWith(ctx, ops, nil, added, removed)
}

// commitWith is commit with ops outside the manager's view (full keys) in
// the same transaction.
func (em *expiration) commitWith(ctx context.Context, ops, outside []storage.Op, added, removed int64) error {
	em.countMu.RLock()
	defer em.countMu.RUnlock()
	var err error
	if len(outside) == 0 {
		err = em.view.Transaction(ctx, ops)
	} else {
		all := make([]storage.Op, 0, len(ops)+len(outside))
		for _, op := range ops {
			all = append(all, storage.Op{Kind: op.Kind, Entry: &storage.Entry{Key: em.view.prefix + op.Entry.Key, Value: op.Entry.Value}})
		}
		err = em.view.under.Transaction(ctx, append(all, outside...))
	}
	if err != nil {
		return err
	}
	if added >= 0 && !em.pending[added] {
		em.count.Add(1)
	}
	if removed >= 0 && !em.pending[removed] {
		em.count.Add(-1)
	}
	return nil
}

// bucketOfKey is the bucket of a by-time key.
func bucketOfKey(key string) int64 {
	rest := strings.TrimPrefix(key, leaseTimePrefix)
	if len(rest) < 12 {
		return -1
	}
	b, err := strconv.ParseInt(rest[:12], 10, 64)
	if err != nil {
		return -1
	}
	return b
}

// start runs the expiry loop until stopLoop.
func (em *expiration) start() {
	em.stop, em.done = make(chan struct{}), make(chan struct{})
	go em.run(em.stop, em.done)
}

func (em *expiration) stopLoop() {
	if em.stop != nil {
		close(em.stop)
		<-em.done
		em.stop = nil
	}
}

func (em *expiration) wake() {
	select {
	case em.poke <- struct{}{}:
	default:
	}
}

func (em *expiration) run(stop <-chan struct{}, done chan<- struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	var counting sync.WaitGroup
	defer close(done)
	defer counting.Wait()
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	counting.Add(1)
	go func() {
		defer counting.Done()
		em.countLeases(ctx)
	}()
	for {
		wait := em.expireDue(ctx)
		select {
		case <-stop:
			return
		case <-em.poke:
		case <-em.clock.After(wait):
		}
	}
}

// pin announces a write that puts a by-time key in bucket b. When the
// bucket is new it returns the put of its marker, which the write must
// include. Call unpin once the write is done, whether it succeeded or not.
func (em *expiration) pin(b int64) []storage.Op {
	em.mu.Lock()
	defer em.mu.Unlock()
	em.gen++
	em.pins[b]++
	i, found := slices.BinarySearch(em.buckets, b)
	if found {
		return nil
	}
	em.buckets = slices.Insert(em.buckets, i, b)
	return []storage.Op{{Kind: storage.OpPut, Entry: &storage.Entry{Key: bucketKey(b), Value: []byte{}}}}
}

func (em *expiration) unpin(b int64) {
	em.mu.Lock()
	if em.pins[b]--; em.pins[b] == 0 {
		delete(em.pins, b)
	}
	first := len(em.buckets) > 0 && em.buckets[0] == b
	em.mu.Unlock()
	if first {
		em.wake() // it may be due before what the loop waits for
	}
}

// dropBucket forgets bucket b, found empty by a list that began at
// generation gen, unless a write into it is under way or began since.
func (em *expiration) dropBucket(ctx context.Context, b int64, gen uint64) error {
	em.mu.Lock()
	defer em.mu.Unlock()
	if em.gen != gen || em.pins[b] > 0 || len(em.buckets) == 0 || em.buckets[0] != b {
		return nil
	}
	if err := em.view.Delete(ctx, bucketKey(b)); err != nil {
		return err
	}
	em.buckets = em.buckets[1:]
	return nil
}

// expireDue revokes every lease due by now and returns how long to wait
// for the next one.
func (em *expiration) expireDue(ctx context.Context) time.Duration {
	for ctx.Err() == nil {
		now := em.clock.Now()
		em.mu.Lock()
		if len(em.buckets) == 0 {
			em.mu.Unlock()
			return maxExpiryWait
		}
		b, gen := em.buckets[0], em.gen
		em.mu.Unlock()
		if start := time.Unix(0, b*int64(bucketWidth)); start.After(now) {
			return min(start.Sub(now), maxExpiryWait)
		}
		keys, err := em.view.List(ctx, fmt.Sprintf("%s%012d/", leaseTimePrefix, b))
		if err != nil {
			em.core.logger.Warn("listing due leases failed; retrying", "error", err)
			return revokeBackoffBase
		}
		if len(keys) == 0 {
			if err := em.dropBucket(ctx, b, gen); err != nil {
				em.core.logger.Warn("dropping an empty lease expiry bucket failed; retrying", "error", err)
				return revokeBackoffBase
			}
			continue
		}
		var due []string
		var next time.Duration
		for _, k := range keys {
			nanos, err := strconv.ParseInt(k[:strings.IndexByte(k+".", '.')], 10, 64)
			if err != nil {
				continue
			}
			if at := time.Unix(0, nanos); at.After(now) {
				next = at.Sub(now)
				break
			}
			due = append(due, k)
			if len(due) == revokeBatch {
				break
			}
		}
		if len(due) == 0 {
			return min(next, maxExpiryWait)
		}
		em.expireKeys(ctx, b, due)
	}
	return 0
}

// expireKeys revokes the leases behind some due by-time keys of bucket b,
// several at once.
func (em *expiration) expireKeys(ctx context.Context, b int64, keys []string) {
	sem := make(chan struct{}, revokeConcurrency)
	var wg sync.WaitGroup
	for _, k := range keys {
		full := fmt.Sprintf("%s%012d/%s", leaseTimePrefix, b, k)
		if h := tokenOfTimeKey(k); h != "" {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				if err := em.expireToken(ctx, full, h); err != nil {
					em.core.logger.Warn("revoking an expired token failed; it will be retried", "error", err)
				}
			}()
			continue
		}
		e, err := em.view.Get(ctx, full)
		if err != nil {
			em.core.logger.Warn("reading a due lease failed", "error", err)
			continue
		}
		if e == nil {
			continue
		}
		leaseID := string(e.Value)
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := em.revoke(ctx, leaseID, full, false); err != nil {
				em.core.logger.Warn("revoking an expired lease failed; it will be retried", "lease_id", leaseID, "error", err)
			}
		}()
	}
	wg.Wait()
}

// lock returns the lock of a lease, one of many chosen by its hash, so
// the loop's concurrent revocations rarely wait for each other.
func (em *expiration) lock(leaseID string) *sync.Mutex {
	sum := sha256.Sum256([]byte(leaseID))
	return &em.leaseLocks[binary.BigEndian.Uint16(sum[:])%uint16(len(em.leaseLocks))]
}

func (em *expiration) get(ctx context.Context, leaseID string) (*leaseEntry, error) {
	if leaseID == "" {
		return nil, nil
	}
	le := new(leaseEntry)
	found, err := getJSONFrom(ctx, em.view, leaseIDPrefix+leaseID, le)
	if err != nil {
		return nil, fmt.Errorf("reading lease: %w", err)
	}
	if !found {
		return nil, nil
	}
	return le, nil
}

// settled returns the lease once no renewal or revocation of it is in
// progress, so a lookup never reports a state about to change.
func (em *expiration) settled(ctx context.Context, leaseID string) (*leaseEntry, error) {
	l := em.lock(leaseID)
	l.Lock()
	defer l.Unlock()
	return em.get(ctx, leaseID)
}

// register creates the lease for a leased response of mount m to the
// request for fullPath made with token te (nil when unauthenticated). It
// caps the secret's TTL and fills in its lease ID and issue time.
func (em *expiration) register(ctx context.Context, m *mount, fullPath string, te *TokenEntry, secret *logical.Secret) ([]string, error) {
	now := em.clock.Now().UTC()
	ttl, warnings := logical.CalculateTTL(m.sys, logical.LeaseTerms{Default: secret.TTL, Max: secret.MaxTTL, Issued: now})
	le := &leaseEntry{
		LeaseID:       strings.TrimSuffix(fullPath, "/") + "/" + newLeaseSuffix(now),
		Path:          fullPath,
		MountAccessor: m.entry.Accessor,
		InternalData:  secret.InternalData,
		Renewable:     secret.Renewable,
		MaxTTL:        secret.MaxTTL,
		IssueTime:     now,
		ExpireTime:    now.Add(ttl),
	}
	le.DueTime = le.ExpireTime
	if te != nil {
		le.TokenHash = hashID(te.ID)
	}
	ops := []storage.Op{
		{Kind: storage.OpPut, Entry: mustJSONEntry(leaseIDPrefix+le.LeaseID, le)},
		{Kind: storage.OpPut, Entry: &storage.Entry{Key: le.timeKey(), Value: []byte(le.LeaseID)}},
		{Kind: storage.OpPut, Entry: &storage.Entry{Key: leaseMountPrefix + le.MountAccessor + "/" + le.indexName(), Value: []byte(le.LeaseID)}},
	}
	if le.TokenHash != "" {
		ops = append(ops, storage.Op{Kind: storage.OpPut, Entry: &storage.Entry{Key: leaseTokenPrefix + le.TokenHash + "/" + le.indexName(), Value: []byte(le.LeaseID)}})
	}
	// The backend's write-ahead log entry for the change behind the
	// secret goes as the lease comes: never both, never neither.
	var outside []storage.Op
	if secret.WALKey != "" {
		outside = []storage.Op{{Kind: storage.OpDelete, Entry: &storage.Entry{Key: m.view.prefix + secret.WALKey}}}
	}
	b := bucketOf(le.DueTime)
	ops = append(ops, em.pin(b)...)
	err := em.commitWith(ctx, ops, outside, b, -1)
	em.unpin(b)
	if err != nil {
		return nil, fmt.Errorf("storing the lease: %w", err)
	}
	secret.LeaseID, secret.TTL, secret.IssueTime, secret.WALKey = le.LeaseID, ttl, now, ""
	return warnings, nil
}

// reschedule stores le with a new due time, moving its by-time key.
func (em *expiration) reschedule(ctx context.Context, le *leaseEntry, oldTimeKey string) error {
	ops := []storage.Op{
		{Kind: storage.OpPut, Entry: mustJSONEntry(leaseIDPrefix+le.LeaseID, le)},
		{Kind: storage.OpPut, Entry: &storage.Entry{Key: le.timeKey(), Value: []byte(le.LeaseID)}},
	}
	added, removed := int64(-1), int64(-1)
	if oldTimeKey != "" && oldTimeKey != le.timeKey() {
		ops = append(ops, storage.Op{Kind: storage.OpDelete, Entry: &storage.Entry{Key: oldTimeKey}})
		added, removed = bucketOf(le.DueTime), bucketOfKey(oldTimeKey)
	}
	b := bucketOf(le.DueTime)
	ops = append(ops, em.pin(b)...)
	err := em.commit(ctx, ops, added, removed)
	em.unpin(b)
	if err != nil {
		return fmt.Errorf("storing the lease: %w", err)
	}
	return nil
}

// remove deletes a lease and its index keys.
func (em *expiration) remove(ctx context.Context, le *leaseEntry) error {
	h := le.indexName()
	ops := []storage.Op{
		{Kind: storage.OpDelete, Entry: &storage.Entry{Key: le.timeKey()}},
		{Kind: storage.OpDelete, Entry: &storage.Entry{Key: leaseMountPrefix + le.MountAccessor + "/" + h}},
	}
	if le.TokenHash != "" {
		ops = append(ops, storage.Op{Kind: storage.OpDelete, Entry: &storage.Entry{Key: leaseTokenPrefix + le.TokenHash + "/" + h}})
	}
	// The lease itself goes last, in the same transaction: indexes never
	// outlive it where storage has no transactions either.
	ops = append(ops, storage.Op{Kind: storage.OpDelete, Entry: &storage.Entry{Key: leaseIDPrefix + le.LeaseID}})
	if err := em.commit(ctx, ops, -1, bucketOfKey(le.timeKey())); err != nil {
		return fmt.Errorf("deleting the lease: %w", err)
	}
	return nil
}

// errLeaseNotFound is what clients get for a lease that does not exist.
var errLeaseNotFound = logical.BadRequest("invalid lease")

// revoke revokes one lease: the issuing backend undoes it (unless force),
// then the lease is deleted. A failure is recorded on the lease and
// retried later with backoff; the error is returned. timeKey, when set, is
// the by-time key that led here (it may be stale). A lease already gone is
// not an error.
func (em *expiration) revoke(ctx context.Context, leaseID, timeKey string, force bool) error {
	l := em.lock(leaseID)
	l.Lock()
	defer l.Unlock()
	le, err := em.get(ctx, leaseID)
	if err != nil {
		return err
	}
	if timeKey != "" && (le == nil || le.timeKey() != timeKey) {
		// The key that led here is stale: the lease is gone, or was
		// renewed or rescheduled after the key was read.
		return em.view.Delete(ctx, timeKey)
	}
	if le == nil {
		return nil
	}
	if !force {
		if err := em.revokeInBackend(ctx, le); err != nil {
			em.revoks.failed.Add(1)
			return em.recordFailure(ctx, le, err)
		}
	}
	em.revoks.ok.Add(1)
	return em.remove(ctx, le)
}

// recordFailure schedules the next attempt at revoking le and returns err.
func (em *expiration) recordFailure(ctx context.Context, le *leaseEntry, cause error) error {
	old := le.timeKey()
	le.Revoking = true
	le.RevokeAttempts++
	le.LastRevokeError = cause.Error()
	le.DueTime = em.clock.Now().UTC().Add(revokeBackoff(le.RevokeAttempts))
	if err := em.reschedule(ctx, le, old); err != nil {
		return errors.Join(cause, err)
	}
	return cause
}

// revokeBackoff is the wait before attempt n+1 after n failed attempts.
func revokeBackoff(attempts int) time.Duration {
	d := revokeBackoffBase
	for i := 1; i < attempts && d < revokeBackoffMax; i++ {
		d *= 2
	}
	return min(d, revokeBackoffMax)
}

// mountByAccessor finds a live mount by its accessor: leases belong to the
// mount that issued them, wherever it has moved since.
func (c *Core) mountByAccessor(accessor string) *mount {
	c.mounts.mu.RLock()
	defer c.mounts.mu.RUnlock()
	for _, m := range c.mounts.byPath {
		if m.entry.Accessor == accessor {
			return m
		}
	}
	return nil
}

// secretRequest is the request the core sends a backend about a lease.
func (le *leaseEntry) secretRequest(op logical.Operation, m *mount, increment time.Duration) *logical.Request {
	return &logical.Request{
		ID:         newUUID(),
		Operation:  op,
		Path:       strings.TrimPrefix(le.Path, m.entry.routePath()),
		Storage:    m.view,
		MountPoint: m.entry.routePath(),
		MountType:  m.entry.Type,
		Data:       map[string]any{},
		Secret: &logical.Secret{
			LeaseID:      le.LeaseID,
			TTL:          max(le.ExpireTime.Sub(le.IssueTime), 0),
			MaxTTL:       le.MaxTTL,
			Renewable:    le.Renewable,
			InternalData: le.InternalData,
			IssueTime:    le.IssueTime,
			Increment:    increment,
		},
	}
}

// revokeInBackend asks the issuing backend to undo the lease. A lease whose
// mount is gone has nothing left to call and counts as revoked.
func (em *expiration) revokeInBackend(ctx context.Context, le *leaseEntry) error {
	m := em.core.mountByAccessor(le.MountAccessor)
	if m == nil {
		em.core.logger.Warn("revoking a lease whose mount is gone: nothing to call", "lease_id", le.LeaseID)
		return nil
	}
	_, err := m.backend.HandleRequest(ctx, le.secretRequest(logical.RevokeOperation, m, 0))
	if errors.Is(err, logical.ErrUnsupportedOperation) || errors.Is(err, logical.ErrUnsupportedPath) {
		return nil // a backend without leases has nothing to undo
	}
	return err
}

// renew extends a lease by increment (0: the backend's default), capped by
// the backend's and the mount's maximums counted from issue.
func (em *expiration) renew(ctx context.Context, leaseID string, increment time.Duration) (*logical.Response, error) {
	l := em.lock(leaseID)
	l.Lock()
	defer l.Unlock()
	le, err := em.get(ctx, leaseID)
	if err != nil {
		return nil, err
	}
	if le == nil {
		return nil, errLeaseNotFound
	}
	now := em.clock.Now().UTC()
	if le.Revoking || !now.Before(le.ExpireTime) {
		return nil, logical.BadRequest("lease expired")
	}
	if !le.Renewable {
		return nil, logical.BadRequest("lease is not renewable")
	}
	m := em.core.mountByAccessor(le.MountAccessor)
	if m == nil {
		return nil, logical.BadRequest("lease is not renewable: the mount that issued it is gone")
	}
	resp, err := m.backend.HandleRequest(ctx, le.secretRequest(logical.RenewOperation, m, increment))
	if err != nil {
		if logical.StatusOf(err) >= 500 {
			em.core.logger.Warn("a backend failed to renew a lease", "lease_id", leaseID, "error", err)
			return nil, logical.Errorf(500, "the backend failed to renew lease %s", leaseID)
		}
		return nil, err
	}
	terms := logical.LeaseTerms{Requested: increment, Max: le.MaxTTL, Issued: le.IssueTime}
	if resp != nil && resp.Secret != nil {
		terms.Default = resp.Secret.TTL
		if resp.Secret.MaxTTL > 0 {
			terms.Max = resp.Secret.MaxTTL
		}
		if resp.Secret.InternalData != nil {
			le.InternalData = resp.Secret.InternalData
		}
	}
	ttl, warnings := logical.CalculateTTL(m.sys, terms)
	if ttl <= 0 {
		return nil, logical.BadRequest("lease %s has reached its max_ttl and cannot be renewed", leaseID)
	}
	old := le.timeKey()
	le.MaxTTL = terms.Max
	le.ExpireTime = now.Add(ttl)
	le.DueTime = le.ExpireTime
	le.LastRenewal = now
	if err := em.reschedule(ctx, le, old); err != nil {
		return nil, err
	}
	out := &logical.Response{
		Secret:   &logical.Secret{LeaseID: le.LeaseID, TTL: ttl, Renewable: true, IssueTime: le.IssueTime},
		Warnings: warnings,
	}
	if resp != nil {
		out.Data = resp.Data
		out.Warnings = append(resp.Warnings, out.Warnings...)
	}
	return out, nil
}

// revokeLater marks a lease for revocation by the loop (sync=false).
func (em *expiration) revokeLater(ctx context.Context, leaseID string) error {
	l := em.lock(leaseID)
	l.Lock()
	defer l.Unlock()
	le, err := em.get(ctx, leaseID)
	if err != nil || le == nil {
		return err
	}
	old := le.timeKey()
	le.Revoking = true
	le.DueTime = em.clock.Now().UTC()
	return em.reschedule(ctx, le, old)
}

// walkIDs calls fn with every lease ID under prefix (lease IDs are paths).
func (em *expiration) walkIDs(ctx context.Context, prefix string, fn func(leaseID string) error) error {
	keys, err := em.view.List(ctx, leaseIDPrefix+prefix)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if strings.HasSuffix(k, "/") {
			if err := em.walkIDs(ctx, prefix+k, fn); err != nil {
				return err
			}
			continue
		}
		if err := fn(prefix + k); err != nil {
			return err
		}
	}
	return nil
}

// revokePrefix revokes every lease whose ID starts with prefix, a path
// prefix (whole segments). With force the backends are not called. Without
// it, the first failure stops the walk and is returned: the failed lease
// stays and is retried.
func (em *expiration) revokePrefix(ctx context.Context, prefix string, force bool) error {
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		// Revoking "db/creds/x" means the lease of that ID too, if any.
		if err := em.revoke(ctx, prefix, "", force); err != nil {
			return err
		}
		prefix += "/"
	}
	return em.walkIDs(ctx, prefix, func(id string) error {
		err := em.revoke(ctx, id, "", force)
		if err != nil {
			return fmt.Errorf("revoking lease %s: %w", id, err)
		}
		return nil
	})
}

// revokeIndexed revokes every lease listed under an index prefix (a
// token's or a mount's). Each failure leaves its lease scheduled for a
// retry; the failures are returned together.
func (em *expiration) revokeIndexed(ctx context.Context, indexPrefix string) error {
	keys, err := em.view.List(ctx, indexPrefix)
	if err != nil {
		return err
	}
	var errs []error
	for _, k := range keys {
		e, err := em.view.Get(ctx, indexPrefix+k)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if e == nil {
			continue
		}
		if err := em.revoke(ctx, string(e.Value), "", false); err != nil {
			errs = append(errs, fmt.Errorf("revoking lease %s: %w", e.Value, err))
			continue
		}
		// An index key left by a lease that is gone.
		em.view.Delete(ctx, indexPrefix+k)
	}
	return errors.Join(errs...)
}

// revokeByToken revokes the leases created with a token that is being
// revoked. A lease whose revocation fails stays scheduled for a retry, so
// the token's revocation goes on.
func (em *expiration) revokeByToken(ctx context.Context, tokenHash string) {
	if err := em.revokeIndexed(ctx, leaseTokenPrefix+tokenHash+"/"); err != nil {
		em.core.logger.Warn("revoking the leases of a revoked token failed; they will be retried", "error", err)
	}
}

// revokeByMount revokes every lease a mount issued, for disabling it.
func (em *expiration) revokeByMount(ctx context.Context, accessor string) error {
	return em.revokeIndexed(ctx, leaseMountPrefix+accessor+"/")
}

// tidy removes index entries that point at no lease and revokes leases
// whose token is gone. It reads every key, so it runs in the background,
// one at a time.
func (em *expiration) tidy(ctx context.Context) error {
	var errs []error
	tokens, err := em.view.List(ctx, leaseTokenPrefix)
	if err != nil {
		return err
	}
	for _, t := range tokens {
		th := strings.TrimSuffix(t, "/")
		te, err := em.core.tokens.loadByHash(ctx, th)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if te == nil {
			if err := em.revokeIndexed(ctx, leaseTokenPrefix+t); err != nil {
				errs = append(errs, err)
			}
		}
	}
	buckets, err := em.view.List(ctx, leaseTimePrefix)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, b := range buckets {
		keys, err := em.view.List(ctx, leaseTimePrefix+b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, k := range keys {
			full := leaseTimePrefix + b + k
			if h := tokenOfTimeKey(k); h != "" {
				// A token's key: dangling once the token is gone.
				te, err := em.core.tokens.loadByHash(ctx, h)
				if err == nil && te == nil {
					err = em.view.Delete(ctx, full)
				}
				if err != nil {
					errs = append(errs, err)
				}
				continue
			}
			e, err := em.view.Get(ctx, full)
			if err != nil || e == nil {
				continue
			}
			l := em.lock(string(e.Value))
			l.Lock()
			le, err := em.get(ctx, string(e.Value))
			if err == nil && (le == nil || le.timeKey() != full) {
				err = em.view.Delete(ctx, full)
			}
			l.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// leaseLookup describes a lease as sys/leases/lookup does.
func (le *leaseEntry) lookup(now time.Time) map[string]any {
	var lastRenewal any
	if !le.LastRenewal.IsZero() {
		lastRenewal = le.LastRenewal.Format(time.RFC3339Nano)
	}
	ttl := int64(0)
	if d := le.ExpireTime.Sub(now); d > 0 && !le.Revoking {
		ttl = int64(d.Round(time.Second) / time.Second)
	}
	out := map[string]any{
		"id":           le.LeaseID,
		"issue_time":   le.IssueTime.Format(time.RFC3339Nano),
		"expire_time":  le.ExpireTime.Format(time.RFC3339Nano),
		"last_renewal": lastRenewal,
		"renewable":    le.Renewable && !le.Revoking,
		"ttl":          ttl,
	}
	if le.Revoking {
		out["revoke_attempts"] = le.RevokeAttempts
		out["last_revoke_error"] = le.LastRevokeError
		out["next_revoke_attempt"] = le.DueTime.Format(time.RFC3339Nano)
	}
	return out
}
