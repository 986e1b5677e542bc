package core

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/storage"
)

// metrics are the core's Prometheus metrics. Each core has its own
// registry, so several servers in one process (tests) keep their figures
// apart.
type metrics struct {
	registry        *prometheus.Registry
	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	auditFailures   *prometheus.CounterVec
	storageDuration *prometheus.HistogramVec
	rateLimited     *prometheus.CounterVec
}

func newMetrics(c *Core) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arca_core_requests_total",
			Help: "Requests handled by the core, by mount, operation and HTTP status.",
		}, []string{"mount", "operation", "status"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "arca_core_request_duration_seconds",
			Help:    "Time the core spent on a request, by mount and operation.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"mount", "operation"}),
		auditFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arca_audit_log_failures_total",
			Help: "Entries an audit device failed to record, by device path and entry type.",
		}, []string{"device", "type"}),
		storageDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "arca_storage_operation_duration_seconds",
			Help:    "Latency of physical storage operations, by backend and operation.",
			Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"backend", "operation"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arca_quota_rate_limit_violations_total",
			Help: "Requests refused with 429 by a rate limit quota, by quota name.",
		}, []string{"quota"}),
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	boolf := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	m.registry.MustRegister(
		m.requests, m.requestDuration, m.auditFailures, m.storageDuration, m.rateLimited,
		gauge("arca_core_unsealed", "1 when the server is unsealed, 0 when sealed.", func() float64 { return boolf(!c.Sealed()) }),
		gauge("arca_core_active", "1 when the server is unsealed and serving (without HA, or holding the HA lock), 0 when sealed or standby.", func() float64 { return boolf(!c.Sealed() && !c.Standby()) }),
		gauge("arca_token_count", "Tokens in the token store (0 while sealed).", func() float64 { return float64(c.tokenCount.Load()) }),
		gauge("arca_lease_count", "Outstanding leases (0 while sealed).", func() float64 { return float64(c.leaseCount.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "arca_lease_revocations_total", Help: "Leases revoked since the server started."},
			func() float64 { return float64(c.leaseRevocations.ok.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "arca_lease_revocation_failures_total", Help: "Failed attempts at revoking a lease (each is retried) since the server started."},
			func() float64 { return float64(c.leaseRevocations.failed.Load()) }),
		gauge("arca_audit_devices", "Enabled audit devices.", func() float64 {
			if st := c.auditState.Load(); st != nil && !c.Sealed() {
				return float64(len(st.table))
			}
			return 0
		}),
		gauge("arca_barrier_key_term", "Term of the barrier's active encryption key (0 while sealed).", func() float64 {
			if c.Sealed() {
				return 0
			}
			return float64(c.barrier.KeyStatus().Term)
		}),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

func (m *metrics) observeRequest(mount string, op logical.Operation, err error, d time.Duration) {
	m.requests.WithLabelValues(mount, string(op), strconv.Itoa(logical.StatusOf(err))).Inc()
	m.requestDuration.WithLabelValues(mount, string(op)).Observe(d.Seconds())
}

// timedStorage measures every operation on the physical backend.
type timedStorage struct {
	storage.Backend
	get, put, del, list, txn prometheus.Observer
}

func newTimedStorage(b storage.Backend, kind string, m *metrics) *timedStorage {
	obs := func(op string) prometheus.Observer { return m.storageDuration.WithLabelValues(kind, op) }
	return &timedStorage{Backend: b, get: obs("get"), put: obs("put"), del: obs("delete"), list: obs("list"), txn: obs("transaction")}
}

func since(o prometheus.Observer, start time.Time) { o.Observe(time.Since(start).Seconds()) }

func (s *timedStorage) Get(ctx context.Context, key string) (*storage.Entry, error) {
	defer since(s.get, time.Now())
	return s.Backend.Get(ctx, key)
}

func (s *timedStorage) Put(ctx context.Context, e *storage.Entry) error {
	defer since(s.put, time.Now())
	return s.Backend.Put(ctx, e)
}

func (s *timedStorage) Delete(ctx context.Context, key string) error {
	defer since(s.del, time.Now())
	return s.Backend.Delete(ctx, key)
}

func (s *timedStorage) List(ctx context.Context, prefix string) ([]string, error) {
	defer since(s.list, time.Now())
	return s.Backend.List(ctx, prefix)
}

func (s *timedStorage) Transaction(ctx context.Context, ops []storage.Op) error {
	defer since(s.txn, time.Now())
	return s.Backend.Transaction(ctx, ops)
}
