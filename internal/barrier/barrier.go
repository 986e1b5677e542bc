// Package barrier is the only door between the core and physical storage:
// every value passing through it is encrypted with AES-256-GCM under the
// active term of a versioned keyring, with the value's key as additional
// data, and the keyring itself is encrypted under the root key.
package barrier

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/arcasec/arca/internal/storage"
)

// keyringKey is where the keyring is stored, encrypted under the root key.
// The core/ prefix is reserved for the core.
const keyringKey = "core/keyring"

const (
	formatVersion = 1
	headerLen     = 1 + 4 // version byte, term
	nonceLen      = 12
)

var (
	// ErrSealed is returned by every storage operation while sealed.
	ErrSealed = errors.New("Vault is sealed")
	// ErrBadRootKey means the root key offered does not open the keyring.
	ErrBadRootKey = errors.New("the root key does not decrypt the keyring")
	// ErrNotInitialized means there is no keyring in storage yet.
	ErrNotInitialized = errors.New("the barrier is not initialized")
)

// KeyInfo describes the active encryption key.
type KeyInfo struct {
	Term        uint32
	InstallTime time.Time
	Encryptions uint64
}

type termKey struct {
	Term        uint32    `json:"term"`
	Value       []byte    `json:"value"`
	InstallTime time.Time `json:"install_time"`
}

type keyringRecord struct {
	ActiveTerm uint32     `json:"active_term"`
	Keys       []*termKey `json:"keys"`
}

// Barrier implements storage.Transactional over a physical backend.
type Barrier struct {
	phys storage.Backend

	mu     sync.RWMutex
	sealed bool
	active uint32
	aeads  map[uint32]cipher.AEAD
	keys   map[uint32]*termKey
	root   []byte

	encryptions atomic.Uint64
}

var _ storage.Transactional = (*Barrier)(nil)

// New returns a sealed barrier over phys.
func New(phys storage.Backend) *Barrier { return &Barrier{phys: phys, sealed: true} }

// GenerateKey returns a new 256-bit key from crypto/rand.
func GenerateKey() ([]byte, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("reading randomness: %w", err)
	}
	return k, nil
}

// Initialized reports whether a keyring exists.
func (b *Barrier) Initialized(ctx context.Context) (bool, error) {
	e, err := b.phys.Get(ctx, keyringKey)
	return e != nil, err
}

// Initialize creates a keyring with one term, encrypted under rootKey. The
// barrier stays sealed.
func (b *Barrier) Initialize(ctx context.Context, rootKey []byte) error {
	if len(rootKey) != 32 {
		return errors.New("the root key must be 32 bytes")
	}
	if ok, err := b.Initialized(ctx); err != nil {
		return err
	} else if ok {
		return errors.New("the barrier is already initialized")
	}
	k, err := GenerateKey()
	if err != nil {
		return err
	}
	kr := &keyringRecord{ActiveTerm: 1, Keys: []*termKey{{Term: 1, Value: k, InstallTime: time.Now().UTC()}}}
	return b.persistKeyring(ctx, rootKey, kr)
}

func (b *Barrier) persistKeyring(ctx context.Context, rootKey []byte, kr *keyringRecord) error {
	plain, err := json.Marshal(kr)
	if err != nil {
		return err
	}
	defer clear(plain)
	aead, err := newAEAD(rootKey)
	if err != nil {
		return err
	}
	ct, err := seal(aead, 0, keyringKey, plain)
	if err != nil {
		return err
	}
	return b.phys.Put(ctx, &storage.Entry{Key: keyringKey, Value: ct})
}

// Unseal opens the keyring with rootKey.
func (b *Barrier) Unseal(ctx context.Context, rootKey []byte) error {
	e, err := b.phys.Get(ctx, keyringKey)
	if err != nil {
		return fmt.Errorf("reading the keyring: %w", err)
	}
	if e == nil {
		return ErrNotInitialized
	}
	aead, err := newAEAD(rootKey)
	if err != nil {
		return ErrBadRootKey
	}
	plain, err := open(func(uint32) cipher.AEAD { return aead }, keyringKey, e.Value)
	if err != nil {
		return ErrBadRootKey
	}
	defer clear(plain)
	var kr keyringRecord
	if err := json.Unmarshal(plain, &kr); err != nil {
		return fmt.Errorf("decoding the keyring: %w", err)
	}
	aeads := make(map[uint32]cipher.AEAD, len(kr.Keys))
	keys := make(map[uint32]*termKey, len(kr.Keys))
	for _, k := range kr.Keys {
		a, err := newAEAD(k.Value)
		if err != nil {
			return fmt.Errorf("keyring term %d: %w", k.Term, err)
		}
		aeads[k.Term], keys[k.Term] = a, k
	}
	if aeads[kr.ActiveTerm] == nil {
		return fmt.Errorf("the keyring has no key for its active term %d", kr.ActiveTerm)
	}
	b.mu.Lock()
	b.aeads, b.keys, b.active = aeads, keys, kr.ActiveTerm
	b.root = append([]byte(nil), rootKey...)
	b.sealed = false
	b.mu.Unlock()
	return nil
}

// Seal forgets every key.
func (b *Barrier) Seal() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, k := range b.keys {
		clear(k.Value)
	}
	clear(b.root)
	b.aeads, b.keys, b.root, b.sealed = nil, nil, nil, true
}

// Sealed reports whether the barrier is sealed.
func (b *Barrier) Sealed() bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.sealed
}

// Rotate installs a new key term; older terms still decrypt.
func (b *Barrier) Rotate(ctx context.Context) (KeyInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sealed {
		return KeyInfo{}, ErrSealed
	}
	k, err := GenerateKey()
	if err != nil {
		return KeyInfo{}, err
	}
	next := &termKey{Term: b.active + 1, Value: k, InstallTime: time.Now().UTC()}
	kr := &keyringRecord{ActiveTerm: next.Term}
	for _, tk := range b.keys {
		kr.Keys = append(kr.Keys, tk)
	}
	kr.Keys = append(kr.Keys, next)
	if err := b.persistKeyring(ctx, b.root, kr); err != nil {
		return KeyInfo{}, fmt.Errorf("storing the rotated keyring: %w", err)
	}
	a, err := newAEAD(k)
	if err != nil {
		return KeyInfo{}, err
	}
	b.aeads[next.Term], b.keys[next.Term], b.active = a, next, next.Term
	b.encryptions.Store(0)
	return KeyInfo{Term: next.Term, InstallTime: next.InstallTime}, nil
}

// KeyStatus describes the active key.
func (b *Barrier) KeyStatus() KeyInfo {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.sealed {
		return KeyInfo{}
	}
	return KeyInfo{Term: b.active, InstallTime: b.keys[b.active].InstallTime, Encryptions: b.encryptions.Load()}
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// seal encrypts plain as [version][term][nonce][ciphertext||tag] with key as
// additional data.
func seal(aead cipher.AEAD, term uint32, key string, plain []byte) ([]byte, error) {
	out := make([]byte, headerLen+nonceLen, headerLen+nonceLen+len(plain)+aead.Overhead())
	out[0] = formatVersion
	binary.BigEndian.PutUint32(out[1:5], term)
	if _, err := rand.Read(out[headerLen:]); err != nil {
		return nil, fmt.Errorf("reading randomness: %w", err)
	}
	return aead.Seal(out, out[headerLen:headerLen+nonceLen], plain, []byte(key)), nil
}

// open decrypts a value stored at key; aeadFor finds the key of a term.
func open(aeadFor func(uint32) cipher.AEAD, key string, ct []byte) ([]byte, error) {
	if len(ct) < headerLen+nonceLen+16 {
		return nil, fmt.Errorf("the stored value at %q is too short to be encrypted data", key)
	}
	if ct[0] != formatVersion {
		return nil, fmt.Errorf("the stored value at %q has unknown format version %d", key, ct[0])
	}
	term := binary.BigEndian.Uint32(ct[1:5])
	aead := aeadFor(term)
	if aead == nil {
		return nil, fmt.Errorf("the stored value at %q uses key term %d, which the keyring does not hold", key, term)
	}
	plain, err := aead.Open(nil, ct[headerLen:headerLen+nonceLen], ct[headerLen+nonceLen:], []byte(key))
	if err != nil {
		return nil, fmt.Errorf("the stored value at %q failed authentication: it was altered or moved", key)
	}
	return plain, nil
}

// Decrypt decrypts a stored value with the keyring; exposed for fuzzing
// the stored format.
func (b *Barrier) decrypt(key string, ct []byte) ([]byte, error) {
	return open(b.aeadFor, key, ct)
}

func (b *Barrier) aeadFor(term uint32) cipher.AEAD { return b.aeads[term] }

func (b *Barrier) checkKey(key string) error {
	if strings.HasPrefix(key, "core/keyring") {
		return fmt.Errorf("the key %q is reserved", key)
	}
	return nil
}

func (b *Barrier) Get(ctx context.Context, key string) (*storage.Entry, error) {
	b.mu.RLock()
	sealed := b.sealed
	b.mu.RUnlock()
	if sealed {
		return nil, ErrSealed
	}
	e, err := b.phys.Get(ctx, key)
	if err != nil || e == nil {
		return nil, err
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.sealed {
		return nil, ErrSealed
	}
	plain, err := b.decrypt(key, e.Value)
	if err != nil {
		return nil, err
	}
	return &storage.Entry{Key: key, Value: plain}, nil
}

func (b *Barrier) encrypt(key string, plain []byte) ([]byte, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.sealed {
		return nil, ErrSealed
	}
	if err := b.checkKey(key); err != nil {
		return nil, err
	}
	b.encryptions.Add(1)
	return seal(b.aeads[b.active], b.active, key, plain)
}

func (b *Barrier) Put(ctx context.Context, e *storage.Entry) error {
	ct, err := b.encrypt(e.Key, e.Value)
	if err != nil {
		return err
	}
	return b.phys.Put(ctx, &storage.Entry{Key: e.Key, Value: ct})
}

func (b *Barrier) Delete(ctx context.Context, key string) error {
	if b.Sealed() {
		return ErrSealed
	}
	if err := b.checkKey(key); err != nil {
		return err
	}
	return b.phys.Delete(ctx, key)
}

func (b *Barrier) List(ctx context.Context, prefix string) ([]string, error) {
	if b.Sealed() {
		return nil, ErrSealed
	}
	return b.phys.List(ctx, prefix)
}

// Transaction encrypts every put and applies the ops in one physical
// transaction.
func (b *Barrier) Transaction(ctx context.Context, ops []storage.Op) error {
	enc := make([]storage.Op, len(ops))
	for i, op := range ops {
		if op.Kind == storage.OpDelete {
			if err := b.checkKey(op.Entry.Key); err != nil {
				return err
			}
			enc[i] = op
			continue
		}
		ct, err := b.encrypt(op.Entry.Key, op.Entry.Value)
		if err != nil {
			return err
		}
		enc[i] = storage.Op{Kind: storage.OpPut, Entry: &storage.Entry{Key: op.Entry.Key, Value: ct}}
	}
	if b.Sealed() {
		return ErrSealed
	}
	return b.phys.Transaction(ctx, enc)
}
