package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/arcasec/arca/internal/core"
)

// These benchmarks drive the handler in-process (no network) to profile
// the request path; bench/server measures the real server under load.

func benchRequest(b *testing.B, h http.Handler, method, path, token, body string) {
	b.Helper()
	req := httptest.NewRequest(method, "/v1/"+path, strings.NewReader(body))
	req.Header.Set("X-Vault-Token", token)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code >= 300 {
		b.Fatalf("%s %s: %d %s", method, path, w.Code, w.Body.String())
	}
}

func BenchmarkKVv2ReadRoot(b *testing.B) {
	h, root := newTestHandler(b)
	benchRequest(b, h, "POST", "secret/data/app/db", root, `{"data":{"username":"app","password":"s3cr3t"}}`)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			benchRequest(b, h, "GET", "secret/data/app/db", root, "")
		}
	})
}

func BenchmarkKVv2ReadPolicyToken(b *testing.B) { benchPolicyRead(b, false) }

// BenchmarkKVv2ReadPolicyTokenFileAudit is BenchmarkKVv2ReadPolicyToken
// with one file audit device enabled.
func BenchmarkKVv2ReadPolicyTokenFileAudit(b *testing.B) { benchPolicyRead(b, true) }

func benchPolicyRead(b *testing.B, fileAudit bool) {
	h, root := newTestHandlerWith(b, core.AuditConfig{AllowAPICreation: true})
	if fileAudit {
		benchRequest(b, h, "PUT", "sys/audit/file", root, fmt.Sprintf(`{"type":"file","options":{"file_path":%q}}`, b.TempDir()+"/audit.log"))
	}
	benchRequest(b, h, "POST", "secret/data/app/db", root, `{"data":{"username":"app","password":"s3cr3t"}}`)
	tok := appReadToken(b, h, root)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			benchRequest(b, h, "GET", "secret/data/app/db", tok, "")
		}
	})
}

func BenchmarkKVv2WriteInmem(b *testing.B) {
	h, root := newTestHandler(b)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		i++
		benchRequest(b, h, "POST", fmt.Sprintf("secret/data/k%d", i%1000), root, `{"data":{"v":"x"}}`)
	}
}

// appReadToken creates a token whose policy reads secret/data/app/*.
func appReadToken(b *testing.B, h http.Handler, root string) string {
	benchRequest(b, h, "PUT", "sys/policies/acl/app", root, `{"policy":"path \"secret/data/app/*\" { capabilities = [\"read\"] }"}`)
	req := httptest.NewRequest("POST", "/v1/auth/token/create", strings.NewReader(`{"policies":["app"]}`))
	req.Header.Set("X-Vault-Token", root)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return between(w.Body.String(), `"client_token":"`, `"`)
}

func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return ""
	}
	s = s[i+len(start):]
	if j := strings.Index(s, end); j >= 0 {
		return s[:j]
	}
	return s
}
