package audit

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"hash"
	"sync"
	"time"
)

// SaltSize is the length of a device's HMAC key.
const SaltSize = 32

// NewSalt returns a fresh random salt.
func NewSalt() ([]byte, error) {
	s := make([]byte, SaltSize)
	if _, err := rand.Read(s); err != nil {
		return nil, err
	}
	return s, nil
}

// HashPrefix starts every HMAC'd value.
const HashPrefix = "hmac-sha256:"

// Hasher computes a device's HMACs. It is safe for concurrent use.
type Hasher struct {
	pool sync.Pool
}

// NewHasher returns a Hasher keyed by salt.
func NewHasher(salt []byte) *Hasher {
	key := append([]byte(nil), salt...)
	return &Hasher{pool: sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}}
}

// Hash returns "hmac-sha256:" and the hex HMAC-SHA256 of value.
func (h *Hasher) Hash(value string) string {
	m := h.pool.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(value))
	var sum [sha256.Size]byte
	out := make([]byte, len(HashPrefix)+2*sha256.Size)
	copy(out, HashPrefix)
	hex.Encode(out[len(HashPrefix):], m.Sum(sum[:0]))
	h.pool.Put(m)
	return string(out)
}

// hashValue returns a copy of v with every string in it HMAC'd. Numbers
// that arrived as JSON text (json.Number) are HMAC'd too, since a PIN is a
// secret; numbers, booleans and times a backend produced are kept. A value of
// any other type goes through JSON first, so nothing of an unknown shape
// reaches the log unhashed.
func (h *Hasher) hashValue(v any) any {
	switch v := v.(type) {
	case nil, bool, int, int64, int32, uint, uint64, uint32, float64, float32, time.Duration:
		return v
	case string:
		return h.Hash(v)
	case json.Number:
		return h.Hash(string(v))
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	case map[string]any:
		return h.hashMap(v)
	case map[string]string:
		out := make(map[string]any, len(v))
		for k, s := range v {
			out[k] = h.Hash(s)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = h.hashValue(x)
		}
		return out
	case []string:
		out := make([]any, len(v))
		for i, s := range v {
			out[i] = h.Hash(s)
		}
		return out
	case []byte:
		return h.Hash(string(v))
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return h.Hash("<unencodable>")
	}
	var generic any
	if err := json.Unmarshal(raw, &generic); err != nil {
		return h.Hash(string(raw))
	}
	return h.hashValue(generic)
}

func (h *Hasher) hashMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = h.hashValue(v)
	}
	return out
}
