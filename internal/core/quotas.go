package core

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/storage"
)

// Rate limit quotas, in the shape of Vault's sys/quotas/rate-limit: a quota
// applies to every path (path ""), a mount ("secret/") or a path prefix
// ("secret/data/app"); the most specific quota that matches a request
// decides it. Each client address gets its own token bucket of `rate`
// requests per `interval`; a client that exceeds it gets 429 with
// Retry-After, and with block_interval set, is refused for that long.

const (
	quotaPrefix        = "sys/quotas/"
	accessReportPrefix = "sys/access-report/"
	// quotaMaxClients bounds the per-client buckets of one quota; past it,
	// idle clients are dropped first.
	quotaMaxClients = 100000
	quotaIdleAfter  = 10 * time.Minute
)

// defaultExemptPaths are not rate limited unless sys/quotas/config says
// otherwise, as in Vault: an operator must be able to check health and
// unseal under any load.
var defaultExemptPaths = []string{"sys/generate-recovery-token", "sys/generate-root/update", "sys/health", "sys/seal-status", "sys/unseal"}

// quotaPathsPrefix is never rate limited, whatever the configuration, so
// a quota that shuts everyone out can always be removed.
const quotaPathsPrefix = "sys/quotas/"

// RateLimitQuota is one stored quota.
type RateLimitQuota struct {
	Name          string        `json:"name"`
	Path          string        `json:"path"`
	Rate          float64       `json:"rate"`
	Interval      time.Duration `json:"interval"`
	BlockInterval time.Duration `json:"block_interval"`
	Inheritable   bool          `json:"inheritable"`
	// Role, when set, limits the quota to logins for that role on the auth
	// mount at Path (see ResolveLoginRole); such a quota decides before
	// any other that matches.
	Role string `json:"role,omitempty"`
}

// QuotaConfig is sys/quotas/config.
type QuotaConfig struct {
	EnableRateLimitAuditLogging    bool     `json:"enable_rate_limit_audit_logging"`
	EnableRateLimitResponseHeaders bool     `json:"enable_rate_limit_response_headers"`
	RateLimitExemptPaths           []string `json:"rate_limit_exempt_paths"`
	AbsoluteRateLimitExemptPaths   []string `json:"absolute_rate_limit_exempt_paths"`
}

type clientBucket struct {
	limiter      *rate.Limiter
	blockedUntil time.Time
	lastSeen     time.Time
}

type liveQuota struct {
	RateLimitQuota
	mu      sync.Mutex
	clients map[string]*clientBucket
}

type quotaSet struct {
	quotas map[string]*liveQuota // by name
	config QuotaConfig
}

type quotaStore struct {
	mu   sync.Mutex // serialises changes
	view storage.Storage
	set  atomic.Pointer[quotaSet]
}

func newQuotaStore() *quotaStore {
	q := &quotaStore{}
	q.set.Store(&quotaSet{quotas: map[string]*liveQuota{}, config: QuotaConfig{RateLimitExemptPaths: defaultExemptPaths}})
	return q
}

func (q *quotaStore) load(ctx context.Context, v storage.Storage) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.view = v
	set := &quotaSet{quotas: map[string]*liveQuota{}, config: QuotaConfig{RateLimitExemptPaths: defaultExemptPaths}}
	if e, err := v.Get(ctx, "config"); err != nil {
		return err
	} else if e != nil {
		if err := json.Unmarshal(e.Value, &set.config); err != nil {
			return err
		}
	}
	names, err := v.List(ctx, "rate-limit/")
	if err != nil {
		return err
	}
	for _, n := range names {
		e, err := v.Get(ctx, "rate-limit/"+n)
		if err != nil {
			return err
		}
		if e == nil {
			continue
		}
		var rq RateLimitQuota
		if err := json.Unmarshal(e.Value, &rq); err != nil {
			return fmt.Errorf("quota %s: %w", n, err)
		}
		set.quotas[rq.Name] = &liveQuota{RateLimitQuota: rq, clients: map[string]*clientBucket{}}
	}
	q.set.Store(set)
	return nil
}

func (q *quotaStore) clear() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.view = nil
	q.set.Store(&quotaSet{quotas: map[string]*liveQuota{}, config: QuotaConfig{RateLimitExemptPaths: defaultExemptPaths}})
}

func (q *quotaStore) put(ctx context.Context, rq RateLimitQuota) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.view == nil {
		return logical.ErrSealed
	}
	raw, _ := json.Marshal(rq)
	if err := q.view.Put(ctx, &storage.Entry{Key: "rate-limit/" + rq.Name, Value: raw}); err != nil {
		return err
	}
	old := q.set.Load()
	next := &quotaSet{quotas: make(map[string]*liveQuota, len(old.quotas)+1), config: old.config}
	for k, v := range old.quotas {
		next.quotas[k] = v
	}
	// A changed quota starts with fresh buckets.
	next.quotas[rq.Name] = &liveQuota{RateLimitQuota: rq, clients: map[string]*clientBucket{}}
	q.set.Store(next)
	return nil
}

func (q *quotaStore) delete(ctx context.Context, name string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.view == nil {
		return logical.ErrSealed
	}
	if err := q.view.Delete(ctx, "rate-limit/"+name); err != nil {
		return err
	}
	old := q.set.Load()
	next := &quotaSet{quotas: make(map[string]*liveQuota, len(old.quotas)), config: old.config}
	for k, v := range old.quotas {
		if k != name {
			next.quotas[k] = v
		}
	}
	q.set.Store(next)
	return nil
}

func (q *quotaStore) setConfig(ctx context.Context, conf QuotaConfig) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.view == nil {
		return logical.ErrSealed
	}
	raw, _ := json.Marshal(conf)
	if err := q.view.Put(ctx, &storage.Entry{Key: "config", Value: raw}); err != nil {
		return err
	}
	old := q.set.Load()
	q.set.Store(&quotaSet{quotas: old.quotas, config: conf})
	return nil
}

// RateLimitDecision is what the HTTP layer needs to answer a request.
type RateLimitDecision struct {
	Allowed    bool
	Quota      string
	Limit      int           // requests per interval
	Remaining  int           // tokens left in the client's bucket
	RetryAfter time.Duration // when refused: how long to wait
	Reset      time.Duration // until the bucket is full again
	Headers    bool          // send X-Ratelimit-* headers
}

// CheckRateLimit applies the most specific matching quota to a request for
// path from remoteAddr. A request that no quota covers is allowed. Quotas
// with a role are left to CheckLoginRateLimit: the HTTP layer calls that
// instead, once the body is read, for paths where RateLimitNeedsRole.
func (c *Core) CheckRateLimit(path, remoteAddr string) RateLimitDecision {
	return c.checkRateLimit(path, remoteAddr, "")
}

// CheckLoginRateLimit is CheckRateLimit for a request that may be a login
// for a role: a quota naming that role on the request's auth mount comes
// first; without one, the others apply as usual.
func (c *Core) CheckLoginRateLimit(ctx context.Context, path, remoteAddr string, data map[string]any) RateLimitDecision {
	return c.checkRateLimit(path, remoteAddr, c.ResolveLoginRole(ctx, path, data))
}

// RateLimitNeedsRole reports whether a quota with a role could apply to
// path, so the request's role must be known before quotas are applied.
func (c *Core) RateLimitNeedsRole(path string) bool {
	for _, lq := range c.quotas.set.Load().quotas {
		if lq.Role != "" && strings.HasPrefix(path, lq.Path) {
			return true
		}
	}
	return false
}

// ResolveLoginRole asks the auth method behind path which role a login
// request is for (logical.ResolveRoleOperation). It returns "" when path
// is not an auth method's login path, when the method has no roles, or
// when it cannot tell.
func (c *Core) ResolveLoginRole(ctx context.Context, path string, data map[string]any) string {
	c.stateLock.RLock()
	defer c.stateLock.RUnlock()
	if c.Sealed() || c.mounts == nil {
		return ""
	}
	m, rel := c.mounts.route(path)
	if m == nil || m.entry.Table != authTable {
		return ""
	}
	special := m.backend.SpecialPaths()
	if special == nil || !matchSpecial(special.Unauthenticated, rel) {
		return ""
	}
	resp, err := m.backend.HandleRequest(ctx, &logical.Request{
		ID: newUUID(), Operation: logical.ResolveRoleOperation, Path: rel, Data: data,
		Storage: m.view, MountPoint: m.entry.routePath(), MountType: m.entry.Type,
	})
	if err != nil || resp == nil {
		return ""
	}
	role, _ := resp.Data["role"].(string)
	return role
}

func (c *Core) checkRateLimit(path, remoteAddr, role string) RateLimitDecision {
	set := c.quotas.set.Load()
	if len(set.quotas) == 0 || strings.HasPrefix(path, quotaPathsPrefix) {
		return RateLimitDecision{Allowed: true}
	}
	for _, exempt := range [][]string{set.config.RateLimitExemptPaths, set.config.AbsoluteRateLimitExemptPaths} {
		for _, p := range exempt {
			if strings.HasPrefix(path, p) {
				return RateLimitDecision{Allowed: true}
			}
		}
	}
	var best *liveQuota
	better := func(lq *liveQuota) bool {
		switch {
		case best == nil:
			return true
		case (lq.Role != "") != (best.Role != ""):
			return lq.Role != "" // a role quota is the most specific
		case len(lq.Path) != len(best.Path):
			return len(lq.Path) > len(best.Path)
		}
		return lq.Name < best.Name
	}
	for _, lq := range set.quotas {
		if !strings.HasPrefix(path, lq.Path) || (lq.Role != "" && lq.Role != role) {
			continue
		}
		if better(lq) {
			best = lq
		}
	}
	if best == nil {
		return RateLimitDecision{Allowed: true}
	}
	client := remoteAddr
	if h, _, err := net.SplitHostPort(remoteAddr); err == nil {
		client = h
	}
	d := best.allow(client, time.Now())
	d.Headers = set.config.EnableRateLimitResponseHeaders
	if !d.Allowed {
		c.metrics.rateLimited.WithLabelValues(best.Name).Inc()
	}
	return d
}

func (lq *liveQuota) allow(client string, now time.Time) RateLimitDecision {
	lq.mu.Lock()
	defer lq.mu.Unlock()
	limit := int(math.Max(1, math.Floor(lq.Rate)))
	d := RateLimitDecision{Quota: lq.Name, Limit: limit}
	b := lq.clients[client]
	if b == nil {
		if len(lq.clients) >= quotaMaxClients {
			lq.evictIdle(now)
		}
		perSecond := lq.Rate / lq.Interval.Seconds()
		b = &clientBucket{limiter: rate.NewLimiter(rate.Limit(perSecond), limit)}
		lq.clients[client] = b
	}
	b.lastSeen = now
	if now.Before(b.blockedUntil) {
		d.RetryAfter = b.blockedUntil.Sub(now)
		d.Reset = d.RetryAfter
		return d
	}
	r := b.limiter.ReserveN(now, 1)
	if delay := r.DelayFrom(now); delay > 0 {
		r.CancelAt(now)
		d.RetryAfter = delay
		if lq.BlockInterval > 0 {
			b.blockedUntil = now.Add(lq.BlockInterval)
			d.RetryAfter = lq.BlockInterval
		}
		d.Reset = d.RetryAfter
		return d
	}
	d.Allowed = true
	tokens := b.limiter.TokensAt(now)
	d.Remaining = int(math.Max(0, math.Floor(tokens)))
	if missing := float64(limit) - tokens; missing > 0 {
		d.Reset = time.Duration(missing / float64(b.limiter.Limit()) * float64(time.Second))
	}
	return d
}

// evictIdle drops the buckets of clients not seen for a while; if every
// client is recent, it drops the least recently seen half.
func (lq *liveQuota) evictIdle(now time.Time) {
	for k, b := range lq.clients {
		if now.Sub(b.lastSeen) > quotaIdleAfter && now.After(b.blockedUntil) {
			delete(lq.clients, k)
		}
	}
	if len(lq.clients) < quotaMaxClients {
		return
	}
	type seen struct {
		k string
		t time.Time
	}
	all := make([]seen, 0, len(lq.clients))
	for k, b := range lq.clients {
		all = append(all, seen{k, b.lastSeen})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].t.Before(all[j].t) })
	for _, s := range all[:len(all)/2] {
		delete(lq.clients, s.k)
	}
}
