// Package seal holds what the seals need beyond the arithmetic: the seal
// configuration, the flow that gathers key shares until enough are in to
// recover a key, and the interface of the key services that protect the
// root key of an auto-unsealed server (internal/seal/transit).
package seal

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"

	"github.com/google/uuid"

	"github.com/arcasec/arca/internal/seal/shamir"
)

// Config is how a key was split: the root key on a Shamir-sealed store,
// the recovery key on an auto-unsealed one.
type Config struct {
	// Type is the seal that protects the root key: "" or "shamir", or the
	// Type of an Autoseal such as "transit".
	Type      string `json:"type,omitempty"`
	Shares    int    `json:"secret_shares"`
	Threshold int    `json:"secret_threshold"`
}

// Shamir is the seal type of a store unsealed with key shares.
const Shamir = "shamir"

// SealType is c.Type with "" read as Shamir.
func (c Config) SealType() string {
	if c.Type == "" {
		return Shamir
	}
	return c.Type
}

// Autoseal is a key service that protects the root key, so that a server
// unseals itself. Ciphertexts are the service's own text form.
type Autoseal interface {
	Type() string
	Encrypt(ctx context.Context, plaintext []byte) (string, error)
	Decrypt(ctx context.Context, ciphertext string) ([]byte, error)
}

// Validate checks a requested configuration the way Vault does.
func (c Config) Validate() error {
	switch {
	case c.Shares < 1:
		return errors.New("secret_shares must be at least 1")
	case c.Shares > 255:
		return errors.New("secret_shares must be at most 255")
	case c.Threshold < 1:
		return errors.New("secret_threshold must be at least 1")
	case c.Threshold > c.Shares:
		return errors.New("secret_threshold cannot be larger than secret_shares")
	case c.Shares > 1 && c.Threshold == 1:
		return errors.New("secret_threshold must be greater than one for multiple shares")
	case c.Shares == 1 && c.Threshold != 1:
		return errors.New("secret_threshold must be 1 with a single share")
	}
	return nil
}

// Unsealer collects key shares. It is safe for concurrent use.
type Unsealer struct {
	conf Config

	mu     sync.Mutex
	shares [][]byte
	nonce  string
}

// NewUnsealer starts an unseal flow for conf.
func NewUnsealer(conf Config) *Unsealer { return &Unsealer{conf: conf} }

// Add records one share. Once Threshold distinct shares are in, it combines
// them, resets, and returns the root key; before that it returns nil.
func (u *Unsealer) Add(share []byte) ([]byte, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(share) == 0 {
		return nil, errors.New("the unseal key is empty")
	}
	for _, s := range u.shares {
		if subtle.ConstantTimeCompare(s, share) == 1 {
			return nil, errors.New("this unseal key share was already provided")
		}
	}
	if u.nonce == "" {
		u.nonce = uuid.NewString()
	}
	u.shares = append(u.shares, append([]byte(nil), share...))
	if len(u.shares) < u.conf.Threshold {
		return nil, nil
	}
	defer u.resetLocked()
	if u.conf.Threshold == 1 {
		return append([]byte(nil), u.shares[0]...), nil
	}
	key, err := shamir.Combine(u.shares)
	if err != nil {
		return nil, fmt.Errorf("the unseal key shares do not combine: %w", err)
	}
	return key, nil
}

// Progress is how many shares are in.
func (u *Unsealer) Progress() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.shares)
}

// Nonce identifies the current attempt; "" when none is under way.
func (u *Unsealer) Nonce() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.nonce
}

// Reset discards the shares gathered so far.
func (u *Unsealer) Reset() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.resetLocked()
}

func (u *Unsealer) resetLocked() {
	for _, s := range u.shares {
		clear(s)
	}
	u.shares, u.nonce = nil, ""
}

// Threshold is how many shares recover the key.
func (u *Unsealer) Threshold() int { return u.conf.Threshold }
