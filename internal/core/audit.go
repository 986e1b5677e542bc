package core

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/arcasec/arca/internal/audit"
	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/storage"
)

// AuditEntry is one row of the audit table.
type AuditEntry struct {
	Path        string            `json:"path"` // with trailing "/"
	Type        string            `json:"type"`
	Description string            `json:"description"`
	Options     map[string]string `json:"options"`
	Local       bool              `json:"local"`
	UUID        string            `json:"uuid"`
	// Declared marks a device that comes from the server configuration:
	// the configuration enables, changes and removes it, the API cannot.
	Declared bool `json:"declared,omitempty"`
}

// AuditConfig is what the server configuration says about audit devices.
type AuditConfig struct {
	// Devices are the configuration's audit stanzas. They are enabled at
	// unseal, keep their salt across restarts, and are disabled when their
	// stanza is removed.
	Devices []*AuditEntry
	// AllowAPICreation lets sys/audit enable devices
	// (unsafe_allow_api_audit_creation). A device can write to any file the
	// server can and dial any address, which is the host's operator's call,
	// not an API caller's.
	AllowAPICreation bool
	// AllowPrefix allows the prefix option (allow_audit_log_prefixing),
	// which puts text of the caller's choosing at the start of every line.
	AllowPrefix bool
}

// errAuditPrefix is the refusal of the prefix option.
const errAuditPrefix = "option prefix is not allowed on this server: set allow_audit_log_prefixing = true in the server configuration to use it"

// validateAuditConfig checks the declared devices when the core is built,
// so a bad stanza stops the server at start-up with its path named.
func validateAuditConfig(conf AuditConfig) error {
	var seen []string
	for _, e := range conf.Devices {
		p, err := normalizeAuditPath(e.Path)
		if err != nil {
			return fmt.Errorf("audit stanza %q: %w", e.Path, err)
		}
		if !slices.Contains(audit.Types, e.Type) {
			return fmt.Errorf("audit device %s: unknown type %q (file, socket or syslog)", p, e.Type)
		}
		if e.Options["prefix"] != "" && !conf.AllowPrefix {
			return fmt.Errorf("audit device %s: %s", p, errAuditPrefix)
		}
		for _, q := range seen {
			if strings.HasPrefix(q, p) || strings.HasPrefix(p, q) {
				return fmt.Errorf("audit device %s: its path conflicts with the audit device at %s in the same configuration", p, q)
			}
		}
		seen = append(seen, p)
		if err := audit.Check(audit.Config{Path: p, Type: e.Type, Options: e.Options}); err != nil {
			return fmt.Errorf("audit device %s: %w", p, err)
		}
	}
	return nil
}

const (
	auditTableKey     = "core/audit"
	auditedHeadersKey = "core/audited-headers"
)

// auditSaltKey is where a device's HMAC salt is kept, behind the barrier.
func auditSaltKey(uuid string) string { return "audit/" + uuid + "/salt" }

// auditState is the audit table and the headers chosen for auditing; the
// broker holds the live devices.
type auditState struct {
	table   []*AuditEntry
	headers map[string]bool // canonical header name -> HMAC its values
}

func (c *Core) loadAudit(ctx context.Context) error {
	var table []*AuditEntry
	if _, err := c.getJSON(ctx, auditTableKey, &table); err != nil {
		return fmt.Errorf("reading the audit table: %w", err)
	}
	headers := map[string]bool{}
	if _, err := c.getJSON(ctx, auditedHeadersKey, &headers); err != nil {
		return fmt.Errorf("reading the audited headers: %w", err)
	}
	for _, e := range table {
		if e.Declared {
			continue // applyDeclaredAudit builds these as the configuration now says
		}
		d, err := c.auditDevice(ctx, e)
		if err != nil {
			return err
		}
		c.audit.Register(d)
	}
	c.auditState.Store(&auditState{table: table, headers: headers})
	c.auditMu.Lock()
	defer c.auditMu.Unlock()
	if err := c.applyDeclaredAudit(ctx); err != nil {
		return fmt.Errorf("enabling the audit devices of the server configuration: %w", err)
	}
	return nil
}

// auditDevice builds the device of a stored entry with its stored salt. A
// device that cannot open its destination fails its writes until it can,
// so an enabled device keeps the server failing closed rather than
// vanishing.
func (c *Core) auditDevice(ctx context.Context, e *AuditEntry) (*audit.Device, error) {
	salt, err := c.barrier.Get(ctx, auditSaltKey(e.UUID))
	if err != nil {
		return nil, fmt.Errorf("reading the salt of audit device %s: %w", e.Path, err)
	}
	if salt == nil {
		return nil, fmt.Errorf("audit device %s has lost its salt", e.Path)
	}
	d, err := audit.NewLazy(audit.Config{Path: e.Path, Type: e.Type, Options: e.Options, Salt: salt.Value, Logger: c.logger})
	if err != nil {
		return nil, fmt.Errorf("audit device %s: %w", e.Path, err)
	}
	return d, nil
}

// applyDeclaredAudit makes the audit table agree with the configuration's
// audit stanzas and registers their devices: a new stanza enables its
// device, a changed one replaces the device's settings (keeping its salt,
// so earlier HMACs still match), and a stanza that is gone disables its
// device. A stanza at the path of a device enabled through the API is
// refused: the configuration does not take over what the API enabled.
// A device that cannot open its destination yet fails its writes until it
// can (see newAuditDevice). auditMu is held.
func (c *Core) applyDeclaredAudit(ctx context.Context) (err error) {
	// Salts stored for devices this call enabled go again if it fails.
	var fresh []*AuditEntry
	defer func() {
		if err != nil {
			for _, e := range fresh {
				c.barrier.Delete(ctx, auditSaltKey(e.UUID))
			}
		}
	}()
	st := c.auditState.Load()
	declared := map[string]bool{}
	for _, want := range c.conf.Audit.Devices {
		p, err := normalizeAuditPath(want.Path)
		if err != nil {
			return fmt.Errorf("audit stanza %q: %w", want.Path, err)
		}
		declared[p] = true
	}
	var gone []*AuditEntry
	table := slices.DeleteFunc(slices.Clone(st.table), func(x *AuditEntry) bool {
		if x.Declared && !declared[x.Path] {
			gone = append(gone, x)
			return true
		}
		return false
	})
	changed := len(gone) > 0
	for _, want := range c.conf.Audit.Devices {
		p, _ := normalizeAuditPath(want.Path)
		i := slices.IndexFunc(table, func(x *AuditEntry) bool { return x.Path == p })
		if i < 0 {
			for _, x := range table {
				if strings.HasPrefix(x.Path, p) || strings.HasPrefix(p, x.Path) {
					return fmt.Errorf("audit device %s conflicts with the audit device at %s", p, x.Path)
				}
			}
			e := &AuditEntry{Path: p, Type: want.Type, Description: want.Description, Options: cloneStringMap(want.Options),
				Local: want.Local, Declared: true, UUID: newUUID()}
			d, err := c.newAuditDevice(ctx, e, false)
			if err != nil {
				return err
			}
			fresh = append(fresh, e)
			table = append(table, e)
			c.audit.Register(d)
			changed = true
			c.logger.Info("enabled audit device from the configuration", "path", p, "type", e.Type)
			continue
		}
		e := table[i]
		if !e.Declared {
			return fmt.Errorf("audit device %s is already enabled through the API: disable it (arca audit disable %s) or declare the device at another path", p, p)
		}
		if e.Type != want.Type || e.Description != want.Description || e.Local != want.Local || !maps.Equal(e.Options, want.Options) {
			next := *e
			next.Type, next.Description, next.Local, next.Options = want.Type, want.Description, want.Local, cloneStringMap(want.Options)
			e, table[i], changed = &next, &next, true
			c.logger.Info("changed audit device from the configuration", "path", p, "type", e.Type)
		}
		d, err := c.auditDevice(ctx, e)
		if err != nil {
			return err
		}
		c.audit.Register(d)
	}
	if !changed {
		return nil
	}
	if err := c.putJSON(ctx, auditTableKey, table); err != nil {
		return fmt.Errorf("storing the audit table: %w", err)
	}
	c.auditState.Store(&auditState{table: table, headers: st.headers})
	for _, x := range gone {
		if err := c.barrier.Delete(ctx, auditSaltKey(x.UUID)); err != nil {
			c.logger.Warn("deleting a removed audit device's salt failed", "path", x.Path, "error", err)
		}
		c.logger.Info("disabled audit device removed from the configuration", "path", x.Path)
	}
	return nil
}

// newAuditDevice builds the device of e under a fresh salt and stores the
// salt behind the barrier. Through the API the device must open its
// destination now, and a device that cannot is a 400. A declared device
// that cannot open it yet is enabled all the same and fails its writes
// until it can, as any device does after a restart: requests fail closed
// and the log says why, where failing the unseal would leave a server
// that is being initialised (which unseals once) with storage it cannot
// initialise again.
func (c *Core) newAuditDevice(ctx context.Context, e *AuditEntry, fromAPI bool) (*audit.Device, error) {
	salt, err := audit.NewSalt()
	if err != nil {
		return nil, err
	}
	conf := audit.Config{Path: e.Path, Type: e.Type, Options: e.Options, Salt: salt, Logger: c.logger}
	var d *audit.Device
	if fromAPI {
		if d, err = audit.New(conf); err != nil {
			return nil, logical.BadRequest("audit device %s: %v", e.Path, err)
		}
	} else if d, err = audit.NewLazy(conf); err != nil {
		return nil, fmt.Errorf("audit device %s: %w", e.Path, err)
	}
	if err := c.barrier.Put(ctx, &storage.Entry{Key: auditSaltKey(e.UUID), Value: salt}); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func normalizeAuditPath(p string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return "", logical.BadRequest("an audit device needs a path")
	}
	if strings.Contains(p, "//") || strings.ContainsAny(p, "*+") {
		return "", logical.BadRequest("invalid audit path %q", p)
	}
	return p + "/", nil
}

// EnableAudit enables an audit device through the API (sys/audit). It is
// refused unless the server configuration allows it, and so is the prefix
// option. The device's destination is opened before the table is stored,
// so a device that cannot write is refused.
func (c *Core) EnableAudit(ctx context.Context, e *AuditEntry) error {
	if !c.conf.Audit.AllowAPICreation {
		return logical.BadRequest("audit devices cannot be enabled through the API on this server: declare the device in an audit stanza of the server configuration, or set unsafe_allow_api_audit_creation = true there")
	}
	if e.Options["prefix"] != "" && !c.conf.Audit.AllowPrefix {
		return logical.BadRequest(errAuditPrefix)
	}
	c.auditMu.Lock()
	defer c.auditMu.Unlock()
	p, err := normalizeAuditPath(e.Path)
	if err != nil {
		return err
	}
	e.Path = p
	e.Declared = false
	if !slices.Contains(audit.Types, e.Type) {
		return logical.BadRequest("unknown audit device type %q (file, socket or syslog)", e.Type)
	}
	for _, x := range c.auditState.Load().table {
		if strings.HasPrefix(x.Path, p) || strings.HasPrefix(p, x.Path) {
			return logical.BadRequest("path already in use: %q conflicts with the audit device at %q", p, x.Path)
		}
	}
	e.UUID = newUUID()
	d, err := c.newAuditDevice(ctx, e, true)
	if err != nil {
		return err
	}
	table := append(slices.Clone(c.auditState.Load().table), e)
	if err := c.putJSON(ctx, auditTableKey, table); err != nil {
		d.Close()
		c.barrier.Delete(ctx, auditSaltKey(e.UUID))
		return err
	}
	c.auditState.Store(&auditState{table: table, headers: c.auditState.Load().headers})
	c.audit.Register(d)
	c.logger.Info("enabled audit device", "path", p, "type", e.Type)
	return nil
}

// DisableAudit disables the audit device at path and forgets its salt. A
// device declared in the server configuration is refused: removing its
// stanza disables it.
func (c *Core) DisableAudit(ctx context.Context, path string) error {
	c.auditMu.Lock()
	defer c.auditMu.Unlock()
	p, err := normalizeAuditPath(path)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(c.auditState.Load().table, func(x *AuditEntry) bool { return x.Path == p })
	if i < 0 {
		return nil // disabling what is not enabled succeeds, as in Vault
	}
	gone := c.auditState.Load().table[i]
	if gone.Declared {
		return logical.BadRequest("audit device %s is declared in the server configuration: remove its audit stanza there and restart the server to disable it", p)
	}
	table := slices.Delete(slices.Clone(c.auditState.Load().table), i, i+1)
	if err := c.putJSON(ctx, auditTableKey, table); err != nil {
		return err
	}
	c.auditState.Store(&auditState{table: table, headers: c.auditState.Load().headers})
	c.audit.Deregister(p)
	if err := c.barrier.Delete(ctx, auditSaltKey(gone.UUID)); err != nil {
		c.logger.Warn("deleting a disabled audit device's salt failed", "path", p, "error", err)
	}
	c.logger.Info("disabled audit device", "path", p)
	return nil
}

// AuditDevices returns the audit table.
func (c *Core) AuditDevices() []*AuditEntry {
	c.auditMu.Lock()
	defer c.auditMu.Unlock()
	return slices.Clone(c.auditState.Load().table)
}

// AuditHash returns what the device at path writes for input.
func (c *Core) AuditHash(path, input string) (string, error) {
	p, err := normalizeAuditPath(path)
	if err != nil {
		return "", err
	}
	h, ok := c.audit.Hash(p, input)
	if !ok {
		return "", logical.BadRequest("no audit device at %q", p)
	}
	return h, nil
}

// ReopenAudit reopens every audit device's file or socket, for SIGHUP.
func (c *Core) ReopenAudit() error {
	c.stateLock.RLock()
	defer c.stateLock.RUnlock()
	if c.Sealed() {
		return nil
	}
	return c.audit.Reopen()
}

func (c *Core) setAuditedHeader(ctx context.Context, name string, hmac, remove bool) error {
	c.auditMu.Lock()
	defer c.auditMu.Unlock()
	name = strings.ToLower(strings.TrimSpace(name))
	if name == "" {
		return logical.BadRequest("a header name is required")
	}
	next := make(map[string]bool, len(c.auditState.Load().headers)+1)
	for k, v := range c.auditState.Load().headers {
		next[k] = v
	}
	if remove {
		delete(next, name)
	} else {
		next[name] = hmac
	}
	if err := c.putJSON(ctx, auditedHeadersKey, next); err != nil {
		return err
	}
	c.auditState.Store(&auditState{table: c.auditState.Load().table, headers: next})
	return nil
}

// auditHeaders picks the configured headers out of a request's headers,
// keyed by lower-case name as Vault writes them.
func auditHeaders(configured map[string]bool, h http.Header) map[string][]string {
	if len(configured) == 0 || len(h) == 0 {
		return nil
	}
	var out map[string][]string
	for name := range configured {
		if vs, ok := h[http.CanonicalHeaderKey(name)]; ok {
			if out == nil {
				out = map[string][]string{}
			}
			out[name] = vs
		}
	}
	return out
}

// auditInfo is how sys/audit describes a device.
func auditInfo(e *AuditEntry) map[string]any {
	opts := e.Options
	if opts == nil {
		opts = map[string]string{}
	}
	return map[string]any{
		"type":        e.Type,
		"description": e.Description,
		"options":     opts,
		"path":        e.Path,
		"local":       e.Local,
	}
}
