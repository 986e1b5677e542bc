package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/arcasec/arca/internal/storage"
)

// The HA lock is a row of ha_table with a lifetime (valid_until) that its
// holder renews. PostgreSQL's clock alone judges expiry, so the servers'
// clocks need not agree; the holder judges its own loss on its monotonic
// clock, counting from before the last renewal that succeeded, and gives
// the lock up well before the database would hand it to another server.
// The table has the columns of Vault's PostgreSQL HA table, so one created
// for Vault serves.
//
// A row rather than an advisory lock: an advisory lock lives and dies with
// one session, so it does not survive a pooler (pgbouncer in transaction
// mode hands each statement any backend connection), is lost silently when
// the connection drops and is not carried over to a promoted replica. A
// row is ordinary replicated data, and a lost connection costs only the
// renewals it misses.

// Lock timing. A standby takes the lock at most LockTTL after the holder's
// last renewal (plus one LockRetry): that bounds failover after a crash.
// The holder renews every LockRenew and counts the lock lost once
// LockLostAfter passes with no renewal that succeeded, leaving
// LockTTL-LockLostAfter for it to stop serving before anyone else may
// start.
var (
	LockTTL       = 5 * time.Second
	LockRenew     = time.Second
	LockLostAfter = LockTTL * 2 / 3
	LockRetry     = 500 * time.Millisecond
)

var _ storage.HABackend = (*Backend)(nil)

// HADDL returns the statement that creates the HA table.
func HADDL(table string) (string, error) {
	qt, err := quoteIdent("ha_table", table)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
  ha_key      text PRIMARY KEY,
  ha_identity text NOT NULL,
  ha_value    text,
  valid_until timestamp with time zone NOT NULL
)`, qt), nil
}

// LockWith returns a contender for the lock named key that advertises
// value while it holds it.
func (b *Backend) LockWith(key, value string) (storage.Lock, error) {
	qt, err := quoteIdent("ha_table", b.haTable)
	if err != nil {
		return nil, err
	}
	return &pgLock{b: b, table: qt, key: key, value: value, identity: uuid.NewString()}, nil
}

type pgLock struct {
	b                           *Backend
	table, key, value, identity string

	mu      sync.Mutex
	held    bool
	stop    chan struct{} // ends the renewals
	stopped chan struct{} // closed when they have ended
}

// ensureTable creates the HA table when it is missing. Servers starting
// together may race to create it; the loser's error is not a failure.
// A permanent error (the user may not create it) is returned; others
// (the database unreachable) are retried by the caller.
func (l *pgLock) ensureTable(ctx context.Context) (permanent bool, err error) {
	ddl, err := HADDL(l.b.haTable)
	if err != nil {
		return true, err
	}
	_, err = l.b.pool.Exec(ctx, ddl)
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505", "42P07": // unique_violation on the catalog, duplicate_table
			return false, nil
		case "42501": // insufficient_privilege
			return true, fmt.Errorf("postgresql storage: the database user may not create the HA table (%s); have an administrator run:\n%s\nand grant the user SELECT, INSERT, UPDATE, DELETE on it", pe.Message, ddl)
		}
	}
	if err != nil {
		return false, fmt.Errorf("postgresql storage: creating the HA table: %w", err)
	}
	return false, nil
}

// tryAcquire takes the lock if it is free, expired or already this
// contender's.
func (l *pgLock) tryAcquire(ctx context.Context) (bool, error) {
	tag, err := l.b.pool.Exec(ctx, `INSERT INTO `+l.table+` AS t (ha_key, ha_identity, ha_value, valid_until)
VALUES ($1, $2, $3, now() + $4 * interval '1 millisecond')
ON CONFLICT (ha_key) DO UPDATE SET ha_identity = excluded.ha_identity, ha_value = excluded.ha_value, valid_until = excluded.valid_until
WHERE t.valid_until < now() OR t.ha_identity = excluded.ha_identity`,
		l.key, l.identity, l.value, LockTTL.Milliseconds())
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

func (l *pgLock) renew(ctx context.Context) (bool, error) {
	tag, err := l.b.pool.Exec(ctx, `UPDATE `+l.table+` SET valid_until = now() + $3 * interval '1 millisecond'
WHERE ha_key = $1 AND ha_identity = $2`, l.key, l.identity, LockTTL.Milliseconds())
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

func (l *pgLock) Lock(stopCh <-chan struct{}) (<-chan struct{}, error) {
	l.mu.Lock()
	if l.held {
		l.mu.Unlock()
		return nil, storage.ErrLockHeld
	}
	l.mu.Unlock()
	created := false
	for {
		ctx, cancel := context.WithTimeout(context.Background(), LockLostAfter)
		if !created {
			permanent, err := l.ensureTable(ctx)
			if permanent {
				cancel()
				return nil, err
			}
			created = err == nil
		}
		start := time.Now()
		ok := false
		var err error
		if created {
			ok, err = l.tryAcquire(ctx)
		}
		cancel()
		if err == nil && ok {
			lost := make(chan struct{})
			l.mu.Lock()
			l.held = true
			l.stop, l.stopped = make(chan struct{}), make(chan struct{})
			go l.keep(start, lost, l.stop, l.stopped)
			l.mu.Unlock()
			return lost, nil
		}
		select {
		case <-stopCh:
			return nil, nil
		case <-time.After(LockRetry):
		}
	}
}

// keep renews the lock until stop, and closes lost as soon as the lock
// may no longer be this contender's: a renewal found it taken, or none
// succeeded for LockLostAfter.
func (l *pgLock) keep(lastOK time.Time, lost chan struct{}, stop, stopped chan struct{}) {
	defer close(stopped)
	t := time.NewTicker(LockRenew)
	defer t.Stop()
	for {
		deadline := lastOK.Add(LockLostAfter)
		wait := time.Until(deadline)
		if wait <= 0 {
			close(lost)
			return
		}
		select {
		case <-stop:
			return
		case <-time.After(wait):
			close(lost)
			return
		case <-t.C:
		}
		start := time.Now()
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		ok, err := l.renew(ctx)
		cancel()
		switch {
		case err == nil && ok:
			lastOK = start
		case err == nil && !ok:
			close(lost) // another server holds it now
			return
		}
	}
}

func (l *pgLock) Unlock() error {
	l.mu.Lock()
	if !l.held {
		l.mu.Unlock()
		return nil
	}
	l.held = false
	close(l.stop)
	stopped := l.stopped
	l.mu.Unlock()
	<-stopped
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := l.b.pool.Exec(ctx, `DELETE FROM `+l.table+` WHERE ha_key = $1 AND ha_identity = $2`, l.key, l.identity)
	if err != nil {
		return fmt.Errorf("postgresql storage: releasing the HA lock (it expires within %s on its own): %w", LockTTL, err)
	}
	return nil
}

func (l *pgLock) Value() (bool, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var v *string
	err := l.b.pool.QueryRow(ctx, `SELECT ha_value FROM `+l.table+` WHERE ha_key = $1 AND valid_until > now()`, l.key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, "", nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42P01" { // undefined_table: no server has contended yet
		return false, "", nil
	}
	if err != nil {
		return false, "", fmt.Errorf("postgresql storage: reading the HA lock: %w", err)
	}
	if v == nil {
		return true, "", nil
	}
	return true, *v, nil
}
