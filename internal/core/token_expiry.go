package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/arcasec/arca/internal/storage"
)

// Token expiry is driven by the expiration manager, through the same time
// index as leases: a token with an expiry has one by-time key, written in
// the same transaction as the token entry whenever its expiry is set or
// changes, and deleted with the entry. The loop revokes the tokens it finds
// due (with their children, leases and cubbyholes) exactly as it revokes
// leases, retrying failures with the same backoff; nothing ever reads
// every token to find the expired ones.
//
// A token's by-time key is told from a lease's by its name: after the due
// time comes "t" and the full hash of the token ID, where a lease has hex
// only. Its value records failed revocation attempts, {} before any.

// tokenKeyMark starts the name part of a token's by-time key.
const tokenKeyMark = ".t"

func tokenTimeKey(due time.Time, tokenHash string) string {
	return fmt.Sprintf("%s%012d/%020d%s%s", leaseTimePrefix, bucketOf(due), due.UnixNano(), tokenKeyMark, tokenHash)
}

// tokenOfTimeKey returns the token hash a by-time key names, or "" for a
// lease's key. key may be a full by-time key or its name within a bucket.
func tokenOfTimeKey(key string) string {
	name := key[strings.LastIndexByte(key, '/')+1:]
	if i := strings.Index(name, tokenKeyMark); i >= 0 {
		return name[i+len(tokenKeyMark):]
	}
	return ""
}

// tokenExpiryRecord is the value of a token's by-time key.
type tokenExpiryRecord struct {
	RevokeAttempts  int    `json:"revoke_attempts,omitempty"`
	LastRevokeError string `json:"last_revoke_error,omitempty"`
}

// applyTokenOps stores ops of the token store's view together with the
// move of token h's by-time key from expiry from to expiry to (zero: no
// key), in one transaction. Without an expiration manager (before unseal
// completes) the ops are applied alone.
func (ts *tokenStore) applyTokenOps(ctx context.Context, ops []storage.Op, h string, from, to time.Time) error {
	em := ts.core.expiration
	tv, ok := ts.view.(*view)
	if em == nil || !ok || from.Equal(to) {
		return storage.Apply(ctx, ts.view, ops)
	}
	var expOps []storage.Op
	b := int64(-1)
	if !to.IsZero() {
		b = bucketOf(to)
		expOps = append(expOps, storage.Op{Kind: storage.OpPut, Entry: &storage.Entry{Key: tokenTimeKey(to, h), Value: []byte("{}")}})
		expOps = append(expOps, em.pin(b)...)
		defer em.unpin(b)
	}
	if !from.IsZero() {
		expOps = append(expOps, storage.Op{Kind: storage.OpDelete, Entry: &storage.Entry{Key: tokenTimeKey(from, h)}})
	}
	all := make([]storage.Op, 0, len(ops)+len(expOps))
	for _, op := range ops {
		all = append(all, storage.Op{Kind: op.Kind, Entry: &storage.Entry{Key: tv.prefix + op.Entry.Key, Value: op.Entry.Value}})
	}
	for _, op := range expOps {
		all = append(all, storage.Op{Kind: op.Kind, Entry: &storage.Entry{Key: em.view.prefix + op.Entry.Key, Value: op.Entry.Value}})
	}
	return tv.under.Transaction(ctx, all)
}

// expireToken acts on a due by-time key of a token: it revokes the token's
// tree if the token has expired, and otherwise puts the key right (the
// token was renewed, or is gone). A failed revocation is rescheduled with
// backoff and never dropped.
func (em *expiration) expireToken(ctx context.Context, key, h string) error {
	ts := em.core.tokens
	te, err := ts.loadByHash(ctx, h)
	if err != nil {
		return err
	}
	now := em.clock.Now()
	if te == nil {
		return em.view.Delete(ctx, key) // revoked meanwhile
	}
	if !te.expired(now) {
		// Renewed, or never expiring: the key for its real expiry is the
		// one that counts.
		if te.ExpireTime.IsZero() || tokenTimeKey(te.ExpireTime, h) != key {
			return em.moveTokenKey(ctx, key, h, te.ExpireTime, nil)
		}
		return nil
	}
	if err := ts.revokeHashTree(ctx, h); err != nil {
		var rec tokenExpiryRecord
		if e, gerr := em.view.Get(ctx, key); gerr == nil && e != nil {
			_ = json.Unmarshal(e.Value, &rec)
		}
		rec.RevokeAttempts++
		rec.LastRevokeError = err.Error()
		next := now.UTC().Add(revokeBackoff(rec.RevokeAttempts))
		if merr := em.moveTokenKey(ctx, key, h, next, &rec); merr != nil {
			return errors.Join(err, merr)
		}
		return err
	}
	// revokeOne deleted the key of the token's expiry; a retry's key is
	// another one.
	return em.view.Delete(ctx, key)
}

// moveTokenKey replaces a token's by-time key with one due at due (zero:
// none), carrying rec.
func (em *expiration) moveTokenKey(ctx context.Context, old, h string, due time.Time, rec *tokenExpiryRecord) error {
	ops := []storage.Op{{Kind: storage.OpDelete, Entry: &storage.Entry{Key: old}}}
	if due.IsZero() {
		return em.view.Transaction(ctx, ops)
	}
	if rec == nil {
		rec = &tokenExpiryRecord{}
	}
	nk := tokenTimeKey(due, h)
	if nk == old {
		ops = nil
	}
	b := bucketOf(due)
	ops = append(ops, mustJSONEntryOp(nk, rec))
	ops = append(ops, em.pin(b)...)
	defer em.unpin(b)
	return em.view.Transaction(ctx, ops)
}

func mustJSONEntryOp(key string, v any) storage.Op {
	return storage.Op{Kind: storage.OpPut, Entry: mustJSONEntry(key, v)}
}

// indexTokenExpiry gives an expiring token its by-time key if it has none
// (tokens stored before the index existed), for auth/token/tidy.
func (ts *tokenStore) indexTokenExpiry(ctx context.Context, h string, te *TokenEntry) error {
	em := ts.core.expiration
	if em == nil || te.ExpireTime.IsZero() {
		return nil
	}
	key := tokenTimeKey(te.ExpireTime, h)
	if e, err := em.view.Get(ctx, key); err != nil || e != nil {
		return err
	}
	b := bucketOf(te.ExpireTime)
	ops := append([]storage.Op{{Kind: storage.OpPut, Entry: &storage.Entry{Key: key, Value: []byte("{}")}}}, em.pin(b)...)
	defer em.unpin(b)
	return em.view.Transaction(ctx, ops)
}
