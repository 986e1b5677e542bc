package audit

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNotRecorded is returned when devices are enabled and none of them
// recorded an entry. The core then refuses the request.
var ErrNotRecorded = errors.New("no audit device recorded the request, so it was refused")

// Broker fans entries out to the enabled devices.
type Broker struct {
	logger *slog.Logger
	// OnFailure, when set, is called for every device that fails to record
	// an entry (for metrics).
	OnFailure func(path, typ string)

	mu      sync.Mutex // serialises changes; readers use devices
	devices atomic.Pointer[[]*Device]
}

// NewBroker returns a broker with no devices.
func NewBroker(logger *slog.Logger) *Broker {
	if logger == nil {
		logger = slog.Default()
	}
	b := &Broker{logger: logger}
	b.devices.Store(&[]*Device{})
	return b
}

// Register adds d, replacing and closing any device at the same path.
func (b *Broker) Register(d *Device) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := *b.devices.Load()
	next := make([]*Device, 0, len(old)+1)
	for _, x := range old {
		if x.path != d.path {
			next = append(next, x)
		} else if x != d {
			x.Close()
		}
	}
	next = append(next, d)
	sort.Slice(next, func(i, j int) bool { return next[i].path < next[j].path })
	b.devices.Store(&next)
}

// Deregister removes and closes the device at path.
func (b *Broker) Deregister(path string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := *b.devices.Load()
	next := make([]*Device, 0, len(old))
	for _, x := range old {
		if x.path == path {
			x.Close()
			continue
		}
		next = append(next, x)
	}
	b.devices.Store(&next)
}

// Close closes every device and removes it.
func (b *Broker) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, d := range *b.devices.Load() {
		d.Close()
	}
	b.devices.Store(&[]*Device{})
}

// Enabled reports whether any device is registered.
func (b *Broker) Enabled() bool { return len(*b.devices.Load()) > 0 }

// Hash returns the HMAC the device at path writes for value.
func (b *Broker) Hash(path, value string) (string, bool) {
	for _, d := range *b.devices.Load() {
		if d.path == path {
			return d.Hash(value), true
		}
	}
	return "", false
}

// Reopen reopens every device's destination (on SIGHUP) and returns the
// first error; devices that fail keep retrying on their next write.
func (b *Broker) Reopen() error {
	var first error
	for _, d := range *b.devices.Load() {
		if err := d.Reopen(); err != nil {
			b.logger.Error("reopening an audit device failed", "path", d.path, "error", err)
			if first == nil {
				first = err
			}
		}
	}
	return first
}

// LogRequest records a request entry.
func (b *Broker) LogRequest(ctx context.Context, in *Input) error {
	return b.log(ctx, "request", in)
}

// LogResponse records a response entry.
func (b *Broker) LogResponse(ctx context.Context, in *Input) error {
	return b.log(ctx, "response", in)
}

// LogRequestAndResponse records both entries of a request at once, after
// the backend has answered. The core uses it for operations that only read:
// the response is still withheld until the entries are recorded, and one
// write instead of two is a fifth of a KV read's cost saved.
func (b *Broker) LogRequestAndResponse(ctx context.Context, in *Input) error {
	return b.log(ctx, "", in)
}

// log writes to every device and succeeds when at least one recorded the
// entry, or when no device is enabled. typ "" writes both entries.
func (b *Broker) log(ctx context.Context, typ string, in *Input) error {
	devices := *b.devices.Load()
	if len(devices) == 0 {
		return nil
	}
	recorded := false
	for _, d := range devices {
		var err error
		if typ == "" {
			err = d.LogPair(ctx, in)
		} else {
			err = d.Log(ctx, typ, in)
		}
		if err != nil {
			if n, ok := d.failures.note(time.Now()); ok {
				b.logger.Error("audit device failed to record an entry", "path", d.path, "request_id", in.Request.ID,
					"error", err, "failures_not_logged", n)
			}
			if b.OnFailure != nil {
				if typ == "" {
					b.OnFailure(d.path, "request")
					b.OnFailure(d.path, "response")
				} else {
					b.OnFailure(d.path, typ)
				}
			}
			continue
		}
		recorded = true
	}
	if !recorded {
		return ErrNotRecorded
	}
	return nil
}

// failureLog throttles a failing device's log lines: a broken disk under
// load fails every request, and one line per request would bury the log.
// The first failure is logged, then at most one line per interval, with the
// number of failures not logged in between.
type failureLog struct {
	mu      sync.Mutex
	last    time.Time
	skipped int
}

const failureLogInterval = 10 * time.Second

// note records a failure and reports whether to log it, with the count of
// failures skipped since the last line.
func (f *failureLog) note(now time.Time) (skipped int, log bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.last.IsZero() && now.Sub(f.last) < failureLogInterval {
		f.skipped++
		return 0, false
	}
	skipped, f.skipped, f.last = f.skipped, 0, now
	return skipped, true
}
