package storage

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

var boltBucket = []byte("arca")

// Bolt is the embedded default backend: one bbolt file. Every acknowledged
// write is fsync'd; concurrent writers share a commit (group commit) through
// bbolt's Batch, so durability costs one fsync per batch, not per write.
type Bolt struct {
	db *bolt.DB
}

// OpenBolt opens (creating if needed) the database file at path.
func OpenBolt(path string) (*Bolt, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating the storage directory: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("opening bolt database %s: %w", path, err)
	}
	// Commit as soon as the writers waiting together are in: a short delay
	// gathers concurrent requests without slowing a lone writer much.
	db.MaxBatchDelay = 2 * time.Millisecond
	db.MaxBatchSize = 256
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(boltBucket)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("preparing bolt database %s: %w", path, err)
	}
	return &Bolt{db: db}, nil
}

func (b *Bolt) Get(_ context.Context, key string) (*Entry, error) {
	var e *Entry
	err := b.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(boltBucket).Get([]byte(key)); v != nil {
			e = &Entry{Key: key, Value: append([]byte(nil), v...)}
		}
		return nil
	})
	return e, err
}

func (b *Bolt) Put(ctx context.Context, e *Entry) error {
	return b.Transaction(ctx, []Op{{Kind: OpPut, Entry: e}})
}

func (b *Bolt) Delete(ctx context.Context, key string) error {
	return b.Transaction(ctx, []Op{{Kind: OpDelete, Entry: &Entry{Key: key}}})
}

func (b *Bolt) List(_ context.Context, prefix string) ([]string, error) {
	var out []string
	err := b.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(boltBucket).Cursor()
		p := []byte(prefix)
		for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
			out = appendChild(out, prefix, string(k))
		}
		return nil
	})
	return out, err
}

// Transaction applies ops atomically and durably. Batch may run the
// function more than once; it only sets keys, so that is harmless.
func (b *Bolt) Transaction(_ context.Context, ops []Op) error {
	return b.db.Batch(func(tx *bolt.Tx) error {
		bk := tx.Bucket(boltBucket)
		for _, op := range ops {
			var err error
			if op.Kind == OpDelete {
				err = bk.Delete([]byte(op.Entry.Key))
			} else {
				err = bk.Put([]byte(op.Entry.Key), op.Entry.Value)
			}
			if err != nil {
				return fmt.Errorf("bolt: %w", err)
			}
		}
		return nil
	})
}

func (b *Bolt) Close() error { return b.db.Close() }
