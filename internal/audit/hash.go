package audit

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"hash"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
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
	pool sync.Pool // of *hmacState

	// ids remembers the quoted HMACs of a token and its accessor, keyed by
	// the accessor, which is not a secret: no token is kept here.
	idsMu sync.RWMutex
	ids   map[string][2][]byte
}

// maxCachedIDs bounds the token HMACs remembered; the cache starts over
// when full.
const maxCachedIDs = 8192

// hmacState is one pooled HMAC with the buffers it needs, so hashing a
// value allocates nothing.
type hmacState struct {
	mac     hash.Hash
	scratch []byte
	sum     []byte
}

// tokenHashes returns the quoted HMACs of a token and of its accessor.
func (h *Hasher) tokenHashes(token, accessor string) (tokenHash, accessorHash []byte) {
	if token == "" || accessor == "" {
		if token != "" {
			tokenHash = h.appendHash(nil, token)
		}
		if accessor != "" {
			accessorHash = h.appendHash(nil, accessor)
		}
		return tokenHash, accessorHash
	}
	h.idsMu.RLock()
	pair, ok := h.ids[accessor]
	h.idsMu.RUnlock()
	if ok {
		return pair[0], pair[1]
	}
	pair[0], pair[1] = h.appendHash(nil, token), h.appendHash(nil, accessor)
	h.idsMu.Lock()
	if h.ids == nil || len(h.ids) >= maxCachedIDs {
		h.ids = make(map[string][2][]byte)
	}
	h.ids[accessor] = pair
	h.idsMu.Unlock()
	return pair[0], pair[1]
}

// NewHasher returns a Hasher keyed by salt.
func NewHasher(salt []byte) *Hasher {
	key := append([]byte(nil), salt...)
	return &Hasher{pool: sync.Pool{New: func() any { return &hmacState{mac: hmac.New(sha256.New, key)} }}}
}

// Hash returns "hmac-sha256:" and the hex HMAC-SHA256 of value.
func (h *Hasher) Hash(value string) string {
	return string(h.appendRaw(nil, value))
}

// appendRaw appends the bare hash text (no quotes) of value to b.
func (h *Hasher) appendRaw(b []byte, value string) []byte {
	st := h.pool.Get().(*hmacState)
	st.mac.Reset()
	st.scratch = append(st.scratch[:0], value...)
	st.mac.Write(st.scratch)
	st.sum = st.mac.Sum(st.sum[:0])
	b = append(b, HashPrefix...)
	b = hex.AppendEncode(b, st.sum)
	if cap(st.scratch) > 64<<10 {
		st.scratch = nil // do not pin a huge value's buffer
	}
	h.pool.Put(st)
	return b
}

// appendHash appends the hash of value to b as a JSON string.
func (h *Hasher) appendHash(b []byte, value string) []byte {
	b = append(b, '"')
	b = h.appendRaw(b, value)
	return append(b, '"')
}

// value appends v as JSON. Strings are HMAC'd (unless e.raw), and so are
// numbers that arrived as JSON text (json.Number), since a PIN is a secret;
// numbers, booleans and times a backend produced are written as they are.
// Map keys are written in plaintext, sorted, as Vault writes them. A value
// of any other type goes through JSON first, so nothing of an unknown shape
// reaches the log unhashed.
func (e valueEncoder) value(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, v)
	case string:
		return e.str(b, v)
	case json.Number:
		if e.raw {
			return append(b, v...)
		}
		return e.str(b, string(v))
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case int32:
		return strconv.AppendInt(b, int64(v), 10)
	case uint:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint64:
		return strconv.AppendUint(b, v, 10)
	case uint32:
		return strconv.AppendUint(b, uint64(v), 10)
	case time.Duration:
		return strconv.AppendInt(b, int64(v), 10)
	case float64:
		return appendFloat(b, v)
	case float32:
		return appendFloat(b, float64(v))
	case time.Time:
		return appendJSONString(b, v.UTC().Format(time.RFC3339Nano))
	case []byte:
		return e.str(b, string(v))
	case map[string]any:
		var arr [16]string
		o := openObject(b)
		for _, k := range appendSortedKeys(arr[:0], v) {
			o.anyKey(k)
			o.b = e.forKey(k).value(o.b, v[k])
		}
		return o.close()
	case map[string]string:
		var arr [16]string
		o := openObject(b)
		for _, k := range appendSortedKeys(arr[:0], v) {
			o.anyKey(k)
			o.b = e.forKey(k).str(o.b, v[k])
		}
		return o.close()
	case []any:
		b = append(b, '[')
		for i, x := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = e.value(b, x)
		}
		return append(b, ']')
	case []string:
		b = append(b, '[')
		for i, x := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = e.str(b, x)
		}
		return append(b, ']')
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return e.str(b, "<unencodable>")
	}
	var generic any
	if err := json.Unmarshal(raw, &generic); err != nil {
		return e.str(b, string(raw))
	}
	return e.value(b, generic)
}

// forKey returns the encoder for the value under map key k: a plaintext
// one when k is listed as not to be HMAC'd.
func (e valueEncoder) forKey(k string) valueEncoder {
	if e.raw || len(e.plain) == 0 {
		return e
	}
	for _, p := range e.plain {
		if p == k {
			return valueEncoder{raw: true}
		}
	}
	return e
}

func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

// appendSortedKeys appends m's keys to keys, sorted. Callers pass a small
// array's slice so the usual few keys need no allocation.
func appendSortedKeys[V any](keys []string, m map[string]V) []string {
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD, as
// encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, "\\ufffd"...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
