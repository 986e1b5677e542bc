package compat

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/logical"
	fw "github.com/arcasec/arca/internal/logical/framework"
	"github.com/arcasec/arca/internal/server"
)

// roleStub is an auth method with roles, standing in for AppRole: anyone
// logs in to any role, and ResolveRole names the role from the body.
func roleStub(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := &fw.Backend{
		PathsSpecial: &logical.Paths{Unauthenticated: []string{"login"}},
		Paths: []*fw.Path{{
			Pattern: "login",
			Fields:  map[string]*fw.FieldSchema{"role": {Type: fw.TypeString}},
			Operations: map[logical.Operation]fw.OperationFunc{
				logical.UpdateOperation: func(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
					return &logical.Response{Auth: &logical.Auth{DisplayName: d.String("role"), Renewable: true}}, nil
				},
			},
		}},
		ResolveRole: func(ctx context.Context, req *logical.Request, d *fw.FieldData) (string, error) {
			return d.String("role"), nil
		},
	}
	b.Setup(conf)
	return b, nil
}

func TestRateLimitQuotaWithRole(t *testing.T) {
	cat := server.Catalog()
	cat.Auth["rolestub"] = roleStub
	srv, res, err := server.StartDev(context.Background(), server.DevOptions{ListenAddress: "127.0.0.1:0", Catalog: &cat},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(srv) })
	root := newClient(t, "http://"+res.Address, res.RootToken)
	for path, typ := range map[string]string{"ci": "rolestub", "userpass": "userpass"} {
		if err := root.Sys().EnableAuthWithOptions(path, &vault.EnableAuthOptions{Type: typ}); err != nil {
			t.Fatal(err)
		}
	}

	// A role quota needs an auth mount whose method has roles.
	for _, tc := range []struct {
		body map[string]any
		want string
	}{
		{map[string]any{"path": "auth/userpass/", "role": "x", "rate": 1}, "no roles"},
		{map[string]any{"path": "secret/", "role": "x", "rate": 1}, "auth mount"},
		{map[string]any{"role": "x", "rate": 1}, "auth mount"},
	} {
		if _, err := root.Logical().Write("sys/quotas/rate-limit/bad", tc.body); statusOf(err) != http.StatusBadRequest || !strings.Contains(errorText(err), tc.want) {
			t.Fatalf("quota %v: %v, want 400 saying %q", tc.body, err, tc.want)
		}
	}

	if _, err := root.Logical().Write("sys/quotas/rate-limit/deploy", map[string]any{"path": "auth/ci", "role": "deploy", "rate": 2, "interval": "1h"}); err != nil {
		t.Fatalf("a quota with a role: %v", err)
	}
	q, err := root.Logical().Read("sys/quotas/rate-limit/deploy")
	if err != nil || q.Data["role"] != "deploy" || q.Data["path"] != "auth/ci/" {
		t.Fatalf("reading the quota: %v %v", q, err)
	}

	anon := newClient(t, root.Address(), "")
	login := func(role string) error {
		_, err := anon.Logical().Write("auth/ci/login", map[string]any{"role": role})
		return err
	}
	for i := 0; i < 2; i++ {
		if err := login("deploy"); err != nil {
			t.Fatalf("login %d for role deploy, within the quota: %v", i+1, err)
		}
	}
	if err := login("deploy"); statusOf(err) != http.StatusTooManyRequests {
		t.Fatalf("a third login for role deploy: %v, want 429", err)
	}
	// Other roles, and other requests on the mount, are not limited by it.
	for i := 0; i < 4; i++ {
		if err := login("build"); err != nil {
			t.Fatalf("login %d for role build: %v", i+1, err)
		}
	}
	// A quota on the mount still applies to the roles no role quota names.
	if _, err := root.Logical().Write("sys/quotas/rate-limit/mount", map[string]any{"path": "auth/ci/", "rate": 1, "interval": "1h"}); err != nil {
		t.Fatal(err)
	}
	if err := login("build"); err != nil {
		t.Fatalf("first login for role build under the mount quota: %v", err)
	}
	if err := login("build"); statusOf(err) != http.StatusTooManyRequests {
		t.Fatalf("second login for role build under the mount quota: %v, want 429", err)
	}
}

// TestRateLimitQuotaWithAppRoleRole: a quota naming an AppRole role limits
// logins with that role's role ID, and only those.
func TestRateLimitQuotaWithAppRoleRole(t *testing.T) {
	srv, res, err := server.StartDev(context.Background(), server.DevOptions{ListenAddress: "127.0.0.1:0"},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(srv) })
	root := newClient(t, "http://"+res.Address, res.RootToken)
	if err := root.Sys().EnableAuthWithOptions("approle", &vault.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	creds := map[string][2]string{}
	for _, name := range []string{"deploy", "build"} {
		if _, err := root.Logical().Write("auth/approle/role/"+name, map[string]any{"token_ttl": "5m"}); err != nil {
			t.Fatal(err)
		}
		rid, err := root.Logical().Read("auth/approle/role/" + name + "/role-id")
		if err != nil {
			t.Fatal(err)
		}
		// Enough secret IDs that the quota, not the secret ID, is what stops a login.
		sid, err := root.Logical().Write("auth/approle/role/"+name+"/secret-id", nil)
		if err != nil {
			t.Fatal(err)
		}
		creds[name] = [2]string{rid.Data["role_id"].(string), sid.Data["secret_id"].(string)}
	}
	if _, err := root.Logical().Write("sys/quotas/rate-limit/deploy", map[string]any{"path": "auth/approle/", "role": "deploy", "rate": 1, "interval": "1h"}); err != nil {
		t.Fatalf("a quota naming an AppRole role: %v", err)
	}
	anon := newClient(t, root.Address(), "")
	login := func(name string) error {
		_, err := anon.Logical().Write("auth/approle/login", map[string]any{"role_id": creds[name][0], "secret_id": creds[name][1]})
		return err
	}
	if err := login("deploy"); err != nil {
		t.Fatalf("first deploy login: %v", err)
	}
	if err := login("deploy"); statusOf(err) != http.StatusTooManyRequests {
		t.Fatalf("second deploy login: %v, want 429", err)
	}
	for i := 0; i < 3; i++ {
		if err := login("build"); err != nil {
			t.Fatalf("build login %d is not limited by the deploy quota: %v", i+1, err)
		}
	}
}
