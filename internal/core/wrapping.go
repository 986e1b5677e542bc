package core

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/policy"
	"github.com/arcasec/arca/internal/storage"
)

// Response wrapping: instead of a response, the client gets a single-use
// token whose cubbyhole holds the response, so a secret can travel through
// hands that must not see it. The wrapping token has only the
// response-wrapping policy, no parent, one use, and lives for the wrapping
// TTL. Its cubbyhole holds, at Vault's paths:
//
//	response  {"response": the original HTTP response body, as a JSON string}
//	wrapinfo  {"creation_ttl", "creation_time", "creation_path", "wrapped_accessor"}
//
// The response is handed out once: unwrapping or rewrapping takes it out of
// storage under wrapMu, so two concurrent unwraps cannot both succeed
// whatever the state of the token's use count.

const responseWrappingPolicyName = "response-wrapping"

// responseWrappingPolicy lets a wrapping token unwrap itself and nothing
// else. Unlike Vault's, it does not grant reading cubbyhole/response
// directly: that read would bypass the single-use hand-out.
var responseWrappingPolicy = mustParsePolicy(responseWrappingPolicyName, `
path "sys/wrapping/unwrap" { capabilities = ["update"] }
`)

func mustParsePolicy(name, text string) *policy.Policy {
	p, err := policy.Parse(name, text)
	if err != nil {
		panic(err)
	}
	return p
}

// wrappingMarker in a token's internal data marks a token the core issued
// for response wrapping; no request can set it, so a token created by hand
// with the response-wrapping policy is not a wrapping token.
const wrappingMarker = "response_wrapping"

const (
	wrappedResponseKey = "response"
	wrappedInfoKey     = "wrapinfo"
)

// errInvalidWrappingToken is Vault's answer to an unknown, expired or
// already used wrapping token.
var errInvalidWrappingToken = logical.BadRequest("wrapping token is not valid or does not exist")

// wrapRecord is what the wrapinfo cubbyhole entry holds.
type wrapRecord struct {
	CreationTTL     int64  `json:"creation_ttl"` // seconds
	CreationTime    string `json:"creation_time"`
	CreationPath    string `json:"creation_path"`
	WrappedAccessor string `json:"wrapped_accessor,omitempty"`
}

type wrappedResponse struct {
	Response string `json:"response"`
}

// isWrappingPath reports whether path is one of the sys/wrapping paths that
// act on an existing wrapping token.
func isWrappingPath(path string) bool {
	switch path {
	case "sys/wrapping/unwrap", "sys/wrapping/lookup", "sys/wrapping/rewrap":
		return true
	}
	return false
}

// wrappingTokenOf is the wrapping token a sys/wrapping request acts on: the
// "token" field of its body, or else the token it is made with.
func wrappingTokenOf(req *logical.Request) (string, error) {
	v := req.Data["token"]
	if v == nil || v == "" {
		return req.ClientToken, nil
	}
	t, ok := v.(string)
	if !ok {
		return "", logical.BadRequest("field \"token\" must be a string")
	}
	return t, nil
}

// checkWrappingToken refuses a sys/wrapping unwrap, lookup or rewrap
// request whose wrapping token is not a live wrapping token. It runs before
// the token is checked for the request itself, so a used wrapping token
// gets Vault's 400 rather than a permission error.
func (c *Core) checkWrappingToken(ctx context.Context, req *logical.Request) error {
	token, err := wrappingTokenOf(req)
	if err != nil {
		return err
	}
	te, err := c.tokens.lookup(ctx, token)
	if err != nil {
		return err
	}
	if !isWrappingToken(te) {
		return errInvalidWrappingToken
	}
	return nil
}

func isWrappingToken(te *TokenEntry) bool {
	return te != nil && te.InternalData[wrappingMarker] == true &&
		slices.Equal(te.Policies, []string{responseWrappingPolicyName})
}

// wrapTTLError is the refusal of a request whose wrapping TTL is outside
// what the policy on its path requires.
func wrapTTLError(path string, dec policy.Decision, ttl time.Duration) error {
	switch {
	case dec.MinWrappingTTL > 0 && ttl == 0:
		return logical.Errorf(http.StatusForbidden, "permission denied: the policy on %q requires response wrapping (X-Vault-Wrap-TTL of at least %s)", path, dec.MinWrappingTTL)
	case dec.MinWrappingTTL > 0 && ttl < dec.MinWrappingTTL:
		return logical.Errorf(http.StatusForbidden, "permission denied: the policy on %q requires a wrapping TTL (X-Vault-Wrap-TTL) of at least %s", path, dec.MinWrappingTTL)
	case dec.MaxWrappingTTL > 0 && ttl == 0:
		return logical.Errorf(http.StatusForbidden, "permission denied: the policy on %q requires response wrapping (X-Vault-Wrap-TTL of at most %s)", path, dec.MaxWrappingTTL)
	default:
		return logical.Errorf(http.StatusForbidden, "permission denied: the policy on %q allows a wrapping TTL (X-Vault-Wrap-TTL) of at most %s", path, dec.MaxWrappingTTL)
	}
}

// wrap replaces resp, the answer to req at fullPath, with a wrapping token
// that unwraps it. te is the requesting token, nil when unauthenticated.
func (c *Core) wrap(ctx context.Context, req *logical.Request, fullPath string, te *TokenEntry, resp *logical.Response) (*logical.Response, error) {
	var body []byte
	if resp.Raw != nil {
		if resp.RawContentType != "" && resp.RawContentType != "application/json" {
			return nil, logical.BadRequest("the response of %q is not JSON and cannot be wrapped; send the request without X-Vault-Wrap-TTL", fullPath)
		}
		body = resp.Raw
	} else {
		var err error
		if body, err = json.Marshal(logical.NewHTTPResponse(resp, req.ID, req.MountType)); err != nil {
			return nil, fmt.Errorf("encoding the response to wrap: %w", err)
		}
	}
	rec := wrapRecord{CreationPath: fullPath}
	if resp.Auth != nil {
		rec.WrappedAccessor = resp.Auth.Accessor
	}
	displayName := ""
	if te != nil {
		displayName = te.DisplayName
	}
	info, err := c.newWrappingToken(ctx, string(body), req.WrapTTL, rec, displayName)
	if err != nil {
		return nil, err
	}
	return &logical.Response{WrapInfo: info}, nil
}

// newWrappingToken issues a wrapping token for ttl whose cubbyhole holds
// body, and describes it.
func (c *Core) newWrappingToken(ctx context.Context, body string, ttl time.Duration, rec wrapRecord, displayName string) (*logical.WrapInfo, error) {
	cubby, err := c.cubbyholeView()
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	te := &TokenEntry{
		Policies:       []string{responseWrappingPolicyName},
		DisplayName:    displayName,
		NumUses:        1,
		CreationTime:   now,
		CreationTTL:    ttl,
		ExpireTime:     now.Add(ttl),
		ExplicitMaxTTL: ttl,
		Path:           rec.CreationPath,
		InternalData:   map[string]any{wrappingMarker: true},
	}
	if err := c.tokens.create(ctx, te); err != nil {
		return nil, fmt.Errorf("issuing a wrapping token: %w", err)
	}
	rec.CreationTTL = int64(ttl / time.Second)
	rec.CreationTime = now.Format(time.RFC3339Nano)
	ops := []storage.Op{
		{Kind: storage.OpPut, Entry: mustJSONEntry(cubbyholeKey(te.ID, wrappedResponseKey), wrappedResponse{Response: body})},
		{Kind: storage.OpPut, Entry: mustJSONEntry(cubbyholeKey(te.ID, wrappedInfoKey), rec)},
	}
	if err := storage.Apply(ctx, cubby, ops); err != nil {
		if rerr := c.tokens.revokeTree(context.WithoutCancel(ctx), te.ID); rerr != nil {
			c.logger.Warn("revoking a wrapping token whose response could not be stored failed", "accessor", te.Accessor, "error", rerr)
		}
		return nil, fmt.Errorf("storing the wrapped response: %w", err)
	}
	return &logical.WrapInfo{
		Token:           te.ID,
		Accessor:        te.Accessor,
		TTL:             ttl,
		CreationTime:    now,
		CreationPath:    rec.CreationPath,
		WrappedAccessor: rec.WrappedAccessor,
	}, nil
}

func (c *Core) cubbyholeView() (storage.Storage, error) {
	m := c.mounts.get("cubbyhole/")
	if m == nil {
		return nil, fmt.Errorf("the cubbyhole mount is missing, so responses cannot be wrapped")
	}
	return m.view, nil
}

// readWrapped returns what the wrapping token's cubbyhole holds; found is
// false once the response has been handed out.
func (c *Core) readWrapped(ctx context.Context, token string) (body string, rec wrapRecord, found bool, err error) {
	cubby, err := c.cubbyholeView()
	if err != nil {
		return "", rec, false, err
	}
	var wr wrappedResponse
	if found, err = getJSONFrom(ctx, cubby, cubbyholeKey(token, wrappedResponseKey), &wr); err != nil || !found {
		return "", rec, false, err
	}
	if _, err = getJSONFrom(ctx, cubby, cubbyholeKey(token, wrappedInfoKey), &rec); err != nil {
		return "", rec, false, err
	}
	return wr.Response, rec, true, nil
}

// takeWrapped hands out the response a wrapping token holds and deletes it,
// so it is handed out once. Callers hold c.wrapMu.
func (c *Core) takeWrapped(ctx context.Context, token string) (string, wrapRecord, error) {
	body, rec, found, err := c.readWrapped(ctx, token)
	if err != nil {
		return "", rec, err
	}
	if !found {
		return "", rec, errInvalidWrappingToken
	}
	cubby, err := c.cubbyholeView()
	if err != nil {
		return "", rec, err
	}
	ops := []storage.Op{
		{Kind: storage.OpDelete, Entry: &storage.Entry{Key: cubbyholeKey(token, wrappedResponseKey)}},
		{Kind: storage.OpDelete, Entry: &storage.Entry{Key: cubbyholeKey(token, wrappedInfoKey)}},
	}
	if err := storage.Apply(ctx, cubby, ops); err != nil {
		return "", rec, fmt.Errorf("removing the unwrapped response: %w", err)
	}
	return body, rec, nil
}

// retireWrappingToken revokes a wrapping token whose response was handed
// out. A wrapping token that made the request itself is left to the core,
// which revokes it when its one use is counted.
func (c *Core) retireWrappingToken(ctx context.Context, req *logical.Request, token string) {
	if token == req.ClientToken {
		return
	}
	if err := c.tokens.revokeTree(context.WithoutCancel(ctx), token); err != nil {
		c.logger.Warn("revoking a used wrapping token failed", "error", err)
	}
}

// unwrap serves the response a wrapping token holds, as its original
// request would have been answered.
func (c *Core) unwrap(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	token, err := wrappingTokenOf(req)
	if err != nil {
		return nil, err
	}
	c.wrapMu.Lock()
	body, _, err := c.takeWrapped(ctx, token)
	c.wrapMu.Unlock()
	if err != nil {
		return nil, err
	}
	c.retireWrappingToken(ctx, req, token)
	return &logical.Response{Raw: []byte(body), RawContentType: "application/json"}, nil
}

// lookupWrapping describes a wrapping token without using it.
func (c *Core) lookupWrapping(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	token, err := wrappingTokenOf(req)
	if err != nil {
		return nil, err
	}
	_, rec, found, err := c.readWrapped(ctx, token)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, errInvalidWrappingToken
	}
	return &logical.Response{Data: map[string]any{
		"creation_ttl":  rec.CreationTTL,
		"creation_time": rec.CreationTime,
		"creation_path": rec.CreationPath,
	}}, nil
}

// rewrap moves a wrapped response to a new wrapping token with the same
// TTL and creation path, and invalidates the old token.
func (c *Core) rewrap(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	token, err := wrappingTokenOf(req)
	if err != nil {
		return nil, err
	}
	displayName := ""
	if req.Auth != nil {
		displayName = req.Auth.DisplayName
	}
	c.wrapMu.Lock()
	defer c.wrapMu.Unlock()
	// The new token holds the response before the old one lets it go, so a
	// failure leaves the response with the old token.
	body, rec, found, err := c.readWrapped(ctx, token)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, errInvalidWrappingToken
	}
	info, err := c.newWrappingToken(ctx, body, time.Duration(rec.CreationTTL)*time.Second, rec, displayName)
	if err != nil {
		return nil, err
	}
	if _, _, err := c.takeWrapped(ctx, token); err != nil {
		if rerr := c.tokens.revokeTree(context.WithoutCancel(ctx), info.Token); rerr != nil {
			c.logger.Warn("revoking a new wrapping token after a failed rewrap failed", "accessor", info.Accessor, "error", rerr)
		}
		return nil, err
	}
	c.retireWrappingToken(ctx, req, token)
	return &logical.Response{WrapInfo: info}, nil
}

// wrapData wraps the request's own data: sys/wrapping/wrap.
func (c *Core) wrapData(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	if req.WrapTTL <= 0 {
		return nil, logical.BadRequest("endpoint requires response wrapping to be used: set the X-Vault-Wrap-TTL header")
	}
	return &logical.Response{Data: req.Data}, nil
}
