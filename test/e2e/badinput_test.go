package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/arcasec/arca/internal/server/servertest"
)

func do(t *testing.T, method, url, token, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode >= 400 && ct != "application/json" {
		t.Errorf("%s %s: error Content-Type %q, want application/json", method, url, ct)
	}
	return resp.StatusCode, string(b)
}

func TestBadInput(t *testing.T) {
	addr, root := servertest.StartDev(t)
	// Something stored first: bad requests must leave it intact.
	if code, body := do(t, "POST", addr+"/v1/secret/data/keep", root, "", `{"data":{"v":"1"}}`); code != 200 {
		t.Fatalf("seed write: %d %s", code, body)
	}
	cases := []struct {
		name, method, path, ctype, body string
		want                            int
		mention                         string
		token                           string // "" for the root token, "-" for none
	}{
		{"malformed JSON", "POST", "secret/data/keep", "", `{"data": {"v": }`, 400, "JSON", ""},
		{"body not an object", "POST", "secret/data/keep", "", `["a"]`, 400, "object", ""},
		{"trailing garbage", "POST", "secret/data/keep", "", `{"data":{}} {}`, 400, "JSON", ""},
		{"data not an object", "POST", "secret/data/keep", "", `{"data":"str"}`, 400, "data", ""},
		{"wrong field type", "POST", "secret/metadata/keep", "", `{"max_versions":"many"}`, 400, "max_versions", ""},
		{"bad duration", "POST", "auth/token/create", "", `{"ttl":"forever"}`, 400, "ttl", ""},
		{"bad list flag", "GET", "secret/metadata/?list=maybe", "", ``, 400, "list", ""},
		{"patch without merge-patch type", "PATCH", "secret/data/keep", "application/json", `{"data":{"v":"2"}}`, 415, "merge-patch", ""},
		{"path traversal", "GET", "secret/data/../../sys/mounts", "", ``, 400, "path", ""},
		{"encoded traversal", "GET", "secret/data/%2e%2e/%2e%2e/sys/mounts", "", ``, 400, "path", ""},
		{"unknown route", "GET", "nope/thing", "", ``, 404, "", ""},
		{"method not allowed", "DELETE", "sys/seal-status", "", ``, 405, "", ""},
		{"init without fields", "PUT", "sys/init", "", `{}`, 400, "secret_shares", ""},
		{"unseal without key", "PUT", "sys/unseal", "", `{}`, 400, "key", ""},
		{"no token", "GET", "secret/data/keep", "", ``, 403, "permission denied", "-"},
		{"bad token", "GET", "secret/data/keep", "", ``, 403, "permission denied", "hvs.notarealtoken"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			token := tc.token
			switch token {
			case "":
				token = root
			case "-":
				token = ""
			}
			code, body := do(t, tc.method, addr+"/v1/"+tc.path, token, tc.ctype, tc.body)
			if code != tc.want {
				t.Fatalf("status %d, want %d; body %s", code, tc.want, body)
			}
			var e struct{ Errors []string }
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Errors == nil {
				t.Fatalf("error body is not {\"errors\":[...]}: %s", body)
			}
			if tc.mention != "" && !strings.Contains(strings.ToLower(strings.Join(e.Errors, " ")), strings.ToLower(tc.mention)) {
				t.Fatalf("error %q does not mention %q", e.Errors, tc.mention)
			}
		})
	}
	// Over max_request_size: 413.
	huge := `{"data":{"v":"` + strings.Repeat("x", 33<<20) + `"}}`
	if code, _ := do(t, "POST", addr+"/v1/secret/data/keep", root, "", huge); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("huge body: status %d, want 413", code)
	}
	// Nothing stored was lost or changed.
	code, body := do(t, "GET", addr+"/v1/secret/data/keep", root, "", "")
	if code != 200 || !strings.Contains(body, `"v":"1"`) || !strings.Contains(body, `"version":1`) {
		t.Fatalf("stored secret changed by bad requests: %d %s", code, body)
	}
}
