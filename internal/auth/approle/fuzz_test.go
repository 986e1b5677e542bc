package approle

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/arcasec/arca/internal/logical"
)

// FuzzLoginFields decodes arbitrary JSON bodies as the server does (numbers
// kept as json.Number) and sends them to login and to secret ID generation
// through the framework's FieldData. "$ROLE" and "$SECRET" in a body stand
// for a real role ID and secret ID, so the fuzzer reaches the checks past
// the lookup. Each request either succeeds or fails with a 4xx: never a
// panic, never a server error, and a login never succeeds without the
// real pair.
func FuzzLoginFields(f *testing.F) {
	h := newHarness(f)
	h.sys.guard.off = true
	h.must(logical.UpdateOperation, "role/app", map[string]any{"secret_id_bound_cidrs": "127.0.0.0/8", "token_policies": "p"})
	roleID := h.roleID("app")
	secretID := h.secretID("app", map[string]any{"num_uses": 0})
	for _, s := range []string{
		`{"role_id":"$ROLE","secret_id":"$SECRET"}`,
		`{"role_id":["$ROLE"],"secret_id":["$SECRET"]}`,
		`{"role_id":["$ROLE","x"],"secret_id":"$SECRET"}`,
		`{"role_id":{"a":"$ROLE"},"secret_id":1}`,
		`{"role_id":"$ROLE","secret_id":null}`,
		`{"role_id":12,"secret_id":true}`,
		`{"metadata":"{\"a\":\"b\"}","cidr_list":"127.0.0.1/32","num_uses":2,"ttl":"1h"}`,
		`{"metadata":{"a":1},"cidr_list":["x"],"num_uses":"-1","ttl":-5}`,
		`{"token_bound_cidrs":"::1/200","ttl":"1e400h","num_uses":1e400}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		text := strings.NewReplacer("$ROLE", roleID, "$SECRET", secretID).Replace(string(body))
		dec := json.NewDecoder(bytes.NewReader([]byte(text)))
		dec.UseNumber()
		var data map[string]any
		if err := dec.Decode(&data); err != nil || data == nil {
			return // the server answers 400 before any backend sees it
		}
		resp, err := h.do(logical.UpdateOperation, "login", data)
		if err != nil {
			if st := logical.StatusOf(err); st < 400 || st >= 500 {
				t.Fatalf("login with %s: status %d: %v", text, st, err)
			}
			if strings.Contains(err.Error(), secretID) {
				t.Fatalf("the login error holds the secret ID")
			}
		} else {
			if resp == nil || resp.Auth == nil {
				t.Fatalf("login with %s: no error and no Auth", text)
			}
			if !strings.Contains(text, secretID) || !strings.Contains(text, roleID) {
				t.Fatalf("login with %s succeeded without the real role ID and secret ID", text)
			}
		}
		if _, err := h.do(logical.UpdateOperation, "role/app/secret-id", data); err != nil {
			if st := logical.StatusOf(err); st < 400 || st >= 500 {
				t.Fatalf("secret-id with %s: status %d: %v", text, st, err)
			}
		}
	})
}
