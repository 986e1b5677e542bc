package core

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/arcasec/arca/internal/logical"
	fw "github.com/arcasec/arca/internal/logical/framework"
	"github.com/arcasec/arca/internal/storage"
)

// cubbyholeBackend is per-token private storage: each token sees only its
// own keys, stored under a hash of the token.
type cubbyholeBackend struct{ core *Core }

func newCubbyholeBackend(c *Core) logical.Backend {
	b := &cubbyholeBackend{core: c}
	return &fw.Backend{
		Help: "Per-token private secret storage; data is destroyed with the token.",
		Paths: []*fw.Path{{
			Pattern:             "(?P<path>.*)",
			TakesArbitraryInput: true,
			Fields:              map[string]*fw.FieldSchema{"path": {Type: fw.TypeString}},
			Operations: map[logical.Operation]fw.OperationFunc{
				logical.ReadOperation:   b.read,
				logical.UpdateOperation: b.write,
				logical.DeleteOperation: b.delete,
				logical.ListOperation:   b.list,
			},
		}},
	}
}

func (b *cubbyholeBackend) key(req *logical.Request, path string) (string, error) {
	if req.ClientToken == "" {
		return "", logical.ErrPermissionDenied
	}
	if strings.Contains(path, "..") {
		return "", logical.BadRequest("path must not contain '..'")
	}
	return cubbyholeKey(req.ClientToken, path), nil
}

// cubbyholeKey is where a token's cubbyhole keeps path: under a hash of
// the token, so storage never holds the token itself.
func cubbyholeKey(token, path string) string { return hashID(token) + "/" + path }

func (b *cubbyholeBackend) read(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	k, err := b.key(req, d.String("path"))
	if err != nil {
		return nil, err
	}
	var data map[string]any
	found, err := getJSONFrom(ctx, req.Storage, k, &data)
	if err != nil || !found {
		return nil, err
	}
	return &logical.Response{Data: data}, nil
}

func (b *cubbyholeBackend) write(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	path := d.String("path")
	if path == "" || strings.HasSuffix(path, "/") {
		return nil, logical.BadRequest("missing path")
	}
	k, err := b.key(req, path)
	if err != nil {
		return nil, err
	}
	if len(req.Data) == 0 {
		return nil, logical.BadRequest("missing data fields")
	}
	raw, err := json.Marshal(req.Data)
	if err != nil {
		return nil, logical.BadRequest("data cannot be stored: %v", err)
	}
	return nil, req.Storage.Put(ctx, &storage.Entry{Key: k, Value: raw})
}

func (b *cubbyholeBackend) delete(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	k, err := b.key(req, d.String("path"))
	if err != nil {
		return nil, err
	}
	return nil, req.Storage.Delete(ctx, k)
}

func (b *cubbyholeBackend) list(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	k, err := b.key(req, d.String("path"))
	if err != nil {
		return nil, err
	}
	keys, err := req.Storage.List(ctx, k)
	if err != nil {
		return nil, err
	}
	return listResponse(keys), nil
}

// destroyCubbyhole deletes everything the token whose ID hashes to
// tokenHash keeps in its cubbyhole. The token store calls it on every
// revocation, whatever caused it.
func (c *Core) destroyCubbyhole(ctx context.Context, tokenHash string) error {
	if c.mounts == nil {
		return nil
	}
	m := c.mounts.get("cubbyhole/")
	if m == nil {
		return nil
	}
	return m.view.clearPrefix(ctx, tokenHash+"/")
}
