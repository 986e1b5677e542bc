package userpass

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/storage"
)

// FuzzLoginFields sends arbitrary user names and JSON bodies (decoded as
// the server does, numbers as json.Number) to login/<name> through the
// framework's FieldData. A login either succeeds, only for alice with her
// password, or fails with a 4xx: never a panic or a server error, and no
// error holds the password.
func FuzzLoginFields(f *testing.F) {
	bcryptCost = bcrypt.MinCost // before the first hash, the dummy's included
	s := storage.NewInmem()
	be, err := Factory(context.Background(), &logical.BackendConfig{Storage: s})
	if err != nil {
		f.Fatal(err)
	}
	do := func(path string, data map[string]any) (*logical.Response, error) {
		return be.HandleRequest(context.Background(), &logical.Request{
			Operation: logical.UpdateOperation, Path: path, Data: data, Storage: s, RemoteAddr: "127.0.0.1:5000"})
	}
	const pw = "alice-pw-1234"
	if _, err := do("users/alice", map[string]any{"password": pw, "token_bound_cidrs": "127.0.0.0/8"}); err != nil {
		f.Fatal(err)
	}
	for _, c := range []struct{ name, body string }{
		{"alice", `{"password":"alice-pw-1234"}`},
		{"ALICE", `{"password":["alice-pw-1234"]}`},
		{"alice", `{"password":["alice-pw-1234","x"]}`},
		{"alice", `{"password":{"x":1},"username":"bob"}`},
		{"alice", `{"password":1e400}`},
		{"..", `{"password":"x"}`},
		{"a/b", `{"password":"x"}`},
		{"alice\x00", `{"password":"alice-pw-1234"}`},
		{strings.Repeat("a", 300), `{"password":""}`},
		{"alice", `{"password":"alice-pw-1234` + strings.Repeat("x", 80) + `"}`},
	} {
		f.Add(c.name, []byte(c.body))
	}
	f.Fuzz(func(t *testing.T, name string, body []byte) {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var data map[string]any
		if err := dec.Decode(&data); err != nil || data == nil {
			return // the server answers 400 before any backend sees it
		}
		resp, err := do("login/"+name, data)
		if err != nil {
			if st := logical.StatusOf(err); st < 400 || st >= 500 {
				t.Fatalf("login/%q with %s: status %d: %v", name, body, st, err)
			}
			if strings.Contains(err.Error(), pw) {
				t.Fatal("the error holds the password")
			}
			return
		}
		if resp == nil || resp.Auth == nil {
			t.Fatalf("login/%q with %s: no error and no Auth", name, body)
		}
		if strings.ToLower(name) != "alice" || resp.Auth.Alias.Name != "alice" {
			t.Fatalf("login/%q with %s logged in as %q", name, body, resp.Auth.Alias.Name)
		}
		got := data["password"]
		if l, ok := got.([]any); ok && len(l) == 1 {
			got = l[0]
		}
		if got != pw {
			t.Fatalf("login/%q with password %#v succeeded", name, data["password"])
		}
	})
}
