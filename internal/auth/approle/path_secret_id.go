package approle

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/logical/framework"
	"github.com/arcasec/arca/internal/storage"
)

// secretIDEntry is a stored secret ID: everything but the secret ID itself,
// of which only the HMAC is kept.
type secretIDEntry struct {
	SecretIDHMAC    string            `json:"secret_id_hmac"`
	Accessor        string            `json:"secret_id_accessor"`
	NumUses         int               `json:"secret_id_num_uses"`
	TTL             time.Duration     `json:"secret_id_ttl"`
	CreationTime    time.Time         `json:"creation_time"`
	ExpirationTime  time.Time         `json:"expiration_time"`
	LastUpdatedTime time.Time         `json:"last_updated_time"`
	Metadata        map[string]string `json:"metadata"`
	CIDRList        []string          `json:"cidr_list"`
	TokenBoundCIDRs []string          `json:"token_bound_cidrs"`
}

// accessorEntry maps a secret ID accessor to its secret ID's entry.
type accessorEntry struct {
	RoleNameHMAC string `json:"role_name_hmac"`
	SecretIDHMAC string `json:"secret_id_hmac"`
}

func (e *secretIDEntry) expired(now time.Time) bool {
	return !e.ExpirationTime.IsZero() && !now.Before(e.ExpirationTime)
}

func (e *secretIDEntry) data() map[string]any {
	meta := e.Metadata
	if meta == nil {
		meta = map[string]string{}
	}
	return map[string]any{
		"secret_id_accessor": e.Accessor,
		"secret_id_num_uses": e.NumUses,
		"secret_id_ttl":      int64(e.TTL / time.Second),
		"creation_time":      e.CreationTime,
		"expiration_time":    e.ExpirationTime,
		"last_updated_time":  e.LastUpdatedTime,
		"metadata":           meta,
		"cidr_list":          nonNil(e.CIDRList),
		"token_bound_cidrs":  framework.DisplayCIDRs(e.TokenBoundCIDRs),
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (b *backend) secretIDPaths() []*framework.Path {
	name := "role/" + framework.GenericNameRegex("role_name")
	genFields := func(custom bool) map[string]*framework.FieldSchema {
		f := map[string]*framework.FieldSchema{
			"role_name":         roleNameField(),
			"metadata":          {Type: framework.TypeAny, Description: "Metadata for the secret ID: a JSON object of strings, or a string holding one. It is attached to login tokens."},
			"cidr_list":         {Type: framework.TypeCommaStringSlice, Description: "Addresses or CIDR blocks logins with this secret ID may come from; within the role's secret_id_bound_cidrs."},
			"token_bound_cidrs": {Type: framework.TypeCommaStringSlice, Description: "Addresses or CIDR blocks login tokens may be used from; within the role's token_bound_cidrs."},
			"ttl":               {Type: framework.TypeDuration, Description: "Lifetime of the secret ID; at most the role's secret_id_ttl."},
			"num_uses":          {Type: framework.TypeInt, Description: "How many logins the secret ID allows; at most the role's secret_id_num_uses."},
		}
		if custom {
			f["secret_id"] = &framework.FieldSchema{Type: framework.TypeString, Required: true, Description: "The secret ID to register."}
		}
		return f
	}
	secretField := map[string]*framework.FieldSchema{
		"role_name": roleNameField(),
		"secret_id": {Type: framework.TypeString, Description: "The secret ID."},
	}
	accessorField := map[string]*framework.FieldSchema{
		"role_name":          roleNameField(),
		"secret_id_accessor": {Type: framework.TypeString, Description: "The secret ID's accessor."},
	}
	return []*framework.Path{
		{
			Pattern: name + "/secret-id/?",
			Fields:  genFields(false),
			Operations: map[logical.Operation]framework.OperationFunc{
				logical.UpdateOperation: b.secretIDGenerate(false),
				logical.ListOperation:   b.secretIDList,
			},
			HelpSynopsis: "Generates a secret ID for the role, or lists the accessors of its secret IDs.",
		},
		{
			Pattern: name + "/custom-secret-id",
			Fields:  genFields(true),
			Operations: map[logical.Operation]framework.OperationFunc{
				logical.UpdateOperation: b.secretIDGenerate(true),
			},
			HelpSynopsis: "Registers a secret ID of the caller's choosing for the role.",
		},
		{
			Pattern: name + "/secret-id/lookup/?",
			Fields:  secretField,
			Operations: map[logical.Operation]framework.OperationFunc{
				logical.UpdateOperation: b.secretIDLookup,
			},
			HelpSynopsis: "Shows a secret ID's properties.",
		},
		{
			Pattern: name + "/secret-id/destroy/?",
			Fields:  secretField,
			Operations: map[logical.Operation]framework.OperationFunc{
				logical.UpdateOperation: b.secretIDDestroy,
				logical.DeleteOperation: b.secretIDDestroy,
			},
			HelpSynopsis: "Destroys a secret ID.",
		},
		{
			Pattern: name + "/secret-id-accessor/lookup/?",
			Fields:  accessorField,
			Operations: map[logical.Operation]framework.OperationFunc{
				logical.UpdateOperation: b.accessorLookup,
			},
			HelpSynopsis: "Shows the properties of the secret ID an accessor names.",
		},
		{
			Pattern: name + "/secret-id-accessor/destroy/?",
			Fields:  accessorField,
			Operations: map[logical.Operation]framework.OperationFunc{
				logical.UpdateOperation: b.accessorDestroy,
				logical.DeleteOperation: b.accessorDestroy,
			},
			HelpSynopsis: "Destroys the secret ID an accessor names.",
		},
	}
}

// parseMetadata accepts a JSON object of strings, or a string holding one
// (what the vault CLI and hvac send).
func parseMetadata(v any) (map[string]string, error) {
	switch m := v.(type) {
	case nil:
		return nil, nil
	case string:
		if strings.TrimSpace(m) == "" {
			return nil, nil
		}
		var out map[string]string
		if err := json.Unmarshal([]byte(m), &out); err != nil {
			return nil, logical.BadRequest("metadata must be a JSON object of strings: %v", err)
		}
		return out, nil
	case map[string]any:
		out := make(map[string]string, len(m))
		for k, v := range m {
			s, ok := v.(string)
			if !ok {
				return nil, logical.BadRequest("metadata: the value of %q must be a string", k)
			}
			out[k] = s
		}
		return out, nil
	}
	return nil, logical.BadRequest("metadata must be a JSON object of strings")
}

// cidrsWithin reports whether every block in inner lies inside one of outer.
func cidrsWithin(inner, outer []string) bool {
	for _, in := range inner {
		p, err := netip.ParsePrefix(in)
		if err != nil {
			return false
		}
		ok := false
		for _, out := range outer {
			q, err := netip.ParsePrefix(out)
			if err == nil && q.Bits() <= p.Bits() && q.Contains(p.Addr()) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// roleForSecretIDs returns the named role with the HMAC of its name; the
// caller holds rolesMu for reading. A missing role is a 404.
func (b *backend) roleForSecretIDs(ctx context.Context, s logical.Storage, name string) (*role, string, error) {
	r, err := b.readRole(ctx, s, name)
	if err != nil {
		return nil, "", err
	}
	if r == nil {
		return nil, "", logical.Errorf(http.StatusNotFound, "role %q does not exist", name)
	}
	h, err := b.hmac(ctx, s, "role_name", name)
	return r, h, err
}

func secretIDKey(roleHMAC, secretHMAC string) string {
	return secretIDPrefix + roleHMAC + "/" + secretHMAC
}

func (b *backend) secretIDGenerate(custom bool) framework.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		b.rolesMu.RLock()
		defer b.rolesMu.RUnlock()
		r, roleHMAC, err := b.roleForSecretIDs(ctx, req.Storage, roleName(d))
		if err != nil {
			return nil, err
		}
		if !r.BindSecretID {
			return nil, logical.BadRequest("bind_secret_id is not set on the role")
		}
		cidrs, err := framework.ParseCIDRs("cidr_list", d.Strings("cidr_list"))
		if err != nil {
			return nil, err
		}
		if len(r.SecretIDBoundCIDRs) > 0 && !cidrsWithin(cidrs, r.SecretIDBoundCIDRs) {
			return nil, logical.BadRequest("cidr_list must lie within the role's secret_id_bound_cidrs")
		}
		tokenCIDRs, err := framework.ParseCIDRs("token_bound_cidrs", d.Strings("token_bound_cidrs"))
		if err != nil {
			return nil, err
		}
		if len(r.TokenBoundCIDRs) > 0 && !cidrsWithin(tokenCIDRs, r.TokenBoundCIDRs) {
			return nil, logical.BadRequest("token_bound_cidrs must lie within the role's token_bound_cidrs")
		}
		numUses := r.SecretIDNumUses
		if v, ok := d.GetOk("num_uses"); ok {
			numUses = v.(int)
			if numUses < 0 {
				return nil, logical.BadRequest("num_uses cannot be negative")
			}
			if r.SecretIDNumUses > 0 && (numUses == 0 || numUses > r.SecretIDNumUses) {
				return nil, logical.BadRequest("num_uses cannot be higher than the role's secret_id_num_uses")
			}
		}
		ttl := r.SecretIDTTL
		if v, ok := d.GetOk("ttl"); ok {
			ttl = v.(time.Duration)
			if ttl < 0 {
				return nil, logical.BadRequest("ttl cannot be negative")
			}
			if r.SecretIDTTL > 0 && (ttl == 0 || ttl > r.SecretIDTTL) {
				return nil, logical.BadRequest("ttl cannot be longer than the role's secret_id_ttl")
			}
		}
		if max := b.maxLeaseTTL(); max > 0 && ttl > max {
			ttl = max
		}
		meta, err := parseMetadata(d.Get("metadata"))
		if err != nil {
			return nil, err
		}
		var secretID string
		if custom {
			secretID = d.String("secret_id")
			if secretID == "" {
				return nil, logical.BadRequest("missing secret_id")
			}
		} else if secretID, err = newUUID(); err != nil {
			return nil, err
		}
		accessor, err := newUUID()
		if err != nil {
			return nil, err
		}
		secretHMAC, err := b.hmac(ctx, req.Storage, "secret_id", secretID)
		if err != nil {
			return nil, err
		}
		accessorHMAC, err := b.hmac(ctx, req.Storage, "accessor", accessor)
		if err != nil {
			return nil, err
		}
		now := b.now().UTC()
		e := &secretIDEntry{
			SecretIDHMAC: secretHMAC, Accessor: accessor, NumUses: numUses, TTL: ttl,
			CreationTime: now, LastUpdatedTime: now, Metadata: meta,
			CIDRList: cidrs, TokenBoundCIDRs: tokenCIDRs,
		}
		if ttl > 0 {
			e.ExpirationTime = now.Add(ttl)
		}

		lock := b.secretLock(secretHMAC)
		lock.Lock()
		defer lock.Unlock()
		key := secretIDKey(roleHMAC, secretHMAC)
		if existing, err := req.Storage.Get(ctx, key); err != nil {
			return nil, err
		} else if existing != nil {
			return nil, logical.BadRequest("secret_id is already registered for this role")
		}
		// The accessor goes first: a secret ID is never stored without the
		// accessor that lists and destroys it.
		accOp, err := putOp(accessorPrefix+accessorHMAC, accessorEntry{RoleNameHMAC: roleHMAC, SecretIDHMAC: secretHMAC})
		if err != nil {
			return nil, err
		}
		secOp, err := putOp(key, e)
		if err != nil {
			return nil, err
		}
		if err := storage.Apply(ctx, req.Storage, []storage.Op{accOp, secOp}); err != nil {
			return nil, err
		}
		return &logical.Response{Data: map[string]any{
			"secret_id":          secretID,
			"secret_id_accessor": accessor,
			"secret_id_ttl":      int64(ttl / time.Second),
			"secret_id_num_uses": numUses,
		}}, nil
	}
}

func (b *backend) secretIDList(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	b.rolesMu.RLock()
	defer b.rolesMu.RUnlock()
	_, roleHMAC, err := b.roleForSecretIDs(ctx, req.Storage, roleName(d))
	if logical.StatusOf(err) == http.StatusNotFound {
		// Vault answers a list of a missing role's secret IDs with 400; a 404
		// would read as "no secret IDs".
		return nil, logical.BadRequest("%s", err.Error())
	}
	if err != nil {
		return nil, err
	}
	hashes, err := req.Storage.List(ctx, secretIDPrefix+roleHMAC+"/")
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, h := range hashes {
		var e secretIDEntry
		ok, err := getJSON(ctx, req.Storage, secretIDKey(roleHMAC, h), &e)
		if err != nil {
			return nil, err
		}
		if ok {
			keys = append(keys, e.Accessor)
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	return &logical.Response{Data: map[string]any{"keys": keys}}, nil
}

// withSecretID runs fn on the role's secret ID secretID under its lock; fn
// gets a nil entry when there is none.
func (b *backend) withSecretID(ctx context.Context, req *logical.Request, d *framework.FieldData, fn func(roleHMAC, secretHMAC string, e *secretIDEntry) (*logical.Response, error)) (*logical.Response, error) {
	secretID := d.String("secret_id")
	if secretID == "" {
		return nil, logical.BadRequest("missing secret_id")
	}
	b.rolesMu.RLock()
	defer b.rolesMu.RUnlock()
	_, roleHMAC, err := b.roleForSecretIDs(ctx, req.Storage, roleName(d))
	if err != nil {
		return nil, err
	}
	secretHMAC, err := b.hmac(ctx, req.Storage, "secret_id", secretID)
	if err != nil {
		return nil, err
	}
	lock := b.secretLock(secretHMAC)
	lock.Lock()
	defer lock.Unlock()
	var e secretIDEntry
	ok, err := getJSON(ctx, req.Storage, secretIDKey(roleHMAC, secretHMAC), &e)
	if err != nil {
		return nil, err
	}
	if !ok || !equalHMAC(e.SecretIDHMAC, secretHMAC) {
		return fn(roleHMAC, secretHMAC, nil)
	}
	return fn(roleHMAC, secretHMAC, &e)
}

func (b *backend) secretIDLookup(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return b.withSecretID(ctx, req, d, func(_, _ string, e *secretIDEntry) (*logical.Response, error) {
		if e == nil || e.expired(b.now()) {
			return nil, nil
		}
		return &logical.Response{Data: e.data()}, nil
	})
}

func (b *backend) secretIDDestroy(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return b.withSecretID(ctx, req, d, func(roleHMAC, secretHMAC string, e *secretIDEntry) (*logical.Response, error) {
		if e == nil {
			return nil, nil
		}
		return nil, b.deleteSecretID(ctx, req.Storage, roleHMAC, secretHMAC, e.Accessor)
	})
}

// deleteSecretID removes a secret ID's entry and then its accessor. The
// caller holds the secret ID's lock.
func (b *backend) deleteSecretID(ctx context.Context, s logical.Storage, roleHMAC, secretHMAC, accessor string) error {
	ops := []storage.Op{deleteOp(secretIDKey(roleHMAC, secretHMAC))}
	if accessor != "" {
		h, err := b.hmac(ctx, s, "accessor", accessor)
		if err != nil {
			return err
		}
		ops = append(ops, deleteOp(accessorPrefix+h))
	}
	return storage.Apply(ctx, s, ops)
}

// withAccessor runs fn on the role's secret ID named by the accessor in d,
// under the secret ID's lock. An accessor of another role, or of none, is
// a 404.
func (b *backend) withAccessor(ctx context.Context, req *logical.Request, d *framework.FieldData, fn func(roleHMAC, secretHMAC string, e *secretIDEntry) (*logical.Response, error)) (*logical.Response, error) {
	accessor := d.String("secret_id_accessor")
	if accessor == "" {
		return nil, logical.BadRequest("missing secret_id_accessor")
	}
	b.rolesMu.RLock()
	defer b.rolesMu.RUnlock()
	_, roleHMAC, err := b.roleForSecretIDs(ctx, req.Storage, roleName(d))
	if err != nil {
		return nil, err
	}
	accHMAC, err := b.hmac(ctx, req.Storage, "accessor", accessor)
	if err != nil {
		return nil, err
	}
	notFound := logical.Errorf(http.StatusNotFound, "no secret ID with this secret_id_accessor exists for role %q", roleName(d))
	var acc accessorEntry
	ok, err := getJSON(ctx, req.Storage, accessorPrefix+accHMAC, &acc)
	if err != nil {
		return nil, err
	}
	if !ok || !equalHMAC(acc.RoleNameHMAC, roleHMAC) {
		return nil, notFound
	}
	lock := b.secretLock(acc.SecretIDHMAC)
	lock.Lock()
	defer lock.Unlock()
	var e secretIDEntry
	ok, err = getJSON(ctx, req.Storage, secretIDKey(roleHMAC, acc.SecretIDHMAC), &e)
	if err != nil {
		return nil, err
	}
	if !ok || e.Accessor != accessor {
		return nil, notFound
	}
	return fn(roleHMAC, acc.SecretIDHMAC, &e)
}

func (b *backend) accessorLookup(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return b.withAccessor(ctx, req, d, func(_, _ string, e *secretIDEntry) (*logical.Response, error) {
		return &logical.Response{Data: e.data()}, nil
	})
}

func (b *backend) accessorDestroy(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return b.withAccessor(ctx, req, d, func(roleHMAC, secretHMAC string, e *secretIDEntry) (*logical.Response, error) {
		return nil, b.deleteSecretID(ctx, req.Storage, roleHMAC, secretHMAC, e.Accessor)
	})
}

// destroyRoleSecretIDs removes every secret ID of a role; the caller holds
// rolesMu for writing.
func (b *backend) destroyRoleSecretIDs(ctx context.Context, s logical.Storage, name string) error {
	roleHMAC, err := b.hmac(ctx, s, "role_name", name)
	if err != nil {
		return err
	}
	hashes, err := s.List(ctx, secretIDPrefix+roleHMAC+"/")
	if err != nil {
		return err
	}
	for _, h := range hashes {
		lock := b.secretLock(h)
		lock.Lock()
		var e secretIDEntry
		ok, err := getJSON(ctx, s, secretIDKey(roleHMAC, h), &e)
		if err == nil && ok {
			err = b.deleteSecretID(ctx, s, roleHMAC, h, e.Accessor)
		}
		lock.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}
