package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/arcasec/arca/internal/logical"
	fw "github.com/arcasec/arca/internal/logical/framework"
)

// The sys/quotas paths.

var rateLimitFields = map[string]*fw.FieldSchema{
	"name":           {Type: fw.TypeString},
	"type":           {Type: fw.TypeString},
	"path":           {Type: fw.TypeString, Description: "empty for every path, a mount such as secret/, or a path prefix"},
	"rate":           {Type: fw.TypeAny, Description: "requests allowed per interval, per client address"},
	"interval":       {Type: fw.TypeDuration, Default: "1s"},
	"block_interval": {Type: fw.TypeDuration},
	"role":           {Type: fw.TypeString},
	"inheritable":    {Type: fw.TypeBool},
	"group_by":       {Type: fw.TypeString},
	"secondary_rate": {Type: fw.TypeAny},
}

var quotaConfigFields = map[string]*fw.FieldSchema{
	"enable_rate_limit_audit_logging":    {Type: fw.TypeBool},
	"enable_rate_limit_response_headers": {Type: fw.TypeBool},
	"rate_limit_exempt_paths":            {Type: fw.TypeCommaStringSlice},
	"absolute_rate_limit_exempt_paths":   {Type: fw.TypeCommaStringSlice},
}

func (b *systemBackend) quotaPaths() []*fw.Path {
	rd, up, del, list := logical.ReadOperation, logical.UpdateOperation, logical.DeleteOperation, logical.ListOperation
	type opmap = map[logical.Operation]fw.OperationFunc
	return []*fw.Path{
		{Pattern: "quotas/config", Fields: quotaConfigFields, Operations: opmap{rd: b.readQuotaConfig, up: b.writeQuotaConfig}},
		{Pattern: "quotas/rate-limit/?", Operations: opmap{list: b.listRateLimits}},
		{Pattern: "quotas/rate-limit/(?P<name>[^/]+)", Fields: rateLimitFields, Operations: opmap{rd: b.readRateLimit, up: b.writeRateLimit, del: b.deleteRateLimit}},
	}
}

func parseRate(v any) (float64, error) {
	var f float64
	var err error
	switch v := v.(type) {
	case json.Number:
		f, err = v.Float64()
	case string:
		f, err = strconv.ParseFloat(v, 64)
	case float64:
		f = v
	case int:
		f = float64(v)
	default:
		return 0, fmt.Errorf("must be a number")
	}
	if err != nil {
		return 0, fmt.Errorf("must be a number")
	}
	if !(f > 0) || f > 1e9 {
		return 0, fmt.Errorf("must be a number above 0")
	}
	return f, nil
}

func (b *systemBackend) writeRateLimit(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	name := d.String("name")
	if t := d.String("type"); t != "" && t != "rate-limit" {
		return nil, logical.BadRequest("type must be rate-limit, got %q", t)
	}
	var q RateLimitQuota
	old := b.core.quotas.set.Load().quotas[name]
	if old != nil {
		q = old.RateLimitQuota
	}
	q.Name = name
	if v, ok := d.Raw["rate"]; ok || old == nil {
		r, err := parseRate(v)
		if err != nil {
			return nil, logical.BadRequest("invalid rate: %v", err)
		}
		q.Rate = r
	}
	if _, ok := d.Raw["path"]; ok || old == nil {
		p := strings.TrimPrefix(d.String("path"), "/")
		if strings.Contains(p, "*") {
			return nil, logical.BadRequest("invalid path %q: globs are not supported; name a mount or a path prefix", p)
		}
		if p != "" {
			if m, _ := b.core.mounts.route(p); m == nil {
				return nil, logical.BadRequest("invalid path %q: no mount matches it", p)
			}
		}
		q.Path = p
	}
	if _, ok := d.Raw["interval"]; ok {
		q.Interval = d.Duration("interval")
		if q.Interval <= 0 {
			return nil, logical.BadRequest("interval must be a positive duration, got %v", d.Raw["interval"])
		}
	} else if old == nil {
		q.Interval = time.Second
	}
	if _, ok := d.Raw["block_interval"]; ok {
		q.BlockInterval = d.Duration("block_interval")
		if q.BlockInterval < 0 {
			return nil, logical.BadRequest("block_interval cannot be negative")
		}
	}
	if _, ok := d.Raw["inheritable"]; ok {
		q.Inheritable = d.Bool("inheritable")
	}
	if _, ok := d.Raw["role"]; ok || old == nil {
		q.Role = strings.TrimSpace(d.String("role"))
	}
	if q.Role != "" {
		if q.Path != "" && !strings.HasSuffix(q.Path, "/") {
			q.Path += "/"
		}
		if err := b.checkRoleQuotaPath(ctx, q.Path); err != nil {
			return nil, err
		}
	}
	return nil, b.core.quotas.put(ctx, q)
}

func (b *systemBackend) readRateLimit(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	lq := b.core.quotas.set.Load().quotas[d.String("name")]
	if lq == nil {
		return nil, nil
	}
	return &logical.Response{Data: map[string]any{
		"name":           lq.Name,
		"type":           "rate-limit",
		"path":           lq.Path,
		"rate":           lq.Rate,
		"interval":       int64(lq.Interval / time.Second),
		"block_interval": int64(lq.BlockInterval / time.Second),
		"role":           lq.Role,
		"inheritable":    lq.Inheritable,
	}}, nil
}

func (b *systemBackend) deleteRateLimit(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	return nil, b.core.quotas.delete(ctx, d.String("name"))
}

func (b *systemBackend) listRateLimits(ctx context.Context, req *logical.Request, _ *fw.FieldData) (*logical.Response, error) {
	var keys []string
	for k := range b.core.quotas.set.Load().quotas {
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	sort.Strings(keys)
	return &logical.Response{Data: map[string]any{"keys": keys}}, nil
}

func (b *systemBackend) readQuotaConfig(ctx context.Context, req *logical.Request, _ *fw.FieldData) (*logical.Response, error) {
	conf := b.core.quotas.set.Load().config
	return &logical.Response{Data: map[string]any{
		"enable_rate_limit_audit_logging":    conf.EnableRateLimitAuditLogging,
		"enable_rate_limit_response_headers": conf.EnableRateLimitResponseHeaders,
		"rate_limit_exempt_paths":            nonNil(conf.RateLimitExemptPaths),
		"absolute_rate_limit_exempt_paths":   nonNil(conf.AbsoluteRateLimitExemptPaths),
	}}, nil
}

func (b *systemBackend) writeQuotaConfig(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	conf := b.core.quotas.set.Load().config
	if _, ok := d.Raw["enable_rate_limit_audit_logging"]; ok {
		conf.EnableRateLimitAuditLogging = d.Bool("enable_rate_limit_audit_logging")
	}
	if _, ok := d.Raw["enable_rate_limit_response_headers"]; ok {
		conf.EnableRateLimitResponseHeaders = d.Bool("enable_rate_limit_response_headers")
	}
	if _, ok := d.Raw["rate_limit_exempt_paths"]; ok {
		conf.RateLimitExemptPaths = d.Strings("rate_limit_exempt_paths")
	}
	if _, ok := d.Raw["absolute_rate_limit_exempt_paths"]; ok {
		conf.AbsoluteRateLimitExemptPaths = d.Strings("absolute_rate_limit_exempt_paths")
	}
	return nil, b.core.quotas.setConfig(ctx, conf)
}

// checkRoleQuotaPath checks that a quota with a role names an auth mount
// whose method has roles.
func (b *systemBackend) checkRoleQuotaPath(ctx context.Context, path string) error {
	m := b.core.mounts.get(path)
	if m == nil || m.entry.Table != authTable || m.entry.routePath() != path {
		return logical.BadRequest("invalid path %q for a quota with a role: give the auth mount the role belongs to, such as auth/approle/", path)
	}
	_, err := m.backend.HandleRequest(ctx, &logical.Request{
		ID: newUUID(), Operation: logical.ResolveRoleOperation, Path: "login", Data: map[string]any{},
		Storage: m.view, MountPoint: m.entry.routePath(), MountType: m.entry.Type,
	})
	if errors.Is(err, logical.ErrUnsupportedOperation) {
		return logical.BadRequest("invalid role: the %s auth method at %s has no roles for a quota to name", m.entry.Type, path)
	}
	return nil
}
