package sopsfile

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"regexp"
	"strings"
)

// Rule selects which values are encrypted; at most one field is set. The
// zero Rule means the default, unencrypted_suffix "_unencrypted".
type Rule struct {
	UnencryptedSuffix string
	EncryptedSuffix   string
	UnencryptedRegex  string
	EncryptedRegex    string
	MACOnlyEncrypted  bool
}

// DefaultUnencryptedSuffix is what sops assumes when a file names no rule.
const DefaultUnencryptedSuffix = "_unencrypted"

func (r Rule) count() int {
	n := 0
	for _, s := range []string{r.UnencryptedSuffix, r.EncryptedSuffix, r.UnencryptedRegex, r.EncryptedRegex} {
		if s != "" {
			n++
		}
	}
	return n
}

// compiled is a Rule ready to decide paths.
type compiled struct {
	rule Rule
	re   *regexp.Regexp
}

func (r Rule) compile() (*compiled, error) {
	if r.count() > 1 {
		return nil, errors.New("only one of unencrypted_suffix, encrypted_suffix, unencrypted_regex and encrypted_regex may be set")
	}
	if r.count() == 0 {
		r.UnencryptedSuffix = DefaultUnencryptedSuffix
	}
	c := &compiled{rule: r}
	pattern := r.UnencryptedRegex + r.EncryptedRegex
	if pattern != "" {
		re, err := regexp.Compile(pattern)
		if err != nil {
			return nil, fmt.Errorf("the selection regex %q does not compile: %w", pattern, err)
		}
		c.re = re
	}
	return c, nil
}

// encrypts reports whether a leaf under the given keys is encrypted.
func (c *compiled) encrypts(path []string) bool {
	r := c.rule
	switch {
	case r.UnencryptedSuffix != "":
		for _, k := range path {
			if strings.HasSuffix(k, r.UnencryptedSuffix) {
				return false
			}
		}
		return true
	case r.EncryptedSuffix != "":
		for _, k := range path {
			if strings.HasSuffix(k, r.EncryptedSuffix) {
				return true
			}
		}
		return false
	case r.UnencryptedRegex != "":
		for _, k := range path {
			if c.re.MatchString(k) {
				return false
			}
		}
		return true
	default:
		for _, k := range path {
			if c.re.MatchString(k) {
				return true
			}
		}
		return false
	}
}

// sopsMACPrefix starts the MAC in mac_only_encrypted mode so the two modes
// never agree.
var sopsMACPrefix = sha256.Sum256([]byte("sops"))

func newMAC(macOnlyEncrypted bool) hash.Hash {
	h := sha512.New()
	if macOnlyEncrypted {
		h.Write(sopsMACPrefix[:])
	}
	return h
}

func aadOf(path []string) string { return strings.Join(path, ":") + ":" }

// visit walks every leaf of a tree in document order; fn returns the leaf's
// replacement.
func visit(v any, path []string, fn func(v any, path []string) (any, error)) (any, error) {
	switch t := v.(type) {
	case *Map:
		for i, it := range t.Items {
			p := path
			if _, isComment := it.Value.(Comment); !isComment {
				p = append(path[:len(path):len(path)], it.Key)
			}
			nv, err := visit(it.Value, p, fn)
			if err != nil {
				return nil, err
			}
			t.Items[i].Value = nv
		}
		return t, nil
	case []any:
		for i, e := range t {
			nv, err := visit(e, path, fn)
			if err != nil {
				return nil, err
			}
			t[i] = nv
		}
		return t, nil
	}
	return fn(v, path)
}

// encryptTree encrypts tree in place with dataKey and returns the MAC's
// hex digest (upper case) over the plaintext values.
func encryptTree(tree *Map, dataKey []byte, rule Rule) (string, error) {
	c, err := rule.compile()
	if err != nil {
		return "", err
	}
	mac := newMAC(rule.MACOnlyEncrypted)
	_, err = visit(tree, nil, func(v any, path []string) (any, error) {
		if v == nil {
			return nil, nil
		}
		enc := c.encrypts(path)
		if _, isComment := v.(Comment); !isComment {
			if enc || !rule.MACOnlyEncrypted {
				plain, _, err := plaintextOf(v)
				if err != nil {
					return nil, fmt.Errorf("at %q: %w", aadOf(path), err)
				}
				mac.Write(plain)
			}
		}
		if !enc {
			return v, nil
		}
		if s, ok := v.(string); ok && s == "" {
			return v, nil
		}
		if cm, ok := v.(Comment); ok {
			s, err := encryptValue(dataKey, cm, aadOf(path))
			return Comment(s), err
		}
		return encryptValue(dataKey, v, aadOf(path))
	})
	return strings.ToUpper(hex.EncodeToString(mac.Sum(nil))), err
}

// decryptTree decrypts tree in place and returns the MAC digest it
// computes over the decrypted values.
func decryptTree(tree *Map, dataKey []byte, rule Rule) (string, error) {
	c, err := rule.compile()
	if err != nil {
		return "", err
	}
	mac := newMAC(rule.MACOnlyEncrypted)
	_, err = visit(tree, nil, func(v any, path []string) (any, error) {
		if v == nil {
			return nil, nil
		}
		enc := c.encrypts(path)
		out := v
		if cm, ok := v.(Comment); ok {
			// Writers may put a space between '#' and the ENC[...] text.
			if enc := strings.TrimSpace(string(cm)); IsEncrypted(enc) {
				d, err := decryptValue(dataKey, enc, aadOf(path))
				if err != nil {
					return nil, err
				}
				return Comment(fmt.Sprint(d)), nil
			}
			return v, nil
		}
		if enc {
			s, ok := v.(string)
			switch {
			case ok && s == "":
			case ok && IsEncrypted(s):
				d, err := decryptValue(dataKey, s, aadOf(path))
				if err != nil {
					return nil, err
				}
				out = d
			default:
				return nil, fmt.Errorf("the value at %q should be encrypted but is not", aadOf(path))
			}
		}
		if cm, ok := out.(Comment); ok {
			// A comment sops encrypted as a list item.
			return cm, nil
		}
		if enc || !rule.MACOnlyEncrypted {
			plain, _, err := plaintextOf(out)
			if err != nil {
				return nil, err
			}
			mac.Write(plain)
		}
		return out, nil
	})
	return strings.ToUpper(hex.EncodeToString(mac.Sum(nil))), err
}

// ErrMACMismatch means the values do not match the file's MAC: something
// was changed, added, removed or reordered.
var ErrMACMismatch = errors.New("MAC mismatch: the file was modified outside sops/arca (a value was changed, added, removed or reordered)")

func macEqual(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
