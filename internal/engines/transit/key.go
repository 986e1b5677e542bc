package transit

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// keyType numbers a key's algorithm as OpenBao stores it in a key's JSON
// (and so in a backup): the values are part of the backup format.
// HashiCorp Vault uses the same numbers up to rsa-3072 and numbers hmac 11
// (see vaultHMACType).
type keyType int

const (
	typeAES256GCM96 keyType = iota
	typeECDSAP256
	typeED25519
	typeRSA2048
	typeRSA4096
	typeChaCha20Poly1305
	typeECDSAP384
	typeECDSAP521
	typeAES128GCM96
	typeRSA3072
	typeHMAC
)

var keyTypeNames = map[keyType]string{
	typeAES128GCM96:      "aes128-gcm96",
	typeAES256GCM96:      "aes256-gcm96",
	typeChaCha20Poly1305: "chacha20-poly1305",
	typeED25519:          "ed25519",
	typeECDSAP256:        "ecdsa-p256",
	typeECDSAP384:        "ecdsa-p384",
	typeECDSAP521:        "ecdsa-p521",
	typeRSA2048:          "rsa-2048",
	typeRSA3072:          "rsa-3072",
	typeRSA4096:          "rsa-4096",
	typeHMAC:             "hmac",
}

func (t keyType) String() string {
	if n, ok := keyTypeNames[t]; ok {
		return n
	}
	return "unknown-" + strconv.Itoa(int(t))
}

func parseKeyType(name string) (keyType, bool) {
	for t, n := range keyTypeNames {
		if n == name {
			return t, true
		}
	}
	return 0, false
}

func (t keyType) symmetric() bool {
	return t == typeAES128GCM96 || t == typeAES256GCM96 || t == typeChaCha20Poly1305
}
func (t keyType) rsa() bool   { return t == typeRSA2048 || t == typeRSA3072 || t == typeRSA4096 }
func (t keyType) ecdsa() bool { return t == typeECDSAP256 || t == typeECDSAP384 || t == typeECDSAP521 }

func (t keyType) encrypts() bool { return t.symmetric() || t.rsa() }
func (t keyType) signs() bool    { return t == typeED25519 || t.ecdsa() || t.rsa() }
func (t keyType) derives() bool  { return t.symmetric() || t == typeED25519 }

// symKeySize is the size in bytes of a symmetric encryption key.
func (t keyType) symKeySize() int {
	if t == typeAES128GCM96 {
		return 16
	}
	return 32
}

func (t keyType) curve() elliptic.Curve {
	switch t {
	case typeECDSAP384:
		return elliptic.P384()
	case typeECDSAP521:
		return elliptic.P521()
	}
	return elliptic.P256()
}

func (t keyType) rsaBits() int {
	switch t {
	case typeRSA3072:
		return 3072
	case typeRSA4096:
		return 4096
	}
	return 2048
}

// kdfHKDF is Vault's number for HKDF-SHA256 key derivation, the only KDF
// Arca writes. kdfCounter (NIST SP 800-108 counter mode with HMAC-SHA256)
// is what keys created by old Vault versions use.
const (
	kdfCounter = 0
	kdfHKDF    = 1
)

// convergentVersion is the scheme of convergent encryption Arca writes:
// the nonce is an HMAC-SHA256 of the plaintext under a key derived with the
// encryption key, and it is stored in front of the ciphertext.
const convergentVersion = 3

// hmacKeySizeMin and hmacKeySizeMax bound the key_size of an hmac key.
const (
	hmacKeySizeMin = 32
	hmacKeySizeMax = 512
)

// keyEntry is one version of a key, in the JSON shape Vault stores (and
// writes into backups), so that backups move between Arca and Vault.
type keyEntry struct {
	Key                []byte          `json:"key"`
	HMACKey            []byte          `json:"hmac_key"`
	CreationTime       time.Time       `json:"time"`
	ECX                *big.Int        `json:"ec_x"`
	ECY                *big.Int        `json:"ec_y"`
	ECD                *big.Int        `json:"ec_d"`
	RSAKey             *rsa.PrivateKey `json:"rsa_key"`
	FormattedPublicKey string          `json:"public_key"`
	ConvergentVersion  int             `json:"convergent_version"`
	CreationUnix       int64           `json:"creation_time"`
}

// backupInfo records when a key was backed up or restored.
type backupInfo struct {
	Time    time.Time `json:"time"`
	Version int       `json:"version"`
}

// policy is a named key with all its versions and settings, stored as JSON
// at policy/<name> in Vault's field names. A *policy reachable from the
// cache is never modified: a change copies it, persists the copy and then
// swaps the cache entry, so a request in flight keeps a consistent key.
type policy struct {
	Name                 string              `json:"name"`
	KeySize              int                 `json:"key_size,omitempty"`
	Keys                 map[string]keyEntry `json:"keys"`
	Derived              bool                `json:"derived"`
	KDF                  int                 `json:"kdf"`
	ConvergentEncryption bool                `json:"convergent_encryption"`
	Exportable           bool                `json:"exportable"`
	MinDecryptionVersion int                 `json:"min_decryption_version"`
	MinEncryptionVersion int                 `json:"min_encryption_version"`
	LatestVersion        int                 `json:"latest_version"`
	ArchiveVersion       int                 `json:"archive_version"`
	ArchiveMinVersion    int                 `json:"archive_min_version"`
	MinAvailableVersion  int                 `json:"min_available_version"`
	DeletionAllowed      bool                `json:"deletion_allowed"`
	ConvergentVersion    int                 `json:"convergent_version"`
	Type                 keyType             `json:"type"`
	BackupInfo           *backupInfo         `json:"backup_info"`
	RestoreInfo          *backupInfo         `json:"restore_info"`
	AllowPlaintextBackup bool                `json:"allow_plaintext_backup"`
	AutoRotatePeriod     time.Duration       `json:"auto_rotate_period"`

	// aeads holds a ready cipher per version of a non-derived symmetric
	// key, built once when the policy is loaded, so encrypting costs no key
	// schedule.
	aeads map[int]cipher.AEAD
}

// clone returns a copy that can be changed without touching p. Key
// entries are values whose byte slices are never modified in place.
func (p *policy) clone() *policy {
	c := *p
	c.Keys = make(map[string]keyEntry, len(p.Keys))
	for k, v := range p.Keys {
		c.Keys[k] = v
	}
	c.aeads = nil
	return &c
}

// decoded readies a policy decoded from JSON (storage or a backup): it
// checks every version's key material, so that no later operation meets a
// malformed key, and precomputes RSA keys. It runs before the policy is
// shared.
func (p *policy) decoded() error {
	if _, ok := keyTypeNames[p.Type]; !ok {
		return fmt.Errorf("key %q has unsupported type %d", p.Name, p.Type)
	}
	if p.Derived && !p.Type.derives() || p.ConvergentEncryption && (!p.Derived || !p.Type.symmetric()) {
		return fmt.Errorf("key %q has settings its type %s does not allow", p.Name, p.Type)
	}
	if p.LatestVersion < 1 {
		return fmt.Errorf("key %q has no versions", p.Name)
	}
	for v, e := range p.Keys {
		if ver, err := strconv.Atoi(v); err != nil || ver < 1 || ver > p.LatestVersion || strconv.Itoa(ver) != v {
			return fmt.Errorf("key %q has a malformed version %q", p.Name, v)
		}
		if err := p.checkEntry(e); err != nil {
			return fmt.Errorf("key %q version %s: %w", p.Name, v, err)
		}
		if e.RSAKey != nil {
			e.RSAKey.Precompute()
		}
	}
	return nil
}

// checkEntry checks that e holds the key material p's type needs.
func (p *policy) checkEntry(e keyEntry) error {
	switch t := p.Type; {
	case t.symmetric():
		if p.Derived && len(e.Key) == 0 || !p.Derived && len(e.Key) != t.symKeySize() {
			return fmt.Errorf("the %s key has the wrong size", t)
		}
	case t == typeHMAC:
		if len(e.Key) < 1 {
			return errors.New("the hmac key is empty")
		}
	case t == typeED25519:
		if len(e.Key) != ed25519.PrivateKeySize {
			return errors.New("the ed25519 key has the wrong size")
		}
	case t.ecdsa():
		if e.ECD == nil || e.ECX == nil || e.ECY == nil || e.ECD.Sign() <= 0 {
			return fmt.Errorf("the %s key is incomplete", t)
		}
		size := (t.curve().Params().BitSize + 7) / 8
		if e.ECD.BitLen() > size*8 {
			return fmt.Errorf("the %s key is out of range", t)
		}
		k, err := ecdsa.ParseRawPrivateKey(t.curve(), e.ECD.FillBytes(make([]byte, size)))
		if err != nil {
			return fmt.Errorf("the %s key is invalid: %w", t, err)
		}
		if k.X.Cmp(e.ECX) != 0 || k.Y.Cmp(e.ECY) != 0 {
			return fmt.Errorf("the %s public key does not match the private key", t)
		}
	case t.rsa():
		if e.RSAKey == nil {
			return fmt.Errorf("the %s key is missing", t)
		}
		if err := e.RSAKey.Validate(); err != nil {
			return fmt.Errorf("the %s key is invalid: %w", t, err)
		}
		if e.RSAKey.N.BitLen() != t.rsaBits() {
			return fmt.Errorf("the key is %d bits long, not %d", e.RSAKey.N.BitLen(), t.rsaBits())
		}
	}
	return nil
}

// prepare builds the ciphers of p's versions. It only reads the key
// material, which p may share with the policy it was cloned from.
func (p *policy) prepare() error {
	p.aeads = make(map[int]cipher.AEAD)
	for v, e := range p.Keys {
		ver, err := strconv.Atoi(v)
		if err != nil || ver < 1 {
			return fmt.Errorf("key %q has a malformed version %q", p.Name, v)
		}
		if p.Type.symmetric() && !p.Derived {
			a, err := newAEAD(p.Type, e.Key)
			if err != nil {
				return fmt.Errorf("key %q version %d: %w", p.Name, ver, err)
			}
			p.aeads[ver] = a
		}
	}
	return nil
}

func newAEAD(t keyType, key []byte) (cipher.AEAD, error) {
	if len(key) != t.symKeySize() {
		return nil, fmt.Errorf("the %s key is %d bytes long, want %d", t, len(key), t.symKeySize())
	}
	if t == typeChaCha20Poly1305 {
		return chacha20poly1305.New(key)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// versions returns the key's versions in ascending order.
func (p *policy) versions() []int {
	vs := make([]int, 0, len(p.Keys))
	for k := range p.Keys {
		if v, err := strconv.Atoi(k); err == nil {
			vs = append(vs, v)
		}
	}
	slices.Sort(vs)
	return vs
}

func (p *policy) entry(ver int) (keyEntry, bool) {
	e, ok := p.Keys[strconv.Itoa(ver)]
	return e, ok
}

// rotate adds a new version of freshly generated key material.
func (p *policy) rotate(now time.Time) error {
	e := keyEntry{CreationTime: now.UTC(), CreationUnix: now.Unix(), HMACKey: randomBytes(32)}
	switch t := p.Type; {
	case t.symmetric():
		e.Key = randomBytes(t.symKeySize())
	case t == typeHMAC:
		size := p.KeySize
		if size == 0 {
			size = 32
		}
		e.Key = randomBytes(size)
		e.HMACKey = e.Key
	case t.ecdsa():
		k, err := ecdsa.GenerateKey(t.curve(), rand.Reader)
		if err != nil {
			return fmt.Errorf("generating an %s key: %w", t, err)
		}
		e.ECD, e.ECX, e.ECY = k.D, k.X, k.Y
		if e.FormattedPublicKey, err = pemPublicKey(&k.PublicKey); err != nil {
			return err
		}
	case t == typeED25519:
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return fmt.Errorf("generating an ed25519 key: %w", err)
		}
		e.Key = priv
		e.FormattedPublicKey = base64.StdEncoding.EncodeToString(pub)
	case t.rsa():
		k, err := rsa.GenerateKey(rand.Reader, t.rsaBits())
		if err != nil {
			return fmt.Errorf("generating an %s key: %w", t, err)
		}
		e.RSAKey = k
	}
	if p.ConvergentEncryption {
		e.ConvergentVersion = convergentVersion
	}
	p.LatestVersion++
	if p.Keys == nil {
		p.Keys = map[string]keyEntry{}
	}
	p.Keys[strconv.Itoa(p.LatestVersion)] = e
	if p.MinDecryptionVersion == 0 {
		p.MinDecryptionVersion = 1
	}
	if p.MinAvailableVersion == 0 {
		p.MinAvailableVersion = 1
	}
	return nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails: crypto/rand panics rather than return short
	return b
}

func pemPublicKey(pub any) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encoding the public key: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// deriveKey derives n bytes of key from version ver's key and context, as
// Vault does for derived keys.
func (p *policy) deriveKey(e keyEntry, context []byte, n int) ([]byte, error) {
	if len(context) == 0 {
		return nil, errUser("missing 'context' for key derivation: key %q is derived, so every request must give a context", p.Name)
	}
	switch p.KDF {
	case kdfHKDF:
		if p.Type == typeED25519 {
			// The derived bytes seed the key pair, as Vault does by
			// handing ed25519.GenerateKey the HKDF stream.
			seed, err := hkdf.Key(sha256.New, e.Key, nil, string(context), ed25519.SeedSize)
			if err != nil {
				return nil, err
			}
			return ed25519.NewKeyFromSeed(seed), nil
		}
		return hkdf.Key(sha256.New, e.Key, nil, string(context), n)
	case kdfCounter:
		return counterKDF(e.Key, context, n)
	}
	return nil, fmt.Errorf("key %q uses an unknown key derivation function %d", p.Name, p.KDF)
}

// counterKDF is NIST SP 800-108 in counter mode with HMAC-SHA256, the
// derivation of keys made by Vault before HKDF. Vault asks it for 256
// bits, one block: HMAC(key, counter 0 (4 bytes, big endian) || context ||
// 256 (4 bytes, big endian)).
func counterKDF(key, context []byte, n int) ([]byte, error) {
	if n > sha256.Size {
		return nil, errUser("this key uses the legacy counter-mode derivation, which gives at most 32 bytes")
	}
	out := hmacSum(sha256.New, key, []byte{0, 0, 0, 0}, context, []byte{0, 0, 1, 0})
	return out[:n], nil
}

// signer returns version e's private key (derived from context for a
// derived ed25519 key).
func (p *policy) signer(e keyEntry, context []byte) (any, error) {
	switch t := p.Type; {
	case t.ecdsa():
		if e.ECD == nil {
			return nil, errUser("key %q has no private key for this version", p.Name)
		}
		return &ecdsa.PrivateKey{PublicKey: ecdsa.PublicKey{Curve: t.curve(), X: e.ECX, Y: e.ECY}, D: e.ECD}, nil
	case t == typeED25519:
		if p.Derived {
			k, err := p.deriveKey(e, context, ed25519.PrivateKeySize)
			if err != nil {
				return nil, err
			}
			return ed25519.PrivateKey(k), nil
		}
		if len(e.Key) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("key %q: the ed25519 key has the wrong size", p.Name)
		}
		return ed25519.PrivateKey(e.Key), nil
	case t.rsa():
		if e.RSAKey == nil {
			return nil, errUser("key %q has no private key for this version", p.Name)
		}
		return e.RSAKey, nil
	}
	return nil, errUser("key type %s does not support signing", p.Type)
}
