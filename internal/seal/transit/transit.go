// Package transit is the transit seal: it protects the root key with a key
// of another Arca's (or OpenBao's, or Vault's) transit engine, reached over
// the Vault HTTP API, so a server unseals itself without key holders.
package transit

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Config is the `seal "transit" { ... }` stanza.
type Config struct {
	Address        string // the key service's URL, e.g. https://keys.example.com:8200
	Token          string
	KeyName        string
	MountPath      string // default "transit/"
	TLSCACert      string // PEM file of CAs to trust
	TLSClientCert  string
	TLSClientKey   string
	TLSServerName  string
	TLSSkipVerify  bool
	DisableRenewal bool
	// Disabled marks the seal as the one being migrated away from (to
	// Shamir): it still decrypts the root key, and is then dropped.
	Disabled bool
}

// Seal is a transit seal. It is safe for concurrent use.
type Seal struct {
	conf   Config
	base   *url.URL
	client *http.Client
}

// New checks conf and returns a seal; it does not contact the key service.
func New(conf Config) (*Seal, error) {
	switch {
	case conf.Address == "":
		return nil, errors.New(`seal "transit": address is required`)
	case conf.Token == "":
		return nil, errors.New(`seal "transit": token is required`)
	case conf.KeyName == "":
		return nil, errors.New(`seal "transit": key_name is required`)
	}
	base, err := url.Parse(conf.Address)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf(`seal "transit": address %q is not a URL such as "https://keys.example.com:8200"`, conf.Address)
	}
	if conf.MountPath == "" {
		conf.MountPath = "transit/"
	}
	conf.MountPath = strings.Trim(conf.MountPath, "/") + "/"
	if strings.Contains(conf.KeyName, "/") {
		return nil, fmt.Errorf(`seal "transit": key_name %q must not contain "/"`, conf.KeyName)
	}
	tc := &tls.Config{ServerName: conf.TLSServerName, InsecureSkipVerify: conf.TLSSkipVerify, MinVersion: tls.VersionTLS12}
	if conf.TLSCACert != "" {
		pem, err := os.ReadFile(conf.TLSCACert)
		if err != nil {
			return nil, fmt.Errorf(`seal "transit": reading tls_ca_cert: %w`, err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf(`seal "transit": tls_ca_cert %s holds no PEM certificate`, conf.TLSCACert)
		}
	}
	if (conf.TLSClientCert == "") != (conf.TLSClientKey == "") {
		return nil, errors.New(`seal "transit": tls_client_cert and tls_client_key go together`)
	}
	if conf.TLSClientCert != "" {
		cert, err := tls.LoadX509KeyPair(conf.TLSClientCert, conf.TLSClientKey)
		if err != nil {
			return nil, fmt.Errorf(`seal "transit": loading the TLS client certificate: %w`, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return &Seal{conf: conf, base: base, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}, nil
}

// Type is the seal type seal-status reports.
func (s *Seal) Type() string { return "transit" }

// Disabled reports whether the seal is only there to be migrated away from.
func (s *Seal) Disabled() bool { return s.conf.Disabled }

// Encrypt encrypts plaintext with the transit key and returns the
// ciphertext as the key service writes it ("vault:v1:...").
func (s *Seal) Encrypt(ctx context.Context, plaintext []byte) (string, error) {
	var out struct {
		Data struct {
			Ciphertext string `json:"ciphertext"`
		} `json:"data"`
	}
	body := map[string]string{"plaintext": base64.StdEncoding.EncodeToString(plaintext)}
	if err := s.call(ctx, http.MethodPost, "encrypt/"+s.conf.KeyName, body, &out); err != nil {
		return "", err
	}
	if out.Data.Ciphertext == "" {
		return "", fmt.Errorf("the key service at %s answered no ciphertext", s.conf.Address)
	}
	return out.Data.Ciphertext, nil
}

// Decrypt decrypts a ciphertext Encrypt returned.
func (s *Seal) Decrypt(ctx context.Context, ciphertext string) ([]byte, error) {
	var out struct {
		Data struct {
			Plaintext string `json:"plaintext"`
		} `json:"data"`
	}
	if err := s.call(ctx, http.MethodPost, "decrypt/"+s.conf.KeyName, map[string]string{"ciphertext": ciphertext}, &out); err != nil {
		return nil, err
	}
	plain, err := base64.StdEncoding.DecodeString(out.Data.Plaintext)
	if err != nil {
		return nil, fmt.Errorf("the key service at %s answered a plaintext that is not base64", s.conf.Address)
	}
	return plain, nil
}

// RenewToken keeps the seal's token alive until ctx ends: it looks the
// token up and renews it at half its TTL. Tokens without a TTL, and seals
// with disable_renewal, need nothing. Failures are logged and retried.
func (s *Seal) RenewToken(ctx context.Context, logger *slog.Logger) {
	if s.conf.DisableRenewal {
		return
	}
	var wait time.Duration
	looked := false // lookup-self has answered
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		var out struct {
			Data struct {
				TTL       int64 `json:"ttl"`
				Renewable bool  `json:"renewable"`
			} `json:"data"`
			Auth *struct {
				LeaseDuration int64 `json:"lease_duration"`
			} `json:"auth"`
		}
		var err error
		if !looked {
			err = s.callPath(ctx, http.MethodGet, "v1/auth/token/lookup-self", nil, &out)
			if err == nil && (!out.Data.Renewable || out.Data.TTL <= 0) {
				return // a token that never expires, or cannot be renewed
			}
			looked = err == nil
		} else {
			err = s.callPath(ctx, http.MethodPost, "v1/auth/token/renew-self", map[string]string{}, &out)
			if err == nil && out.Auth != nil {
				out.Data.TTL = out.Auth.LeaseDuration
			}
		}
		if err != nil {
			logger.Warn("renewing the transit seal's token failed; retrying", "error", err)
			wait = 30 * time.Second
			continue
		}
		wait = max(time.Duration(out.Data.TTL)*time.Second/2, time.Second)
	}
}

func (s *Seal) call(ctx context.Context, method, op string, body, out any) error {
	return s.callPath(ctx, method, "v1/"+s.conf.MountPath+op, body, out)
}

// callPath sends one request to the key service. Errors name the service
// and the status, never the token or the payload.
func (s *Seal) callPath(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	u := s.base.JoinPath(path)
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return err
	}
	req.Header.Set("X-Vault-Token", s.conf.Token)
	req.Header.Set("X-Vault-Request", "true")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return &UnreachableError{Address: s.conf.Address, Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return &UnreachableError{Address: s.conf.Address, Err: err}
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Errors []string }
		json.Unmarshal(raw, &e)
		return &ResponseError{Address: s.conf.Address, Path: path, StatusCode: resp.StatusCode, Errors: e.Errors}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("the key service at %s answered %s with a body that is not JSON", s.conf.Address, path)
		}
	}
	return nil
}

// UnreachableError is a failure to reach the key service at all.
type UnreachableError struct {
	Address string
	Err     error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("the transit key service at %s is unreachable: %v", e.Address, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// ResponseError is an error answer of the key service.
type ResponseError struct {
	Address    string
	Path       string
	StatusCode int
	Errors     []string
}

func (e *ResponseError) Error() string {
	msg := fmt.Sprintf("the transit key service at %s answered %s with status %d", e.Address, e.Path, e.StatusCode)
	if len(e.Errors) > 0 {
		msg += ": " + strings.Join(e.Errors, "; ")
	}
	return msg
}
