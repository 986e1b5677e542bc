package framework

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/arcasec/arca/internal/logical"
)

// The write-ahead log lets a backend undo a change that a crash left half
// done. Before an external change (creating a database user), the backend
// records what it is about to do with PutWAL; once the change is complete
// and its lease exists it deletes the entry with DeleteWAL. An entry still
// present after WALRollbackMinAge is handed to the backend's WALRollback on
// the next RollbackOperation and deleted once that succeeds.

// walPrefix is where WAL entries live in a backend's storage.
const walPrefix = "wal/"

// WALEntry is one write-ahead log record.
type WALEntry struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	Data      any       `json:"data"`
	CreatedAt time.Time `json:"created_at"`
}

// DefaultWALRollbackMinAge is the age a WAL entry must reach before it is
// rolled back when Backend.WALRollbackMinAge is 0: long enough that the
// request that wrote it has finished or failed.
const DefaultWALRollbackMinAge = 10 * time.Minute

// PutWAL records that the backend is about to make a change of the given
// kind, with data describing how to undo it (stored as JSON, handed back
// decoded: objects as map[string]any). It returns the entry's ID.
func (b *Backend) PutWAL(ctx context.Context, s logical.Storage, kind string, data any) (string, error) {
	id, err := randomID()
	if err != nil {
		return "", err
	}
	raw, err := json.Marshal(&WALEntry{ID: id, Kind: kind, Data: data, CreatedAt: b.now()})
	if err != nil {
		return "", fmt.Errorf("encoding a write-ahead log entry: %w", err)
	}
	if err := s.Put(ctx, &logical.StorageEntry{Key: walPrefix + id, Value: raw}); err != nil {
		return "", fmt.Errorf("storing a write-ahead log entry: %w", err)
	}
	return id, nil
}

// WALKey is the storage key of the entry with the given ID, for
// logical.Secret.WALKey.
func WALKey(id string) string { return walPrefix + id }

// GetWAL returns the entry with the given ID, or nil.
func (b *Backend) GetWAL(ctx context.Context, s logical.Storage, id string) (*WALEntry, error) {
	e, err := s.Get(ctx, walPrefix+id)
	if err != nil || e == nil {
		return nil, err
	}
	var w WALEntry
	if err := json.Unmarshal(e.Value, &w); err != nil {
		return nil, fmt.Errorf("decoding write-ahead log entry %s: %w", id, err)
	}
	return &w, nil
}

// DeleteWAL removes an entry once its change is complete (or undone).
func (b *Backend) DeleteWAL(ctx context.Context, s logical.Storage, id string) error {
	return s.Delete(ctx, walPrefix+id)
}

// ListWAL returns the IDs of the entries present.
func (b *Backend) ListWAL(ctx context.Context, s logical.Storage) ([]string, error) {
	return s.List(ctx, walPrefix)
}

// rollback serves a RollbackOperation: the periodic function, then the
// rollback of every WAL entry old enough. An entry whose rollback fails
// stays for the next round.
func (b *Backend) rollback(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	var errs []error
	if b.PeriodicFunc != nil {
		if err := b.PeriodicFunc(ctx, req); err != nil {
			errs = append(errs, fmt.Errorf("periodic function: %w", err))
		}
	}
	if b.WALRollback != nil && req.Storage != nil {
		errs = append(errs, b.rollbackWAL(ctx, req))
	}
	return nil, errors.Join(errs...)
}

func (b *Backend) rollbackWAL(ctx context.Context, req *logical.Request) error {
	ids, err := b.ListWAL(ctx, req.Storage)
	if err != nil {
		return fmt.Errorf("listing the write-ahead log: %w", err)
	}
	minAge := b.WALRollbackMinAge
	if minAge == 0 {
		minAge = DefaultWALRollbackMinAge
	}
	now := b.now()
	var errs []error
	for _, id := range ids {
		w, err := b.GetWAL(ctx, req.Storage, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if w == nil || now.Sub(w.CreatedAt) < minAge {
			continue
		}
		if err := b.WALRollback(ctx, req, w.Kind, w.Data); err != nil {
			errs = append(errs, fmt.Errorf("rolling back write-ahead log entry %s (%s): %w", id, w.Kind, err))
			continue
		}
		if err := b.DeleteWAL(ctx, req.Storage, id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
