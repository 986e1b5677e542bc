package core

import (
	"context"
	"strings"

	"github.com/arcasec/arca/internal/storage"
)

// view confines a storage to the keys under prefix: a mount sees only its
// own data and cannot name a key outside it.
type view struct {
	under  storage.Transactional
	prefix string
}

func newView(under storage.Transactional, prefix string) *view {
	return &view{under: under, prefix: prefix}
}

func (v *view) Get(ctx context.Context, key string) (*storage.Entry, error) {
	e, err := v.under.Get(ctx, v.prefix+key)
	if e == nil || err != nil {
		return nil, err
	}
	return &storage.Entry{Key: key, Value: e.Value}, nil
}

func (v *view) Put(ctx context.Context, e *storage.Entry) error {
	return v.under.Put(ctx, &storage.Entry{Key: v.prefix + e.Key, Value: e.Value})
}

func (v *view) Delete(ctx context.Context, key string) error {
	return v.under.Delete(ctx, v.prefix+key)
}

func (v *view) List(ctx context.Context, prefix string) ([]string, error) {
	return v.under.List(ctx, v.prefix+prefix)
}

func (v *view) Transaction(ctx context.Context, ops []storage.Op) error {
	moved := make([]storage.Op, len(ops))
	for i, op := range ops {
		moved[i] = storage.Op{Kind: op.Kind, Entry: &storage.Entry{Key: v.prefix + op.Entry.Key, Value: op.Entry.Value}}
	}
	return v.under.Transaction(ctx, moved)
}

// clear deletes every key in the view, for disabling a mount.
func (v *view) clear(ctx context.Context) error { return v.clearPrefix(ctx, "") }

// clearPrefix deletes every key in the view under prefix.
func (v *view) clearPrefix(ctx context.Context, prefix string) error {
	var walk func(prefix string) error
	walk = func(prefix string) error {
		keys, err := v.List(ctx, prefix)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if strings.HasSuffix(k, "/") {
				if err := walk(prefix + k); err != nil {
					return err
				}
				continue
			}
			if err := v.Delete(ctx, prefix+k); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(prefix)
}
