package core

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ryanuber/go-glob"

	"github.com/arcasec/arca/internal/logical"
	fw "github.com/arcasec/arca/internal/logical/framework"
)

// tokenRole constrains tokens created through auth/token/create/<role>.
type tokenRole struct {
	Name                   string        `json:"name"`
	AllowedPolicies        []string      `json:"allowed_policies"`
	DisallowedPolicies     []string      `json:"disallowed_policies"`
	AllowedPoliciesGlob    []string      `json:"allowed_policies_glob"`
	DisallowedPoliciesGlob []string      `json:"disallowed_policies_glob"`
	Orphan                 bool          `json:"orphan"`
	Renewable              bool          `json:"renewable"`
	PathSuffix             string        `json:"path_suffix"`
	ExplicitMaxTTL         time.Duration `json:"explicit_max_ttl"`
	Period                 time.Duration `json:"period"`
	TokenType              string        `json:"token_type"`
	NoDefaultPolicy        bool          `json:"token_no_default_policy"`
	NumUses                int           `json:"token_num_uses"`
	// AllowedEntityAliases are the entity alias names (globs allowed) a
	// token created through the role may name in entity_alias.
	AllowedEntityAliases []string `json:"allowed_entity_aliases,omitempty"`
}

// restrictsPolicies reports whether the role decides its tokens' policies
// itself rather than deferring to the parent's.
func (r *tokenRole) restrictsPolicies() bool {
	return len(r.AllowedPolicies)+len(r.DisallowedPolicies)+len(r.AllowedPoliciesGlob)+len(r.DisallowedPoliciesGlob) > 0
}

func (r *tokenRole) allows(policy string) bool {
	return slices.Contains(r.AllowedPolicies, policy) || matchesGlob(r.AllowedPoliciesGlob, policy)
}

func (r *tokenRole) disallows(policy string) bool {
	return slices.Contains(r.DisallowedPolicies, policy) || matchesGlob(r.DisallowedPoliciesGlob, policy)
}

// matchesGlob reports whether s matches one of patterns, in which "*"
// stands for any run of characters.
func matchesGlob(patterns []string, s string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return glob.Glob(p, s) })
}

func (r *tokenRole) data() map[string]any {
	return map[string]any{
		"name":                     r.Name,
		"allowed_policies":         nonNil(r.AllowedPolicies),
		"disallowed_policies":      nonNil(r.DisallowedPolicies),
		"allowed_policies_glob":    nonNil(r.AllowedPoliciesGlob),
		"disallowed_policies_glob": nonNil(r.DisallowedPoliciesGlob),
		"orphan":                   r.Orphan,
		"renewable":                r.Renewable,
		"path_suffix":              r.PathSuffix,
		"explicit_max_ttl":         int64(r.ExplicitMaxTTL / time.Second),
		"token_explicit_max_ttl":   int64(r.ExplicitMaxTTL / time.Second),
		"period":                   int64(r.Period / time.Second),
		"token_period":             int64(r.Period / time.Second),
		"token_type":               cmp.Or(r.TokenType, "default-service"),
		"token_no_default_policy":  r.NoDefaultPolicy,
		"token_num_uses":           r.NumUses,
		"allowed_entity_aliases":   nonNil(r.AllowedEntityAliases),
		"token_bound_cidrs":        []string{},
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
	"no_default_policy": {Type: fw.TypeBool, Description: "leave the default policy out"},
	"renewable":         {Type: fw.TypeBool, Default: true, Description: "whether the token may be renewed"},
	"ttl":               {Type: fw.TypeDuration, Description: "initial TTL"},
	"lease":             {Type: fw.TypeDuration, Description: "deprecated alias of ttl"},
	"type":              {Type: fw.TypeString, Description: "service (batch tokens are not supported)"},
	"explicit_max_ttl":  {Type: fw.TypeDuration, Description: "a hard limit on the token's life, renewals included"},
	"display_name":      {Type: fw.TypeString, Description: "a name for the token, shown as token-<name>"},
	"num_uses":          {Type: fw.TypeInt, Description: "how many requests the token may make; 0: no limit"},
	"period":            {Type: fw.TypeDuration, Description: "make a periodic token renewed by this much each time (root or sudo callers only)"},
	"entity_alias":      {Type: fw.TypeString, Description: "the entity alias (on the token auth mount) the token belongs to; only through a role that allows it"},
}

// tokenRoleCreateFields are the fields of auth/token/create/<role>: those of
// a plain create, and the role named in the path.
var tokenRoleCreateFields = func() map[string]*fw.FieldSchema {
	f := maps.Clone(tokenCreateFields)
	f["role_name"] = &fw.FieldSchema{Type: fw.TypeString, Description: "the role the token is created against"}
	return f
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
	be := &fw.Backend{
		Help: "Arca's own token store: creates, looks up, renews and revokes tokens. It is always mounted at auth/token/. A token revoked takes every token it created with it.",
		PathsSpecial: &logical.Paths{
			Root:            []string{"revoke-orphan/*", "revoke-orphan", "accessors/"},
			CaseInsensitive: []string{"roles/+", "create/+"},
		},
		Paths: []*fw.Path{
			{Pattern: "create", Fields: tokenCreateFields, Operations: ops(up, b.create(createPlain))},
			{Pattern: "create-orphan", Fields: tokenCreateFields, Operations: ops(up, b.create(createOrphan))},
			{Pattern: "create/" + fw.GenericNameRegex("role_name"), Fields: tokenRoleCreateFields, Operations: ops(up, b.create(createRole))},
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
	fw.RequireLowercase("role_name", be.Paths)
	return be
}

func ops(op logical.Operation, f fw.OperationFunc) map[logical.Operation]fw.OperationFunc {
	return map[logical.Operation]fw.OperationFunc{op: f}
}

func ops2(a, b logical.Operation, f fw.OperationFunc) map[logical.Operation]fw.OperationFunc {
	return map[logical.Operation]fw.OperationFunc{a: f, b: f}
}

var tokenRoleFields = map[string]*fw.FieldSchema{
	"role_name":                {Type: fw.TypeString},
	"allowed_policies":         {Type: fw.TypeCommaStringSlice},
	"disallowed_policies":      {Type: fw.TypeCommaStringSlice},
	"allowed_policies_glob":    {Type: fw.TypeCommaStringSlice},
	"disallowed_policies_glob": {Type: fw.TypeCommaStringSlice},
	"orphan":                   {Type: fw.TypeBool},
	"renewable":                {Type: fw.TypeBool, Default: true},
	"path_suffix":              {Type: fw.TypeString},
	"explicit_max_ttl":         {Type: fw.TypeDuration},
	"token_explicit_max_ttl":   {Type: fw.TypeDuration},
	"period":                   {Type: fw.TypeDuration},
	"token_period":             {Type: fw.TypeDuration},
	"token_type":               {Type: fw.TypeString},
	"token_no_default_policy":  {Type: fw.TypeBool},
	"token_num_uses":           {Type: fw.TypeInt},
	"allowed_entity_aliases":   {Type: fw.TypeCommaStringSlice},
	"token_bound_cidrs":        {Type: fw.TypeCommaStringSlice},
	"bound_cidrs":              {Type: fw.TypeCommaStringSlice},
}

type tokenBackend struct{ core *Core }

func (b *tokenBackend) ts() *tokenStore { return b.core.tokens }

// caller returns the requesting token's entry; the request may have spent
// its last use.
func (b *tokenBackend) caller(ctx context.Context, req *logical.Request) (*TokenEntry, error) {
	te, err := b.ts().lookupInFlight(ctx, req.ClientToken)
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
	acl, err := b.core.aclOf(ctx, parent)
	if err != nil {
		return false
	}
	return acl.Check(path, policyCap(logical.UpdateOperation), nil).Sudo
}

// createMode says which endpoint a token is created through.
type createMode int

const (
	createPlain  createMode = iota // auth/token/create
	createOrphan                   // auth/token/create-orphan
	createRole                     // auth/token/create/<role>
)

// durationField returns a duration field of the request, refusing a
// negative value or one too large to represent.
func durationField(d *fw.FieldData, name string) (time.Duration, error) {
	raw, ok := d.Raw[name]
	if !ok {
		return 0, nil
	}
	if durationOverflows(raw) {
		return 0, logical.BadRequest("%s is too large", name)
	}
	v := d.Duration(name)
	if v < 0 {
		return 0, logical.BadRequest("%s must not be negative", name)
	}
	return v, nil
}

// durationOverflows reports whether a duration given as a number of
// seconds (or of days, "30d") is too large for a time.Duration, which the
// field parser would otherwise wrap around.
func durationOverflows(raw any) bool {
	if list, ok := raw.([]any); ok && len(list) == 1 {
		raw = list[0] // the parser takes a one-element list as its element
	}
	s := strings.TrimSpace(fmt.Sprint(raw))
	unit := float64(time.Second)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		s, unit = days, float64(24*time.Hour)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return false // not a plain number: the parser checks its range
	}
	return math.Abs(f)*unit >= math.MaxInt64
}

// displayNameInvalid matches what a display name may not contain.
var displayNameInvalid = regexp.MustCompile(`[^a-zA-Z0-9-]`)

func (b *tokenBackend) create(mode createMode) fw.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
		parent, err := b.ts().lookupInFlight(ctx, req.ClientToken)
		if err != nil {
			return nil, err
		}
		if parent == nil {
			return nil, logical.ErrPermissionDenied
		}
		if parent.NumUses != 0 {
			return nil, logical.BadRequest("a token with a use limit cannot create tokens")
		}
		sudo := b.callerHasSudo(ctx, parent, "auth/token/"+req.Path)
		var role *tokenRole
		if mode == createRole {
			name := d.String("role_name")
			role = new(tokenRole)
			found, err := getJSONFrom(ctx, b.ts().view, tokenRolePrefix+strings.ToLower(name), role)
			if err != nil {
				return nil, err
			}
			if !found {
				return nil, logical.BadRequest("no token role is named %q", name)
			}
		}
		if t := d.String("type"); t != "" && t != "service" && t != "default" {
			return nil, logical.BadRequest("token type %q is not supported: Arca issues service tokens", t)
		}
		entityAlias := d.String("entity_alias")
		if entityAlias != "" {
			if role == nil {
				return nil, logical.BadRequest("entity_alias may only be given when creating a token through a role")
			}
			if !matchesGlob(role.AllowedEntityAliases, entityAlias) {
				return nil, logical.BadRequest("invalid entity_alias %q: not among the role's allowed_entity_aliases", entityAlias)
			}
		}
		numUses := d.Int("num_uses")
		if numUses < 0 {
			return nil, logical.BadRequest("num_uses must not be negative")
		}
		var ttl, explicitMax, period time.Duration
		for _, f := range []struct {
			name string
			to   *time.Duration
		}{{"ttl", &ttl}, {"explicit_max_ttl", &explicitMax}, {"period", &period}} {
			if *f.to, err = durationField(d, f.name); err != nil {
				return nil, err
			}
		}
		if ttl == 0 {
			if ttl, err = durationField(d, "lease"); err != nil {
				return nil, err
			}
		}
		if period > 0 && !sudo {
			return nil, logical.BadRequest("only a root token or a caller with sudo may set period, unless a role sets it")
		}

		now := b.ts().now().UTC()
		te := &TokenEntry{
			Meta:         d.Get("meta").(map[string]string),
			NumUses:      numUses,
			CreationTime: now,
			Renewable:    d.Bool("renewable"),
			Path:         "auth/token/" + req.Path,
			Parent:       parent.ID,
			DisplayName:  "token",
		}
		if id := d.String("id"); id != "" {
			if !sudo {
				return nil, logical.BadRequest("only a root token or a caller with sudo may choose the token's id")
			}
			// Generated IDs carry a "hvs." prefix: a chosen one may not
			// pass for one of them.
			if strings.Contains(id, ".") {
				return nil, logical.BadRequest("a custom token id must not contain a '.'")
			}
			te.ID = id
		}
		if dn := d.String("display_name"); dn != "" {
			te.DisplayName = strings.TrimSuffix(displayNameInvalid.ReplaceAllString("token-"+dn, "-"), "-")
		}
		switch {
		case mode == createOrphan:
			te.Parent = ""
		case role != nil: // the role alone decides
			if role.Orphan {
				te.Parent = ""
			}
		case d.Bool("no_parent"):
			if !sudo {
				return nil, logical.BadRequest("only a root token or a caller with sudo may set no_parent; auth/token/create-orphan makes orphans under its own ACL")
			}
			te.Parent = ""
		}
		if role != nil {
			te.Role = role.Name
			if !role.Renewable {
				te.Renewable = false
			}
			if role.NumUses > 0 && (te.NumUses == 0 || role.NumUses < te.NumUses) {
				te.NumUses = role.NumUses
			}
			if role.PathSuffix != "" {
				te.Path += "/" + role.PathSuffix
			}
			// A role's limits bind: where both the request and the role
			// set one, the lesser holds.
			if role.ExplicitMaxTTL > 0 && (explicitMax == 0 || role.ExplicitMaxTTL < explicitMax) {
				explicitMax = role.ExplicitMaxTTL
			}
			if role.Period > 0 && (period == 0 || role.Period < period) {
				period = role.Period
			}
		}
		te.ExplicitMaxTTL, te.Period = explicitMax, period
		// A child (not an orphan) carries its parent's entity and, unless
		// a role made it, its parent's bound CIDRs, as in Vault: otherwise
		// a token could shed its address binding, or escape its entity
		// being disabled, by creating a child.
		if te.Parent != "" {
			te.EntityID = parent.EntityID
			if role == nil {
				te.BoundCIDRs = slices.Clone(parent.BoundCIDRs)
			}
		}
		if entityAlias != "" {
			if te.EntityID, err = b.core.tokenEntityAlias(ctx, entityAlias); err != nil {
				return nil, err
			}
		}

		pols, err := tokenPolicies(d, role, parent, sudo)
		if err != nil {
			return nil, err
		}
		if slices.Contains(pols, "root") && !parent.isRoot() {
			return nil, logical.BadRequest("only a root token can create a root token")
		}
		te.Policies = pols

		// Lifetime: the period for a periodic token, else the requested TTL
		// or the mount default, within the mount maximum; always within the
		// explicit maximum (logical.CalculateTTL). A root token asked for no
		// TTL never expires, unless it has an explicit maximum.
		var warnings []string
		if ttl == 0 && period == 0 && slices.Contains(pols, "root") {
			ttl = explicitMax
		} else {
			if period > 0 {
				ttl = 0 // the period is the TTL
			}
			ttl, warnings = logical.CalculateTTL(b.core.tokenMountSystemView(), logical.LeaseTerms{
				Requested: ttl, Period: period, ExplicitMax: explicitMax,
			})
		}
		if ttl == 0 && !parent.ExpireTime.IsZero() {
			return nil, logical.BadRequest("a token that expires cannot create a root token that never expires")
		}
		if te.Parent != "" {
			depth, err := b.ts().depth(ctx, parent)
			if err != nil {
				return nil, err
			}
			if depth >= maxTokenDepth {
				return nil, logical.BadRequest("the creating token is %d tokens deep, the most a chain may hold: create an orphan instead", depth)
			}
		}
		if ttl > 0 {
			// A child never outlives a parent that expires.
			if te.Parent != "" && !parent.ExpireTime.IsZero() && now.Add(ttl).After(parent.ExpireTime) {
				ttl = parent.ExpireTime.Sub(now)
			}
			te.CreationTTL = ttl
			te.ExpireTime = now.Add(ttl)
		}
		if err := b.ts().create(ctx, te); err != nil {
			return nil, err
		}
		resp := &logical.Response{Auth: te.auth(now), Warnings: warnings}
		applyIdentity(resp.Auth, te, b.core.identity.resolve(te.EntityID))
		for _, p := range te.Policies {
			if p == "root" {
				continue
			}
			if pol, err := b.core.policies.get(ctx, p); err == nil && pol == nil {
				resp.AddWarning(fmt.Sprintf("policy %q does not exist yet: the token gains nothing from it until it is written", p))
			}
		}
		return resp, nil
	}
}

// tokenPolicies decides a new token's policies. A role that lists allowed
// or disallowed policies decides alone: requested policies must be among
// its allowed ones (all of them by default) and none may be disallowed.
// Otherwise a token gets the policies requested, or its parent's; a caller
// without root or sudo may only hand out policies it holds itself.
func tokenPolicies(d *fw.FieldData, role *tokenRole, parent *TokenEntry, sudo bool) ([]string, error) {
	requested := policyNames(d.Strings("policies"))
	noDefault := d.Bool("no_default_policy") || (role != nil && role.NoDefaultPolicy)
	addDefault := false
	var pols []string
	switch {
	case role != nil && role.restrictsPolicies():
		addDefault = !noDefault && !role.disallows("default")
		pols = requested
		switch {
		case len(role.AllowedPolicies) == 0 && len(role.AllowedPoliciesGlob) == 0:
			if len(pols) == 0 {
				pols = slices.Clone(parent.Policies)
			}
		case len(pols) == 0:
			pols = slices.Clone(role.AllowedPolicies)
		default:
			for _, p := range pols {
				if p == "default" && addDefault {
					continue
				}
				if !role.allows(p) {
					return nil, logical.BadRequest("policy %q is not among the role's allowed policies", p)
				}
			}
		}
		if addDefault && !slices.Contains(pols, "default") {
			pols = append(pols, "default")
		}
		for _, p := range pols {
			if role.disallows(p) {
				return nil, logical.BadRequest("policy %q is disallowed by the role", p)
			}
		}
	case len(requested) == 0:
		pols = slices.Clone(parent.Policies)
	case !sudo:
		for _, p := range requested {
			if !slices.Contains(parent.Policies, p) {
				return nil, logical.BadRequest("policy %q is not held by the creating token: a child's policies must be a subset of its parent's", p)
			}
		}
		pols = requested
		addDefault = !noDefault && slices.Contains(parent.Policies, "default")
	default:
		pols = requested
		addDefault = !noDefault
	}
	if addDefault && !slices.Contains(pols, "root") && !slices.Contains(pols, "default") {
		pols = append(pols, "default")
	}
	if noDefault {
		pols = slices.DeleteFunc(pols, func(p string) bool { return p == "default" })
	}
	sort.Strings(pols)
	return slices.Compact(pols), nil
}

// lookupData is the data block of token lookups.
func lookupData(te *TokenEntry, withID bool, now time.Time) map[string]any {
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
	if !te.LastRenewal.IsZero() {
		// Only once renewed, as in Vault.
		data["last_renewal_time"] = te.LastRenewal.Unix()
		data["last_renewal"] = te.LastRenewal.Format(time.RFC3339Nano)
	}
	if te.Role != "" {
		data["role"] = te.Role
	}
	if len(te.BoundCIDRs) > 0 {
		data["bound_cidrs"] = fw.DisplayCIDRs(te.BoundCIDRs)
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
	return &logical.Response{Data: b.core.withIdentity(lookupData(te, true, b.ts().now()), te)}, nil
}

func (b *tokenBackend) lookupSelf(ctx context.Context, req *logical.Request, _ *fw.FieldData) (*logical.Response, error) {
	te, err := b.caller(ctx, req)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: b.core.withIdentity(lookupData(te, true, b.ts().now()), te)}, nil
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
	return &logical.Response{Data: b.core.withIdentity(lookupData(te, false, b.ts().now()), te)}, nil
}

func (b *tokenBackend) renewEntry(ctx context.Context, te *TokenEntry, d *fw.FieldData) (*logical.Response, error) {
	increment, err := durationField(d, "increment")
	if err != nil {
		return nil, err
	}
	renewed, err := b.ts().renew(ctx, te, increment)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Auth: renewed.auth(b.ts().now())}, nil
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
		if !te.expired(b.ts().now()) {
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
	for f, to := range map[string]*[]string{
		"allowed_policies":         &role.AllowedPolicies,
		"disallowed_policies":      &role.DisallowedPolicies,
		"allowed_policies_glob":    &role.AllowedPoliciesGlob,
		"disallowed_policies_glob": &role.DisallowedPoliciesGlob,
	} {
		if v, ok := d.GetOk(f); ok {
			*to = policyNames(v.([]string))
		}
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
		if _, ok := d.Raw[f]; ok {
			v, err := durationField(d, f)
			if err != nil {
				return nil, err
			}
			role.ExplicitMaxTTL = v
		}
	}
	for _, f := range []string{"period", "token_period"} {
		if _, ok := d.Raw[f]; ok {
			v, err := durationField(d, f)
			if err != nil {
				return nil, err
			}
			role.Period = v
		}
	}
	if v, ok := d.GetOk("token_type"); ok {
		switch t := v.(string); t {
		case "", "default", "default-service":
			role.TokenType = "default-service"
		case "service":
			role.TokenType = t
		default:
			return nil, logical.BadRequest("token_type %q is not supported: Arca issues service tokens", t)
		}
	}
	for _, f := range []string{"token_bound_cidrs", "bound_cidrs"} {
		// Accepting it without enforcing it would promise a restriction
		// that does not hold.
		if v, ok := d.GetOk(f); ok && len(v.([]string)) > 0 {
			return nil, logical.BadRequest("%s is not supported: Arca cannot bind tokens to addresses", f)
		}
	}
	if v, ok := d.GetOk("token_no_default_policy"); ok {
		role.NoDefaultPolicy = v.(bool)
	}
	if v, ok := d.GetOk("allowed_entity_aliases"); ok {
		role.AllowedEntityAliases = v.([]string)
	}
	if v, ok := d.GetOk("token_num_uses"); ok {
		if role.NumUses = v.(int); role.NumUses < 0 {
			return nil, logical.BadRequest("token_num_uses must not be negative")
		}
	}
	return nil, putJSONTo(ctx, b.ts().view, tokenRolePrefix+name, role)
}

// policyNames normalises a list of policy names, dropping empty ones.
func policyNames(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if n = normalizePolicyName(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}

func (b *tokenBackend) deleteRole(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	return nil, b.ts().view.Delete(ctx, tokenRolePrefix+strings.ToLower(d.String("role_name")))
}

func (b *tokenBackend) tidy(ctx context.Context, req *logical.Request, _ *fw.FieldData) (*logical.Response, error) {
	if err := b.ts().tidy(ctx); err != nil {
		return nil, err
	}
	return &logical.Response{Warnings: []string{"tidy done: spent and expired tokens, and tokens whose parent is gone, were revoked"}}, nil
}

// listResponse is the response of a list: keys, or 404 when there are none.
func listResponse(keys []string) *logical.Response {
	if len(keys) == 0 {
		return nil
	}
	return &logical.Response{Data: map[string]any{"keys": keys}}
}
