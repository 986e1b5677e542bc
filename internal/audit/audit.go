// Package audit records every request an Arca server serves and every
// response it gives, one JSON object a line in the shape Vault's audit devices
// write, without a secret in plaintext: each string in request and response
// data and every token is replaced by an HMAC-SHA256 under a salt that belongs
// to the device. The Broker fans an entry out to the enabled devices and
// reports failure only when none of them recorded it, so the core can refuse
// to serve what it cannot record.
package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/arcasec/arca/internal/logical"
)

// Input is what the core knows about one request when it audits it.
type Input struct {
	// Time is when the server received the request.
	Time time.Time
	// Path is the full request path below /v1/ (req.Path is relative to the
	// mount once routed).
	Path     string
	Request  *logical.Request
	Response *logical.Response // nil in request entries
	// Auth is the caller's token; nil for unauthenticated requests.
	Auth *logical.Auth
	// Err is the error the request failed with, if it failed.
	Err error

	MountAccessor string
	MountClass    string // "secret", "auth" or "" when no mount matched
	// NonHMACRequestKeys and NonHMACResponseKeys are data keys, at any
	// depth, whose values are written in plaintext (the mount's
	// audit_non_hmac_request_keys and audit_non_hmac_response_keys).
	NonHMACRequestKeys  []string
	NonHMACResponseKeys []string
	// Headers are the request headers chosen for auditing, with the names
	// whose values are HMAC'd.
	Headers map[string][]string
	// HMACHeaders names the headers in Headers whose values are HMAC'd.
	HMACHeaders map[string]bool

	// What the request entry computed that the response entry reuses: for
	// the device that encoded them, the auth and request members (the same
	// in both entries).
	commonBy *Hasher
	common   []byte
}

// Types are the audit device types this build provides.
var Types = []string{"file", "socket", "syslog"}

// Config configures one device.
type Config struct {
	// Path is where the device is mounted, e.g. "file/".
	Path    string
	Type    string
	Options map[string]string
	// Salt keys the device's HMAC. The core keeps it behind the barrier.
	Salt   []byte
	Logger *slog.Logger
}

// sink is where a device's lines go.
type sink interface {
	// write records one line; it is safe for concurrent use.
	write(ctx context.Context, line []byte) error
	// reopen closes and reopens the destination (SIGHUP, logrotate).
	reopen() error
	close() error
}

// Device is one enabled audit device: a formatter and a destination.
type Device struct {
	path     string
	format   formatter
	hasher   *Hasher
	sink     sink
	failures failureLog
}

// New creates a device from conf, validating every option. It opens the
// destination, so an unwritable file or an unreachable socket is reported
// here rather than on the first request.
func New(conf Config) (*Device, error) {
	d, err := build(conf, false)
	if err != nil {
		return nil, err
	}
	if err := d.sink.reopen(); err != nil {
		d.sink.close()
		return nil, err
	}
	return d, nil
}

// NewLazy creates a device like New but does not fail when its destination
// cannot be opened yet: the device then fails every write until it can.
// The core uses it when it reloads the audit table on unseal, so a device
// that was enabled keeps the server failing closed rather than vanishing.
// For the same reason a file mode with an execute bit, which an earlier
// version accepted, loses the bit instead of failing the unseal.
func NewLazy(conf Config) (*Device, error) {
	d, err := build(conf, true)
	if err != nil {
		return nil, err
	}
	if err := d.sink.reopen(); err != nil && conf.Logger != nil {
		conf.Logger.Error("audit device could not open its destination", "path", conf.Path, "error", err)
	}
	return d, nil
}

// Check validates conf as New would, without a salt and without opening
// the destination, so a device declared in the server configuration is
// refused when the server starts rather than when it is unsealed.
func Check(conf Config) error {
	conf.Salt = []byte("check")
	_, err := build(conf, false)
	return err
}

// build makes a device from conf; reloading is NewLazy's leniency.
func build(conf Config, reloading bool) (*Device, error) {
	if len(conf.Salt) == 0 {
		return nil, errors.New("audit: device has no salt")
	}
	opts := optionsCopy(conf.Options)
	var s sink
	var err error
	switch conf.Type {
	case "file":
		var fs *fileSink
		if fs, err = newFileSink(opts, reloading); err == nil && fs.droppedExec && conf.Logger != nil {
			conf.Logger.Warn("audit device had a file mode with an execute bit; the bit is dropped", "path", conf.Path, "mode", fmt.Sprintf("%04o", fs.mode))
		}
		s = fs
	case "socket":
		s, err = newSocketSink(opts)
	case "syslog":
		s, err = newSyslogSink(opts)
	default:
		return nil, fmt.Errorf("unknown audit device type %q (file, socket or syslog)", conf.Type)
	}
	if err != nil {
		return nil, err
	}
	f, err := newFormatter(opts)
	if err != nil {
		return nil, err
	}
	if err := opts.unused(); err != nil {
		return nil, fmt.Errorf("audit device type %s: %w", conf.Type, err)
	}
	return &Device{path: conf.Path, format: f, hasher: NewHasher(conf.Salt), sink: s}, nil
}

// Log formats in as an entry of the given type ("request" or "response")
// and writes it.
func (d *Device) Log(ctx context.Context, typ string, in *Input) error {
	return d.log(ctx, in, typ)
}

// LogPair writes the request and response entries of in with one write.
func (d *Device) LogPair(ctx context.Context, in *Input) error {
	return d.log(ctx, in, "request", "response")
}

// log formats one entry per type into one pooled buffer and writes it.
func (d *Device) log(ctx context.Context, in *Input, types ...string) error {
	bp := linePool.Get().(*[]byte)
	line := (*bp)[:0]
	for _, typ := range types {
		var err error
		if line, err = d.format.entry(line, typ, in, d.hasher); err != nil {
			linePool.Put(bp)
			return fmt.Errorf("formatting the audit entry: %w", err)
		}
	}
	err := d.sink.write(ctx, line)
	// Sinks are done with the line when write returns.
	if cap(line) <= 64<<10 {
		*bp = line
		linePool.Put(bp)
	}
	return err
}

// linePool recycles entry buffers: a busy server formats two entries a
// request, and allocating each was a measurable share of the GC's work.
var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// Hash returns the HMAC this device writes for value.
func (d *Device) Hash(value string) string { return d.hasher.Hash(value) }

// Reopen reopens the destination: files are reopened by name, sockets
// reconnect.
func (d *Device) Reopen() error { return d.sink.reopen() }

// Close releases the destination.
func (d *Device) Close() error { return d.sink.close() }

// options is a device's option map that remembers which keys were read, so
// a misspelt option is an error instead of silently ignored.
type options map[string]string

func (o options) get(key string) (string, bool) {
	v, ok := o[key]
	if ok {
		delete(o, key)
	}
	return v, ok
}

func (o options) bool(key string, def bool) (bool, error) {
	v, ok := o.get(key)
	if !ok || v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("option %s: %q is not a boolean", key, v)
	}
	return b, nil
}

func (o options) duration(key string, def time.Duration) (time.Duration, error) {
	v, ok := o.get(key)
	if !ok || v == "" {
		return def, nil
	}
	if n, err := strconv.Atoi(v); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("option %s: %q is not a positive duration", key, v)
	}
	return d, nil
}

func (o options) unused() error {
	for k := range o {
		return fmt.Errorf("unknown option %q", k)
	}
	return nil
}

func optionsCopy(m map[string]string) options {
	o := make(options, len(m))
	for k, v := range m {
		o[k] = v
	}
	return o
}

// remoteHostPort splits a request's remote address.
func remoteHostPort(addr string) (string, int) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	p, _ := strconv.Atoi(port)
	return host, p
}
