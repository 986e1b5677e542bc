package config

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

// docExample is what testdata/agent.hcl (shaped like Vault Agent's
// documented examples) and its JSON twin must parse into.
func docExample() *Config {
	return &Config{
		PidFile:  "/run/arca-agent/pidfile",
		LogLevel: "info",
		Vault: &Vault{
			Address:       "https://arca.example.internal:8200",
			CACert:        "/etc/arca-agent/ca.pem",
			TLSServerName: "arca.example.internal",
			Retries:       5,
		},
		AutoAuth: &AutoAuth{
			Method: &Method{
				Type:       "approle",
				MountPath:  "auth/approle-apps",
				MinBackoff: 2 * time.Second,
				MaxBackoff: 2 * time.Minute,
				Config: map[string]any{
					"role_id_file_path":                   "/etc/arca-agent/role-id",
					"secret_id_file_path":                 "/etc/arca-agent/secret-id",
					"remove_secret_id_file_after_reading": false,
				},
			},
			Sinks: []*Sink{
				{Type: "file", Path: "/run/arca-agent/token", Mode: 0o600},
				{Type: "file", Path: "/run/arca-agent/token-wrapped", Mode: 0o640, WrapTTL: 5 * time.Minute},
			},
		},
		Templates: []*Template{
			{
				Source: "/etc/arca-agent/db.ctmpl", Destination: "/etc/app/db.conf",
				Perms: 0o640, PermsSet: true,
				Command: []string{"systemctl reload app"}, CommandShell: true, CommandTimeout: 30 * time.Second,
				LeftDelim: "{{", RightDelim: "}}", Backup: true, CreateDestDirs: true, ErrorFatal: true,
				WaitMin: 2 * time.Second, WaitMax: 10 * time.Second,
			},
			{
				Contents:    `{{ with secret "secret/data/app" }}{{ .Data.data.api_key }}{{ end }}`,
				Destination: "/etc/app/api-key", Perms: 0o644,
				Command: []string{"/usr/local/bin/notify", "api-key"}, CommandTimeout: 45 * time.Second,
				ErrorOnMissingKey: true, LeftDelim: "[[", RightDelim: "]]", CreateDestDirs: true, ErrorFatal: true,
			},
		},
		TemplateConfig: TemplateConfig{
			StaticSecretRenderInterval: 10 * time.Minute,
			ExitOnRetryFailure:         true,
			MaxConnectionsPerHost:      20,
			LeaseRenewalThreshold:      DefaultLeaseRenewalThreshold,
		},
		APIProxy: &APIProxy{UseAutoAuthToken: "force"},
		Listeners: []*Listener{
			{Type: "tcp", Address: "127.0.0.1:8100", TLSDisable: true},
			{Type: "unix", Address: "/run/arca-agent/agent.sock", TLSDisable: true, SocketMode: 0o660},
		},
	}
}

func clearEnv(t *testing.T) {
	for _, k := range []string{"ARCA_ADDR", "VAULT_ADDR", "ARCA_CACERT", "VAULT_CACERT", "ARCA_SKIP_VERIFY", "VAULT_SKIP_VERIFY"} {
		t.Setenv(k, "")
	}
}

func TestParseDocumentedShapes(t *testing.T) {
	clearEnv(t)
	for _, file := range []string{"testdata/agent.hcl", "testdata/agent.json"} {
		t.Run(file, func(t *testing.T) {
			got, err := Load(file)
			if err != nil {
				t.Fatal(err)
			}
			want := docExample()
			if !reflect.DeepEqual(got, want) {
				t.Errorf("parsed:\n%s\nwant:\n%s", dump(got), dump(want))
			}
		})
	}
}

func dump(c *Config) string {
	var b strings.Builder
	v := reflect.ValueOf(c).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		b.WriteString(v.Type().Field(i).Name + ": ")
		switch f.Kind() {
		case reflect.Pointer:
			if f.IsNil() {
				b.WriteString("nil")
			} else {
				b.WriteString(strings.ReplaceAll(strings.TrimSpace(fmtv(f.Elem().Interface())), "\n", " "))
			}
		case reflect.Slice:
			for j := range f.Len() {
				b.WriteString(fmtv(f.Index(j).Elem().Interface()) + " ")
			}
		default:
			b.WriteString(fmtv(f.Interface()))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func fmtv(v any) string {
	if a, ok := v.(AutoAuth); ok {
		s := "{Method: " + fmtv(*a.Method) + " Sinks:"
		for _, k := range a.Sinks {
			s += " " + fmtv(*k)
		}
		return s + "}"
	}
	return strings.TrimSpace(strings.ReplaceAll(fmt.Sprintf("%+v", v), "\n", " "))
}

func TestExecAndEnvTemplates(t *testing.T) {
	clearEnv(t)
	src := `
auto_auth {
  method {
    type = "token_file"
    config { token_file_path = "/home/app/.arca-token" }
  }
}
exec {
  command                   = ["./app", "--serve"]
  restart_on_secret_changes = "never"
  restart_stop_signal       = "SIGINT"
  child_process_stdout      = "/var/log/app.out"
}
env_template "DB_PASSWORD" {
  contents             = "{{ with secret \"secret/data/db\" }}{{ .Data.data.password }}{{ end }}"
  error_on_missing_key = true
}
env_template "API_KEY" {
  source          = "/etc/agent/api-key.tmpl"
  left_delimiter  = "<<"
  right_delimiter = ">>"
}
`
	c, err := Parse([]byte(src), "exec.hcl")
	if err != nil {
		t.Fatal(err)
	}
	wantExec := &Exec{Command: []string{"./app", "--serve"}, RestartOnSecretChanges: "never", RestartStopSignal: syscall.SIGINT,
		RestartKillTimeout: DefaultRestartKillTimeout, ChildProcessStdout: "/var/log/app.out"}
	if !reflect.DeepEqual(c.Exec, wantExec) {
		t.Errorf("exec = %+v, want %+v", c.Exec, wantExec)
	}
	wantEnv := []*EnvTemplate{
		{Name: "DB_PASSWORD", Contents: `{{ with secret "secret/data/db" }}{{ .Data.data.password }}{{ end }}`, ErrorOnMissingKey: true, LeftDelim: "{{", RightDelim: "}}"},
		{Name: "API_KEY", Source: "/etc/agent/api-key.tmpl", LeftDelim: "<<", RightDelim: ">>"},
	}
	if !reflect.DeepEqual(c.EnvTemplates, wantEnv) {
		t.Errorf("env templates = %+v, want %+v", c.EnvTemplates, wantEnv)
	}
	if m := c.AutoAuth.Method; m.Type != "token_file" || m.MountPath != "auth/token_file" || m.Config["token_file_path"] != "/home/app/.arca-token" {
		t.Errorf("method = %+v", m)
	}
}

// TestExecAndEnvTemplatesJSON: the JSON form of exec and env_template
// stanzas, as Vault Agent's JSON configurations write them.
func TestExecAndEnvTemplatesJSON(t *testing.T) {
	clearEnv(t)
	src := `{
  "auto_auth": {"method": [{"type": "jwt", "config": {"path": "/var/run/token", "role": "app"}}]},
  "exec": {"command": ["./app"], "restart_stop_signal": "SIGTERM"},
  "env_template": {
    "DB_PASSWORD": {"contents": "{{ with secret \"secret/data/db\" }}{{ .Data.data.password }}{{ end }}"},
    "API_KEY": {"source": "/etc/api-key.tmpl", "error_on_missing_key": true}
  },
  "listener": [{"type": "tcp", "address": "127.0.0.1:8100", "tls_disable": true}]
}`
	c, err := Parse([]byte(src), "exec.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.EnvTemplates) != 2 || c.EnvTemplates[0].Name != "DB_PASSWORD" || c.EnvTemplates[1].Name != "API_KEY" ||
		c.EnvTemplates[0].Contents != `{{ with secret "secret/data/db" }}{{ .Data.data.password }}{{ end }}` ||
		!c.EnvTemplates[1].ErrorOnMissingKey || c.EnvTemplates[1].Source != "/etc/api-key.tmpl" {
		t.Errorf("env templates: %s", dump(c))
	}
	if c.Exec == nil || c.Exec.Command[0] != "./app" || c.AutoAuth.Method.Config["role"] != "app" {
		t.Errorf("parsed: %s", dump(c))
	}
	if len(c.Listeners) != 1 || c.Listeners[0].Type != "tcp" || !c.Listeners[0].TLSDisable {
		t.Errorf("listeners: %s", dump(c))
	}
}

func TestDefaults(t *testing.T) {
	clearEnv(t)
	t.Setenv("VAULT_ADDR", "https://vault-addr.example:8200")
	c, err := Parse([]byte(`
auto_auth {
  method "jwt" {
    config { path = "/var/run/secrets/token", role = "app" }
  }
  sink "file" { config { path = "/tmp/token" } }
}
template {
  contents    = "x"
  destination = "/tmp/x"
}
exec { command = ["env"] }
`), "d.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if c.Vault == nil || c.Vault.Address != "https://vault-addr.example:8200" || c.Vault.Retries != DefaultRetries {
		t.Errorf("vault = %+v", c.Vault)
	}
	m := c.AutoAuth.Method
	if m.MountPath != "auth/jwt" || m.MinBackoff != time.Second || m.MaxBackoff != 5*time.Minute {
		t.Errorf("method = %+v", m)
	}
	if s := c.AutoAuth.Sinks[0]; s.Mode != 0o640 {
		t.Errorf("sink mode = %o", s.Mode)
	}
	tp := c.Templates[0]
	if tp.Perms != 0o644 || tp.PermsSet || tp.CommandTimeout != 30*time.Second || tp.LeftDelim != "{{" || tp.RightDelim != "}}" || !tp.CreateDestDirs || !tp.ErrorFatal {
		t.Errorf("template = %+v", tp)
	}
	tc := c.TemplateConfig
	if tc.StaticSecretRenderInterval != 5*time.Minute || tc.MaxConnectionsPerHost != 10 || tc.LeaseRenewalThreshold != 0.9 {
		t.Errorf("template_config = %+v", tc)
	}
	if x := c.Exec; x.RestartOnSecretChanges != "always" || x.RestartStopSignal != syscall.SIGTERM || x.RestartKillTimeout != 30*time.Second {
		t.Errorf("exec = %+v", x)
	}
	if c.APIProxy != nil {
		t.Errorf("api_proxy = %+v without the stanza", c.APIProxy)
	}

	// ARCA_ADDR wins over VAULT_ADDR; without either, the local default.
	t.Setenv("ARCA_ADDR", "https://arca-addr.example:8200")
	if c, err = Parse(nil, "empty.hcl"); err != nil || c.Vault.Address != "https://arca-addr.example:8200" {
		t.Errorf("address = %v, %v", c, err)
	}
	t.Setenv("ARCA_ADDR", "")
	t.Setenv("VAULT_ADDR", "")
	if c, err = Parse(nil, "empty.hcl"); err != nil || c.Vault.Address != "http://127.0.0.1:8200" {
		t.Errorf("address = %v, %v", c, err)
	}
	// The file wins over the environment.
	t.Setenv("VAULT_ADDR", "https://env.example:8200")
	if c, err = Parse([]byte(`vault { address = "https://file.example:8200" }`), "v.hcl"); err != nil || c.Vault.Address != "https://file.example:8200" {
		t.Errorf("address = %v, %v", c, err)
	}
}

func TestValuesInTheirShapes(t *testing.T) {
	clearEnv(t)
	cases := []struct {
		src   string
		check func(*Config) bool
	}{
		{`auto_auth {
  method "approle" {
    min_backoff = 3
    max_backoff = "90"
    wrap_ttl = "1m"
    config { role_id_file_path = "/r" }
  }
  sink "file" { config { path = "/t" } }
}`, func(c *Config) bool {
			m := c.AutoAuth.Method
			return m.MinBackoff == 3*time.Second && m.MaxBackoff == 90*time.Second && m.WrapTTL == time.Minute
		}},
		{`vault { retry { num_retries = -1 } }`, func(c *Config) bool { return c.Vault.Retries == 0 }},
		{`vault { retry { num_retries = 0 } }`, func(c *Config) bool { return c.Vault.Retries == 12 }},
		{`template {
  contents = "x"
  destination = "/x"
  wait = "5s"
  command = ["touch", "/y"]
  command_timeout = "1m"
  perms = 0600
}`, func(c *Config) bool {
			tp := c.Templates[0]
			return tp.WaitMin == 5*time.Second && tp.WaitMax == 20*time.Second && !tp.CommandShell &&
				reflect.DeepEqual(tp.Command, []string{"touch", "/y"}) && tp.CommandTimeout == time.Minute && tp.Perms == 0o600
		}},
		{`template {
  contents = <<EOT
user={{ .Data.username }}
EOT
  destination = "/x"
  wait = "2s:8s"
}`, func(c *Config) bool {
			tp := c.Templates[0]
			return tp.Contents == "user={{ .Data.username }}\n" && tp.WaitMin == 2*time.Second && tp.WaitMax == 8*time.Second
		}},
		{`cache { use_auto_auth_token = true }
auto_auth {
  method "approle" { config { role_id_file_path = "/r" } }
}
listener "tcp" {
  address = "127.0.0.1:8100"
  tls_disable = true
}`, func(c *Config) bool { return c.APIProxy != nil && c.APIProxy.UseAutoAuthToken == "true" }},
		{`api_proxy {
  use_auto_auth_token = false
  enforce_consistency = "always"
  when_inconsistent = "retry"
}
listener "tcp" {
  address = "127.0.0.1:8100"
  tls_cert_file = "/c.pem"
  tls_key_file = "/k.pem"
  tls_min_version = "tls13"
  require_request_header = true
}`, func(c *Config) bool {
			l := c.Listeners[0]
			return c.APIProxy.UseAutoAuthToken == "false" && c.APIProxy.EnforceConsistency == "always" &&
				!l.TLSDisable && l.TLSCertFile == "/c.pem" && l.TLSMinVersion == "tls13" && l.RequireRequestHeader
		}},
		{`exec {
  command = ["./app"]
  restart_stop_signal = "hup"
}`, func(c *Config) bool { return c.Exec.RestartStopSignal == syscall.SIGHUP }},
		{`template_config { lease_renewal_threshold = 0.5 }`, func(c *Config) bool { return c.TemplateConfig.LeaseRenewalThreshold == 0.5 }},
		{`template_config { static_secret_render_interval = "1d" }`, func(c *Config) bool {
			return c.TemplateConfig.StaticSecretRenderInterval == 24*time.Hour
		}},
	}
	for i, tc := range cases {
		c, err := Parse([]byte(tc.src), "case.hcl")
		if err != nil {
			t.Errorf("case %d: %v", i, err)
			continue
		}
		if !tc.check(c) {
			t.Errorf("case %d parsed to %s", i, dump(c))
		}
	}
}

// TestIgnoredKeys: keys Vault Agent has that change nothing Arca's agent
// does parse without error.
func TestIgnoredKeys(t *testing.T) {
	clearEnv(t)
	src := `
log_level = "debug"
log_file = "/var/log/agent.log"
disable_idle_connections = ["templating"]
telemetry {
  prometheus_retention_time = "30s"
  disable_hostname = true
}
cache {
  persist "kubernetes" { path = "/vault/agent-cache" }
}
auto_auth {
  method "approle" { config { role_id_file_path = "/r" } }
  sink "file" { config { path = "/t" } }
}
listener "tcp" {
  address = "127.0.0.1:8100"
  tls_disable = true
  max_request_duration = "90s"
}
`
	c, err := Parse([]byte(src), "ignored.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if c.APIProxy != nil {
		t.Errorf("a cache without use_auto_auth_token made an api_proxy: %+v", c.APIProxy)
	}
}

func TestErrors(t *testing.T) {
	clearEnv(t)
	approle := `auto_auth {
  method "approle" { config { role_id_file_path = "/r" } }
  sink "file" { config { path = "/t" } }
}
`
	cases := []struct{ name, src, want string }{
		{"unknown top key", "pid_file = \"/p\"\nvalut { address = \"x\" }", `bad.hcl:line 2: unknown key "valut"`},
		{"unknown template key", "template {\n  contents = \"x\"\n  destination = \"/x\"\n  destnation = \"/y\"\n}", `bad.hcl:line 4: template: unknown key "destnation"`},
		{"unknown vault key", "vault {\n address = \"x\"\n tls_skip = true\n}", `line 3: vault: unknown key "tls_skip"`},
		{"unknown method key", "auto_auth {\n method \"approle\" {\n  mount = \"x\"\n }\n}", `auto_auth.method "approle": unknown key "mount"`},
		{"unknown sink config key", approle[:len(approle)-2] + " sink \"file\" { config { path = \"/a\", owner = \"x\" } }\n}", `auto_auth.sink "file".config: unknown key "owner"`},
		{"unknown listener key", "listener \"tcp\" {\n address = \"127.0.0.1:1\"\n tls_disable = true\n bogus = 1\n}", `listener "tcp": unknown key "bogus"`},
		{"source and contents", "template {\n source = \"/a\"\n contents = \"b\"\n destination = \"/c\"\n}", "template: give source or contents, not both"},
		{"neither source nor contents", "template {\n destination = \"/c\"\n}", "template: source (a template file) or contents"},
		{"template without destination", "template {\n contents = \"x\"\n}", "template: destination is required"},
		{"exec without command", "exec {\n restart_on_secret_changes = \"always\"\n}", "exec: command is required"},
		{"exec with a string command", "exec {\n command = \"./app --serve\"\n}", "exec: command must be a list"},
		{"env_template without exec", "env_template \"X\" {\n contents = \"x\"\n}", "env_template: needs an exec block"},
		{"env_template without a name", "exec { command = [\"a\"] }\nenv_template {\n contents = \"x\"\n}", "env_template: the environment variable's name is required"},
		{"env_template with destination", "exec { command = [\"a\"] }\nenv_template \"X\" {\n contents = \"x\"\n destination = \"/y\"\n}", `env_template "X": destination is not allowed`},
		{"env_template twice", "exec { command = [\"a\"] }\nenv_template \"X\" { contents = \"x\" }\nenv_template \"X\" { contents = \"y\" }", `env_template "X": the variable is given more than once`},
		{"sink without path", "auto_auth {\n method \"approle\" { config { role_id_file_path = \"/r\" } }\n sink \"file\" { config { mode = 0600 } }\n}", `auto_auth.sink "file": config { path = "..." } is required`},
		{"sink without type", "auto_auth {\n method \"approle\" {}\n sink { config { path = \"/t\" } }\n}", "auto_auth.sink: the sink type is required"},
		{"method without type", "auto_auth {\n method {\n  config { role_id_file_path = \"/r\" }\n }\n}", "auto_auth.method: the method type is required"},
		{"auto_auth without method", "auto_auth {\n sink \"file\" { config { path = \"/t\" } }\n}", "auto_auth: a method block is required"},
		{"unsupported method", "auto_auth {\n method \"kubernetes\" { config { role = \"r\" } }\n}", `line 2: auto_auth.method "kubernetes": Arca's agent does not support this method; use one of approle, jwt, token_file`},
		{"dh_type sink", approle[:len(approle)-2] + " sink \"file\" {\n dh_type = \"curve25519\"\n dh_path = \"/k\"\n config { path = \"/t2\" }\n }\n}", `auto_auth.sink "file": dh_type: response-wrapping encryption of sinks`},
		{"aad sink", approle[:len(approle)-2] + " sink \"file\" {\n aad = \"x\"\n config { path = \"/t2\" }\n }\n}", `auto_auth.sink "file": aad: response-wrapping encryption`},
		{"non-file sink", "auto_auth {\n method \"approle\" {}\n sink \"socket\" { config { path = \"/t\" } }\n}", `auto_auth.sink "socket": Arca's agent supports file sinks only`},
		{"restart_on_secret_changes", "exec {\n command = [\"a\"]\n restart_on_secret_changes = \"sometimes\"\n}", `exec: restart_on_secret_changes: "sometimes" must be "always" or "never"`},
		{"bad signal", "exec {\n command = [\"a\"]\n restart_stop_signal = \"SIGNOPE\"\n}", `restart_stop_signal: "SIGNOPE" is not a signal name`},
		{"listener without address", "listener \"tcp\" {\n tls_disable = true\n}", `line 1: listener "tcp": address is required`},
		{"listener without tls", "listener \"tcp\" {\n address = \"127.0.0.1:8100\"\n}", `listener "tcp": set tls_cert_file and tls_key_file, or tls_disable = true`},
		{"listener of another type", "listener \"udp\" {\n address = \"x\"\n}", `listener "udp": a listener is "tcp" or "unix"`},
		{"bad duration", "auto_auth {\n method \"approle\" {\n  min_backoff = \"soon\"\n }\n}", `line 3: auto_auth.method "approle": min_backoff: "soon" is not a duration`},
		{"bad bool", "exit_after_auth = \"maybe\"", `line 1: exit_after_auth: "maybe" is not true or false`},
		{"bad mode", approle[:len(approle)-2] + " sink \"file\" { config { path = \"/a\", mode = 640 } }\n}", `mode: 640 is not a file mode`},
		{"bad perms", "template {\n contents = \"x\"\n destination = \"/x\"\n perms = \"rw-r--r--\"\n}", `line 4: template: perms: "rw-r--r--" is not an octal file mode`},
		{"use_auto_auth_token value", "api_proxy { use_auto_auth_token = \"always\" }", `api_proxy: use_auto_auth_token: "always" must be true, false or "force"`},
		{"api_proxy token without auto_auth", "api_proxy { use_auto_auth_token = true }\nlistener \"tcp\" {\n address = \"127.0.0.1:1\"\n tls_disable = true\n}", "api_proxy: use_auto_auth_token = true needs an auto_auth block"},
		{"api_proxy without listener", approle + "api_proxy { use_auto_auth_token = true }", "api_proxy: needs at least one listener block"},
		{"two vault blocks", "vault { address = \"a\" }\nvault { address = \"b\" }", "line 2: vault: only one vault block is allowed"},
		{"key twice", "vault {\n address = \"a\"\n address = \"b\"\n}", `"address" at 3:2 was already set`},
		{"block key twice", "template {\n contents = \"x\"\n destination = \"/x\"\n wait { min = \"1s\" }\n wait { min = \"2s\" }\n}", "line 5: template.wait: only one wait block is allowed"},
		{"wrapping on method and sink", "auto_auth {\n method \"approle\" { wrap_ttl = \"1m\" }\n sink \"file\" {\n wrap_ttl = \"1m\"\n config { path = \"/t\" }\n }\n}", "auto_auth: wrap_ttl is set on both the method and its sink"},
		{"function_denylist", "template {\n contents = \"x\"\n destination = \"/x\"\n function_denylist = [\"file\"]\n}", "template: function_denylist is not supported by Arca's agent yet"},
		{"not HCL", "vault {", "bad.hcl: parsing the configuration"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "bad.hcl")
			if err == nil {
				t.Fatalf("parsed without error; want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(t.TempDir() + "/nope.hcl")
	if err == nil || !os.IsNotExist(err) {
		t.Fatalf("err = %v", err)
	}
}

// TestStanzaRules: what every stanza does with its keys: refused keys name
// themselves, ignored keys are skipped (even where another stanza knows
// them), an unknown key is reported as unknown whatever its shape, and the
// older names give way to the newer ones.
func TestStanzaRules(t *testing.T) {
	clearEnv(t)
	c, err := Parse([]byte(`
auto_auth {
  method "approle" { config { role_id_file_path = "/r", retries = 3, tags = ["a", "b"] } }
  sink "file" { config { path = "/t" } }
}
api_proxy { use_auto_auth_token = true }
cache {
  enforce_consistency = "always"
  when_inconsistent   = "fail"
}
listener "tcp" {
  address = "127.0.0.1:8100"
  tls_disable = true
}
template {
  contents        = "x"
  destination     = "/x"
  uid             = "1000"
  user            = "app"
  gid             = "1000"
  left_delimiter  = ""
  wait { enabled = false }
}
`), "rules.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if cfg := c.AutoAuth.Method.Config; cfg["retries"] != 3 || !reflect.DeepEqual(cfg["tags"], []any{"a", "b"}) {
		t.Errorf("method config = %#v", cfg)
	}
	if ap := c.APIProxy; ap.UseAutoAuthToken != "true" || ap.EnforceConsistency != "" || ap.WhenInconsistent != "" {
		t.Errorf("cache's ignored keys reached api_proxy: %+v", ap)
	}
	if tp := c.Templates[0]; tp.User != "app" || tp.Group != "1000" || tp.LeftDelim != "{{" || tp.WaitMin != 0 || tp.WaitMax != 0 {
		t.Errorf("template = %+v", tp)
	}

	for _, tc := range []struct{ name, src, want string }{
		{"unknown block in vault", "vault {\n bogus {}\n}", `line 2: vault: unknown key "bogus"`},
		{"unknown block in exec", "exec {\n command = [\"a\"]\n bogus { x = 1 }\n}", `line 3: exec: unknown key "bogus"`},
		{"unknown in retry", "vault {\n retry {\n  tries = 3\n }\n}", `line 3: vault.retry: unknown key "tries"`},
		{"unknown in auto_auth", "auto_auth {\n method \"approle\" {}\n bogus = 1\n}", `line 3: auto_auth: unknown key "bogus"`},
		{"unknown in wait", "template {\n contents = \"x\"\n destination = \"/x\"\n wait {\n  mn = \"1s\"\n }\n}", `line 5: template.wait: unknown key "mn" (min, max)`},
		{"unknown in template.exec", "template {\n contents = \"x\"\n destination = \"/x\"\n exec {\n  cmd = [\"a\"]\n }\n}", `line 5: template.exec: unknown key "cmd"`},
		{"unknown in env_template", "exec { command = [\"a\"] }\nenv_template \"X\" {\n contents = \"x\"\n bogus = 1\n}", `line 4: env_template "X": unknown key "bogus"`},
		{"refused in template.exec", "template {\n contents = \"x\"\n destination = \"/x\"\n exec {\n  command = [\"a\"]\n  splay = \"5s\"\n }\n}", "line 6: template.exec: splay is not supported by Arca's agent; remove it"},
		{"refused in listener", "listener \"tcp\" {\n address = \"x\"\n tls_disable = true\n tls_client_ca_file = \"/ca\"\n}", `line 4: listener "tcp": tls_client_ca_file is not supported`},
		{"refused in env_template", "exec { command = [\"a\"] }\nenv_template \"X\" {\n contents = \"x\"\n sandbox_path = \"/s\"\n}", `line 4: env_template "X": sandbox_path is not supported by Arca's agent yet`},
		{"client certs verified", "listener \"tcp\" {\n address = \"x\"\n tls_disable = true\n tls_require_and_verify_client_cert = true\n}", "line 4: listener \"tcp\": tls_require_and_verify_client_cert = true: Arca's agent does not verify client certificates"},
		{"listener role", "listener \"tcp\" {\n address = \"x\"\n tls_disable = true\n role = \"metrics_only\"\n}", `role "metrics_only" is not supported`},
		{"tls_min_version", "listener \"tcp\" {\n address = \"x\"\n tls_disable = true\n tls_min_version = \"tls10\"\n}", `tls_min_version: "tls10" must be "tls12" or "tls13"`},
		{"negative connections", "template_config {\n max_connections_per_host = -1\n}", "line 2: template_config: max_connections_per_host must not be negative"},
		{"threshold out of range", "template_config {\n lease_renewal_threshold = 2\n}", `line 2: template_config: lease_renewal_threshold: "2" is not a fraction`},
		{"retries below -1", "vault {\n retry {\n  num_retries = -5\n }\n}", "line 3: vault.retry: num_retries must be -1"},
		{"whole number", "vault {\n retry {\n  num_retries = \"many\"\n }\n}", `line 3: vault.retry: num_retries: "many" is not a whole number`},
		{"value given as a block", "vault {\n address \"a\" {\n  x = 1\n }\n}", "line 2: vault: address: expected a value, not a block"},
		{"value given as an object", "vault {\n address {\n  x = 1\n }\n}", "line 2: vault: address: expected a single value"},
		{"list for a single value", "pid_file = [\"a\"]", "line 1: pid_file: expected a single value"},
		{"two methods", "auto_auth {\n method \"approle\" {}\n method \"jwt\" {}\n}", "line 3: auto_auth: only one method block is allowed"},
		{"type contradicts label", "listener \"tcp\" {\n type = \"unix\"\n}", `line 2: listener: type "unix" contradicts the block's label "tcp"`},
		{"client cert alone", "vault {\n client_cert = \"/c\"\n}", "vault: client_cert and client_key must be given together"},
		{"cache and api_proxy both set the token", "api_proxy { use_auto_auth_token = true }\ncache { use_auto_auth_token = true }", "line 2: cache: use_auto_auth_token is set both here and in api_proxy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "bad.hcl")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}
