package sopsfile

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// ivSize is the GCM nonce length sops uses.
const ivSize = 32

var encPattern = regexp.MustCompile(`^ENC\[AES256_GCM,data:(.*),iv:(.+),tag:(.+),type:(.+)\]$`)

// IsEncrypted reports whether s has the ENC[...] form.
func IsEncrypted(s string) bool { return encPattern.MatchString(s) }

// encValue is a parsed ENC[...] string.
type encValue struct {
	data, iv, tag []byte
	typ           string
}

// parseEnc parses the ENC[AES256_GCM,...] form.
func parseEnc(s string) (*encValue, error) {
	m := encPattern.FindStringSubmatch(s)
	if m == nil {
		return nil, errors.New("the value is not in the ENC[AES256_GCM,data:...,iv:...,tag:...,type:...] form")
	}
	var ev encValue
	var err error
	if ev.data, err = base64.StdEncoding.DecodeString(m[1]); err != nil {
		return nil, fmt.Errorf("the data field is not base64: %w", err)
	}
	if ev.iv, err = base64.StdEncoding.DecodeString(m[2]); err != nil || len(ev.iv) == 0 {
		return nil, errors.New("the iv field is not base64")
	}
	if ev.tag, err = base64.StdEncoding.DecodeString(m[3]); err != nil || len(ev.tag) != 16 {
		return nil, errors.New("the tag field is not a base64 16-byte tag")
	}
	ev.typ = m[4]
	return &ev, nil
}

func (ev *encValue) String() string {
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("ENC[AES256_GCM,data:%s,iv:%s,tag:%s,type:%s]", b64(ev.data), b64(ev.iv), b64(ev.tag), ev.typ)
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
		return string(b), nil
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
	plain, err := gcm.Open(nil, ev.iv, append(append([]byte(nil), ev.data...), ev.tag...), []byte(aad))
	if err != nil {
		return nil, fmt.Errorf("message authentication failed for the value at %q: wrong key, or the value or its key name was changed", aad)
	}
	return fromPlaintext(plain, ev.typ)
}
