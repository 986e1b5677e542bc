package core

import (
	"context"
	"strings"

	"github.com/arcasec/arca/internal/logical"
	fw "github.com/arcasec/arca/internal/logical/framework"
)

// The sys/ paths for audit devices, audited headers and the access report.

var auditFields = map[string]*fw.FieldSchema{
	"path":        {Type: fw.TypeString},
	"type":        {Type: fw.TypeString, Description: "file, socket or syslog"},
	"description": {Type: fw.TypeString},
	"options":     {Type: fw.TypeKVPairs, Description: "device options, e.g. file_path for file"},
	"local":       {Type: fw.TypeBool},
}

func (b *systemBackend) auditPaths() []*fw.Path {
	rd, up, del, list := logical.ReadOperation, logical.UpdateOperation, logical.DeleteOperation, logical.ListOperation
	type opmap = map[logical.Operation]fw.OperationFunc
	return []*fw.Path{
		{Pattern: "audit/?", Operations: opmap{rd: b.listAudit}},
		{Pattern: "audit/(?P<path>.+)", Fields: auditFields, Operations: opmap{up: b.enableAudit, del: b.disableAudit}},
		{Pattern: "audit-hash/(?P<path>.+)", Fields: map[string]*fw.FieldSchema{"path": {Type: fw.TypeString}, "input": {Type: fw.TypeString, Required: true}}, Operations: opmap{up: b.auditHash}},
		{Pattern: "config/auditing/request-headers/?", Operations: opmap{rd: b.listAuditedHeaders}},
		{Pattern: "config/auditing/request-headers/(?P<header>.+)", Fields: map[string]*fw.FieldSchema{"header": {Type: fw.TypeString}, "hmac": {Type: fw.TypeBool}}, Operations: opmap{rd: b.readAuditedHeader, up: b.writeAuditedHeader, del: b.deleteAuditedHeader}},
		{Pattern: "access-report/?", Operations: opmap{list: b.listAccessReport(false)}},
		{Pattern: "access-report/(?P<path>.+)/", Fields: map[string]*fw.FieldSchema{"path": {Type: fw.TypeString}}, Operations: opmap{list: b.listAccessReport(true)}},
		{Pattern: "access-report/(?P<path>.+)", Fields: map[string]*fw.FieldSchema{"path": {Type: fw.TypeString}}, Operations: opmap{rd: b.readAccessReport}},
	}
}

func (b *systemBackend) listAudit(ctx context.Context, req *logical.Request, _ *fw.FieldData) (*logical.Response, error) {
	data := map[string]any{}
	for _, e := range b.core.AuditDevices() {
		data[e.Path] = auditInfo(e)
	}
	return &logical.Response{Data: data}, nil
}

func (b *systemBackend) enableAudit(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	typ := d.String("type")
	if typ == "" {
		return nil, logical.BadRequest("field type is required (file, socket or syslog)")
	}
	e := &AuditEntry{
		Path:        d.String("path"),
		Type:        typ,
		Description: d.String("description"),
		Options:     cloneStringMap(d.Get("options").(map[string]string)),
		Local:       d.Bool("local"),
	}
	return nil, b.core.EnableAudit(ctx, e)
}

func (b *systemBackend) disableAudit(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	return nil, b.core.DisableAudit(ctx, d.String("path"))
}

func (b *systemBackend) auditHash(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	h, err := b.core.AuditHash(d.String("path"), d.String("input"))
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{"hash": h}}, nil
}

func (b *systemBackend) listAuditedHeaders(ctx context.Context, req *logical.Request, _ *fw.FieldData) (*logical.Response, error) {
	headers := map[string]any{}
	if st := b.core.auditState.Load(); st != nil {
		for k, v := range st.headers {
			headers[k] = map[string]any{"hmac": v}
		}
	}
	return &logical.Response{Data: map[string]any{"headers": headers}}, nil
}

func (b *systemBackend) readAuditedHeader(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	name := strings.ToLower(d.String("header"))
	st := b.core.auditState.Load()
	if st == nil {
		return nil, nil
	}
	hmac, ok := st.headers[name]
	if !ok {
		return nil, nil
	}
	return &logical.Response{Data: map[string]any{name: map[string]any{"hmac": hmac}}}, nil
}

func (b *systemBackend) writeAuditedHeader(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	return nil, b.core.setAuditedHeader(ctx, d.String("header"), d.Bool("hmac"), false)
}

func (b *systemBackend) deleteAuditedHeader(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	return nil, b.core.setAuditedHeader(ctx, d.String("header"), false, true)
}

func (b *systemBackend) readAccessReport(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	p := strings.TrimPrefix(d.String("path"), "/")
	return &logical.Response{Data: b.core.access.report(p)}, nil
}

func (b *systemBackend) listAccessReport(withPrefix bool) fw.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
		prefix := ""
		if withPrefix {
			prefix = d.String("path") + "/"
		}
		keys := b.core.access.list(prefix)
		if len(keys) == 0 {
			return nil, nil
		}
		return &logical.Response{Data: map[string]any{"keys": keys}}, nil
	}
}

// authMountOf names the auth mount a token came from, by the path that
// created it (e.g. "auth/userpass/login/bob" -> "auth/userpass/").
func (c *Core) authMountOf(tokenPath string) string {
	if tokenPath == "" {
		return ""
	}
	if m, _ := c.mounts.route(tokenPath); m != nil {
		return m.entry.routePath()
	}
	return ""
}
