package transit

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/arcasec/arca/internal/logical"
	fw "github.com/arcasec/arca/internal/logical/framework"
)

// validName is what the paths accept as a key name (fw.GenericNameRegex).
var validName = regexp.MustCompile(`^` + fw.GenericNameRegex("name") + `$`)

var nameField = &fw.FieldSchema{Type: fw.TypeString, Description: "name of the key"}

func (b *backend) paths() []*fw.Path {
	name := fw.GenericNameRegex("name")
	return append([]*fw.Path{
		{
			Pattern:      `keys/?`,
			Operations:   map[logical.Operation]fw.OperationFunc{logical.ListOperation: b.listKeys},
			HelpSynopsis: "List the transit keys.",
		},
		{
			Pattern: `keys/` + name,
			Fields: map[string]*fw.FieldSchema{
				"name":                   nameField,
				"type":                   {Type: fw.TypeString, Default: "aes256-gcm96", Description: "key type: aes128-gcm96, aes256-gcm96, chacha20-poly1305, ed25519, ecdsa-p256, ecdsa-p384, ecdsa-p521, rsa-2048, rsa-3072, rsa-4096 or hmac"},
				"derived":                {Type: fw.TypeBool, Description: "derive a key per request from a context (HKDF-SHA256)"},
				"convergent_encryption":  {Type: fw.TypeBool, Description: "equal plaintexts and contexts give equal ciphertexts; requires derived"},
				"exportable":             {Type: fw.TypeBool, Description: "allow the key to be exported"},
				"allow_plaintext_backup": {Type: fw.TypeBool, Description: "allow a plaintext backup of the key"},
				"auto_rotate_period":     {Type: fw.TypeDuration, Description: "rotate the key this often (0 disables; at least 1h)"},
				"key_size":               {Type: fw.TypeInt, Description: "size in bytes of an hmac key (32 to 512, default 32)"},
				"context":                {Type: fw.TypeString, Description: "base64 context for the public key of a derived ed25519 key (read)"},
			},
			Operations: map[logical.Operation]fw.OperationFunc{
				logical.UpdateOperation: b.createKey,
				logical.ReadOperation:   b.readKey,
				logical.DeleteOperation: b.deleteKey,
			},
			HelpSynopsis: "Create, read or delete a transit key.",
		},
		{
			Pattern: `keys/` + name + `/config`,
			Fields: map[string]*fw.FieldSchema{
				"name":                   nameField,
				"min_decryption_version": {Type: fw.TypeInt, Description: "oldest version that may decrypt or verify"},
				"min_encryption_version": {Type: fw.TypeInt, Description: "oldest version that may encrypt or sign (0: the latest)"},
				"deletion_allowed":       {Type: fw.TypeBool, Description: "allow the key to be deleted"},
				"exportable":             {Type: fw.TypeBool, Description: "allow the key to be exported (cannot be undone)"},
				"allow_plaintext_backup": {Type: fw.TypeBool, Description: "allow a plaintext backup (cannot be undone)"},
				"auto_rotate_period":     {Type: fw.TypeDuration, Description: "rotate the key this often (0 disables; at least 1h)"},
			},
			Operations:   map[logical.Operation]fw.OperationFunc{logical.UpdateOperation: b.configKey},
			HelpSynopsis: "Configure a transit key.",
		},
		{
			Pattern:      `keys/` + name + `/rotate`,
			Fields:       map[string]*fw.FieldSchema{"name": nameField},
			Operations:   map[logical.Operation]fw.OperationFunc{logical.UpdateOperation: b.rotateKey},
			HelpSynopsis: "Add a new version of a key; new data is encrypted with it.",
		},
		{
			Pattern: `keys/` + name + `/trim`,
			Fields: map[string]*fw.FieldSchema{
				"name":                  nameField,
				"min_available_version": {Type: fw.TypeInt, Required: true, Description: "delete every version below this one"},
			},
			Operations:   map[logical.Operation]fw.OperationFunc{logical.UpdateOperation: b.trimKey},
			HelpSynopsis: "Delete old versions of a key for good.",
		},
		{
			Pattern: `export/(?P<type>[^/]+)/` + name + `(?:/(?P<version>[^/]+))?`,
			Fields: map[string]*fw.FieldSchema{
				"name":    nameField,
				"type":    {Type: fw.TypeString, Description: "encryption-key, signing-key, hmac-key or public-key"},
				"version": {Type: fw.TypeString, Description: "a version number or latest (default: every version)"},
			},
			Operations:   map[logical.Operation]fw.OperationFunc{logical.ReadOperation: b.exportKey},
			HelpSynopsis: "Export an exportable key.",
		},
		{
			Pattern:      `backup/` + name,
			Fields:       map[string]*fw.FieldSchema{"name": nameField},
			Operations:   map[logical.Operation]fw.OperationFunc{logical.ReadOperation: b.backupKey},
			HelpSynopsis: "Back up a key, in plaintext, with every version.",
		},
		{
			Pattern: `restore(?:/` + name + `)?`,
			Fields: map[string]*fw.FieldSchema{
				"name":   nameField,
				"backup": {Type: fw.TypeString, Required: true, Description: "the backup, as backup/<name> returned it"},
				"force":  {Type: fw.TypeBool, Description: "overwrite a key of the same name"},
			},
			Operations:   map[logical.Operation]fw.OperationFunc{logical.UpdateOperation: b.restoreKey},
			HelpSynopsis: "Restore a key from a backup.",
		},
		{
			Pattern: `config/keys`,
			Fields: map[string]*fw.FieldSchema{
				"disable_upsert": {Type: fw.TypeBool, Description: "refuse to create a missing key on encrypt"},
			},
			Operations: map[logical.Operation]fw.OperationFunc{
				logical.ReadOperation:   b.readKeysConfig,
				logical.UpdateOperation: b.writeKeysConfig,
			},
			HelpSynopsis: "Configure the mount's keys: whether encrypt may create them.",
		},
		{
			Pattern: `cache-config`,
			Fields: map[string]*fw.FieldSchema{
				"size": {Type: fw.TypeInt, Description: "how many keys to keep decoded in memory (0: all; else at least 10)"},
			},
			Operations: map[logical.Operation]fw.OperationFunc{
				logical.ReadOperation:   b.readCacheConfig,
				logical.UpdateOperation: b.writeCacheConfig,
			},
			HelpSynopsis: "Configure the in-memory cache of decoded keys.",
		},
	}, b.cryptoPaths()...)
}

func (b *backend) listKeys(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	names, err := req.Storage.List(ctx, policyPrefix)
	if err != nil || len(names) == 0 {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{"keys": names}}, nil
}

func checkAutoRotate(d time.Duration) error {
	if d != 0 && d < time.Hour {
		return errUser("auto_rotate_period must be 0 (off) or at least an hour, got %s", d)
	}
	if d < 0 {
		return errUser("auto_rotate_period must not be negative")
	}
	return nil
}

func (b *backend) createKey(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	name := d.String("name")
	typ, ok := parseKeyType(d.String("type"))
	if !ok {
		return nil, errUser("unknown key type %q", d.String("type"))
	}
	kc := keyConfig{
		typ:                  typ,
		derived:              d.Bool("derived"),
		convergent:           d.Bool("convergent_encryption"),
		exportable:           d.Bool("exportable"),
		allowPlaintextBackup: d.Bool("allow_plaintext_backup"),
		autoRotatePeriod:     d.Duration("auto_rotate_period"),
		keySize:              d.Int("key_size"),
	}
	if err := checkAutoRotate(kc.autoRotatePeriod); err != nil {
		return nil, err
	}
	if kc.convergent && !kc.derived {
		return nil, errUser("convergent_encryption requires derived=true")
	}
	if kc.convergent && !typ.symmetric() {
		return nil, errUser("convergent_encryption is only for aes128-gcm96, aes256-gcm96 and chacha20-poly1305 keys, not %s", typ)
	}
	if kc.derived && !typ.derives() {
		return nil, errUser("key type %s does not support derivation", typ)
	}
	if kc.keySize != 0 {
		if typ != typeHMAC {
			return nil, errUser("key_size is only valid for hmac keys, not %s", typ)
		}
		if kc.keySize < hmacKeySizeMin || kc.keySize > hmacKeySizeMax {
			return nil, errUser("key_size must be between %d and %d bytes, got %d", hmacKeySizeMin, hmacKeySizeMax, kc.keySize)
		}
	}
	p, created, err := b.create(ctx, req.Storage, name, kc)
	if err != nil {
		return nil, err
	}
	resp, err := formatKey(p, nil)
	if err == nil && !created {
		resp.AddWarning("key " + name + " already existed")
	}
	return resp, err
}

func (b *backend) readKey(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	p, err := b.getPolicy(ctx, req.Storage, d.String("name"))
	if err != nil || p == nil {
		return nil, err
	}
	context, err := decodeB64("context", d.String("context"))
	if err != nil {
		return nil, err
	}
	return formatKey(p, context)
}

// formatKey is a key as keys/<name> reads it: settings and, per version,
// the creation time (symmetric keys) or the public key (asymmetric keys).
func formatKey(p *policy, context []byte) (*logical.Response, error) {
	data := map[string]any{
		"name":                   p.Name,
		"type":                   p.Type.String(),
		"derived":                p.Derived,
		"deletion_allowed":       p.DeletionAllowed,
		"min_available_version":  p.MinAvailableVersion,
		"min_decryption_version": p.MinDecryptionVersion,
		"min_encryption_version": p.MinEncryptionVersion,
		"latest_version":         p.LatestVersion,
		"exportable":             p.Exportable,
		"allow_plaintext_backup": p.AllowPlaintextBackup,
		"supports_encryption":    p.Type.encrypts(),
		"supports_decryption":    p.Type.encrypts(),
		"supports_signing":       p.Type.signs(),
		"supports_derivation":    p.Type.derives(),
		"auto_rotate_period":     int64(p.AutoRotatePeriod / time.Second),
		"imported_key":           false,
	}
	if p.KeySize != 0 {
		data["key_size"] = p.KeySize
	}
	if bi := p.BackupInfo; bi != nil {
		data["backup_info"] = map[string]any{"time": bi.Time, "version": bi.Version}
	}
	if ri := p.RestoreInfo; ri != nil {
		data["restore_info"] = map[string]any{"time": ri.Time, "version": ri.Version}
	}
	if p.Derived {
		data["kdf"] = "hkdf_sha256"
		if p.KDF == kdfCounter {
			data["kdf"] = "hmac-sha256-counter"
		}
		data["convergent_encryption"] = p.ConvergentEncryption
		if p.ConvergentEncryption {
			data["convergent_encryption_version"] = p.ConvergentVersion
		}
	}
	switch {
	case p.Type.symmetric():
		keys := map[string]int64{}
		for v, e := range p.Keys {
			keys[v] = e.CreationUnix
		}
		data["keys"] = keys
	case p.Type.signs():
		keys := map[string]any{}
		for v, e := range p.Keys {
			created := e.CreationTime
			if created.IsZero() {
				created = time.Unix(e.CreationUnix, 0)
			}
			pub, err := publicKeyOf(p, e, context)
			if err != nil {
				return nil, err
			}
			name := p.Type.String()
			if p.Type.ecdsa() {
				name = p.Type.curve().Params().Name
			}
			keys[v] = map[string]any{"name": name, "public_key": pub, "creation_time": created.Format(time.RFC3339Nano)}
		}
		data["keys"] = keys
	}
	return &logical.Response{Data: data}, nil
}

// publicKeyOf is version e's public key as Vault shows it: PEM for ECDSA
// and RSA, base64 for ed25519 (derived from context for a derived key,
// empty without one).
func publicKeyOf(p *policy, e keyEntry, context []byte) (string, error) {
	switch {
	case p.Type.rsa():
		if e.RSAKey == nil {
			return "", nil
		}
		return pemPublicKey(&e.RSAKey.PublicKey)
	case p.Type == typeED25519 && p.Derived:
		if len(context) == 0 {
			return "", nil
		}
		k, err := p.deriveKey(e, context, ed25519.PrivateKeySize)
		if err != nil {
			return "", err
		}
		return base64.StdEncoding.EncodeToString(ed25519.PrivateKey(k).Public().(ed25519.PublicKey)), nil
	}
	return e.FormattedPublicKey, nil
}

func (b *backend) deleteKey(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	name := d.String("name")
	defer b.lock(name)()
	p, err := b.load(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, errUser("no key named %q", name)
	}
	if !p.DeletionAllowed {
		return nil, errUser("deletion is not allowed for key %q: set deletion_allowed=true in keys/%s/config first", name, name)
	}
	if err := req.Storage.Delete(ctx, policyPrefix+name); err != nil {
		return nil, err
	}
	b.forget(name)
	return nil, nil
}

func (b *backend) configKey(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	name := d.String("name")
	var warnings []string
	p, err := b.update(ctx, req.Storage, name, func(p *policy) error {
		if v, ok := d.GetOk("min_decryption_version"); ok {
			n := v.(int)
			switch {
			case n < 0:
				return errUser("min_decryption_version must not be negative")
			case n == 0:
				n = 1
				warnings = append(warnings, "key versions start at 1: min_decryption_version is set to 1")
			case n > p.LatestVersion:
				return errUser("min_decryption_version %d is above the latest version (%d)", n, p.LatestVersion)
			case n < p.MinAvailableVersion:
				return errUser("min_decryption_version %d is below min_available_version (%d): those versions were trimmed", n, p.MinAvailableVersion)
			}
			p.MinDecryptionVersion = n
		}
		if v, ok := d.GetOk("min_encryption_version"); ok {
			n := v.(int)
			switch {
			case n < 0:
				return errUser("min_encryption_version must not be negative")
			case n > p.LatestVersion:
				return errUser("min_encryption_version %d is above the latest version (%d)", n, p.LatestVersion)
			}
			p.MinEncryptionVersion = n
		}
		if p.MinEncryptionVersion > 0 && p.MinEncryptionVersion < p.MinDecryptionVersion {
			return errUser("min_encryption_version (%d) must not be below min_decryption_version (%d)", p.MinEncryptionVersion, p.MinDecryptionVersion)
		}
		if v, ok := d.GetOk("deletion_allowed"); ok {
			p.DeletionAllowed = v.(bool)
		}
		if v, ok := d.GetOk("exportable"); ok {
			if p.Exportable && !v.(bool) {
				return errUser("an exportable key cannot be made non-exportable")
			}
			p.Exportable = v.(bool)
		}
		if v, ok := d.GetOk("allow_plaintext_backup"); ok {
			if p.AllowPlaintextBackup && !v.(bool) {
				return errUser("allow_plaintext_backup cannot be turned off once on")
			}
			p.AllowPlaintextBackup = v.(bool)
		}
		if v, ok := d.GetOk("auto_rotate_period"); ok {
			if err := checkAutoRotate(v.(time.Duration)); err != nil {
				return err
			}
			p.AutoRotatePeriod = v.(time.Duration)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, errUser("no key named %q", name)
	}
	resp, err := formatKey(p, nil)
	if resp != nil {
		resp.Warnings = append(resp.Warnings, warnings...)
	}
	return resp, err
}

func (b *backend) rotateKey(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	name := d.String("name")
	p, err := b.update(ctx, req.Storage, name, func(p *policy) error { return p.rotate(b.now()) })
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, errUser("no key named %q", name)
	}
	return formatKey(p, nil)
}

func (b *backend) trimKey(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	name := d.String("name")
	n := d.Int("min_available_version")
	p, err := b.update(ctx, req.Storage, name, func(p *policy) error {
		switch {
		case n < 1:
			return errUser("min_available_version must be at least 1")
		case n < p.MinAvailableVersion:
			return errUser("min_available_version %d is below the current one (%d): trimmed versions cannot come back", n, p.MinAvailableVersion)
		case n > p.MinDecryptionVersion:
			return errUser("min_available_version %d is above min_decryption_version (%d): raise that first", n, p.MinDecryptionVersion)
		case p.MinEncryptionVersion > 0 && n > p.MinEncryptionVersion:
			return errUser("min_available_version %d is above min_encryption_version (%d): raise that first", n, p.MinEncryptionVersion)
		}
		for _, v := range p.versions() {
			if v < n {
				delete(p.Keys, strconv.Itoa(v))
			}
		}
		p.MinAvailableVersion = n
		return nil
	})
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, errUser("no key named %q", name)
	}
	return formatKey(p, nil)
}

func (b *backend) exportKey(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	name, typ := d.String("name"), d.String("type")
	p, err := b.getPolicy(ctx, req.Storage, name)
	if err != nil || p == nil {
		return nil, err
	}
	switch typ {
	case "encryption-key":
		if !p.Type.encrypts() {
			return nil, errUser("key %q (%s) is not an encryption key", name, p.Type)
		}
	case "signing-key", "public-key":
		if !p.Type.signs() {
			return nil, errUser("key %q (%s) is not a signing key", name, p.Type)
		}
	case "hmac-key":
	default:
		return nil, errUser("invalid export type %q: use encryption-key, signing-key, hmac-key or public-key", typ)
	}
	if typ != "public-key" && !p.Exportable {
		return nil, errUser("key %q is not exportable", name)
	}
	versions := p.versions()
	if v := d.String("version"); v != "" {
		n := p.LatestVersion
		if v != "latest" {
			if n, err = strconv.Atoi(v); err != nil || n < 1 {
				return nil, errUser("invalid version %q: use a version number or latest", v)
			}
		}
		if n < p.MinDecryptionVersion {
			return nil, errUser("version %d is below min_decryption_version (%d)", n, p.MinDecryptionVersion)
		}
		if _, ok := p.entry(n); !ok {
			return nil, errUser("key %q has no version %d", name, n)
		}
		versions = []int{n}
	}
	keys := map[string]string{}
	for _, v := range versions {
		if v < p.MinDecryptionVersion {
			continue
		}
		e, _ := p.entry(v)
		s, err := exportOf(p, e, typ)
		if err != nil {
			return nil, err
		}
		keys[strconv.Itoa(v)] = s
	}
	return &logical.Response{Data: map[string]any{"name": p.Name, "type": p.Type.String(), "keys": keys}}, nil
}

// exportOf is version e's key of the given export type, encoded as Vault
// exports it.
func exportOf(p *policy, e keyEntry, typ string) (string, error) {
	switch typ {
	case "hmac-key":
		k, err := p.hmacKey(e)
		return base64.StdEncoding.EncodeToString(k), err
	case "public-key":
		if p.Type == typeED25519 {
			if len(e.Key) != ed25519.PrivateKeySize {
				return "", nil
			}
			return base64.StdEncoding.EncodeToString(ed25519.PrivateKey(e.Key).Public().(ed25519.PublicKey)), nil
		}
		if p.Type.ecdsa() { // Vault trims the exported EC keys' PEM
			pub, err := pemPublicKey(&ecdsa.PublicKey{Curve: p.Type.curve(), X: e.ECX, Y: e.ECY})
			return strings.TrimSpace(pub), err
		}
		return publicKeyOf(p, e, nil)
	}
	switch t := p.Type; {
	case t.symmetric():
		return base64.StdEncoding.EncodeToString(e.Key), nil
	case t.rsa():
		return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(e.RSAKey)})), nil
	case t == typeED25519:
		return base64.StdEncoding.EncodeToString(e.Key), nil
	case t.ecdsa():
		k := &ecdsa.PrivateKey{PublicKey: ecdsa.PublicKey{Curve: t.curve(), X: e.ECX, Y: e.ECY}, D: e.ECD}
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return "", errUser("version of key %q cannot be encoded: %v", p.Name, err)
		}
		return strings.TrimSpace(string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))), nil
	}
	return "", errUser("key type %s has no %s", p.Type, typ)
}

// keyBackup is the decoded form of a backup, in Vault's shape: the policy
// and its archived versions, indexed by version (index 0 is unused).
type keyBackup struct {
	Policy       *policy `json:"policy"`
	ArchivedKeys *struct {
		Keys []keyEntry `json:"keys"`
	} `json:"archived_keys"`
}

func (b *backend) backupKey(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	name := d.String("name")
	var out []byte
	p, err := b.update(ctx, req.Storage, name, func(p *policy) error {
		if !p.Exportable {
			return errUser("key %q cannot be backed up: it is not exportable", name)
		}
		if !p.AllowPlaintextBackup {
			return errUser("key %q cannot be backed up: allow_plaintext_backup is off", name)
		}
		p.BackupInfo = &backupInfo{Time: b.now().UTC(), Version: p.LatestVersion}
		kb := keyBackup{Policy: p}
		kb.ArchivedKeys = &struct {
			Keys []keyEntry `json:"keys"`
		}{Keys: make([]keyEntry, p.LatestVersion+1)}
		for _, v := range p.versions() {
			kb.ArchivedKeys.Keys[v], _ = p.entry(v)
		}
		var err error
		out, err = json.Marshal(kb)
		return err
	})
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, nil
	}
	return &logical.Response{Data: map[string]any{"backup": base64.StdEncoding.EncodeToString(out)}}, nil
}

func (b *backend) restoreKey(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(d.String("backup")))
	if err != nil || len(raw) == 0 {
		return nil, errUser("backup is not valid base64")
	}
	var kb keyBackup
	if err := json.Unmarshal(raw, &kb); err != nil || kb.Policy == nil {
		return nil, errUser("backup does not hold a transit key")
	}
	p := kb.Policy
	if name := d.String("name"); name != "" {
		p.Name = name
	}
	if !validName.MatchString(p.Name) {
		return nil, errUser("the backup's key name %q is not a valid key name: give one in restore/<name>", p.Name)
	}
	if p.Keys == nil {
		p.Keys = map[string]keyEntry{}
	}
	if kb.ArchivedKeys != nil {
		for v, e := range kb.ArchivedKeys.Keys {
			if _, ok := p.Keys[strconv.Itoa(v)]; !ok && v >= 1 && v >= p.MinAvailableVersion && v <= p.LatestVersion {
				p.Keys[strconv.Itoa(v)] = e
			}
		}
	}
	if p.Type == vaultHMACType && vaultHMAC(p) {
		p.Type = typeHMAC
	}
	if p.LatestVersion < 1 || len(p.Keys) == 0 {
		return nil, errUser("backup holds no key versions")
	}
	if _, ok := p.entry(p.LatestVersion); !ok {
		return nil, errUser("backup lacks the latest version (%d) of its key", p.LatestVersion)
	}
	if err := p.decoded(); err != nil {
		return nil, errUser("backup holds an unusable key: %v", err)
	}
	p.RestoreInfo = &backupInfo{Time: b.now().UTC(), Version: p.LatestVersion}
	defer b.lock(p.Name)()
	existing, err := b.load(ctx, req.Storage, p.Name)
	if err != nil {
		return nil, err
	}
	if existing != nil && !d.Bool("force") {
		return nil, errUser("key %q already exists: restore with force=true to overwrite it", p.Name)
	}
	return nil, b.persist(ctx, req.Storage, p)
}

// vaultHMACType is HashiCorp Vault's number for hmac keys: it numbers its
// managed keys 10 and hmac keys 11, where OpenBao (whose numbers Arca
// writes) has hmac 10 and xchacha20-poly1305 11.
const vaultHMACType keyType = 11

// vaultHMAC reports whether a backup's key numbered 11 is one of Vault's
// hmac keys: those hold the same bytes as key and hmac_key in every
// version, where a random hmac_key goes with an xchacha20-poly1305 key.
func vaultHMAC(p *policy) bool {
	for _, e := range p.Keys {
		if len(e.Key) == 0 || !bytes.Equal(e.Key, e.HMACKey) {
			return false
		}
	}
	return len(p.Keys) > 0
}

func (b *backend) readCacheConfig(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	size, err := b.readCacheSize(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{"size": size}}, nil
}

func (b *backend) writeCacheConfig(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	size := d.Int("size")
	if size != 0 && size < 10 {
		return nil, errUser("size must be 0 (no limit) or at least 10, got %d", size)
	}
	raw, _ := json.Marshal(map[string]int{"size": size})
	if err := req.Storage.Put(ctx, &logical.StorageEntry{Key: cacheConfigKey, Value: raw}); err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.cacheSize = size
	b.mu.Unlock()
	if size > 0 {
		b.flush()
	}
	return &logical.Response{Data: map[string]any{"size": size}}, nil
}

func (b *backend) readKeysConfig(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	disable, err := readKeysConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{"disable_upsert": disable}}, nil
}

func (b *backend) writeKeysConfig(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	disable := d.Bool("disable_upsert")
	raw, _ := json.Marshal(map[string]bool{"disable_upsert": disable})
	if err := req.Storage.Put(ctx, &logical.StorageEntry{Key: keysConfigKey, Value: raw}); err != nil {
		return nil, err
	}
	b.disableUpsert.Store(disable)
	return &logical.Response{Data: map[string]any{"disable_upsert": disable}}, nil
}

func readKeysConfig(ctx context.Context, s logical.Storage) (bool, error) {
	e, err := s.Get(ctx, keysConfigKey)
	if err != nil || e == nil {
		return false, err
	}
	var c struct {
		DisableUpsert bool `json:"disable_upsert"`
	}
	if err := json.Unmarshal(e.Value, &c); err != nil {
		return false, fmt.Errorf("transit: decoding the keys configuration: %w", err)
	}
	return c.DisableUpsert, nil
}

// decodeB64 decodes an optional base64 field, naming it when it is bad.
func decodeB64(field, s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	out, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errUser("%s is not valid base64", field)
	}
	return out, nil
}
