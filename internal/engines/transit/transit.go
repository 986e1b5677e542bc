// Package transit is the transit secrets engine: encryption as a service
// with Vault's API. Keys never leave it unless they are marked exportable;
// applications send data to encrypt, decrypt, sign, verify or HMAC, and get
// data keys for envelope encryption.
//
// A key (a "policy", as Vault calls it) is stored as JSON at policy/<name>
// in Vault's field names, so a backup moves between Arca and Vault. Keys
// are decoded once and kept in memory (see cache-config): a request on a
// cached key reads no storage.
package transit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/logical/framework"
)

const (
	policyPrefix   = "policy/"
	cacheConfigKey = "config/cache"
	keysConfigKey  = "config/keys"

	// maxBatchItems bounds batch_input: a batch is processed in one request
	// holding its results in memory, so a bigger one is refused at once.
	maxBatchItems = 10000
)

// Factory builds a transit backend for a mount.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	now := time.Now
	if conf.System != nil {
		now = conf.System.Now
	}
	b := newBackend(conf.Logger, now)
	b.Setup(conf)
	size, err := b.readCacheSize(ctx, conf.Storage)
	if err != nil {
		return nil, err
	}
	b.cacheSize = size
	disable, err := readKeysConfig(ctx, conf.Storage)
	if err != nil {
		return nil, err
	}
	b.disableUpsert.Store(disable)
	return b, nil
}

type backend struct {
	*framework.Backend
	logger *slog.Logger
	now    func() time.Time

	mu        sync.RWMutex
	cache     map[string]*policy
	cacheSize int // 0: unbounded

	disableUpsert atomic.Bool // config/keys: encrypt never creates a key

	locks [64]sync.Mutex // serialise changes to the same key
}

func newBackend(logger *slog.Logger, now func() time.Time) *backend {
	if logger == nil {
		logger = slog.Default()
	}
	b := &backend{logger: logger, now: now, cache: map[string]*policy{}}
	b.Backend = &framework.Backend{
		Help:  "The transit engine encrypts, decrypts, signs and verifies data with keys it keeps.",
		Paths: b.paths(),
		Clean: func(context.Context) { b.flush() },
		PeriodicFunc: func(ctx context.Context, req *logical.Request) error {
			return b.rotateDue(ctx, req.Storage)
		},
	}
	return b
}

// lock serialises read-modify-write cycles on the key name.
func (b *backend) lock(name string) func() {
	h := fnv.New32a()
	h.Write([]byte(name))
	m := &b.locks[h.Sum32()%uint32(len(b.locks))]
	m.Lock()
	return m.Unlock
}

func (b *backend) flush() {
	b.mu.Lock()
	b.cache = map[string]*policy{}
	b.mu.Unlock()
}

func (b *backend) cached(name string) *policy {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.cache[name]
}

// getPolicy returns the named key, or nil when there is none. The result
// is shared: never modify it (see policy).
func (b *backend) getPolicy(ctx context.Context, s logical.Storage, name string) (*policy, error) {
	if p := b.cached(name); p != nil {
		return p, nil
	}
	defer b.lock(name)()
	return b.load(ctx, s, name)
}

// load is getPolicy for a caller holding lock(name). Loading under the lock
// keeps a slow reader from caching a version of the key that a change (or
// a deletion) has replaced since it read storage.
func (b *backend) load(ctx context.Context, s logical.Storage, name string) (*policy, error) {
	if p := b.cached(name); p != nil {
		return p, nil
	}
	e, err := s.Get(ctx, policyPrefix+name)
	if err != nil || e == nil {
		return nil, err
	}
	p := new(policy)
	if err := json.Unmarshal(e.Value, p); err != nil {
		return nil, fmt.Errorf("transit: decoding key %q: %w", name, err)
	}
	if err := p.decoded(); err != nil {
		return nil, fmt.Errorf("transit: %w", err)
	}
	if err := p.prepare(); err != nil {
		return nil, fmt.Errorf("transit: %w", err)
	}
	b.remember(p)
	return p, nil
}

// remember caches p, evicting another key when the cache is full.
func (b *backend) remember(p *policy) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.cache[p.Name]; !ok && b.cacheSize > 0 && len(b.cache) >= b.cacheSize {
		for name := range b.cache { // any one: map order is random
			delete(b.cache, name)
			break
		}
	}
	b.cache[p.Name] = p
}

func (b *backend) forget(name string) {
	b.mu.Lock()
	delete(b.cache, name)
	b.mu.Unlock()
}

// persist stores p and makes it the cached version of its key.
func (b *backend) persist(ctx context.Context, s logical.Storage, p *policy) error {
	if err := p.prepare(); err != nil {
		return fmt.Errorf("transit: %w", err)
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("transit: encoding key %q: %w", p.Name, err)
	}
	if err := s.Put(ctx, &logical.StorageEntry{Key: policyPrefix + p.Name, Value: raw}); err != nil {
		return err
	}
	b.remember(p)
	return nil
}

// update applies change to a copy of the named key and stores it. It
// returns nil when the key does not exist.
func (b *backend) update(ctx context.Context, s logical.Storage, name string, change func(p *policy) error) (*policy, error) {
	defer b.lock(name)()
	p, err := b.load(ctx, s, name)
	if err != nil || p == nil {
		return nil, err
	}
	c := p.clone()
	if err := change(c); err != nil {
		return nil, err
	}
	return c, b.persist(ctx, s, c)
}

// keyConfig is what a new key is created with.
type keyConfig struct {
	typ                  keyType
	keySize              int
	derived, convergent  bool
	exportable           bool
	allowPlaintextBackup bool
	autoRotatePeriod     time.Duration
}

// create makes the named key unless it exists; created reports which.
func (b *backend) create(ctx context.Context, s logical.Storage, name string, kc keyConfig) (p *policy, created bool, err error) {
	defer b.lock(name)()
	if p, err = b.load(ctx, s, name); err != nil || p != nil {
		return p, false, err
	}
	p = &policy{
		Name:                 name,
		Type:                 kc.typ,
		KeySize:              kc.keySize,
		Derived:              kc.derived,
		ConvergentEncryption: kc.convergent,
		Exportable:           kc.exportable,
		AllowPlaintextBackup: kc.allowPlaintextBackup,
		AutoRotatePeriod:     kc.autoRotatePeriod,
	}
	if kc.derived {
		p.KDF = kdfHKDF
	}
	if kc.convergent {
		p.ConvergentVersion = convergentVersion
	}
	if err := p.rotate(b.now()); err != nil {
		return nil, false, err
	}
	return p, true, b.persist(ctx, s, p)
}

func (b *backend) readCacheSize(ctx context.Context, s logical.Storage) (int, error) {
	e, err := s.Get(ctx, cacheConfigKey)
	if err != nil || e == nil {
		return 0, err
	}
	var c struct {
		Size int `json:"size"`
	}
	if err := json.Unmarshal(e.Value, &c); err != nil {
		return 0, fmt.Errorf("transit: decoding the cache configuration: %w", err)
	}
	return c.Size, nil
}

// rotateDue rotates every key whose auto_rotate_period has passed since its
// latest version was made. It is the backend's periodic function, run on
// the core's rollback schedule.
func (b *backend) rotateDue(ctx context.Context, s logical.Storage) error {
	names, err := s.List(ctx, policyPrefix)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		if strings.HasSuffix(name, "/") {
			continue
		}
		p, err := b.getPolicy(ctx, s, name)
		if err != nil || p == nil || !p.due(b.now()) {
			errs = append(errs, err)
			continue
		}
		_, err = b.update(ctx, s, name, func(c *policy) error {
			if !c.due(b.now()) { // rotated meanwhile
				return nil
			}
			return c.rotate(b.now())
		})
		if err == nil {
			b.logger.Info("transit: rotated key on schedule", "key", name)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// due reports whether p's auto-rotation period has passed.
func (p *policy) due(now time.Time) bool {
	if p.AutoRotatePeriod <= 0 {
		return false
	}
	e, ok := p.entry(p.LatestVersion)
	return ok && !now.Before(e.CreationTime.Add(p.AutoRotatePeriod))
}
