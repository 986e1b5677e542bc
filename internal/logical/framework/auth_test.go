package framework_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/arcasec/arca/internal/logical"
	fw "github.com/arcasec/arca/internal/logical/framework"
)

func loginBackend() *fw.Backend {
	return &fw.Backend{Paths: []*fw.Path{{
		Pattern: "login/" + fw.GenericNameRegex("name"),
		Fields:  map[string]*fw.FieldSchema{"name": {Type: fw.TypeString}, "role": {Type: fw.TypeString}},
		Operations: map[logical.Operation]fw.OperationFunc{
			logical.UpdateOperation: func(context.Context, *logical.Request, *fw.FieldData) (*logical.Response, error) {
				return nil, errors.New("a login must not run for a core operation")
			},
		},
	}}}
}

// AuthRenewOperation goes to AuthRenew, with the token; a backend without
// it refuses renewals with Vault's message.
func TestAuthRenewOperation(t *testing.T) {
	ctx := context.Background()
	b := loginBackend()
	req := &logical.Request{Operation: logical.AuthRenewOperation, Path: "login", Auth: &logical.Auth{Metadata: map[string]string{"user": "a"}}}
	_, err := b.HandleRequest(ctx, req)
	if logical.StatusOf(err) != http.StatusBadRequest || err.Error() != "this auth type doesn't support renew" {
		t.Fatalf("renewal without AuthRenew: %v", err)
	}
	b.AuthRenew = func(_ context.Context, req *logical.Request, _ *fw.FieldData) (*logical.Response, error) {
		return &logical.Response{Auth: &logical.Auth{TTL: time.Minute, Metadata: req.Auth.Metadata}}, nil
	}
	resp, err := b.HandleRequest(ctx, req)
	if err != nil || resp.Auth.TTL != time.Minute || resp.Auth.Metadata["user"] != "a" {
		t.Fatalf("renewal with AuthRenew: %v %v", resp, err)
	}
	req.Auth = nil
	if _, err := b.HandleRequest(ctx, req); logical.StatusOf(err) != http.StatusBadRequest {
		t.Fatalf("renewal without a token: %v, want 400", err)
	}
}

// ResolveRoleOperation is routed like the login and answers the role; a
// backend without ResolveRole answers ErrUnsupportedOperation.
func TestResolveRoleOperation(t *testing.T) {
	ctx := context.Background()
	b := loginBackend()
	req := &logical.Request{Operation: logical.ResolveRoleOperation, Path: "login/alice", Data: map[string]any{"role": "deploy"}}
	if _, err := b.HandleRequest(ctx, req); !errors.Is(err, logical.ErrUnsupportedOperation) {
		t.Fatalf("resolve-role without ResolveRole: %v", err)
	}
	b.ResolveRole = func(_ context.Context, _ *logical.Request, d *fw.FieldData) (string, error) {
		return d.String("name") + "/" + d.String("role"), nil
	}
	resp, err := b.HandleRequest(ctx, req)
	if err != nil || resp.Data["role"] != "alice/deploy" {
		t.Fatalf("resolve-role: %v %v", resp, err)
	}
}
