// Package oidctest runs a fake OIDC issuer on loopback for tests: it serves
// a discovery document, a JSON Web Key Set whose keys the test can rotate,
// and a token endpoint that exchanges codes the test minted (checking the
// client's credentials and the PKCE verifier). It signs real tokens with
// RSA, ECDSA P-256 and Ed25519 keys it generates.
package oidctest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Key is a signing key with its algorithm and key ID.
type Key struct {
	Alg  jose.SignatureAlgorithm
	KID  string
	Priv crypto.Signer
}

// Public returns the public half as a JWK.
func (k *Key) Public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.Priv.Public(), KeyID: k.KID, Algorithm: string(k.Alg), Use: "sig"}
}

// PublicPEM returns the public key as a PEM "PUBLIC KEY" block.
func (k *Key) PublicPEM(t testing.TB) string {
	der, err := x509.MarshalPKIXPublicKey(k.Priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// NewRSA, NewEC and NewEd25519 generate keys.
func NewRSA(t testing.TB, kid string) *Key {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &Key{Alg: jose.RS256, KID: kid, Priv: k}
}

func NewEC(t testing.TB, kid string) *Key {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &Key{Alg: jose.ES256, KID: kid, Priv: k}
}

func NewEd25519(t testing.TB, kid string) *Key {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &Key{Alg: jose.EdDSA, KID: kid, Priv: k}
}

// Sign returns a compact JWS of claims signed with k.
func Sign(t testing.TB, k *Key, claims map[string]any) string {
	t.Helper()
	s, err := sign(k, claims)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sign(k *Key, claims map[string]any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	sk := jose.SigningKey{Algorithm: k.Alg, Key: jose.JSONWebKey{Key: k.Priv, KeyID: k.KID}}
	signer, err := jose.NewSigner(sk, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

// Unsigned returns a token with the given header and claims and the given
// raw signature bytes, for forged tokens (alg "none", HMAC).
func Unsigned(t testing.TB, header, claims map[string]any, sign func(signingInput []byte) []byte) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	var sig []byte
	if sign != nil {
		sig = sign([]byte(input))
	}
	return input + "." + enc.EncodeToString(sig)
}

// Issuer is a fake OIDC provider.
type Issuer struct {
	URL          string
	ClientID     string
	ClientSecret string
	// CAPEM verifies the issuer's certificate (NewTLSIssuer only).
	CAPEM string

	srv *httptest.Server

	mu    sync.Mutex
	keys  []jose.JSONWebKey
	codes map[string]code
	// approve, when set, makes /authorize log the user in at once.
	approveKey    *Key
	approveClaims map[string]any

	// KeyFetches counts requests for the key set.
	KeyFetches atomic.Int64
}

type code struct {
	challenge string
	idToken   string
}

// NewIssuer starts an issuer publishing keys over plain HTTP; it stops
// when the test ends.
func NewIssuer(t testing.TB, keys ...*Key) *Issuer { return newIssuer(t, false, keys) }

// NewTLSIssuer starts an issuer over HTTPS with a certificate of its own;
// CAPEM is the certificate that verifies it (what a cluster's CA bundle is
// to a Kubernetes issuer).
func NewTLSIssuer(t testing.TB, keys ...*Key) *Issuer { return newIssuer(t, true, keys) }

func newIssuer(t testing.TB, useTLS bool, keys []*Key) *Issuer {
	iss := &Issuer{ClientID: "arca-client", ClientSecret: "client-secret-value", codes: map[string]code{}}
	iss.SetKeys(keys...)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                iss.URL,
			"jwks_uri":                              iss.URL + "/keys",
			"authorization_endpoint":                iss.URL + "/authorize",
			"token_endpoint":                        iss.URL + "/token",
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256", "EdDSA"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		iss.KeyFetches.Add(1)
		iss.mu.Lock()
		set := jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey{}, iss.keys...)}
		iss.mu.Unlock()
		writeJSON(w, set)
	})
	mux.HandleFunc("POST /token", iss.token)
	mux.HandleFunc("GET /authorize", iss.authorize)
	if useTLS {
		iss.srv = httptest.NewUnstartedServer(mux)
		// Refused handshakes are what some tests are about: keep them
		// out of the output.
		iss.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		iss.srv.StartTLS()
		iss.CAPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: iss.srv.Certificate().Raw}))
	} else {
		iss.srv = httptest.NewServer(mux)
	}
	iss.URL = iss.srv.URL
	t.Cleanup(iss.srv.Close)
	return iss
}

// SetKeys replaces the published key set (a rotation).
func (iss *Issuer) SetKeys(keys ...*Key) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	iss.keys = iss.keys[:0]
	for _, k := range keys {
		iss.keys = append(iss.keys, k.Public())
	}
}

// MintCode registers an authorization code that the token endpoint will
// exchange for idToken, if the client presents the verifier whose S256
// challenge is codeChallenge.
func (iss *Issuer) MintCode(codeChallenge, idToken string) string {
	buf := make([]byte, 16)
	_, _ = rand.Read(buf)
	c := base64.RawURLEncoding.EncodeToString(buf)
	iss.mu.Lock()
	iss.codes[c] = code{challenge: codeChallenge, idToken: idToken}
	iss.mu.Unlock()
	return c
}

// AutoApprove makes the authorization endpoint log every user in at once
// as the holder of claims: it redirects the browser to the redirect_uri
// with a code whose ID token (signed with k) carries claims, the client ID
// as audience and the request's nonce.
func (iss *Issuer) AutoApprove(k *Key, claims map[string]any) {
	iss.mu.Lock()
	iss.approveKey, iss.approveClaims = k, claims
	iss.mu.Unlock()
}

func (iss *Issuer) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	iss.mu.Lock()
	k, base := iss.approveKey, iss.approveClaims
	iss.mu.Unlock()
	if k == nil || q.Get("client_id") != iss.ClientID || q.Get("response_type") != "code" ||
		q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || redirect.Scheme == "" {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	claims := map[string]any{}
	for key, v := range base {
		claims[key] = v
	}
	now := time.Now()
	claims["iss"], claims["aud"], claims["nonce"] = iss.URL, iss.ClientID, q.Get("nonce")
	claims["iat"], claims["exp"] = now.Unix(), now.Add(5*time.Minute).Unix()
	idToken, err := sign(k, claims)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	back := redirect.Query()
	back.Set("code", iss.MintCode(q.Get("code_challenge"), idToken))
	back.Set("state", q.Get("state"))
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

func (iss *Issuer) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, "invalid_request")
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != iss.ClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(iss.ClientSecret)) != 1 {
		w.WriteHeader(http.StatusUnauthorized)
		writeJSON(w, map[string]string{"error": "invalid_client"})
		return
	}
	if r.PostForm.Get("grant_type") != "authorization_code" {
		oauthError(w, "unsupported_grant_type")
		return
	}
	iss.mu.Lock()
	c, found := iss.codes[r.PostForm.Get("code")]
	delete(iss.codes, r.PostForm.Get("code"))
	iss.mu.Unlock()
	if !found {
		oauthError(w, "invalid_grant")
		return
	}
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
		oauthError(w, "invalid_grant")
		return
	}
	writeJSON(w, map[string]any{
		"access_token": "access-token", "token_type": "Bearer", "expires_in": 300, "id_token": c.idToken,
	})
}

func oauthError(w http.ResponseWriter, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
