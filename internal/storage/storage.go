// Package storage defines the physical storage interface Arca's core writes
// through, and its implementations: inmem (dev mode and tests), bolt (the
// embedded default) and postgres (its own package, registered with
// Register; HA).
//
// Storage sees only ciphertext: everything above it goes through the barrier.
package storage

import (
	"context"
	"errors"
)

// Entry is one key and its value.
type Entry struct {
	Key   string
	Value []byte
}

// Storage is the key/value surface shared by physical backends, the barrier
// and the per-mount views handed to secrets engines.
//
// Keys are slash-separated paths. List returns the immediate children of
// prefix (which is empty or ends in "/"), sorted; a child that has children of
// its own is returned once, with a trailing "/".
type Storage interface {
	// Get returns the entry at key, or nil and no error when there is none.
	Get(ctx context.Context, key string) (*Entry, error)
	Put(ctx context.Context, entry *Entry) error
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	List(ctx context.Context, prefix string) ([]string, error)
}

// OpKind says what a transaction operation does.
type OpKind int

const (
	OpPut OpKind = iota
	OpDelete
)

// Op is one write inside a transaction. For OpDelete only Entry.Key is used.
type Op struct {
	Kind  OpKind
	Entry *Entry
}

// Transactional is implemented by storages that apply a set of writes
// atomically: either every Op is durable or none is.
type Transactional interface {
	Storage
	Transaction(ctx context.Context, ops []Op) error
}

// Backend is a physical storage backend.
type Backend interface {
	Transactional
	// Close releases the backend's resources (files, connections).
	Close() error
}

// ErrReadOnly is returned by writes to a view that refuses them.
var ErrReadOnly = errors.New("storage is read-only")

// Apply writes ops as one transaction when s supports transactions, and
// otherwise one at a time, in order: callers put the write that commits a
// change (metadata, an index) last, so a crash never leaves it pointing at
// data that is not there.
func Apply(ctx context.Context, s Storage, ops []Op) error {
	if t, ok := s.(Transactional); ok {
		return t.Transaction(ctx, ops)
	}
	for _, op := range ops {
		var err error
		if op.Kind == OpDelete {
			err = s.Delete(ctx, op.Entry.Key)
		} else {
			err = s.Put(ctx, op.Entry)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
