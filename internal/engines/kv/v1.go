package kv

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/arcasec/arca/internal/logical"
	fw "github.com/arcasec/arca/internal/logical/framework"
	"github.com/arcasec/arca/internal/storage"
)

type v1 struct{ conf *logical.BackendConfig }

func newV1(conf *logical.BackendConfig) logical.Backend {
	b := &v1{conf: conf}
	return &fw.Backend{
		Help: "KV v1: one JSON object per path, no versions.",
		Paths: []*fw.Path{{
			Pattern:             "(?P<path>.*)",
			TakesArbitraryInput: true,
			Fields:              map[string]*fw.FieldSchema{"path": {Type: fw.TypeString}},
			ExistenceCheck:      b.exists,
			Operations: map[logical.Operation]fw.OperationFunc{
				logical.ReadOperation:   b.read,
				logical.CreateOperation: b.write,
				logical.UpdateOperation: b.write,
				logical.DeleteOperation: b.delete,
				logical.ListOperation:   b.list,
			},
		}},
	}
}

func (b *v1) exists(ctx context.Context, req *logical.Request, d *fw.FieldData) (bool, error) {
	e, err := req.Storage.Get(ctx, d.String("path"))
	return e != nil, err
}

func (b *v1) read(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	var data map[string]any
	found, err := getJSON(ctx, req.Storage, d.String("path"), &data)
	if err != nil || !found {
		return nil, err
	}
	resp := &logical.Response{Data: data, Secret: &logical.Secret{}}
	if raw, ok := data["ttl"]; ok {
		if ttl, err := fw.ParseDuration(raw); err == nil && ttl > 0 {
			resp.Secret.TTL = ttl
		}
	} else if raw, ok := data["lease"]; ok {
		if ttl, err := fw.ParseDuration(raw); err == nil && ttl > 0 {
			resp.Secret.TTL = ttl
		}
	}
	return resp, nil
}

func (b *v1) write(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	path := d.String("path")
	if path == "" || strings.HasSuffix(path, "/") {
		return nil, logical.BadRequest("a secret path must not be empty or end in '/'")
	}
	if len(req.Data) == 0 {
		return nil, logical.BadRequest("missing data fields")
	}
	for _, k := range []string{"ttl", "lease"} {
		if v, ok := req.Data[k]; ok {
			if _, err := fw.ParseDuration(v); err != nil {
				return nil, logical.BadRequest("invalid value for field %q: %v", k, err)
			}
		}
	}
	raw, err := json.Marshal(req.Data)
	if err != nil {
		return nil, logical.BadRequest("the data cannot be stored as JSON: %v", err)
	}
	return nil, req.Storage.Put(ctx, &storage.Entry{Key: path, Value: raw})
}

func (b *v1) delete(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	return nil, req.Storage.Delete(ctx, d.String("path"))
}

func (b *v1) list(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	keys, err := req.Storage.List(ctx, d.String("path"))
	if err != nil {
		return nil, err
	}
	return listResponse(keys), nil
}
