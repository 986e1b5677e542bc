package core

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"fmt"

	"github.com/google/uuid"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/seal"
)

// Generating a root token (sys/generate-root): an operator starts an
// attempt with a one-time pad, a quorum of unseal key holders (recovery key
// holders on an auto-unsealed store) each give their share, and the new
// root token comes back XORed with the pad, so only the one who holds the
// pad can read it.

// RootOTPLength is the length of the one-time pad: that of a root token.
const RootOTPLength = len(tokenIDPrefixStr) + 24

// rootGeneration is an attempt under way.
type rootGeneration struct {
	nonce    string
	otp      string
	unsealer *seal.Unsealer
}

// GenerateRootStatus is what sys/generate-root/attempt reports.
type GenerateRootStatus struct {
	Started      bool
	Nonce        string
	Progress     int
	Required     int
	Complete     bool
	EncodedToken string // the root token XOR the pad, in unpadded base64, once complete
}

// requiredKeys is the key configuration that authorises a generation;
// c.stateLock is held for reading.
func (c *Core) requiredKeys(ctx context.Context) (seal.Config, error) {
	conf, err := c.loadSealConfig(ctx)
	if err != nil {
		return seal.Config{}, err
	}
	if conf == nil {
		return seal.Config{}, logical.BadRequest("server is not yet initialized")
	}
	return c.keyConfig(ctx, conf)
}

// GenerateRootStatus reports the attempt under way, if any.
func (c *Core) GenerateRootStatus(ctx context.Context) (*GenerateRootStatus, error) {
	c.stateLock.RLock()
	defer c.stateLock.RUnlock()
	if err := c.checkActive(); err != nil {
		return nil, err
	}
	keys, err := c.requiredKeys(ctx)
	if err != nil {
		return nil, err
	}
	c.genMu.Lock()
	defer c.genMu.Unlock()
	st := &GenerateRootStatus{Required: keys.Threshold}
	if g := c.genRoot; g != nil {
		st.Started, st.Nonce, st.Progress = true, g.nonce, g.unsealer.Progress()
	}
	return st, nil
}

// GenerateRootInit starts an attempt whose token will be encoded with otp,
// RootOTPLength base62 characters.
func (c *Core) GenerateRootInit(ctx context.Context, otp string) error {
	c.stateLock.RLock()
	defer c.stateLock.RUnlock()
	if err := c.checkActive(); err != nil {
		return err
	}
	if len(otp) != RootOTPLength {
		return logical.BadRequest("otp must be %d characters long, as the otp_length of sys/generate-root/attempt says; got %d", RootOTPLength, len(otp))
	}
	keys, err := c.requiredKeys(ctx)
	if err != nil {
		return err
	}
	if keys.Shares == 0 {
		return logical.BadRequest("this store has no recovery keys, so no quorum can authorise a root token")
	}
	c.genMu.Lock()
	defer c.genMu.Unlock()
	if c.genRoot != nil {
		return logical.BadRequest("root generation already in progress")
	}
	c.genRoot = &rootGeneration{nonce: uuid.NewString(), otp: otp, unsealer: seal.NewUnsealer(keys)}
	c.logger.Info("root token generation started")
	return nil
}

// GenerateRootCancel ends the attempt under way, if any.
func (c *Core) GenerateRootCancel() error {
	c.stateLock.RLock()
	defer c.stateLock.RUnlock()
	if err := c.checkActive(); err != nil {
		return err
	}
	c.cancelRootGeneration()
	return nil
}

func (c *Core) cancelRootGeneration() {
	c.genMu.Lock()
	defer c.genMu.Unlock()
	if c.genRoot != nil {
		c.genRoot.unsealer.Reset()
		c.genRoot = nil
	}
}

// GenerateRootUpdate adds one key share to the attempt with this nonce.
// With the last share, the combined key must be the root key (Shamir) or
// the recovery key (auto-unseal); then a root token is created and
// returned encoded, and the attempt ends.
func (c *Core) GenerateRootUpdate(ctx context.Context, share []byte, nonce string) (*GenerateRootStatus, error) {
	c.stateLock.RLock()
	defer c.stateLock.RUnlock()
	if err := c.checkActive(); err != nil {
		return nil, err
	}
	conf, err := c.loadSealConfig(ctx)
	if err != nil {
		return nil, err
	}
	c.genMu.Lock()
	defer c.genMu.Unlock()
	g := c.genRoot
	if g == nil {
		return nil, logical.BadRequest("no root generation in progress")
	}
	if subtle.ConstantTimeCompare([]byte(nonce), []byte(g.nonce)) != 1 {
		return nil, logical.BadRequest("incorrect nonce: it must be the nonce of the root generation in progress")
	}
	key, err := g.unsealer.Add(share)
	if err != nil {
		return nil, logical.BadRequest("%v", err)
	}
	st := &GenerateRootStatus{Started: true, Nonce: g.nonce, Progress: g.unsealer.Progress(), Required: g.unsealer.Threshold()}
	if key == nil {
		return st, nil
	}
	defer clear(key)
	st.Progress = st.Required
	if err := c.checkQuorumKey(ctx, conf, key); err != nil {
		return nil, err
	}
	token, err := c.tokens.createRoot(ctx)
	if err != nil {
		return nil, fmt.Errorf("creating the root token: %w", err)
	}
	st.Complete = true
	st.EncodedToken = encodeRootToken(token, g.otp)
	c.genRoot = nil
	c.logger.Info("root token generation completed")
	return st, nil
}

// checkQuorumKey checks that key, combined from a quorum's shares, is the
// root key of a Shamir store or the recovery key of an auto-unsealed one.
func (c *Core) checkQuorumKey(ctx context.Context, conf *seal.Config, key []byte) error {
	if conf.SealType() == seal.Shamir {
		if !c.barrier.IsRootKey(key) {
			return logical.BadRequest("the unseal key shares do not combine into this server's root key")
		}
		return nil
	}
	e, err := c.barrier.Get(ctx, recoveryKeyKey)
	if err != nil {
		return fmt.Errorf("reading the recovery key: %w", err)
	}
	if e == nil || subtle.ConstantTimeCompare(e.Value, key) != 1 {
		return logical.BadRequest("the recovery key shares do not combine into this server's recovery key")
	}
	return nil
}

// encodeRootToken XORs token with the pad, both of RootOTPLength bytes.
func encodeRootToken(token, otp string) string {
	out := make([]byte, len(token))
	for i := range out {
		out[i] = token[i] ^ otp[i]
	}
	return base64.RawStdEncoding.EncodeToString(out)
}

// NewRootOTP returns a fresh one-time pad for a root token generation.
func NewRootOTP() string { return randomBase62(RootOTPLength) }
