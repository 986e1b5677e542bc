package transit

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/arcasec/arca/internal/logical"
	fw "github.com/arcasec/arca/internal/logical/framework"
)

func (b *backend) cryptoPaths() []*fw.Path {
	name := fw.GenericNameRegex("name")
	batch := &fw.FieldSchema{Type: fw.TypeAny, Description: "a list of items, each with the single-request fields; results come back in batch_results, in order"}
	partial := &fw.FieldSchema{Type: fw.TypeInt, Description: "HTTP status for a batch where some items failed and some succeeded (default 400)"}
	ctxField := &fw.FieldSchema{Type: fw.TypeString, Description: "base64 context, for a derived key"}
	version := &fw.FieldSchema{Type: fw.TypeInt, Description: "key version to use (default: the latest)"}
	aad := &fw.FieldSchema{Type: fw.TypeString, Description: "base64 associated data, authenticated but not encrypted (AEAD key types)"}
	hashAlg := &fw.FieldSchema{Type: fw.TypeString, Description: "sha1, sha2-224, sha2-256, sha2-384, sha2-512, sha3-224, sha3-256, sha3-384, sha3-512 (or none, for prehashed pkcs1v15)"}
	signFields := func(extra map[string]*fw.FieldSchema) map[string]*fw.FieldSchema {
		f := map[string]*fw.FieldSchema{
			"name":                 nameField,
			"urlalgorithm":         hashAlg,
			"hash_algorithm":       hashAlg,
			"algorithm":            hashAlg,
			"input":                {Type: fw.TypeString, Description: "base64 input"},
			"context":              ctxField,
			"key_version":          version,
			"prehashed":            {Type: fw.TypeBool, Description: "the input is already a hash"},
			"signature_algorithm":  {Type: fw.TypeString, Description: "pss (default) or pkcs1v15, for RSA keys"},
			"marshaling_algorithm": {Type: fw.TypeString, Default: "asn1", Description: "asn1 (default) or jws"},
			"salt_length":          {Type: fw.TypeString, Default: "auto", Description: "RSA PSS salt length: auto, hash, or a number"},
			"batch_input":          batch,
		}
		for k, v := range extra {
			f[k] = v
		}
		return f
	}
	withAlg := `(?:/(?P<urlalgorithm>[^/]+))?`
	return []*fw.Path{
		{
			Pattern: `encrypt/` + name,
			Fields: map[string]*fw.FieldSchema{
				"name":                          nameField,
				"plaintext":                     {Type: fw.TypeString, Description: "base64 plaintext"},
				"context":                       ctxField,
				"key_version":                   version,
				"associated_data":               aad,
				"type":                          {Type: fw.TypeString, Default: "aes256-gcm96", Description: "type of the key to create when it does not exist"},
				"convergent_encryption":         {Type: fw.TypeBool, Description: "make a created key convergent"},
				"nonce":                         {Type: fw.TypeString, Description: "not supported: nonces are never chosen by callers"},
				"batch_input":                   batch,
				"partial_failure_response_code": partial,
			},
			ExistenceCheck: b.keyExists,
			Operations: map[logical.Operation]fw.OperationFunc{
				logical.CreateOperation: b.encrypt,
				logical.UpdateOperation: b.encrypt,
			},
			HelpSynopsis: "Encrypt base64 plaintext with a key (created on first use when the caller may create it).",
		},
		{
			Pattern: `decrypt/` + name,
			Fields: map[string]*fw.FieldSchema{
				"name":                          nameField,
				"ciphertext":                    {Type: fw.TypeString, Description: "vault:v<N>:... ciphertext"},
				"context":                       ctxField,
				"associated_data":               aad,
				"nonce":                         {Type: fw.TypeString, Description: "not supported"},
				"batch_input":                   batch,
				"partial_failure_response_code": partial,
			},
			Operations:   map[logical.Operation]fw.OperationFunc{logical.UpdateOperation: b.decrypt},
			HelpSynopsis: "Decrypt a ciphertext; the plaintext comes back base64.",
		},
		{
			Pattern: `rewrap/` + name,
			Fields: map[string]*fw.FieldSchema{
				"name":                          nameField,
				"ciphertext":                    {Type: fw.TypeString, Description: "vault:v<N>:... ciphertext"},
				"context":                       ctxField,
				"key_version":                   version,
				"nonce":                         {Type: fw.TypeString, Description: "not supported"},
				"batch_input":                   batch,
				"partial_failure_response_code": partial,
			},
			Operations:   map[logical.Operation]fw.OperationFunc{logical.UpdateOperation: b.rewrap},
			HelpSynopsis: "Re-encrypt a ciphertext with the latest (or given) key version without revealing the plaintext.",
		},
		{
			Pattern: `datakey/(?P<plaintext>[^/]+)/` + name,
			Fields: map[string]*fw.FieldSchema{
				"name":        nameField,
				"plaintext":   {Type: fw.TypeString, Description: "plaintext (return the key too) or wrapped (only its ciphertext)"},
				"context":     ctxField,
				"bits":        {Type: fw.TypeInt, Default: 256, Description: "128, 256 or 512"},
				"key_version": version,
				"nonce":       {Type: fw.TypeString, Description: "not supported"},
			},
			Operations:   map[logical.Operation]fw.OperationFunc{logical.UpdateOperation: b.datakey},
			HelpSynopsis: "Generate a data key, encrypted with the named key.",
		},
		{
			Pattern:      `sign/` + name + withAlg,
			Fields:       signFields(nil),
			Operations:   map[logical.Operation]fw.OperationFunc{logical.UpdateOperation: b.sign},
			HelpSynopsis: "Sign base64 input.",
		},
		{
			Pattern: `verify/` + name + withAlg,
			Fields: signFields(map[string]*fw.FieldSchema{
				"signature": {Type: fw.TypeString, Description: "vault:v<N>:... signature to check"},
				"hmac":      {Type: fw.TypeString, Description: "vault:v<N>:... HMAC to check"},
			}),
			Operations:   map[logical.Operation]fw.OperationFunc{logical.UpdateOperation: b.verify},
			HelpSynopsis: "Verify a signature or an HMAC.",
		},
		{
			Pattern: `hmac/` + name + withAlg,
			Fields: map[string]*fw.FieldSchema{
				"name":           nameField,
				"urlalgorithm":   hashAlg,
				"hash_algorithm": hashAlg,
				"algorithm":      hashAlg,
				"input":          {Type: fw.TypeString, Description: "base64 input"},
				"key_version":    version,
				"batch_input":    batch,
			},
			Operations:   map[logical.Operation]fw.OperationFunc{logical.UpdateOperation: b.hmac},
			HelpSynopsis: "Compute the HMAC of base64 input with a key's HMAC key.",
		},
		{
			Pattern: `random(?:/(?P<source>[^/]+))?(?:/(?P<urlbytes>[^/]+))?`,
			Fields: map[string]*fw.FieldSchema{
				"source":   {Type: fw.TypeString, Default: "platform", Description: "platform, seal or all (all are the system's CSPRNG here)"},
				"urlbytes": {Type: fw.TypeString, Description: "number of bytes, in the path"},
				"bytes":    {Type: fw.TypeInt, Default: 32, Description: "number of bytes (1 to 131072)"},
				"format":   {Type: fw.TypeString, Default: "base64", Description: "base64 or hex"},
			},
			Operations:   map[logical.Operation]fw.OperationFunc{logical.UpdateOperation: b.random},
			HelpSynopsis: "Random bytes from crypto/rand.",
		},
		{
			Pattern: `hash(?:/(?P<urlalgorithm>[^/]+))?`,
			Fields: map[string]*fw.FieldSchema{
				"urlalgorithm": hashAlg,
				"algorithm":    hashAlg,
				"input":        {Type: fw.TypeString, Required: true, Description: "base64 input"},
				"format":       {Type: fw.TypeString, Default: "hex", Description: "hex or base64"},
			},
			Operations:   map[logical.Operation]fw.OperationFunc{logical.UpdateOperation: b.hash},
			HelpSynopsis: "Hash base64 input.",
		},
	}
}

func (b *backend) keyExists(ctx context.Context, req *logical.Request, d *fw.FieldData) (bool, error) {
	p, err := b.getPolicy(ctx, req.Storage, d.String("name"))
	return p != nil, err
}

// item is one entry of a batch, or a single request's fields.
type item map[string]any

func (it item) str(k string) (string, error) {
	switch v := it[k].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	}
	return "", errUser("%s must be a string", k)
}

func (it item) int(k string) (int, error) {
	switch v := it[k].(type) {
	case nil:
		return 0, nil
	case json.Number:
		n, err := strconv.Atoi(v.String())
		if err != nil {
			return 0, errUser("%s must be an integer", k)
		}
		return n, nil
	case float64:
		if v != float64(int(v)) {
			return 0, errUser("%s must be an integer", k)
		}
		return int(v), nil
	case int:
		return v, nil
	case string:
		if v == "" {
			return 0, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, errUser("%s must be an integer", k)
		}
		return n, nil
	}
	return 0, errUser("%s must be an integer", k)
}

// b64 decodes the optional base64 field k of the item.
func (it item) b64(k string) ([]byte, error) {
	s, err := it.str(k)
	if err != nil {
		return nil, err
	}
	return decodeB64(k, s)
}

// items returns the request's batch_input, or the single request as a
// batch of one built from fields; batch reports which.
func items(d *fw.FieldData, fields ...string) (list []item, batch bool, err error) {
	raw, ok := d.Raw["batch_input"]
	if !ok || raw == nil {
		single := item{}
		for _, f := range fields {
			if v, ok := d.GetOk(f); ok {
				single[f] = v
			}
		}
		return []item{single}, false, nil
	}
	if s, ok := raw.(string); ok { // a JSON list given as a string (CLI)
		var decoded []any
		if err := json.Unmarshal([]byte(s), &decoded); err != nil {
			return nil, true, errUser("batch_input must be a list of objects")
		}
		raw = decoded
	}
	in, ok := raw.([]any)
	if !ok {
		return nil, true, errUser("batch_input must be a list of objects")
	}
	if len(in) == 0 {
		return nil, true, errUser("batch_input is empty")
	}
	if len(in) > maxBatchItems {
		return nil, true, errUser("batch_input has %d items; at most %d are allowed in one request", len(in), maxBatchItems)
	}
	list = make([]item, len(in))
	for i, e := range in {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, true, errUser("batch_input[%d] must be an object", i)
		}
		list[i] = m
	}
	return list, true, nil
}

// batchResult is one entry of batch_results.
type batchResult map[string]any

// respond builds the response to a request that went item by item. A single
// request's error is the request's error; a batch carries each item's
// error in its entry, and its status is 400 when any item failed
// (partial_failure_response_code changes it when some also succeeded), as
// Vault answers, unless lenient (sign, verify and hmac answer 200).
func respond(d *fw.FieldData, list []item, batch bool, results []batchResult, errs []error, lenient bool) (*logical.Response, error) {
	if !batch {
		if errs[0] != nil {
			return nil, errs[0]
		}
		return &logical.Response{Data: results[0]}, nil
	}
	failed, succeeded, internal := false, false, false
	out := make([]batchResult, len(results))
	for i, r := range results {
		if r == nil {
			r = batchResult{}
		}
		if errs[i] != nil {
			failed = true
			if logical.StatusOf(errs[i]) >= 500 {
				internal = true
			}
			r = batchResult{"error": errs[i].Error()}
		} else {
			succeeded = true
		}
		ref, _ := list[i]["reference"].(string)
		r["reference"] = ref
		out[i] = r
	}
	resp := &logical.Response{Data: map[string]any{"batch_results": out}}
	if failed && !lenient {
		resp.StatusCode = http.StatusBadRequest
		if internal {
			resp.StatusCode = http.StatusInternalServerError
		}
		if code, ok := d.GetOk("partial_failure_response_code"); ok && succeeded {
			if c := code.(int); c >= 200 && c <= 599 {
				resp.StatusCode = c
			} else {
				resp.AddWarning(fmt.Sprintf("partial_failure_response_code %d is not an HTTP status; answering %d", c, resp.StatusCode))
			}
		}
	}
	return resp, nil
}

// each runs fn on every item of the request, in order, and answers as
// respond does.
func each(d *fw.FieldData, list []item, batch, lenient bool, fn func(item) (batchResult, error)) (*logical.Response, error) {
	results := make([]batchResult, len(list))
	errs := make([]error, len(list))
	for i, it := range list {
		results[i], errs[i] = fn(it)
	}
	return respond(d, list, batch, results, errs, lenient)
}

// keyFor returns the named key or a 400 naming it.
func (b *backend) keyFor(ctx context.Context, req *logical.Request, name, what string) (*policy, error) {
	p, err := b.getPolicy(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, errUser("%s key %q not found", what, name)
	}
	return p, nil
}

func noNonce(d *fw.FieldData) error {
	if s, _ := d.Raw["nonce"].(string); s != "" {
		return errUser("nonce is not supported: Arca chooses every nonce (convergent keys derive it from the plaintext)")
	}
	return nil
}

func (b *backend) encrypt(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	if err := noNonce(d); err != nil {
		return nil, err
	}
	list, batch, err := items(d, "plaintext", "context", "key_version", "associated_data")
	if err != nil {
		return nil, err
	}
	if !batch {
		if _, ok := d.GetOk("plaintext"); !ok {
			return nil, errUser("missing plaintext to encrypt")
		}
	}
	name := d.String("name")
	p, err := b.getPolicy(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if p == nil {
		// Vault creates a missing key on encrypt for a caller allowed to
		// create it; a context in the first item makes it derived. The core
		// checks that: a write to a missing key is a create, unless the
		// caller's policy grants create and update both, when it stays an
		// update.
		if b.disableUpsert.Load() {
			return nil, errUser("encryption key %q not found (config/keys disables creating keys on encrypt)", name)
		}
		typ, ok := parseKeyType(d.String("type"))
		if !ok || !typ.symmetric() {
			return nil, errUser("type %q cannot be created by encrypt: use aes128-gcm96, aes256-gcm96 or chacha20-poly1305", d.String("type"))
		}
		c, _ := list[0].str("context")
		kc := keyConfig{typ: typ, derived: c != "", convergent: d.Bool("convergent_encryption")}
		if kc.convergent && !kc.derived {
			return nil, errUser("convergent_encryption requires derived keys, so a context is required")
		}
		if p, _, err = b.create(ctx, req.Storage, name, kc); err != nil {
			return nil, err
		}
	}
	return each(d, list, batch, false, func(it item) (batchResult, error) { return encryptItem(p, it) })
}

func encryptItem(p *policy, it item) (batchResult, error) {
	plaintext, err := it.b64("plaintext")
	if err != nil {
		return nil, err
	}
	context, err := it.b64("context")
	if err != nil {
		return nil, err
	}
	aad, err := it.b64("associated_data")
	if err != nil {
		return nil, err
	}
	ver, err := it.int("key_version")
	if err != nil {
		return nil, err
	}
	ct, ver, err := p.encrypt(ver, context, plaintext, aad)
	if err != nil {
		return nil, err
	}
	return batchResult{"ciphertext": ct, "key_version": ver}, nil
}

func (b *backend) decrypt(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	return b.onCiphertexts(ctx, req, d, "decrypt", decryptItem, "associated_data")
}

// onCiphertexts serves decrypt and rewrap: it reads the request's
// ciphertexts (with context and the extra fields) and runs fn on each with
// the named encryption key; verb names the operation in errors.
func (b *backend) onCiphertexts(ctx context.Context, req *logical.Request, d *fw.FieldData, verb string, fn func(*policy, item) (batchResult, error), extra string) (*logical.Response, error) {
	if err := noNonce(d); err != nil {
		return nil, err
	}
	list, batch, err := items(d, "ciphertext", "context", extra)
	if err != nil {
		return nil, err
	}
	if !batch && d.String("ciphertext") == "" {
		return nil, errUser("missing ciphertext to %s", verb)
	}
	p, err := b.keyFor(ctx, req, d.String("name"), "encryption")
	if err != nil {
		return nil, err
	}
	return each(d, list, batch, false, func(it item) (batchResult, error) { return fn(p, it) })
}

// ciphertextOf reads an item's ciphertext (required) and base64 context.
func ciphertextOf(it item, verb string) (string, []byte, error) {
	ct, err := it.str("ciphertext")
	if err != nil {
		return "", nil, err
	}
	if ct == "" {
		return "", nil, errUser("missing ciphertext to %s", verb)
	}
	context, err := it.b64("context")
	if err != nil {
		return "", nil, err
	}
	return ct, context, nil
}

func decryptItem(p *policy, it item) (batchResult, error) {
	ct, context, err := ciphertextOf(it, "decrypt")
	if err != nil {
		return nil, err
	}
	aad, err := it.b64("associated_data")
	if err != nil {
		return nil, err
	}
	plain, _, err := p.decrypt(ct, context, aad)
	if err != nil {
		return nil, err
	}
	return batchResult{"plaintext": base64.StdEncoding.EncodeToString(plain)}, nil
}

func (b *backend) rewrap(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	return b.onCiphertexts(ctx, req, d, "rewrap", rewrapItem, "key_version")
}

func rewrapItem(p *policy, it item) (batchResult, error) {
	ct, context, err := ciphertextOf(it, "rewrap")
	if err != nil {
		return nil, err
	}
	ver, err := it.int("key_version")
	if err != nil {
		return nil, err
	}
	plain, _, err := p.decrypt(ct, context, nil)
	if err != nil {
		return nil, err
	}
	out, ver, err := p.encrypt(ver, context, plain, nil)
	if err != nil {
		return nil, err
	}
	return batchResult{"ciphertext": out, "key_version": ver}, nil
}

func (b *backend) datakey(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	if err := noNonce(d); err != nil {
		return nil, err
	}
	kind := d.String("plaintext")
	if kind != "plaintext" && kind != "wrapped" {
		return nil, errUser("invalid data key type %q: use datakey/plaintext/<name> or datakey/wrapped/<name>", kind)
	}
	bits := d.Int("bits")
	if bits != 128 && bits != 256 && bits != 512 {
		return nil, errUser("bits must be 128, 256 or 512, got %d", bits)
	}
	context, err := decodeB64("context", d.String("context"))
	if err != nil {
		return nil, err
	}
	p, err := b.keyFor(ctx, req, d.String("name"), "encryption")
	if err != nil {
		return nil, err
	}
	key := make([]byte, bits/8)
	rand.Read(key)
	ct, ver, err := p.encrypt(d.Int("key_version"), context, key, nil)
	if err != nil {
		return nil, err
	}
	data := map[string]any{"ciphertext": ct, "key_version": ver}
	if kind == "plaintext" {
		data["plaintext"] = base64.StdEncoding.EncodeToString(key)
	}
	return &logical.Response{Data: data}, nil
}

// hashOf reads the hash algorithm from the path, hash_algorithm or
// algorithm, in that order; sha2-256 by default.
func hashOf(d *fw.FieldData, fields ...string) (string, crypto.Hash, error) {
	name := "sha2-256"
	for _, f := range fields {
		if s := d.String(f); s != "" {
			name = s
			break
		}
	}
	h, ok := hashes[name]
	if !ok {
		return name, 0, errUser("invalid hash algorithm %q", name)
	}
	return name, h, nil
}

func signOptionsOf(d *fw.FieldData, p *policy) (signOptions, error) {
	_, h, err := hashOf(d, "urlalgorithm", "hash_algorithm", "algorithm")
	if err != nil {
		return signOptions{}, err
	}
	o := signOptions{hash: h, prehashed: d.Bool("prehashed"), algorithm: d.String("signature_algorithm")}
	switch m := d.String("marshaling_algorithm"); m {
	case "asn1":
	case "jws":
		o.jws = true
	default:
		return o, errUser("invalid marshaling_algorithm %q: use asn1 or jws", m)
	}
	if p.Type.rsa() {
		switch o.algorithm {
		case "":
			o.algorithm = "pss"
		case "pss", "pkcs1v15":
		default:
			return o, errUser("invalid signature_algorithm %q: use pss or pkcs1v15", o.algorithm)
		}
		switch s := d.String("salt_length"); s {
		case "auto":
			o.saltLength = rsa.PSSSaltLengthAuto
		case "hash":
			o.saltLength = rsa.PSSSaltLengthEqualsHash
		default:
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				return o, errUser("invalid salt_length %q: use auto, hash or a positive number", s)
			}
			o.saltLength = n
		}
	}
	if h == 0 && (!o.prehashed || o.algorithm != "pkcs1v15") {
		return o, errUser("hash_algorithm=none requires prehashed=true and signature_algorithm=pkcs1v15")
	}
	return o, nil
}

func (b *backend) sign(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	p, err := b.keyFor(ctx, req, d.String("name"), "signing")
	if err != nil {
		return nil, err
	}
	if !p.Type.signs() {
		return nil, errUser("key type %s does not support signing", p.Type)
	}
	o, err := signOptionsOf(d, p)
	if err != nil {
		return nil, err
	}
	list, batch, err := items(d, "input", "context")
	if err != nil {
		return nil, err
	}
	ver := d.Int("key_version")
	return each(d, list, batch, true, func(it item) (batchResult, error) {
		input, err := it.b64("input")
		if err != nil {
			return nil, err
		}
		if _, ok := it["input"]; !ok {
			return nil, errUser("missing input to sign")
		}
		context, err := it.b64("context")
		if err != nil {
			return nil, err
		}
		sig, v, pub, err := p.sign(ver, context, input, o)
		if err != nil {
			return nil, err
		}
		r := batchResult{"signature": sig, "key_version": v}
		if pub != nil && batch {
			r["publickey"] = pub // Vault's name in batch results
		} else if pub != nil {
			r["public_key"] = pub
		}
		return r, nil
	})
}

func (b *backend) verify(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	list, batch, err := items(d, "input", "context", "signature", "hmac")
	if err != nil {
		return nil, err
	}
	p, err := b.keyFor(ctx, req, d.String("name"), "verification")
	if err != nil {
		return nil, err
	}
	_, h, err := hashOf(d, "urlalgorithm", "hash_algorithm", "algorithm")
	if err != nil {
		return nil, err
	}
	var o signOptions
	if p.Type.signs() {
		if o, err = signOptionsOf(d, p); err != nil {
			return nil, err
		}
	}
	return each(d, list, batch, true, func(it item) (batchResult, error) {
		input, err := it.b64("input")
		if err != nil {
			return nil, err
		}
		context, err := it.b64("context")
		if err != nil {
			return nil, err
		}
		sig, _ := it["signature"].(string)
		mac, _ := it["hmac"].(string)
		var valid bool
		switch {
		case sig != "" && mac != "":
			return nil, errUser("give either signature or hmac, not both")
		case mac != "":
			if h == 0 {
				return nil, errUser("hash algorithm none cannot check an HMAC")
			}
			valid, err = p.verifyHMAC(h, input, mac)
		case sig != "":
			valid, err = p.verify(context, input, sig, o)
		default:
			return nil, errUser("missing signature or hmac to verify")
		}
		if err != nil {
			return nil, err
		}
		return batchResult{"valid": valid}, nil
	})
}

func (b *backend) hmac(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	_, h, err := hashOf(d, "urlalgorithm", "hash_algorithm", "algorithm")
	if err != nil {
		return nil, err
	}
	if h == 0 {
		return nil, errUser("hash algorithm none cannot make an HMAC")
	}
	list, batch, err := items(d, "input")
	if err != nil {
		return nil, err
	}
	p, err := b.keyFor(ctx, req, d.String("name"), "HMAC")
	if err != nil {
		return nil, err
	}
	ver := d.Int("key_version")
	return each(d, list, batch, true, func(it item) (batchResult, error) {
		if _, ok := it["input"]; !ok {
			return nil, errUser("missing input for the HMAC")
		}
		input, err := it.b64("input")
		if err != nil {
			return nil, err
		}
		mac, _, err := p.hmac(ver, h, input)
		if err != nil {
			return nil, err
		}
		return batchResult{"hmac": mac}, nil
	})
}

// maxRandomBytes bounds random: Vault's limit.
const maxRandomBytes = 128 * 1024

func (b *backend) random(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	source, n := d.String("source"), d.Int("bytes")
	urlBytes := d.String("urlbytes")
	if urlBytes == "" {
		if _, err := strconv.Atoi(source); err == nil { // random/<bytes>
			source, urlBytes = "", source
		}
	}
	if urlBytes != "" {
		var err error
		if n, err = strconv.Atoi(urlBytes); err != nil {
			return nil, errUser("the byte count %q in the path is not a number", urlBytes)
		}
	}
	switch source {
	case "", "platform", "seal", "all":
	default:
		return nil, errUser("invalid source %q: use platform, seal or all", source)
	}
	if n < 1 || n > maxRandomBytes {
		return nil, errUser("bytes must be between 1 and %d, got %d", maxRandomBytes, n)
	}
	out := make([]byte, n)
	rand.Read(out)
	var s string
	switch f := d.String("format"); f {
	case "base64":
		s = base64.StdEncoding.EncodeToString(out)
	case "hex":
		s = hex.EncodeToString(out)
	default:
		return nil, errUser("invalid format %q: use base64 or hex", f)
	}
	return &logical.Response{Data: map[string]any{"random_bytes": s}}, nil
}

func (b *backend) hash(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	_, h, err := hashOf(d, "urlalgorithm", "algorithm")
	if err != nil {
		return nil, err
	}
	if h == 0 {
		return nil, errUser("invalid hash algorithm \"none\"")
	}
	input, err := base64.StdEncoding.DecodeString(d.String("input"))
	if err != nil {
		return nil, errUser("input is not valid base64")
	}
	sum := h.New()
	sum.Write(input)
	var s string
	switch f := d.String("format"); f {
	case "hex":
		s = hex.EncodeToString(sum.Sum(nil))
	case "base64":
		s = base64.StdEncoding.EncodeToString(sum.Sum(nil))
	default:
		return nil, errUser("invalid format %q: use hex or base64", f)
	}
	return &logical.Response{Data: map[string]any{"sum": s}}, nil
}
