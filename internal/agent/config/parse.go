package config

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/hcl/hcl/ast"
	"golang.org/x/sys/unix"

	"github.com/arcasec/arca/api"
	"github.com/arcasec/arca/internal/hclsafe"
)

// Defaults, as Vault Agent documents them.
const (
	DefaultRetries               = 12
	DefaultMinBackoff            = time.Second
	DefaultMaxBackoff            = 5 * time.Minute
	DefaultSinkMode              = os.FileMode(0o640)
	DefaultTemplatePerms         = os.FileMode(0o644)
	DefaultCommandTimeout        = 30 * time.Second
	DefaultStaticRenderInterval  = 5 * time.Minute
	DefaultMaxConnectionsPerHost = 10
	DefaultLeaseRenewalThreshold = 0.9
	DefaultRestartKillTimeout    = 30 * time.Second
)

// MethodTypes are the auto_auth method types the agent implements.
var MethodTypes = []string{"approle", "jwt", "token_file"}

// ignored are keys Vault Agent knows that change nothing Arca does (logging,
// telemetry and connection tuning); they are accepted and skipped.
var ignored = map[string][]string{
	"": {"telemetry", "log_level", "log_file", "log_format", "log_rotate_duration", "log_rotate_bytes",
		"log_rotate_max_files", "disable_mlock", "cluster_name", "default_max_request_duration",
		"disable_idle_connections", "disable_keep_alives", "ui"},
	"auto_auth": {"enable_reauth_on_new_credentials"},
	"cache": {"persist", "enforce_consistency", "when_inconsistent", "cache_static_secrets",
		"disable_caching_dynamic_secrets", "static_secret_token_capability_refresh_interval"},
	"listener": {"tls_max_version", "tls_cipher_suites", "tls_prefer_server_cipher_suites", "tls_key_exchange_preferences",
		"tls_disable_client_certs", "tls_auto_reload", "tls_auto_reload_interval",
		"max_request_size", "max_request_duration", "max_request_json_memory", "max_request_json_strings",
		"http_read_timeout", "http_read_header_timeout", "http_write_timeout", "http_idle_timeout",
		"telemetry", "profiling", "inflight_requests_logging", "purpose", "custom_response_headers",
		"cors_enabled", "cors_allowed_origins", "cors_allowed_headers", "cors_allow_credentials",
		"proxy_protocol_behavior", "proxy_protocol_authorized_addrs",
		"x_forwarded_for_authorized_addrs", "x_forwarded_for_hop_skips", "x_forwarded_for_reject_not_present",
		"x_forwarded_for_reject_not_authorized", "disable_unauthed_rekey_endpoints",
		"disable_unauthed_generate_root_endpoints", "cluster_address"},
}

// Parse parses HCL or JSON config text; name is used in error messages.
func Parse(src []byte, name string) (*Config, error) {
	p := &parser{name: name}
	file, err := hclsafe.Parse(string(src))
	if err != nil {
		return nil, p.errf(0, "", "parsing the configuration: %v", err)
	}
	root, ok := file.Node.(*ast.ObjectList)
	if !ok {
		return nil, p.errf(0, "", "the configuration must be a set of blocks and attributes")
	}
	c := &Config{TemplateConfig: TemplateConfig{
		StaticSecretRenderInterval: DefaultStaticRenderInterval,
		MaxConnectionsPerHost:      DefaultMaxConnectionsPerHost,
		LeaseRenewalThreshold:      DefaultLeaseRenewalThreshold,
	}}
	top := &body{entries: entries(root)}
	order, m := group(top)
	var cacheProxy *APIProxy
	var proxyHasToken bool
	for _, key := range order {
		es := m[key]
		var err error
		switch key {
		case "pid_file", "exit_after_auth":
			var e entry
			if e, err = p.single(top, es); err == nil {
				if key == "pid_file" {
					c.PidFile, err = p.str("", e)
				} else {
					c.ExitAfterAuth, err = p.boolean("", e)
				}
			}
		case "vault":
			err = p.vault(c, es)
		case "auto_auth":
			err = p.autoAuth(c, es)
		case "template":
			for _, e := range es {
				var t *Template
				if t, err = p.template(e); err != nil {
					break
				}
				c.Templates = append(c.Templates, t)
			}
		case "template_config":
			err = p.templateConfig(c, es)
		case "exec":
			err = p.exec(c, es)
		case "env_template":
			for _, e := range es {
				var t *EnvTemplate
				if t, err = p.envTemplate(e); err != nil {
					break
				}
				if slices.ContainsFunc(c.EnvTemplates, func(o *EnvTemplate) bool { return o.Name == t.Name }) {
					err = p.errf(e.line, fmt.Sprintf("env_template %q", t.Name), "the variable is given more than once")
					break
				}
				c.EnvTemplates = append(c.EnvTemplates, t)
			}
		case "api_proxy":
			var b *body
			if b, err = p.merged(es, "api_proxy"); err == nil {
				c.APIProxy, proxyHasToken, err = p.apiProxy(b, false)
			}
		case "cache":
			var b *body
			if b, err = p.merged(es, "cache"); err == nil {
				cacheProxy, _, err = p.apiProxy(b, true)
			}
		case "listener":
			for _, e := range es {
				var l *Listener
				if l, err = p.listener(e); err != nil {
					break
				}
				c.Listeners = append(c.Listeners, l)
			}
		default:
			if slices.Contains(ignored[""], key) {
				continue
			}
			err = p.errf(es[0].line, "", "unknown key %q", key)
		}
		if err != nil {
			return nil, err
		}
	}
	if cacheProxy != nil {
		switch {
		case c.APIProxy == nil:
			if cacheProxy.UseAutoAuthToken != "false" {
				c.APIProxy = cacheProxy
			}
		case proxyHasToken && cacheProxy.UseAutoAuthToken != "false":
			return nil, p.errf(m["cache"][0].line, "cache", "use_auto_auth_token is set both here and in api_proxy; remove it from the cache block")
		case !proxyHasToken:
			c.APIProxy.UseAutoAuthToken = cacheProxy.UseAutoAuthToken
		}
	}
	if c.Vault == nil {
		c.Vault = &Vault{Retries: DefaultRetries, TLSSkipVerify: api.DefaultConfig().TLSSkipVerify}
	}
	def := api.DefaultConfig()
	if c.Vault.Address == "" {
		c.Vault.Address = def.Address
	}
	if c.Vault.CACert == "" {
		c.Vault.CACert = def.CACert
	}
	if err := p.validate(c); err != nil {
		return nil, err
	}
	return c, nil
}

// validate checks what spans stanzas.
func (p *parser) validate(c *Config) error {
	if a := c.AutoAuth; a != nil && a.Method.WrapTTL > 0 {
		if len(a.Sinks) != 1 {
			return p.errf(0, "auto_auth", "a method with wrap_ttl needs exactly one sink, which receives the wrapped token")
		}
		if a.Sinks[0].WrapTTL > 0 {
			return p.errf(0, "auto_auth", "wrap_ttl is set on both the method and its sink; set it on one")
		}
	}
	if c.APIProxy != nil && c.APIProxy.UseAutoAuthToken != "false" {
		if c.AutoAuth == nil {
			return p.errf(0, "api_proxy", "use_auto_auth_token = %s needs an auto_auth block", c.APIProxy.UseAutoAuthToken)
		}
		if c.AutoAuth.Method.WrapTTL > 0 {
			return p.errf(0, "api_proxy", "use_auto_auth_token cannot be used when auto_auth wraps its token (method wrap_ttl)")
		}
	}
	if c.APIProxy != nil && len(c.Listeners) == 0 {
		return p.errf(0, "api_proxy", "needs at least one listener block, e.g. listener \"tcp\" { address = \"127.0.0.1:8100\" tls_disable = true }")
	}
	if len(c.EnvTemplates) > 0 && c.Exec == nil {
		return p.errf(0, "env_template", "needs an exec block: environment templates are given to the process exec starts")
	}
	return nil
}

func (p *parser) vault(c *Config, es []entry) error {
	b, err := p.merged(es, "vault")
	if err != nil {
		return err
	}
	v := &Vault{}
	def := api.DefaultConfig()
	v.TLSSkipVerify = def.TLSSkipVerify
	order, m := group(b)
	for _, k := range order {
		if k == "retry" {
			rb, err := p.merged(m[k], "vault.retry")
			if err != nil {
				return err
			}
			ro, rm := group(rb)
			for _, rk := range ro {
				if rk != "num_retries" {
					return p.errf(rm[rk][0].line, "vault.retry", "unknown key %q", rk)
				}
				e, err := p.single(rb, rm[rk])
				if err != nil {
					return err
				}
				if v.Retries, err = p.integer("vault.retry", e); err != nil {
					return err
				}
				if v.Retries < -1 {
					return p.errf(e.line, "vault.retry", "num_retries must be -1 (no retries), 0 (the default) or more")
				}
			}
			continue
		}
		e, err := p.single(b, m[k])
		if err != nil {
			return err
		}
		switch k {
		case "address":
			v.Address, err = p.str("vault", e)
		case "ca_cert":
			v.CACert, err = p.str("vault", e)
		case "ca_path":
			v.CAPath, err = p.str("vault", e)
		case "client_cert":
			v.ClientCert, err = p.str("vault", e)
		case "client_key":
			v.ClientKey, err = p.str("vault", e)
		case "tls_server_name":
			v.TLSServerName, err = p.str("vault", e)
		case "tls_skip_verify":
			v.TLSSkipVerify, err = p.boolean("vault", e)
		default:
			err = p.errf(e.line, "vault", "unknown key %q", k)
		}
		if err != nil {
			return err
		}
	}
	switch v.Retries {
	case 0:
		v.Retries = DefaultRetries
	case -1:
		v.Retries = 0
	}
	if (v.ClientCert == "") != (v.ClientKey == "") {
		return p.errf(b.line, "vault", "client_cert and client_key must be given together")
	}
	c.Vault = v
	return nil
}

func (p *parser) autoAuth(c *Config, es []entry) error {
	b, err := p.merged(es, "auto_auth")
	if err != nil {
		return err
	}
	a := &AutoAuth{}
	order, m := group(b)
	for _, k := range order {
		switch k {
		case "method":
			if len(m[k]) > 1 {
				return p.errf(m[k][1].line, "auto_auth", "only one method block is allowed")
			}
			if a.Method, err = p.method(m[k][0]); err != nil {
				return err
			}
		case "sink":
			for _, e := range m[k] {
				s, err := p.sink(e)
				if err != nil {
					return err
				}
				a.Sinks = append(a.Sinks, s)
			}
		default:
			if !slices.Contains(ignored["auto_auth"], k) {
				return p.errf(m[k][0].line, "auto_auth", "unknown key %q", k)
			}
		}
	}
	if a.Method == nil {
		return p.errf(b.line, "auto_auth", "a method block is required, e.g. method \"approle\" { config { ... } }")
	}
	c.AutoAuth = a
	return nil
}

// labeled opens a block that takes its type as a label (method "approle")
// or as a type attribute (method { type = "approle" }).
func (p *parser) labeled(e entry, name string) (typ string, b *body, err error) {
	skip := 0
	if len(e.labels) > 0 {
		typ, skip = e.labels[0], 1
	}
	b, err = p.inner(e, skip, name)
	if err != nil {
		return "", nil, err
	}
	kept := b.entries[:0:0]
	for _, in := range b.entries {
		if in.key == "type" && len(in.labels) == 0 {
			t, err := p.str(name, in)
			if err != nil {
				return "", nil, err
			}
			if typ != "" && !strings.EqualFold(t, typ) {
				return "", nil, p.errf(in.line, name, "type %q contradicts the block's label %q", t, typ)
			}
			typ = t
			continue
		}
		kept = append(kept, in)
	}
	b.entries = kept
	typ = strings.ToLower(strings.TrimSpace(typ))
	b.where = fmt.Sprintf("%s %q", name, typ)
	return typ, b, nil
}

func (p *parser) method(e entry) (*Method, error) {
	typ, b, err := p.labeled(e, "auto_auth.method")
	if err != nil {
		return nil, err
	}
	if typ == "" {
		return nil, p.errf(e.line, "auto_auth.method", "the method type is required, e.g. method \"approle\" { ... } or type = \"approle\"")
	}
	if !slices.Contains(MethodTypes, typ) {
		return nil, p.errf(e.line, b.where, "Arca's agent does not support this method; use one of %s", strings.Join(MethodTypes, ", "))
	}
	m := &Method{Type: typ, MinBackoff: DefaultMinBackoff, MaxBackoff: DefaultMaxBackoff, Config: map[string]any{}}
	order, g := group(b)
	for _, k := range order {
		if k == "config" {
			if err := p.configMap(g[k], b.where+".config", m.Config); err != nil {
				return nil, err
			}
			continue
		}
		e, err := p.single(b, g[k])
		if err != nil {
			return nil, err
		}
		switch k {
		case "mount_path":
			m.MountPath, err = p.str(b.where, e)
		case "namespace":
			m.Namespace, err = p.str(b.where, e)
		case "wrap_ttl":
			m.WrapTTL, err = p.duration(b.where, e)
		case "min_backoff":
			m.MinBackoff, err = p.duration(b.where, e)
		case "max_backoff":
			m.MaxBackoff, err = p.duration(b.where, e)
		case "exit_on_err":
			m.ExitOnError, err = p.boolean(b.where, e)
		default:
			err = p.errf(e.line, b.where, "unknown key %q", k)
		}
		if err != nil {
			return nil, err
		}
	}
	m.MountPath = strings.Trim(strings.TrimSpace(m.MountPath), "/")
	if m.MountPath == "" {
		m.MountPath = "auth/" + typ
	}
	if m.MinBackoff <= 0 {
		m.MinBackoff = DefaultMinBackoff
	}
	if m.MaxBackoff <= 0 {
		m.MaxBackoff = DefaultMaxBackoff
	}
	if m.MinBackoff > m.MaxBackoff {
		return nil, p.errf(e.line, b.where, "min_backoff (%s) is longer than max_backoff (%s)", m.MinBackoff, m.MaxBackoff)
	}
	return m, nil
}

// configMap reads config { ... } blocks of plain values into out.
func (p *parser) configMap(es []entry, where string, out map[string]any) error {
	b, err := p.merged(es, where)
	if err != nil {
		return err
	}
	order, g := group(b)
	for _, k := range order {
		e, err := p.single(b, g[k])
		if err != nil {
			return err
		}
		if out[k], err = p.plain(where, e); err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) sink(e entry) (*Sink, error) {
	typ, b, err := p.labeled(e, "auto_auth.sink")
	if err != nil {
		return nil, err
	}
	if typ == "" {
		return nil, p.errf(e.line, "auto_auth.sink", "the sink type is required, e.g. sink \"file\" { config { path = \"...\" } }")
	}
	if typ != "file" {
		return nil, p.errf(e.line, b.where, "Arca's agent supports file sinks only")
	}
	s := &Sink{Type: typ, Mode: DefaultSinkMode}
	order, g := group(b)
	for _, k := range order {
		if k == "config" {
			cb, err := p.merged(g[k], b.where+".config")
			if err != nil {
				return nil, err
			}
			co, cg := group(cb)
			for _, ck := range co {
				ce, err := p.single(cb, cg[ck])
				if err != nil {
					return nil, err
				}
				switch ck {
				case "path":
					s.Path, err = p.str(cb.where, ce)
				case "mode":
					s.Mode, err = p.mode(cb.where, ce)
				default:
					err = p.errf(ce.line, cb.where, "unknown key %q (a file sink takes path and mode)", ck)
				}
				if err != nil {
					return nil, err
				}
			}
			continue
		}
		e, err := p.single(b, g[k])
		if err != nil {
			return nil, err
		}
		switch k {
		case "wrap_ttl":
			s.WrapTTL, err = p.duration(b.where, e)
		case "dh_type", "dh_path", "derive_key", "aad", "aad_env_var":
			err = p.errf(e.line, b.where, "%s: response-wrapping encryption of sinks (dh_type, dh_path, aad, derive_key) is not supported by Arca's agent; remove it and protect the sink file with its mode", k)
		default:
			err = p.errf(e.line, b.where, "unknown key %q", k)
		}
		if err != nil {
			return nil, err
		}
	}
	if strings.TrimSpace(s.Path) == "" {
		return nil, p.errf(e.line, b.where, "config { path = \"...\" } is required: where the token is written")
	}
	return s, nil
}

// refusedTemplateKeys are template keys Vault Agent takes that Arca's agent
// does not honour; ignoring them would weaken or change what the user asked
// for, so they are refused.
var refusedTemplateKeys = []string{"function_denylist", "function_blacklist", "sandbox_path"}

func (p *parser) template(e entry) (*Template, error) {
	b, err := p.inner(e, 0, "template")
	if err != nil {
		return nil, err
	}
	if len(e.labels) > 0 {
		b.where = "template"
	}
	t := &Template{Perms: DefaultTemplatePerms, CommandTimeout: DefaultCommandTimeout,
		LeftDelim: "{{", RightDelim: "}}", CreateDestDirs: true, ErrorFatal: true}
	var sourceSet, contentsSet, destSet bool
	var execCommand []string
	var execShell, execSet bool
	var execTimeout time.Duration
	order, g := group(b)
	for _, k := range order {
		switch k {
		case "exec":
			xb, err := p.merged(g[k], "template.exec")
			if err != nil {
				return nil, err
			}
			xo, xg := group(xb)
			for _, xk := range xo {
				xe, err := p.single(xb, xg[xk])
				if err != nil {
					return nil, err
				}
				switch xk {
				case "command":
					execCommand, execShell, err = p.strList(xb.where, xe)
					execSet = true
				case "timeout":
					execTimeout, err = p.duration(xb.where, xe)
				case "enabled", "env", "kill_signal", "kill_timeout", "reload_signal", "splay":
					err = p.errf(xe.line, xb.where, "%s is not supported by Arca's agent; remove it", xk)
				default:
					err = p.errf(xe.line, xb.where, "unknown key %q", xk)
				}
				if err != nil {
					return nil, err
				}
			}
			continue
		case "wait":
			if err := p.wait(b, g[k], t); err != nil {
				return nil, err
			}
			continue
		}
		e, err := p.single(b, g[k])
		if err != nil {
			return nil, err
		}
		switch k {
		case "source":
			t.Source, err = p.str("template", e)
			sourceSet = true
		case "contents":
			t.Contents, err = p.str("template", e)
			contentsSet = true
		case "destination":
			t.Destination, err = p.str("template", e)
			destSet = true
		case "perms":
			t.Perms, err = p.mode("template", e)
			t.PermsSet = true
		case "command":
			t.Command, t.CommandShell, err = p.strList("template", e)
		case "command_timeout":
			t.CommandTimeout, err = p.duration("template", e)
		case "error_on_missing_key":
			t.ErrorOnMissingKey, err = p.boolean("template", e)
		case "left_delimiter":
			t.LeftDelim, err = p.str("template", e)
		case "right_delimiter":
			t.RightDelim, err = p.str("template", e)
		case "backup":
			t.Backup, err = p.boolean("template", e)
		case "create_dest_dirs":
			t.CreateDestDirs, err = p.boolean("template", e)
		case "error_fatal":
			t.ErrorFatal, err = p.boolean("template", e)
		case "user", "uid":
			if t.User == "" || k == "user" {
				t.User, err = p.str("template", e)
			}
		case "group", "gid":
			if t.Group == "" || k == "group" {
				t.Group, err = p.str("template", e)
			}
		default:
			if slices.Contains(refusedTemplateKeys, k) {
				err = p.errf(e.line, "template", "%s is not supported by Arca's agent yet; remove it", k)
			} else {
				err = p.errf(e.line, "template", "unknown key %q", k)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	if execSet {
		t.Command, t.CommandShell = execCommand, execShell
	}
	if execTimeout > 0 {
		t.CommandTimeout = execTimeout
	}
	if t.CommandTimeout <= 0 {
		t.CommandTimeout = DefaultCommandTimeout
	}
	if len(t.Command) == 1 && strings.TrimSpace(t.Command[0]) == "" {
		t.Command, t.CommandShell = nil, false
	}
	if len(t.Command) == 0 {
		t.CommandShell = false
	}
	switch {
	case sourceSet && contentsSet:
		return nil, p.errf(e.line, "template", "give source or contents, not both")
	case !sourceSet && !contentsSet:
		return nil, p.errf(e.line, "template", "source (a template file) or contents (the template inline) is required")
	case sourceSet && strings.TrimSpace(t.Source) == "":
		return nil, p.errf(e.line, "template", "source is empty")
	}
	if !destSet || strings.TrimSpace(t.Destination) == "" {
		return nil, p.errf(e.line, "template", "destination is required: the file the template is rendered to")
	}
	if t.LeftDelim == "" {
		t.LeftDelim = "{{"
	}
	if t.RightDelim == "" {
		t.RightDelim = "}}"
	}
	return t, nil
}

// wait reads wait { min max } or wait = "min:max" (max defaults to four
// times min, as in consul-template).
func (p *parser) wait(b *body, es []entry, t *Template) error {
	if len(es) == 1 && len(es[0].labels) == 0 {
		if _, ok := es[0].val.(*ast.LiteralType); ok {
			s, err := p.str("template", es[0])
			if err != nil {
				return err
			}
			lo, hi, two := strings.Cut(s, ":")
			mn, ok1 := parseDuration(lo)
			mx, ok2 := parseDuration(hi)
			if !ok1 || !ok2 || strings.TrimSpace(lo) == "" || (two && strings.TrimSpace(hi) == "") {
				return p.errf(es[0].line, "template", "wait: %q is not \"min\" or \"min:max\", such as \"5s:30s\"", s)
			}
			if !two {
				mx = 4 * mn
			}
			t.WaitMin, t.WaitMax = mn, mx
			return p.checkWait(es[0].line, t)
		}
	}
	wb, err := p.merged(es, "template.wait")
	if err != nil {
		return err
	}
	wo, wg := group(wb)
	maxSet := false
	for _, k := range wo {
		e, err := p.single(wb, wg[k])
		if err != nil {
			return err
		}
		switch k {
		case "min":
			t.WaitMin, err = p.duration(wb.where, e)
		case "max":
			t.WaitMax, err = p.duration(wb.where, e)
			maxSet = true
		case "enabled":
			var on bool
			if on, err = p.boolean(wb.where, e); err == nil && !on {
				t.WaitMin, t.WaitMax = 0, 0
				return nil
			}
		default:
			err = p.errf(e.line, wb.where, "unknown key %q (min, max)", k)
		}
		if err != nil {
			return err
		}
	}
	if !maxSet {
		t.WaitMax = 4 * t.WaitMin
	}
	return p.checkWait(wb.line, t)
}

func (p *parser) checkWait(line int, t *Template) error {
	if t.WaitMax < t.WaitMin {
		return p.errf(line, "template.wait", "max (%s) is shorter than min (%s)", t.WaitMax, t.WaitMin)
	}
	return nil
}

func (p *parser) templateConfig(c *Config, es []entry) error {
	b, err := p.merged(es, "template_config")
	if err != nil {
		return err
	}
	tc := &c.TemplateConfig
	order, g := group(b)
	for _, k := range order {
		e, err := p.single(b, g[k])
		if err != nil {
			return err
		}
		switch k {
		case "static_secret_render_interval":
			tc.StaticSecretRenderInterval, err = p.duration(b.where, e)
			if err == nil && tc.StaticSecretRenderInterval <= 0 {
				tc.StaticSecretRenderInterval = DefaultStaticRenderInterval
			}
		case "exit_on_retry_failure":
			tc.ExitOnRetryFailure, err = p.boolean(b.where, e)
		case "max_connections_per_host":
			tc.MaxConnectionsPerHost, err = p.integer(b.where, e)
			if err == nil && tc.MaxConnectionsPerHost < 0 {
				err = p.errf(e.line, b.where, "max_connections_per_host must not be negative")
			}
			if tc.MaxConnectionsPerHost == 0 {
				tc.MaxConnectionsPerHost = DefaultMaxConnectionsPerHost
			}
		case "lease_renewal_threshold":
			var s string
			if s, err = p.str(b.where, e); err == nil {
				var f float64
				if _, serr := fmt.Sscanf(strings.TrimSpace(s), "%g", &f); serr != nil || !(f > 0 && f <= 1) {
					err = p.errf(e.line, b.where, "lease_renewal_threshold: %q is not a fraction of a lease between 0 and 1, such as 0.9", s)
				}
				tc.LeaseRenewalThreshold = f
			}
		default:
			err = p.errf(e.line, b.where, "unknown key %q", k)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) exec(c *Config, es []entry) error {
	b, err := p.merged(es, "exec")
	if err != nil {
		return err
	}
	x := &Exec{RestartOnSecretChanges: "always", RestartStopSignal: syscall.SIGTERM, RestartKillTimeout: DefaultRestartKillTimeout}
	order, g := group(b)
	for _, k := range order {
		e, err := p.single(b, g[k])
		if err != nil {
			return err
		}
		switch k {
		case "command":
			var single bool
			if x.Command, single, err = p.strList("exec", e); err == nil && single && strings.ContainsAny(x.Command[0], " \t\n") {
				err = p.errf(e.line, "exec", "command must be a list, such as [\"./app\", \"--flag\"]")
			}
		case "restart_on_secret_changes":
			var s string
			if s, err = p.str("exec", e); err == nil {
				x.RestartOnSecretChanges = strings.ToLower(strings.TrimSpace(s))
				if x.RestartOnSecretChanges != "always" && x.RestartOnSecretChanges != "never" {
					err = p.errf(e.line, "exec", "restart_on_secret_changes: %q must be \"always\" or \"never\"", s)
				}
			}
		case "restart_stop_signal":
			var s string
			if s, err = p.str("exec", e); err == nil {
				var ok bool
				if x.RestartStopSignal, ok = parseSignal(s); !ok {
					err = p.errf(e.line, "exec", "restart_stop_signal: %q is not a signal name such as \"SIGTERM\" or \"SIGINT\"", s)
				}
			}
		case "restart_kill_timeout":
			x.RestartKillTimeout, err = p.duration("exec", e)
		case "child_process_stdout":
			x.ChildProcessStdout, err = p.str("exec", e)
		case "child_process_stderr":
			x.ChildProcessStderr, err = p.str("exec", e)
		default:
			err = p.errf(e.line, "exec", "unknown key %q", k)
		}
		if err != nil {
			return err
		}
	}
	if len(x.Command) == 0 || strings.TrimSpace(x.Command[0]) == "" {
		return p.errf(b.line, "exec", "command is required, such as command = [\"./app\", \"--flag\"]")
	}
	if x.RestartKillTimeout <= 0 {
		x.RestartKillTimeout = DefaultRestartKillTimeout
	}
	c.Exec = x
	return nil
}

// parseSignal reads "SIGTERM", "sigterm" or "TERM".
func parseSignal(s string) (syscall.Signal, bool) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if !strings.HasPrefix(s, "SIG") {
		s = "SIG" + s
	}
	sig := unix.SignalNum(s)
	return sig, sig != 0
}

// envTemplateRefused are template keys that mean nothing for an
// environment variable (Vault Agent refuses them too).
var envTemplateRefused = []string{"backup", "command", "command_timeout", "create_dest_dirs", "destination",
	"exec", "perms", "user", "uid", "group", "gid", "wait"}

func (p *parser) envTemplate(e entry) (*EnvTemplate, error) {
	if len(e.labels) == 0 || strings.TrimSpace(e.labels[0]) == "" {
		return nil, p.errf(e.line, "env_template", "the environment variable's name is required, e.g. env_template \"DB_PASSWORD\" { contents = \"...\" }")
	}
	t := &EnvTemplate{Name: e.labels[0], LeftDelim: "{{", RightDelim: "}}"}
	where := fmt.Sprintf("env_template %q", t.Name)
	if strings.ContainsAny(t.Name, "=\x00") {
		return nil, p.errf(e.line, where, "an environment variable's name cannot contain = or NUL")
	}
	b, err := p.inner(e, 1, where)
	if err != nil {
		return nil, err
	}
	var sourceSet, contentsSet bool
	order, g := group(b)
	for _, k := range order {
		ke, err := p.single(b, g[k])
		if err != nil {
			return nil, err
		}
		switch k {
		case "contents":
			t.Contents, err = p.str(where, ke)
			contentsSet = true
		case "source":
			t.Source, err = p.str(where, ke)
			sourceSet = true
		case "error_on_missing_key":
			t.ErrorOnMissingKey, err = p.boolean(where, ke)
		case "error_fatal":
			_, err = p.boolean(where, ke)
		case "left_delimiter":
			t.LeftDelim, err = p.str(where, ke)
		case "right_delimiter":
			t.RightDelim, err = p.str(where, ke)
		default:
			switch {
			case slices.Contains(envTemplateRefused, k):
				err = p.errf(ke.line, where, "%s is not allowed in an env_template", k)
			case slices.Contains(refusedTemplateKeys, k):
				err = p.errf(ke.line, where, "%s is not supported by Arca's agent yet; remove it", k)
			default:
				err = p.errf(ke.line, where, "unknown key %q", k)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	switch {
	case sourceSet && contentsSet:
		return nil, p.errf(e.line, where, "give source or contents, not both")
	case !sourceSet && !contentsSet:
		return nil, p.errf(e.line, where, "source (a template file) or contents (the template inline) is required")
	}
	if t.LeftDelim == "" {
		t.LeftDelim = "{{"
	}
	if t.RightDelim == "" {
		t.RightDelim = "}}"
	}
	return t, nil
}

// apiProxy reads api_proxy {} (or, with cache set, the older cache {});
// hasToken reports whether use_auto_auth_token was given.
func (p *parser) apiProxy(b *body, cache bool) (ap *APIProxy, hasToken bool, err error) {
	ap = &APIProxy{UseAutoAuthToken: "false"}
	order, g := group(b)
	for _, k := range order {
		if cache && slices.Contains(ignored["cache"], k) {
			continue
		}
		e, err := p.single(b, g[k])
		if err != nil {
			return nil, false, err
		}
		switch k {
		case "use_auto_auth_token":
			var s string
			if s, err = p.str(b.where, e); err == nil {
				hasToken = true
				switch v := strings.ToLower(strings.TrimSpace(s)); v {
				case "true", "1", "t":
					ap.UseAutoAuthToken = "true"
				case "false", "0", "f":
					ap.UseAutoAuthToken = "false"
				case "force":
					ap.UseAutoAuthToken = "force"
				default:
					err = p.errf(e.line, b.where, "use_auto_auth_token: %q must be true, false or \"force\"", s)
				}
			}
		case "enforce_consistency":
			ap.EnforceConsistency, err = p.str(b.where, e)
		case "when_inconsistent":
			ap.WhenInconsistent, err = p.str(b.where, e)
		default:
			err = p.errf(e.line, b.where, "unknown key %q", k)
		}
		if err != nil {
			return nil, false, err
		}
	}
	return ap, hasToken, nil
}

func (p *parser) listener(e entry) (*Listener, error) {
	typ, b, err := p.labeled(e, "listener")
	if err != nil {
		return nil, err
	}
	if typ != "tcp" && typ != "unix" {
		return nil, p.errf(e.line, b.where, "a listener is \"tcp\" or \"unix\"")
	}
	l := &Listener{Type: typ}
	order, g := group(b)
	for _, k := range order {
		if slices.Contains(ignored["listener"], k) {
			continue
		}
		e, err := p.single(b, g[k])
		if err != nil {
			return nil, err
		}
		switch k {
		case "address":
			l.Address, err = p.str(b.where, e)
		case "tls_disable":
			l.TLSDisable, err = p.boolean(b.where, e)
		case "tls_cert_file":
			l.TLSCertFile, err = p.str(b.where, e)
		case "tls_key_file":
			l.TLSKeyFile, err = p.str(b.where, e)
		case "tls_min_version":
			if l.TLSMinVersion, err = p.str(b.where, e); err == nil && !slices.Contains([]string{"tls12", "tls13"}, l.TLSMinVersion) {
				err = p.errf(e.line, b.where, "tls_min_version: %q must be \"tls12\" or \"tls13\"", l.TLSMinVersion)
			}
		case "socket_mode":
			l.SocketMode, err = p.mode(b.where, e)
		case "socket_user":
			l.SocketUser, err = p.str(b.where, e)
		case "socket_group":
			l.SocketGroup, err = p.str(b.where, e)
		case "require_request_header":
			l.RequireRequestHeader, err = p.boolean(b.where, e)
		case "role":
			var role string
			if role, err = p.str(b.where, e); err == nil && role != "default" && role != "" {
				err = p.errf(e.line, b.where, "role %q is not supported by Arca's agent; remove it (the listener serves the API proxy)", role)
			}
		case "tls_require_and_verify_client_cert":
			var on bool
			if on, err = p.boolean(b.where, e); err == nil && on {
				err = p.errf(e.line, b.where, "%s = true: Arca's agent does not verify client certificates; remove it", k)
			}
		case "tls_client_ca_file", "agent_api", "proxy_api":
			err = p.errf(e.line, b.where, "%s is not supported by Arca's agent; remove it", k)
		default:
			err = p.errf(e.line, b.where, "unknown key %q", k)
		}
		if err != nil {
			return nil, err
		}
	}
	if strings.TrimSpace(l.Address) == "" {
		return nil, p.errf(e.line, b.where, "address is required (host:port for tcp, a socket path for unix)")
	}
	if !l.TLSDisable && (l.TLSCertFile == "" || l.TLSKeyFile == "") {
		return nil, p.errf(e.line, b.where, "set tls_cert_file and tls_key_file, or tls_disable = true")
	}
	if typ == "tcp" && (l.SocketMode != 0 || l.SocketUser != "" || l.SocketGroup != "") {
		return nil, p.errf(e.line, b.where, "socket_mode, socket_user and socket_group apply to unix listeners only")
	}
	return l, nil
}
