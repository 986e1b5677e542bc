package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/arcasec/arca/internal/core"
	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/policy/policymodel"
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

// serve runs one request through h and returns the recorded response.
func serve(h http.Handler, method, path, token, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "http://arca/v1/", strings.NewReader(body))
	req.Method = method
	req.URL.Path = "/v1/" + path
	req.Header.Set("X-Vault-Token", token)
	if method == "PATCH" {
		req.Header.Set("Content-Type", "application/merge-patch+json")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// fuzzPrefixes are where fuzzed policies put their patterns: the mounts
// the fuzzed requests reach, and no prefix at all.
var fuzzPrefixes = []string{"secret/data/", "secret/metadata/", "kv/", "sys/", "sys/policies/acl/", "auth/token/", "cubbyhole/", ""}

// withoutACL are the paths the ACL does not guard: the HTTP layer's own
// endpoints and the unauthenticated mount listing.
func withoutACL(path string) bool {
	switch path {
	case "sys/init", "sys/seal-status", "sys/unseal", "sys/health", "sys/leader":
		return true
	}
	return path == "sys/internal/ui/mounts" || strings.HasPrefix(path, "sys/internal/ui/mounts/")
}

// FuzzHandler sends arbitrary methods, paths and bodies through the whole
// request pipeline: nothing may panic or answer 5xx. When policy is not
// empty it is turned into up to three generated policies and a token
// holding them, which sends the request instead of the root token; then a
// 2xx for a request the reference model denies is a hole in the ACL.
func FuzzHandler(f *testing.F) {
	h, root := newTestHandler(f)
	if w := serve(h, "POST", "sys/mounts/kv", root, `{"type":"kv"}`); w.Code >= 300 {
		f.Fatalf("mount kv: %d %s", w.Code, w.Body)
	}
	// Keys for requests to find: a read or list a policy wrongly allows is
	// a 2xx only where there is something to read.
	for _, p := range []string{"a", "b", "ab", "abc", "a/b", "b/a", "ab/a/b", "a/ab"} {
		serve(h, "POST", "kv/"+p, root, `{"x":"v"}`)
		serve(h, "POST", "secret/data/"+p, root, `{"data":{"x":"v"}}`)
	}
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
		{"POST", "kv/a", `{"x":"v","y":["v","w"]}`},
		{"GET", "kv/ab", ``},
		{"LIST", "kv/a", ``},
		// A mount path that is not UTF-8 once panicked the metrics of
		// every request to it.
		{"POST", "sys/mounts/\x81", `{"type":"kv"}`},
		{"GET", "\x81/a", ``},
	}
	for i, s := range seeds {
		f.Add(s.method, s.path, s.body, []byte(nil))
		f.Add(s.method, s.path, s.body, []byte{byte(i), 2, 1, 3, byte(i), 1, 0, 1, 1, 0, 1, 1})
		// An empty path asks for one generated to overlap the policies.
		f.Add(s.method, "", s.body, []byte{byte(i), 0, 2, byte(i), 1, 1, 0, 1, 0, 1, 1, 3, 1, 0, 2})
	}
	// Random policies and generated paths, for every method.
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 64 {
		policy := make([]byte, 48)
		for j := range policy {
			policy[j] = byte(r.Uint32())
		}
		f.Add([]string{"GET", "LIST", "POST", "DELETE", "PATCH", "PUT"}[i%6], "", `{"x":"v"}`, policy)
	}
	f.Fuzz(func(t *testing.T, method, path, body string, policy []byte) {
		if !validMethod(method) {
			return
		}
		if strings.HasPrefix(path, "sys/seal") || strings.HasPrefix(path, "sys/step-down") || strings.HasPrefix(path, "sys/rotate") {
			return // would seal the shared core or churn keys; covered by tests
		}
		token := root
		var model *policymodel.Model
		if len(policy) > 0 {
			c := policymodel.Bytes(policy)
			g := policymodel.Generator{C: c, Prefix: fuzzPrefixes[c.Intn(len(fuzzPrefixes))]}
			ps := g.Policies()
			if path == "" {
				path = g.Path()
			}
			var names []string
			for i := range ps {
				ps[i].Name = fmt.Sprintf("fz-p%d", i) // never root
				text, _ := json.Marshal(map[string]string{"policy": policymodel.HCL(ps[i])})
				if w := serve(h, "PUT", "sys/policies/acl/"+ps[i].Name, root, string(text)); w.Code >= 300 {
					t.Fatalf("generated policy refused: %d %s\n%s", w.Code, w.Body, policymodel.HCL(ps[i]))
				}
				names = append(names, ps[i].Name)
			}
			req, _ := json.Marshal(map[string]any{"policies": names, "no_default_policy": true})
			w := serve(h, "POST", "auth/token/create", root, string(req))
			var out struct {
				Auth struct {
					ClientToken string `json:"client_token"`
				} `json:"auth"`
			}
			if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &out) != nil {
				t.Fatalf("token create: %d %s", w.Code, w.Body)
			}
			token, model = out.Auth.ClientToken, policymodel.New(ps...)
		}
		w := serve(h, method, path, token, body)
		if w.Code >= 500 {
			t.Fatalf("%s %s %q: status %d: %s", method, path, body, w.Code, w.Body.String())
		}
		if model == nil || withoutACL(path) || asksForHelp(path) {
			return
		}
		// Below a mount the ACL is checked before anything else can fail,
		// so a 404 there also means the ACL let the request through.
		passed := w.Code < 300 || w.Code == http.StatusNotFound && (strings.HasPrefix(path, "kv/") || strings.HasPrefix(path, "secret/"))
		if w.Code == http.StatusForbidden && strings.HasPrefix(path, "kv/") {
			// The other way round: KV v1 has no root-only paths, so what
			// the model allows must not be refused.
			op := map[string]string{"GET": "read", "LIST": "list", "DELETE": "delete"}[method]
			listPath := path
			if op == "list" && !strings.HasSuffix(path, "/") {
				listPath += "/"
			}
			if op != "" && model.Allowed(op, listPath, nil) {
				t.Fatalf("%s %s was refused, but the model allows it", method, path)
			}
		}
		if !passed {
			return
		}
		var data map[string]any
		if method != "GET" && method != "LIST" && method != "DELETE" {
			data, _ = DecodeJSONBody([]byte(body))
		}
		var ok bool
		switch method {
		case "GET":
			ok = model.Allowed("read", path, nil)
		case "LIST":
			if !strings.HasSuffix(path, "/") {
				path += "/"
			}
			ok = model.Allowed("list", path, nil)
		case "POST", "PUT":
			ok = model.Allowed("create", path, data) || model.Allowed("update", path, data)
		case "PATCH":
			ok = model.Allowed("patch", path, data)
		case "DELETE":
			ok = model.Allowed("delete", path, nil)
		}
		if !ok {
			t.Fatalf("%s %s %q answered %d, but the model denies it: %s", method, path, body, w.Code, w.Body.String())
		}
	})
}

// asksForHelp reports whether a request path asks for the path's help,
// which any valid token may read.
func asksForHelp(path string) bool {
	u, err := url.Parse("/v1/" + path)
	if err != nil {
		return false
	}
	help, _ := strconv.ParseBool(u.Query().Get("help"))
	return help
}

// validMethod reports whether method is a non-empty HTTP token, as
// http.NewRequest requires.
func validMethod(method string) bool {
	if method == "" {
		return false
	}
	for _, r := range method {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
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
