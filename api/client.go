// Package api is Arca's Go client for the Vault-compatible HTTP API. The
// CLI and the agent talk to servers only through it.
package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// DefaultAddress is where a client looks for a server when nothing says
// otherwise.
const DefaultAddress = "http://127.0.0.1:8200"

// TokenFile is where `arca login` keeps the token, relative to the home
// directory.
const TokenFile = ".arca-token"

// Config configures a Client.
type Config struct {
	Address       string
	Token         string
	CACert        string // PEM file of CAs to trust for TLS
	CAPath        string // a directory of PEM files of CAs to trust
	ClientCert    string // PEM certificate presented to the server (with ClientKey)
	ClientKey     string
	TLSServerName string // the name expected in the server's certificate
	TLSSkipVerify bool
	Timeout       time.Duration
	HTTPClient    *http.Client
}

// DefaultConfig reads VAULT_ADDR, VAULT_TOKEN, VAULT_CACERT and
// VAULT_SKIP_VERIFY; ARCA_ADDR and ARCA_TOKEN win when set. Without a token
// in the environment it uses the one `arca login` stored.
func DefaultConfig() Config {
	c := Config{Address: DefaultAddress, Timeout: 60 * time.Second}
	if v := firstEnv("ARCA_ADDR", "VAULT_ADDR"); v != "" {
		c.Address = v
	}
	c.Token = firstEnv("ARCA_TOKEN", "VAULT_TOKEN")
	if c.Token == "" {
		c.Token, _ = ReadTokenFile()
	}
	c.CACert = firstEnv("ARCA_CACERT", "VAULT_CACERT")
	if v := firstEnv("ARCA_SKIP_VERIFY", "VAULT_SKIP_VERIFY"); v == "1" || strings.EqualFold(v, "true") {
		c.TLSSkipVerify = true
	}
	return c
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// ReadTokenFile returns the token `arca login` stored, if any.
func ReadTokenFile() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(home, TokenFile))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// WriteTokenFile stores token for later commands, readable only by the user.
func WriteTokenFile(token string) error {
	home, err := os.UserHomeDir()
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(home, TokenFile), []byte(token), 0o600)
}

// Client talks to one server. It is safe for concurrent use; SetToken and
// SetWrapTTL affect the requests that start after them.
type Client struct {
	addr *url.URL
	hc   *http.Client

	mu      sync.RWMutex
	token   string
	wrapTTL string
}

// NewClient returns a client for conf.
func NewClient(conf Config) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(conf.Address, "/"))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("the server address %q is not a URL like https://127.0.0.1:8200", conf.Address)
	}
	hc := conf.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tlsConf, err := conf.tlsConfig()
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = tlsConf
		hc = &http.Client{Transport: tr, Timeout: conf.Timeout}
	}
	return &Client{addr: u, token: conf.Token, hc: hc}, nil
}

func (conf Config) tlsConfig() (*tls.Config, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: conf.TLSSkipVerify, ServerName: conf.TLSServerName}
	var files []string
	if conf.CACert != "" {
		files = append(files, conf.CACert)
	}
	if conf.CAPath != "" {
		entries, err := os.ReadDir(conf.CAPath)
		if err != nil {
			return nil, fmt.Errorf("reading the CA directory: %w", err)
		}
		for _, e := range entries {
			if !e.IsDir() {
				files = append(files, filepath.Join(conf.CAPath, e.Name()))
			}
		}
	}
	if len(files) > 0 {
		pool := x509.NewCertPool()
		for _, f := range files {
			pem, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("reading the CA certificate: %w", err)
			}
			if !pool.AppendCertsFromPEM(pem) && f == conf.CACert {
				return nil, fmt.Errorf("%s holds no PEM certificate", f)
			}
		}
		tlsConf.RootCAs = pool
	}
	if conf.ClientCert != "" || conf.ClientKey != "" {
		cert, err := tls.LoadX509KeyPair(conf.ClientCert, conf.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("loading the client certificate: %w", err)
		}
		tlsConf.Certificates = []tls.Certificate{cert}
	}
	return tlsConf, nil
}

// Address is the server's address.
func (c *Client) Address() string { return c.addr.String() }

// HTTPClient is the HTTP client requests go through (its transport carries
// the TLS settings), for callers that forward requests of their own.
func (c *Client) HTTPClient() *http.Client { return c.hc }

// Clone returns a client for the same server sharing its connections, with
// the same token and wrapping TTL, which it then changes on its own.
func (c *Client) Clone() *Client {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return &Client{addr: c.addr, hc: c.hc, token: c.token, wrapTTL: c.wrapTTL}
}

// Token is the token requests carry.
func (c *Client) Token() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.token
}

// SetToken changes the token requests carry.
func (c *Client) SetToken(t string) {
	c.mu.Lock()
	c.token = t
	c.mu.Unlock()
}

// SetWrapTTL makes the requests that follow ask for their responses to be
// wrapped in a single-use token valid for ttl (seconds or a duration such
// as "5m"); "" stops wrapping.
func (c *Client) SetWrapTTL(ttl string) {
	c.mu.Lock()
	c.wrapTTL = ttl
	c.mu.Unlock()
}

// Secret is the response envelope.
type Secret struct {
	RequestID     string          `json:"request_id"`
	LeaseID       string          `json:"lease_id"`
	LeaseDuration int64           `json:"lease_duration"`
	Renewable     bool            `json:"renewable"`
	Data          map[string]any  `json:"data"`
	Warnings      []string        `json:"warnings"`
	Auth          *SecretAuth     `json:"auth"`
	WrapInfo      *SecretWrapInfo `json:"wrap_info"`
	MountType     string          `json:"mount_type,omitempty"`
}

// SecretWrapInfo describes the token that unwraps a wrapped response.
type SecretWrapInfo struct {
	Token           string `json:"token"`
	Accessor        string `json:"accessor"`
	TTL             int64  `json:"ttl"`
	CreationTime    string `json:"creation_time"`
	CreationPath    string `json:"creation_path"`
	WrappedAccessor string `json:"wrapped_accessor,omitempty"`
}

// SecretAuth is the auth block of a login or token response.
type SecretAuth struct {
	ClientToken   string   `json:"client_token"`
	Accessor      string   `json:"accessor"`
	Policies      []string `json:"policies"`
	TokenPolicies []string `json:"token_policies"`
	// IdentityPolicies come from the entity and its groups, not the token.
	IdentityPolicies []string          `json:"identity_policies"`
	Metadata         map[string]string `json:"metadata"`
	LeaseDuration    int64             `json:"lease_duration"`
	Renewable        bool              `json:"renewable"`
	EntityID         string            `json:"entity_id"`
	TokenType        string            `json:"token_type"`
	Orphan           bool              `json:"orphan"`
	NumUses          int               `json:"num_uses"`
}

// ResponseError is an error status from the server.
type ResponseError struct {
	Method     string
	Path       string
	StatusCode int
	Errors     []string
}

func (e *ResponseError) Error() string {
	msg := strings.Join(e.Errors, "; ")
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	return fmt.Sprintf("%s (HTTP %d)", msg, e.StatusCode)
}

// IsStatus reports whether err is a ResponseError with the given status.
func IsStatus(err error, status int) bool {
	var re *ResponseError
	return errors.As(err, &re) && re.StatusCode == status
}

// Raw sends a request and returns the status and body. body, when not nil,
// is sent as JSON; a []byte is sent as is.
func (c *Client) Raw(ctx context.Context, method, path string, query url.Values, body any, contentType string) (int, []byte, error) {
	u := *c.addr
	u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/" + strings.TrimPrefix(path, "/")
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		raw, ok := body.([]byte)
		if !ok {
			var err error
			if raw, err = json.Marshal(body); err != nil {
				return 0, nil, fmt.Errorf("encoding the request: %w", err)
			}
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return 0, nil, err
	}
	if tok := c.Token(); tok != "" {
		req.Header.Set("X-Vault-Token", tok)
	}
	req.Header.Set("X-Vault-Request", "true")
	if ttl := c.wrapTTLFor(method, path); ttl != "" {
		req.Header.Set("X-Vault-Wrap-TTL", ttl)
	}
	if contentType == "" && body != nil {
		contentType = "application/json"
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("cannot reach the server at %s: %w", c.addr, unwrapURLError(err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("reading the response: %w", err)
	}
	return resp.StatusCode, b, nil
}

// defaultWrapTTL is how long sys/wrapping/wrap wraps for when the client
// sets no wrapping TTL, as with the vault client: that path only wraps.
const defaultWrapTTL = "5m"

func (c *Client) wrapTTLFor(method, path string) string {
	c.mu.RLock()
	ttl := c.wrapTTL
	c.mu.RUnlock()
	if ttl != "" {
		return ttl
	}
	if (method == http.MethodPost || method == http.MethodPut) && strings.Trim(path, "/") == "sys/wrapping/wrap" {
		return defaultWrapTTL
	}
	return ""
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// request sends a logical request and decodes the envelope. A 404 without
// data is (nil, nil), as in the vault client.
func (c *Client) request(ctx context.Context, method, path string, query url.Values, body any, contentType string) (*Secret, error) {
	status, raw, err := c.Raw(ctx, method, path, query, body, contentType)
	if err != nil {
		return nil, err
	}
	if status == http.StatusNoContent || len(bytes.TrimSpace(raw)) == 0 {
		if status >= 400 {
			return nil, &ResponseError{Method: method, Path: path, StatusCode: status}
		}
		return nil, nil
	}
	if status >= 400 {
		var e struct {
			Errors []string       `json:"errors"`
			Data   map[string]any `json:"data"`
		}
		json.Unmarshal(raw, &e)
		if status == http.StatusNotFound && len(e.Errors) == 0 {
			if e.Data == nil {
				return nil, nil
			}
			return decodeSecret(raw)
		}
		return nil, &ResponseError{Method: method, Path: path, StatusCode: status, Errors: e.Errors}
	}
	return decodeSecret(raw)
}

func decodeSecret(raw []byte) (*Secret, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var s Secret
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("decoding the response: %w", err)
	}
	return &s, nil
}

// Read reads a path.
func (c *Client) Read(ctx context.Context, path string, query url.Values) (*Secret, error) {
	return c.request(ctx, http.MethodGet, path, query, nil, "")
}

// Write writes data to a path (create or update).
func (c *Client) Write(ctx context.Context, path string, data map[string]any) (*Secret, error) {
	if data == nil {
		data = map[string]any{}
	}
	return c.request(ctx, http.MethodPost, path, nil, data, "")
}

// Patch applies a JSON merge patch to a path.
func (c *Client) Patch(ctx context.Context, path string, data map[string]any) (*Secret, error) {
	return c.request(ctx, http.MethodPatch, path, nil, data, "application/merge-patch+json")
}

// Delete deletes a path.
func (c *Client) Delete(ctx context.Context, path string, query url.Values) (*Secret, error) {
	return c.request(ctx, http.MethodDelete, path, query, nil, "")
}

// List lists the keys under a path.
func (c *Client) List(ctx context.Context, path string) (*Secret, error) {
	return c.request(ctx, "LIST", strings.TrimSuffix(path, "/")+"/", nil, nil, "")
}

// Unwrap returns the response a wrapping token holds, using the token up.
// With wrappingToken empty the client's own token is the wrapping token;
// otherwise the client's token makes the request.
func (c *Client) Unwrap(ctx context.Context, wrappingToken string) (*Secret, error) {
	var body any
	if tok := c.Token(); wrappingToken != "" && wrappingToken != tok {
		if tok == "" {
			u := c.Clone()
			u.SetToken(wrappingToken)
			return u.Unwrap(ctx, "")
		}
		body = map[string]any{"token": wrappingToken}
	}
	return c.request(ctx, http.MethodPost, "sys/wrapping/unwrap", nil, body, "")
}

// SysJSON calls one of the bare-object sys endpoints (seal-status, init,
// unseal, health) and decodes the answer into out.
func (c *Client) SysJSON(ctx context.Context, method, path string, body any, out any) error {
	status, raw, err := c.Raw(ctx, method, path, nil, body, "")
	if err != nil {
		return err
	}
	if status >= 400 && !strings.HasPrefix(path, "sys/health") {
		var e struct{ Errors []string }
		json.Unmarshal(raw, &e)
		return &ResponseError{Method: method, Path: path, StatusCode: status, Errors: e.Errors}
	}
	if out == nil || len(raw) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(out)
}

// Int64 reads a number from a response's data (a json.Number, as the
// client decodes them, or a Go number), truncating a fraction; ok is false
// for anything else.
func Int64(v any) (n int64, ok bool) {
	switch n := v.(type) {
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return i, true
		}
		f, err := n.Float64()
		return int64(f), err == nil
	case float64:
		return int64(n), true
	case int64:
		return n, true
	case int:
		return int64(n), true
	}
	return 0, false
}
