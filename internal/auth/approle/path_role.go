package approle

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/logical/framework"
	"github.com/arcasec/arca/internal/storage"
)

// role is a stored AppRole role.
type role struct {
	Name               string        `json:"name"`
	RoleID             string        `json:"role_id"`
	BindSecretID       bool          `json:"bind_secret_id"`
	SecretIDBoundCIDRs []string      `json:"secret_id_bound_cidrs"`
	SecretIDNumUses    int           `json:"secret_id_num_uses"`
	SecretIDTTL        time.Duration `json:"secret_id_ttl"`
	LocalSecretIDs     bool          `json:"local_secret_ids"`
	framework.TokenParams
	// Policies and Period are set when a role was written with the legacy
	// "policies" and "period" fields; a read shows them back under those
	// names, as Vault does.
	Policies []string      `json:"policies,omitempty"`
	Period   time.Duration `json:"period,omitempty"`
}

// roleName normalises a role name: AppRole role names are case-insensitive.
func roleName(d *framework.FieldData) string {
	return strings.ToLower(d.String("role_name"))
}

func roleNameField() *framework.FieldSchema {
	return &framework.FieldSchema{Type: framework.TypeString, Required: true, Description: "Name of the role."}
}

// roleFields declares every settable field of a role.
func roleFields() map[string]*framework.FieldSchema {
	f := map[string]*framework.FieldSchema{
		"role_name":             roleNameField(),
		"role_id":               {Type: framework.TypeString, Description: "The role ID; a random UUID when not given."},
		"bind_secret_id":        {Type: framework.TypeBool, Default: true, Description: "Require a secret ID at login."},
		"secret_id_bound_cidrs": {Type: framework.TypeCommaStringSlice, Description: "Addresses or CIDR blocks logins with this role may come from."},
		"bound_cidr_list":       {Type: framework.TypeCommaStringSlice, Description: "Deprecated: use secret_id_bound_cidrs."},
		"secret_id_num_uses":    {Type: framework.TypeInt, Description: "How many logins a secret ID allows; 0 means unlimited."},
		"secret_id_ttl":         {Type: framework.TypeDuration, Description: "How long a secret ID is valid; 0 means until it is destroyed."},
		"local_secret_ids":      {Type: framework.TypeBool, Description: "Keep the role's secret IDs local to this cluster; set only when the role is created."},
		"policies":              {Type: framework.TypeCommaStringSlice, Description: "Deprecated: use token_policies."},
		"period":                {Type: framework.TypeDuration, Description: "Deprecated: use token_period."},
	}
	framework.AddTokenFields(f)
	return f
}

// subset returns the named fields of roleFields, with role_name.
func subset(names ...string) map[string]*framework.FieldSchema {
	all := roleFields()
	out := map[string]*framework.FieldSchema{"role_name": all["role_name"]}
	for _, n := range names {
		out[n] = all[n]
	}
	return out
}

// A roleField is one of the per-field sub-paths of a role
// (role/<name>/secret-id-ttl and so on).
type roleField struct {
	suffix string
	fields []string // the fields the path takes; the first is required unless others are given
	show   []string // the keys a read shows
	reset  map[string]any
}

var roleFieldPaths = []roleField{
	{suffix: "policies", fields: []string{"token_policies", "policies"}, show: []string{"policies", "token_policies"}, reset: map[string]any{"token_policies": ""}},
	{suffix: "bound-cidr-list", fields: []string{"bound_cidr_list"}, show: []string{"bound_cidr_list"}, reset: map[string]any{"secret_id_bound_cidrs": ""}},
	{suffix: "secret-id-bound-cidrs", fields: []string{"secret_id_bound_cidrs"}, show: []string{"secret_id_bound_cidrs"}, reset: map[string]any{"secret_id_bound_cidrs": ""}},
	{suffix: "token-bound-cidrs", fields: []string{"token_bound_cidrs"}, show: []string{"token_bound_cidrs"}, reset: map[string]any{"token_bound_cidrs": ""}},
	{suffix: "bind-secret-id", fields: []string{"bind_secret_id"}, show: []string{"bind_secret_id"}, reset: map[string]any{"bind_secret_id": true}},
	{suffix: "secret-id-num-uses", fields: []string{"secret_id_num_uses"}, show: []string{"secret_id_num_uses"}, reset: map[string]any{"secret_id_num_uses": 0}},
	{suffix: "secret-id-ttl", fields: []string{"secret_id_ttl"}, show: []string{"secret_id_ttl"}, reset: map[string]any{"secret_id_ttl": 0}},
	{suffix: "period", fields: []string{"token_period", "period"}, show: []string{"period", "token_period"}, reset: map[string]any{"token_period": 0}},
	{suffix: "token-num-uses", fields: []string{"token_num_uses"}, show: []string{"token_num_uses"}, reset: map[string]any{"token_num_uses": 0}},
	{suffix: "token-ttl", fields: []string{"token_ttl"}, show: []string{"token_ttl"}, reset: map[string]any{"token_ttl": 0}},
	{suffix: "token-max-ttl", fields: []string{"token_max_ttl"}, show: []string{"token_max_ttl"}, reset: map[string]any{"token_max_ttl": 0}},
}

func (b *backend) rolePaths() []*framework.Path {
	name := "role/" + framework.GenericNameRegex("role_name")
	paths := []*framework.Path{
		{
			Pattern:      "role/?",
			Operations:   map[logical.Operation]framework.OperationFunc{logical.ListOperation: b.roleList},
			HelpSynopsis: "Lists the roles.",
		},
		{
			Pattern: name,
			Fields:  roleFields(),
			Operations: map[logical.Operation]framework.OperationFunc{
				logical.ReadOperation:   b.roleRead,
				logical.CreateOperation: b.roleWrite,
				logical.UpdateOperation: b.roleWrite,
				logical.DeleteOperation: b.roleDelete,
			},
			ExistenceCheck: b.roleExists,
			HelpSynopsis:   "Creates, reads, changes or deletes a role.",
		},
		{
			Pattern: name + "/local-secret-ids",
			Fields:  subset(),
			Operations: map[logical.Operation]framework.OperationFunc{
				logical.ReadOperation: b.roleFieldRead([]string{"local_secret_ids"}),
			},
			HelpSynopsis: "Whether the role's secret IDs are local to this cluster.",
		},
		{
			Pattern: name + "/role-id",
			Fields:  subset("role_id"),
			Operations: map[logical.Operation]framework.OperationFunc{
				logical.ReadOperation:   b.roleIDRead,
				logical.UpdateOperation: b.roleIDWrite,
			},
			HelpSynopsis: "Reads or sets the role's role ID.",
		},
	}
	for _, rf := range roleFieldPaths {
		paths = append(paths, &framework.Path{
			Pattern: name + "/" + rf.suffix,
			Fields:  subset(rf.fields...),
			Operations: map[logical.Operation]framework.OperationFunc{
				logical.ReadOperation:   b.roleFieldRead(rf.show),
				logical.UpdateOperation: b.roleFieldWrite(rf),
				logical.DeleteOperation: b.roleFieldReset(rf),
			},
			HelpSynopsis: "Reads, sets or resets the role's " + strings.Join(rf.fields, " / ") + ".",
		})
	}
	return paths
}

// readRole returns the named role, or nil.
func (b *backend) readRole(ctx context.Context, s logical.Storage, name string) (*role, error) {
	var r role
	ok, err := getJSON(ctx, s, rolePrefix+name, &r)
	if err != nil || !ok {
		return nil, err
	}
	return &r, nil
}

func (b *backend) roleExists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	b.rolesMu.RLock()
	defer b.rolesMu.RUnlock()
	r, err := b.readRole(ctx, req.Storage, roleName(d))
	return r != nil, err
}

func (b *backend) roleList(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	b.rolesMu.RLock()
	defer b.rolesMu.RUnlock()
	keys, err := req.Storage.List(ctx, rolePrefix)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{"keys": keys}}, nil
}

// roleData is a role as a read shows it.
func (r *role) data() map[string]any {
	cidrs := r.SecretIDBoundCIDRs
	if cidrs == nil {
		cidrs = []string{}
	}
	d := r.TokenParams.ResponseData()
	d["bind_secret_id"] = r.BindSecretID
	d["secret_id_bound_cidrs"] = cidrs
	d["secret_id_num_uses"] = r.SecretIDNumUses
	d["secret_id_ttl"] = int64(r.SecretIDTTL / time.Second)
	d["local_secret_ids"] = r.LocalSecretIDs
	if r.Period != 0 {
		d["period"] = int64(r.Period / time.Second)
	}
	if len(r.Policies) > 0 {
		d["policies"] = r.Policies
	}
	return d
}

func (b *backend) roleRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	b.rolesMu.RLock()
	defer b.rolesMu.RUnlock()
	r, err := b.readRole(ctx, req.Storage, roleName(d))
	if err != nil || r == nil {
		return nil, err
	}
	return &logical.Response{Data: r.data()}, nil
}

// roleFieldRead reads some of a role's fields.
func (b *backend) roleFieldRead(keys []string) framework.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		b.rolesMu.RLock()
		defer b.rolesMu.RUnlock()
		r, err := b.readRole(ctx, req.Storage, roleName(d))
		if err != nil || r == nil {
			return nil, err
		}
		all := r.data()
		out := map[string]any{}
		for _, k := range keys {
			switch v, ok := all[k]; {
			case ok:
				out[k] = v
			case k == "policies":
				out[k] = all["token_policies"]
			case k == "period":
				out[k] = all["token_period"]
			case k == "bound_cidr_list":
				out[k] = all["secret_id_bound_cidrs"]
			}
		}
		return &logical.Response{Data: out}, nil
	}
}

// getOk is FieldData.GetOk for a field the path may not declare.
func getOk(d *framework.FieldData, name string) (any, bool) {
	if _, declared := d.Schema[name]; !declared {
		return nil, false
	}
	return d.GetOk(name)
}

// apply sets the fields present in d on r and checks the result.
func (b *backend) apply(r *role, d *framework.FieldData) error {
	if v, ok := getOk(d, "bind_secret_id"); ok {
		r.BindSecretID = v.(bool)
	}
	if v, ok := getOk(d, "secret_id_bound_cidrs"); ok {
		cidrs, err := framework.ParseCIDRs("secret_id_bound_cidrs", v.([]string))
		if err != nil {
			return err
		}
		r.SecretIDBoundCIDRs = cidrs
	} else if v, ok := getOk(d, "bound_cidr_list"); ok {
		cidrs, err := framework.ParseCIDRs("bound_cidr_list", v.([]string))
		if err != nil {
			return err
		}
		r.SecretIDBoundCIDRs = cidrs
	}
	if v, ok := getOk(d, "secret_id_num_uses"); ok {
		if v.(int) < 0 {
			return logical.BadRequest("secret_id_num_uses cannot be negative")
		}
		r.SecretIDNumUses = v.(int)
	}
	if v, ok := getOk(d, "secret_id_ttl"); ok {
		if v.(time.Duration) < 0 {
			return logical.BadRequest("secret_id_ttl cannot be negative")
		}
		r.SecretIDTTL = v.(time.Duration)
	}
	// The token_* fields, with the legacy names as fallbacks.
	if err := r.TokenParams.ParseTokenFields(d); err != nil {
		return err
	}
	if _, ok := getOk(d, "token_policies"); ok {
		r.Policies = nil
	} else if v, ok := getOk(d, "policies"); ok {
		r.Policies = framework.NormalizePolicies(v.([]string))
		r.TokenPolicies = r.Policies
	}
	if _, ok := getOk(d, "token_period"); ok {
		r.Period = 0
	} else if v, ok := getOk(d, "period"); ok {
		if v.(time.Duration) < 0 {
			return logical.BadRequest("period cannot be negative")
		}
		r.Period = v.(time.Duration)
		r.TokenPeriod = r.Period
	}
	if r.TokenMaxTTL > 0 && r.TokenTTL > r.TokenMaxTTL {
		return logical.BadRequest("token_ttl must not be greater than token_max_ttl")
	}
	// Vault's rule: a role must constrain logins somehow.
	if !r.BindSecretID && len(r.SecretIDBoundCIDRs) == 0 && len(r.TokenBoundCIDRs) == 0 {
		return logical.BadRequest("at least one constraint should be enabled on the role: bind_secret_id, secret_id_bound_cidrs or token_bound_cidrs")
	}
	return nil
}

// storeRole writes r, moving its role ID index from oldRoleID when it
// changed. The caller holds rolesMu for writing.
func (b *backend) storeRole(ctx context.Context, s logical.Storage, r *role, oldRoleID string) error {
	var ops []storage.Op
	if r.RoleID != oldRoleID {
		idHash, err := b.hmac(ctx, s, "role_id", r.RoleID)
		if err != nil {
			return err
		}
		var idx roleIDIndex
		taken, err := getJSON(ctx, s, roleIDPrefix+idHash, &idx)
		if err != nil {
			return err
		}
		if taken && idx.Name != r.Name {
			if other, err := b.readRole(ctx, s, idx.Name); err != nil {
				return err
			} else if other != nil && other.RoleID == r.RoleID {
				return logical.BadRequest("role_id is already in use by another role")
			}
		}
		op, err := putOp(roleIDPrefix+idHash, roleIDIndex{Name: r.Name})
		if err != nil {
			return err
		}
		ops = append(ops, op)
		if oldRoleID != "" {
			oldHash, err := b.hmac(ctx, s, "role_id", oldRoleID)
			if err != nil {
				return err
			}
			ops = append(ops, deleteOp(roleIDPrefix+oldHash))
		}
	}
	op, err := putOp(rolePrefix+r.Name, r)
	if err != nil {
		return err
	}
	ops = append(ops, op)
	return storage.Apply(ctx, s, ops)
}

// roleIDIndex maps a role ID's HMAC to its role.
type roleIDIndex struct {
	Name string `json:"name"`
}

func (b *backend) roleWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := roleName(d)
	if name == "" {
		return nil, logical.BadRequest("missing role_name")
	}
	b.rolesMu.Lock()
	defer b.rolesMu.Unlock()
	r, err := b.readRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	oldRoleID := ""
	if r == nil {
		r = &role{Name: name, BindSecretID: true, LocalSecretIDs: d.Bool("local_secret_ids")}
	} else {
		oldRoleID = r.RoleID
		if v, ok := d.GetOk("local_secret_ids"); ok && v.(bool) != r.LocalSecretIDs {
			return nil, logical.BadRequest("local_secret_ids can only be set when the role is created")
		}
	}
	if err := b.apply(r, d); err != nil {
		return nil, err
	}
	if v, ok := d.GetOk("role_id"); ok && strings.TrimSpace(v.(string)) != "" {
		r.RoleID = strings.TrimSpace(v.(string))
	}
	if r.RoleID == "" {
		if r.RoleID, err = newUUID(); err != nil {
			return nil, err
		}
	}
	if err := b.storeRole(ctx, req.Storage, r, oldRoleID); err != nil {
		return nil, err
	}
	return nil, nil
}

func (b *backend) roleFieldWrite(rf roleField) framework.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		given := slices.ContainsFunc(rf.fields, func(f string) bool { _, ok := d.Raw[f]; return ok })
		if !given {
			return nil, logical.BadRequest("missing %s", rf.fields[len(rf.fields)-1])
		}
		// Only the fields this path declares reach the role, checked
		// against the full schema the role's parsers expect.
		raw := map[string]any{}
		for k := range d.Schema {
			if v, ok := d.Raw[k]; ok {
				raw[k] = v
			}
		}
		return b.changeRole(ctx, req, roleName(d), &framework.FieldData{Raw: raw, Schema: roleFields()})
	}
}

func (b *backend) roleFieldReset(rf roleField) framework.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		raw := map[string]any{}
		for k, v := range rf.reset {
			raw[k] = v
		}
		return b.changeRole(ctx, req, roleName(d), &framework.FieldData{Raw: raw, Schema: roleFields()})
	}
}

// changeRole applies d to an existing role.
func (b *backend) changeRole(ctx context.Context, req *logical.Request, name string, d *framework.FieldData) (*logical.Response, error) {
	b.rolesMu.Lock()
	defer b.rolesMu.Unlock()
	r, err := b.readRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, logical.Errorf(404, "role %q does not exist", name)
	}
	if err := b.apply(r, d); err != nil {
		return nil, err
	}
	return nil, b.storeRole(ctx, req.Storage, r, r.RoleID)
}

func (b *backend) roleIDRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	b.rolesMu.RLock()
	defer b.rolesMu.RUnlock()
	r, err := b.readRole(ctx, req.Storage, roleName(d))
	if err != nil || r == nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{"role_id": r.RoleID}}, nil
}

func (b *backend) roleIDWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	id := strings.TrimSpace(d.String("role_id"))
	if id == "" {
		return nil, logical.BadRequest("missing role_id")
	}
	name := roleName(d)
	b.rolesMu.Lock()
	defer b.rolesMu.Unlock()
	r, err := b.readRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, logical.Errorf(404, "role %q does not exist", name)
	}
	old := r.RoleID
	r.RoleID = id
	return nil, b.storeRole(ctx, req.Storage, r, old)
}

func (b *backend) roleDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := roleName(d)
	b.rolesMu.Lock()
	defer b.rolesMu.Unlock()
	r, err := b.readRole(ctx, req.Storage, name)
	if err != nil || r == nil {
		return nil, err
	}
	// The role's secret IDs go first, so a stop half-way leaves a role
	// with fewer secret IDs, never secret IDs without a role.
	if err := b.destroyRoleSecretIDs(ctx, req.Storage, name); err != nil {
		return nil, err
	}
	idHash, err := b.hmac(ctx, req.Storage, "role_id", r.RoleID)
	if err != nil {
		return nil, err
	}
	return nil, storage.Apply(ctx, req.Storage, []storage.Op{deleteOp(roleIDPrefix + idHash), deleteOp(rolePrefix + name)})
}
