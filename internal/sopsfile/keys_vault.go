package sopsfile

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/arcasec/arca/api"
)

// VaultTransitKey is a key of a Vault-compatible transit engine (Arca's,
// OpenBao's or Vault's) that wraps the data key: sops's hc_vault entry.
// The server holds the key; the file holds only what it encrypted.
type VaultTransitKey struct {
	// Address is the server, scheme://host[:port], as in vault_address.
	Address string
	// EnginePath is the transit mount, e.g. "transit" or "team/transit".
	EnginePath string
	KeyName    string
	// CreatedAt is kept when an existing entry is re-wrapped; zero means now.
	CreatedAt time.Time
}

// ParseVaultTransitURIs parses a comma-separated list of transit key URIs
// such as https://arca.example.com:8200/v1/transit/keys/app.
func ParseVaultTransitURIs(list string) ([]MasterKey, error) {
	var out []MasterKey
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		k, err := ParseVaultTransitURI(s)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// ParseVaultTransitURI parses one transit key URI: the server address,
// then /v1/, the engine's mount path (which may hold slashes), /keys/ and
// the key name.
func ParseVaultTransitURI(uri string) (*VaultTransitKey, error) {
	const form = "https://arca.example.com:8200/v1/transit/keys/NAME"
	u, err := url.Parse(uri)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("transit key URI %q is not a URL like %s", uri, form)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("transit key URI %q: a query, fragment or user name has no place in it (like %s)", uri, form)
	}
	rest, ok := strings.CutPrefix(u.EscapedPath(), "/v1/")
	if !ok {
		return nil, fmt.Errorf("transit key URI %q: the path must start with /v1/ (a server behind a path prefix is not supported, as in sops); like %s", uri, form)
	}
	i := strings.LastIndex(rest, "/keys/")
	if i <= 0 {
		return nil, fmt.Errorf("transit key URI %q: the path must end with /<engine path>/keys/<key name>, like %s", uri, form)
	}
	k := &VaultTransitKey{Address: u.Scheme + "://" + u.Host, EnginePath: rest[:i], KeyName: rest[i+len("/keys/"):]}
	if err := k.validate(); err != nil {
		return nil, fmt.Errorf("transit key URI %q: %w", uri, err)
	}
	return k, nil
}

// validate refuses names that would send the request elsewhere than the
// engine's encrypt and decrypt endpoints: a file from someone else must not
// make the user's token write to another path.
func (k *VaultTransitKey) validate() error {
	if k.EnginePath == "" || k.KeyName == "" {
		return errors.New("the engine path and the key name must not be empty")
	}
	for _, seg := range strings.Split(k.EnginePath, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "?#%\\") {
			return fmt.Errorf("the engine path %q is not a mount path", k.EnginePath)
		}
	}
	if k.KeyName == "." || k.KeyName == ".." || strings.ContainsAny(k.KeyName, "/?#%\\") {
		return fmt.Errorf("the key name %q is not a transit key name", k.KeyName)
	}
	return nil
}

// String is the key's URI, the form flags and .sops.yaml take.
func (k *VaultTransitKey) String() string {
	return k.Address + "/v1/" + k.EnginePath + "/keys/" + k.KeyName
}

func (k *VaultTransitKey) Kind() string { return "hc_vault" }

// Wrap asks the transit engine to encrypt the data key and returns the
// hc_vault entry: enc is the engine's ciphertext as it is (vault:vN:...).
func (k *VaultTransitKey) Wrap(dataKey []byte) (*Map, error) {
	c, err := transitClient(k.Address)
	if err != nil {
		return nil, err
	}
	s, err := c.Write(context.Background(), path.Join(k.EnginePath, "encrypt", k.KeyName),
		map[string]any{"plaintext": base64.StdEncoding.EncodeToString(dataKey)})
	if err != nil {
		return nil, fmt.Errorf("transit key %s: encrypting the data key: %w", k, err)
	}
	var ct string
	if s != nil {
		ct, _ = s.Data["ciphertext"].(string)
	}
	if !strings.HasPrefix(ct, "vault:v") {
		return nil, fmt.Errorf("transit key %s: the server's answer has no vault:v<N>: ciphertext", k)
	}
	created := k.CreatedAt
	if created.IsZero() {
		created = time.Now()
	}
	return &Map{Items: []Item{
		{Key: "created_at", Value: created.UTC().Format(time.RFC3339)},
		{Key: "enc", Value: ct},
		{Key: "engine_path", Value: k.EnginePath},
		{Key: "key_name", Value: k.KeyName},
		{Key: "vault_address", Value: k.Address},
	}}, nil
}

// vaultTransitFromEntry reads an hc_vault metadata entry.
func vaultTransitFromEntry(entry *Map) (k *VaultTransitKey, enc string, err error) {
	str := func(name string) string {
		v, _ := entry.Get(name)
		switch t := v.(type) {
		case string:
			return t
		case time.Time:
			return t.UTC().Format(time.RFC3339)
		}
		return ""
	}
	k = &VaultTransitKey{Address: str("vault_address"), EnginePath: str("engine_path"), KeyName: str("key_name")}
	u, perr := url.Parse(k.Address)
	if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, "", fmt.Errorf("hc_vault entry: vault_address %q is not a server URL", k.Address)
	}
	if err := k.validate(); err != nil {
		return nil, "", fmt.Errorf("hc_vault entry: %w", err)
	}
	if t, perr := time.Parse(time.RFC3339, str("created_at")); perr == nil {
		k.CreatedAt = t
	}
	return k, str("enc"), nil
}

// VaultTransit unwraps hc_vault entries with the transit engine each entry
// names, using the token of the environment (see transitClient).
type VaultTransit struct{}

// Unwrap asks the entry's transit engine to decrypt its enc.
func (VaultTransit) Unwrap(kind string, entry *Map) ([]byte, error) {
	if kind != "hc_vault" {
		return nil, fmt.Errorf("no %s key available", kind)
	}
	k, enc, err := vaultTransitFromEntry(entry)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(enc, "vault:v") {
		return nil, fmt.Errorf("transit key %s: enc is not a vault:v<N>: ciphertext", k)
	}
	c, err := transitClient(k.Address)
	if err != nil {
		return nil, err
	}
	s, err := c.Write(context.Background(), path.Join(k.EnginePath, "decrypt", k.KeyName), map[string]any{"ciphertext": enc})
	if err != nil {
		return nil, fmt.Errorf("transit key %s: decrypting the data key: %w", k, err)
	}
	var b64 string
	if s != nil {
		b64, _ = s.Data["plaintext"].(string)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || b64 == "" {
		return nil, fmt.Errorf("transit key %s: the server's answer has no base64 plaintext", k)
	}
	return key, nil
}

// KeySources unwraps each kind of metadata entry with the source for that
// kind ("age", "hc_vault").
type KeySources map[string]Unwrapper

// Unwrap hands the entry to the source for kind.
func (s KeySources) Unwrap(kind string, entry *Map) ([]byte, error) {
	u, ok := s[kind]
	if !ok {
		return nil, fmt.Errorf("arca file cannot use %s keys", kind)
	}
	return u.Unwrap(kind, entry)
}

// AllowlistEnv names the list of servers hc_vault keys may be sent to,
// as in sops: "all" (the default), "none", or comma-separated URL prefixes.
// Decrypting a file sends the user's token to the address the file names,
// so teams that open files from elsewhere pin their servers here.
const AllowlistEnv = "SOPS_HC_VAULT_ALLOWLIST"

func allowed(address string) (bool, error) {
	list := os.Getenv(AllowlistEnv)
	switch list {
	case "", "all":
		return true, nil
	case "none":
		return false, nil
	}
	address = strings.TrimSuffix(address, "/") + "/"
	for i, p := range strings.Split(list, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			return false, fmt.Errorf("%s: entry %d is empty", AllowlistEnv, i+1)
		}
		if strings.HasPrefix(address, strings.TrimSuffix(p, "/")+"/") {
			return true, nil
		}
	}
	return false, nil
}

// vaultTokenFile is where the vault CLI keeps its token, which sops also
// reads, relative to the home directory.
const vaultTokenFile = ".vault-token"

// transitClient returns a client for the server at address, as sops makes
// one: the address always comes from the key, the rest of the
// configuration (token, CA) from the environment: ARCA_TOKEN, else
// VAULT_TOKEN, else the token `arca login` stored, else ~/.vault-token.
func transitClient(address string) (*api.Client, error) {
	ok, err := allowed(address)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s does not allow sending keys to %s", AllowlistEnv, address)
	}
	conf := api.DefaultConfig()
	conf.Address = address
	if conf.Token == "" {
		if home, err := os.UserHomeDir(); err == nil {
			if b, err := os.ReadFile(filepath.Join(home, vaultTokenFile)); err == nil {
				conf.Token = strings.TrimSpace(string(b))
			}
		}
	}
	if conf.Token == "" {
		return nil, fmt.Errorf("no token for the transit engine at %s: set ARCA_TOKEN or VAULT_TOKEN, or log in", address)
	}
	return api.NewClient(conf)
}
