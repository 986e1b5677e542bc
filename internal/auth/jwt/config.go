package jwt

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/logical/framework"
)

const configKey = "config"

// config is the method's one configuration entry.
type config struct {
	OIDCDiscoveryURL     string   `json:"oidc_discovery_url"`
	OIDCDiscoveryCAPEM   string   `json:"oidc_discovery_ca_pem"`
	OIDCClientID         string   `json:"oidc_client_id"`
	OIDCClientSecret     string   `json:"oidc_client_secret"`
	OIDCResponseMode     string   `json:"oidc_response_mode"`
	OIDCResponseTypes    []string `json:"oidc_response_types"`
	JWKSURL              string   `json:"jwks_url"`
	JWKSCAPEM            string   `json:"jwks_ca_pem"`
	JWTValidationPubKeys []string `json:"jwt_validation_pubkeys"`
	JWTSupportedAlgs     []string `json:"jwt_supported_algs"`
	BoundIssuer          string   `json:"bound_issuer"`
	DefaultRole          string   `json:"default_role"`
	// Revision changes on every write, so cached key sets built from an
	// older config are dropped.
	Revision string `json:"revision"`
}

// oidcFlow reports whether the browser flow is configured.
func (c *config) oidcFlow() bool { return c.OIDCDiscoveryURL != "" && c.OIDCClientID != "" }

// supportedAlgs are the signature algorithms a token may use: asymmetric
// only. "none" and the HMAC algorithms are never accepted, so a token
// "signed" with a public key as an HMAC secret cannot pass.
var supportedAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

func (b *backend) pathConfig() *framework.Path {
	return &framework.Path{
		Pattern: `config`,
		Fields: map[string]*framework.FieldSchema{
			"oidc_discovery_url":     {Type: framework.TypeString, Description: `Base URL of the OIDC issuer, without "/.well-known/openid-configuration"; its discovery document names the key set. Exclusive with jwks_url and jwt_validation_pubkeys.`},
			"oidc_discovery_ca_pem":  {Type: framework.TypeString, Description: "PEM CA certificates to trust when fetching the discovery document and its keys; the system roots when empty."},
			"oidc_client_id":         {Type: framework.TypeString, Description: "OAuth client ID for the browser OIDC flow."},
			"oidc_client_secret":     {Type: framework.TypeString, Description: "OAuth client secret for the browser OIDC flow; never returned on read."},
			"oidc_response_mode":     {Type: framework.TypeString, Description: `"query" (default) or "form_post".`},
			"oidc_response_types":    {Type: framework.TypeCommaStringSlice, Description: `Response types to request; only "code" is supported.`},
			"jwks_url":               {Type: framework.TypeString, Description: "URL of a JSON Web Key Set. Exclusive with oidc_discovery_url and jwt_validation_pubkeys."},
			"jwks_ca_pem":            {Type: framework.TypeString, Description: "PEM CA certificates to trust when fetching jwks_url."},
			"jwt_validation_pubkeys": {Type: framework.TypeCommaStringSlice, Description: "PEM public keys that verify tokens locally. Exclusive with jwks_url and oidc_discovery_url."},
			"jwt_supported_algs":     {Type: framework.TypeCommaStringSlice, Description: "Signature algorithms accepted; every asymmetric algorithm when empty."},
			"bound_issuer":           {Type: framework.TypeString, Description: `The value a token's "iss" claim must have, when set.`},
			"default_role":           {Type: framework.TypeLowerCaseString, Description: "Role used when a login names none."},
		},
		Operations: map[logical.Operation]framework.OperationFunc{
			logical.ReadOperation:   b.configRead,
			logical.UpdateOperation: b.configWrite,
		},
		HelpSynopsis: "Configures where the JWT/OIDC method finds the keys that verify tokens.",
	}
}

func (b *backend) loadConfig(ctx context.Context, s logical.Storage) (*config, error) {
	e, err := s.Get(ctx, configKey)
	if err != nil {
		return nil, fmt.Errorf("reading the JWT/OIDC config: %w", err)
	}
	if e == nil {
		return nil, nil
	}
	var c config
	if err := json.Unmarshal(e.Value, &c); err != nil {
		return nil, fmt.Errorf("decoding the JWT/OIDC config: %w", err)
	}
	return &c, nil
}

func (b *backend) configRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	c, err := b.loadConfig(ctx, req.Storage)
	if err != nil || c == nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{
		"oidc_discovery_url":     c.OIDCDiscoveryURL,
		"oidc_discovery_ca_pem":  c.OIDCDiscoveryCAPEM,
		"oidc_client_id":         c.OIDCClientID,
		"oidc_response_mode":     c.OIDCResponseMode,
		"oidc_response_types":    nonNil(c.OIDCResponseTypes),
		"jwks_url":               c.JWKSURL,
		"jwks_ca_pem":            c.JWKSCAPEM,
		"jwt_validation_pubkeys": nonNil(c.JWTValidationPubKeys),
		"jwt_supported_algs":     nonNil(c.JWTSupportedAlgs),
		"bound_issuer":           c.BoundIssuer,
		"default_role":           c.DefaultRole,
		"provider_config":        map[string]any{},
		"namespace_in_state":     false,
	}}, nil
}

func (b *backend) configWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	c := &config{
		OIDCDiscoveryURL:     strings.TrimSpace(d.String("oidc_discovery_url")),
		OIDCDiscoveryCAPEM:   d.String("oidc_discovery_ca_pem"),
		OIDCClientID:         d.String("oidc_client_id"),
		OIDCClientSecret:     d.String("oidc_client_secret"),
		OIDCResponseMode:     d.String("oidc_response_mode"),
		OIDCResponseTypes:    d.Strings("oidc_response_types"),
		JWKSURL:              strings.TrimSpace(d.String("jwks_url")),
		JWKSCAPEM:            d.String("jwks_ca_pem"),
		JWTValidationPubKeys: d.Strings("jwt_validation_pubkeys"),
		JWTSupportedAlgs:     d.Strings("jwt_supported_algs"),
		BoundIssuer:          d.String("bound_issuer"),
		DefaultRole:          d.String("default_role"),
	}
	sources := 0
	for _, set := range []bool{c.OIDCDiscoveryURL != "", c.JWKSURL != "", len(c.JWTValidationPubKeys) > 0} {
		if set {
			sources++
		}
	}
	switch {
	case sources != 1:
		return nil, logical.BadRequest("exactly one of 'jwt_validation_pubkeys', 'jwks_url' or 'oidc_discovery_url' must be set")
	case c.OIDCClientID != "" && c.OIDCClientSecret == "", c.OIDCClientID == "" && c.OIDCClientSecret != "":
		return nil, logical.BadRequest("both 'oidc_client_id' and 'oidc_client_secret' must be set for OIDC")
	case c.OIDCClientID != "" && c.OIDCDiscoveryURL == "":
		return nil, logical.BadRequest("'oidc_discovery_url' must be set for OIDC")
	case strings.Contains(c.OIDCDiscoveryURL, ".well-known"):
		return nil, logical.BadRequest("'oidc_discovery_url' contains '.well-known' component")
	case c.JWKSCAPEM != "" && c.JWKSURL == "":
		return nil, logical.BadRequest("'jwks_ca_pem' is only used with 'jwks_url'")
	case c.OIDCDiscoveryCAPEM != "" && c.OIDCDiscoveryURL == "":
		return nil, logical.BadRequest("'oidc_discovery_ca_pem' is only used with 'oidc_discovery_url'")
	}
	for _, alg := range c.JWTSupportedAlgs {
		if !slices.Contains(supportedAlgs, alg) {
			return nil, logical.BadRequest("invalid jwt_supported_algs: %q is not one of %s", alg, strings.Join(supportedAlgs, ", "))
		}
	}
	for _, t := range c.OIDCResponseTypes {
		if t != "code" {
			return nil, logical.BadRequest("invalid oidc_response_types %v: only 'code' is supported", c.OIDCResponseTypes)
		}
	}
	switch c.OIDCResponseMode {
	case "", "query", "form_post":
	default:
		return nil, logical.BadRequest("invalid oidc_response_mode: %q", c.OIDCResponseMode)
	}

	var rev [8]byte
	if _, err := rand.Read(rev[:]); err != nil {
		return nil, fmt.Errorf("reading random bytes: %w", err)
	}
	c.Revision = hex.EncodeToString(rev[:])

	// Check the key source now: parse the PEMs, fetch the discovery
	// document or the key set. A config that cannot verify anything is
	// refused rather than stored.
	v, err := newVerifier(c)
	if err != nil {
		return nil, logical.BadRequest("%v", err)
	}
	if err := v.check(ctx); err != nil {
		return nil, logical.BadRequest("%v", err)
	}

	buf, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	if err := req.Storage.Put(ctx, &logical.StorageEntry{Key: configKey, Value: buf}); err != nil {
		return nil, fmt.Errorf("storing the JWT/OIDC config: %w", err)
	}
	b.setVerifier(v, c.Revision)
	return nil, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
