package sopsfile

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// Format is a file format.
type Format string

const (
	YAML   Format = "yaml"
	JSON   Format = "json"
	Dotenv Format = "dotenv"
	INI    Format = "ini"
	Binary Format = "binary"
)

// ParseFormat accepts the names sops's --input-type/--output-type take.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "yaml", "yml":
		return YAML, nil
	case "json":
		return JSON, nil
	case "dotenv", "env":
		return Dotenv, nil
	case "ini":
		return INI, nil
	case "binary":
		return Binary, nil
	}
	return "", fmt.Errorf("unknown format %q (yaml, json, dotenv, ini, binary)", s)
}

// FormatFor picks the format from a file name, as sops does: anything not
// recognised is binary.
func FormatFor(name string) Format {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml":
		return YAML
	case ".json":
		return JSON
	case ".env":
		return Dotenv
	case ".ini":
		return INI
	}
	return Binary
}

// File is a parsed encrypted file: its tree (values still encrypted) and
// metadata.
type File struct {
	Format   Format
	Tree     *Map
	Metadata *Metadata
}

func parseTree(data []byte, f Format) (*Map, error) {
	switch f {
	case YAML:
		return decodeYAML(data)
	case JSON:
		return decodeJSON(data)
	case Dotenv:
		return decodeDotenv(data)
	case INI:
		return decodeINI(data)
	case Binary:
		return &Map{Items: []Item{{Key: "data", Value: data}}}, nil
	}
	return nil, fmt.Errorf("unknown format %q", f)
}

func emitTree(m *Map, f Format) ([]byte, error) {
	switch f {
	case YAML:
		return encodeYAML(m)
	case JSON, Binary:
		return encodeJSON(m)
	case Dotenv:
		return encodeDotenv(m)
	case INI:
		return encodeINI(m)
	}
	return nil, fmt.Errorf("unknown format %q", f)
}

// Load parses an encrypted file.
func Load(data []byte, f Format) (*File, error) {
	parse := f
	if f == Binary {
		parse = JSON // the binary store's output is a JSON envelope
	}
	tree, err := parseTree(data, parse)
	if err != nil {
		return nil, err
	}
	var mdMap *Map
	if f == INI {
		if mdMap, err = iniMetadata(tree); err != nil {
			return nil, err
		}
	} else if f == Dotenv {
		var rest, flat []Item
		for _, it := range tree.Items {
			if k, ok := strings.CutPrefix(it.Key, "sops_"); ok {
				flat = append(flat, Item{Key: k, Value: it.Value})
			} else {
				rest = append(rest, it)
			}
		}
		if len(flat) == 0 {
			return nil, ErrNotEncrypted
		}
		if mdMap, err = unflatten(flat); err != nil {
			return nil, err
		}
		tree.Items = rest
	} else {
		v, ok := tree.Get("sops")
		if !ok {
			return nil, ErrNotEncrypted
		}
		if mdMap, ok = v.(*Map); !ok {
			return nil, errors.New("the sops metadata is not a mapping")
		}
		tree.Delete("sops")
	}
	md, err := metadataFromMap(mdMap)
	if err != nil {
		return nil, err
	}
	return &File{Format: f, Tree: tree, Metadata: md}, nil
}

// ErrNotEncrypted means the input has no sops metadata.
var ErrNotEncrypted = errors.New("the file has no sops metadata: it is not encrypted")

// DataKey recovers the file's data key.
func (f *File) DataKey(u Unwrapper) ([]byte, error) {
	return unwrapGroups(f.Metadata.KeyGroups, f.Metadata.ShamirThreshold, u)
}

// DecryptTree decrypts the values in place with dataKey and checks the MAC
// unless ignoreMAC.
func (f *File) DecryptTree(dataKey []byte, ignoreMAC bool) error {
	computed, err := decryptTree(f.Tree, dataKey, f.Metadata.Rule)
	if err != nil {
		return err
	}
	stored, err := decryptValue(dataKey, f.Metadata.MAC, macAAD(f.Metadata.LastModified))
	if err != nil {
		return fmt.Errorf("decrypting the MAC: %w", err)
	}
	if !ignoreMAC && !macEqual(fmt.Sprint(stored), computed) {
		return ErrMACMismatch
	}
	return nil
}

// Plaintext renders the decrypted tree in format out (the file's own
// format when empty). A binary file yields its original bytes.
func (f *File) Plaintext(out Format) ([]byte, error) {
	if out == "" {
		out = f.Format
	}
	if f.Format == Binary && out == Binary {
		v, _ := f.Tree.Get("data")
		switch t := v.(type) {
		case []byte:
			return t, nil
		case string:
			return readOnlyBytes(t), nil // written out, never modified
		}
		return nil, errors.New("the binary file has no data value")
	}
	return emitTree(f.Tree, out)
}

// EncryptOptions configure Encrypt.
type EncryptOptions struct {
	Format          Format
	KeyGroups       [][]MasterKey
	ShamirThreshold int
	Rule            Rule
	// DataKey reuses an existing data key (edit, set); nil makes a new one.
	DataKey []byte
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Encrypt encrypts a plaintext document.
func Encrypt(plain []byte, opts EncryptOptions) ([]byte, error) {
	tree, err := parseTree(plain, opts.Format)
	if err != nil {
		return nil, err
	}
	if _, ok := tree.Get("sops"); ok && opts.Format != Binary {
		return nil, errors.New("the file already has a top-level \"sops\" key: it is encrypted already, or uses a reserved key")
	}
	if opts.Format == Dotenv {
		for _, it := range tree.Items {
			if strings.HasPrefix(it.Key, "sops_") {
				return nil, fmt.Errorf("the key %q uses the reserved sops_ prefix", it.Key)
			}
		}
	}
	if opts.DataKey == nil {
		if opts.DataKey, err = NewDataKey(); err != nil {
			return nil, err
		}
	}
	groups, err := wrapGroups(opts.DataKey, opts.KeyGroups, opts.ShamirThreshold)
	if err != nil {
		return nil, err
	}
	return EncryptTree(tree, groups, opts)
}

// EncryptTree encrypts a plaintext tree with already-wrapped key groups
// and renders the file. opts.DataKey must be the key the groups wrap.
func EncryptTree(tree *Map, groups []KeyGroup, opts EncryptOptions) ([]byte, error) {
	rule := opts.Rule
	if opts.Format == Binary {
		rule = Rule{MACOnlyEncrypted: rule.MACOnlyEncrypted}
	} else if rule.count() == 0 {
		rule.UnencryptedSuffix = DefaultUnencryptedSuffix
	}
	digest, err := encryptTree(tree, opts.DataKey, rule)
	if err != nil {
		return nil, err
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	lastModified := now().UTC().Format(time.RFC3339)
	mac, err := encryptValue(opts.DataKey, digest, lastModified)
	if err != nil {
		return nil, err
	}
	md := &Metadata{KeyGroups: groups, ShamirThreshold: opts.ShamirThreshold, LastModified: lastModified, MAC: mac, Version: Version, Rule: rule}
	if opts.Format == Binary {
		md.Rule = Rule{MACOnlyEncrypted: rule.MACOnlyEncrypted}
	}
	return render(tree, md, opts.Format)
}

// render appends the metadata to an encrypted tree and writes the file.
func render(tree *Map, md *Metadata, f Format) ([]byte, error) {
	mdMap := md.toMap()
	if f == INI {
		tree.Items = append(tree.Items, Item{Key: "sops", Value: iniMetadataSection(mdMap)})
	} else if f == Dotenv {
		for _, it := range flattenMetadata(mdMap) {
			tree.Items = append(tree.Items, Item{Key: "sops_" + it.Key, Value: it.Value})
		}
	} else {
		tree.Items = append(tree.Items, Item{Key: "sops", Value: mdMap})
	}
	return emitTree(tree, f)
}

// Render writes a loaded file whose values are still encrypted, with its
// metadata as it now is: updatekeys changes only the key groups, so the
// values, the MAC and lastmodified stay as they were.
func (f *File) Render() ([]byte, error) {
	tree := &Map{Items: append([]Item(nil), f.Tree.Items...)}
	return render(tree, f.Metadata, f.Format)
}

// NewDataKey returns a fresh 256-bit data key.
func NewDataKey() ([]byte, error) {
	k := make([]byte, 32)
	_, err := rand.Read(k)
	return k, err
}

// Decrypt decrypts an encrypted file into its plaintext, in the file's
// own format.
func Decrypt(data []byte, f Format, u Unwrapper, ignoreMAC bool) ([]byte, error) {
	file, err := Load(data, f)
	if err != nil {
		return nil, err
	}
	key, err := file.DataKey(u)
	if err != nil {
		return nil, err
	}
	if err := file.DecryptTree(key, ignoreMAC); err != nil {
		return nil, err
	}
	return file.Plaintext("")
}

// ParsePlain parses a plaintext document in format f.
func ParsePlain(data []byte, f Format) (*Map, error) { return parseTree(data, f) }

// ScalarText renders a leaf as the text sops prints for it.
func ScalarText(v any) (string, error) { return scalarText(v) }

// ParseJSONValue parses a JSON value into tree form (objects keep order).
func ParseJSONValue(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return jsonValue(dec)
}

// WrapGroups wraps an existing data key for new key groups.
func WrapGroups(dataKey []byte, groups [][]MasterKey, threshold int) ([]KeyGroup, error) {
	return wrapGroups(dataKey, groups, threshold)
}

// Rewrap wraps a new data key for the same master keys as groups (age
// recipients and transit keys). Entries of kinds Arca cannot encrypt to
// make it fail rather than drop them.
func Rewrap(groups []KeyGroup, dataKey []byte, threshold int) ([]KeyGroup, error) {
	keys, err := MasterKeys(groups)
	if err != nil {
		return nil, err
	}
	return wrapGroups(dataKey, keys, threshold)
}

// MasterKeys returns the master keys the groups' entries were made with.
func MasterKeys(groups []KeyGroup) ([][]MasterKey, error) {
	var keys [][]MasterKey
	for i, g := range groups {
		var gk []MasterKey
		for _, kind := range keyKinds {
			for _, e := range g[kind] {
				k, err := masterKeyFromEntry(kind, e)
				if err != nil {
					return nil, fmt.Errorf("key group %d: %w", i, err)
				}
				gk = append(gk, k)
			}
		}
		keys = append(keys, gk)
	}
	return keys, nil
}

// masterKeyFromEntry is the master key a metadata entry was made with.
func masterKeyFromEntry(kind string, e *Map) (MasterKey, error) {
	switch kind {
	case "age":
		r, _ := e.Get("recipient")
		rs, _ := r.(string)
		parsed, err := ParseAgeRecipients(rs)
		if err != nil {
			return nil, err
		}
		if len(parsed) != 1 {
			return nil, errors.New("an age entry has no recipient")
		}
		return parsed[0], nil
	case "hc_vault":
		k, _, err := vaultTransitFromEntry(e)
		return k, err
	}
	return nil, fmt.Errorf("%s keys cannot be encrypted to by arca; rotate with sops", kind)
}
