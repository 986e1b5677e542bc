package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/arcasec/arca/internal/core"
	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/seal"
	"github.com/arcasec/arca/internal/storage"
)

func FuzzDecodeJSONBody(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"data":{"a":1}}`, `{"a":[1,2,{"b":null}]}`, `[1]`, `{"a":1}{}`, `{"a":1e999}`, "{\"a\":\"\xff\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		data, err := DecodeJSONBody(raw)
		if err == nil && len(strings.TrimSpace(string(raw))) > 0 && data == nil && strings.TrimSpace(string(raw)) != "null" {
			t.Fatalf("accepted %q without data", raw)
		}
		if err != nil && !strings.Contains(err.Error(), "JSON") {
			t.Fatalf("error does not say what is wrong: %v", err)
		}
	})
}

// newTestHandler builds a handler over an unsealed in-memory core with KV v2
// at secret/, and returns it with the root token.
func newTestHandler(tb testing.TB) (*Handler, string) {
	tb.Helper()
	return newTestHandlerWith(tb, core.AuditConfig{})
}

// newTestHandlerWith is newTestHandler with the given audit configuration.
func newTestHandlerWith(tb testing.TB, audit core.AuditConfig) (*Handler, string) {
	tb.Helper()
	phys, err := storage.New("inmem", nil)
	if err != nil {
		tb.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := core.New(core.Config{Storage: phys, Catalog: Catalog(), Logger: logger, Audit: audit})
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	res, err := c.Init(ctx, seal.Config{Shares: 1, Threshold: 1})
	if err != nil {
		tb.Fatal(err)
	}
	if err := c.Unseal(ctx, res.Shares[0]); err != nil {
		tb.Fatal(err)
	}
	if err := c.EnableSecretsEngine(ctx, "secret/", "kv", map[string]string{"version": "2"}, ""); err != nil {
		tb.Fatal(err)
	}
	return NewHandler(c, logger, HandlerOptions{MaxRequestSize: 1 << 20}), res.RootToken
}

// FuzzHandler sends arbitrary methods, paths and bodies through the whole
// request pipeline: nothing may panic or answer 500.
func FuzzHandler(f *testing.F) {
	h, root := newTestHandler(f)
	seeds := []struct{ method, path, body string }{
		{"POST", "secret/data/a", `{"data":{"k":"v"}}`},
		{"GET", "secret/data/a?version=1", ``},
		{"LIST", "secret/metadata/", ``},
		{"POST", "secret/metadata/a", `{"max_versions":2,"custom_metadata":{"a":"b"}}`},
		{"PATCH", "secret/data/a", `{"data":{"k":null}}`},
		{"POST", "sys/mounts/x", `{"type":"kv","options":{"version":"2"}}`},
		{"POST", "sys/policies/acl/p", `{"policy":"path \"a/*\" { capabilities = [\"read\"] }"}`},
		{"POST", "auth/token/create", `{"ttl":"1h","policies":"a,b","num_uses":3}`},
		{"POST", "sys/capabilities-self", `{"paths":["a","b"]}`},
		{"DELETE", "secret/metadata/a", ``},
		{"GET", "sys/internal/ui/mounts/secret/a", ``},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.body)
	}
	f.Fuzz(func(t *testing.T, method, path, body string) {
		if strings.ContainsAny(method, " \t\r\n") || method == "" {
			return
		}
		req, err := http.NewRequest(method, "http://arca/v1/", strings.NewReader(body))
		if err != nil {
			return
		}
		req.URL.Path = "/v1/" + path
		req.Header.Set("X-Vault-Token", root)
		if method == "PATCH" {
			req.Header.Set("Content-Type", "application/merge-patch+json")
		}
		if strings.HasPrefix(path, "sys/seal") || strings.HasPrefix(path, "sys/step-down") || strings.HasPrefix(path, "sys/rotate") {
			return // would seal the shared core or churn keys; covered by tests
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s %q: status %d: %s", method, path, body, w.Code, w.Body.String())
		}
	})
}

func FuzzParseConfig(f *testing.F) {
	f.Add(`storage "bolt" { path = "/tmp/a.db" }` + "\n" + `listener "tcp" { address = "127.0.0.1:8200" tls_disable = true }`)
	f.Add(`{"storage": {"inmem": {}}, "listener": {"tcp": {"address": "127.0.0.1:0", "tls_disable": true}}}`)
	f.Add(`audit "file" "f" { description = "d"` + "\n" + `local = false` + "\n" + `options { file_path = "stdout" } }` + "\n" + `unsafe_allow_api_audit_creation = true`)
	f.Add(`{"audit": [{"socket": {"s": {"options": {"address": "127.0.0.1:9"}}}}], "allow_audit_log_prefixing": true}`)
	f.Fuzz(func(t *testing.T, text string) {
		ParseConfig(text) // an error is fine; a panic is not
	})
}

// FuzzJSONLimits checks the pre-decode shape scan: it never panics, and a
// valid document it lets through is within every limit.
func FuzzJSONLimits(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,2,[3,[4]]]}`, `[[[[[[1]]]]]]`, `{"a":"\"}\\"}`, `{"a":1,"b":2,"c":3,"d":4}`, `"xxxxxxxxxx"`} {
		f.Add([]byte(s))
	}
	limits := JSONLimits{MaxDepth: 4, MaxStringLength: 8, MaxObjectEntries: 3, MaxArrayElements: 3}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if err := limits.check(raw); err != nil {
			if logical.StatusOf(err) != http.StatusBadRequest {
				t.Fatalf("limit error is not a 400: %v", err)
			}
			return
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		type level struct {
			object bool
			n      int
		}
		var stack []level
		for {
			tok, err := dec.Token()
			if err != nil {
				return // invalid JSON is the decoder's to refuse
			}
			switch v := tok.(type) {
			case json.Delim:
				switch v {
				case '{', '[':
					if len(stack) > 0 {
						stack[len(stack)-1].n++
					}
					stack = append(stack, level{object: v == '{'})
					if len(stack) > limits.MaxDepth {
						t.Fatalf("%q is deeper than %d and passed", raw, limits.MaxDepth)
					}
				default:
					stack = stack[:len(stack)-1]
				}
				continue
			case string:
				if len(v) > 3*limits.MaxStringLength {
					// The limit counts encoded bytes; decoding turns an
					// invalid byte into U+FFFD (three bytes) and shrinks
					// escapes, so a passed string decodes to at most three
					// times the limit.
					t.Fatalf("%q has a string over %d bytes and passed", raw, limits.MaxStringLength)
				}
			}
			if len(stack) > 0 {
				top := &stack[len(stack)-1]
				top.n++
				max := limits.MaxArrayElements
				n := top.n
				if top.object {
					max, n = limits.MaxObjectEntries, (top.n+1)/2 // keys and values alternate
				}
				if n > max {
					t.Fatalf("%q has a container over its limit and passed", raw)
				}
			}
		}
	})
}
