package core

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/arcasec/arca/internal/audit"
	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/policy"
)

// policyCap maps an operation to the capability that allows it.
func policyCap(op logical.Operation) policy.Capability {
	switch op {
	case logical.ReadOperation:
		return policy.Read
	case logical.CreateOperation:
		return policy.Create
	case logical.UpdateOperation:
		return policy.Update
	case logical.PatchOperation:
		return policy.Patch
	case logical.DeleteOperation:
		return policy.Delete
	case logical.ListOperation:
		return policy.List
	}
	return policy.Read // help: reading a path's help needs read
}

// matchSpecial reports whether path matches one of patterns, each exact or
// with a trailing "*" glob.
func matchSpecial(patterns []string, path string) bool {
	for _, p := range patterns {
		if strings.HasSuffix(p, "*") {
			if strings.HasPrefix(path, p[:len(p)-1]) {
				return true
			}
		} else if p == path {
			return true
		}
	}
	return false
}

// errNotAudited is what a client sees when no audit device could record
// its request: the request is refused rather than served unrecorded.
var errNotAudited = logical.Errorf(http.StatusInternalServerError, "the request could not be recorded by any audit device, so it was refused")

// HandleRequest runs one request through the pipeline: seal check, route,
// token, ACL, audit of the request, backend, token issuance for logins,
// audit of the response. req.Path is the full path below /v1/ (list paths
// end in "/"). If audit devices are enabled and none records the request or
// its response, the request fails and nothing of the response is returned.
func (c *Core) HandleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	c.stateLock.RLock()
	defer c.stateLock.RUnlock()
	if err := c.checkActive(); err != nil {
		return nil, err
	}
	start := time.Now()
	in := &audit.Input{Time: start.UTC(), Path: req.Path, Request: req}
	if st := c.auditState.Load(); st != nil && len(st.headers) > 0 {
		in.Headers = auditHeaders(st.headers, req.Headers)
		in.HMACHeaders = st.headers
	}
	mountLabel := ""
	resp, err := c.handle(ctx, req, in, &mountLabel)
	c.metrics.observeRequest(mountLabel, req.Operation, err, time.Since(start))
	return resp, err
}

// mountPathTwins returns the other spellings of a sys/mounts/ or sys/auth/
// path that name the same mount: with and without a trailing slash, and
// with repeated slashes collapsed. The ACL must allow those too, so a
// policy that denies sys/auth/userpass is not passed by sys/auth/userpass/
// or sys/auth//userpass, which the mount table reads as the same mount.
func mountPathTwins(fullPath string) []string {
	var prefix string
	switch {
	case strings.HasPrefix(fullPath, "sys/mounts/"):
		prefix = "sys/mounts/"
	case strings.HasPrefix(fullPath, "sys/auth/"):
		prefix = "sys/auth/"
	default:
		return nil
	}
	rest := fullPath[len(prefix):]
	for strings.Contains(rest, "//") {
		rest = strings.ReplaceAll(rest, "//", "/")
	}
	rest = strings.TrimPrefix(rest, "/")
	var spellings []string
	if strings.HasSuffix(rest, "/tune") {
		spellings = []string{prefix + rest}
	} else {
		base := prefix + strings.TrimSuffix(rest, "/")
		spellings = []string{base, base + "/"}
	}
	var out []string
	for _, sp := range spellings {
		if sp != fullPath && sp != prefix && sp != prefix+"/" {
			out = append(out, sp)
		}
	}
	return out
}

// noRoute is the error for a path no mount serves. As in Vault, the token
// is checked first: a caller without a valid token, or whose ACL does not
// allow the operation there, is told "permission denied", so neither can
// learn which mounts exist by probing paths.
func (c *Core) noRoute(ctx context.Context, req *logical.Request, fullPath string) error {
	te, err := c.tokens.lookup(ctx, req.ClientToken)
	if err != nil {
		return err
	}
	if te == nil || !te.allowedFrom(req.RemoteAddr) {
		return logical.ErrPermissionDenied
	}
	res, err := c.tokenACL(ctx, te)
	if err != nil {
		return err
	}
	if req.Operation != logical.HelpOperation {
		dec := res.acl.Check(fullPath, policyCap(req.Operation), req.Data)
		if !dec.Allowed && req.Operation == logical.UpdateOperation {
			dec = res.acl.Check(fullPath, policy.Create, req.Data)
		}
		if !dec.Allowed {
			return logical.ErrPermissionDenied
		}
	}
	return logical.Errorf(404, "no handler for route %q. route entry not found.", fullPath)
}

// refuse records a request that fails before it reaches a backend (no
// route, bad token, denied by policy) and returns its error.
func (c *Core) refuse(ctx context.Context, in *audit.Input, err error) (*logical.Response, error) {
	in.Err = err
	if aerr := c.audit.LogRequest(ctx, in); aerr != nil {
		return nil, errNotAudited
	}
	return nil, err
}

func (c *Core) handle(ctx context.Context, req *logical.Request, in *audit.Input, mountLabel *string) (*logical.Response, error) {
	fullPath := req.Path
	m, rel := c.mounts.route(fullPath)
	if m == nil {
		return c.refuse(ctx, in, c.noRoute(ctx, req, fullPath))
	}
	*mountLabel = m.entry.routePath()
	in.MountAccessor = m.entry.Accessor
	in.NonHMACRequestKeys = m.entry.Config.AuditNonHMACRequestKeys
	in.NonHMACResponseKeys = m.entry.Config.AuditNonHMACResponseKeys
	in.MountClass = "secret"
	if m.entry.Table == authTable {
		in.MountClass = "auth"
	}
	if isWrappingPath(fullPath) && req.Operation != logical.HelpOperation {
		if err := c.checkWrappingToken(ctx, req); err != nil {
			return c.refuse(ctx, in, err)
		}
	}
	special := m.backend.SpecialPaths()
	// A name the backend keeps in lowercase is lowercased before the ACL
	// sees the path, so what the ACL checks is what the backend acts on.
	if special != nil {
		if canon := logical.CanonicalCase(special.CaseInsensitive, rel); canon != rel {
			rel = canon
			fullPath = m.entry.routePath() + rel
			in.Path = fullPath
		}
	}
	unauth := special != nil && matchSpecial(special.Unauthenticated, rel)

	var te *TokenEntry
	if !unauth {
		var err error
		te, err = c.tokens.lookup(ctx, req.ClientToken)
		if err != nil {
			return c.refuse(ctx, in, err)
		}
		if te == nil || !te.allowedFrom(req.RemoteAddr) {
			return c.refuse(ctx, in, logical.ErrPermissionDenied)
		}
		req.ClientTokenAccessor = te.Accessor
		req.Auth = te.auth(time.Now())
		req.EntityID = te.EntityID
		in.Auth = req.Auth
		res, err := c.tokenACL(ctx, te)
		if err != nil {
			return c.refuse(ctx, in, err)
		}
		applyIdentity(req.Auth, te, res.entity)
		acl := res.acl
		req.Storage = m.view
		req.Path = rel
		if req.Operation == logical.UpdateOperation {
			// POST/PUT is create-or-update: ask the backend which, unless
			// the ACL allows both anyway.
			dec := acl.Check(fullPath, policy.Update, req.Data)
			if !(dec.Allowed && dec.Capabilities&policy.Create != 0) {
				checked, exists, err := m.backend.ExistenceCheck(ctx, req)
				if err != nil {
					return c.refuse(ctx, in, err)
				}
				if checked && !exists {
					req.Operation = logical.CreateOperation
				}
			}
		}
		// A path's help holds nothing secret: any valid token may read it,
		// sudo paths included, as in Vault.
		help := req.Operation == logical.HelpOperation
		dec := acl.Check(fullPath, policyCap(req.Operation), req.Data)
		if !dec.Allowed && !help {
			return c.refuse(ctx, in, logical.ErrPermissionDenied)
		}
		for _, twin := range mountPathTwins(fullPath) {
			if !help && !acl.Check(twin, policyCap(req.Operation), req.Data).Allowed {
				return c.refuse(ctx, in, logical.ErrPermissionDenied)
			}
		}
		if special != nil && matchSpecial(special.Root, rel) && !dec.Sudo && !help {
			return c.refuse(ctx, in, logical.ErrPermissionDenied)
		}
		if !dec.WrapTTLAllowed(req.WrapTTL) {
			return c.refuse(ctx, in, wrapTTLError(fullPath, dec, req.WrapTTL))
		}
		// A use is spent before the backend runs, so concurrent requests
		// cannot share one; the request that spends the last use still
		// completes, and the token is revoked after it.
		if te.NumUses != 0 {
			last, err := c.tokens.use(ctx, te.ID)
			if err != nil {
				return c.refuse(ctx, in, err)
			}
			if last {
				ctx = context.WithValue(ctx, lastUseKey{}, te.ID)
				defer c.revokeSpent(ctx, te)
			}
		}
	}
	req.Path = rel
	req.Storage = m.view
	req.MountPoint = m.entry.routePath()
	req.MountType = m.entry.Type

	// An operation that changes state is recorded before it runs, so no
	// change happens unrecorded. One that only reads is recorded with its
	// response, before the response leaves.
	readOnly := req.Operation == logical.ReadOperation || req.Operation == logical.ListOperation || req.Operation == logical.HelpOperation
	if !readOnly {
		if err := c.audit.LogRequest(ctx, in); err != nil {
			return nil, errNotAudited
		}
	}

	resp, err := m.backend.HandleRequest(ctx, req)

	if err == nil && resp != nil && resp.Auth != nil && m.entry.Table == authTable && m.entry.Type != "token" {
		err = c.issueLoginToken(ctx, m, fullPath, resp.Auth)
	}
	if err == nil && resp != nil && resp.Secret != nil {
		err = c.leaseResponse(ctx, m, fullPath, te, resp)
	}
	if err == nil && resp != nil && req.WrapTTL > 0 && resp.WrapInfo == nil {
		resp, err = c.wrap(ctx, req, fullPath, te, resp)
	}
	in.Response, in.Err = resp, err
	logResponse := c.audit.LogResponse
	if readOnly {
		logResponse = c.audit.LogRequestAndResponse
	}
	if aerr := logResponse(ctx, in); aerr != nil {
		return nil, errNotAudited
	}
	if err != nil {
		return resp, err
	}
	if te != nil && req.Operation == logical.ReadOperation && resp != nil && m.entry.Table == mountsTable && inAccessReport(m.entry.Type) {
		c.access.record(fullPath, te, req.RemoteAddr, in.Time)
	}
	return resp, nil
}

// revokeSpent revokes a token whose last use a request has just spent.
func (c *Core) revokeSpent(ctx context.Context, te *TokenEntry) {
	if err := c.tokens.revokeTree(context.WithoutCancel(ctx), te.ID); err != nil {
		c.logger.Warn("revoking a token whose uses ran out failed", "accessor", te.Accessor, "error", err)
	}
}

// issueLoginToken turns the Auth block of an auth method's login response
// into a token: the method's policies (plus "default" unless it says
// otherwise), its bound CIDRs, use limit, period and explicit maximum, and
// a TTL from the method's terms within the mount's tuned maximum.
func (c *Core) issueLoginToken(ctx context.Context, m *mount, fullPath string, auth *logical.Auth) error {
	now := c.tokens.now().UTC()
	pols := append([]string{}, auth.Policies...)
	if containsString(pols, "root") {
		return logical.BadRequest("auth methods cannot create root tokens")
	}
	if !auth.NoDefaultPolicy && !containsString(pols, "default") {
		pols = append(pols, "default")
	}
	if auth.NumUses < 0 {
		return logical.BadRequest("a login token's num_uses must not be negative")
	}
	te := &TokenEntry{
		Policies: pols,
		Meta:     auth.Metadata,
		// Vault's form: the mount path with "/" as "-", then the method's
		// name for the login ("userpass-alice"; "approle" when it gives none).
		DisplayName:    strings.TrimSuffix(strings.ReplaceAll(m.entry.Path, "/", "-")+auth.DisplayName, "-"),
		NumUses:        auth.NumUses,
		CreationTime:   now,
		ExplicitMaxTTL: auth.ExplicitMaxTTL,
		Period:         auth.Period,
		Renewable:      auth.Renewable,
		Path:           fullPath,
		InternalData:   auth.InternalData,
		BoundCIDRs:     auth.BoundCIDRs,
		MountAccessor:  m.entry.Accessor,
		LoginPolicies:  auth.Policies,
	}
	entityID, err := c.resolveLogin(ctx, m.entry.Accessor, auth)
	if err != nil {
		return err
	}
	te.EntityID = entityID
	// The method's TTL is its default (a role's token_ttl), capped by its
	// max (token_max_ttl) and the mount's.
	ttl, _ := logical.CalculateTTL(m.sys, logical.LeaseTerms{
		Default: auth.TTL, Max: auth.MaxTTL, Period: auth.Period, ExplicitMax: auth.ExplicitMaxTTL, Now: now,
	})
	te.CreationTTL = ttl
	te.ExpireTime = now.Add(ttl)
	if err := c.tokens.create(ctx, te); err != nil {
		return err
	}
	*auth = *te.auth(now)
	applyIdentity(auth, te, c.identity.resolve(te.EntityID))
	return nil
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// RecordRequest audits a request the HTTP layer serves itself (sys/seal,
// sys/step-down), with the error it failed with, if any. It fails when
// audit devices are enabled and none records the request; the caller must
// then not act on it.
func (c *Core) RecordRequest(ctx context.Context, req *logical.Request, failed error) error {
	c.stateLock.RLock()
	defer c.stateLock.RUnlock()
	if err := c.checkActive(); err != nil {
		return err
	}
	in := &audit.Input{Time: time.Now().UTC(), Path: req.Path, Request: req, Err: failed}
	if te, err := c.tokens.lookup(ctx, req.ClientToken); err == nil && te != nil {
		req.ClientTokenAccessor = te.Accessor
		req.Auth = te.auth(time.Now())
		in.Auth = req.Auth
	}
	if m, _ := c.mounts.route(req.Path); m != nil {
		req.MountPoint, req.MountType = m.entry.routePath(), m.entry.Type
		in.MountAccessor, in.MountClass = m.entry.Accessor, "secret"
	}
	if err := c.audit.LogRequest(ctx, in); err != nil {
		return errNotAudited
	}
	return nil
}

// CheckToken returns the capabilities decision for a token on a path, for
// the HTTP layer's own endpoints (sys/seal, sys/step-down).
func (c *Core) CheckToken(ctx context.Context, token, remoteAddr, path string, op logical.Operation) (policy.Decision, error) {
	c.stateLock.RLock()
	defer c.stateLock.RUnlock()
	if err := c.checkActive(); err != nil {
		return policy.Decision{}, err
	}
	te, err := c.tokens.lookup(ctx, token)
	if err != nil || te == nil || !te.allowedFrom(remoteAddr) {
		return policy.Decision{}, err
	}
	acl, err := c.aclOf(ctx, te)
	if err != nil {
		return policy.Decision{}, err
	}
	return acl.Check(path, policyCap(op), nil), nil
}

// leaseResponse gives a leased response its lease. KV's "ttl" is advice to
// clients on how often to read again, not a lease: it is only defaulted.
func (c *Core) leaseResponse(ctx context.Context, m *mount, fullPath string, te *TokenEntry, resp *logical.Response) error {
	if resp.Secret.LeaseID != "" {
		return nil // an existing lease, as sys/leases/renew returns it
	}
	if m.entry.Type == "kv" {
		if resp.Secret.TTL == 0 {
			resp.Secret.TTL = m.sys.DefaultLeaseTTL()
		}
		resp.Secret.Renewable, resp.Secret.LeaseID = false, ""
		return nil
	}
	warnings, err := c.expiration.register(ctx, m, fullPath, te, resp.Secret)
	if err != nil {
		return err
	}
	resp.Warnings = append(resp.Warnings, warnings...)
	return nil
}
