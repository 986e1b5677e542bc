package jwt

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/logical/framework"
)

const (
	// stateTTL is how long a browser login may take between auth_url and
	// callback.
	stateTTL = 10 * time.Minute
	// maxStates bounds the pending logins kept in memory.
	maxStates = 10000
)

// oidcState is one pending browser login, keyed by its state parameter.
type oidcState struct {
	role        string
	redirectURI string
	nonce       string
	verifier    string // PKCE code verifier
	clientNonce string
	expires     time.Time
}

// stateStore keeps pending browser logins in memory: single-use, expiring.
type stateStore struct {
	mu     sync.Mutex
	states map[string]*oidcState
}

func newStateStore() *stateStore { return &stateStore{states: map[string]*oidcState{}} }

func (s *stateStore) put(id string, st *oidcState, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.states {
		if now.After(v.expires) {
			delete(s.states, k)
		}
	}
	if len(s.states) >= maxStates {
		return logical.Errorf(http.StatusServiceUnavailable, "too many browser logins are pending; try again in a few minutes")
	}
	s.states[id] = st
	return nil
}

// take removes and returns the state id names, if it exists and is current.
func (s *stateStore) take(id string, now time.Time) *oidcState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.states[id]
	if !ok {
		return nil
	}
	delete(s.states, id)
	if now.After(st.expires) {
		return nil
	}
	return st
}

func (s *stateStore) clear() {
	s.mu.Lock()
	clear(s.states)
	s.mu.Unlock()
}

func randomString(n int) (string, error) {
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(buf), nil
}

func (b *backend) pathAuthURL() *framework.Path {
	return &framework.Path{
		Pattern: `oidc/auth_url`,
		Fields: map[string]*framework.FieldSchema{
			"role":         {Type: framework.TypeLowerCaseString, Description: "The role to log in against; the config's default_role when empty."},
			"redirect_uri": {Type: framework.TypeString, Description: "Where the provider returns the browser; must be one of the role's allowed_redirect_uris."},
			"client_nonce": {Type: framework.TypeString, Description: "A value the client must present again at the callback."},
		},
		Operations: map[logical.Operation]framework.OperationFunc{
			logical.UpdateOperation: b.authURL,
		},
		HelpSynopsis: "Starts a browser OIDC login: returns the provider's authorization URL.",
	}
}

func (b *backend) oauthConfig(cfg *config, d *discovery, r *role, redirectURI string) *oauth2.Config {
	scopes := append([]string{"openid"}, r.OIDCScopes...)
	return &oauth2.Config{
		ClientID:     cfg.OIDCClientID,
		ClientSecret: cfg.OIDCClientSecret,
		Endpoint:     oauth2.Endpoint{AuthURL: d.AuthorizationEndpoint, TokenURL: d.TokenEndpoint},
		RedirectURL:  redirectURI,
		Scopes:       slices.Compact(scopes),
	}
}

func (b *backend) authURL(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	cfg, err := b.loadConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return nil, logical.BadRequest("could not load configuration")
	}
	if !cfg.oidcFlow() {
		return nil, logical.BadRequest("OIDC login is not configured for this mount (set oidc_discovery_url, oidc_client_id and oidc_client_secret)")
	}
	name, r, err := b.loginRole(ctx, req, cfg, d.String("role"))
	if err != nil {
		return nil, err
	}
	redirectURI := d.String("redirect_uri")
	if redirectURI == "" {
		return nil, logical.BadRequest("missing redirect_uri")
	}
	empty := &logical.Response{Data: map[string]any{"auth_url": ""}}
	if !slices.Contains(r.AllowedRedirectURIs, redirectURI) {
		// Vault answers an unlisted redirect_uri with an empty auth_url.
		empty.AddWarning("redirect_uri is not one of the role's allowed_redirect_uris")
		return empty, nil
	}
	v, err := b.verifierFor(cfg)
	if err != nil {
		return nil, logical.BadRequest("error configuring token validator: %v", err)
	}
	disc, err := v.provider(ctx)
	if err != nil {
		b.logger.Warn("OIDC discovery failed", "error", err)
		empty.AddWarning("the OIDC provider could not be reached")
		return empty, nil
	}
	state, err := randomString(24)
	if err != nil {
		return nil, err
	}
	nonce, err := randomString(24)
	if err != nil {
		return nil, err
	}
	st := &oidcState{
		role: name, redirectURI: redirectURI, nonce: nonce,
		verifier: oauth2.GenerateVerifier(), clientNonce: d.String("client_nonce"),
		expires: b.now().Add(stateTTL),
	}
	if err := b.states.put(state, st, b.now()); err != nil {
		return nil, err
	}
	opts := []oauth2.AuthCodeOption{
		oauth2.S256ChallengeOption(st.verifier),
		oauth2.SetAuthURLParam("nonce", nonce),
	}
	if cfg.OIDCResponseMode != "" {
		opts = append(opts, oauth2.SetAuthURLParam("response_mode", cfg.OIDCResponseMode))
	}
	if r.MaxAge > 0 {
		opts = append(opts, oauth2.SetAuthURLParam("max_age", fmt.Sprint(int64(r.MaxAge/time.Second))))
	}
	u := b.oauthConfig(cfg, disc, r, redirectURI).AuthCodeURL(state, opts...)
	return &logical.Response{Data: map[string]any{"auth_url": u}}, nil
}

func (b *backend) pathCallback() *framework.Path {
	return &framework.Path{
		Pattern: `oidc/callback`,
		Fields: map[string]*framework.FieldSchema{
			"state":             {Type: framework.TypeString, Description: "The state parameter auth_url issued."},
			"code":              {Type: framework.TypeString, Description: "The authorization code from the provider."},
			"id_token":          {Type: framework.TypeString, Description: "Not supported (implicit flow)."},
			"client_nonce":      {Type: framework.TypeString, Description: "The client_nonce given to auth_url, if any."},
			"error":             {Type: framework.TypeString, Description: "An error the provider returned."},
			"error_description": {Type: framework.TypeString, Description: "The provider's description of the error."},
		},
		Operations: map[logical.Operation]framework.OperationFunc{
			logical.ReadOperation:   b.callback,
			logical.UpdateOperation: b.callback,
		},
		HelpSynopsis: "Completes a browser OIDC login: exchanges the authorization code and logs in with the ID token.",
	}
}

const errLoginFailed = "OIDC login failed:"

func (b *backend) callback(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	cfg, err := b.loadConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if cfg == nil || !cfg.oidcFlow() {
		return nil, logical.BadRequest("%s OIDC login is not configured for this mount", errLoginFailed)
	}
	now := b.now()
	st := b.states.take(d.String("state"), now)
	if st == nil {
		return nil, logical.BadRequest("%s Expired or missing OAuth state.", errLoginFailed)
	}
	if e := d.String("error"); e != "" {
		return nil, logical.BadRequest("%s the provider returned error %q", errLoginFailed, oauthErrorName(e))
	}
	if st.clientNonce != "" && subtle.ConstantTimeCompare([]byte(st.clientNonce), []byte(d.String("client_nonce"))) != 1 {
		return nil, logical.BadRequest("invalid client_nonce")
	}
	r, err := b.loadRole(ctx, req.Storage, st.role)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, logical.BadRequest("%s Role could not be found", errLoginFailed)
	}
	if !framework.RemoteAddrAllowed(req.RemoteAddr, r.TokenBoundCIDRs) {
		return nil, logical.ErrPermissionDenied
	}
	code := d.String("code")
	if code == "" {
		return nil, logical.BadRequest("%s no authorization code was received (code)", errLoginFailed)
	}
	v, err := b.verifierFor(cfg)
	if err != nil {
		return nil, logical.BadRequest("error configuring token validator: %v", err)
	}
	disc, err := v.provider(ctx)
	if err != nil {
		return nil, logical.BadRequest("%s the OIDC provider could not be reached: %v", errLoginFailed, err)
	}
	exCtx := context.WithValue(ctx, oauth2.HTTPClient, v.client)
	tok, err := b.oauthConfig(cfg, disc, r, st.redirectURI).Exchange(exCtx, code, oauth2.VerifierOption(st.verifier))
	if err != nil {
		return nil, logical.BadRequest("%s the provider refused the authorization code: %s", errLoginFailed, exchangeError(err))
	}
	idToken, _ := tok.Extra("id_token").(string)
	if idToken == "" {
		return nil, logical.BadRequest("%s no id_token found in the provider's response", errLoginFailed)
	}
	claims, err := v.verify(ctx, idToken, now)
	if err != nil {
		return nil, validationError(err)
	}
	// An ID token is for this client, from the discovered issuer, and
	// carries the nonce this login was started with.
	if iss, _ := claims["iss"].(string); strings.TrimSuffix(iss, "/") != strings.TrimSuffix(disc.Issuer, "/") {
		return nil, logical.BadRequest("error validating token: the iss claim does not match the provider's issuer")
	}
	if n, _ := claims["nonce"].(string); subtle.ConstantTimeCompare([]byte(n), []byte(st.nonce)) != 1 {
		return nil, logical.BadRequest("error validating token: invalid ID token nonce")
	}
	auds := r.BoundAudiences
	aud, err := audiences(claims)
	if err != nil {
		return nil, validationError(refuse("%v", err))
	}
	if !slices.Contains(aud, cfg.OIDCClientID) {
		return nil, logical.BadRequest("error validating token: the aud claim does not include the client ID")
	}
	if err := checkClaims(claims, now, r, cfg.BoundIssuer, auds, false); err != nil {
		return nil, validationError(err)
	}
	auth, err := b.authFor(st.role, r, claims)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Auth: auth}, nil
}

// oauthErrorName passes on the provider's error code when it is one of
// OAuth's registered ones, and nothing the provider made up.
func oauthErrorName(e string) string {
	e = strings.ToLower(strings.TrimSpace(e))
	switch e {
	case "invalid_request", "unauthorized_client", "access_denied", "unsupported_response_type",
		"invalid_scope", "server_error", "temporarily_unavailable", "login_required", "consent_required",
		"invalid_grant", "invalid_client", "unsupported_grant_type", "interaction_required":
		return e
	}
	return "unknown error"
}

// exchangeError describes a failed code exchange by the provider's OAuth
// error code only; the response body could echo the code or the secret.
func exchangeError(err error) string {
	var re *oauth2.RetrieveError
	if ok := asRetrieveError(err, &re); ok {
		if re.ErrorCode != "" {
			return oauthErrorName(re.ErrorCode)
		}
		if re.Response != nil {
			return re.Response.Status
		}
	}
	return "the token endpoint could not be reached"
}

func asRetrieveError(err error, target **oauth2.RetrieveError) bool { return errors.As(err, target) }
