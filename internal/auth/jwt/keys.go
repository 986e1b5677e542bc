package jwt

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/time/rate"
)

const (
	// maxFetchBytes bounds a discovery document or key set.
	maxFetchBytes = 1 << 20
	// unknownKidInterval is how long a key ID that was not in a freshly
	// fetched key set stays refused without another fetch, so a stream of
	// tokens with made-up key IDs cannot make the server hammer the issuer.
	unknownKidInterval = 30 * time.Second
	maxUnknownKids     = 1024
	// Fetches for unknown key IDs, whatever the IDs, come from a bucket of
	// refetchBurst refilled one per refetchEvery: made-up key IDs cannot
	// turn logins into a flood of requests to the issuer.
	refetchBurst = 10
	refetchEvery = 3 * time.Second
)

// discovery is the part of an OIDC discovery document the method uses.
type discovery struct {
	Issuer                string `json:"issuer"`
	JWKSURI               string `json:"jwks_uri"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
}

// verifier checks token signatures against the configured key source and
// caches remote keys. It is rebuilt whenever the config changes.
type verifier struct {
	algs   []jose.SignatureAlgorithm
	client *http.Client

	static []jose.JSONWebKey // jwt_validation_pubkeys

	jwksURL      string // jwks_url
	discoveryURL string // oidc_discovery_url

	mu        sync.Mutex
	disc      *discovery
	keys      []jose.JSONWebKey
	fetched   bool
	unknownAt map[string]time.Time
	refetch   *rate.Limiter
}

func newVerifier(c *config) (*verifier, error) {
	v := &verifier{unknownAt: map[string]time.Time{}, refetch: rate.NewLimiter(rate.Every(refetchEvery), refetchBurst)}
	algs := c.JWTSupportedAlgs
	if len(algs) == 0 {
		algs = supportedAlgs
	}
	for _, a := range algs {
		v.algs = append(v.algs, jose.SignatureAlgorithm(a))
	}
	switch {
	case len(c.JWTValidationPubKeys) > 0:
		for i, p := range c.JWTValidationPubKeys {
			k, err := parsePublicKeyPEM(p)
			if err != nil {
				return nil, fmt.Errorf("error parsing public key %d of jwt_validation_pubkeys: %w", i+1, err)
			}
			v.static = append(v.static, jose.JSONWebKey{Key: k})
		}
	case c.JWKSURL != "":
		client, err := httpClient(c.JWKSCAPEM)
		if err != nil {
			return nil, fmt.Errorf("error checking jwks_ca_pem: %w", err)
		}
		v.client, v.jwksURL = client, c.JWKSURL
	case c.OIDCDiscoveryURL != "":
		client, err := httpClient(c.OIDCDiscoveryCAPEM)
		if err != nil {
			return nil, fmt.Errorf("error checking oidc_discovery_ca_pem: %w", err)
		}
		v.client, v.discoveryURL = client, strings.TrimSuffix(c.OIDCDiscoveryURL, "/")
	}
	return v, nil
}

// check fetches what a remote key source needs, so a config write fails on
// a URL that does not serve a discovery document or a key set.
func (v *verifier) check(ctx context.Context) error {
	switch {
	case v.discoveryURL != "":
		if _, err := v.provider(ctx); err != nil {
			return fmt.Errorf("error checking oidc discovery URL: %w", err)
		}
	case v.jwksURL != "":
		v.mu.Lock()
		defer v.mu.Unlock()
		if err := v.fetchKeysLocked(ctx); err != nil {
			return fmt.Errorf("error checking jwks URL: %w", err)
		}
	}
	return nil
}

// provider returns the discovery document, fetching it the first time.
func (v *verifier) provider(ctx context.Context) (*discovery, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.providerLocked(ctx)
}

func (v *verifier) providerLocked(ctx context.Context) (*discovery, error) {
	if v.disc != nil {
		return v.disc, nil
	}
	if v.discoveryURL == "" {
		return nil, errors.New("no oidc_discovery_url is configured")
	}
	var d discovery
	if err := v.getJSON(ctx, v.discoveryURL+"/.well-known/openid-configuration", &d); err != nil {
		return nil, err
	}
	if strings.TrimSuffix(d.Issuer, "/") != v.discoveryURL {
		return nil, fmt.Errorf("the discovery document's issuer %q does not match oidc_discovery_url %q", d.Issuer, v.discoveryURL)
	}
	if d.JWKSURI == "" {
		return nil, errors.New("the discovery document names no jwks_uri")
	}
	v.disc = &d
	return v.disc, nil
}

// fetchKeysLocked (re)loads the remote key set.
func (v *verifier) fetchKeysLocked(ctx context.Context) error {
	url := v.jwksURL
	if v.discoveryURL != "" {
		d, err := v.providerLocked(ctx)
		if err != nil {
			return err
		}
		url = d.JWKSURI
	}
	var set jose.JSONWebKeySet
	if err := v.getJSON(ctx, url, &set); err != nil {
		return err
	}
	keys := make([]jose.JSONWebKey, 0, len(set.Keys))
	for _, k := range set.Keys {
		if k.Use == "" || k.Use == "sig" {
			keys = append(keys, k)
		}
	}
	v.keys, v.fetched = keys, true
	return nil
}

func (v *verifier) getJSON(ctx context.Context, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("invalid URL %q: %w", url, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return fmt.Errorf("fetching %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxFetchBytes+1))
	if err != nil {
		return fmt.Errorf("fetching %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetching %s: the server answered %s", url, resp.Status)
	}
	if len(body) > maxFetchBytes {
		return fmt.Errorf("fetching %s: the document is larger than %d bytes", url, maxFetchBytes)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decoding %s: %w", url, err)
	}
	return nil
}

// errTokenInvalid marks a refusal caused by the token itself.
type tokenError struct{ msg string }

func (e *tokenError) Error() string { return e.msg }

func refuse(format string, args ...any) error { return &tokenError{msg: fmt.Sprintf(format, args...)} }

// verify checks token's signature and returns its claims (numbers as
// json.Number). It does not look at any claim.
func (v *verifier) verify(ctx context.Context, token string, now time.Time) (map[string]any, error) {
	jws, err := jose.ParseSignedCompact(strings.TrimSpace(token), v.algs)
	if err != nil {
		if alg := headerAlg(token); alg != "" && !containsAlg(v.algs, alg) {
			return nil, refuse("the token's signing algorithm %q is not accepted (accepted: %s)", alg, algList(v.algs))
		}
		return nil, refuse("the token is not a well-formed signed JWT")
	}
	if len(jws.Signatures) != 1 {
		return nil, refuse("the token must carry exactly one signature")
	}
	// No header extension is understood here, so a crit header of any
	// kind (even the empty list RFC 7515 forbids producers to send) is
	// refused rather than ignored.
	if _, ok := jws.Signatures[0].Protected.ExtraHeaders["crit"]; ok {
		return nil, refuse("the token's crit header names extensions this method does not understand")
	}
	kid := jws.Signatures[0].Header.KeyID
	payload, err := v.verifyWithKeys(ctx, jws, kid, now)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil || claims == nil {
		return nil, refuse("the token's payload is not a JSON object of claims")
	}
	return claims, nil
}

func (v *verifier) verifyWithKeys(ctx context.Context, jws *jose.JSONWebSignature, kid string, now time.Time) ([]byte, error) {
	if v.static != nil {
		if p := tryKeys(jws, v.static, ""); p != nil {
			return p, nil
		}
		return nil, refuse("the token's signature does not verify with any configured public key")
	}
	// Signatures are checked outside the lock, on the key set as it was;
	// a fetch replaces the slice rather than changing it.
	v.mu.Lock()
	if !v.fetched {
		if err := v.fetchKeysLocked(ctx); err != nil {
			v.mu.Unlock()
			return nil, fmt.Errorf("error fetching the key set: %w", err)
		}
	}
	keys := v.keys
	v.mu.Unlock()
	if kid == "" || hasKid(keys, kid) {
		if p := tryKeys(jws, keys, kid); p != nil {
			return p, nil
		}
		if kid != "" {
			return nil, refuse("the token's signature does not verify with key %q", kid)
		}
	}
	// The key ID is unknown (or no key verified a token without one): the
	// issuer may have rotated its keys. Fetch the set again, at most once
	// per interval for a given key ID.
	v.mu.Lock()
	if !sameKeys(keys, v.keys) {
		// Another login fetched meanwhile: use what it found.
		keys = v.keys
	} else if last, ok := v.unknownAt[kid]; (ok && now.Sub(last) < unknownKidInterval) || !v.refetch.AllowN(now, 1) {
		v.mu.Unlock()
		return nil, refuse("no key with ID %q is in the issuer's key set", kid)
	} else {
		if len(v.unknownAt) >= maxUnknownKids {
			clear(v.unknownAt)
		}
		v.unknownAt[kid] = now
		if err := v.fetchKeysLocked(ctx); err != nil {
			v.mu.Unlock()
			return nil, fmt.Errorf("error fetching the key set: %w", err)
		}
		keys = v.keys
	}
	v.mu.Unlock()
	if p := tryKeys(jws, keys, kid); p != nil {
		return p, nil
	}
	if kid == "" {
		return nil, refuse("the token's signature does not verify with any key in the issuer's key set")
	}
	return nil, refuse("no key with ID %q is in the issuer's key set", kid)
}

// sameKeys reports whether a and b are the same fetched slice.
func sameKeys(a, b []jose.JSONWebKey) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

func hasKid(keys []jose.JSONWebKey, kid string) bool {
	for _, k := range keys {
		if k.KeyID == kid {
			return true
		}
	}
	return false
}

// tryKeys returns the verified payload from the first key that verifies
// jws: among those with key ID kid, or all keys when kid is empty.
func tryKeys(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid string) []byte {
	for i := range keys {
		if kid != "" && keys[i].KeyID != kid {
			continue
		}
		if p, err := jws.Verify(keys[i].Key); err == nil {
			return p
		}
	}
	return nil
}

func headerAlg(token string) string {
	head, _, ok := strings.Cut(strings.TrimSpace(token), ".")
	if !ok {
		return ""
	}
	raw, err := decodeSegment(head)
	if err != nil {
		return ""
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(raw, &h) != nil {
		return ""
	}
	return h.Alg
}

func containsAlg(algs []jose.SignatureAlgorithm, alg string) bool {
	for _, a := range algs {
		if string(a) == alg {
			return true
		}
	}
	return false
}

func algList(algs []jose.SignatureAlgorithm) string {
	s := make([]string, len(algs))
	for i, a := range algs {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}

// parsePublicKeyPEM reads an RSA, ECDSA or Ed25519 public key from a PEM
// "PUBLIC KEY", "RSA PUBLIC KEY" or "CERTIFICATE" block.
func parsePublicKeyPEM(s string) (any, error) {
	block, _ := pem.Decode([]byte(strings.TrimSpace(s)))
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	var key any
	switch block.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		key = k
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		key = k
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		key = cert.PublicKey
	default:
		return nil, fmt.Errorf("PEM block type %q is not a public key or certificate", block.Type)
	}
	switch key.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		return key, nil
	}
	return nil, fmt.Errorf("unsupported public key type %T", key)
}

// httpClient returns a client that trusts caPEM (the system roots when
// empty), with timeouts so a slow issuer cannot hold a login forever.
func httpClient(caPEM string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if strings.TrimSpace(caPEM) != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(caPEM)) {
			return nil, errors.New("no PEM certificate could be parsed")
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: 15 * time.Second}, nil
}
