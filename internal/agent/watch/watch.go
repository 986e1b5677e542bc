// Package watch keeps the secrets the agent's templates read fresh. The
// first read of a secret fetches it; from then on the watcher renews a
// renewable lease at about two thirds of its duration, fetches the secret
// anew when the lease cannot be renewed any further (max TTL reached,
// revoked, not renewable), and reads a secret without a lease (KV) again at
// the static interval, signalling a change when its data or version moved.
//
// All the background work happens in Run's one goroutine, driven by a heap
// of due times and one timer: an idle agent wakes only when some secret is
// due, however many templates it serves. A failed fetch or renewal never
// blocks that goroutine: it is scheduled again with exponential backoff and
// the previous data stays in use.
package watch

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
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
	// retry { num_retries }; 0 means the default, 12; -1: none).
	Retries int
	// RenewalThreshold is the share of a non-renewable lease (or of a
	// certificate's life) after which the secret is fetched again
	// (template_config's lease_renewal_threshold); 0.9 when zero.
	RenewalThreshold float64
	Logger           *slog.Logger
	// OnPermissionDenied, when set, is called (it must not block) each
	// time a read, list or renewal is refused with 403, so that the agent
	// can check whether its token was revoked on the server.
	OnPermissionDenied func()
}

// DefaultStaticInterval is Options.StaticInterval when it is zero (Vault
// Agent's static_secret_render_interval default).
const DefaultStaticInterval = 5 * time.Minute

// DefaultRetries is Options.Retries when it is zero (Vault Agent's
// num_retries default).
const DefaultRetries = 12

// Backoff bounds: the first retry waits about backoffBase, each further
// one twice as long, never more than about backoffMax.
const (
	backoffBase = 250 * time.Millisecond
	backoffMax  = time.Minute
)

// DefaultRenewalThreshold is Options.RenewalThreshold when it is zero.
const DefaultRenewalThreshold = 0.9

// ErrNotFound is what Secret returns (wrapped, naming the path) when no
// secret exists at a path, or the KV v2 version read is deleted.
var ErrNotFound = errors.New("no secret exists")

// Watcher fetches secrets through one client and keeps them fresh. It
// implements template.Source. Its methods are safe for concurrent use.
type Watcher struct {
	c         *api.Client
	static    time.Duration
	retries   int
	threshold float64
	log       *slog.Logger
	denied    func() // Options.OnPermissionDenied, or nil

	// ctx bounds the synchronous fetches of Secret and List; it ends when
	// Run returns.
	ctx    context.Context
	cancel context.CancelFunc

	changed chan struct{}
	wake    chan struct{}

	mu      sync.Mutex
	entries map[string]*entry
	mounts  map[string]*api.MountInfo // by mount path ("secret/")
	queue   queue
	gen     uint64 // bumped by TokenChanged
	// epoch counts renders (BeginRender); an entry remembers the last
	// epoch that read it, and Prune drops those the last render did not.
	epoch uint64
}

// New returns a watcher that reads through c (whose token the agent swaps
// with SetToken on re-authentication).
func New(c *api.Client, opts Options) *Watcher {
	w := &Watcher{
		c:         c,
		static:    opts.StaticInterval,
		retries:   opts.Retries,
		threshold: opts.RenewalThreshold,
		log:       opts.Logger,
		changed:   make(chan struct{}, 1),
		wake:      make(chan struct{}, 1),
		entries:   map[string]*entry{},
		mounts:    map[string]*api.MountInfo{},
		denied:    opts.OnPermissionDenied,
	}
	if w.static <= 0 {
		w.static = DefaultStaticInterval
	}
	if w.threshold <= 0 || w.threshold >= 1 {
		w.threshold = DefaultRenewalThreshold
	}
	switch {
	case w.retries == 0:
		w.retries = DefaultRetries
	case w.retries < 0:
		w.retries = 0
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	return w
}

type kind int

const (
	kindRead kind = iota
	kindWrite
	kindList
)

type action int

const (
	actRefetch action = iota
	actRenew
)

// entry is one watched (path, data) pair.
type entry struct {
	key   string
	kind  kind
	path  string // as the template named it, without its query
	query url.Values
	data  map[string]any

	used    uint64 // the render epoch that last read it
	dropped bool   // pruned: never queued again

	// target is the path actually read: path, or its KV v2 form; "" until
	// the mount has been asked about.
	target string

	ready  chan struct{} // closed when the first fetch ended
	secret *api.Secret   // last good response (never mutated once stored)
	keys   []string      // for lists
	err    error         // last fetch error while there is no good response

	// Schedule.
	next     time.Time
	act      action
	index    int // in the queue; -1 when not queued
	failures int // consecutive failed attempts

	// Lease, for renewable secrets.
	leaseStart time.Time
	leaseDur   time.Duration
	increment  int64 // seconds asked at each renewal: the first lease_duration
	grace      time.Duration
}

func (e *entry) String() string {
	if e.kind == kindList {
		return "list " + e.path
	}
	return e.path
}

// Secret returns the cached response for (path, data), fetching it now on
// first use; the pair is watched from then on. Data of KV v2 mounts read
// without the data/ segment is read through it, as consul-template does. A
// path may carry a query ("secret/app?version=2"), sent with the read.
//
// The returned secret is shared: callers must not change it. After the
// first good response, Secret keeps answering with the last good one even
// while refreshing it fails.
func (w *Watcher) Secret(path string, data map[string]any) (*api.Secret, error) {
	k := kindRead
	if len(data) > 0 {
		k = kindWrite
	}
	e, err := w.get(k, path, data)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if e.secret == nil {
		return nil, e.err
	}
	return e.secret, nil
}

// List returns the keys under path (cached and re-listed like a static
// secret). On a KV v2 mount the keys are listed under metadata/. Nothing
// under path is an empty list, not an error.
func (w *Watcher) List(path string) ([]string, error) {
	e, err := w.get(kindList, path, nil)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if e.keys == nil && e.err != nil {
		return nil, e.err
	}
	return slices.Clone(e.keys), nil
}

// Changed is signalled (without blocking; one pending signal at most)
// whenever a watched secret's data changed: a new lease replaced an old
// one, or a static secret's content differs from the last read.
func (w *Watcher) Changed() <-chan struct{} {
	return w.changed
}

// Leases returns the lease IDs of the secrets the watcher holds now, for a
// caller that revokes them when it is done with them (arca run).
func (w *Watcher) Leases() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var ids []string
	for _, e := range w.entries {
		if e.secret != nil && e.secret.LeaseID != "" {
			ids = append(ids, e.secret.LeaseID)
		}
	}
	slices.Sort(ids)
	return ids
}

// BeginRender starts a render of every template: the secrets read from now
// until Prune are the ones still in use.
func (w *Watcher) BeginRender() {
	w.mu.Lock()
	w.epoch++
	w.mu.Unlock()
}

// Prune stops watching the secrets the render since BeginRender did not
// read (a template that ranges over a list whose key went away, a branch
// no longer taken), as consul-template drops unused dependencies. Call it
// only after a render in which every template rendered, so nothing a
// failed template would have read is dropped. It returns how many went.
func (w *Watcher) Prune() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for key, e := range w.entries {
		if e.used == w.epoch {
			continue
		}
		select {
		case <-e.ready:
		default:
			continue // its first fetch is under way
		}
		delete(w.entries, key)
		e.dropped = true
		if e.index >= 0 {
			heap.Remove(&w.queue, e.index)
		}
		n++
		w.log.Debug("no template reads this secret any more; it is no longer watched", "path", e.String())
	}
	return n
}

// TokenChanged tells the watcher the client now carries a new token: leases
// taken under the old one may be revoked with it, so every watched secret
// is fetched again (and Changed signalled for those that differ).
func (w *Watcher) TokenChanged() {
	w.mu.Lock()
	w.gen++
	now := time.Now()
	for _, e := range w.queue {
		e.act, e.next = actRefetch, now
	}
	heap.Init(&w.queue)
	w.mu.Unlock()
	w.poke()
}

// Run renews and refetches until ctx ends. Errors are logged and retried
// with backoff; Run returns ctx's error, or an error when retries ran out
// and exitOnRetryFailure was asked for. When Run returns, fetches still
// waiting in Secret or List give up. Run is called once.
func (w *Watcher) Run(ctx context.Context, exitOnRetryFailure bool) error {
	defer w.cancel()
	stop := context.AfterFunc(ctx, w.cancel)
	defer stop()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		w.mu.Lock()
		var due *entry
		wait := time.Duration(-1)
		if len(w.queue) > 0 {
			if d := time.Until(w.queue[0].next); d <= 0 {
				due = heap.Pop(&w.queue).(*entry)
			} else {
				wait = d
			}
		}
		gen := w.gen
		w.mu.Unlock()

		if due != nil {
			if err := w.process(ctx, due, gen, exitOnRetryFailure); err != nil {
				return err
			}
			continue
		}
		var tick <-chan time.Time
		if wait >= 0 {
			timer.Reset(wait)
			tick = timer.C
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.wake:
			timer.Stop()
		case <-tick:
		}
	}
}

// poke wakes Run to look at the queue again.
func (w *Watcher) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *Watcher) signal() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

// get returns the entry for the pair, creating and fetching it (with
// retries) on first use; concurrent first callers wait for one fetch.
func (w *Watcher) get(k kind, raw string, data map[string]any) (*entry, error) {
	p, query, err := splitPath(raw)
	if err != nil {
		return nil, err
	}
	key := p
	if query != nil {
		key += "?" + query.Encode()
	}
	switch k {
	case kindList:
		key = "list:" + key
	case kindWrite:
		b, err := json.Marshal(data) // map keys come out sorted: canonical
		if err != nil {
			return nil, fmt.Errorf("the data written to %s cannot be encoded: %w", p, err)
		}
		key = "write:" + key + "\x00" + string(b)
	default:
		key = "read:" + key
	}

	w.mu.Lock()
	e, ok := w.entries[key]
	if ok {
		e.used = w.epoch
	} else {
		e = &entry{key: key, kind: k, path: p, query: query, data: data, ready: make(chan struct{}), index: -1, used: w.epoch}
		w.entries[key] = e
		gen := w.gen
		w.mu.Unlock()
		w.first(e, gen)
		return e, nil
	}
	w.mu.Unlock()
	select {
	case <-e.ready:
		return e, nil
	default:
	}
	select {
	case <-e.ready:
		return e, nil
	case <-w.ctx.Done():
		return nil, fmt.Errorf("reading %s: the agent is stopping", e)
	}
}

func splitPath(raw string) (string, url.Values, error) {
	raw = strings.Trim(strings.TrimSpace(raw), "/")
	if raw == "" {
		return "", nil, errors.New("a secret's path is empty")
	}
	p, q, hasQuery := strings.Cut(raw, "?")
	p = strings.Trim(p, "/")
	if p == "" {
		return "", nil, fmt.Errorf("the secret path %q names no path", raw)
	}
	if !hasQuery {
		return p, nil, nil
	}
	values, err := url.ParseQuery(q)
	if err != nil {
		return "", nil, fmt.Errorf("the query of the secret path %q: %w", p, err)
	}
	return p, values, nil
}

// first fetches a new entry, retrying with backoff, and queues it.
func (w *Watcher) first(e *entry, gen uint64) {
	res, err := w.fetchRetrying(e)
	w.checkDenied(err)
	now := time.Now()
	w.mu.Lock()
	if err != nil {
		e.err = err
		e.failures = 1
		w.queueAt(e, actRefetch, now.Add(backoff(1)), gen)
	} else {
		w.store(e, res, now, gen)
	}
	close(e.ready)
	w.mu.Unlock()
	w.poke()
}

// fetchRetrying fetches e, retrying failures that may pass (5xx, no
// connection) with exponential backoff up to the retry budget.
func (w *Watcher) fetchRetrying(e *entry) (result, error) {
	for attempt := 0; ; attempt++ {
		res, err := w.fetch(w.ctx, e)
		if err == nil || !retryable(err) || attempt >= w.retries || w.ctx.Err() != nil {
			return res, err
		}
		d := backoff(attempt + 1)
		w.log.Warn("fetching a secret failed; retrying", "path", e.String(), "attempt", attempt+1, "retries", w.retries, "backoff", d.Round(time.Millisecond), "error", err)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-w.ctx.Done():
			t.Stop()
			return res, err
		}
	}
}

// result is one good fetch.
type result struct {
	secret *api.Secret
	keys   []string
}

// fetch makes one attempt at reading, writing or listing e.
func (w *Watcher) fetch(ctx context.Context, e *entry) (result, error) {
	if e.kind == kindWrite {
		s, err := w.c.Write(ctx, e.path, e.data)
		if err != nil {
			return result{}, fmt.Errorf("writing to %s: %w", e.path, err)
		}
		if s == nil {
			s = &api.Secret{} // a write that answers nothing (204)
		}
		return result{secret: s}, nil
	}
	target, err := w.resolve(ctx, e)
	if err != nil {
		return result{}, err
	}
	if e.kind == kindList {
		s, err := w.c.List(ctx, target)
		if err != nil {
			return result{}, fmt.Errorf("listing %s: %w", target, err)
		}
		keys, err := listKeys(s)
		if err != nil {
			return result{}, fmt.Errorf("listing %s: %w", target, err)
		}
		return result{keys: keys}, nil
	}
	s, err := w.c.Read(ctx, target, e.query)
	if err != nil {
		return result{}, fmt.Errorf("reading %s: %w", target, err)
	}
	if s == nil || deletedKVv2(s) {
		return result{}, fmt.Errorf("%w at %s", ErrNotFound, target)
	}
	return result{secret: s}, nil
}

func listKeys(s *api.Secret) ([]string, error) {
	keys := []string{}
	if s == nil || s.Data == nil || s.Data["keys"] == nil {
		return keys, nil
	}
	raw, ok := s.Data["keys"].([]any)
	if !ok {
		return nil, errors.New("the server's answer has no list of keys")
	}
	for _, k := range raw {
		str, ok := k.(string)
		if !ok {
			return nil, errors.New("the server's list of keys holds a non-string")
		}
		keys = append(keys, str)
	}
	slices.Sort(keys)
	return keys, nil
}

// deletedKVv2 reports a KV v2 response for a deleted version.
func deletedKVv2(s *api.Secret) bool {
	md, ok := s.Data["metadata"].(map[string]any)
	if !ok {
		return false
	}
	dt, ok := md["deletion_time"].(string)
	return ok && dt != ""
}

// resolve returns the path e reads: on a KV v2 mount a path without the
// data/ (metadata/ for lists) segment gets it, as consul-template does.
// The mount is asked about once per mount and the answer kept for every
// path under it.
func (w *Watcher) resolve(ctx context.Context, e *entry) (string, error) {
	w.mu.Lock()
	target := e.target
	mi := w.mountOf(e.path)
	w.mu.Unlock()
	if target != "" {
		return target, nil
	}
	if mi == nil {
		var err error
		mi, err = w.c.Preflight(ctx, e.path)
		switch {
		case err != nil && retryable(err):
			return "", fmt.Errorf("asking which mount holds %s: %w", e.path, err)
		case err != nil:
			// No mount, or no access to its description: the path is read
			// as written and the read says what is wrong.
			w.log.Debug("the mount of a secret is unknown; reading its path as written", "path", e.path, "error", err)
			mi = nil
		case mi.Path != "":
			w.mu.Lock()
			w.mounts[mi.Path] = mi
			w.mu.Unlock()
		}
	}
	target = e.path
	if mi != nil && mi.Type == "kv" && mi.Version == 2 {
		if e.kind == kindList {
			target = kvV2Path(e.path, mi.Path, "metadata")
		} else {
			target = kvV2Path(e.path, mi.Path, "data")
		}
	}
	w.mu.Lock()
	e.target = target
	w.mu.Unlock()
	return target, nil
}

// mountOf returns the cached mount holding path (the longest match).
func (w *Watcher) mountOf(path string) *api.MountInfo {
	var best *api.MountInfo
	for mp, mi := range w.mounts {
		if (strings.HasPrefix(path+"/", mp) || path == strings.TrimSuffix(mp, "/")) && (best == nil || len(mp) > len(best.Path)) {
			best = mi
		}
	}
	return best
}

// kvV2Path puts segment ("data" or "metadata") after the mount unless the
// path already has data/ or metadata/ there.
func kvV2Path(path, mount, segment string) string {
	mount = strings.TrimSuffix(mount, "/")
	rest := strings.TrimPrefix(strings.TrimPrefix(path, mount), "/")
	if rest == "" {
		return mount + "/" + segment
	}
	if segment == "metadata" {
		if rest == "metadata" || strings.HasPrefix(rest, "metadata/") {
			return path
		}
	} else if strings.HasPrefix(rest, "data/") || strings.HasPrefix(rest, "metadata/") {
		return path
	}
	return mount + "/" + segment + "/" + rest
}

// store keeps a good result and schedules what comes next. It reports
// whether the data differ from what was there (w.mu held).
func (w *Watcher) store(e *entry, res result, now time.Time, gen uint64) bool {
	old, oldKeys, hadData := e.secret, e.keys, e.secret != nil || e.keys != nil
	e.err = nil
	e.failures = 0
	if e.kind == kindList {
		e.keys = res.keys
		w.queueAt(e, actRefetch, now.Add(w.static), gen)
		return hadData && !slices.Equal(oldKeys, res.keys)
	}
	s := res.secret
	e.secret = s
	changed := hadData && (old.LeaseID != s.LeaseID || !reflect.DeepEqual(old.Data, s.Data))

	dur := time.Duration(s.LeaseDuration) * time.Second
	switch {
	case s.LeaseID != "" && s.Renewable && dur > 0:
		e.leaseStart, e.leaseDur, e.increment = now, dur, s.LeaseDuration
		e.grace = grace(dur, dur)
		w.queueAt(e, actRenew, now.Add(renewAfter(dur, e.grace)), gen)
	case s.LeaseID != "" && dur > 0:
		frac := min(w.threshold+(jitter()-0.5)*0.1, 0.99)
		w.queueAt(e, actRefetch, now.Add(time.Duration(float64(dur)*frac)), gen)
	default:
		w.queueAt(e, actRefetch, now.Add(w.staticWait(s, now)), gen)
	}
	return changed
}

// staticWait is when a secret without a lease is fetched again: at the
// static interval, except a certificate (before it expires) and a rotated
// static credential (just after its rotation), as consul-template does.
func (w *Watcher) staticWait(s *api.Secret, now time.Time) time.Duration {
	if _, ok := s.Data["certificate"]; ok {
		if exp, ok := api.Int64(s.Data["expiration"]); ok {
			if left := time.Unix(exp, 0).Sub(now); left > 0 {
				frac := min(w.threshold+(jitter()-0.5)*0.1, 0.99)
				return time.Duration(float64(left) * frac)
			}
		}
	}
	if _, ok := s.Data["rotation_period"]; ok {
		if ttl, ok := api.Int64(s.Data["ttl"]); ok && ttl >= 0 {
			return time.Duration(ttl+1) * time.Second
		}
	}
	return w.static
}

// queueAt puts e in the queue for act at t; a token change since gen makes
// it a refetch now (w.mu held).
func (w *Watcher) queueAt(e *entry, act action, t time.Time, gen uint64) {
	if e.dropped {
		return
	}
	if gen != w.gen {
		act, t = actRefetch, time.Now()
	}
	e.act, e.next = act, t
	if e.index >= 0 {
		heap.Fix(&w.queue, e.index)
		return
	}
	heap.Push(&w.queue, e)
}

// process runs one due entry: a renewal or a fetch.
func (w *Watcher) process(ctx context.Context, e *entry, gen uint64, exitOnRetryFailure bool) error {
	if e.act == actRenew {
		return w.renew(ctx, e, gen, exitOnRetryFailure)
	}
	return w.refetch(ctx, e, gen, exitOnRetryFailure)
}

// refetch fetches e again; on failure the old data stay and the fetch is
// retried with backoff.
func (w *Watcher) refetch(ctx context.Context, e *entry, gen uint64, exitOnRetryFailure bool) error {
	res, err := w.fetch(ctx, e)
	now := time.Now()
	if err != nil {
		return w.failed(ctx, e, actRefetch, err, now, gen, exitOnRetryFailure)
	}
	w.mu.Lock()
	hadNone := e.secret == nil && e.keys == nil
	changed := w.store(e, res, now, gen)
	w.mu.Unlock()
	if changed || hadNone {
		w.log.Info("a watched secret changed", "path", e.String())
		w.signal()
	}
	return nil
}

// renew renews e's lease for its original duration. When the lease can no
// longer be extended enough (max TTL near) or is gone, the secret is
// fetched anew at once, while the old lease still runs.
func (w *Watcher) renew(ctx context.Context, e *entry, gen uint64, exitOnRetryFailure bool) error {
	w.mu.Lock()
	leaseID, inc := e.secret.LeaseID, e.increment
	w.mu.Unlock()
	s, err := w.c.Write(ctx, "sys/leases/renew", map[string]any{"lease_id": leaseID, "increment": inc})
	now := time.Now()
	if err == nil && (s == nil || s.LeaseID == "") {
		err = &api.ResponseError{Method: "PUT", Path: "sys/leases/renew", StatusCode: 400, Errors: []string{"the renewal returned no lease"}}
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !retryable(err) {
			w.log.Info("a lease can no longer be renewed; fetching the secret again", "path", e.String(), "error", err)
			return w.refetch(ctx, e, gen, exitOnRetryFailure)
		}
		// Renew again after the backoff while the lease outlasts it;
		// otherwise fetch anew then.
		w.mu.Lock()
		act := actRenew
		if left := e.leaseStart.Add(e.leaseDur).Sub(now); left-backoff(e.failures+1) <= e.grace {
			act = actRefetch
		}
		w.mu.Unlock()
		return w.failed(ctx, e, act, fmt.Errorf("renewing the lease of %s: %w", e.path, err), now, gen, exitOnRetryFailure)
	}

	dur := time.Duration(s.LeaseDuration) * time.Second
	w.mu.Lock()
	defer w.mu.Unlock()
	e.failures = 0
	if dur > e.leaseDur {
		e.grace = grace(dur, time.Duration(e.increment)*time.Second)
	}
	e.leaseStart, e.leaseDur = now, dur
	renewed := *e.secret
	renewed.LeaseDuration, renewed.Renewable = s.LeaseDuration, s.Renewable
	e.secret = &renewed
	sleep := renewAfter(dur, e.grace)
	if !s.Renewable || dur <= e.grace || dur-sleep <= e.grace {
		w.log.Info("a lease is near its maximum TTL; fetching the secret again", "path", e.String(), "lease_duration", s.LeaseDuration)
		w.queueAt(e, actRefetch, now, gen)
		return nil
	}
	if s.LeaseDuration < e.increment {
		// Cut short by the max TTL: renewing cannot extend it any more, so
		// new credentials are fetched when only the grace period is left.
		w.log.Info("a lease reached its maximum TTL; new credentials will be fetched before it ends", "path", e.String(), "lease_duration", s.LeaseDuration)
		w.queueAt(e, actRefetch, now.Add(dur-e.grace), gen)
		return nil
	}
	w.log.Debug("renewed a lease", "path", e.String(), "lease_duration", s.LeaseDuration)
	w.queueAt(e, actRenew, now.Add(sleep), gen)
	return nil
}

// failed records a failed attempt and schedules the next one.
func (w *Watcher) failed(ctx context.Context, e *entry, act action, err error, now time.Time, gen uint64, exitOnRetryFailure bool) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	w.checkDenied(err)
	w.mu.Lock()
	defer w.mu.Unlock()
	e.failures++
	if e.secret == nil && e.keys == nil {
		e.err = err
	}
	d := backoff(e.failures)
	if errors.Is(err, ErrNotFound) {
		// A secret not written yet is looked for again at the static
		// interval at the latest, as Vault Agent does; after the first
		// time only at debug level (the renderer says what it waits for).
		d = min(d, w.static)
	}
	if errors.Is(err, ErrNotFound) && e.failures > 1 {
		w.log.Debug("a secret still does not exist; looking again", "path", e.String(), "attempt", e.failures, "backoff", d.Round(time.Millisecond))
	} else {
		w.log.Warn("refreshing a secret failed; keeping its last data and retrying", "path", e.String(), "attempt", e.failures, "backoff", d.Round(time.Millisecond), "error", err)
	}
	if exitOnRetryFailure && e.failures > w.retries {
		return fmt.Errorf("refreshing %s failed %d times: %w", e, e.failures, err)
	}
	w.queueAt(e, act, now.Add(d), gen)
	return nil
}

// checkDenied calls OnPermissionDenied when err is a 403.
func (w *Watcher) checkDenied(err error) {
	var re *api.ResponseError
	if w.denied != nil && errors.As(err, &re) && re.StatusCode == 403 {
		w.denied()
	}
}

// retryable reports an error that another attempt may not meet: no
// connection, a 5xx, 429 or 412 (a standby not yet caught up).
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, ErrNotFound) {
		return false
	}
	var re *api.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode >= 500 || re.StatusCode == 429 || re.StatusCode == 412
	}
	return true
}

// backoff is the wait before attempt n (1, 2, ...): 250ms doubling up to
// about a minute, with ±25% jitter so agents do not retry in step.
func backoff(n int) time.Duration {
	d := backoffBase
	for i := 1; i < n && d < backoffMax; i++ {
		d *= 2
	}
	d = min(d, backoffMax)
	return time.Duration(float64(d) * (0.75 + 0.5*jitter()))
}

// grace is how long before a lease's end it is no longer worth renewing:
// 10-20% of the shorter of the lease and the increment, as Vault's
// lifetime watcher computes it.
func grace(lease, increment time.Duration) time.Duration {
	m := lease
	if increment > 0 && increment < m {
		m = increment
	}
	if m <= 0 {
		return 0
	}
	return time.Duration(float64(m) * (0.1 + 0.1*jitter()))
}

// renewAfter is when to renew a lease of duration d: two thirds in, plus a
// third of the grace period as jitter.
func renewAfter(d, grace time.Duration) time.Duration {
	return d*2/3 + grace/3
}
