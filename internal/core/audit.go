package core

import (
	"context"
	"fmt"
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
		salt, err := c.barrier.Get(ctx, auditSaltKey(e.UUID))
		if err != nil {
			return fmt.Errorf("reading the salt of audit device %s: %w", e.Path, err)
		}
		if salt == nil {
			return fmt.Errorf("audit device %s has lost its salt", e.Path)
		}
		d, err := audit.NewLazy(audit.Config{Path: e.Path, Type: e.Type, Options: e.Options, Salt: salt.Value, Logger: c.logger})
		if err != nil {
			return fmt.Errorf("audit device %s: %w", e.Path, err)
		}
		c.audit.Register(d)
	}
	c.auditState.Store(&auditState{table: table, headers: headers})
	return nil
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

// EnableAudit enables an audit device. The device's destination is opened
// before the table is stored, so a device that cannot write is refused.
func (c *Core) EnableAudit(ctx context.Context, e *AuditEntry) error {
	c.auditMu.Lock()
	defer c.auditMu.Unlock()
	p, err := normalizeAuditPath(e.Path)
	if err != nil {
		return err
	}
	e.Path = p
	if !slices.Contains(audit.Types, e.Type) {
		return logical.BadRequest("unknown audit device type %q (file, socket or syslog)", e.Type)
	}
	for _, x := range c.auditState.Load().table {
		if strings.HasPrefix(x.Path, p) || strings.HasPrefix(p, x.Path) {
			return logical.BadRequest("path already in use: %q conflicts with the audit device at %q", p, x.Path)
		}
	}
	e.UUID = newUUID()
	salt, err := audit.NewSalt()
	if err != nil {
		return err
	}
	d, err := audit.New(audit.Config{Path: p, Type: e.Type, Options: e.Options, Salt: salt, Logger: c.logger})
	if err != nil {
		return logical.BadRequest("audit device %s: %v", p, err)
	}
	if err := c.barrier.Put(ctx, &storage.Entry{Key: auditSaltKey(e.UUID), Value: salt}); err != nil {
		d.Close()
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

// DisableAudit disables the audit device at path and forgets its salt.
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
