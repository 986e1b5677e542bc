// Package approle is the AppRole auth method: machines log in with a role ID
// (which names a role, like a user name) and a secret ID (which proves the
// login, like a password), issued per role with their own lifetime, use count
// and address restrictions. The paths, fields and responses are Vault's.
//
// A secret ID is never stored: only its HMAC-SHA256 under a random key kept
// in the mount's own storage, and every lookup compares that hash in
// constant time. Spending a use of a secret ID happens under a per-secret
// lock, so a secret ID with num_uses=1 logs in exactly once however many
// logins race for it.
package approle

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/logical/framework"
	"github.com/arcasec/arca/internal/storage"
)

// Storage layout, relative to the mount:
//
//	salt                          the HMAC key (32 random bytes)
//	role/<name>                   a role
//	role_id/<hmac(role ID)>       the role ID index: which role a role ID names
//	secret_id/<hmac(role name)>/<hmac(secret ID)>   a secret ID's entry
//	accessor/<hmac(accessor)>     a secret ID accessor: which entry it names
const (
	saltKey        = "salt"
	rolePrefix     = "role/"
	roleIDPrefix   = "role_id/"
	secretIDPrefix = "secret_id/"
	accessorPrefix = "accessor/"
)

// lockStripes is the number of locks secret IDs are spread over.
const lockStripes = 256

// Factory creates an AppRole auth method for a mount.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := newBackend(conf)
	return b, nil
}

type backend struct {
	*framework.Backend
	logger *slog.Logger
	system logical.SystemView

	// rolesMu orders role changes against everything that reads roles:
	// creating, changing or deleting a role (or its role ID) takes it for
	// writing; logins and secret ID operations take it for reading.
	rolesMu sync.RWMutex
	// secretLocks serialise the operations on one secret ID (spending a use,
	// destroying it, tidying it), chosen by a hash of its HMAC.
	secretLocks [lockStripes]sync.Mutex

	saltMu sync.Mutex
	salt   atomic.Pointer[[]byte] // the HMAC key once read or made

	tidyMu   sync.Mutex
	lastTidy time.Time
}

func newBackend(conf *logical.BackendConfig) *backend {
	b := &backend{logger: conf.Logger, system: conf.System}
	if b.logger == nil {
		b.logger = slog.New(slog.DiscardHandler)
	}
	b.Backend = &framework.Backend{
		Help: "The AppRole auth method: log in with a role ID and a secret ID.",
		PathsSpecial: &logical.Paths{
			Unauthenticated: []string{"login"},
			CaseInsensitive: []string{"role/+", "role/+/*"},
		},
		Paths:        append(append(append(b.rolePaths(), b.secretIDPaths()...), b.loginPath()), b.tidyPath()),
		AuthRenew:    b.authRenew,
		ResolveRole:  b.resolveRole,
		PeriodicFunc: b.periodic,
	}
	framework.RequireLowercase("role_name", b.Backend.Paths)
	b.Backend.Setup(conf)
	return b
}

// now is the core's clock.
func (b *backend) now() time.Time {
	if b.system != nil {
		return b.system.Now()
	}
	return time.Now()
}

func (b *backend) maxLeaseTTL() time.Duration {
	if b.system != nil {
		return b.system.MaxLeaseTTL()
	}
	return 0
}

func (b *backend) guard() logical.LoginGuard {
	if b.system != nil {
		if g := b.system.LoginGuard(); g != nil {
			return g
		}
	}
	return logical.NoLoginGuard{}
}

// secretLock returns the lock for the secret ID whose HMAC is h.
func (b *backend) secretLock(h string) *sync.Mutex {
	f := fnv.New32a()
	f.Write([]byte(h))
	return &b.secretLocks[f.Sum32()%lockStripes]
}

// hmacKey returns the mount's HMAC key, creating it on first use.
func (b *backend) hmacKey(ctx context.Context, s logical.Storage) ([]byte, error) {
	if k := b.salt.Load(); k != nil {
		return *k, nil
	}
	b.saltMu.Lock()
	defer b.saltMu.Unlock()
	if k := b.salt.Load(); k != nil {
		return *k, nil
	}
	e, err := s.Get(ctx, saltKey)
	if err != nil {
		return nil, fmt.Errorf("reading the mount's HMAC key: %w", err)
	}
	if e != nil {
		if len(e.Value) != 32 {
			return nil, fmt.Errorf("the mount's HMAC key is damaged: %d bytes, want 32", len(e.Value))
		}
		b.salt.Store(&e.Value)
		return e.Value, nil
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generating the mount's HMAC key: %w", err)
	}
	if err := s.Put(ctx, &logical.StorageEntry{Key: saltKey, Value: key}); err != nil {
		return nil, fmt.Errorf("storing the mount's HMAC key: %w", err)
	}
	b.salt.Store(&key)
	return key, nil
}

// hmac returns the hex HMAC-SHA256 of each value under the mount's key,
// each in its own domain (kind), so a role name never hashes like a secret ID.
func (b *backend) hmac(ctx context.Context, s logical.Storage, kind, value string) (string, error) {
	key, err := b.hmacKey(ctx, s)
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return hex.EncodeToString(m.Sum(nil)), nil
}

// equalHMAC compares two HMACs in constant time.
func equalHMAC(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func newUUID() (string, error) {
	u, err := uuid.NewRandomFromReader(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("generating a random ID: %w", err)
	}
	return u.String(), nil
}

// JSON storage helpers.

func getJSON(ctx context.Context, s logical.Storage, key string, v any) (bool, error) {
	e, err := s.Get(ctx, key)
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", key, err)
	}
	if e == nil {
		return false, nil
	}
	if err := json.Unmarshal(e.Value, v); err != nil {
		return false, fmt.Errorf("decoding %s: %w", key, err)
	}
	return true, nil
}

func putOp(key string, v any) (storage.Op, error) {
	buf, err := json.Marshal(v)
	if err != nil {
		return storage.Op{}, fmt.Errorf("encoding %s: %w", key, err)
	}
	return storage.Op{Kind: storage.OpPut, Entry: &storage.Entry{Key: key, Value: buf}}, nil
}

func deleteOp(key string) storage.Op {
	return storage.Op{Kind: storage.OpDelete, Entry: &storage.Entry{Key: key}}
}
