package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// MigrationLockKey is the key `arca operator migrate` sets in the source
// store while it copies (Vault's name and place): a second migration and a
// server refuse to start on a store that carries it.
const MigrationLockKey = "core/migration"

// MigrationStatus is the value of MigrationLockKey.
type MigrationStatus struct {
	Start time.Time `json:"start"`
}

// MigrationInProgress returns the lock a migration left in s, or nil.
func MigrationInProgress(ctx context.Context, s Storage) (*MigrationStatus, error) {
	e, err := s.Get(ctx, MigrationLockKey)
	if err != nil || e == nil {
		return nil, err
	}
	var st MigrationStatus
	if err := json.Unmarshal(e.Value, &st); err != nil {
		return nil, fmt.Errorf("the migration lock %s is unreadable: %w", MigrationLockKey, err)
	}
	return &st, nil
}

// ResetMigrationLock removes the lock a halted migration left in s.
func ResetMigrationLock(ctx context.Context, s Storage) error {
	return s.Delete(ctx, MigrationLockKey)
}

// MigrateOptions tune Migrate.
type MigrateOptions struct {
	// Start, when set, copies only the keys at or after it (byte order):
	// resuming a halted migration. It also lets the destination hold data
	// already, which a resumed migration's destination does.
	Start string
	// BatchSize is how many keys go to the destination in one transaction
	// (default 256).
	BatchSize int
}

// MigrateResult counts what Migrate copied.
type MigrateResult struct {
	Keys  int
	Bytes int64
}

// ErrDestinationNotEmpty is returned when the destination already holds
// data and no Start was given.
var ErrDestinationNotEmpty = errors.New("the destination storage already holds data")

// Migrate copies every key of from into to, as stored: the values are the
// barrier's ciphertext, so nothing is decrypted and no unseal key is
// needed. Keys are copied in byte order, in batches that are each one
// transaction, so a halted copy resumes with opts.Start at the last key
// reported. The source is not modified, except for MigrationLockKey while
// the copy runs. Both stores must be offline (no server running on them).
func Migrate(ctx context.Context, from, to Backend, opts MigrateOptions) (res MigrateResult, err error) {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 256
	}
	st, err := MigrationInProgress(ctx, from)
	if err != nil {
		return res, fmt.Errorf("checking the source for a migration lock: %w", err)
	}
	if st != nil {
		return res, fmt.Errorf("a storage migration is in progress on the source (started %s); if it was halted, run again with -reset first", st.Start.Format(time.RFC3339))
	}
	if opts.Start == "" {
		top, err := to.List(ctx, "")
		if err != nil {
			return res, fmt.Errorf("checking the destination: %w", err)
		}
		if len(top) > 0 {
			return res, fmt.Errorf("%w (%s): copying into a store in use would mix two stores; use an empty destination, or -start=<key> to resume a halted migration", ErrDestinationNotEmpty, strings.Join(top[:min(len(top), 5)], ", "))
		}
	}
	lock, _ := json.Marshal(MigrationStatus{Start: time.Now().UTC()})
	if err := from.Put(ctx, &Entry{Key: MigrationLockKey, Value: lock}); err != nil {
		return res, fmt.Errorf("setting the migration lock on the source: %w", err)
	}
	defer func() {
		if derr := ResetMigrationLock(context.WithoutCancel(ctx), from); derr != nil {
			err = errors.Join(err, fmt.Errorf("removing the migration lock %s from the source: %w", MigrationLockKey, derr))
		}
	}()

	var batch []Op
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := Apply(ctx, to, batch); err != nil {
			return fmt.Errorf("writing %d keys from %s to the destination: %w", len(batch), batch[0].Entry.Key, err)
		}
		batch = batch[:0]
		return nil
	}
	err = walk(ctx, from, "", opts.Start, func(key string) error {
		if key == MigrationLockKey {
			return nil
		}
		e, err := from.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("reading %s from the source: %w", key, err)
		}
		if e == nil { // deleted since it was listed: the stores are meant to be offline
			return nil
		}
		batch = append(batch, Op{Kind: OpPut, Entry: e})
		res.Keys++
		res.Bytes += int64(len(e.Value))
		if len(batch) >= opts.BatchSize {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	return res, err
}

// walk calls fn for every key below prefix that is at or after start, in
// byte order: List returns children sorted, and every key below a folder
// "a/" sorts between "a/" and the folder's next sibling.
func walk(ctx context.Context, s Storage, prefix, start string, fn func(key string) error) error {
	children, err := s.List(ctx, prefix)
	if err != nil {
		return fmt.Errorf("listing %q in the source: %w", prefix, err)
	}
	for _, c := range children {
		if err := ctx.Err(); err != nil {
			return err
		}
		full := prefix + c
		if strings.HasSuffix(c, "/") {
			// Skip a folder wholly before start.
			if full < start && !strings.HasPrefix(start, full) {
				continue
			}
			if err := walk(ctx, s, full, start, fn); err != nil {
				return err
			}
			continue
		}
		if full < start {
			continue
		}
		if err := fn(full); err != nil {
			return err
		}
	}
	return nil
}
