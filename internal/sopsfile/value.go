package sopsfile

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

// ivSize is the GCM nonce length sops uses.
const ivSize = 32

// readOnlyBytes views s as bytes without copying; callers only read them.
func readOnlyBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

const encPrefix = "ENC[AES256_GCM,data:"

// splitEnc splits ENC[AES256_GCM,data:D,iv:I,tag:T,type:Y] into its
// fields. It scans from the end, where the short fields are, so a large
// value costs no more than its length once.
func splitEnc(s string) (data, iv, tag, typ string, ok bool) {
	if !strings.HasPrefix(s, encPrefix) || !strings.HasSuffix(s, "]") {
		return "", "", "", "", false
	}
	body := s[len(encPrefix) : len(s)-1]
	cut := func(sep string) (string, bool) {
		i := strings.LastIndex(body, sep)
		if i < 0 {
			return "", false
		}
		field := body[i+len(sep):]
		body = body[:i]
		return field, field != ""
	}
	var okType, okTag, okIV bool
	typ, okType = cut(",type:")
	tag, okTag = cut(",tag:")
	iv, okIV = cut(",iv:")
	return body, iv, tag, typ, okType && okTag && okIV
}

// IsEncrypted reports whether s has the ENC[...] form.
func IsEncrypted(s string) bool {
	_, _, _, _, ok := splitEnc(s)
	return ok
}

// encValue is a parsed ENC[...] string.
type encValue struct {
	data, iv, tag []byte
	typ           string
}

// parseEnc parses the ENC[AES256_GCM,...] form.
func parseEnc(s string) (*encValue, error) {
	data, iv, tag, typ, ok := splitEnc(s)
	if !ok {
		return nil, errors.New("the value is not in the ENC[AES256_GCM,data:...,iv:...,tag:...,type:...] form")
	}
	var ev encValue
	// Room for the tag after the data, so decryption works in place.
	buf := make([]byte, base64.StdEncoding.DecodedLen(len(data))+16)
	n, err := base64.StdEncoding.Decode(buf, readOnlyBytes(data))
	if err != nil {
		return nil, fmt.Errorf("the data field is not base64: %w", err)
	}
	ev.data = buf[:n]
	if ev.iv, err = base64.StdEncoding.DecodeString(iv); err != nil || len(ev.iv) == 0 {
		return nil, errors.New("the iv field is not base64")
	}
	if ev.tag, err = base64.StdEncoding.DecodeString(tag); err != nil || len(ev.tag) != 16 {
		return nil, errors.New("the tag field is not a base64 16-byte tag")
	}
	ev.typ = typ
	return &ev, nil
}

func (ev *encValue) String() string {
	enc := base64.StdEncoding
	var b strings.Builder
	b.Grow(len(encPrefix) + enc.EncodedLen(len(ev.data)) + enc.EncodedLen(len(ev.iv)) + enc.EncodedLen(len(ev.tag)) + len(ev.typ) + 20)
	b.WriteString(encPrefix)
	// Encode straight into the builder: a large value is copied once.
	w := base64.NewEncoder(enc, &b)
	w.Write(ev.data)
	w.Close()
	b.WriteString(",iv:")
	b.WriteString(enc.EncodeToString(ev.iv))
	b.WriteString(",tag:")
	b.WriteString(enc.EncodeToString(ev.tag))
	b.WriteString(",type:")
	b.WriteString(ev.typ)
	b.WriteString("]")
	return b.String()
}

func newGCM(key []byte, nonceSize int) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCMWithNonceSize(block, nonceSize)
}

// plaintextOf returns the canonical bytes and type tag sops uses for a leaf.
func plaintextOf(v any) ([]byte, string, error) {
	switch t := v.(type) {
	case string:
		return []byte(t), "str", nil
	case []byte:
		return t, "str", nil
	case int64:
		return []byte(strconv.FormatInt(t, 10)), "int", nil
	case int:
		return []byte(strconv.Itoa(t)), "int", nil
	case uint64:
		return []byte(strconv.FormatUint(t, 10)), "int", nil
	case float64:
		return []byte(strconv.FormatFloat(t, 'f', -1, 64)), "float", nil
	case bool:
		if t {
			return []byte("True"), "bool", nil
		}
		return []byte("False"), "bool", nil
	case time.Time:
		b, err := t.MarshalText()
		return b, "time", err
	case Comment:
		return []byte(t), "comment", nil
	}
	return nil, "", fmt.Errorf("values of type %T cannot be encrypted", v)
}

// fromPlaintext turns decrypted bytes back into a typed value.
func fromPlaintext(b []byte, typ string) (any, error) {
	switch typ {
	case "str":
		// b is the fresh output of the decryption and nothing else refers
		// to it, so the string can share its memory instead of copying a
		// possibly large value.
		return unsafe.String(unsafe.SliceData(b), len(b)), nil
	case "bytes":
		return b, nil
	case "int":
		return strconv.ParseInt(string(b), 10, 64)
	case "float":
		return strconv.ParseFloat(string(b), 64)
	case "bool":
		return strconv.ParseBool(string(b))
	case "time":
		var t time.Time
		err := t.UnmarshalText(b)
		return t, err
	case "comment":
		return Comment(b), nil
	}
	return nil, fmt.Errorf("unknown value type %q", typ)
}

// encryptValue encrypts one leaf with the data key and the value's path as
// additional data.
func encryptValue(key []byte, v any, aad string) (string, error) {
	plain, typ, err := plaintextOf(v)
	if err != nil {
		return "", err
	}
	gcm, err := newGCM(key, ivSize)
	if err != nil {
		return "", err
	}
	iv := make([]byte, ivSize)
	if _, err := rand.Read(iv); err != nil {
		return "", fmt.Errorf("reading randomness: %w", err)
	}
	sealed := gcm.Seal(nil, iv, plain, []byte(aad))
	n := len(sealed) - gcm.Overhead()
	return (&encValue{data: sealed[:n], iv: iv, tag: sealed[n:], typ: typ}).String(), nil
}

// decryptValue decrypts one ENC[...] string.
func decryptValue(key []byte, s, aad string) (any, error) {
	ev, err := parseEnc(s)
	if err != nil {
		return nil, err
	}
	gcm, err := newGCM(key, len(ev.iv))
	if err != nil {
		return nil, err
	}
	sealed := append(ev.data, ev.tag...) // in place: parseEnc left room
	plain, err := gcm.Open(sealed[:0], ev.iv, sealed, []byte(aad))
	if err != nil {
		return nil, fmt.Errorf("message authentication failed for the value at %q: wrong key, or the value or its key name was changed", aad)
	}
	return fromPlaintext(plain, ev.typ)
}
