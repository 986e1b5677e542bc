// Package jwt is the JWT/OIDC auth method, served under the types "jwt" and
// "oidc" (one backend, as in Vault). A machine logs in with a signed JWT
// (a CI job's OIDC token, a Kubernetes service-account token) against a role
// whose bindings the token's claims must satisfy; a person logs in through
// the browser OIDC flow (oidc/auth_url, then oidc/callback with an
// authorization code, PKCE and a nonce).
//
// Keys come from exactly one source: PEM public keys in the config, a JWKS
// URL, or an OIDC discovery document. Remote key sets are cached in memory
// and fetched again, once, when a token names a key ID the cache lacks, so
// keys rotated at the issuer are picked up without a restart. Nothing here
// starts a goroutine: fetches happen inside the request that needs them.
package jwt

import (
	"context"
	"log/slog"
	"sync"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/logical/framework"
)

// Factory creates the backend for a "jwt" or "oidc" mount.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := newBackend()
	b.Setup(conf)
	b.logger = conf.Logger
	if b.logger == nil {
		b.logger = slog.New(slog.DiscardHandler)
	}
	return b, nil
}

type backend struct {
	*framework.Backend

	// mu guards keys, the verifier built from the stored config.
	mu   sync.Mutex
	keys *verifier
	// keysFor is the config revision keys was built from.
	keysFor string

	states *stateStore
	logger *slog.Logger
}

func newBackend() *backend {
	b := &backend{states: newStateStore()}
	b.Backend = &framework.Backend{
		Help: "The JWT/OIDC auth method: logs in with a signed JWT checked against a role's bindings, " +
			"or through the browser OIDC flow (oidc/auth_url and oidc/callback).",
		PathsSpecial: &logical.Paths{
			Unauthenticated: []string{"login", "oidc/auth_url", "oidc/callback"},
			// An OIDC provider in form_post mode has the browser POST the
			// callback's fields as a form.
			FormBody:        []string{"oidc/callback"},
			CaseInsensitive: []string{"role/+"},
		},
		ResolveRole: b.resolveRole,
		Paths: []*framework.Path{
			b.pathConfig(),
			b.pathRoleList(),
			b.pathRole(),
			b.pathLogin(),
			b.pathAuthURL(),
			b.pathCallback(),
		},
		AuthRenew: b.authRenew,
		Clean: func(context.Context) {
			b.setVerifier(nil, "")
			b.states.clear()
		},
	}
	framework.RequireLowercase("name", b.Backend.Paths)
	return b
}

// verifierFor returns the verifier for cfg, building it when the config
// changed since the last one was built (a fresh key cache).
func (b *backend) verifierFor(cfg *config) (*verifier, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.keys != nil && b.keysFor == cfg.Revision {
		return b.keys, nil
	}
	v, err := newVerifier(cfg)
	if err != nil {
		return nil, err
	}
	b.setVerifierLocked(v, cfg.Revision)
	return v, nil
}

// setVerifier replaces the cached verifier, closing the idle connections
// of the one it replaces.
func (b *backend) setVerifier(v *verifier, rev string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.setVerifierLocked(v, rev)
}

func (b *backend) setVerifierLocked(v *verifier, rev string) {
	if old := b.keys; old != nil && old != v && old.client != nil {
		old.client.CloseIdleConnections()
	}
	b.keys, b.keysFor = v, rev
}
