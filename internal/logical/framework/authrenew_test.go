package framework_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/arcasec/arca/internal/logical"
	fw "github.com/arcasec/arca/internal/logical/framework"
)

// AuthRenewOperation goes to AuthRenew whatever the path, and is refused by
// a backend without one.
func TestAuthRenewDispatch(t *testing.T) {
	b := &fw.Backend{
		Paths: []*fw.Path{{Pattern: "login"}},
		AuthRenew: func(_ context.Context, req *logical.Request, _ *fw.FieldData) (*logical.Response, error) {
			a := *req.Auth
			a.TTL = time.Minute
			return &logical.Response{Auth: &a}, nil
		},
	}
	resp, err := b.HandleRequest(context.Background(), &logical.Request{Operation: logical.AuthRenewOperation, Path: "login", Auth: &logical.Auth{TTL: time.Hour}})
	if err != nil || resp.Auth.TTL != time.Minute {
		t.Fatalf("renewal: %v %+v", err, resp)
	}
	none := &fw.Backend{Paths: []*fw.Path{{Pattern: "login"}}}
	if _, err := none.HandleRequest(context.Background(), &logical.Request{Operation: logical.AuthRenewOperation, Path: "login", Auth: &logical.Auth{}}); !errors.Is(err, logical.ErrUnsupportedOperation) {
		t.Fatalf("renewal without AuthRenew: %v", err)
	}
}
