package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/arcasec/arca/internal/logical"
)

// The entry shapes follow the JSON Vault's audit devices write, so log
// pipelines built for Vault read Arca's lines unchanged.

type entry struct {
	Time     string         `json:"time"`
	Type     string         `json:"type"`
	Auth     *entryAuth     `json:"auth,omitempty"`
	Request  *entryRequest  `json:"request,omitempty"`
	Response *entryResponse `json:"response,omitempty"`
	Error    string         `json:"error,omitempty"`
}

type entryAuth struct {
	ClientToken   string            `json:"client_token,omitempty"`
	Accessor      string            `json:"accessor,omitempty"`
	DisplayName   string            `json:"display_name,omitempty"`
	Policies      []string          `json:"policies,omitempty"`
	TokenPolicies []string          `json:"token_policies,omitempty"`
	Metadata      map[string]string `json:"metadata,omitempty"`
	EntityID      string            `json:"entity_id,omitempty"`
	TokenType     string            `json:"token_type,omitempty"`
	TokenTTL      int64             `json:"token_ttl,omitempty"`
	NumUses       int               `json:"num_uses,omitempty"`
}

type entryNamespace struct {
	ID string `json:"id"`
}

type entryRequest struct {
	ID                  string              `json:"id"`
	Operation           string              `json:"operation"`
	MountPoint          string              `json:"mount_point,omitempty"`
	MountType           string              `json:"mount_type,omitempty"`
	MountAccessor       string              `json:"mount_accessor,omitempty"`
	MountClass          string              `json:"mount_class,omitempty"`
	ClientToken         string              `json:"client_token,omitempty"`
	ClientTokenAccessor string              `json:"client_token_accessor,omitempty"`
	Namespace           entryNamespace      `json:"namespace"`
	Path                string              `json:"path"`
	Data                map[string]any      `json:"data,omitempty"`
	RemoteAddress       string              `json:"remote_address,omitempty"`
	RemotePort          int                 `json:"remote_port,omitempty"`
	WrapTTL             int64               `json:"wrap_ttl,omitempty"`
	Headers             map[string][]string `json:"headers,omitempty"`
}

type entrySecret struct {
	LeaseID string `json:"lease_id"`
}

type entryResponse struct {
	MountPoint    string         `json:"mount_point,omitempty"`
	MountType     string         `json:"mount_type,omitempty"`
	MountAccessor string         `json:"mount_accessor,omitempty"`
	MountClass    string         `json:"mount_class,omitempty"`
	Auth          *entryAuth     `json:"auth,omitempty"`
	Secret        *entrySecret   `json:"secret,omitempty"`
	Data          map[string]any `json:"data,omitempty"`
	Warnings      []string       `json:"warnings,omitempty"`
}

// formatter turns an Input into one line.
type formatter struct {
	jsonx        bool
	prefix       string
	raw          bool // log_raw: write values in plaintext (for debugging only)
	hmacAccessor bool
	elideLists   bool
}

func newFormatter(o options) (formatter, error) {
	var f formatter
	switch v, _ := o.get("format"); v {
	case "", "json":
	case "jsonx":
		f.jsonx = true
	default:
		return f, fmt.Errorf("option format: %q is not json or jsonx", v)
	}
	f.prefix, _ = o.get("prefix")
	var err error
	if f.raw, err = o.bool("log_raw", false); err != nil {
		return f, err
	}
	if f.hmacAccessor, err = o.bool("hmac_accessor", true); err != nil {
		return f, err
	}
	if f.elideLists, err = o.bool("elide_list_responses", false); err != nil {
		return f, err
	}
	return f, nil
}

func (f formatter) entry(typ string, in *Input, h *Hasher) ([]byte, error) {
	hash := h.Hash
	hashData := h.hashMap
	if f.raw {
		hash = func(s string) string { return s }
		hashData = func(m map[string]any) map[string]any { return m }
	}
	hashAccessor := hash
	if !f.hmacAccessor {
		hashAccessor = func(s string) string { return s }
	}
	hashOpt := func(fn func(string) string, s string) string {
		if s == "" {
			return ""
		}
		return fn(s)
	}

	req := in.Request
	e := entry{
		Time:  in.Time.UTC().Format(time.RFC3339Nano),
		Type:  typ,
		Auth:  f.auth(in.Auth, hashOpt, hash, hashAccessor),
		Error: errorText(in.Err),
	}
	host, port := remoteHostPort(req.RemoteAddr)
	e.Request = &entryRequest{
		ID:                  req.ID,
		Operation:           string(req.Operation),
		MountPoint:          req.MountPoint,
		MountType:           req.MountType,
		MountAccessor:       in.MountAccessor,
		MountClass:          in.MountClass,
		ClientToken:         hashOpt(hash, req.ClientToken),
		ClientTokenAccessor: hashOpt(hashAccessor, req.ClientTokenAccessor),
		Namespace:           entryNamespace{ID: "root"},
		Path:                in.Path,
		Data:                hashData(req.Data),
		RemoteAddress:       host,
		RemotePort:          port,
		WrapTTL:             int64(req.WrapTTL / time.Second),
	}
	if len(in.Headers) > 0 {
		hdrs := make(map[string][]string, len(in.Headers))
		for k, vs := range in.Headers {
			if in.HMACHeaders[k] {
				hv := make([]string, len(vs))
				for i, v := range vs {
					hv[i] = hash(v)
				}
				vs = hv
			}
			hdrs[k] = vs
		}
		e.Request.Headers = hdrs
	}
	if typ == "response" {
		r := &entryResponse{
			MountPoint:    req.MountPoint,
			MountType:     req.MountType,
			MountAccessor: in.MountAccessor,
			MountClass:    in.MountClass,
		}
		if resp := in.Response; resp != nil {
			r.Auth = f.auth(resp.Auth, hashOpt, hash, hashAccessor)
			if resp.Secret != nil {
				r.Secret = &entrySecret{LeaseID: resp.Secret.LeaseID}
			}
			data := resp.Data
			if f.elideLists && req.Operation == logical.ListOperation {
				data = elideList(data)
			}
			if resp.Raw != nil && data == nil {
				// sys/metrics and the like: record that a body went out, not
				// the body.
				data = map[string]any{"raw_body_bytes": len(resp.Raw)}
			} else {
				data = hashData(data)
			}
			r.Data = data
			r.Warnings = resp.Warnings
		}
		e.Response = r
	}
	var buf bytes.Buffer
	buf.WriteString(f.prefix)
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, err
	}
	if f.jsonx {
		x, err := toJSONx(buf.Bytes()[len(f.prefix):])
		if err != nil {
			return nil, err
		}
		buf.Truncate(len(f.prefix))
		buf.Write(x)
		buf.WriteByte('\n')
	}
	return buf.Bytes(), nil
}

func (f formatter) auth(a *logical.Auth, hashOpt func(func(string) string, string) string, hash, hashAccessor func(string) string) *entryAuth {
	if a == nil {
		return nil
	}
	return &entryAuth{
		ClientToken:   hashOpt(hash, a.ClientToken),
		Accessor:      hashOpt(hashAccessor, a.Accessor),
		DisplayName:   a.DisplayName,
		Policies:      a.Policies,
		TokenPolicies: a.TokenPolicies,
		Metadata:      a.Metadata,
		EntityID:      a.EntityID,
		TokenType:     a.TokenType,
		TokenTTL:      int64(a.TTL / time.Second),
		NumUses:       a.NumUses,
	}
}

// elideList replaces the keys of a list response by their count, as
// Vault's elide_list_responses does.
func elideList(data map[string]any) map[string]any {
	if data == nil {
		return nil
	}
	out := make(map[string]any, len(data))
	for k, v := range data {
		switch k {
		case "keys":
			if l, ok := v.([]string); ok {
				v = len(l)
			} else if l, ok := v.([]any); ok {
				v = len(l)
			}
		case "key_info":
			if m, ok := v.(map[string]any); ok {
				v = len(m)
			}
		}
		out[k] = v
	}
	return out
}
