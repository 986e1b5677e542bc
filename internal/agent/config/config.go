// Package config reads the agent's configuration file: Vault Agent's HCL (or
// JSON) shapes, so a file written for `vault agent` runs under `arca agent`
// unchanged. Parse fills defaults and rejects what the agent cannot honour
// with an error that names the stanza and field.
package config

import (
	"os"
	"syscall"
	"time"
)

// Config is one agent configuration file.
type Config struct {
	PidFile       string // pid_file
	ExitAfterAuth bool   // exit_after_auth
	// LogLevel, LogFormat and LogFile are log_level, log_format and
	// log_file; the command line's flags win over them.
	LogLevel, LogFormat, LogFile string

	Vault          *Vault         // vault {}; never nil after Parse (address from $VAULT_ADDR/$ARCA_ADDR when unset)
	AutoAuth       *AutoAuth      // auto_auth {}; nil when absent
	Templates      []*Template    // template {} stanzas, in file order
	TemplateConfig TemplateConfig // template_config {}
	Exec           *Exec          // exec {}; nil when absent
	EnvTemplates   []*EnvTemplate // env_template "NAME" {} stanzas (used with exec)
	APIProxy       *APIProxy      // api_proxy {} (or the older cache { use_auto_auth_token }); nil when absent
	Listeners      []*Listener    // listener "tcp"/"unix" {}
}

// Vault is the server the agent talks to.
type Vault struct {
	Address       string // address
	CACert        string // ca_cert
	CAPath        string // ca_path
	ClientCert    string // client_cert
	ClientKey     string // client_key
	TLSServerName string // tls_server_name
	TLSSkipVerify bool   // tls_skip_verify
	// Retries is retry { num_retries }: how many times a failed request is
	// retried (12 when unset or 0, as in Vault Agent; -1 disables retries).
	Retries int
}

// AutoAuth is auto_auth {}: one login method and the sinks its token goes to.
type AutoAuth struct {
	Method *Method
	Sinks  []*Sink
}

// Method is auto_auth { method "TYPE" { ... } }.
type Method struct {
	Type       string        // approle, jwt, token_file (method "TYPE" or type = "TYPE")
	MountPath  string        // mount_path; default "auth/<type>"
	Namespace  string        // namespace (accepted, unused: Arca has no namespaces)
	WrapTTL    time.Duration // wrap_ttl: the login response is wrapped and only written to sinks
	MinBackoff time.Duration // min_backoff; default 1s
	MaxBackoff time.Duration // max_backoff; default 5m
	// ExitOnError is exit_on_err: give up (agent exits) when a login fails
	// rather than retrying.
	ExitOnError bool
	// Config is the method's config {} block as written: role_id_file_path,
	// secret_id_file_path, remove_secret_id_file_after_reading,
	// secret_id_response_wrapping_path, path, role, token_file_path, ...
	// Values are strings, bools or numbers.
	Config map[string]any
}

// Sink is auto_auth { sink "file" { ... } }.
type Sink struct {
	Type    string        // file
	WrapTTL time.Duration // wrap_ttl: write a wrapping token (its wrap info as JSON) rather than the token
	Path    string        // config { path }
	Mode    os.FileMode   // config { mode }; default 0640
	// DHType, DHPath, AAD, DeriveKey are the response-encryption fields;
	// Parse refuses a sink that sets them (not supported).
}

// Template is one template {} stanza.
type Template struct {
	Source            string        // source: a template file
	Contents          string        // contents: the template inline (one of source/contents)
	Destination       string        // destination; required unless the template feeds exec env (never for template {})
	Perms             os.FileMode   // perms ("0640"); 0644 when unset
	PermsSet          bool          // perms was given
	Command           []string      // command: a string (run with /bin/sh -c) or a list (run directly)
	CommandShell      bool          // command was given as a string
	CommandTimeout    time.Duration // exec { timeout } / command_timeout; default 30s
	ErrorOnMissingKey bool          // error_on_missing_key
	LeftDelim         string        // left_delimiter; default "{{"
	RightDelim        string        // right_delimiter; default "}}"
	Backup            bool          // backup: keep the previous file as <destination>.bak
	CreateDestDirs    bool          // create_dest_dirs; default true
	WaitMin, WaitMax  time.Duration // wait { min, max } (or wait = "5s:10s")
	ErrorFatal        bool          // error_fatal (default true): a template error stops the agent; false keeps the old file
	User, Group       string        // user/group: accepted, applied only when running as root
}

// TemplateConfig is template_config {}.
type TemplateConfig struct {
	// StaticSecretRenderInterval is how often secrets without a lease (KV)
	// are read again; default 5m.
	StaticSecretRenderInterval time.Duration
	// ExitOnRetryFailure makes the agent exit when fetching a template's
	// secrets keeps failing after the retries.
	ExitOnRetryFailure bool
	// MaxConnectionsPerHost caps connections to the server; default 10.
	MaxConnectionsPerHost int
	// LeaseRenewalThreshold (lease_renewal_threshold, default 0.9) is the
	// share of a non-renewable lease, or of a certificate's life, after
	// which the secret is fetched again; renewable leases are renewed at
	// about two thirds.
	LeaseRenewalThreshold float64
}

// Exec is exec {}: the application the agent runs as its child.
type Exec struct {
	Command []string // command: a list (argv)
	// RestartOnSecretChanges is "always" (default) or "never".
	RestartOnSecretChanges string
	RestartStopSignal      syscall.Signal // restart_stop_signal; default SIGTERM
	// RestartKillTimeout is how long a stopping child has before SIGKILL;
	// default 30s.
	RestartKillTimeout time.Duration
	ChildProcessStdout string // child_process_stdout: a file path; default the agent's stdout
	ChildProcessStderr string // child_process_stderr
}

// EnvTemplate is env_template "NAME" { contents | source, error_on_missing_key, ... }.
type EnvTemplate struct {
	Name              string
	Contents          string
	Source            string
	ErrorOnMissingKey bool
	LeftDelim         string
	RightDelim        string
}

// APIProxy is api_proxy {}.
type APIProxy struct {
	// UseAutoAuthToken is "false", "true" (add the agent's token to a
	// request that has none) or "force" (replace any token).
	UseAutoAuthToken   string
	EnforceConsistency string // accepted, unused
	WhenInconsistent   string // accepted, unused
}

// Listener is listener "tcp" {} or listener "unix" {}.
type Listener struct {
	Type        string // tcp or unix
	Address     string // host:port, or a socket path
	TLSDisable  bool
	TLSCertFile string
	TLSKeyFile  string
	// TLSMinVersion is tls_min_version: "tls12" (when empty) or "tls13".
	TLSMinVersion string
	SocketMode    os.FileMode // socket_mode (unix)
	SocketUser    string
	SocketGroup   string
	// RequireRequestHeader is require_request_header: refuse requests
	// without X-Vault-Request: true.
	RequireRequestHeader bool
	// EnableQuit is agent_api { enable_quit }: POST /agent/v1/quit stops
	// the agent.
	EnableQuit bool
}

// Load reads and parses the file at path.
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(src, path)
}
