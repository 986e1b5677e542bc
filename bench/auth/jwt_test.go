// Package auth benchmarks logins through HTTP against an in-process dev
// server: JWT logins with a cached key set (the issuer is on loopback and
// is asked for its keys once).
//
//	go test ./bench/auth/ -run '^$' -bench . -benchtime 3s
package auth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/arcasec/arca/internal/server/servertest"
	"github.com/arcasec/arca/internal/testutil/oidctest"
)

func do(b *testing.B, client *http.Client, method, url, token string, body any) int {
	b.Helper()
	buf, _ := json.Marshal(body)
	req, err := http.NewRequest(method, url, bytes.NewReader(buf))
	if err != nil {
		b.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		b.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, out)
	}
	return resp.StatusCode
}

func benchmarkJWTLogin(b *testing.B, key *oidctest.Key) {
	iss := oidctest.NewIssuer(b, key)
	addr, root := servertest.StartDev(b)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	do(b, client, "POST", addr+"/v1/sys/auth/jwt", root, map[string]any{"type": "jwt"})
	do(b, client, "POST", addr+"/v1/auth/jwt/config", root, map[string]any{"jwks_url": iss.URL + "/keys", "bound_issuer": iss.URL})
	do(b, client, "POST", addr+"/v1/auth/jwt/role/ci", root, map[string]any{
		"role_type": "jwt", "user_claim": "sub", "bound_audiences": "https://github.com/acme",
		"bound_claims_type": "glob", "bound_claims": map[string]any{"repository": "acme/*"},
		"claim_mappings": map[string]any{"repository": "repository", "ref": "ref"}, "token_policies": "ci",
	})
	now := time.Now()
	tok := oidctest.Sign(b, key, map[string]any{
		"iss": iss.URL, "aud": "https://github.com/acme", "sub": "repo:acme/api:ref:refs/heads/main",
		"repository": "acme/api", "ref": "refs/heads/main", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	})
	body := map[string]any{"role": "ci", "jwt": tok}
	do(b, client, "POST", addr+"/v1/auth/jwt/login", "", body) // warm the key cache
	fetches := iss.KeyFetches.Load()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			do(b, client, "POST", addr+"/v1/auth/jwt/login", "", body)
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
	if n := iss.KeyFetches.Load() - fetches; n != 0 {
		b.Fatalf("the key set was fetched %d times during the run", n)
	}
}

func BenchmarkJWTLogin(b *testing.B) {
	for _, k := range []struct {
		name string
		key  func(testing.TB, string) *oidctest.Key
	}{{"RS256", oidctest.NewRSA}, {"ES256", oidctest.NewEC}, {"EdDSA", oidctest.NewEd25519}} {
		b.Run(k.name, func(b *testing.B) { benchmarkJWTLogin(b, k.key(b, fmt.Sprintf("%s-1", k.name))) })
	}
}

// BenchmarkTokenCreate is the baseline: the token a login issues, created
// directly (auth/token/create), with no method in front of it.
func BenchmarkTokenCreate(b *testing.B) {
	addr, root := servertest.StartDev(b)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	body := map[string]any{"policies": []string{"ci"}, "ttl": "1h"}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			do(b, client, "POST", addr+"/v1/auth/token/create", root, body)
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}
