package core

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/arcasec/arca/internal/logical"
	fw "github.com/arcasec/arca/internal/logical/framework"
)

// tokenRole constrains tokens created through auth/token/create/<role>.
type tokenRole struct {
	Name               string        `json:"name"`
	AllowedPolicies    []string      `json:"allowed_policies"`
	DisallowedPolicies []string      `json:"disallowed_policies"`
	Orphan             bool          `json:"orphan"`
	Renewable          bool          `json:"renewable"`
	PathSuffix         string        `json:"path_suffix"`
	ExplicitMaxTTL     time.Duration `json:"explicit_max_ttl"`
	Period             time.Duration `json:"period"`
	TokenType          string        `json:"token_type"`
	NoDefaultPolicy    bool          `json:"token_no_default_policy"`
	NumUses            int           `json:"token_num_uses"`
}

func (r *tokenRole) data() map[string]any {
	return map[string]any{
		"name":                    r.Name,
		"allowed_policies":        nonNil(r.AllowedPolicies),
		"disallowed_policies":     nonNil(r.DisallowedPolicies),
		"orphan":                  r.Orphan,
		"renewable":               r.Renewable,
		"path_suffix":             r.PathSuffix,
		"explicit_max_ttl":        int64(r.ExplicitMaxTTL / time.Second),
		"token_explicit_max_ttl":  int64(r.ExplicitMaxTTL / time.Second),
		"period":                  int64(r.Period / time.Second),
		"token_period":            int64(r.Period / time.Second),
		"token_type":              r.TokenType,
		"token_no_default_policy": r.NoDefaultPolicy,
		"token_num_uses":          r.NumUses,
		"allowed_entity_aliases":  []string{},
		"token_bound_cidrs":       []string{},
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// tokenCreateFields are the fields of create and create-orphan. A role is
// named only by the path of create/<role_name>, which the ACL checks, so
// role_name is not among them (tokenCreateRoleFields adds it).
var tokenCreateFields = map[string]*fw.FieldSchema{
	"id":                {Type: fw.TypeString, Description: "custom token ID (root or sudo callers only)"},
	"policies":          {Type: fw.TypeCommaStringSlice, Description: "policies of the token; default: the parent's"},
	"meta":              {Type: fw.TypeKVPairs, Description: "metadata kept with the token"},
	"no_parent":         {Type: fw.TypeBool, Description: "create an orphan (root or sudo callers only)"},
	"no_default_policy": {Type: fw.TypeBool},
	"renewable":         {Type: fw.TypeBool, Default: true},
	"ttl":               {Type: fw.TypeDuration, Description: "initial TTL"},
	"lease":             {Type: fw.TypeDuration, Description: "deprecated alias of ttl"},
	"type":              {Type: fw.TypeString, Description: "service (batch tokens are not supported)"},
	"explicit_max_ttl":  {Type: fw.TypeDuration},
	"display_name":      {Type: fw.TypeString},
	"num_uses":          {Type: fw.TypeInt},
	"period":            {Type: fw.TypeDuration},
	"entity_alias":      {Type: fw.TypeString},
}

var tokenCreateRoleFields = func() map[string]*fw.FieldSchema {
	m := maps.Clone(tokenCreateFields)
	m["role_name"] = &fw.FieldSchema{Type: fw.TypeString, Description: "the role to create the token against"}
	return m
}()

func newTokenBackend(c *Core) logical.Backend {
	b := &tokenBackend{core: c}
	tokenField := map[string]*fw.FieldSchema{"token": {Type: fw.TypeString, Description: "the token"}}
	accessorField := map[string]*fw.FieldSchema{"accessor": {Type: fw.TypeString, Description: "the token's accessor"}}
	renewFields := map[string]*fw.FieldSchema{
		"token":     {Type: fw.TypeString},
		"accessor":  {Type: fw.TypeString},
		"increment": {Type: fw.TypeDuration, Description: "requested extension"},
	}
	up := logical.UpdateOperation
	return &fw.Backend{
		Help:         "The token credential backend is always enabled and builds in some special features, such as revocation trees.",
		PathsSpecial: &logical.Paths{Root: []string{"revoke-orphan/*", "revoke-orphan", "accessors/"}},
		Paths: []*fw.Path{
			{Pattern: "create", Fields: tokenCreateFields, Operations: ops(up, b.create(false, false))},
			{Pattern: "create-orphan", Fields: tokenCreateFields, Operations: ops(up, b.create(true, false))},
			{Pattern: "create/" + fw.GenericNameRegex("role_name"), Fields: tokenCreateRoleFields, Operations: ops(up, b.create(false, true))},
			{Pattern: "lookup", Fields: tokenField, Operations: ops2(up, logical.ReadOperation, b.lookup)},
			{Pattern: "lookup/(?P<token>.+)", Fields: tokenField, Operations: ops(logical.ReadOperation, b.lookup)},
			{Pattern: "lookup-self", Fields: tokenField, Operations: ops2(up, logical.ReadOperation, b.lookupSelf)},
			{Pattern: "lookup-accessor", Fields: accessorField, Operations: ops(up, b.lookupAccessor)},
			{Pattern: "lookup-accessor/(?P<accessor>.+)", Fields: accessorField, Operations: ops(up, b.lookupAccessor)},
			{Pattern: "renew", Fields: renewFields, Operations: ops(up, b.renew)},
			{Pattern: "renew/(?P<token>.+)", Fields: renewFields, Operations: ops(up, b.renew)},
			{Pattern: "renew-self", Fields: renewFields, Operations: ops(up, b.renewSelf)},
			{Pattern: "renew-accessor", Fields: renewFields, Operations: ops(up, b.renewAccessor)},
			{Pattern: "revoke", Fields: tokenField, Operations: ops(up, b.revoke)},
			{Pattern: "revoke/(?P<token>.+)", Fields: tokenField, Operations: ops(up, b.revoke)},
			{Pattern: "revoke-self", Operations: ops(up, b.revokeSelf)},
			{Pattern: "revoke-accessor", Fields: accessorField, Operations: ops(up, b.revokeAccessor)},
			{Pattern: "revoke-accessor/(?P<accessor>.+)", Fields: accessorField, Operations: ops(up, b.revokeAccessor)},
			{Pattern: "revoke-orphan", Fields: tokenField, Operations: ops(up, b.revokeOrphan)},
			{Pattern: "revoke-orphan/(?P<token>.+)", Fields: tokenField, Operations: ops(up, b.revokeOrphan)},
			{Pattern: "accessors/?", Operations: ops(logical.ListOperation, b.listAccessors)},
			{Pattern: "roles/?", Operations: ops(logical.ListOperation, b.listRoles)},
			{Pattern: "roles/" + fw.GenericNameRegex("role_name"), Fields: tokenRoleFields,
				Operations: map[logical.Operation]fw.OperationFunc{
					logical.ReadOperation:   b.readRole,
					logical.UpdateOperation: b.writeRole,
					logical.DeleteOperation: b.deleteRole,
				}},
			{Pattern: "tidy", Operations: ops(up, b.tidy)},
		},
	}
}

func ops(op logical.Operation, f fw.OperationFunc) map[logical.Operation]fw.OperationFunc {
	return map[logical.Operation]fw.OperationFunc{op: f}
}

func ops2(a, b logical.Operation, f fw.OperationFunc) map[logical.Operation]fw.OperationFunc {
	return map[logical.Operation]fw.OperationFunc{a: f, b: f}
}

var tokenRoleFields = map[string]*fw.FieldSchema{
	"role_name":               {Type: fw.TypeString},
	"allowed_policies":        {Type: fw.TypeCommaStringSlice},
	"disallowed_policies":     {Type: fw.TypeCommaStringSlice},
	"orphan":                  {Type: fw.TypeBool},
	"renewable":               {Type: fw.TypeBool, Default: true},
	"path_suffix":             {Type: fw.TypeString},
	"explicit_max_ttl":        {Type: fw.TypeDuration},
	"token_explicit_max_ttl":  {Type: fw.TypeDuration},
	"period":                  {Type: fw.TypeDuration},
	"token_period":            {Type: fw.TypeDuration},
	"token_type":              {Type: fw.TypeString},
	"token_no_default_policy": {Type: fw.TypeBool},
	"token_num_uses":          {Type: fw.TypeInt},
	"allowed_entity_aliases":  {Type: fw.TypeCommaStringSlice},
	"token_bound_cidrs":       {Type: fw.TypeCommaStringSlice},
}

type tokenBackend struct{ core *Core }

func (b *tokenBackend) ts() *tokenStore { return b.core.tokens }

// caller returns the requesting token's entry.
func (b *tokenBackend) caller(ctx context.Context, req *logical.Request) (*TokenEntry, error) {
	te, err := b.ts().lookup(ctx, req.ClientToken)
	if err != nil {
		return nil, err
	}
	if te == nil {
		return nil, logical.ErrPermissionDenied
	}
	return te, nil
}

// callerHasSudo reports whether the caller may use root-only token options.
func (b *tokenBackend) callerHasSudo(ctx context.Context, parent *TokenEntry, path string) bool {
	if parent.isRoot() {
		return true
	}
	acl, err := b.core.policies.acl(ctx, parent.Policies)
	if err != nil {
		return false
	}
	return acl.Check(path, policyCap(logical.UpdateOperation), nil).Sudo
}

// create creates a child token; orphanPath and rolePath say which of
// create-orphan and create/<role_name> it serves.
func (b *tokenBackend) create(orphanPath, rolePath bool) fw.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
		parent, err := b.caller(ctx, req)
		if err != nil {
			return nil, err
		}
		sudo := b.callerHasSudo(ctx, parent, "auth/token/"+req.Path)
		var role *tokenRole
		if rolePath {
			name := d.String("role_name")
			role = new(tokenRole)
			found, err := getJSONFrom(ctx, b.ts().view, tokenRolePrefix+strings.ToLower(name), role)
			if err != nil {
				return nil, err
			}
			if !found {
				return nil, logical.BadRequest("unknown role %s", name)
			}
		}
		if t := d.String("type"); t != "" && t != "service" && t != "default" {
			return nil, logical.BadRequest("token type %q is not supported: Arca issues service tokens", t)
		}
		now := time.Now().UTC()
		te := &TokenEntry{
			Meta:           d.Get("meta").(map[string]string),
			NumUses:        d.Int("num_uses"),
			CreationTime:   now,
			ExplicitMaxTTL: d.Duration("explicit_max_ttl"),
			Period:         d.Duration("period"),
			Renewable:      d.Bool("renewable"),
			Path:           "auth/token/" + req.Path,
			Parent:         parent.ID,
		}
		if te.NumUses < 0 {
			return nil, logical.BadRequest("num_uses must be 0 or greater")
		}
		if id := d.String("id"); id != "" {
			if !sudo {
				return nil, logical.BadRequest("root or sudo privileges required to specify token id")
			}
			if strings.Contains(id, ".") && !strings.HasPrefix(id, tokenIDPrefixStr) {
				return nil, logical.BadRequest("custom token id must not contain a '.'")
			}
			te.ID = id
		}
		if orphanPath || (role != nil && role.Orphan) {
			te.Parent = ""
		} else if d.Bool("no_parent") {
			if !sudo {
				return nil, logical.BadRequest("root or sudo privileges required to create orphan token")
			}
			te.Parent = ""
		}
		te.DisplayName = "token"
		if dn := d.String("display_name"); dn != "" {
			te.DisplayName = "token-" + strings.ToLower(strings.ReplaceAll(dn, " ", "-"))
		}

		// Policies: the request's, or the parent's; never more than the
		// parent holds unless the caller is root/sudo or a role allows them.
		policies, setPolicies := d.GetOk("policies")
		pols := slices.Clone(policies.([]string))
		for i := range pols {
			pols[i] = normalizePolicyName(pols[i])
		}
		noDefault := d.Bool("no_default_policy") || (role != nil && role.NoDefaultPolicy)
		switch {
		case role != nil:
			if !setPolicies || len(pols) == 0 {
				pols = slices.Clone(role.AllowedPolicies)
			}
			for _, p := range pols {
				if len(role.AllowedPolicies) > 0 && !slices.Contains(role.AllowedPolicies, p) && p != "default" {
					return nil, logical.BadRequest("token policies (%v) must be subset of the role's allowed policies (%v)", pols, role.AllowedPolicies)
				}
				if slices.Contains(role.DisallowedPolicies, p) {
					return nil, logical.BadRequest("token policy %q is disallowed by the role", p)
				}
			}
			if len(role.AllowedPolicies) == 0 && !sudo {
				for _, p := range pols {
					if p != "default" && !slices.Contains(parent.Policies, p) {
						return nil, logical.BadRequest("child policies must be subset of parent")
					}
				}
			}
			if role.Period > 0 {
				te.Period = role.Period
			}
			if role.ExplicitMaxTTL > 0 && (te.ExplicitMaxTTL == 0 || role.ExplicitMaxTTL < te.ExplicitMaxTTL) {
				te.ExplicitMaxTTL = role.ExplicitMaxTTL
			}
			if !role.Renewable {
				te.Renewable = false
			}
			if role.NumUses > 0 && (te.NumUses == 0 || role.NumUses < te.NumUses) {
				te.NumUses = role.NumUses
			}
			te.Role = role.Name
			if role.PathSuffix != "" {
				te.Path += "/" + role.PathSuffix
			}
		case !setPolicies || len(pols) == 0:
			pols = slices.Clone(parent.Policies)
		default:
			if !parent.isRoot() && !sudo {
				for _, p := range pols {
					if p == "default" {
						continue
					}
					if !slices.Contains(parent.Policies, p) {
						return nil, logical.BadRequest("child policies must be subset of parent")
					}
				}
			}
		}
		if slices.Contains(pols, "root") && !parent.isRoot() {
			return nil, logical.BadRequest("root tokens may only be created by a root token")
		}
		if !noDefault && !slices.Contains(pols, "root") && !slices.Contains(pols, "default") {
			pols = append(pols, "default")
		}
		if noDefault {
			pols = slices.DeleteFunc(pols, func(p string) bool { return p == "default" })
		}
		te.Policies = pols

		// Lifetime.
		ttl := d.Duration("ttl")
		if ttl == 0 {
			ttl = d.Duration("lease")
		}
		sys := b.core.tokenMountSystemView()
		switch {
		case te.Period > 0:
			ttl = te.Period
		case ttl == 0 && slices.Contains(pols, "root") && te.ExplicitMaxTTL == 0:
			// A root token without a TTL never expires, as in Vault.
		case ttl == 0:
			ttl = sys.DefaultLeaseTTL()
		}
		if ttl > 0 {
			if te.Period == 0 && ttl > sys.MaxLeaseTTL() {
				ttl = sys.MaxLeaseTTL()
			}
			if te.ExplicitMaxTTL > 0 && ttl > te.ExplicitMaxTTL {
				ttl = te.ExplicitMaxTTL
			}
			// A child never outlives a parent that expires.
			if !parent.ExpireTime.IsZero() && te.Parent != "" && now.Add(ttl).After(parent.ExpireTime) {
				ttl = parent.ExpireTime.Sub(now)
			}
			te.CreationTTL = ttl
			te.ExpireTime = now.Add(ttl)
		}
		if err := b.ts().create(ctx, te); err != nil {
			return nil, err
		}
		return &logical.Response{Auth: te.auth(now)}, nil
	}
}

// lookupData is the data block of token lookups.
func lookupData(te *TokenEntry, withID bool) map[string]any {
	now := time.Now()
	var expire any
	if !te.ExpireTime.IsZero() {
		expire = te.ExpireTime.UTC().Format(time.RFC3339Nano)
	}
	id := ""
	if withID {
		id = te.ID
	}
	data := map[string]any{
		"accessor":         te.Accessor,
		"creation_time":    te.CreationTime.Unix(),
		"creation_ttl":     int64(te.CreationTTL / time.Second),
		"display_name":     te.DisplayName,
		"entity_id":        te.EntityID,
		"expire_time":      expire,
		"explicit_max_ttl": int64(te.ExplicitMaxTTL / time.Second),
		"id":               id,
		"issue_time":       te.CreationTime.Format(time.RFC3339Nano),
		"meta":             te.Meta,
		"num_uses":         max(te.NumUses, 0),
		"orphan":           te.Parent == "",
		"path":             te.Path,
		"policies":         te.Policies,
		"renewable":        te.Renewable && !te.ExpireTime.IsZero(),
		"ttl":              int64(te.ttlLeft(now) / time.Second),
		"type":             "service",
	}
	if te.Period > 0 {
		data["period"] = int64(te.Period / time.Second)
	}
	if te.Role != "" {
		data["role"] = te.Role
	}
	return data
}

func (b *tokenBackend) lookup(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	id := d.String("token")
	if id == "" {
		id = req.ClientToken
	}
	te, err := b.ts().lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	if te == nil {
		return nil, logical.Errorf(403, "bad token")
	}
	return &logical.Response{Data: lookupData(te, true)}, nil
}

func (b *tokenBackend) lookupSelf(ctx context.Context, req *logical.Request, _ *fw.FieldData) (*logical.Response, error) {
	te, err := b.caller(ctx, req)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: lookupData(te, true)}, nil
}

func (b *tokenBackend) lookupAccessor(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	acc := d.String("accessor")
	if acc == "" {
		return nil, logical.BadRequest("missing required field \"accessor\"")
	}
	te, err := b.ts().lookupAccessor(ctx, acc)
	if err != nil {
		return nil, err
	}
	if te == nil {
		return nil, logical.BadRequest("invalid accessor")
	}
	return &logical.Response{Data: lookupData(te, false)}, nil
}

func (b *tokenBackend) renewEntry(ctx context.Context, te *TokenEntry, d *fw.FieldData) (*logical.Response, error) {
	renewed, err := b.ts().renew(ctx, te, d.Duration("increment"))
	if err != nil {
		return nil, err
	}
	return &logical.Response{Auth: renewed.auth(time.Now())}, nil
}

func (b *tokenBackend) renew(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	id := d.String("token")
	if id == "" {
		return nil, logical.BadRequest("missing required field \"token\"")
	}
	te, err := b.ts().lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	if te == nil {
		return nil, logical.BadRequest("invalid token")
	}
	return b.renewEntry(ctx, te, d)
}

func (b *tokenBackend) renewSelf(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	te, err := b.caller(ctx, req)
	if err != nil {
		return nil, err
	}
	return b.renewEntry(ctx, te, d)
}

func (b *tokenBackend) renewAccessor(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	te, err := b.ts().lookupAccessor(ctx, d.String("accessor"))
	if err != nil {
		return nil, err
	}
	if te == nil {
		return nil, logical.BadRequest("invalid accessor")
	}
	resp, err := b.renewEntry(ctx, te, d)
	if resp != nil && resp.Auth != nil {
		resp.Auth.ClientToken = ""
	}
	return resp, err
}

func (b *tokenBackend) revoke(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	id := d.String("token")
	if id == "" {
		return nil, logical.BadRequest("missing required field \"token\"")
	}
	return nil, b.ts().revokeTree(ctx, id)
}

func (b *tokenBackend) revokeSelf(ctx context.Context, req *logical.Request, _ *fw.FieldData) (*logical.Response, error) {
	return nil, b.ts().revokeTree(ctx, req.ClientToken)
}

func (b *tokenBackend) revokeAccessor(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	te, err := b.ts().lookupAccessor(ctx, d.String("accessor"))
	if err != nil {
		return nil, err
	}
	if te == nil {
		return nil, logical.BadRequest("invalid accessor")
	}
	return nil, b.ts().revokeTree(ctx, te.ID)
}

func (b *tokenBackend) revokeOrphan(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	id := d.String("token")
	if id == "" {
		return nil, logical.BadRequest("missing required field \"token\"")
	}
	return nil, b.ts().revokeOrphan(ctx, id)
}

func (b *tokenBackend) listAccessors(ctx context.Context, req *logical.Request, _ *fw.FieldData) (*logical.Response, error) {
	var keys []string
	err := b.ts().walk(ctx, func(_ string, te *TokenEntry) error {
		if !te.expired(time.Now()) {
			keys = append(keys, te.Accessor)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return listResponse(keys), nil
}

func (b *tokenBackend) listRoles(ctx context.Context, req *logical.Request, _ *fw.FieldData) (*logical.Response, error) {
	keys, err := b.ts().view.List(ctx, tokenRolePrefix)
	if err != nil {
		return nil, err
	}
	return listResponse(keys), nil
}

func (b *tokenBackend) readRole(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	var role tokenRole
	found, err := getJSONFrom(ctx, b.ts().view, tokenRolePrefix+strings.ToLower(d.String("role_name")), &role)
	if err != nil || !found {
		return nil, err
	}
	return &logical.Response{Data: role.data()}, nil
}

func (b *tokenBackend) writeRole(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	name := strings.ToLower(d.String("role_name"))
	role := tokenRole{Name: name, Renewable: true}
	if _, err := getJSONFrom(ctx, b.ts().view, tokenRolePrefix+name, &role); err != nil {
		return nil, err
	}
	if v, ok := d.GetOk("allowed_policies"); ok {
		role.AllowedPolicies = v.([]string)
	}
	if v, ok := d.GetOk("disallowed_policies"); ok {
		role.DisallowedPolicies = v.([]string)
	}
	if v, ok := d.GetOk("orphan"); ok {
		role.Orphan = v.(bool)
	}
	if v, ok := d.GetOk("renewable"); ok {
		role.Renewable = v.(bool)
	}
	if v, ok := d.GetOk("path_suffix"); ok {
		role.PathSuffix = strings.Trim(v.(string), "/")
		if strings.Contains(role.PathSuffix, "..") {
			return nil, logical.BadRequest("path_suffix must not contain '..'")
		}
	}
	for _, f := range []string{"explicit_max_ttl", "token_explicit_max_ttl"} {
		if v, ok := d.GetOk(f); ok {
			role.ExplicitMaxTTL = v.(time.Duration)
		}
	}
	for _, f := range []string{"period", "token_period"} {
		if v, ok := d.GetOk(f); ok {
			role.Period = v.(time.Duration)
		}
	}
	if v, ok := d.GetOk("token_type"); ok {
		if t := v.(string); t != "" && t != "service" && t != "default" {
			return nil, logical.BadRequest("token_type %q is not supported: Arca issues service tokens", t)
		}
		role.TokenType = v.(string)
	}
	if v, ok := d.GetOk("token_no_default_policy"); ok {
		role.NoDefaultPolicy = v.(bool)
	}
	if v, ok := d.GetOk("token_num_uses"); ok {
		role.NumUses = v.(int)
	}
	return nil, putJSONTo(ctx, b.ts().view, tokenRolePrefix+name, role)
}

func (b *tokenBackend) deleteRole(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	return nil, b.ts().view.Delete(ctx, tokenRolePrefix+strings.ToLower(d.String("role_name")))
}

func (b *tokenBackend) tidy(ctx context.Context, req *logical.Request, _ *fw.FieldData) (*logical.Response, error) {
	if err := b.ts().tidy(ctx); err != nil {
		return nil, err
	}
	return &logical.Response{Warnings: []string{"Tidy operation successfully completed."}}, nil
}

// listResponse is the response of a list: keys, or 404 when there are none.
func listResponse(keys []string) *logical.Response {
	if len(keys) == 0 {
		return nil
	}
	return &logical.Response{Data: map[string]any{"keys": keys}}
}
