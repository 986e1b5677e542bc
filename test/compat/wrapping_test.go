package compat

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/server/servertest"
)

// wrappingClient is a client that asks for every response to be wrapped
// with ttl.
func wrappingClient(t *testing.T, addr, token, ttl string) *vault.Client {
	t.Helper()
	c := newClient(t, addr, token)
	c.SetWrappingLookupFunc(func(string, string) string { return ttl })
	return c
}

// unwrapAs unwraps with the wrapping token itself as the client token, as
// `vault unwrap` does when VAULT_TOKEN is the wrapping token.
func unwrapAs(t *testing.T, addr, wrappingToken string) (*vault.Secret, error) {
	t.Helper()
	return newClient(t, addr, wrappingToken).Logical().Unwrap("")
}

func wantInvalidWrappingToken(t *testing.T, what string, err error) {
	t.Helper()
	if statusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "wrapping token is not valid or does not exist") {
		t.Fatalf("%s: err = %v, want 400 wrapping token is not valid or does not exist", what, err)
	}
}

func TestWrapKVReadAndUnwrapOnce(t *testing.T) {
	ctx := context.Background()
	addr, root := servertest.StartDev(t)
	c := newClient(t, addr, root)
	if _, err := c.KVv2("secret").Put(ctx, "app/db", map[string]any{"password": "hunter2"}); err != nil {
		t.Fatal(err)
	}

	wrapped, err := wrappingClient(t, addr, root, "5m").Logical().Read("secret/data/app/db")
	if err != nil {
		t.Fatal(err)
	}
	wi := wrapped.WrapInfo
	if wi == nil || wi.Token == "" || wi.Accessor == "" {
		t.Fatalf("wrapped read has no wrap_info: %+v", wrapped)
	}
	if wrapped.Data != nil || wrapped.Auth != nil {
		t.Fatalf("wrapped read leaks the response: data %v auth %v", wrapped.Data, wrapped.Auth)
	}
	if wi.TTL != 300 || wi.CreationPath != "secret/data/app/db" || time.Since(wi.CreationTime) > time.Minute {
		t.Fatalf("wrap_info = %+v, want ttl 300, creation_path secret/data/app/db, a recent creation_time", wi)
	}

	// The wrapping token is an orphan with one use and only the
	// response-wrapping policy, expiring with the wrapping TTL.
	te, err := c.Auth().Token().LookupAccessor(wi.Accessor)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := te.TokenPolicies(); len(p) != 1 || p[0] != "response-wrapping" {
		t.Fatalf("wrapping token policies = %v, want [response-wrapping]", p)
	}
	if n, _ := te.Data["num_uses"].(json.Number).Int64(); n != 1 {
		t.Fatalf("wrapping token num_uses = %d, want 1", n)
	}
	if orphan, _ := te.Data["orphan"].(bool); !orphan {
		t.Fatalf("wrapping token is not an orphan: %v", te.Data)
	}
	if ttl, _ := te.TokenTTL(); ttl <= 0 || ttl > 5*time.Minute {
		t.Fatalf("wrapping token ttl = %s, want at most the 5m wrapping TTL", ttl)
	}

	// The wrapping token opens nothing but its own response.
	if _, err := newClient(t, addr, wi.Token).Logical().Read("secret/data/app/db"); statusOf(err) != http.StatusForbidden {
		t.Fatalf("reading a secret with the wrapping token: err = %v, want 403", err)
	}

	got, err := unwrapAs(t, addr, wi.Token)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := got.Data["data"].(map[string]any)
	if data["password"] != "hunter2" {
		t.Fatalf("unwrapped = %v, want the KV read's data", got.Data)
	}
	if _, ok := got.Data["metadata"]; !ok {
		t.Fatalf("unwrapped response lacks the KV metadata: %v", got.Data)
	}

	_, err = unwrapAs(t, addr, wi.Token)
	wantInvalidWrappingToken(t, "second unwrap", err)
	_, err = c.Logical().Unwrap(wi.Token)
	wantInvalidWrappingToken(t, "second unwrap with the token in the body", err)
}

func TestWrapTokenCreate(t *testing.T) {
	addr, root := servertest.StartDev(t)
	wc := wrappingClient(t, addr, root, "2m")
	wrapped, err := wc.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"default"}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	if wrapped.Auth != nil || wrapped.WrapInfo == nil || wrapped.WrapInfo.WrappedAccessor == "" {
		t.Fatalf("wrapped token create = auth %v wrap_info %+v, want only wrap_info with wrapped_accessor", wrapped.Auth, wrapped.WrapInfo)
	}

	// Unwrapped by another token, with the wrapping token in the body.
	c := newClient(t, addr, root)
	got, err := c.Logical().Unwrap(wrapped.WrapInfo.Token)
	if err != nil {
		t.Fatal(err)
	}
	if got.Auth == nil || got.Auth.ClientToken == "" {
		t.Fatalf("unwrapped token create has no auth: %+v", got)
	}
	if got.Auth.Accessor != wrapped.WrapInfo.WrappedAccessor {
		t.Fatalf("unwrapped accessor %q, wrap_info.wrapped_accessor %q", got.Auth.Accessor, wrapped.WrapInfo.WrappedAccessor)
	}
	if got.Auth.LeaseDuration <= 0 || got.Auth.LeaseDuration > 3600 {
		t.Fatalf("unwrapped token lease_duration = %d, want the token's 1h TTL", got.Auth.LeaseDuration)
	}
	self, err := newClient(t, addr, got.Auth.ClientToken).Auth().Token().LookupSelf()
	if err != nil {
		t.Fatalf("the unwrapped token does not work: %v", err)
	}
	if acc, _ := self.TokenAccessor(); acc != got.Auth.Accessor {
		t.Fatalf("lookup-self accessor %q, want %q", acc, got.Auth.Accessor)
	}

	// The wrapping token was used up by the unwrap: it is revoked.
	if _, err := c.Auth().Token().LookupAccessor(wrapped.WrapInfo.Accessor); err == nil {
		t.Fatal("the wrapping token outlived its unwrap")
	}
	_, err = unwrapAs(t, addr, wrapped.WrapInfo.Token)
	wantInvalidWrappingToken(t, "unwrap after unwrap", err)
}

func TestWrappingLookupRewrapAndWrap(t *testing.T) {
	addr, root := servertest.StartDev(t)
	c := newClient(t, addr, root)

	// sys/wrapping/wrap: the api client asks for a 5m wrap by default.
	wrapped, err := c.Logical().Write("sys/wrapping/wrap", map[string]any{"api_key": "s3cr3t", "n": 7})
	if err != nil {
		t.Fatal(err)
	}
	if wrapped.WrapInfo == nil || wrapped.Data != nil {
		t.Fatalf("sys/wrapping/wrap = %+v, want only wrap_info", wrapped)
	}
	tok := wrapped.WrapInfo.Token

	// Lookup needs no token and does not use the wrapping token up.
	anon := newClient(t, addr, "")
	anon.ClearToken()
	for range 2 {
		info, err := anon.Logical().Write("sys/wrapping/lookup", map[string]any{"token": tok})
		if err != nil {
			t.Fatalf("lookup: %v", err)
		}
		if ttl, _ := info.Data["creation_ttl"].(json.Number).Int64(); ttl != 300 {
			t.Fatalf("creation_ttl = %v, want 300", info.Data["creation_ttl"])
		}
		if info.Data["creation_path"] != "sys/wrapping/wrap" {
			t.Fatalf("creation_path = %v", info.Data["creation_path"])
		}
		if ct, _ := info.Data["creation_time"].(string); ct == "" {
			t.Fatalf("creation_time = %v", info.Data["creation_time"])
		} else if _, err := time.Parse(time.RFC3339Nano, ct); err != nil {
			t.Fatalf("creation_time %q: %v", ct, err)
		}
	}

	// Rewrap: a new token for the same response; the old one is void.
	re, err := c.Logical().Write("sys/wrapping/rewrap", map[string]any{"token": tok})
	if err != nil {
		t.Fatal(err)
	}
	if re.WrapInfo == nil || re.WrapInfo.Token == "" || re.WrapInfo.Token == tok {
		t.Fatalf("rewrap = %+v, want a new wrapping token", re.WrapInfo)
	}
	if re.WrapInfo.TTL != 300 || re.WrapInfo.CreationPath != "sys/wrapping/wrap" {
		t.Fatalf("rewrap wrap_info = %+v, want the original ttl and creation_path", re.WrapInfo)
	}
	_, err = anon.Logical().Write("sys/wrapping/lookup", map[string]any{"token": tok})
	wantInvalidWrappingToken(t, "lookup of a rewrapped token", err)
	_, err = unwrapAs(t, addr, tok)
	wantInvalidWrappingToken(t, "unwrap of a rewrapped token", err)

	got, err := unwrapAs(t, addr, re.WrapInfo.Token)
	if err != nil {
		t.Fatal(err)
	}
	if got.Data["api_key"] != "s3cr3t" || got.Data["n"] != json.Number("7") {
		t.Fatalf("unwrapped = %v, want the wrapped data", got.Data)
	}
	_, err = anon.Logical().Write("sys/wrapping/lookup", map[string]any{"token": re.WrapInfo.Token})
	wantInvalidWrappingToken(t, "lookup after unwrap", err)
}

// jsonRequest sends one request and returns its status and decoded body.
func jsonRequest(t *testing.T, method, url, token string, headers map[string]string, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: body %q: %v", method, url, raw, err)
		}
	}
	return resp.StatusCode, out
}

func TestWrappingOverHTTP(t *testing.T) {
	addr, root := servertest.StartDev(t)

	// A duration string or a number of seconds.
	for _, ttl := range []string{"90s", "90"} {
		code, body := jsonRequest(t, "POST", addr+"/v1/sys/wrapping/wrap", root, map[string]string{"X-Vault-Wrap-TTL": ttl}, `{"k":"v"}`)
		wi, _ := body["wrap_info"].(map[string]any)
		if code != 200 || wi == nil || wi["ttl"] != float64(90) || body["data"] != nil {
			t.Fatalf("wrap with X-Vault-Wrap-TTL %q: %d %v", ttl, code, body)
		}
	}

	for _, tc := range []struct {
		name, ttl, mention string
	}{
		{"bad duration", "soon", "X-Vault-Wrap-TTL"},
		{"negative", "-5", "X-Vault-Wrap-TTL"},
	} {
		code, body := jsonRequest(t, "POST", addr+"/v1/sys/wrapping/wrap", root, map[string]string{"X-Vault-Wrap-TTL": tc.ttl}, `{"k":"v"}`)
		if code != 400 || !strings.Contains(strings.Join(errorsOf(body), " "), tc.mention) {
			t.Fatalf("%s: %d %v, want 400 naming %s", tc.name, code, body, tc.mention)
		}
	}
	// Lookup as Vault Agent does it: GET with the wrapping token as the
	// request's token.
	code, body := jsonRequest(t, "POST", addr+"/v1/sys/wrapping/wrap", root, map[string]string{"X-Vault-Wrap-TTL": "1m"}, `{"k":"v"}`)
	tok := body["wrap_info"].(map[string]any)["token"].(string)
	code, body = jsonRequest(t, "GET", addr+"/v1/sys/wrapping/lookup", tok, nil, ``)
	if data, _ := body["data"].(map[string]any); code != 200 || data["creation_path"] != "sys/wrapping/wrap" || data["creation_ttl"] != float64(60) {
		t.Fatalf("GET sys/wrapping/lookup with the wrapping token: %d %v", code, body)
	}
	code, body = jsonRequest(t, "GET", addr+"/v1/sys/wrapping/lookup", root, nil, ``)
	if code != 400 {
		t.Fatalf("lookup of a token that is not a wrapping token: %d %v, want 400", code, body)
	}

	code, body = jsonRequest(t, "POST", addr+"/v1/sys/wrapping/wrap", root, nil, `{"k":"v"}`)
	if code != 400 || !strings.Contains(strings.Join(errorsOf(body), " "), "X-Vault-Wrap-TTL") {
		t.Fatalf("sys/wrapping/wrap without a wrap TTL: %d %v, want 400", code, body)
	}

	// A token made by hand with the response-wrapping policy is not a
	// wrapping token.
	code, body = jsonRequest(t, "POST", addr+"/v1/auth/token/create", root, nil, `{"policies":["response-wrapping"],"no_default_policy":true}`)
	if code != 200 {
		t.Fatalf("token create: %d %v", code, body)
	}
	forged := body["auth"].(map[string]any)["client_token"].(string)
	code, body = jsonRequest(t, "POST", addr+"/v1/sys/wrapping/unwrap", forged, nil, ``)
	if code != 400 {
		t.Fatalf("unwrap with a hand-made token: %d %v, want 400", code, body)
	}
	code, _ = jsonRequest(t, "POST", addr+"/v1/sys/policy/response-wrapping", root, nil, `{"policy":"path \"*\" { capabilities = [\"read\"] }"}`)
	if code != 400 {
		t.Fatalf("overwriting the response-wrapping policy: %d, want 400", code)
	}
}

func errorsOf(body map[string]any) []string {
	var out []string
	list, _ := body["errors"].([]any)
	for _, e := range list {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}

func TestWrappingTokenExpires(t *testing.T) {
	addr, root := servertest.StartDev(t)
	code, body := jsonRequest(t, "POST", addr+"/v1/sys/wrapping/wrap", root, map[string]string{"X-Vault-Wrap-TTL": "1"}, `{"k":"v"}`)
	if code != 200 {
		t.Fatalf("wrap: %d %v", code, body)
	}
	tok := body["wrap_info"].(map[string]any)["token"].(string)
	lookup := func() int {
		code, _ := jsonRequest(t, "POST", addr+"/v1/sys/wrapping/lookup", "", nil, `{"token":"`+tok+`"}`)
		return code
	}
	if code := lookup(); code != 200 {
		t.Fatalf("lookup of a fresh wrapping token: %d", code)
	}
	// The TTL runs on the server's clock, which tests cannot move: wait for
	// it to pass, within a generous bound.
	deadline := time.Now().Add(20 * time.Second)
	for lookup() == 200 {
		if time.Now().After(deadline) {
			t.Fatal("a wrapping token with a 1s TTL was still valid after 20s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, err := unwrapAs(t, addr, tok)
	wantInvalidWrappingToken(t, "unwrap after expiry", err)
}

func TestPolicyWrappingTTLBounds(t *testing.T) {
	ctx := context.Background()
	addr, root := servertest.StartDev(t)
	c := newClient(t, addr, root)
	if _, err := c.KVv2("secret").Put(ctx, "app/db", map[string]any{"password": "hunter2"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().PutPolicy("wrapped", `path "secret/data/app/*" {
  capabilities     = ["read"]
  min_wrapping_ttl = "1m"
  max_wrapping_ttl = "1h"
}`); err != nil {
		t.Fatal(err)
	}
	tokenWith := func(policies ...string) string {
		s, err := c.Auth().Token().Create(&vault.TokenCreateRequest{Policies: policies})
		if err != nil {
			t.Fatal(err)
		}
		return s.Auth.ClientToken
	}
	tok := tokenWith("wrapped")

	read := func(token, ttl string) (*vault.Secret, error) {
		return wrappingClient(t, addr, token, ttl).Logical().Read("secret/data/app/db")
	}
	for _, ttl := range []string{"", "30s", "2h"} {
		if s, err := read(tok, ttl); statusOf(err) != http.StatusForbidden {
			t.Fatalf("read with wrap TTL %q: %v %v, want 403", ttl, s, err)
		}
	}
	_, err := read(tok, "")
	if !strings.Contains(err.Error(), "X-Vault-Wrap-TTL") {
		t.Fatalf("refusal does not say what is missing: %v", err)
	}
	s, err := read(tok, "5m")
	if err != nil || s.WrapInfo == nil {
		t.Fatalf("read with wrap TTL 5m: %v %v", s, err)
	}
	got, err := unwrapAs(t, addr, s.WrapInfo.Token)
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := got.Data["data"].(map[string]any); data["password"] != "hunter2" {
		t.Fatalf("unwrapped = %v", got.Data)
	}

	// Two policies on the same path: the lowest bound of each kind stands.
	if err := c.Sys().PutPolicy("wrapped-short", `path "secret/data/app/*" {
  capabilities     = ["read"]
  min_wrapping_ttl = "30s"
  max_wrapping_ttl = "10m"
}`); err != nil {
		t.Fatal(err)
	}
	both := tokenWith("wrapped", "wrapped-short")
	if _, err := read(both, "45s"); err != nil {
		t.Fatalf("45s is within the merged bounds [30s, 10m]: %v", err)
	}
	if _, err := read(both, "20m"); statusOf(err) != http.StatusForbidden {
		t.Fatalf("20m is above the merged max of 10m: err = %v, want 403", err)
	}
	if _, err := read(both, ""); statusOf(err) != http.StatusForbidden {
		t.Fatalf("no wrapping under merged bounds: err = %v, want 403", err)
	}

	if err := c.Sys().PutPolicy("inverted", `path "x/*" {
  capabilities     = ["read"]
  min_wrapping_ttl = "1h"
  max_wrapping_ttl = "1m"
}`); statusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "max_wrapping_ttl") {
		t.Fatalf("max below min: err = %v, want 400 naming max_wrapping_ttl", err)
	}
}

func TestPolicyWithUnenforcedFieldsRefused(t *testing.T) {
	addr, root := servertest.StartDev(t)
	c := newClient(t, addr, root)
	for field, body := range map[string]string{
		"control_group": `path "secret/*" {
  capabilities = ["read"]
  control_group = {
    factor "approvers" {
      identity { group_names = ["managers"] approvals = 1 }
    }
  }
}`,
		"mfa_methods": `path "secret/*" {
  capabilities = ["read"]
  mfa_methods  = ["totp"]
}`,
	} {
		err := c.Sys().PutPolicy("guarded", body)
		if statusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), field) {
			t.Fatalf("policy with %s: err = %v, want 400 naming %s", field, err, field)
		}
		if p, err := c.Sys().GetPolicy("guarded"); err != nil || p != "" {
			t.Fatalf("a refused policy was stored: %q %v", p, err)
		}
	}
	// subscribe_event_types narrows only event subscriptions, which Arca
	// does not serve, so it is accepted.
	if err := c.Sys().PutPolicy("events", `path "secret/*" {
  capabilities = ["read"]
  subscribe_event_types = ["kv*"]
}`); err != nil {
		t.Fatalf("policy with subscribe_event_types: %v", err)
	}
}

// Concurrent unwraps of one wrapping token: exactly one gets the response.
func TestConcurrentUnwrapServesOnce(t *testing.T) {
	addr, root := servertest.StartDev(t)
	c := newClient(t, addr, root)
	for _, asClientToken := range []bool{false, true} {
		wrapped, err := c.Logical().Write("sys/wrapping/wrap", map[string]any{"k": "v"})
		if err != nil {
			t.Fatal(err)
		}
		tok := wrapped.WrapInfo.Token
		const n = 8
		errs := make(chan error, n)
		for range n {
			go func() {
				var err error
				if asClientToken {
					_, err = unwrapAs(t, addr, tok)
				} else {
					_, err = newClient(t, addr, root).Logical().Unwrap(tok)
				}
				errs <- err
			}()
		}
		served := 0
		for range n {
			err := <-errs
			switch {
			case err == nil:
				served++
			case statusOf(err) == http.StatusBadRequest || statusOf(err) == http.StatusForbidden:
			default:
				t.Errorf("unwrap: unexpected error %v", err)
			}
		}
		if served != 1 {
			t.Fatalf("token as client token %v: %d unwraps served the response, want 1", asClientToken, served)
		}
	}
}

// The audit trail of a wrapped read records the wrapping token hashed, and
// neither the secret nor the wrapping token in plaintext, also once the
// response is unwrapped.
func TestWrappedResponsesInAudit(t *testing.T) {
	ctx := context.Background()
	addr, root := servertest.StartDev(t)
	c := newClient(t, addr, root)
	logPath := filepath.Join(t.TempDir(), "audit.log")
	if err := c.Sys().EnableAuditWithOptionsWithContext(ctx, "file", &vault.EnableAuditOptions{
		Type: "file", Options: map[string]string{"file_path": logPath},
	}); err != nil {
		t.Fatal(err)
	}
	const marker = "wrapped-plaintext-marker-5d1e"
	if _, err := c.KVv2("secret").Put(ctx, "app", map[string]any{"password": marker}); err != nil {
		t.Fatal(err)
	}
	wrapped, err := wrappingClient(t, addr, root, "5m").Logical().Read("secret/data/app")
	if err != nil {
		t.Fatal(err)
	}
	tok := wrapped.WrapInfo.Token
	if _, err := unwrapAs(t, addr, tok); err != nil {
		t.Fatal(err)
	}

	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(marker)) || bytes.Contains(raw, []byte(tok)) {
		t.Fatal("the audit file holds the wrapped secret or the wrapping token in plaintext")
	}
	type auditEntry struct {
		Type     string
		Request  struct{ Path string }
		Response struct {
			WrapInfo struct {
				Token        string `json:"token"`
				TTL          int    `json:"ttl"`
				CreationPath string `json:"creation_path"`
			} `json:"wrap_info"`
		}
	}
	wantHash, err := c.Sys().AuditHashWithContext(ctx, "file", tok)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		var entry auditEntry
		if err := json.Unmarshal(line, &entry); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if entry.Type == "response" && entry.Request.Path == "secret/data/app" && entry.Response.WrapInfo.Token != "" {
			found = true
			w := entry.Response.WrapInfo
			if w.Token != wantHash || w.TTL != 300 || w.CreationPath != "secret/data/app" {
				t.Fatalf("audited wrap_info = %+v, want token %s, ttl 300", w, wantHash)
			}
		}
	}
	if !found {
		t.Fatal("no audited response of the wrapped read carries wrap_info")
	}
}
