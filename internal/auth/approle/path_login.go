package approle

import (
	"context"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/logical/framework"
)

// errInvalidCredentials is Vault's wording for every bad role ID or secret
// ID, so a caller cannot tell which of the two was wrong.
var errInvalidCredentials = logical.BadRequest("invalid role or secret ID")

func (b *backend) loginPath() *framework.Path {
	return &framework.Path{
		Pattern: "login",
		Fields: map[string]*framework.FieldSchema{
			"role_id":   {Type: framework.TypeString, Description: "The role ID of the role to log in with."},
			"secret_id": {Type: framework.TypeString, Description: "A secret ID of the role; required when the role has bind_secret_id."},
		},
		Operations: map[logical.Operation]framework.OperationFunc{
			logical.UpdateOperation: b.login,
		},
		HelpSynopsis: "Logs in with a role ID and a secret ID and issues a token.",
	}
}

func (b *backend) login(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	roleID := strings.TrimSpace(d.String("role_id"))
	if roleID == "" {
		return nil, logical.BadRequest("missing role_id")
	}
	guard := b.guard()
	if guard.Locked(ctx, roleID) {
		return nil, logical.ErrLoginLocked
	}
	auth, err := b.checkLogin(ctx, req, roleID, d.String("secret_id"))
	if err == errInvalidCredentials {
		guard.Failed(ctx, roleID)
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	guard.Succeeded(ctx, roleID)
	return &logical.Response{Auth: auth}, nil
}

// checkLogin checks a login's credentials and addresses, spends a use of the
// secret ID, and returns the token to issue.
func (b *backend) checkLogin(ctx context.Context, req *logical.Request, roleID, secretID string) (*logical.Auth, error) {
	b.rolesMu.RLock()
	defer b.rolesMu.RUnlock()

	// The secret ID's HMAC is computed whether or not the role ID is
	// known, so an unknown role ID costs what a known one does.
	secretHMAC, err := b.hmac(ctx, req.Storage, "secret_id", secretID)
	if err != nil {
		return nil, err
	}
	r, idHash, err := b.roleByID(ctx, req.Storage, roleID)
	if err != nil {
		return nil, err
	}
	if r == nil {
		// Read a secret ID entry as a known role ID would, so an unknown
		// one does not answer measurably faster.
		_, _ = req.Storage.Get(ctx, secretIDKey(idHash, secretHMAC))
		return nil, errInvalidCredentials
	}

	if len(r.SecretIDBoundCIDRs) > 0 && !framework.RemoteAddrAllowed(req.RemoteAddr, r.SecretIDBoundCIDRs) {
		return nil, logical.BadRequest("source address %q unauthorized by CIDR restrictions on the role", hostOf(req.RemoteAddr))
	}

	metadata := map[string]string{}
	tokenCIDRs := r.TokenBoundCIDRs
	if r.BindSecretID {
		if secretID == "" {
			return nil, logical.BadRequest("missing secret_id")
		}
		e, err := b.spendSecretID(ctx, req, r, secretHMAC)
		if err != nil {
			return nil, err
		}
		maps.Copy(metadata, e.Metadata)
		if len(e.TokenBoundCIDRs) > 0 {
			tokenCIDRs = e.TokenBoundCIDRs
		}
	}
	metadata["role_name"] = r.Name
	// A token that could not be used from here is not issued here either
	// (Vault's core checks the same at login).
	if !framework.RemoteAddrAllowed(req.RemoteAddr, tokenCIDRs) {
		return nil, logical.Errorf(http.StatusForbidden, "source address %q unauthorized by the token's bound CIDRs", hostOf(req.RemoteAddr))
	}

	auth := &logical.Auth{
		Metadata: metadata,
		InternalData: map[string]any{
			"role_name": r.Name,
			"role_id":   r.RoleID,
		},
		Alias: &logical.Alias{Name: r.RoleID, Metadata: map[string]string{"role_name": r.Name}},
	}
	r.TokenParams.PopulateAuth(auth)
	auth.BoundCIDRs = slices.Clone(tokenCIDRs)
	return auth, nil
}

// roleByID returns the role whose role ID is roleID, or nil, with the
// role ID's HMAC. The caller holds rolesMu for reading. (This is also what
// a rate limit quota's role resolution needs: the role a login is for.)
func (b *backend) roleByID(ctx context.Context, s logical.Storage, roleID string) (*role, string, error) {
	idHash, err := b.hmac(ctx, s, "role_id", roleID)
	if err != nil {
		return nil, "", err
	}
	var idx roleIDIndex
	found, err := getJSON(ctx, s, roleIDPrefix+idHash, &idx)
	if err != nil || !found {
		return nil, idHash, err
	}
	r, err := b.readRole(ctx, s, idx.Name)
	if err != nil || r == nil || subtleNotEqual(r.RoleID, roleID) {
		return nil, idHash, err
	}
	return r, idHash, nil
}

// spendSecretID finds the role's secret ID by its HMAC, checks that it is
// alive and that the caller's address may use it, and spends one use, all
// under the secret ID's lock.
func (b *backend) spendSecretID(ctx context.Context, req *logical.Request, r *role, secretHMAC string) (*secretIDEntry, error) {
	roleHMAC, err := b.hmac(ctx, req.Storage, "role_name", r.Name)
	if err != nil {
		return nil, err
	}
	lock := b.secretLock(secretHMAC)
	lock.Lock()
	defer lock.Unlock()

	key := secretIDKey(roleHMAC, secretHMAC)
	var e secretIDEntry
	ok, err := getJSON(ctx, req.Storage, key, &e)
	if err != nil {
		return nil, err
	}
	if !ok || !equalHMAC(e.SecretIDHMAC, secretHMAC) {
		return nil, errInvalidCredentials
	}
	now := b.now().UTC()
	if e.expired(now) {
		if err := b.deleteSecretID(ctx, req.Storage, roleHMAC, secretHMAC, e.Accessor); err != nil {
			b.logger.Warn("approle: removing an expired secret ID failed", "error", err)
		}
		return nil, errInvalidCredentials
	}
	// A secret ID whose CIDRs no longer lie within the role's (the role
	// was narrowed after it was issued) is refused.
	if len(r.SecretIDBoundCIDRs) > 0 && !cidrsWithin(e.CIDRList, r.SecretIDBoundCIDRs) {
		return nil, logical.BadRequest("the secret ID's cidr_list no longer lies within the role's secret_id_bound_cidrs")
	}
	if len(e.CIDRList) > 0 && !framework.RemoteAddrAllowed(req.RemoteAddr, e.CIDRList) {
		return nil, logical.BadRequest("source address %q unauthorized by CIDR restrictions on the secret ID", hostOf(req.RemoteAddr))
	}
	switch {
	case e.NumUses == 1:
		if err := b.deleteSecretID(ctx, req.Storage, roleHMAC, secretHMAC, e.Accessor); err != nil {
			return nil, err
		}
	case e.NumUses > 1:
		e.NumUses--
		e.LastUpdatedTime = now
		op, err := putOp(key, &e)
		if err != nil {
			return nil, err
		}
		if err := req.Storage.Put(ctx, op.Entry); err != nil {
			return nil, err
		}
	}
	return &e, nil
}

func subtleNotEqual(a, b string) bool { return !equalHMAC(a, b) }

// hostOf strips the port from a remote address.
func hostOf(remoteAddr string) string {
	if host, _, err := net.SplitHostPort(remoteAddr); err == nil {
		return host
	}
	return remoteAddr
}

// authRenew allows a login token's renewal while its role still exists
// under the same role ID with the same policies, on the role's current
// token terms.
func (b *backend) authRenew(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	if req.Auth == nil {
		return nil, logical.BadRequest("no token to renew")
	}
	name, _ := req.Auth.InternalData["role_name"].(string)
	roleID, _ := req.Auth.InternalData["role_id"].(string)
	if name == "" {
		return nil, logical.BadRequest("the token carries no role name; it cannot be renewed through AppRole")
	}
	b.rolesMu.RLock()
	defer b.rolesMu.RUnlock()
	r, err := b.readRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, logical.BadRequest("role %q does not exist any more; the token cannot be renewed", name)
	}
	if roleID != "" && subtleNotEqual(r.RoleID, roleID) {
		return nil, logical.BadRequest("role %q has a new role ID since this login; the token cannot be renewed", name)
	}
	if !samePolicies(req.Auth.TokenPolicies, r.TokenPolicies) {
		return nil, logical.BadRequest("the policies of role %q changed since this login; the token cannot be renewed", name)
	}
	a := *req.Auth
	a.TTL = r.TokenTTL
	a.MaxTTL = r.TokenMaxTTL
	a.Period = r.TokenPeriod
	return &logical.Response{Auth: &a}, nil
}

// samePolicies compares a token's policies with a role's, ignoring the
// "default" policy the core adds to login tokens.
func samePolicies(token, role []string) bool {
	clean := func(in []string) []string {
		out := framework.NormalizePolicies(in)
		return slices.DeleteFunc(out, func(p string) bool { return p == "default" })
	}
	return slices.Equal(clean(token), clean(role))
}

// resolveRole names the role a login is for, for rate limit quotas with a
// role: the role whose role ID the login gives, or "" for none. It checks no
// credentials.
func (b *backend) resolveRole(ctx context.Context, req *logical.Request, d *framework.FieldData) (string, error) {
	roleID := d.String("role_id")
	if roleID == "" {
		return "", nil
	}
	b.rolesMu.RLock()
	defer b.rolesMu.RUnlock()
	r, _, err := b.roleByID(ctx, req.Storage, roleID)
	if err != nil || r == nil {
		return "", err
	}
	return r.Name, nil
}
