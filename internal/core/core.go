// Package core is Arca's core: seal state, the mount table and router, the
// token store, ACL checks and the request pipeline every API call passes
// through. It knows backends only as logical.Factory values handed to it in
// a Catalog, and storage only through the barrier.
package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/arcasec/arca/internal/audit"
	"github.com/arcasec/arca/internal/barrier"
	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/seal"
	"github.com/arcasec/arca/internal/seal/shamir"
	"github.com/arcasec/arca/internal/storage"
)

// Catalog names the secrets engines and auth methods a core can mount.
type Catalog struct {
	Secrets map[string]logical.Factory
	Auth    map[string]logical.Factory
}

// Config configures a Core.
type Config struct {
	Storage         storage.Backend
	StorageType     string // reported by sys/seal-status, e.g. "bolt"
	Catalog         Catalog
	Logger          *slog.Logger
	DefaultLeaseTTL time.Duration // 0 means 768h
	MaxLeaseTTL     time.Duration // 0 means 768h
	ClusterName     string
	APIAddr         string
	// ClusterAddr is advertised beside APIAddr in sys/leader and
	// sys/ha-status; Arca's servers talk to each other over the API only.
	ClusterAddr string
	// StepDownWait is how long a server that stepped down waits before it
	// contends for the HA lock again, so another server takes it; 0 means
	// defaultStepDownWait.
	StepDownWait time.Duration
	Audit        AuditConfig // audit stanzas and the settings that limit sys/audit

	// Seal is the key service that protects the root key (a transit seal);
	// nil means Shamir key shares. With SealDisabled it is the seal being
	// migrated away from, back to Shamir.
	Seal         seal.Autoseal
	SealDisabled bool

	// UserLockout are the server's user_lockout stanzas by auth type
	// ("all", "userpass", "approle", "ldap"); see lockout.go.
	UserLockout map[string]UserLockoutConfig

	// Clock is the core's time source: token and lease lifetimes, expiry
	// and backends' SystemView.Now. nil means the real clock; tests pass
	// one they can move.
	Clock Clock
}

// Clock is a source of time. After behaves like time.After on the clock's
// own time.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Core is one Arca server's state.
type Core struct {
	conf    Config
	logger  *slog.Logger
	phys    storage.Backend
	barrier *barrier.Barrier

	sealed atomic.Bool
	// standby is set while the core is unsealed but does not hold the HA
	// lock: it serves nothing behind the barrier.
	standby atomic.Bool
	// fenced is set from the moment the core finds it lost the HA lock
	// until it is a standby again: nothing goes through the barrier to
	// storage meanwhile, since another server may already be active.
	fenced atomic.Bool

	// stateLock is held for writing while sealing or unsealing and for
	// reading by every request, so no request runs against a half-torn-down
	// core.
	stateLock sync.RWMutex
	unsealer  *seal.Unsealer

	// genMu guards genRoot, the root token generation under way.
	genMu   sync.Mutex
	genRoot *rootGeneration

	mounts     *mountTable
	tokens     *tokenStore
	policies   *policyStore
	expiration *expiration
	identity   *identityStore

	// audit holds the enabled audit devices; auditState the audit table.
	// auditMu serialises changes to both.
	audit      *audit.Broker
	auditMu    sync.Mutex
	auditState atomic.Pointer[auditState]
	access     *accessReport
	quotas     *quotaStore
	// lockout keeps failed login counts and login locks (user_lockout).
	lockout *lockoutStore
	// passwordPolicies caches parsed password policies.
	passwordPolicies passwordPolicyCache

	metrics    *metrics
	tokenCount atomic.Int64
	leaseCount atomic.Int64
	// leaseRevocations counts revocations and failed attempts, for metrics.
	leaseRevocations revokeCounters

	// wrapMu serialises handing out wrapped responses, so each is handed
	// out once.
	wrapMu sync.Mutex

	// rollbackStop ends the loop that sends mounts their periodic
	// RollbackOperation; rollbackDone closes when it has ended.
	rollbackStop, rollbackDone chan struct{}

	activeTime  time.Time
	ha          haState
	clusterID   string
	clusterName string
	// forwardingKey authenticates the client addresses standbys attach to
	// the requests they forward (forwarding.go).
	forwardingKey atomic.Pointer[[]byte]
}

const sealConfigKey = "core/seal-config"

// New creates a sealed core over conf.Storage.
func New(conf Config) (*Core, error) {
	if conf.Storage == nil {
		return nil, errors.New("core: no storage configured")
	}
	if conf.Logger == nil {
		conf.Logger = slog.Default()
	}
	if conf.Clock == nil {
		conf.Clock = realClock{}
	}
	if conf.DefaultLeaseTTL == 0 {
		conf.DefaultLeaseTTL = 768 * time.Hour
	}
	if conf.MaxLeaseTTL == 0 {
		conf.MaxLeaseTTL = 768 * time.Hour
	}
	if conf.DefaultLeaseTTL > conf.MaxLeaseTTL {
		return nil, fmt.Errorf("default_lease_ttl (%s) is longer than max_lease_ttl (%s)", conf.DefaultLeaseTTL, conf.MaxLeaseTTL)
	}
	if err := validateAuditConfig(conf.Audit); err != nil {
		return nil, err
	}
	if err := ValidateUserLockout(conf.UserLockout); err != nil {
		return nil, err
	}
	c := &Core{
		conf:   conf,
		logger: conf.Logger,
		audit:  audit.NewBroker(conf.Logger),
	}
	c.metrics = newMetrics(c)
	c.phys = newTimedStorage(conf.Storage, conf.StorageType, c.metrics)
	c.barrier = barrier.New(fencedStorage{Backend: c.phys, fenced: &c.fenced})
	c.barrier.Logger = conf.Logger
	c.audit.OnFailure = func(path, typ string) { c.metrics.auditFailures.WithLabelValues(path, typ).Inc() }
	c.quotas = newQuotaStore()
	c.ha.nodeID = newUUID()
	c.ha.stepDown = make(chan chan struct{}, 1)
	c.sealed.Store(true)
	return c, nil
}

// DefaultLeaseTTL and MaxLeaseTTL implement logical.SystemView for the
// system-wide defaults.
func (c *Core) DefaultLeaseTTL() time.Duration { return c.conf.DefaultLeaseTTL }
func (c *Core) MaxLeaseTTL() time.Duration     { return c.conf.MaxLeaseTTL }
func (c *Core) Now() time.Time                 { return c.conf.Clock.Now() }

// Sealed reports whether the core is sealed.
func (c *Core) Sealed() bool { return c.sealed.Load() }

// Initialized reports whether the storage holds an initialised Arca.
func (c *Core) Initialized(ctx context.Context) (bool, error) {
	conf, err := c.loadSealConfig(ctx)
	return conf != nil, err
}

func (c *Core) loadSealConfig(ctx context.Context) (*seal.Config, error) {
	e, err := c.phys.Get(ctx, sealConfigKey)
	if err != nil || e == nil {
		return nil, err
	}
	var conf seal.Config
	if err := json.Unmarshal(e.Value, &conf); err != nil {
		return nil, fmt.Errorf("reading seal configuration: %w", err)
	}
	return &conf, nil
}

// InitResult is what Init hands back once: the key shares (recovery key
// shares with an auto-unseal seal) and root token.
type InitResult struct {
	Shares         [][]byte
	RecoveryShares [][]byte
	RootToken      string
}

// Init initialises storage: it creates the keyring, splits the root key into
// shares, sets up the system mounts and a root token, and leaves the core
// sealed.
func (c *Core) Init(ctx context.Context, conf seal.Config) (*InitResult, error) {
	return c.InitWithRecovery(ctx, conf, seal.Config{})
}

// InitWithRecovery is Init for every seal. With Shamir, conf says how to
// split the root key and recovery must be empty; with an auto-unseal seal,
// conf must be empty, the root key is stored encrypted by the seal,
// recovery says how to split a new recovery key, and the core is left
// unsealed.
func (c *Core) InitWithRecovery(ctx context.Context, conf, recovery seal.Config) (*InitResult, error) {
	c.stateLock.Lock()
	defer c.stateLock.Unlock()
	if existing, err := c.loadSealConfig(ctx); err != nil {
		return nil, err
	} else if existing != nil {
		return nil, logical.BadRequest("Vault is already initialized")
	}
	auto := c.conf.Seal != nil
	if auto && c.conf.SealDisabled {
		return nil, logical.BadRequest("the %s seal is disabled, which only serves to migrate away from it: enable it or remove the seal stanza to initialize", c.conf.Seal.Type())
	}
	if auto {
		if recovery.Shares != 0 || recovery.Threshold != 0 {
			if err := recovery.Validate(); err != nil {
				return nil, logical.BadRequest("%s", strings.NewReplacer("secret_", "recovery_").Replace(err.Error()))
			}
		}
		conf = seal.Config{Type: c.conf.Seal.Type(), Shares: 1, Threshold: 1}
		recovery.Type = ""
	} else if err := conf.Validate(); err != nil {
		return nil, logical.BadRequest("%v", err)
	}
	rootKey, err := barrier.GenerateKey()
	if err != nil {
		return nil, err
	}
	defer clear(rootKey)
	res := &InitResult{}
	var sealOps []storage.Op
	var recoveryKey []byte
	if auto {
		ct, err := c.conf.Seal.Encrypt(ctx, rootKey)
		if err != nil {
			return nil, sealServiceError("encrypting the root key", c.conf.Seal, err)
		}
		if recovery.Shares > 0 {
			if recoveryKey, err = barrier.GenerateKey(); err != nil {
				return nil, err
			}
			defer clear(recoveryKey)
			if res.RecoveryShares, err = splitKey(recoveryKey, recovery); err != nil {
				return nil, err
			}
		}
		sealOps = append(sealOps,
			putOp(sealedRootKeyKey, []byte(ct)),
			putOp(recoveryConfigKey, mustJSON(recovery)))
	} else if res.Shares, err = splitKey(rootKey, conf); err != nil {
		return nil, err
	}
	if err := c.barrier.Initialize(ctx, rootKey); err != nil {
		return nil, fmt.Errorf("initializing the barrier: %w", err)
	}
	if err := c.barrier.Unseal(ctx, rootKey); err != nil {
		return nil, fmt.Errorf("unsealing the new barrier: %w", err)
	}
	if err := c.setupFresh(ctx); err != nil {
		c.barrier.Seal()
		return nil, err
	}
	if recoveryKey != nil {
		if err := c.barrier.Put(ctx, &storage.Entry{Key: recoveryKeyKey, Value: recoveryKey}); err != nil {
			c.barrier.Seal()
			return nil, fmt.Errorf("storing the recovery key: %w", err)
		}
	}
	if err := c.postUnseal(ctx); err != nil {
		c.barrier.Seal()
		return nil, err
	}
	if res.RootToken, err = c.tokens.createRoot(ctx); err != nil {
		c.preSeal(ctx)
		return nil, err
	}
	// The seal configuration goes last: it is what marks storage initialised.
	sealOps = append(sealOps, putOp(sealConfigKey, mustJSON(conf)))
	if err := storage.Apply(ctx, c.phys, sealOps); err != nil {
		c.preSeal(ctx)
		return nil, fmt.Errorf("storing the seal configuration: %w", err)
	}
	if auto && c.haBackend() != nil {
		// Only the lock holder serves: this server waits for it like any other.
		c.teardown(ctx)
		if err := c.enterStandby(ctx); err != nil {
			c.barrier.Seal()
			return nil, err
		}
		c.logger.Info("core initialized and unsealed by its seal", "seal", conf.Type)
	} else if auto {
		c.sealed.Store(false)
		c.logger.Info("core initialized and unsealed by its seal", "seal", conf.Type)
	} else {
		c.preSeal(ctx)
	}
	return res, nil
}

// splitKey splits key as conf says; a single share is the key itself.
func splitKey(key []byte, conf seal.Config) ([][]byte, error) {
	if conf.Shares == 1 {
		return [][]byte{append([]byte(nil), key...)}, nil
	}
	shares, err := shamir.Split(key, conf.Shares, conf.Threshold)
	if err != nil {
		return nil, fmt.Errorf("splitting the key: %w", err)
	}
	return shares, nil
}

// SealStatus is the state sys/seal-status reports.
type SealStatus struct {
	Type         string // the seal that protects the root key
	Initialized  bool
	Sealed       bool
	RecoverySeal bool // the keys below are recovery keys
	Migration    bool // a seal migration waits for `operator unseal -migrate`
	Threshold    int
	Shares       int
	Progress     int
	Nonce        string
	ClusterName  string
	ClusterID    string
	StorageType  string
}

// SealStatus reports the seal state.
func (c *Core) SealStatus(ctx context.Context) (*SealStatus, error) {
	conf, err := c.loadSealConfig(ctx)
	if err != nil {
		return nil, err
	}
	st := &SealStatus{Type: seal.Shamir, Sealed: c.Sealed(), StorageType: c.conf.StorageType}
	if c.conf.Seal != nil && !c.conf.SealDisabled {
		st.Type = c.conf.Seal.Type()
	}
	if conf == nil {
		st.Sealed = true
		st.RecoverySeal = st.Type != seal.Shamir
		return st, nil
	}
	st.Initialized = true
	st.Type = conf.SealType()
	st.RecoverySeal = st.Type != seal.Shamir
	st.Migration = st.Sealed && c.migrationPending(conf)
	keys, err := c.keyConfig(ctx, conf)
	if err != nil {
		return nil, err
	}
	st.Threshold, st.Shares = keys.Threshold, keys.Shares
	c.stateLock.RLock()
	if u := c.unsealer; u != nil && st.Sealed {
		st.Progress, st.Nonce = u.Progress(), u.Nonce()
	}
	if !st.Sealed {
		st.ClusterName, st.ClusterID = c.clusterName, c.clusterID
	}
	c.stateLock.RUnlock()
	return st, nil
}

// Unseal adds one key share. Once enough shares are in, the core unseals.
func (c *Core) Unseal(ctx context.Context, share []byte) error {
	return c.UnsealMigrate(ctx, share, false)
}

// UnsealMigrate is Unseal with sys/unseal's migrate flag. On a store with
// an auto-unseal seal the shares are recovery key shares, and the seal
// decrypts the root key once they are verified. A pending seal migration
// requires migrate: unseal key shares then move a Shamir store to
// the configured seal (they become its recovery keys), and recovery key
// shares move a store off a disabled seal back to Shamir (they become its
// unseal keys).
func (c *Core) UnsealMigrate(ctx context.Context, share []byte, migrate bool) error {
	c.stateLock.Lock()
	defer c.stateLock.Unlock()
	if !c.Sealed() {
		return nil
	}
	conf, err := c.loadSealConfig(ctx)
	if err != nil {
		return err
	}
	if conf == nil {
		return logical.BadRequest("Vault is not initialized")
	}
	stored := conf.SealType()
	pending := c.migrationPending(conf)
	switch {
	case stored != seal.Shamir && c.conf.Seal == nil:
		return logical.BadRequest("this store is protected by a %s seal, but the configuration has no seal %q stanza: add it (with disabled = \"true\" to migrate back to Shamir)", stored, stored)
	case pending && !migrate:
		return logical.BadRequest("a seal migration is pending: give the keys with migrate=true (operator unseal -migrate)")
	case !pending && migrate:
		return logical.BadRequest("migrate was set, but no seal migration is pending: the configured seal is the one that protects this store")
	}
	keys, err := c.keyConfig(ctx, conf)
	if err != nil {
		return err
	}
	if keys.Shares == 0 {
		return logical.BadRequest("this store has no recovery keys, so key shares can neither unseal nor migrate it")
	}
	if c.unsealer == nil {
		c.unsealer = seal.NewUnsealer(keys)
	}
	key, err := c.unsealer.Add(share)
	if err != nil {
		return logical.BadRequest("%v", err)
	}
	if key == nil {
		return nil
	}
	defer clear(key)
	c.unsealer = nil
	if stored == seal.Shamir {
		if err := c.barrier.Unseal(ctx, key); err != nil {
			if errors.Is(err, barrier.ErrBadRootKey) {
				return logical.BadRequest("the unseal key shares do not combine into this server's root key: %v", err)
			}
			return err
		}
		if pending {
			if err := c.migrateToAutoseal(ctx, key, keys); err != nil {
				c.barrier.Seal()
				return err
			}
		}
	} else if pending {
		if err := c.migrateToShamir(ctx, key, keys); err != nil {
			c.barrier.Seal()
			return err
		}
	} else if err := c.openWithRecoveryKey(ctx, key); err != nil {
		// Sealed by an operator, a server with a seal opens again with a
		// quorum of recovery keys, the seal decrypting its root key.
		c.barrier.Seal()
		return err
	}
	return c.finishUnseal(ctx)
}

// finishUnseal loads the state behind the opened barrier and opens the
// core to requests; c.stateLock is held. With HA, the core becomes a
// standby instead, which loads nothing until it holds the lock.
func (c *Core) finishUnseal(ctx context.Context) error {
	if c.haBackend() != nil {
		return c.enterStandby(ctx)
	}
	if err := c.postUnseal(ctx); err != nil {
		c.preSeal(ctx)
		return fmt.Errorf("loading state after unseal: %w", err)
	}
	c.sealed.Store(false)
	c.logger.Info("core unsealed")
	return nil
}

// ResetUnseal discards the unseal progress.
func (c *Core) ResetUnseal() error {
	c.stateLock.Lock()
	defer c.stateLock.Unlock()
	if !c.Sealed() {
		return logical.BadRequest("vault is unsealed")
	}
	if c.unsealer != nil {
		c.unsealer.Reset()
		c.unsealer = nil
	}
	return nil
}

// Seal seals the core: keys leave memory and every secret path answers 503.
func (c *Core) Seal(ctx context.Context) {
	c.stateLock.Lock()
	if c.Sealed() {
		c.stateLock.Unlock()
		return
	}
	c.sealed.Store(true)
	haDone := c.stopHA()
	c.preSeal(ctx)
	c.standby.Store(false)
	c.stateLock.Unlock()
	// The HA lock is released only now, after everything that acts as the
	// active server (expiry, rollbacks) has stopped.
	if haDone != nil {
		<-haDone
	}
	c.logger.Info("core sealed")
}

// setupFresh writes the state of a newly initialised server.
func (c *Core) setupFresh(ctx context.Context) error {
	if err := c.putJSON(ctx, clusterKey, clusterInfo{ID: newUUID(), Name: c.conf.ClusterName}); err != nil {
		return err
	}
	if err := writeDefaultMounts(ctx, c.barrier); err != nil {
		return err
	}
	return nil
}

const clusterKey = "core/cluster"

type clusterInfo struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// postUnseal loads the state kept behind the barrier.
func (c *Core) postUnseal(ctx context.Context) error {
	// A standby taking over read it when it unsealed, and health checks
	// read it without the state lock.
	if !c.standby.Load() {
		if err := c.loadClusterInfo(ctx); err != nil {
			return err
		}
	}
	if err := c.ensureForwardingKey(ctx); err != nil {
		return err
	}
	c.policies = newPolicyStore(newView(c.barrier, "sys/policy/"))
	if err := c.policies.setupDefaults(ctx); err != nil {
		return err
	}
	c.tokens = newTokenStore(c, newView(c.barrier, "sys/token/"))
	c.lockout = newLockoutStore(c, newView(c.barrier, lockedUsersPrefix))
	if err := c.lockout.load(ctx); err != nil {
		return fmt.Errorf("loading login locks: %w", err)
	}
	mt, err := loadMountTable(ctx, c)
	if err != nil {
		return err
	}
	c.mounts = mt
	if err := mt.ensureBuiltin(ctx, identityMountEntry()); err != nil {
		return err
	}
	c.identity = newIdentityStore(c, newView(c.barrier, identityPrefix))
	if err := c.identity.load(ctx); err != nil {
		return err
	}
	if err := c.tokens.countTokens(ctx); err != nil {
		return err
	}
	c.expiration = newExpiration(c)
	if err := c.expiration.load(ctx); err != nil {
		return err
	}
	if err := c.loadAudit(ctx); err != nil {
		return err
	}
	c.access = newAccessReport(newView(c.barrier, accessReportPrefix), c.authMountOf)
	c.access.identify = c.identifyToken
	if err := c.access.load(ctx); err != nil {
		return fmt.Errorf("loading the access report: %w", err)
	}
	c.access.start(c.logger)
	if err := c.quotas.load(ctx, newView(c.barrier, quotaPrefix)); err != nil {
		return fmt.Errorf("loading quotas: %w", err)
	}
	if err := c.recordVersion(ctx); err != nil {
		return err
	}
	c.expiration.start()
	c.startRollback()
	c.activeTime = c.Now().UTC()
	return nil
}

// preSeal tears down what postUnseal built and seals the barrier.
func (c *Core) preSeal(ctx context.Context) {
	c.teardown(ctx)
	c.dropForwardingKey()
	c.barrier.Seal()
}

// teardown stops what postUnseal started and drops the state it loaded,
// leaving the barrier open: sealing and a step-down share it.
func (c *Core) teardown(ctx context.Context) {
	c.stopRollback()
	if c.expiration != nil {
		c.expiration.stopLoop()
		c.expiration.saveCount(ctx)
	}
	if c.access != nil {
		if err := c.access.close(ctx); err != nil {
			c.logger.Warn("storing the access report on seal failed", "error", err)
		}
		c.access = nil
	}
	c.audit.Close()
	c.auditState.Store(nil)
	c.quotas.clear()
	c.tokenCount.Store(0)
	c.leaseCount.Store(0)
	if c.mounts != nil {
		c.mounts.cleanup(ctx)
	}
	c.mounts, c.tokens, c.policies, c.expiration, c.lockout, c.identity = nil, nil, nil, nil, nil, nil
	c.cancelRootGeneration()
}

func (c *Core) putJSON(ctx context.Context, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.barrier.Put(ctx, &storage.Entry{Key: key, Value: raw})
}

func (c *Core) getJSON(ctx context.Context, key string, v any) (bool, error) {
	e, err := c.barrier.Get(ctx, key)
	if err != nil || e == nil {
		return false, err
	}
	return true, json.Unmarshal(e.Value, v)
}

// KeyStatus reports the barrier's active key.
func (c *Core) KeyStatus() barrier.KeyInfo { return c.barrier.KeyStatus() }

// ActiveTime is when this core last unsealed.
func (c *Core) ActiveTime() time.Time { return c.activeTime }

// ClusterInfo returns the cluster name and ID (empty while sealed).
func (c *Core) ClusterInfo() (name, id string) {
	if c.Sealed() {
		return "", ""
	}
	return c.clusterName, c.clusterID
}
