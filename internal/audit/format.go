package audit

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/arcasec/arca/internal/logical"
)

// The entry shapes follow the JSON Vault's audit devices write (time, type,
// auth, request, response, error), so log pipelines built for Vault read
// Arca's lines unchanged. Entries are encoded by hand, hashing values on the
// way out: with reflection and a hashed copy of the data, a device cost a
// third of a KV read's throughput.

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

// valueEncoder writes values as JSON, passing strings through hash first
// (or writing them as they are, for log_raw).
type valueEncoder struct {
	h   *Hasher
	raw bool
	// plain lists map keys whose values are written as they are.
	plain []string
}

func (e valueEncoder) str(b []byte, s string) []byte {
	if e.raw || s == "" {
		return appendJSONString(b, s)
	}
	return e.h.appendHash(b, s)
}

// object writes the members of one JSON object, placing the commas.
type object struct {
	b     []byte
	empty bool
}

func openObject(b []byte) *object { return &object{b: append(b, '{'), empty: true} }

// key starts a member.
func (o *object) key(name string) *object {
	if !o.empty {
		o.b = append(o.b, ',')
	}
	o.empty = false
	o.b = append(o.b, '"')
	o.b = append(o.b, name...)
	o.b = append(o.b, '"', ':')
	return o
}

// anyKey starts a member whose name may need escaping.
func (o *object) anyKey(name string) {
	if !o.empty {
		o.b = append(o.b, ',')
	}
	o.empty = false
	o.b = append(appendJSONString(o.b, name), ':')
}

func (o *object) str(name, v string) {
	if v != "" {
		o.key(name)
		o.b = appendJSONString(o.b, v)
	}
}

func (o *object) int(name string, v int64) {
	if v != 0 {
		o.key(name)
		o.b = strconv.AppendInt(o.b, v, 10)
	}
}

func (o *object) close() []byte { return append(o.b, '}') }

// entry appends the entry of the given type to b.
func (f formatter) entry(b []byte, typ string, in *Input, h *Hasher) ([]byte, error) {
	enc := valueEncoder{h: h, raw: f.raw}
	accessor := enc
	if !f.hmacAccessor {
		accessor.raw = true
	}
	req := in.Request

	b = append(b, f.prefix...)
	start := len(b)
	e := openObject(b)
	e.key("time")
	e.b = append(in.Time.UTC().AppendFormat(append(e.b, '"'), time.RFC3339Nano), '"')
	e.str("type", typ)
	// The auth and request members are the same in the request and the
	// response entry: encode them once per request and device.
	if in.commonBy != h {
		mark := len(e.b)
		f.appendCommon(e, in, enc, accessor)
		in.common = append(in.common[:0], e.b[mark:]...)
		in.commonBy = h
	} else {
		e.b = append(e.b, in.common...)
	}

	if typ == "response" {
		e.key("response")
		o := openObject(e.b)
		appendMount(o, req, in)
		if resp := in.Response; resp != nil {
			if resp.Auth != nil {
				o.key("auth")
				o.b = appendAuth(o.b, resp.Auth, enc, accessor, nil, nil)
			}
			if resp.Secret != nil {
				o.key("secret")
				o.b = append(o.b, `{"lease_id":`...)
				o.b = append(appendJSONString(o.b, resp.Secret.LeaseID), '}')
			}
			switch {
			case resp.Raw != nil && resp.Data == nil:
				// sys/metrics and the like: record that a body went out, not
				// the body.
				o.key("data")
				o.b = append(o.b, `{"raw_body_bytes":`...)
				o.b = append(strconv.AppendInt(o.b, int64(len(resp.Raw)), 10), '}')
			case len(resp.Data) > 0:
				data := resp.Data
				if f.elideLists && req.Operation == logical.ListOperation {
					data = elideList(data)
				}
				o.key("data")
				o.b = valueEncoder{h: enc.h, raw: enc.raw, plain: in.NonHMACResponseKeys}.value(o.b, data)
			}
			if len(resp.Warnings) > 0 {
				o.key("warnings")
				o.b = valueEncoder{raw: true}.value(o.b, resp.Warnings)
			}
			if w := resp.WrapInfo; w != nil {
				o.key("wrap_info")
				o.b = appendWrapInfo(o.b, w, enc, accessor)
			}
		}
		e.b = o.close()
	}
	if in.Err != nil {
		msg := in.Err.Error()
		if _, secret, isAccessor := logical.SplitPathToken(in.Path); secret != "" && hashesSecret(isAccessor, enc, accessor) {
			// An error may quote the path ("no handler for route ...").
			msg = strings.ReplaceAll(msg, secret, h.Hash(secret))
		}
		e.str("error", msg)
	}
	b = append(e.close(), '\n')
	if f.jsonx {
		x, err := toJSONx(b[start:])
		if err != nil {
			return nil, err
		}
		b = append(append(b[:start], x...), '\n')
	}
	return b, nil
}

// hashesSecret reports whether a token (or, with isAccessor, an accessor)
// is written as its HMAC: always, unless log_raw, or hmac_accessor=false
// for an accessor.
func hashesSecret(isAccessor bool, token, accessor valueEncoder) bool {
	if isAccessor {
		return !accessor.raw
	}
	return !token.raw
}

// appendCommon writes the auth and request members of an entry.
func (f formatter) appendCommon(e *object, in *Input, enc, accessor valueEncoder) {
	req := in.Request
	// The caller's token and accessor appear twice; hash each once, and
	// remember the pair for the token's next request.
	var tokenHash, accessorHash []byte
	switch {
	case enc.raw:
		if req.ClientToken != "" {
			tokenHash = appendJSONString(nil, req.ClientToken)
		}
		if req.ClientTokenAccessor != "" {
			accessorHash = appendJSONString(nil, req.ClientTokenAccessor)
		}
	case req.ClientToken != "" || req.ClientTokenAccessor != "":
		tokenHash, accessorHash = enc.h.tokenHashes(req.ClientToken, req.ClientTokenAccessor)
		if req.ClientTokenAccessor != "" && !f.hmacAccessor {
			accessorHash = appendJSONString(nil, req.ClientTokenAccessor)
		}
	}
	if in.Auth != nil {
		e.key("auth")
		e.b = appendAuth(e.b, in.Auth, enc, accessor, tokenHash, accessorHash)
	}

	e.key("request")
	r := openObject(e.b)
	r.str("id", req.ID)
	r.str("operation", string(req.Operation))
	appendMount(r, req, in)
	if tokenHash != nil {
		r.key("client_token")
		r.b = append(r.b, tokenHash...)
	}
	if accessorHash != nil {
		r.key("client_token_accessor")
		r.b = append(r.b, accessorHash...)
	}
	r.key("namespace")
	r.b = append(r.b, `{"id":"root"}`...)
	path := in.Path
	if prefix, secret, isAccessor := logical.SplitPathToken(in.Path); secret != "" && hashesSecret(isAccessor, enc, accessor) {
		path = prefix + enc.h.Hash(secret)
	}
	r.key("path")
	r.b = appendJSONString(r.b, path)
	if len(req.Data) > 0 {
		r.key("data")
		r.b = valueEncoder{h: enc.h, raw: enc.raw, plain: in.NonHMACRequestKeys}.value(r.b, req.Data)
	}
	host, port := remoteHostPort(req.RemoteAddr)
	r.str("remote_address", host)
	r.int("remote_port", int64(port))
	r.int("wrap_ttl", int64(req.WrapTTL/time.Second))
	if len(in.Headers) > 0 {
		r.key("headers")
		hd := openObject(r.b)
		for _, k := range appendSortedKeys(nil, in.Headers) {
			hd.key(k)
			hd.b = append(hd.b, '[')
			for j, v := range in.Headers[k] {
				if j > 0 {
					hd.b = append(hd.b, ',')
				}
				if in.HMACHeaders[k] {
					hd.b = enc.str(hd.b, v)
				} else {
					hd.b = appendJSONString(hd.b, v)
				}
			}
			hd.b = append(hd.b, ']')
		}
		r.b = hd.close()
	}
	e.b = r.close()
}

func appendMount(o *object, req *logical.Request, in *Input) {
	o.str("mount_point", req.MountPoint)
	o.str("mount_type", req.MountType)
	o.str("mount_accessor", in.MountAccessor)
	o.str("mount_class", in.MountClass)
}

// appendWrapInfo writes a wrapped response's wrap_info: the wrapping token
// hashed like any token, so the trail shows who was handed which token.
func appendWrapInfo(b []byte, w *logical.WrapInfo, enc, accessor valueEncoder) []byte {
	o := openObject(b)
	o.key("token")
	o.b = enc.str(o.b, w.Token)
	o.key("accessor")
	o.b = accessor.str(o.b, w.Accessor)
	o.int("ttl", int64(w.TTL/time.Second))
	o.key("creation_time")
	o.b = append(w.CreationTime.UTC().AppendFormat(append(o.b, '"'), time.RFC3339Nano), '"')
	o.str("creation_path", w.CreationPath)
	if w.WrappedAccessor != "" {
		o.key("wrapped_accessor")
		o.b = accessor.str(o.b, w.WrappedAccessor)
	}
	return o.close()
}

func appendAuth(b []byte, a *logical.Auth, enc, accessor valueEncoder, tokenHash, accessorHash []byte) []byte {
	o := openObject(b)
	if a.ClientToken != "" {
		o.key("client_token")
		if tokenHash != nil {
			o.b = append(o.b, tokenHash...)
		} else {
			o.b = enc.str(o.b, a.ClientToken)
		}
	}
	if a.Accessor != "" {
		o.key("accessor")
		if accessorHash != nil {
			o.b = append(o.b, accessorHash...)
		} else {
			o.b = accessor.str(o.b, a.Accessor)
		}
	}
	plain := valueEncoder{raw: true}
	o.str("display_name", a.DisplayName)
	if len(a.Policies) > 0 {
		o.key("policies")
		o.b = plain.value(o.b, a.Policies)
	}
	if len(a.TokenPolicies) > 0 {
		o.key("token_policies")
		o.b = plain.value(o.b, a.TokenPolicies)
	}
	if len(a.IdentityPolicies) > 0 {
		o.key("identity_policies")
		o.b = plain.value(o.b, a.IdentityPolicies)
	}
	if len(a.Metadata) > 0 {
		o.key("metadata")
		o.b = plain.value(o.b, a.Metadata)
	}
	o.str("entity_id", a.EntityID)
	o.str("token_type", a.TokenType)
	o.int("token_ttl", int64(a.TTL/time.Second))
	o.int("num_uses", int64(a.NumUses))
	return o.close()
}

// elideList replaces the keys of a list response by their count, as
// Vault's elide_list_responses does.
func elideList(data map[string]any) map[string]any {
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
