package jwt

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/logical/framework"
)

func (b *backend) pathLogin() *framework.Path {
	return &framework.Path{
		Pattern: `login`,
		Fields: map[string]*framework.FieldSchema{
			"role": {Type: framework.TypeLowerCaseString, Description: "The role to log in against; the config's default_role when empty."},
			"jwt":  {Type: framework.TypeString, Description: "The signed JWT."},
		},
		Operations: map[logical.Operation]framework.OperationFunc{
			logical.UpdateOperation: b.login,
		},
		HelpSynopsis: "Logs in with a signed JWT.",
	}
}

func (b *backend) now() time.Time {
	if b.System != nil {
		return b.System.Now()
	}
	return time.Now()
}

// loginRole resolves the role a login names (or the default role).
func (b *backend) loginRole(ctx context.Context, req *logical.Request, cfg *config, name string) (string, *role, error) {
	if name == "" {
		name = cfg.DefaultRole
	}
	if name == "" {
		return "", nil, logical.BadRequest("missing role")
	}
	r, err := b.loadRole(ctx, req.Storage, name)
	if err != nil {
		return "", nil, err
	}
	if r == nil {
		return "", nil, logical.BadRequest("role %q could not be found", name)
	}
	return name, r, nil
}

func (b *backend) login(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	cfg, err := b.loadConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return nil, logical.BadRequest("could not load configuration: write auth/<mount>/config first")
	}
	name, r, err := b.loginRole(ctx, req, cfg, d.String("role"))
	if err != nil {
		return nil, err
	}
	if r.RoleType == "oidc" {
		return nil, logical.BadRequest("role with oidc role_type is not allowed")
	}
	token := d.String("jwt")
	if token == "" {
		return nil, logical.BadRequest("missing token (jwt)")
	}
	if !framework.RemoteAddrAllowed(req.RemoteAddr, r.TokenBoundCIDRs) {
		return nil, logical.ErrPermissionDenied
	}
	v, err := b.verifierFor(cfg)
	if err != nil {
		return nil, logical.BadRequest("error configuring token validator: %v", err)
	}
	now := b.now()
	claims, err := v.verify(ctx, token, now)
	if err != nil {
		return nil, validationError(err)
	}
	if err := checkClaims(claims, now, r, cfg.BoundIssuer, r.BoundAudiences, true); err != nil {
		return nil, validationError(err)
	}
	auth, err := b.authFor(name, r, claims)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Auth: auth}, nil
}

// validationError turns a refusal into the 400 Vault returns; a failure to
// reach the issuer is reported as such, still without echoing the token.
func validationError(err error) error {
	var te *tokenError
	if errors.As(err, &te) {
		return logical.BadRequest("error validating token: %s", te.msg)
	}
	return logical.BadRequest("error validating token: %v", err)
}

// checkClaims checks the registered claims a role binds: times, issuer,
// audience, subject and the bound claims. strictAud refuses a token with an
// "aud" claim when the role binds no audience (Vault's rule for jwt roles).
func checkClaims(claims map[string]any, now time.Time, r *role, issuer string, auds []string, strictAud bool) error {
	if err := checkTimes(claims, now, r); err != nil {
		return refuse("%v", err)
	}
	if issuer != "" {
		if iss, _ := claims["iss"].(string); iss != issuer {
			return refuse("the iss claim %q does not match the expected issuer", iss)
		}
	}
	aud, err := audiences(claims)
	if err != nil {
		return refuse("%v", err)
	}
	if len(auds) > 0 {
		if !slices.ContainsFunc(auds, func(a string) bool { return slices.Contains(aud, a) }) {
			return refuse("aud claim does not match any bound audience")
		}
	} else if strictAud && len(aud) > 0 {
		return refuse("audience claim found in JWT but no audiences bound to the role")
	}
	if r.BoundSubject != "" {
		if sub, _ := claims["sub"].(string); sub != r.BoundSubject {
			return refuse("sub claim does not match the role's bound_subject")
		}
	}
	if err := checkBoundClaims(r.BoundClaimsType == boundClaimsGlob, r.BoundClaims, claims); err != nil {
		return refuse("error validating claims: %v", err)
	}
	return nil
}

// authFor builds the login's Auth block from the role and the verified
// claims: the alias named by user_claim, group aliases from groups_claim,
// metadata from claim_mappings.
func (b *backend) authFor(roleName string, r *role, claims map[string]any) (*logical.Auth, error) {
	var userRaw any
	if r.UserClaimJSONPointer {
		userRaw = getClaim(claims, r.UserClaim)
	} else {
		userRaw = claims[r.UserClaim]
	}
	if userRaw == nil {
		return nil, logical.BadRequest("claim %q not found in token", r.UserClaim)
	}
	user, ok := userRaw.(string)
	if !ok || user == "" {
		return nil, logical.BadRequest("claim %q could not be converted to string", r.UserClaim)
	}
	md, err := extractMetadata(claims, r.ClaimMappings)
	if err != nil {
		return nil, logical.BadRequest("%v", err)
	}
	md["role"] = roleName

	var groups []*logical.Alias
	if r.GroupsClaim != "" {
		raw := getClaim(claims, r.GroupsClaim)
		if raw == nil {
			return nil, logical.BadRequest("%q claim not found in token", r.GroupsClaim)
		}
		list, ok := normalizeList(raw)
		if !ok {
			return nil, logical.BadRequest("%q claim could not be converted to string list", r.GroupsClaim)
		}
		for _, g := range list {
			s, ok := g.(string)
			if !ok {
				return nil, logical.BadRequest("a value in the %q claim is not a string", r.GroupsClaim)
			}
			if s != "" {
				groups = append(groups, &logical.Alias{Name: s})
			}
		}
	}
	auth := &logical.Auth{
		DisplayName:  user,
		Alias:        &logical.Alias{Name: user, Metadata: maps.Clone(md)},
		GroupAliases: groups,
		Metadata:     md,
		InternalData: map[string]any{"role": roleName},
	}
	r.PopulateAuth(auth)
	return auth, nil
}

// authRenew lets a login token be renewed while its role exists and grants
// the same policies; it renews under the role's current TTLs.
func (b *backend) authRenew(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if req.Auth == nil {
		return nil, logical.BadRequest("renewal request carries no token")
	}
	name, _ := req.Auth.InternalData["role"].(string)
	if name == "" {
		return nil, logical.Errorf(http.StatusForbidden, "the token names no role: it cannot be renewed")
	}
	r, err := b.loadRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, logical.Errorf(http.StatusForbidden, "role %q no longer exists: the token cannot be renewed", name)
	}
	had := req.Auth.TokenPolicies
	if len(had) == 0 {
		had = req.Auth.Policies
	}
	if !samePolicies(had, r.TokenPolicies) {
		return nil, logical.Errorf(http.StatusForbidden, "the policies of role %q have changed since login: the token cannot be renewed; log in again", name)
	}
	auth := *req.Auth
	auth.TTL = r.TokenTTL
	auth.MaxTTL = r.TokenMaxTTL
	auth.Period = r.TokenPeriod
	return &logical.Response{Auth: &auth}, nil
}

// samePolicies compares policy sets, ignoring "default" (which the core adds).
func samePolicies(a, b []string) bool {
	strip := func(in []string) []string {
		out := framework.NormalizePolicies(in)
		return slices.DeleteFunc(out, func(p string) bool { return p == "default" })
	}
	return slices.Equal(strip(a), strip(b))
}

// resolveRole names the role a login is for (the config's default_role when
// the login names none), for rate limit quotas with a role. It checks no
// token.
func (b *backend) resolveRole(ctx context.Context, req *logical.Request, d *framework.FieldData) (string, error) {
	if name := d.String("role"); name != "" {
		return name, nil
	}
	cfg, err := b.loadConfig(ctx, req.Storage)
	if err != nil || cfg == nil {
		return "", err
	}
	return cfg.DefaultRole, nil
}
