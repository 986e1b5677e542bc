// Package leasetest holds what tests of leases need: a clock a test moves by
// hand, and a stub secrets engine that issues leased secrets and records
// each renewal and revocation, with a switch that makes revocation fail.
package leasetest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/arcasec/arca/internal/logical"
	fw "github.com/arcasec/arca/internal/logical/framework"
)

// Clock is a clock that moves only when Advance is called. Its After
// channels fire when the clock passes their time. It satisfies core.Clock.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

// NewClock returns a clock reading start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After returns a channel that receives the clock's time once it has moved
// d past now.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, waiter{at: c.now.Add(d), ch: ch})
	return ch
}

// Advance moves the clock forward by d and fires the After channels due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- c.now
	}
	c.waiters = kept
}

// Engine is a stub secrets engine. Reading creds/<name> issues a secret
// of type "creds" with data {"username": <unique name>} and a lease of the
// engine's TTL and MaxTTL (0: the mount's). Each attempt at revoking a
// lease is recorded and announced on Revocations.
type Engine struct {
	TTL, MaxTTL time.Duration
	// FailRevoke makes every revocation fail while it is set.
	FailRevoke atomic.Bool
	// Revocations receives every revocation attempt, when not nil; a test
	// gives it room for as many as it expects.
	Revocations chan Revocation
	// RolledBack receives the name in each write-ahead log entry rolled
	// back (see the wal/<name> path), when not nil.
	RolledBack chan string
	// Periodic counts the runs of the periodic function.
	Periodic atomic.Int64

	mu       sync.Mutex
	next     int
	live     map[string]bool
	attempts int
	renewals int
}

// Revocation is one attempt at revoking the lease of User; Err is what the
// engine answered.
type Revocation struct {
	User string
	Err  error
}

// NewEngine returns an engine whose Revocations channel holds up to buffer
// announcements (0: no channel).
func NewEngine(buffer int) *Engine {
	e := &Engine{live: map[string]bool{}}
	if buffer > 0 {
		e.Revocations = make(chan Revocation, buffer)
	}
	return e
}

// Factory mounts the engine (every mount of it shares its state).
func (e *Engine) Factory(_ context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := &fw.Backend{Help: "a stub engine that issues leased secrets"}
	creds := &fw.Secret{
		Type:   "creds",
		Fields: map[string]*fw.FieldSchema{"username": {Type: fw.TypeString}},
		Renew: func(_ context.Context, req *logical.Request, _ *fw.FieldData) (*logical.Response, error) {
			e.mu.Lock()
			e.renewals++
			e.mu.Unlock()
			s := *req.Secret
			s.TTL, s.MaxTTL = e.TTL, e.MaxTTL
			return &logical.Response{Secret: &s}, nil
		},
		Revoke: func(_ context.Context, req *logical.Request, _ *fw.FieldData) (*logical.Response, error) {
			user, _ := req.Secret.InternalData["username"].(string)
			e.mu.Lock()
			e.attempts++
			e.mu.Unlock()
			var err error
			if e.FailRevoke.Load() {
				err = errors.New("the stub's backing service is unreachable")
			} else {
				e.mu.Lock()
				delete(e.live, user)
				e.mu.Unlock()
			}
			if e.Revocations != nil {
				e.Revocations <- Revocation{User: user, Err: err}
			}
			return nil, err
		},
	}
	b.Secrets = []*fw.Secret{creds}
	b.PeriodicFunc = func(context.Context, *logical.Request) error {
		e.Periodic.Add(1)
		return nil
	}
	b.WALRollback = func(_ context.Context, _ *logical.Request, kind string, data any) error {
		name, _ := data.(map[string]any)["name"].(string)
		if kind != "user" || name == "" {
			return fmt.Errorf("unexpected write-ahead log entry %q %v", kind, data)
		}
		if e.RolledBack != nil {
			e.RolledBack <- name
		}
		return nil
	}
	b.Paths = []*fw.Path{{
		// Writing wal/<name> records an entry and "crashes" before the
		// change it announces, so only the rollback ever removes it.
		Pattern: "wal/" + fw.GenericNameRegex("name"),
		Fields:  map[string]*fw.FieldSchema{"name": {Type: fw.TypeString}},
		Operations: map[logical.Operation]fw.OperationFunc{
			logical.UpdateOperation: func(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
				id, err := b.PutWAL(ctx, req.Storage, "user", map[string]any{"name": d.String("name")})
				if err != nil {
					return nil, err
				}
				return &logical.Response{Data: map[string]any{"wal_id": id}}, nil
			},
		},
	}, {
		Pattern: "creds/" + fw.GenericNameRegex("name"),
		Fields:  map[string]*fw.FieldSchema{"name": {Type: fw.TypeString}},
		Operations: map[logical.Operation]fw.OperationFunc{
			logical.ReadOperation: func(_ context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
				e.mu.Lock()
				e.next++
				user := d.String("name") + "-" + strconv.Itoa(e.next)
				e.live[user] = true
				e.mu.Unlock()
				resp := b.Secret("creds").Response(map[string]any{"username": user}, map[string]any{"username": user})
				resp.Secret.TTL, resp.Secret.MaxTTL = e.TTL, e.MaxTTL
				return resp, nil
			},
		},
	}}
	b.Setup(conf)
	return b, nil
}

// Live returns the usernames issued and not yet revoked, sorted.
func (e *Engine) Live() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]string, 0, len(e.live))
	for u := range e.live {
		out = append(out, u)
	}
	sort.Strings(out)
	return out
}

// Attempts returns how many revocations were attempted, failed ones
// included.
func (e *Engine) Attempts() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.attempts
}

// Renewals returns how many renewals reached the engine.
func (e *Engine) Renewals() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.renewals
}
