package transit

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fakeTransit answers encrypt and decrypt at /v1/<mount>/ the way a
// transit engine does, with a reversible stand-in for encryption.
func fakeTransit(t *testing.T, mount, token string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Vault-Token") != token {
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"errors":["permission denied"]}`))
			return
		}
		var in map[string]string
		json.NewDecoder(r.Body).Decode(&in)
		var out map[string]string
		switch r.URL.Path {
		case "/v1/" + mount + "encrypt/seal-key":
			out = map[string]string{"ciphertext": "vault:v1:" + in["plaintext"]}
		case "/v1/" + mount + "decrypt/seal-key":
			b64, ok := strings.CutPrefix(in["ciphertext"], "vault:v1:")
			if !ok {
				w.WriteHeader(http.StatusBadRequest)
				w.Write([]byte(`{"errors":["invalid ciphertext"]}`))
				return
			}
			out = map[string]string{"plaintext": b64}
		default:
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"errors":[]}`))
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"data": out})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestSealRoundTrip(t *testing.T) {
	srv := fakeTransit(t, "keys/", "s.good")
	s, err := New(Config{Address: srv.URL, Token: "s.good", KeyName: "seal-key", MountPath: "/keys"})
	if err != nil {
		t.Fatal(err)
	}
	key := bytes.Repeat([]byte{0xab}, 32)
	ct, err := s.Encrypt(context.Background(), key)
	if err != nil || ct != "vault:v1:"+base64.StdEncoding.EncodeToString(key) {
		t.Fatalf("encrypt = %q, %v", ct, err)
	}
	got, err := s.Decrypt(context.Background(), ct)
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("decrypt = %x, %v", got, err)
	}
	if _, err := s.Decrypt(context.Background(), "garbage"); err == nil || !strings.Contains(err.Error(), "invalid ciphertext") {
		t.Fatalf("decrypt of garbage: %v", err)
	}
}

func TestSealErrorsKeepSecretsOut(t *testing.T) {
	srv := fakeTransit(t, "transit/", "s.good")
	s, err := New(Config{Address: srv.URL, Token: "s.wrong-token", KeyName: "seal-key"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Encrypt(context.Background(), []byte("root key material"))
	var re *ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
		t.Fatalf("encrypt with a wrong token: %v", err)
	}
	if strings.Contains(err.Error(), "s.wrong-token") || strings.Contains(err.Error(), "root key") {
		t.Fatalf("the error carries a secret: %v", err)
	}
	srv.Close()
	_, err = s.Decrypt(context.Background(), "vault:v1:AAAA")
	var ue *UnreachableError
	if !errors.As(err, &ue) {
		t.Fatalf("decrypt with the service gone: %v, want UnreachableError", err)
	}
}

func TestNewChecksTheConfiguration(t *testing.T) {
	for _, c := range []Config{
		{Token: "t", KeyName: "k"},
		{Address: "https://keys:8200", KeyName: "k"},
		{Address: "https://keys:8200", Token: "t"},
		{Address: "keys:8200", Token: "t", KeyName: "k"},
		{Address: "https://keys:8200", Token: "t", KeyName: "a/b"},
		{Address: "https://keys:8200", Token: "t", KeyName: "k", TLSClientCert: "/c.pem"},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

func TestRenewTokenRenewsAtHalfTheTTL(t *testing.T) {
	renewed := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/auth/token/lookup-self":
			w.Write([]byte(`{"data":{"ttl":2,"renewable":true}}`))
		case "/v1/auth/token/renew-self":
			renewed <- r.Header.Get("X-Vault-Token")
			w.Write([]byte(`{"auth":{"lease_duration":3600,"renewable":true}}`))
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	s, err := New(Config{Address: srv.URL, Token: "s.periodic", KeyName: "k"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.RenewToken(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if tok := <-renewed; tok != "s.periodic" {
		t.Fatalf("renew-self sent token %q", tok)
	}
}

func TestRenewTokenLeavesLongLivedTokens(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/auth/token/lookup-self" {
			t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
		}
		w.Write([]byte(`{"data":{"ttl":0,"renewable":false}}`))
	}))
	defer srv.Close()
	s, err := New(Config{Address: srv.URL, Token: "s.root", KeyName: "k"})
	if err != nil {
		t.Fatal(err)
	}
	// It returns once it has seen the token needs nothing.
	s.RenewToken(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)))
}
