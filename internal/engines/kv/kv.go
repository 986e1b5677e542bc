// Package kv is the key/value secrets engine, in both of Vault's versions:
// v1 stores one JSON object per path; v2 keeps versions with metadata,
// check-and-set, soft delete, undelete and destroy.
package kv

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sync"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/storage"
)

// Factory builds a v1 or v2 backend from the mount's options.version.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	switch v := conf.Options["version"]; v {
	case "", "1":
		return newV1(conf), nil
	case "2":
		return newV2(conf), nil
	default:
		return nil, fmt.Errorf("kv: unsupported version %q (1 or 2)", v)
	}
}

// keyLocks serialises read-modify-write cycles on the same key.
type keyLocks [64]sync.Mutex

func (l *keyLocks) lock(key string) func() {
	h := fnv.New32a()
	h.Write([]byte(key))
	m := &l[h.Sum32()%uint32(len(l))]
	m.Lock()
	return m.Unlock
}

func getJSON(ctx context.Context, s logical.Storage, key string, v any) (bool, error) {
	e, err := s.Get(ctx, key)
	if err != nil || e == nil {
		return false, err
	}
	if err := json.Unmarshal(e.Value, v); err != nil {
		return false, fmt.Errorf("kv: decoding %q: %w", key, err)
	}
	return true, nil
}

func putOp(key string, v any) (storage.Op, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return storage.Op{}, logical.BadRequest("the data cannot be stored as JSON: %v", err)
	}
	return storage.Op{Kind: storage.OpPut, Entry: &storage.Entry{Key: key, Value: raw}}, nil
}

func listResponse(keys []string) *logical.Response {
	if len(keys) == 0 {
		return nil
	}
	return &logical.Response{Data: map[string]any{"keys": keys}}
}
