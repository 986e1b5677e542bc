package transit

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"hash"
	"math/big"
	"strconv"
	"strings"

	_ "crypto/sha1" // registers the hashes hash_algorithm names
	_ "crypto/sha3"
	_ "crypto/sha512"

	"github.com/arcasec/arca/internal/logical"
)

// versionPrefix starts every ciphertext, signature and HMAC Transit
// writes: "vault:v<N>:" followed by base64.
const versionPrefix = "vault:v"

// errUser is a 400 that names what is wrong with the request.
func errUser(format string, args ...any) error { return logical.BadRequest(format, args...) }

// errTooOld is Vault's message for a version below min_decryption_version.
const errTooOld = "ciphertext or signature version is disallowed by policy (too old)"

// splitVersioned splits "vault:v<N>:<payload>" into N and the payload.
// what names the value in errors ("ciphertext", "signature", "hmac").
func splitVersioned(what, s string) (int, string, error) {
	rest, ok := strings.CutPrefix(s, versionPrefix)
	if !ok {
		return 0, "", errUser("invalid %s: it must start with %q", what, versionPrefix+"<version>:")
	}
	num, payload, ok := strings.Cut(rest, ":")
	if !ok {
		return 0, "", errUser("invalid %s: no ':' after the key version", what)
	}
	ver, err := strconv.Atoi(num)
	if err != nil || ver < 0 || num == "" || num[0] == '+' || num[0] == '-' {
		return 0, "", errUser("invalid %s: the key version %q is not a number", what, num)
	}
	if ver == 0 { // the first Vault versions numbered keys from 0
		ver = 1
	}
	return ver, payload, nil
}

// parseCiphertext decodes "vault:v<N>:<base64>" into N and the raw bytes.
func parseCiphertext(s string) (int, []byte, error) {
	ver, payload, err := splitVersioned("ciphertext", s)
	if err != nil {
		return 0, nil, err
	}
	raw, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		return 0, nil, errUser("invalid ciphertext: the part after the version is not valid base64")
	}
	return ver, raw, nil
}

func formatVersioned(ver int, payload string) string {
	return versionPrefix + strconv.Itoa(ver) + ":" + payload
}

// encryptionVersion resolves a requested key version (0 is the latest) for
// encrypting, signing or computing an HMAC.
func (p *policy) encryptionVersion(ver int) (int, keyEntry, error) {
	switch {
	case ver == 0:
		ver = p.LatestVersion
	case ver < 0:
		return 0, keyEntry{}, errUser("key_version must not be negative")
	case ver > p.LatestVersion:
		return 0, keyEntry{}, errUser("key_version %d is higher than the latest version of key %q (%d)", ver, p.Name, p.LatestVersion)
	case ver < p.MinEncryptionVersion:
		return 0, keyEntry{}, errUser("key_version %d is below the key's min_encryption_version (%d)", ver, p.MinEncryptionVersion)
	}
	e, ok := p.entry(ver)
	if !ok {
		return 0, keyEntry{}, errUser("version %d of key %q has been trimmed", ver, p.Name)
	}
	return ver, e, nil
}

// decryptionEntry checks that version ver may decrypt or verify.
func (p *policy) decryptionEntry(ver int) (keyEntry, error) {
	if ver > p.LatestVersion {
		return keyEntry{}, errUser("invalid ciphertext: version %d is newer than the latest version of key %q (%d)", ver, p.Name, p.LatestVersion)
	}
	if ver < p.MinDecryptionVersion {
		return keyEntry{}, errUser(errTooOld)
	}
	e, ok := p.entry(ver)
	if !ok {
		return keyEntry{}, errUser("version %d of key %q has been trimmed", ver, p.Name)
	}
	return e, nil
}

// checkContext refuses a context for a key that is not derived: Vault
// ignores it silently, which hides a caller's mistake.
func (p *policy) checkContext(context []byte) error {
	if len(context) > 0 && !p.Derived {
		return errUser("context was given but key %q is not derived (create it with derived=true to use a context)", p.Name)
	}
	return nil
}

// encrypt encrypts plaintext with version ver (0: the latest) and returns
// the ciphertext string and the version used.
func (p *policy) encrypt(ver int, context, plaintext, aad []byte) (string, int, error) {
	if !p.Type.encrypts() {
		return "", 0, errUser("key type %s does not support encryption", p.Type)
	}
	if err := p.checkContext(context); err != nil {
		return "", 0, err
	}
	ver, e, err := p.encryptionVersion(ver)
	if err != nil {
		return "", 0, err
	}
	var out []byte
	switch {
	case p.Type.rsa():
		if len(aad) > 0 {
			return "", 0, errUser("associated_data is not supported by key type %s", p.Type)
		}
		out, err = rsa.EncryptOAEP(sha256.New(), rand.Reader, &e.RSAKey.PublicKey, plaintext, nil)
		if err != nil {
			return "", 0, errUser("the plaintext cannot be encrypted with %s: %v", p.Type, err)
		}
	case p.Derived:
		size := p.Type.symKeySize()
		n := size
		if p.ConvergentEncryption {
			n += sha256.Size // the nonce key follows the encryption key
		}
		key, err := p.deriveKey(e, context, n)
		if err != nil {
			return "", 0, err
		}
		aead, err := newAEAD(p.Type, key[:size])
		if err != nil {
			return "", 0, err
		}
		nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
		if p.ConvergentEncryption {
			if v := p.convergentVersionOf(e); v != convergentVersion {
				return "", 0, errUser("version %d of key %q uses convergent encryption version %d, which Arca does not support", ver, p.Name, v)
			}
			copy(nonce, hmacSum(sha256.New, key[size:], plaintext))
		} else {
			rand.Read(nonce)
		}
		out = aead.Seal(nonce, nonce, plaintext, aad)
	default:
		aead := p.aeads[ver]
		nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
		rand.Read(nonce)
		out = aead.Seal(nonce, nonce, plaintext, aad)
	}
	return formatVersioned(ver, base64.StdEncoding.EncodeToString(out)), ver, nil
}

// decrypt decrypts a "vault:v<N>:..." ciphertext and returns the plaintext
// and the version that encrypted it.
func (p *policy) decrypt(ciphertext string, context, aad []byte) ([]byte, int, error) {
	if !p.Type.encrypts() {
		return nil, 0, errUser("key type %s does not support decryption", p.Type)
	}
	if err := p.checkContext(context); err != nil {
		return nil, 0, err
	}
	ver, raw, err := parseCiphertext(ciphertext)
	if err != nil {
		return nil, 0, err
	}
	e, err := p.decryptionEntry(ver)
	if err != nil {
		return nil, 0, err
	}
	if p.Type.rsa() {
		if len(aad) > 0 {
			return nil, 0, errUser("associated_data is not supported by key type %s", p.Type)
		}
		plain, err := rsa.DecryptOAEP(sha256.New(), nil, e.RSAKey, raw, nil)
		if err != nil {
			return nil, 0, errUser("invalid ciphertext: it does not decrypt with version %d of key %q", ver, p.Name)
		}
		return plain, ver, nil
	}
	aead := p.aeads[ver]
	if p.Derived {
		key, err := p.deriveKey(e, context, p.Type.symKeySize())
		if err != nil {
			return nil, 0, err
		}
		if aead, err = newAEAD(p.Type, key); err != nil {
			return nil, 0, err
		}
	}
	if len(raw) < aead.NonceSize()+aead.Overhead() {
		return nil, 0, errUser("invalid ciphertext: it is too short")
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], aad)
	if err != nil {
		return nil, 0, errUser("invalid ciphertext: message authentication failed (a wrong context or associated_data, or the ciphertext was altered)")
	}
	return plain, ver, nil
}

// convergentVersionOf is the convergent scheme of version e: its own, or
// the key's for entries written before versions recorded theirs.
func (p *policy) convergentVersionOf(e keyEntry) int {
	if e.ConvergentVersion != 0 {
		return e.ConvergentVersion
	}
	if p.ConvergentVersion > 0 {
		return p.ConvergentVersion
	}
	return 1
}

func hmacSum(h func() hash.Hash, key []byte, parts ...[]byte) []byte {
	m := hmac.New(h, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// hashes are the hash_algorithm names Vault accepts. "none" (hash 0) is
// only for prehashed pkcs1v15 input.
var hashes = map[string]crypto.Hash{
	"sha1":     crypto.SHA1,
	"sha2-224": crypto.SHA224,
	"sha2-256": crypto.SHA256,
	"sha2-384": crypto.SHA384,
	"sha2-512": crypto.SHA512,
	"sha3-224": crypto.SHA3_224,
	"sha3-256": crypto.SHA3_256,
	"sha3-384": crypto.SHA3_384,
	"sha3-512": crypto.SHA3_512,
	"none":     0,
}

// signOptions are a sign or verify request's choices.
type signOptions struct {
	hash       crypto.Hash
	prehashed  bool
	algorithm  string // pss or pkcs1v15, for RSA
	jws        bool   // marshaling_algorithm=jws
	saltLength int
}

// digest hashes input as the key type and options ask; ed25519 signs the
// message itself.
func (p *policy) digest(input []byte, o signOptions) []byte {
	if p.Type == typeED25519 || o.prehashed || o.hash == 0 {
		return input
	}
	h := o.hash.New()
	h.Write(input)
	return h.Sum(nil)
}

func (o signOptions) encode(sig []byte) string {
	if o.jws {
		return base64.RawURLEncoding.EncodeToString(sig)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// sign signs input and returns the signature string, the version used and,
// for a derived ed25519 key, the derived public key.
func (p *policy) sign(ver int, context, input []byte, o signOptions) (string, int, []byte, error) {
	if !p.Type.signs() {
		return "", 0, nil, errUser("key type %s does not support signing", p.Type)
	}
	if err := p.checkContext(context); err != nil {
		return "", 0, nil, err
	}
	ver, e, err := p.encryptionVersion(ver)
	if err != nil {
		return "", 0, nil, err
	}
	key, err := p.signer(e, context)
	if err != nil {
		return "", 0, nil, err
	}
	digest := p.digest(input, o)
	var sig, pub []byte
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if o.jws {
			r, s, err := ecdsa.Sign(rand.Reader, k, digest)
			if err != nil {
				return "", 0, nil, err
			}
			size := (k.Curve.Params().BitSize + 7) / 8
			sig = make([]byte, 2*size)
			r.FillBytes(sig[:size])
			s.FillBytes(sig[size:])
		} else if sig, err = ecdsa.SignASN1(rand.Reader, k, digest); err != nil {
			return "", 0, nil, err
		}
	case ed25519.PrivateKey:
		sig = ed25519.Sign(k, digest)
		if p.Derived {
			pub = k.Public().(ed25519.PublicKey)
		}
	case *rsa.PrivateKey:
		switch o.algorithm {
		case "pss":
			sig, err = rsa.SignPSS(rand.Reader, k, o.hash, digest, &rsa.PSSOptions{SaltLength: o.saltLength})
		case "pkcs1v15":
			sig, err = rsa.SignPKCS1v15(nil, k, o.hash, digest)
		}
		if err != nil {
			return "", 0, nil, errUser("cannot sign with %s: %v", p.Type, err)
		}
	}
	return formatVersioned(ver, o.encode(sig)), ver, pub, nil
}

// verify reports whether signature is a valid signature of input.
func (p *policy) verify(context, input []byte, signature string, o signOptions) (bool, error) {
	if !p.Type.signs() {
		return false, errUser("key type %s does not support verification", p.Type)
	}
	if err := p.checkContext(context); err != nil {
		return false, err
	}
	ver, payload, err := splitVersioned("signature", signature)
	if err != nil {
		return false, err
	}
	e, err := p.decryptionEntry(ver)
	if err != nil {
		return false, err
	}
	enc := base64.StdEncoding
	if o.jws {
		enc = base64.RawURLEncoding
	}
	sig, err := enc.DecodeString(payload)
	if err != nil {
		return false, errUser("invalid signature: the part after the version is not valid base64 for marshaling_algorithm %s", map[bool]string{true: "jws", false: "asn1"}[o.jws])
	}
	key, err := p.signer(e, context)
	if err != nil {
		return false, err
	}
	digest := p.digest(input, o)
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if !o.jws {
			return ecdsa.VerifyASN1(&k.PublicKey, digest, sig), nil
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return false, nil
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		return ecdsa.Verify(&k.PublicKey, digest, r, s), nil
	case ed25519.PrivateKey:
		return ed25519.Verify(k.Public().(ed25519.PublicKey), digest, sig), nil
	case *rsa.PrivateKey:
		switch o.algorithm {
		case "pss":
			return rsa.VerifyPSS(&k.PublicKey, o.hash, digest, sig, &rsa.PSSOptions{SaltLength: o.saltLength}) == nil, nil
		case "pkcs1v15":
			return rsa.VerifyPKCS1v15(&k.PublicKey, o.hash, digest, sig) == nil, nil
		}
	}
	return false, errors.New("transit: unreachable key kind")
}

// hmacKey returns the HMAC key of version e.
func (p *policy) hmacKey(e keyEntry) ([]byte, error) {
	if p.Type == typeHMAC {
		return e.Key, nil
	}
	if len(e.HMACKey) == 0 {
		return nil, errUser("key %q has no HMAC key for this version", p.Name)
	}
	return e.HMACKey, nil
}

// hmac computes the HMAC of input with version ver (0: the latest).
func (p *policy) hmac(ver int, h crypto.Hash, input []byte) (string, int, error) {
	ver, e, err := p.encryptionVersion(ver)
	if err != nil {
		return "", 0, err
	}
	key, err := p.hmacKey(e)
	if err != nil {
		return "", 0, err
	}
	return formatVersioned(ver, base64.StdEncoding.EncodeToString(hmacSum(h.New, key, input))), ver, nil
}

// verifyHMAC reports whether mac is the HMAC of input.
func (p *policy) verifyHMAC(h crypto.Hash, input []byte, mac string) (bool, error) {
	ver, payload, err := splitVersioned("hmac", mac)
	if err != nil {
		return false, err
	}
	e, err := p.decryptionEntry(ver)
	if err != nil {
		return false, err
	}
	got, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		return false, errUser("invalid hmac: the part after the version is not valid base64")
	}
	key, err := p.hmacKey(e)
	if err != nil {
		return false, err
	}
	return hmac.Equal(got, hmacSum(h.New, key, input)), nil
}
