package core

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/arcasec/arca/internal/storage"
)

func putJSONTo(ctx context.Context, s storage.Storage, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.Put(ctx, &storage.Entry{Key: key, Value: raw})
}

func getJSONFrom(ctx context.Context, s storage.Storage, key string, v any) (bool, error) {
	e, err := s.Get(ctx, key)
	if err != nil || e == nil {
		return false, err
	}
	return true, json.Unmarshal(e.Value, v)
}

// mustJSONEntry encodes v, which must be one of the core's own record types
// (they always encode), as a storage entry.
func mustJSONEntry(key string, v any) *storage.Entry {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("core: encoding %T: %v", v, err))
	}
	return &storage.Entry{Key: key, Value: raw}
}
