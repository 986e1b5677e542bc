package sopsfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/arcasec/arca/internal/seal/shamir"
)

// MasterKey wraps a file's data key (or its share, with several key
// groups): an age recipient or a transit key.
type MasterKey interface {
	// Kind is the metadata list the key is written in ("age", "hc_vault").
	Kind() string
	// Wrap encrypts the data key and returns the metadata entry.
	Wrap(dataKey []byte) (*Map, error)
	// String names the key as flags and .sops.yaml do: the recipient, the URI.
	String() string
}

// Unwrapper recovers data keys from metadata entries it understands.
type Unwrapper interface {
	// Unwrap returns the data key from one entry of kind, or an error when
	// it cannot.
	Unwrap(kind string, entry *Map) ([]byte, error)
}

// AgeRecipient is an age master key.
type AgeRecipient struct {
	Recipient string
	r         age.Recipient
}

// ParseAgeRecipients parses a comma-separated list of age1... recipients.
func ParseAgeRecipients(list string) ([]MasterKey, error) {
	var out []MasterKey
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		r, err := age.ParseX25519Recipient(s)
		if err != nil {
			return nil, fmt.Errorf("age recipient %q: %w", s, err)
		}
		out = append(out, &AgeRecipient{Recipient: s, r: r})
	}
	return out, nil
}

func (a *AgeRecipient) Kind() string { return "age" }

func (a *AgeRecipient) String() string { return a.Recipient }

// Wrap encrypts the data key to the recipient, ASCII-armored as sops does.
func (a *AgeRecipient) Wrap(dataKey []byte) (*Map, error) {
	var buf bytes.Buffer
	aw := armor.NewWriter(&buf)
	w, err := age.Encrypt(aw, a.r)
	if err != nil {
		return nil, fmt.Errorf("age: %w", err)
	}
	if _, err := w.Write(dataKey); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	if err := aw.Close(); err != nil {
		return nil, err
	}
	buf.WriteString("\n")
	return &Map{Items: []Item{{Key: "enc", Value: buf.String()}, {Key: "recipient", Value: a.Recipient}}}, nil
}

// AgeIdentities unwraps age entries with a set of identities.
type AgeIdentities []age.Identity

// LoadAgeIdentities reads identities the way sops does: SOPS_AGE_KEY,
// SOPS_AGE_KEY_FILE and the default keys file, all combined.
func LoadAgeIdentities() (AgeIdentities, error) {
	var ids AgeIdentities
	add := func(src string, r io.Reader) error {
		parsed, err := age.ParseIdentities(r)
		if err != nil {
			return fmt.Errorf("reading age identities from %s: %w", src, err)
		}
		ids = append(ids, parsed...)
		return nil
	}
	if v := os.Getenv("SOPS_AGE_KEY"); v != "" {
		if err := add("SOPS_AGE_KEY", strings.NewReader(v)); err != nil {
			return nil, err
		}
	}
	files := []string{}
	if f := os.Getenv("SOPS_AGE_KEY_FILE"); f != "" {
		files = append(files, f)
	}
	if dir := userConfigDir(); dir != "" {
		files = append(files, filepath.Join(dir, "sops", "age", "keys.txt"))
	}
	for i, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			if i == 0 && os.Getenv("SOPS_AGE_KEY_FILE") != "" {
				return nil, fmt.Errorf("reading SOPS_AGE_KEY_FILE: %w", err)
			}
			continue
		}
		if err := add(f, bytes.NewReader(data)); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

func userConfigDir() string {
	if x := os.Getenv("XDG_CONFIG_HOME"); x != "" {
		return x
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".config")
}

// Unwrap decrypts an age entry.
func (ids AgeIdentities) Unwrap(kind string, entry *Map) ([]byte, error) {
	if kind != "age" {
		return nil, fmt.Errorf("no %s key available", kind)
	}
	if len(ids) == 0 {
		return nil, errors.New("no age identity found (set SOPS_AGE_KEY_FILE or SOPS_AGE_KEY)")
	}
	encV, _ := entry.Get("enc")
	enc, _ := encV.(string)
	r, err := age.Decrypt(armor.NewReader(strings.NewReader(strings.TrimSpace(enc)+"\n")), ids...)
	if err != nil {
		return nil, fmt.Errorf("age: %w", err)
	}
	return io.ReadAll(io.LimitReader(r, 1024))
}

// keyKinds are the metadata lists that hold master keys, in the order
// sops tries them.
var keyKinds = []string{"age", "pgp", "kms", "gcp_kms", "azure_kv", "hc_vault", "hckms"}

// KeyGroup is one group of master-key entries, by kind. Entries of kinds
// Arca cannot use are kept as they are.
type KeyGroup map[string][]*Map

// wrapGroups wraps dataKey for every group: whole with one group, a Shamir
// share per group otherwise.
func wrapGroups(dataKey []byte, groups [][]MasterKey, threshold int) ([]KeyGroup, error) {
	if len(groups) == 0 {
		return nil, errors.New("no master keys: give age recipients (--age), transit keys (--hc-vault-transit) or a .sops.yaml creation rule")
	}
	parts := [][]byte{dataKey}
	if len(groups) > 1 {
		if threshold == 0 {
			threshold = len(groups)
		}
		if threshold > len(groups) {
			return nil, fmt.Errorf("shamir_threshold %d is larger than the number of key groups (%d)", threshold, len(groups))
		}
		var err error
		if threshold == 1 {
			parts = make([][]byte, len(groups))
			for i := range parts {
				parts[i] = dataKey
			}
		} else if parts, err = shamir.Split(dataKey, len(groups), threshold); err != nil {
			return nil, err
		}
	}
	out := make([]KeyGroup, len(groups))
	for i, g := range groups {
		if len(g) == 0 {
			return nil, fmt.Errorf("key group %d has no keys", i)
		}
		out[i] = KeyGroup{}
		for _, k := range g {
			entry, err := k.Wrap(parts[i])
			if err != nil {
				return nil, err
			}
			out[i][k.Kind()] = append(out[i][k.Kind()], entry)
		}
	}
	return out, nil
}

// ErrNoDataKey means no master key in the file could be used.
var ErrNoDataKey = errors.New("could not retrieve the data key")

// unwrapGroups recovers the data key from the groups.
func unwrapGroups(groups []KeyGroup, threshold int, u Unwrapper) ([]byte, error) {
	var parts [][]byte
	var reasons []string
	need := 1
	if len(groups) > 1 {
		need = threshold
		if need == 0 {
			need = len(groups)
		}
	}
	for gi, g := range groups {
		got := false
		for _, kind := range keyKinds {
			for _, entry := range g[kind] {
				key, err := u.Unwrap(kind, entry)
				if err != nil {
					reasons = append(reasons, fmt.Sprintf("group %d %s: %v", gi, kind, err))
					continue
				}
				parts = append(parts, key)
				got = true
				break
			}
			if got {
				break
			}
		}
		if len(parts) >= need {
			break
		}
	}
	if len(parts) < need {
		return nil, fmt.Errorf("%w: %s", ErrNoDataKey, strings.Join(reasons, "; "))
	}
	if len(groups) == 1 || need == 1 {
		if len(parts[0]) != 32 {
			return nil, fmt.Errorf("%w: the unwrapped data key is %d bytes, want 32", ErrNoDataKey, len(parts[0]))
		}
		return parts[0], nil
	}
	key, err := shamir.Combine(parts[:need])
	if err != nil {
		return nil, fmt.Errorf("%w: combining key group shares: %v", ErrNoDataKey, err)
	}
	return key, nil
}
