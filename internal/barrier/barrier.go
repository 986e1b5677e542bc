// Package barrier is the only door between the core and physical storage:
// every value passing through it is encrypted with AES-256-GCM under the
// active term of a versioned keyring, with the value's key as additional
// data, and the keyring itself is encrypted under the root key.
//
// The barrier counts the encryptions made under the active key and moves
// to a new term by itself when the count or the key's age reaches the
// limits of its RotationConfig, so no key nears the number of messages
// AES-GCM with random nonces can safely protect.
package barrier

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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

// Limits of the automatic rotation settings. A key encrypts at most
// MaxOperationsLimit values, 90% of the 2^32 messages NIST SP 800-38D allows
// one AES-GCM key with random nonces; the lower limits keep the keyring,
// which grows by one key per rotation, from growing without bound.
const (
	MaxOperationsLimit    = 3_865_470_566
	MinMaxOperations      = 1_000_000
	MinRotationInterval   = 24 * time.Hour
	rotationCheckEvery    = time.Minute
	encryptionReservation = 1 << 14
)

// RotationConfig says when the barrier rotates its key by itself: after
// MaxOperations encryptions, or when the active key is Interval old (zero:
// never by age). Disabled stops automatic rotation; counting goes on.
type RotationConfig struct {
	MaxOperations int64         `json:"max_operations"`
	Interval      time.Duration `json:"interval"`
	Disabled      bool          `json:"disabled"`
}

// defaultRotation rotates after MaxOperationsLimit encryptions.
var defaultRotation = RotationConfig{MaxOperations: MaxOperationsLimit}

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
	// Encryptions is, for the active term, a count the key has not yet
	// reached (see Barrier.reserved); for an older term, its final count.
	Encryptions uint64 `json:"encryptions,omitempty"`
}

type keyringRecord struct {
	ActiveTerm uint32          `json:"active_term"`
	Keys       []*termKey      `json:"keys"`
	Rotation   *RotationConfig `json:"rotation,omitempty"`
}

// Barrier implements storage.Transactional over a physical backend.
type Barrier struct {
	// Logger receives the failures of automatic rotation, which no caller
	// waits for; Clock is the time source of the rotation interval. Set
	// them before the first Unseal; nil means slog.Default and time.Now.
	Logger *slog.Logger
	Clock  func() time.Time

	phys storage.Backend

	mu       sync.RWMutex
	sealed   bool
	active   uint32
	aeads    map[uint32]cipher.AEAD
	keys     map[uint32]*termKey
	root     []byte
	rotation RotationConfig
	stop     chan struct{} // closed on Seal, to end the rotation watcher

	// encryptions counts encryptions under the active key. reserved is a
	// count stored in the keyring that encryptions has not passed: an
	// encryption that would pass it first stores a higher one. So the hot
	// path only touches two atomics, and a restart resumes from reserved,
	// never below the true count. reserveMu serialises those stores among
	// the encryptions that share mu's read lock.
	encryptions atomic.Uint64
	reserved    atomic.Uint64
	reserveMu   sync.Mutex
	rotating    atomic.Bool
	passive     atomic.Bool // a standby's barrier: no rotation of its own
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
	rc := defaultRotation
	kr := &keyringRecord{ActiveTerm: 1, Keys: []*termKey{{Term: 1, Value: k, InstallTime: b.now()}}, Rotation: &rc}
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
	kr, err := b.readKeyring(ctx, rootKey)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.sealed {
		kr.clear()
		return nil
	}
	b.install(kr)
	b.root = append([]byte(nil), rootKey...)
	b.sealed = false
	b.stop = make(chan struct{})
	go b.watchRotation(b.stop)
	return nil
}

// Reload reads the keyring again with the root key the barrier was
// unsealed with. A standby server calls it as it becomes active: the
// active server before it may have rotated the key or counted encryptions.
func (b *Barrier) Reload(ctx context.Context) error {
	b.mu.RLock()
	if b.sealed {
		b.mu.RUnlock()
		return ErrSealed
	}
	root := append([]byte(nil), b.root...)
	b.mu.RUnlock()
	defer clear(root)
	kr, err := b.readKeyring(ctx, root)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sealed {
		kr.clear()
		return ErrSealed
	}
	for _, k := range b.keys {
		clear(k.Value)
	}
	b.install(kr)
	return nil
}

// SetPassive stops (true) or resumes (false) the barrier's own key
// rotation. A standby server's barrier is passive: its copy of the keyring
// may be stale, and rotation belongs to the active server.
func (b *Barrier) SetPassive(passive bool) { b.passive.Store(passive) }

// loadedKeyring is a decrypted keyring ready to install.
type loadedKeyring struct {
	aeads  map[uint32]cipher.AEAD
	keys   map[uint32]*termKey
	active uint32
	rc     RotationConfig
}

func (kr *loadedKeyring) clear() {
	for _, k := range kr.keys {
		clear(k.Value)
	}
}

// install makes kr the barrier's keyring; b.mu is held.
func (b *Barrier) install(kr *loadedKeyring) {
	b.aeads, b.keys, b.active = kr.aeads, kr.keys, kr.active
	b.rotation = kr.rc
	mark := kr.keys[kr.active].Encryptions
	b.encryptions.Store(mark)
	b.reserved.Store(mark)
}

// readKeyring reads and decrypts the stored keyring with rootKey.
func (b *Barrier) readKeyring(ctx context.Context, rootKey []byte) (*loadedKeyring, error) {
	e, err := b.phys.Get(ctx, keyringKey)
	if err != nil {
		return nil, fmt.Errorf("reading the keyring: %w", err)
	}
	if e == nil {
		return nil, ErrNotInitialized
	}
	aead, err := newAEAD(rootKey)
	if err != nil {
		return nil, ErrBadRootKey
	}
	plain, err := open(func(uint32) cipher.AEAD { return aead }, keyringKey, e.Value)
	if err != nil {
		return nil, ErrBadRootKey
	}
	defer clear(plain)
	var kr keyringRecord
	if err := json.Unmarshal(plain, &kr); err != nil {
		return nil, fmt.Errorf("decoding the keyring: %w", err)
	}
	aeads := make(map[uint32]cipher.AEAD, len(kr.Keys))
	keys := make(map[uint32]*termKey, len(kr.Keys))
	for _, k := range kr.Keys {
		a, err := newAEAD(k.Value)
		if err != nil {
			return nil, fmt.Errorf("keyring term %d: %w", k.Term, err)
		}
		aeads[k.Term], keys[k.Term] = a, k
	}
	if aeads[kr.ActiveTerm] == nil {
		return nil, fmt.Errorf("the keyring has no key for its active term %d", kr.ActiveTerm)
	}
	rc := defaultRotation
	// Keyrings written before rotation settings existed have none; a limit
	// out of range would rotate on every write or never.
	if r := kr.Rotation; r != nil && r.MaxOperations > 0 && r.MaxOperations <= MaxOperationsLimit {
		rc = *r
	}
	return &loadedKeyring{aeads: aeads, keys: keys, active: kr.ActiveTerm, rc: rc}, nil
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
	if b.stop != nil {
		close(b.stop)
		b.stop = nil
	}
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
	return b.rotateLocked(ctx)
}

// ChangeRootKey stores the keyring encrypted under newRoot, in one physical
// transaction with ops (the seal's own records, which must change with it),
// and keeps newRoot for later keyring writes. Seal migration uses it.
func (b *Barrier) ChangeRootKey(ctx context.Context, newRoot []byte, ops []storage.Op) error {
	if len(newRoot) != 32 {
		return errors.New("the root key must be 32 bytes")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sealed {
		return ErrSealed
	}
	plain, err := json.Marshal(b.record())
	if err != nil {
		return err
	}
	defer clear(plain)
	aead, err := newAEAD(newRoot)
	if err != nil {
		return err
	}
	ct, err := seal(aead, 0, keyringKey, plain)
	if err != nil {
		return err
	}
	all := append([]storage.Op{{Kind: storage.OpPut, Entry: &storage.Entry{Key: keyringKey, Value: ct}}}, ops...)
	if err := b.phys.Transaction(ctx, all); err != nil {
		return fmt.Errorf("storing the keyring under the new root key: %w", err)
	}
	clear(b.root)
	b.root = append([]byte(nil), newRoot...)
	return nil
}

// IsRootKey reports, in constant time, whether key is the root key the
// barrier was unsealed with.
func (b *Barrier) IsRootKey(key []byte) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return !b.sealed && subtle.ConstantTimeCompare(b.root, key) == 1
}

// rotateLocked installs a new term; b.mu is held for writing.
func (b *Barrier) rotateLocked(ctx context.Context) (KeyInfo, error) {
	k, err := GenerateKey()
	if err != nil {
		return KeyInfo{}, err
	}
	a, err := newAEAD(k)
	if err != nil {
		return KeyInfo{}, err
	}
	// The new key starts with a reservation, so its first encryptions need
	// no keyring write of their own.
	next := &termKey{Term: b.active + 1, Value: k, InstallTime: b.now(), Encryptions: encryptionReservation}
	kr := b.record()
	for _, tk := range kr.Keys {
		if tk.Term == b.active {
			tk.Encryptions = b.encryptions.Load() // its final count
		}
	}
	kr.ActiveTerm = next.Term
	kr.Keys = append(kr.Keys, next)
	if err := b.persistKeyring(ctx, b.root, kr); err != nil {
		return KeyInfo{}, fmt.Errorf("storing the rotated keyring: %w", err)
	}
	b.keys[b.active].Encryptions = b.encryptions.Load()
	b.aeads[next.Term], b.keys[next.Term], b.active = a, next, next.Term
	b.encryptions.Store(0)
	b.reserved.Store(encryptionReservation)
	return KeyInfo{Term: next.Term, InstallTime: next.InstallTime}, nil
}

// record is the keyring as it should be stored now, with copies of the
// keys so the caller may change them; b.mu is held.
func (b *Barrier) record() *keyringRecord {
	rc := b.rotation
	kr := &keyringRecord{ActiveTerm: b.active, Rotation: &rc}
	for term := uint32(1); term <= b.active; term++ {
		if tk := b.keys[term]; tk != nil {
			c := *tk
			if term == b.active {
				c.Encryptions = b.reserved.Load()
			}
			kr.Keys = append(kr.Keys, &c)
		}
	}
	return kr
}

// reserve stores a reservation above n, the count an encryption is about
// to reach; b.mu is held for reading.
func (b *Barrier) reserve(ctx context.Context, n uint64) error {
	b.reserveMu.Lock()
	defer b.reserveMu.Unlock()
	if n <= b.reserved.Load() {
		return nil // another encryption reserved enough meanwhile
	}
	kr := b.record()
	mark := n + encryptionReservation
	kr.Keys[len(kr.Keys)-1].Encryptions = mark
	if err := b.persistKeyring(ctx, b.root, kr); err != nil {
		return fmt.Errorf("recording the key's encryption count: %w", err)
	}
	b.reserved.Store(mark)
	return nil
}

// RotationConfig returns the automatic rotation settings.
func (b *Barrier) RotationConfig() (RotationConfig, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.sealed {
		return RotationConfig{}, ErrSealed
	}
	return b.rotation, nil
}

// SetRotationConfig stores new automatic rotation settings. The API keeps
// them within Vault's limits; the barrier only needs them to make sense.
func (b *Barrier) SetRotationConfig(ctx context.Context, rc RotationConfig) error {
	if rc.MaxOperations <= 0 || rc.MaxOperations > MaxOperationsLimit {
		return fmt.Errorf("max_operations must be between 1 and %d", int64(MaxOperationsLimit))
	}
	if rc.Interval < 0 {
		return errors.New("interval must not be negative")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sealed {
		return ErrSealed
	}
	kr := b.record()
	kr.Rotation = &rc
	if err := b.persistKeyring(ctx, b.root, kr); err != nil {
		return fmt.Errorf("storing the rotation settings: %w", err)
	}
	b.rotation = rc
	return nil
}

// RotateIfDue rotates the key if the rotation settings call for it: the
// active key has made MaxOperations encryptions or is Interval old. It
// reports whether it rotated. Automatic rotation calls it after an
// encryption reaches the limit and once a minute for the interval.
func (b *Barrier) RotateIfDue(ctx context.Context) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sealed || !b.dueLocked(b.encryptions.Load(), true) {
		return false, nil
	}
	if _, err := b.rotateLocked(ctx); err != nil {
		return false, err
	}
	return true, nil
}

// dueLocked reports whether the settings call for a rotation after n
// encryptions; the key's age counts when byAge is set. b.mu is held.
func (b *Barrier) dueLocked(n uint64, byAge bool) bool {
	rc := b.rotation
	if rc.Disabled {
		return false
	}
	if n >= uint64(rc.MaxOperations) {
		return true
	}
	return byAge && rc.Interval > 0 && b.now().Sub(b.keys[b.active].InstallTime) >= rc.Interval
}

// autoRotate runs RotateIfDue for one caller at a time and logs a failure:
// the write that triggered it has succeeded, and the next one retries.
func (b *Barrier) autoRotate(ctx context.Context) {
	if b.passive.Load() {
		return
	}
	if !b.rotating.CompareAndSwap(false, true) {
		return
	}
	defer b.rotating.Store(false)
	rotated, err := b.RotateIfDue(context.WithoutCancel(ctx))
	switch {
	case err != nil:
		b.logger().Error("automatic rotation of the barrier key failed; it is retried", "error", err)
	case rotated:
		b.logger().Info("rotated the barrier key", "term", b.KeyStatus().Term)
	}
}

func (b *Barrier) watchRotation(stop <-chan struct{}) {
	t := time.NewTicker(rotationCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			b.autoRotate(context.Background())
		}
	}
}

func (b *Barrier) now() time.Time {
	if b.Clock != nil {
		return b.Clock().UTC()
	}
	return time.Now().UTC()
}

func (b *Barrier) logger() *slog.Logger {
	if b.Logger != nil {
		return b.Logger
	}
	return slog.Default()
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

// encrypt seals plain under the active key, and reports whether this
// encryption brought the key to its rotation limit.
func (b *Barrier) encrypt(ctx context.Context, key string, plain []byte) (ct []byte, rotate bool, err error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.sealed {
		return nil, false, ErrSealed
	}
	if err := b.checkKey(key); err != nil {
		return nil, false, err
	}
	n := b.encryptions.Add(1)
	if n > b.reserved.Load() {
		if err := b.reserve(ctx, n); err != nil {
			return nil, false, err
		}
	}
	if b.rotation.Disabled && n == uint64(b.rotation.MaxOperations) {
		b.logger().Warn("the barrier key reached max_operations, but automatic rotation is disabled; rotate it with sys/rotate",
			"term", b.active, "encryptions", n)
	}
	ct, err = seal(b.aeads[b.active], b.active, key, plain)
	return ct, err == nil && b.dueLocked(n, false), err
}

func (b *Barrier) Put(ctx context.Context, e *storage.Entry) error {
	ct, rotate, err := b.encrypt(ctx, e.Key, e.Value)
	if err != nil {
		return err
	}
	if err := b.phys.Put(ctx, &storage.Entry{Key: e.Key, Value: ct}); err != nil {
		return err
	}
	if rotate {
		b.autoRotate(ctx)
	}
	return nil
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
	rotate := false
	for i, op := range ops {
		if op.Kind == storage.OpDelete {
			if err := b.checkKey(op.Entry.Key); err != nil {
				return err
			}
			enc[i] = op
			continue
		}
		ct, due, err := b.encrypt(ctx, op.Entry.Key, op.Entry.Value)
		if err != nil {
			return err
		}
		rotate = rotate || due
		enc[i] = storage.Op{Kind: storage.OpPut, Entry: &storage.Entry{Key: op.Entry.Key, Value: ct}}
	}
	if b.Sealed() {
		return ErrSealed
	}
	if err := b.phys.Transaction(ctx, enc); err != nil {
		return err
	}
	if rotate {
		b.autoRotate(ctx)
	}
	return nil
}
