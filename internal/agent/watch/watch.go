// Package watch keeps the secrets the agent's templates read fresh. The
// first read of a secret fetches it; from then on the watcher renews a
// renewable lease at about two thirds of its duration, fetches the secret
// anew when the lease cannot be renewed any further (max TTL reached,
// revoked, not renewable), and reads a secret without a lease (KV) again at
// the static interval, signalling a change when its data or version moved.
package watch

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/arcasec/arca/api"
)

// Options tune a Watcher.
type Options struct {
	// StaticInterval is how often a secret without a lease is read again;
	// 5m when zero.
	StaticInterval time.Duration
	// Retries is how many times a failed fetch is retried with backoff
	// before the error is returned to the template (Vault Agent's
	// retry { num_retries }; -1: none).
	Retries int
	Logger  *slog.Logger
}

// Watcher fetches secrets through one client and keeps them fresh. It
// implements template.Source.
type Watcher struct {
	// TODO(helper watch)
}

// New returns a watcher that reads through c (whose token the agent swaps
// with SetToken on re-authentication).
func New(c *api.Client, opts Options) *Watcher {
	return &Watcher{}
}

// Secret returns the cached response for (path, data), fetching it now on
// first use; the pair is watched from then on. Data of KV v2 mounts read
// without the data/ segment is read through it, as consul-template does.
func (w *Watcher) Secret(path string, data map[string]any) (*api.Secret, error) {
	return nil, errors.New("watch: not implemented")
}

// List returns the keys under path (cached and re-listed like a static
// secret).
func (w *Watcher) List(path string) ([]string, error) {
	return nil, errors.New("watch: not implemented")
}

// Changed is signalled (without blocking; one pending signal at most)
// whenever a watched secret's data changed: a new lease replaced an old
// one, or a static secret's content differs from the last read.
func (w *Watcher) Changed() <-chan struct{} {
	return nil
}

// TokenChanged tells the watcher the client now carries a new token: leases
// taken under the old one may be revoked with it, so every watched secret
// is fetched again (and Changed signalled for those that differ).
func (w *Watcher) TokenChanged() {}

// Run renews and refetches until ctx ends. Errors are logged and retried
// with backoff; Run returns ctx's error, or an error when retries ran out
// and exitOnRetryFailure was asked for.
func (w *Watcher) Run(ctx context.Context, exitOnRetryFailure bool) error {
	<-ctx.Done()
	return ctx.Err()
}
