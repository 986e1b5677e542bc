package core

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/arcasec/arca/internal/barrier"
	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/seal"
	"github.com/arcasec/arca/internal/storage"
)

// What an auto-unseal seal keeps. The root key, encrypted by the seal, and
// the recovery configuration live outside the barrier, since they are
// needed to open it; the recovery key lives behind it.
const (
	sealedRootKeyKey  = "core/sealed-root-key"
	recoveryConfigKey = "core/recovery-config"
	recoveryKeyKey    = "core/recovery-key"
)

// ErrNoAutoUnseal is returned by AutoUnseal when the server does not
// unseal itself: the store is not initialised, is Shamir-sealed, or waits
// for a seal migration. Retrying does not help.
var ErrNoAutoUnseal = errors.New("this server does not unseal itself")

// sealServiceError is a failure of the seal's key service: the server
// cannot act on it, so the client gets a 503 that says what failed.
func sealServiceError(what string, s seal.Autoseal, err error) error {
	return logical.Errorf(http.StatusServiceUnavailable, "%s with the %s seal failed: %v", what, s.Type(), err)
}

func putOp(key string, value []byte) storage.Op {
	return storage.Op{Kind: storage.OpPut, Entry: &storage.Entry{Key: key, Value: value}}
}

func deleteOp(key string) storage.Op {
	return storage.Op{Kind: storage.OpDelete, Entry: &storage.Entry{Key: key}}
}

func mustJSON(v any) []byte {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain structs are marshalled here
	}
	return raw
}

// migrationPending reports whether the configured seal differs from the
// one that protects the store, so unsealing means migrating.
func (c *Core) migrationPending(conf *seal.Config) bool {
	want := seal.Shamir
	if c.conf.Seal != nil && !c.conf.SealDisabled {
		want = c.conf.Seal.Type()
	}
	return conf.SealType() != want
}

// keyConfig is how the keys people hold were split: the unseal keys of a
// Shamir store, the recovery keys of an auto-unsealed one.
func (c *Core) keyConfig(ctx context.Context, conf *seal.Config) (seal.Config, error) {
	if conf.SealType() == seal.Shamir {
		return *conf, nil
	}
	e, err := c.phys.Get(ctx, recoveryConfigKey)
	if err != nil {
		return seal.Config{}, err
	}
	var rc seal.Config
	if e != nil {
		if err := json.Unmarshal(e.Value, &rc); err != nil {
			return seal.Config{}, fmt.Errorf("reading the recovery configuration: %w", err)
		}
	}
	return rc, nil
}

// decryptRootKey decrypts the stored root key with the configured seal.
func (c *Core) decryptRootKey(ctx context.Context) ([]byte, error) {
	e, err := c.phys.Get(ctx, sealedRootKeyKey)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, errors.New("the store has no root key encrypted by its seal")
	}
	root, err := c.conf.Seal.Decrypt(ctx, string(e.Value))
	if err != nil {
		return nil, sealServiceError("decrypting the root key", c.conf.Seal, err)
	}
	return root, nil
}

// openWithSeal decrypts the stored root key with the configured seal and
// opens the barrier with it.
func (c *Core) openWithSeal(ctx context.Context) error {
	root, err := c.decryptRootKey(ctx)
	if err != nil {
		return err
	}
	return c.openWith(ctx, root)
}

// openWith opens the barrier with root, the key the seal decrypted.
func (c *Core) openWith(ctx context.Context, root []byte) error {
	defer clear(root)
	if err := c.barrier.Unseal(ctx, root); err != nil {
		if errors.Is(err, barrier.ErrBadRootKey) {
			return fmt.Errorf("the %s seal decrypted a key that does not open this store's keyring: is key_name the key this store was initialised with?", c.conf.Seal.Type())
		}
		return err
	}
	return nil
}

// openWithRecoveryKey opens the barrier with the seal and checks that
// recoveryKey is the stored recovery key; the caller seals the barrier
// again on an error.
func (c *Core) openWithRecoveryKey(ctx context.Context, recoveryKey []byte) error {
	if err := c.openWithSeal(ctx); err != nil {
		return err
	}
	e, err := c.barrier.Get(ctx, recoveryKeyKey)
	if err != nil {
		return fmt.Errorf("reading the recovery key: %w", err)
	}
	if e == nil || subtle.ConstantTimeCompare(e.Value, recoveryKey) != 1 {
		return logical.BadRequest("the recovery key shares do not combine into this server's recovery key")
	}
	return nil
}

// AutoUnseal unseals the core with its seal. It returns ErrNoAutoUnseal
// (wrapped) when that does not apply, and the seal's error, to be retried,
// when the key service fails.
func (c *Core) AutoUnseal(ctx context.Context) error {
	if !c.Sealed() {
		return nil
	}
	conf, err := c.loadSealConfig(ctx)
	if err != nil {
		return err
	}
	switch {
	case conf == nil:
		return fmt.Errorf("%w: it is not initialized", ErrNoAutoUnseal)
	case conf.SealType() == seal.Shamir && c.conf.Seal == nil:
		return fmt.Errorf("%w: it is sealed with Shamir key shares", ErrNoAutoUnseal)
	case c.conf.Seal == nil:
		return fmt.Errorf("%w: its store is protected by a %s seal but the configuration has no seal stanza", ErrNoAutoUnseal, conf.SealType())
	case c.migrationPending(conf):
		return fmt.Errorf("%w: a seal migration is pending; run operator unseal -migrate", ErrNoAutoUnseal)
	}
	// The key service is asked without holding the state lock, so a slow
	// or unreachable one does not hold up seal-status and the rest.
	root, err := c.decryptRootKey(ctx)
	if err != nil {
		return err
	}
	c.stateLock.Lock()
	defer c.stateLock.Unlock()
	if !c.Sealed() {
		clear(root)
		return nil
	}
	if err := c.openWith(ctx, root); err != nil {
		return err
	}
	return c.finishUnseal(ctx)
}

// migrateToAutoseal moves a Shamir store, whose barrier oldRoot has just
// opened, to the configured seal: a new root key encrypted by the seal
// protects the keyring, and the old root key becomes the recovery key, so
// the unseal key shares are the recovery key shares.
func (c *Core) migrateToAutoseal(ctx context.Context, oldRoot []byte, shares seal.Config) error {
	newRoot, err := barrier.GenerateKey()
	if err != nil {
		return err
	}
	defer clear(newRoot)
	ct, err := c.conf.Seal.Encrypt(ctx, newRoot)
	if err != nil {
		return sealServiceError("encrypting the root key", c.conf.Seal, err)
	}
	// Harmless if the migration stops here: a Shamir store never reads it.
	if err := c.barrier.Put(ctx, &storage.Entry{Key: recoveryKeyKey, Value: oldRoot}); err != nil {
		return fmt.Errorf("storing the recovery key: %w", err)
	}
	shares.Type = ""
	err = c.barrier.ChangeRootKey(ctx, newRoot, []storage.Op{
		putOp(sealedRootKeyKey, []byte(ct)),
		putOp(recoveryConfigKey, mustJSON(shares)),
		putOp(sealConfigKey, mustJSON(seal.Config{Type: c.conf.Seal.Type(), Shares: 1, Threshold: 1})),
	})
	if err != nil {
		return err
	}
	c.logger.Info("seal migrated: the configured seal now protects the root key and the unseal keys are recovery keys", "from", seal.Shamir, "to", c.conf.Seal.Type())
	return nil
}

// migrateToShamir moves a store off its disabled seal: recoveryKey must be
// the stored recovery key, and becomes the root key, so the recovery key
// shares are the unseal key shares.
func (c *Core) migrateToShamir(ctx context.Context, recoveryKey []byte, shares seal.Config) error {
	if err := c.openWithRecoveryKey(ctx, recoveryKey); err != nil {
		return err
	}
	from := c.conf.Seal.Type()
	err := c.barrier.ChangeRootKey(ctx, recoveryKey, []storage.Op{
		putOp(sealConfigKey, mustJSON(seal.Config{Type: seal.Shamir, Shares: shares.Shares, Threshold: shares.Threshold})),
		deleteOp(recoveryConfigKey),
		deleteOp(sealedRootKeyKey),
	})
	if err != nil {
		return err
	}
	if err := c.barrier.Delete(ctx, recoveryKeyKey); err != nil {
		c.logger.Warn("deleting the former recovery key failed; it stays behind the barrier", "error", err)
	}
	c.logger.Info("seal migrated: the recovery keys are now the unseal keys", "from", from, "to", seal.Shamir)
	return nil
}
