package jwt

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/logical/framework"
)

const (
	rolePrefix = "role/"

	defaultClockSkewLeeway = 60 * time.Second
	defaultExpNbfLeeway    = 150 * time.Second

	boundClaimsString = "string"
	boundClaimsGlob   = "glob"
)

// role is what a login is checked against and what its token gets.
type role struct {
	framework.TokenParams

	RoleType             string            `json:"role_type"`
	BoundAudiences       []string          `json:"bound_audiences"`
	BoundSubject         string            `json:"bound_subject"`
	BoundClaimsType      string            `json:"bound_claims_type"`
	BoundClaims          map[string]any    `json:"bound_claims"`
	ClaimMappings        map[string]string `json:"claim_mappings"`
	UserClaim            string            `json:"user_claim"`
	UserClaimJSONPointer bool              `json:"user_claim_json_pointer"`
	GroupsClaim          string            `json:"groups_claim"`
	ClockSkewLeeway      time.Duration     `json:"clock_skew_leeway"`
	ExpirationLeeway     time.Duration     `json:"expiration_leeway"`
	NotBeforeLeeway      time.Duration     `json:"not_before_leeway"`
	AllowedRedirectURIs  []string          `json:"allowed_redirect_uris"`
	OIDCScopes           []string          `json:"oidc_scopes"`
	VerboseOIDCLogging   bool              `json:"verbose_oidc_logging"`
	MaxAge               time.Duration     `json:"max_age"`
}

// leeway turns a stored leeway into the one applied: 0 means the default,
// a negative value means none.
func leeway(v, def time.Duration) time.Duration {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

func roleFields() map[string]*framework.FieldSchema {
	f := map[string]*framework.FieldSchema{
		"name":                    {Type: framework.TypeLowerCaseString, Description: "Name of the role."},
		"role_type":               {Type: framework.TypeString, Description: `"jwt" for logins with a JWT, "oidc" (the default) for the browser flow.`},
		"bound_audiences":         {Type: framework.TypeCommaStringSlice, Description: `Values one of which the token's "aud" claim must contain. A token with an "aud" claim is refused by a jwt role without bound_audiences.`},
		"bound_subject":           {Type: framework.TypeString, Description: `The value the token's "sub" claim must have, when set.`},
		"bound_claims_type":       {Type: framework.TypeString, Default: boundClaimsString, Description: `How bound_claims values match: "string" (exactly) or "glob" ("*" matches any run of characters).`},
		"bound_claims":            {Type: framework.TypeMap, Description: `Claims the token must carry, each with a value or list of values one of which must match. A key starting with "/" is a JSON pointer into nested claims.`},
		"claim_mappings":          {Type: framework.TypeKVPairs, Description: "Claims copied into the token's and alias's metadata: claim name (or JSON pointer) to metadata key."},
		"user_claim":              {Type: framework.TypeString, Description: "The claim whose value names the login (the identity alias). Required."},
		"user_claim_json_pointer": {Type: framework.TypeBool, Description: "Read user_claim as a JSON pointer into nested claims."},
		"groups_claim":            {Type: framework.TypeString, Description: "The claim (or JSON pointer) listing the login's groups; each becomes a group alias."},
		"clock_skew_leeway":       {Type: framework.TypeDuration, Description: "Allowed clock skew when checking exp, nbf and iat; 0 means 60 seconds, -1 none."},
		"expiration_leeway":       {Type: framework.TypeDuration, Description: "Extra time allowed past exp; 0 means 150 seconds, -1 none."},
		"not_before_leeway":       {Type: framework.TypeDuration, Description: "Extra time allowed before nbf; 0 means 150 seconds, -1 none."},
		"allowed_redirect_uris":   {Type: framework.TypeCommaStringSlice, Description: "Redirect URIs the browser flow may return to."},
		"oidc_scopes":             {Type: framework.TypeCommaStringSlice, Description: `Scopes requested besides "openid".`},
		"verbose_oidc_logging":    {Type: framework.TypeBool, Description: "Accepted for compatibility; claims are never logged."},
		"max_age":                 {Type: framework.TypeDuration, Description: "Longest time since the user last authenticated at the provider (browser flow)."},
		// Legacy names of the token_* fields.
		"policies":    {Type: framework.TypeCommaStringSlice, Description: "Deprecated: use token_policies."},
		"ttl":         {Type: framework.TypeDuration, Description: "Deprecated: use token_ttl."},
		"max_ttl":     {Type: framework.TypeDuration, Description: "Deprecated: use token_max_ttl."},
		"period":      {Type: framework.TypeDuration, Description: "Deprecated: use token_period."},
		"num_uses":    {Type: framework.TypeInt, Description: "Deprecated: use token_num_uses."},
		"bound_cidrs": {Type: framework.TypeCommaStringSlice, Description: "Deprecated: use token_bound_cidrs."},
	}
	framework.AddTokenFields(f)
	return f
}

func (b *backend) pathRoleList() *framework.Path {
	return &framework.Path{
		Pattern: `role/?`,
		Operations: map[logical.Operation]framework.OperationFunc{
			logical.ListOperation: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
				keys, err := req.Storage.List(ctx, rolePrefix)
				if err != nil {
					return nil, err
				}
				return &logical.Response{Data: map[string]any{"keys": keys}}, nil
			},
		},
		HelpSynopsis: "Lists the roles.",
	}
}

func (b *backend) pathRole() *framework.Path {
	return &framework.Path{
		Pattern: `role/` + framework.GenericNameRegex("name"),
		Fields:  roleFields(),
		Operations: map[logical.Operation]framework.OperationFunc{
			logical.ReadOperation:   b.roleRead,
			logical.CreateOperation: b.roleWrite,
			logical.UpdateOperation: b.roleWrite,
			logical.DeleteOperation: b.roleDelete,
		},
		ExistenceCheck: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
			r, err := b.loadRole(ctx, req.Storage, d.String("name"))
			return r != nil, err
		},
		HelpSynopsis: "Creates, reads, updates and deletes a role: the bindings a token must satisfy and the token a login gets.",
	}
}

func (b *backend) loadRole(ctx context.Context, s logical.Storage, name string) (*role, error) {
	e, err := s.Get(ctx, rolePrefix+strings.ToLower(name))
	if err != nil {
		return nil, fmt.Errorf("reading role %q: %w", name, err)
	}
	if e == nil {
		return nil, nil
	}
	var r role
	if err := json.Unmarshal(e.Value, &r); err != nil {
		return nil, fmt.Errorf("decoding role %q: %w", name, err)
	}
	return &r, nil
}

func (b *backend) roleRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	r, err := b.loadRole(ctx, req.Storage, d.String("name"))
	if err != nil || r == nil {
		return nil, err
	}
	data := r.TokenParams.ResponseData()
	for k, v := range map[string]any{
		"role_type":               r.RoleType,
		"bound_audiences":         nonNil(r.BoundAudiences),
		"bound_subject":           r.BoundSubject,
		"bound_claims_type":       r.BoundClaimsType,
		"bound_claims":            r.BoundClaims,
		"claim_mappings":          r.ClaimMappings,
		"user_claim":              r.UserClaim,
		"user_claim_json_pointer": r.UserClaimJSONPointer,
		"groups_claim":            r.GroupsClaim,
		"clock_skew_leeway":       int64(r.ClockSkewLeeway / time.Second),
		"expiration_leeway":       int64(r.ExpirationLeeway / time.Second),
		"not_before_leeway":       int64(r.NotBeforeLeeway / time.Second),
		"allowed_redirect_uris":   nonNil(r.AllowedRedirectURIs),
		"oidc_scopes":             nonNil(r.OIDCScopes),
		"verbose_oidc_logging":    r.VerboseOIDCLogging,
		"max_age":                 int64(r.MaxAge / time.Second),
	} {
		data[k] = v
	}
	return &logical.Response{Data: data}, nil
}

func (b *backend) roleDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return nil, req.Storage.Delete(ctx, rolePrefix+d.String("name"))
}

// reservedMetadata are metadata keys the method sets itself.
var reservedMetadata = []string{"role"}

func (b *backend) roleWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.String("name")
	r, err := b.loadRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		r = &role{
			RoleType:         "oidc",
			BoundClaimsType:  boundClaimsString,
			ClockSkewLeeway:  defaultClockSkewLeeway,
			ExpirationLeeway: defaultExpNbfLeeway,
			NotBeforeLeeway:  defaultExpNbfLeeway,
		}
	}
	if v, ok := d.GetOk("role_type"); ok {
		r.RoleType = strings.ToLower(strings.TrimSpace(v.(string)))
		if r.RoleType == "" {
			r.RoleType = "oidc"
		}
	}
	if r.RoleType != "jwt" && r.RoleType != "oidc" {
		return nil, logical.BadRequest("invalid 'role_type': %q (want \"jwt\" or \"oidc\")", r.RoleType)
	}

	// Legacy field names fill the token_* ones when those are not given.
	legacy := map[string]string{"policies": "token_policies", "ttl": "token_ttl", "max_ttl": "token_max_ttl",
		"period": "token_period", "num_uses": "token_num_uses", "bound_cidrs": "token_bound_cidrs"}
	for old, repl := range legacy {
		if v, ok := d.Raw[old]; ok {
			if _, both := d.Raw[repl]; both {
				return nil, logical.BadRequest("%q and %q cannot both be given", old, repl)
			}
			d.Raw[repl] = v
		}
	}
	if err := r.ParseTokenFields(d); err != nil {
		return nil, err
	}

	for name, dst := range map[string]*time.Duration{
		"clock_skew_leeway": &r.ClockSkewLeeway, "expiration_leeway": &r.ExpirationLeeway,
		"not_before_leeway": &r.NotBeforeLeeway, "max_age": &r.MaxAge,
	} {
		if v, ok := d.GetOk(name); ok {
			*dst = v.(time.Duration).Truncate(time.Second)
		}
	}
	if r.MaxAge < 0 {
		return nil, logical.BadRequest("max_age must not be negative")
	}
	if v, ok := d.GetOk("bound_audiences"); ok {
		r.BoundAudiences = v.([]string)
	}
	if v, ok := d.GetOk("bound_subject"); ok {
		r.BoundSubject = v.(string)
	}
	if v, ok := d.GetOk("bound_claims_type"); ok {
		r.BoundClaimsType = v.(string)
	}
	if r.BoundClaimsType != boundClaimsString && r.BoundClaimsType != boundClaimsGlob {
		return nil, logical.BadRequest("invalid 'bound_claims_type': %q (want \"string\" or \"glob\")", r.BoundClaimsType)
	}
	if v, ok := d.GetOk("bound_claims"); ok {
		r.BoundClaims = v.(map[string]any)
	}
	for claim, want := range r.BoundClaims {
		vals, ok := normalizeList(want)
		if !ok {
			return nil, logical.BadRequest("bound_claims: the value of %q is not a string, number, bool or list of them", claim)
		}
		for _, v := range vals {
			if _, isStr := v.(string); r.BoundClaimsType == boundClaimsGlob && !isStr {
				return nil, logical.BadRequest("bound_claims: with bound_claims_type \"glob\" every value of %q must be a string", claim)
			}
		}
	}
	if v, ok := d.GetOk("claim_mappings"); ok {
		m := v.(map[string]string)
		seen := map[string]bool{}
		for _, target := range m {
			if slices.Contains(reservedMetadata, target) {
				return nil, logical.BadRequest("claim_mappings: metadata key %q is reserved and may not be a mapping destination", target)
			}
			if seen[target] {
				return nil, logical.BadRequest("claim_mappings: multiple claims are mapped to metadata key %q", target)
			}
			seen[target] = true
		}
		r.ClaimMappings = m
	}
	if v, ok := d.GetOk("user_claim"); ok {
		r.UserClaim = strings.TrimSpace(v.(string))
	}
	if r.UserClaim == "" {
		return nil, logical.BadRequest("a user claim must be defined on the role (user_claim)")
	}
	if v, ok := d.GetOk("user_claim_json_pointer"); ok {
		r.UserClaimJSONPointer = v.(bool)
	}
	if v, ok := d.GetOk("groups_claim"); ok {
		r.GroupsClaim = strings.TrimSpace(v.(string))
	}
	if v, ok := d.GetOk("allowed_redirect_uris"); ok {
		r.AllowedRedirectURIs = v.([]string)
	}
	if v, ok := d.GetOk("oidc_scopes"); ok {
		r.OIDCScopes = v.([]string)
	}
	if v, ok := d.GetOk("verbose_oidc_logging"); ok {
		r.VerboseOIDCLogging = v.(bool)
	}
	if r.RoleType == "oidc" && len(r.AllowedRedirectURIs) == 0 {
		return nil, logical.BadRequest("'allowed_redirect_uris' must be set if 'role_type' is 'oidc' or unspecified")
	}
	// A jwt role with no binding at all would accept any token the keys
	// verify, from any audience: refuse it.
	if r.RoleType == "jwt" && len(r.BoundAudiences) == 0 && len(r.TokenBoundCIDRs) == 0 && r.BoundSubject == "" && len(r.BoundClaims) == 0 {
		return nil, logical.BadRequest("must have at least one bound constraint when creating/updating a role (bound_audiences, bound_subject, bound_claims or token_bound_cidrs)")
	}

	buf, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	if err := req.Storage.Put(ctx, &logical.StorageEntry{Key: rolePrefix + name, Value: buf}); err != nil {
		return nil, fmt.Errorf("storing role %q: %w", name, err)
	}
	return nil, nil
}
