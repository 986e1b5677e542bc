// Package identity benchmarks what identities cost: a login that resolves
// an existing alias, a first login that creates an entity, and a read
// through a templated policy against one through a plain policy, all over
// HTTP against an in-process dev server (in-memory storage).
//
//	go test ./bench/identity/ -run '^$' -bench . -benchtime 3s
package identity

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/logical"
	fw "github.com/arcasec/arca/internal/logical/framework"
	"github.com/arcasec/arca/internal/server"
)

// stubLogin is a login method that accepts any name as its alias.
func stubLogin(_ context.Context, _ *logical.BackendConfig) (logical.Backend, error) {
	return &fw.Backend{
		PathsSpecial: &logical.Paths{Unauthenticated: []string{"login"}},
		Paths: []*fw.Path{{
			Pattern: "login",
			Fields:  map[string]*fw.FieldSchema{"name": {Type: fw.TypeString}},
			Operations: map[logical.Operation]fw.OperationFunc{logical.UpdateOperation: func(_ context.Context, _ *logical.Request, d *fw.FieldData) (*logical.Response, error) {
				return &logical.Response{Auth: &logical.Auth{DisplayName: d.String("name"), Alias: &logical.Alias{Name: d.String("name")}}}, nil
			}},
		}},
	}, nil
}

func start(b *testing.B) (root *vault.Client, addr string) {
	b.Helper()
	cat := server.Catalog()
	cat.Auth["stublogin"] = stubLogin
	srv, res, err := server.StartDev(context.Background(), server.DevOptions{ListenAddress: "127.0.0.1:0", Catalog: &cat},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Shutdown(context.Background()) })
	addr = "http://" + res.Address
	root = client(b, addr, res.RootToken)
	if err := root.Sys().EnableAuthWithOptions("stub", &vault.EnableAuthOptions{Type: "stublogin"}); err != nil {
		b.Fatal(err)
	}
	return root, addr
}

func client(b *testing.B, addr, token string) *vault.Client {
	conf := vault.DefaultConfig()
	conf.Address = addr
	conf.MaxRetries = 0
	c, err := vault.NewClient(conf)
	if err != nil {
		b.Fatal(err)
	}
	c.SetToken(token)
	return c
}

func BenchmarkLoginExistingAlias(b *testing.B) {
	_, addr := start(b)
	c := client(b, addr, "")
	if _, err := c.Logical().Write("auth/stub/login", map[string]any{"name": "ci"}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Logical().Write("auth/stub/login", map[string]any{"name": "ci"}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoginNewEntity(b *testing.B) {
	_, addr := start(b)
	c := client(b, addr, "")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Logical().Write("auth/stub/login", map[string]any{"name": fmt.Sprintf("user-%d", i)}); err != nil {
			b.Fatal(err)
		}
	}
}

// benchRead reads secret/data/<name>/x with a login token of an entity
// named name whose only grant is policyText (given to the entity).
func benchRead(b *testing.B, policyText string) {
	ctx := context.Background()
	root, addr := start(b)
	if err := root.Sys().PutPolicy("p", policyText); err != nil {
		b.Fatal(err)
	}
	if _, err := root.KVv2("secret").Put(ctx, "alice/x", map[string]any{"v": "1"}); err != nil {
		b.Fatal(err)
	}
	s, err := client(b, addr, "").Logical().Write("auth/stub/login", map[string]any{"name": "alice"})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := root.Logical().Write("identity/entity/id/"+s.Auth.EntityID, map[string]any{"name": "alice", "policies": "p"}); err != nil {
		b.Fatal(err)
	}
	kv := client(b, addr, s.Auth.ClientToken).KVv2("secret")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := kv.Get(ctx, "alice/x"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadPlainPolicy(b *testing.B) {
	benchRead(b, `path "secret/data/alice/*" { capabilities = ["read"] }`)
}

func BenchmarkReadTemplatedPolicy(b *testing.B) {
	benchRead(b, `path "secret/data/{{identity.entity.name}}/*" { capabilities = ["read"] }`)
}
