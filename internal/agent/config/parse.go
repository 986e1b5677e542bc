package config

import (
	"cmp"
	"fmt"
	"maps"
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
	"": {"telemetry", "log_rotate_duration", "log_rotate_bytes",
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

// defaultTemplateConfig is template_config {} when the file leaves it out.
var defaultTemplateConfig = TemplateConfig{
	StaticSecretRenderInterval: DefaultStaticRenderInterval,
	MaxConnectionsPerHost:      DefaultMaxConnectionsPerHost,
	LeaseRenewalThreshold:      DefaultLeaseRenewalThreshold,
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
	c := &Config{TemplateConfig: defaultTemplateConfig}
	var proxy, cache proxyBlock
	_, err = p.walk(&body{entries: entries(root)}, stanza{ignore: ignored[""], keys: fields{
		"pid_file":        to(&c.PidFile, p.str),
		"exit_after_auth": to(&c.ExitAfterAuth, p.boolean),
		"log_level":       to(&c.LogLevel, p.str),
		"log_format":      to(&c.LogFormat, p.str),
		"log_file":        to(&c.LogFile, p.str),
		"vault":           block(p, "vault", &c.Vault, p.vault),
		"auto_auth":       block(p, "auto_auth", &c.AutoAuth, p.autoAuth),
		"template":        appendTo(&c.Templates, p.template),
		"template_config": block(p, "template_config", &c.TemplateConfig, p.templateConfig),
		"exec":            block(p, "exec", &c.Exec, p.exec),
		"env_template": appendTo(&c.EnvTemplates, func(e entry) (*EnvTemplate, error) {
			return p.envTemplate(e, c.EnvTemplates)
		}),
		"api_proxy": block(p, "api_proxy", &proxy, p.apiProxy(nil)),
		"cache":     block(p, "cache", &cache, p.apiProxy(ignored["cache"])),
		"listener":  appendTo(&c.Listeners, p.listener),
	}})
	if err != nil {
		return nil, err
	}
	c.APIProxy = proxy.APIProxy
	if cache.APIProxy != nil {
		switch {
		case c.APIProxy == nil:
			if cache.UseAutoAuthToken != "false" {
				c.APIProxy = cache.APIProxy
			}
		case proxy.hasToken && cache.UseAutoAuthToken != "false":
			return nil, p.errf(cache.line, "cache", "use_auto_auth_token is set both here and in api_proxy; remove it from the cache block")
		case !proxy.hasToken:
			c.APIProxy.UseAutoAuthToken = cache.UseAutoAuthToken
		}
	}
	def := api.DefaultConfig()
	if c.Vault == nil {
		c.Vault = &Vault{Retries: DefaultRetries, TLSSkipVerify: def.TLSSkipVerify}
	}
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

func (p *parser) vault(b *body) (*Vault, error) {
	v := &Vault{TLSSkipVerify: api.DefaultConfig().TLSSkipVerify}
	_, err := p.walk(b, stanza{keys: fields{
		"address":         to(&v.Address, p.str),
		"ca_cert":         to(&v.CACert, p.str),
		"ca_path":         to(&v.CAPath, p.str),
		"client_cert":     to(&v.ClientCert, p.str),
		"client_key":      to(&v.ClientKey, p.str),
		"tls_server_name": to(&v.TLSServerName, p.str),
		"tls_skip_verify": to(&v.TLSSkipVerify, p.boolean),
		"retry": p.nested("vault.retry", stanza{keys: fields{
			"num_retries": p.check(to(&v.Retries, p.integer), func() bool { return v.Retries >= -1 },
				"num_retries must be -1 (no retries), 0 (the default) or more"),
		}}),
	}})
	if err != nil {
		return nil, err
	}
	switch v.Retries {
	case 0:
		v.Retries = DefaultRetries
	case -1:
		v.Retries = 0
	}
	if (v.ClientCert == "") != (v.ClientKey == "") {
		return nil, p.errf(b.line, "vault", "client_cert and client_key must be given together")
	}
	return v, nil
}

func (p *parser) autoAuth(b *body) (*AutoAuth, error) {
	a := &AutoAuth{}
	_, err := p.walk(b, stanza{ignore: ignored["auto_auth"], keys: fields{
		"method": each(func(es []entry) (err error) {
			if len(es) > 1 {
				return p.errf(es[1].line, "auto_auth", "only one method block is allowed")
			}
			a.Method, err = p.method(es[0])
			return err
		}),
		"sink": appendTo(&a.Sinks, p.sink),
	}})
	if err != nil {
		return nil, err
	}
	if a.Method == nil {
		return nil, p.errf(b.line, "auto_auth", "a method block is required, e.g. method \"approle\" { config { ... } }")
	}
	return a, nil
}

// labeled opens a block that takes its type as a label (method "approle")
// or as a type attribute (method { type = "approle" }). A type not in types
// is refused with unsupported; a missing one with missing, when given.
func (p *parser) labeled(e entry, name string, types []string, missing, unsupported string) (typ string, b *body, err error) {
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
	switch {
	case typ == "" && missing != "":
		return "", nil, p.errf(e.line, name, "%s", missing)
	case !slices.Contains(types, typ):
		return "", nil, p.errf(e.line, b.where, "%s", unsupported)
	}
	return typ, b, nil
}

func (p *parser) method(e entry) (*Method, error) {
	typ, b, err := p.labeled(e, "auto_auth.method", MethodTypes,
		"the method type is required, e.g. method \"approle\" { ... } or type = \"approle\"",
		"Arca's agent does not support this method; use one of "+strings.Join(MethodTypes, ", "))
	if err != nil {
		return nil, err
	}
	m := &Method{Type: typ, MinBackoff: DefaultMinBackoff, MaxBackoff: DefaultMaxBackoff, Config: map[string]any{}}
	_, err = p.walk(b, stanza{keys: fields{
		// config holds the method's own keys, whatever they are.
		"config": p.nested(b.where+".config", stanza{other: func(where string, e entry) (err error) {
			m.Config[e.key], err = p.plain(where, e)
			return err
		}}),
		"mount_path":  to(&m.MountPath, p.str),
		"namespace":   to(&m.Namespace, p.str),
		"wrap_ttl":    to(&m.WrapTTL, p.duration),
		"min_backoff": to(&m.MinBackoff, p.duration),
		"max_backoff": to(&m.MaxBackoff, p.duration),
		"exit_on_err": to(&m.ExitOnError, p.boolean),
	}})
	if err != nil {
		return nil, err
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

func (p *parser) sink(e entry) (*Sink, error) {
	typ, b, err := p.labeled(e, "auto_auth.sink", []string{"file"},
		"the sink type is required, e.g. sink \"file\" { config { path = \"...\" } }", "Arca's agent supports file sinks only")
	if err != nil {
		return nil, err
	}
	s := &Sink{Type: typ, Mode: DefaultSinkMode}
	_, err = p.walk(b, stanza{keys: fields{
		"config": p.nested(b.where+".config", stanza{hint: " (a file sink takes path and mode)", keys: fields{
			"path": to(&s.Path, p.str),
			"mode": to(&s.Mode, p.mode),
		}}),
		"wrap_ttl": to(&s.WrapTTL, p.duration),
	}.also(p.refuse("%s: response-wrapping encryption of sinks (dh_type, dh_path, aad, derive_key) is not supported by Arca's agent; remove it and protect the sink file with its mode"),
		"dh_type", "dh_path", "derive_key", "aad", "aad_env_var")})
	if err != nil {
		return nil, err
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

// templateFields are the keys template {} and env_template {} share; the
// delimiters fall back to {{ }} when given empty.
func (p *parser) templateFields(source, contents *string, missingKey *bool, left, right *string) fields {
	delim := func(dst *string, def string) setter {
		return to(dst, func(where string, e entry) (string, error) {
			s, err := p.str(where, e)
			return cmp.Or(s, def), err
		})
	}
	return fields{
		"source":               to(source, p.str),
		"contents":             to(contents, p.str),
		"error_on_missing_key": to(missingKey, p.boolean),
		"left_delimiter":       delim(left, "{{"),
		"right_delimiter":      delim(right, "}}"),
	}.also(p.refuse("%s is not supported by Arca's agent yet; remove it"), refusedTemplateKeys...)
}

// oneSource checks that a template gave exactly one of source and contents.
func (p *parser) oneSource(set given, line int, where string) error {
	switch {
	case set["source"] && set["contents"]:
		return p.errf(line, where, "give source or contents, not both")
	case !set["source"] && !set["contents"]:
		return p.errf(line, where, "source (a template file) or contents (the template inline) is required")
	}
	return nil
}

func (p *parser) template(e entry) (*Template, error) {
	b, err := p.inner(e, 0, "template")
	if err != nil {
		return nil, err
	}
	t := &Template{Perms: DefaultTemplatePerms, CommandTimeout: DefaultCommandTimeout,
		LeftDelim: "{{", RightDelim: "}}", CreateDestDirs: true, ErrorFatal: true}
	var execCommand []string
	var execShell, execSet bool
	var execTimeout time.Duration
	// uid and gid are older names; user and group win over them.
	unlessSet := func(dst *string) setter {
		return func(where string, e entry) error {
			if *dst != "" {
				return nil
			}
			return to(dst, p.str)(where, e)
		}
	}
	keys := p.templateFields(&t.Source, &t.Contents, &t.ErrorOnMissingKey, &t.LeftDelim, &t.RightDelim)
	maps.Copy(keys, fields{
		"exec": p.merge("template.exec", func(xb *body) error {
			set, err := p.walk(xb, stanza{keys: fields{
				"command": p.command(&execCommand, &execShell),
				"timeout": to(&execTimeout, p.duration),
			}.also(p.refuse("%s is not supported by Arca's agent; remove it"),
				"enabled", "env", "kill_signal", "kill_timeout", "reload_signal", "splay")})
			execSet = set["command"]
			return err
		}),
		"wait":             each(func(es []entry) error { return p.wait(es, t) }),
		"destination":      to(&t.Destination, p.str),
		"perms":            to(&t.Perms, p.mode),
		"command":          p.command(&t.Command, &t.CommandShell),
		"command_timeout":  to(&t.CommandTimeout, p.duration),
		"backup":           to(&t.Backup, p.boolean),
		"create_dest_dirs": to(&t.CreateDestDirs, p.boolean),
		"error_fatal":      to(&t.ErrorFatal, p.boolean),
		"user":             to(&t.User, p.str),
		"uid":              unlessSet(&t.User),
		"group":            to(&t.Group, p.str),
		"gid":              unlessSet(&t.Group),
	})
	set, err := p.walk(b, stanza{keys: keys})
	if err != nil {
		return nil, err
	}
	t.PermsSet = set["perms"]
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
		t.Command = nil
	}
	if len(t.Command) == 0 {
		t.CommandShell = false
	}
	if err := p.oneSource(set, e.line, "template"); err != nil {
		return nil, err
	}
	if set["source"] && strings.TrimSpace(t.Source) == "" {
		return nil, p.errf(e.line, "template", "source is empty")
	}
	if !set["destination"] || strings.TrimSpace(t.Destination) == "" {
		return nil, p.errf(e.line, "template", "destination is required: the file the template is rendered to")
	}
	return t, nil
}

// wait reads wait { min max } or wait = "min:max" (max defaults to four
// times min, as in consul-template).
func (p *parser) wait(es []entry, t *Template) error {
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
	on := true
	set, err := p.walk(wb, stanza{hint: " (min, max)", keys: fields{
		"min":     to(&t.WaitMin, p.duration),
		"max":     to(&t.WaitMax, p.duration),
		"enabled": to(&on, p.boolean),
	}})
	switch {
	case err != nil:
		return err
	case !on:
		t.WaitMin, t.WaitMax = 0, 0
		return nil
	case !set["max"]:
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

func (p *parser) templateConfig(b *body) (TemplateConfig, error) {
	tc := defaultTemplateConfig
	_, err := p.walk(b, stanza{keys: fields{
		"static_secret_render_interval": to(&tc.StaticSecretRenderInterval, p.duration),
		"exit_on_retry_failure":         to(&tc.ExitOnRetryFailure, p.boolean),
		"max_connections_per_host": p.check(to(&tc.MaxConnectionsPerHost, p.integer),
			func() bool { return tc.MaxConnectionsPerHost >= 0 }, "max_connections_per_host must not be negative"),
		"lease_renewal_threshold": conv(p, &tc.LeaseRenewalThreshold, func(s string) (float64, bool) {
			var f float64
			_, err := fmt.Sscanf(strings.TrimSpace(s), "%g", &f)
			return f, err == nil && f > 0 && f <= 1
		}, "%s: %q is not a fraction of a lease between 0 and 1, such as 0.9"),
	}})
	if tc.StaticSecretRenderInterval <= 0 {
		tc.StaticSecretRenderInterval = DefaultStaticRenderInterval
	}
	if tc.MaxConnectionsPerHost == 0 {
		tc.MaxConnectionsPerHost = DefaultMaxConnectionsPerHost
	}
	return tc, err
}

func (p *parser) exec(b *body) (*Exec, error) {
	x := &Exec{RestartOnSecretChanges: "always", RestartStopSignal: syscall.SIGTERM, RestartKillTimeout: DefaultRestartKillTimeout}
	var shell bool
	_, err := p.walk(b, stanza{keys: fields{
		"command": p.check(p.command(&x.Command, &shell),
			func() bool { return !shell || !strings.ContainsAny(x.Command[0], " \t\n") },
			`command must be a list, such as ["./app", "--flag"]`),
		"restart_on_secret_changes": conv(p, &x.RestartOnSecretChanges, func(s string) (string, bool) {
			s = strings.ToLower(strings.TrimSpace(s))
			return s, s == "always" || s == "never"
		}, `%s: %q must be "always" or "never"`),
		"restart_stop_signal": conv(p, &x.RestartStopSignal, parseSignal,
			`%s: %q is not a signal name such as "SIGTERM" or "SIGINT"`),
		"restart_kill_timeout": to(&x.RestartKillTimeout, p.duration),
		"child_process_stdout": to(&x.ChildProcessStdout, p.str),
		"child_process_stderr": to(&x.ChildProcessStderr, p.str),
	}})
	if err != nil {
		return nil, err
	}
	if len(x.Command) == 0 || strings.TrimSpace(x.Command[0]) == "" {
		return nil, p.errf(b.line, "exec", "command is required, such as command = [\"./app\", \"--flag\"]")
	}
	if x.RestartKillTimeout <= 0 {
		x.RestartKillTimeout = DefaultRestartKillTimeout
	}
	return x, nil
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

// envTemplate reads one env_template; earlier are those read before it.
func (p *parser) envTemplate(e entry, earlier []*EnvTemplate) (*EnvTemplate, error) {
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
	keys := p.templateFields(&t.Source, &t.Contents, &t.ErrorOnMissingKey, &t.LeftDelim, &t.RightDelim).
		also(p.refuse("%s is not allowed in an env_template"), envTemplateRefused...)
	keys["error_fatal"] = to(new(bool), p.boolean) // accepted and checked, not used
	set, err := p.walk(b, stanza{keys: keys})
	if err != nil {
		return nil, err
	}
	if err := p.oneSource(set, e.line, where); err != nil {
		return nil, err
	}
	if slices.ContainsFunc(earlier, func(o *EnvTemplate) bool { return o.Name == t.Name }) {
		return nil, p.errf(e.line, where, "the variable is given more than once")
	}
	return t, nil
}

// proxyBlock is api_proxy {} or cache {} as read: hasToken reports whether
// use_auto_auth_token was given, line where the block starts.
type proxyBlock struct {
	*APIProxy
	hasToken bool
	line     int
}

// apiProxy reads api_proxy {} or, skipping ignore, the older cache {}.
func (p *parser) apiProxy(ignore []string) func(*body) (proxyBlock, error) {
	return func(b *body) (proxyBlock, error) {
		ap := &APIProxy{UseAutoAuthToken: "false"}
		set, err := p.walk(b, stanza{ignore: ignore, keys: fields{
			"use_auto_auth_token": conv(p, &ap.UseAutoAuthToken, func(s string) (string, bool) {
				switch strings.ToLower(strings.TrimSpace(s)) {
				case "true", "1", "t":
					return "true", true
				case "false", "0", "f":
					return "false", true
				case "force":
					return "force", true
				}
				return "", false
			}, `%s: %q must be true, false or "force"`),
			"enforce_consistency": to(&ap.EnforceConsistency, p.str),
			"when_inconsistent":   to(&ap.WhenInconsistent, p.str),
		}})
		return proxyBlock{ap, set["use_auto_auth_token"], b.line}, err
	}
}

func (p *parser) listener(e entry) (*Listener, error) {
	typ, b, err := p.labeled(e, "listener", []string{"tcp", "unix"}, "", `a listener is "tcp" or "unix"`)
	if err != nil {
		return nil, err
	}
	l := &Listener{Type: typ}
	var verifyClients bool
	_, err = p.walk(b, stanza{ignore: ignored["listener"], keys: fields{
		"address":       to(&l.Address, p.str),
		"tls_disable":   to(&l.TLSDisable, p.boolean),
		"tls_cert_file": to(&l.TLSCertFile, p.str),
		"tls_key_file":  to(&l.TLSKeyFile, p.str),
		"tls_min_version": conv(p, &l.TLSMinVersion, func(s string) (string, bool) { return s, s == "tls12" || s == "tls13" },
			`%s: %q must be "tls12" or "tls13"`),
		"socket_mode":            to(&l.SocketMode, p.mode),
		"socket_user":            to(&l.SocketUser, p.str),
		"socket_group":           to(&l.SocketGroup, p.str),
		"require_request_header": to(&l.RequireRequestHeader, p.boolean),
		"agent_api": p.nested("listener.agent_api", stanza{keys: fields{
			"enable_quit": to(&l.EnableQuit, p.boolean),
		}}),
		"role": conv(p, new(string), func(s string) (string, bool) { return s, s == "default" || s == "" },
			"%s %q is not supported by Arca's agent; remove it (the listener serves the API proxy)"),
		"tls_require_and_verify_client_cert": p.check(to(&verifyClients, p.boolean), func() bool { return !verifyClients },
			"tls_require_and_verify_client_cert = true: Arca's agent does not verify client certificates; remove it"),
	}.also(p.refuse("%s is not supported by Arca's agent; remove it"), "tls_client_ca_file", "proxy_api")})
	if err != nil {
		return nil, err
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
