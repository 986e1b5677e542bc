package cli

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arcasec/arca/api"
	"github.com/arcasec/arca/internal/logical"
	fw "github.com/arcasec/arca/internal/logical/framework"
	"github.com/arcasec/arca/internal/server"
)

// stubPassFactory is a tiny auth method for the tests: any user logs in at
// login/<username> with the password "pw", and gets the default policy.
func stubPassFactory(_ context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := &fw.Backend{
		Help:         "A stub password method for the CLI tests.",
		PathsSpecial: &logical.Paths{Unauthenticated: []string{"login/*"}},
		Paths: []*fw.Path{{
			Pattern:      "login/(?P<username>[^/]+)",
			Fields:       map[string]*fw.FieldSchema{"username": {Type: fw.TypeString}, "password": {Type: fw.TypeString}},
			HelpSynopsis: "Log in with a user name and password.",
			Operations: map[logical.Operation]fw.OperationFunc{
				logical.UpdateOperation: func(_ context.Context, _ *logical.Request, d *fw.FieldData) (*logical.Response, error) {
					if subtle.ConstantTimeCompare([]byte(d.String("password")), []byte("pw")) != 1 {
						return nil, logical.BadRequest("invalid username or password")
					}
					u := d.String("username")
					return &logical.Response{Auth: &logical.Auth{
						Policies: []string{"default"}, TokenPolicies: []string{"default"},
						Metadata: map[string]string{"username": u}, DisplayName: u,
						TTL: time.Hour, Renewable: true,
					}}, nil
				},
			},
		}},
	}
	b.Setup(conf)
	return b, nil
}

// authEnv starts a dev server whose catalog has the stub auth method
// "stubpass" and points the CLI at it.
func authEnv(t *testing.T) {
	t.Helper()
	cat := server.Catalog()
	cat.Auth = map[string]logical.Factory{"stubpass": stubPassFactory}
	for k, v := range server.Catalog().Auth {
		cat.Auth[k] = v
	}
	catalogEnv(t, cat)
}

func TestAuthEnableListTuneMoveDisable(t *testing.T) {
	authEnv(t)
	if out := mustRun(t, "auth", "enable", "-path=people", "-description=the humans", "stubpass"); out != "Success! Enabled stubpass auth method at: people/\n" {
		t.Fatalf("auth enable: %q", out)
	}
	out := mustRun(t, "auth", "list")
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[0], "Path") || !strings.Contains(lines[0], "Type") || !strings.Contains(lines[0], "Accessor") || !strings.Contains(lines[0], "Description") {
		t.Fatalf("auth list header:\n%s", out)
	}
	var row string
	for _, l := range lines {
		if strings.HasPrefix(l, "people/") {
			row = l
		}
	}
	if f := strings.Fields(row); len(f) < 4 || f[1] != "stubpass" || !strings.HasPrefix(f[2], "auth_stubpass_") || !strings.Contains(row, "the humans") {
		t.Fatalf("auth list row for people/: %q\n%s", row, out)
	}
	if !strings.Contains(out, "token/") {
		t.Fatalf("auth list lacks token/:\n%s", out)
	}
	var mounts map[string]struct{ Type, Accessor string }
	if err := json.Unmarshal([]byte(mustRun(t, "auth", "list", "-format=json")), &struct{ Data any }{}); err != nil {
		t.Fatal(err)
	}
	var env struct {
		Data map[string]struct{ Type string }
	}
	json.Unmarshal([]byte(mustRun(t, "auth", "list", "-format=json")), &env)
	if env.Data["people/"].Type != "stubpass" {
		t.Fatalf("auth list -format=json: %+v %v", env, mounts)
	}
	if out := mustRun(t, "auth", "list", "-detailed"); !strings.Contains(out, "Default TTL") || !strings.Contains(out, "Token Type") {
		t.Fatalf("auth list -detailed:\n%s", out)
	}

	// Flags after the path are taken too.
	mustRun(t, "auth", "tune", "people", "-default-lease-ttl=1h", "-max-lease-ttl=2h", "-description=staff")
	var tune struct {
		Data struct {
			Default     json.Number `json:"default_lease_ttl"`
			Max         json.Number `json:"max_lease_ttl"`
			Description string
		}
	}
	if err := json.Unmarshal([]byte(mustRun(t, "read", "-format=json", "sys/auth/people/tune")), &tune); err != nil {
		t.Fatal(err)
	}
	if tune.Data.Default != "3600" || tune.Data.Max != "7200" || tune.Data.Description != "staff" {
		t.Fatalf("after auth tune: %+v", tune.Data)
	}

	if out := mustRun(t, "auth", "help", "people"); !strings.Contains(out, "A stub password method") || !strings.Contains(out, "login/") {
		t.Fatalf("auth help people:\n%s", out)
	}
	if out := mustRun(t, "auth", "help", "approle"); !strings.Contains(out, "role_id") {
		t.Fatalf("auth help approle (a type, not a path):\n%s", out)
	}

	mustRun(t, "auth", "move", "people", "auth/staff")
	out = mustRun(t, "auth", "list")
	if strings.Contains(out, "people/") || !strings.Contains(out, "staff/") {
		t.Fatalf("after auth move:\n%s", out)
	}
	if out := mustRun(t, "auth", "disable", "staff"); !strings.Contains(out, "Disabled the auth method") {
		t.Fatalf("auth disable: %q", out)
	}
	if out := mustRun(t, "auth", "list"); strings.Contains(out, "staff/") {
		t.Fatalf("after auth disable:\n%s", out)
	}
}

func TestAuthErrors(t *testing.T) {
	authEnv(t)
	if code, _, errOut := arca(t, "", "auth", "enable", "nosuchtype"); code != 2 || !strings.Contains(errOut, "nosuchtype") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Fatalf("enable of an unknown type: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := arca(t, "", "auth", "enable"); code != 1 || !strings.Contains(errOut, "usage: arca auth enable [flags] TYPE") {
		t.Fatalf("enable without a type: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := arca(t, "", "auth", "tune", "-user-lockout-threshold=many", "token"); code != 1 || !strings.Contains(errOut, "-user-lockout-threshold") {
		t.Fatalf("tune with a bad threshold: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := arca(t, "", "auth", "help", "nosuch"); code != 2 || !strings.Contains(errOut, "nosuch") {
		t.Fatalf("help of nothing: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := arca(t, "", "auth", "frobnicate"); code != 1 || !strings.Contains(errOut, "enable") || !strings.Contains(errOut, "tune") {
		t.Fatalf("unknown auth subcommand: exit %d, stderr %q", code, errOut)
	}
}

// TestLoginUserpassAgainstServer logs in through a real server: the
// password comes from stdin, the token is stored and used next, and the
// auth block prints as vault prints it.
func TestLoginUserpassAgainstServer(t *testing.T) {
	authEnv(t)
	mustRun(t, "auth", "enable", "-path=userpass", "stubpass")
	code, out, errOut := arca(t, "pw\n", "login", "-method=userpass", "username=alice", "password=-")
	if code != 0 {
		t.Fatalf("login: exit %d, stderr %q", code, errOut)
	}
	if !strings.HasPrefix(out, "Success! You are now authenticated") {
		t.Fatalf("login output:\n%s", out)
	}
	for key, want := range map[string]string{"token_duration": "1h", "token_renewable": "true", "token_policies": `["default"]`,
		"identity_policies": "[]", "policies": `["default"]`, "token_meta_username": "alice"} {
		if got := rowValue(out, key); got != want {
			t.Fatalf("login output: %s is %q, want %q:\n%s", key, got, want, out)
		}
	}
	stored, err := os.ReadFile(filepath.Join(os.Getenv("HOME"), api.TokenFile))
	if err != nil || !strings.HasPrefix(string(stored), "hvs.") || !strings.Contains(out, string(stored)) {
		t.Fatalf("stored token %q (%v); output:\n%s", stored, err, out)
	}
	t.Setenv("VAULT_TOKEN", "")
	if out := mustRun(t, "token", "lookup", "-format=json"); !strings.Contains(out, `"display_name"`) || !strings.Contains(out, "alice") {
		t.Fatalf("lookup with the stored token:\n%s", out)
	}
	// A wrong password fails with one line; the prompt reads stdin.
	if code, _, errOut := arca(t, "wrong\n", "login", "-method=userpass", "username=alice"); code != 2 || !strings.Contains(errOut, "invalid username or password") {
		t.Fatalf("bad password: exit %d, stderr %q", code, errOut)
	}
	// The generic write prints the same auth block.
	out = mustRun(t, "write", "auth/userpass/login/bob", "password=pw")
	want := []string{"token ", "token_accessor ", "token_duration ", "token_renewable ", "token_policies ", "identity_policies ", "policies ", "token_meta_username "}
	lines := strings.Split(strings.TrimSpace(out), "\n")[2:]
	if len(lines) != len(want) {
		t.Fatalf("write auth/userpass/login/bob:\n%s", out)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Fatalf("row %d is %q, want %q first:\n%s", i, lines[i], w, out)
		}
	}
	// -token-only prints the token alone and stores nothing.
	os.Remove(filepath.Join(os.Getenv("HOME"), api.TokenFile))
	code, out, _ = arca(t, "", "login", "-method=userpass", "-token-only", "username=carol", "password=pw")
	if code != 0 || !strings.HasPrefix(out, "hvs.") || strings.Count(out, "\n") != 1 {
		t.Fatalf("-token-only: exit %d, %q", code, out)
	}
	if _, err := os.Stat(filepath.Join(os.Getenv("HOME"), api.TokenFile)); !os.IsNotExist(err) {
		t.Fatalf("-token-only stored the token: %v", err)
	}
}

// rowValue returns the value of a Key/Value table row.
func rowValue(out, key string) string {
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, " "); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
