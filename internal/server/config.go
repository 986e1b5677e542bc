package server

import (
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/hcl/ast"

	"github.com/arcasec/arca/internal/core"
	"github.com/arcasec/arca/internal/hclsafe"
	"github.com/arcasec/arca/internal/logical/framework"
	sealtransit "github.com/arcasec/arca/internal/seal/transit"
	"github.com/arcasec/arca/internal/storage"
	"github.com/arcasec/arca/internal/storage/postgres"
)

// Config is a server configuration file, in the shapes Vault users write.
type Config struct {
	Storage   StorageConfig
	Listeners []ListenerConfig
	APIAddr   string // the URL clients are told to use; shown at start-up and given to the core
	// ClusterAddr is accepted and advertised beside api_addr; Arca's
	// servers reach each other through api_addr.
	ClusterAddr string
	// StandbyRedirect makes standbys answer 307 to the active server
	// instead of forwarding requests to it (standby_redirect = true).
	StandbyRedirect bool
	ClusterName     string
	LogLevel        string
	LogFormat       string
	DefaultLeaseTTL time.Duration
	MaxLeaseTTL     time.Duration
	DisableMlock    bool   // do not lock the process's memory (see LockMemory)
	PidFile         string // where `arca server` writes its process ID while it runs

	// Seal is the `seal "transit"` block: the key service that protects the
	// root key. nil means Shamir key shares.
	Seal *sealtransit.Config

	// Audit devices declared in the file, and the settings that limit what
	// sys/audit may enable.
	Audit                       []AuditDeviceConfig
	UnsafeAllowAPIAuditCreation bool
	AllowAuditLogPrefixing      bool

	// UserLockout are the user_lockout "<type>" { ... } stanzas by type
	// ("all", "userpass", "approle", "ldap").
	UserLockout map[string]core.UserLockoutConfig

	// Set by tests, never by a configuration file: a catalog replacing
	// Catalog() (to mount stub engines) and the core's clock.
	Catalog *core.Catalog
	Clock   core.Clock
	// StorageBackend, when set, is used instead of opening Storage: tests
	// give several servers one in-memory HA backend.
	StorageBackend storage.Backend
	// StepDownWait is how long a server that stepped down waits before
	// contending again (0: the core's default).
	StepDownWait time.Duration
}

// AuditDeviceConfig is an `audit "<type>" "<path>" { ... }` stanza:
// description, options { ... } and local, as sys/audit takes them.
type AuditDeviceConfig struct {
	Type        string
	Path        string
	Description string
	Options     map[string]string
	Local       bool
}

// StorageConfig is the storage stanza: `storage "bolt" { path = "..." }`.
type StorageConfig struct {
	Type    string
	Options map[string]string
}

// storageOptions are the options each storage type reads; any other is an
// error rather than a setting silently ignored. A type missing here is
// checked by storage.New.
var storageOptions = map[string][]string{
	"inmem":      {},
	"bolt":       {"path"},
	"file":       {"path"}, // Vault's name, served by bolt
	"postgresql": postgres.Options,
	"postgres":   postgres.Options,
}

// ListenerConfig is a `listener "tcp" { ... }` stanza.
type ListenerConfig struct {
	Type               string
	Address            string
	TLSDisable         bool
	TLSCertFile        string
	TLSKeyFile         string
	TLSMinVersion      string
	MaxRequestSize     int64
	MaxRequestDuration time.Duration
	JSON               JSONLimits

	// The HTTP timeouts, as net/http.Server defines them; zero means no
	// limit. A listener read from a configuration file starts from the
	// Default values; one built in code sets what it wants.
	ReadTimeout       time.Duration // http_read_timeout: the whole request, body included
	ReadHeaderTimeout time.Duration // http_read_header_timeout
	IdleTimeout       time.Duration // http_idle_timeout: between keep-alive requests
	WriteTimeout      time.Duration // http_write_timeout: from the end of the headers to the end of the response
}

// Default listener timeouts, as Vault documents them. http_write_timeout
// has no default limit, so a long response is not cut off.
const (
	DefaultReadTimeout       = 30 * time.Second
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 5 * time.Minute
)

// LoadConfig reads an HCL or JSON configuration file.
func LoadConfig(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the configuration: %w", err)
	}
	conf, err := ParseConfig(string(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return conf, nil
}

// ParseConfig parses configuration text (HCL, or JSON, which HCL reads too).
func ParseConfig(text string) (*Config, error) {
	file, err := hclsafe.Parse(text)
	if err != nil {
		return nil, fmt.Errorf("parsing the configuration: %w", err)
	}
	root, ok := file.Node.(*ast.ObjectList)
	if !ok {
		return nil, fmt.Errorf("the configuration must be a set of blocks and attributes")
	}
	conf := &Config{}
	for _, item := range root.Items {
		if len(item.Keys) == 0 {
			continue
		}
		key := keyName(item.Keys[0])
		switch key {
		case "storage", "backend":
			if conf.Storage.Type != "" {
				return nil, fmt.Errorf("only one storage block is allowed")
			}
			if conf.Storage, err = parseStorage(key, item); err != nil {
				return nil, err
			}
		case "listener":
			typ, body, err := labeledBlock(key, item)
			if err != nil {
				return nil, err
			}
			l, err := parseListener(typ, body)
			if err != nil {
				return nil, err
			}
			conf.Listeners = append(conf.Listeners, l)
		case "audit":
			var a AuditDeviceConfig
			if a, err = parseAudit(item); err == nil {
				conf.Audit = append(conf.Audit, a)
			}
		case "unsafe_allow_api_audit_creation", "allow_audit_log_prefixing":
			var b bool
			if b, err = boolValue(key, item.Val); err == nil {
				if key == "allow_audit_log_prefixing" {
					conf.AllowAuditLogPrefixing = b
				} else {
					conf.UnsafeAllowAPIAuditCreation = b
				}
			}
		case "api_addr":
			if conf.APIAddr, err = stringValue(key, item.Val); err == nil {
				if u, perr := url.Parse(conf.APIAddr); perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					err = fmt.Errorf("api_addr: %q is not a URL such as \"https://arca.example.com:8200\"", conf.APIAddr)
				}
			}
		case "cluster_name":
			conf.ClusterName, err = stringValue(key, item.Val)
		case "log_level":
			conf.LogLevel, err = stringValue(key, item.Val)
		case "log_format":
			conf.LogFormat, err = stringValue(key, item.Val)
		case "default_lease_ttl", "max_lease_ttl":
			var s string
			if s, err = stringValue(key, item.Val); err == nil {
				var d time.Duration
				if d, err = framework.ParseDuration(s); err != nil {
					err = fmt.Errorf("%s: %w", key, err)
				} else if key == "default_lease_ttl" {
					conf.DefaultLeaseTTL = d
				} else {
					conf.MaxLeaseTTL = d
				}
			}
		case "disable_mlock":
			conf.DisableMlock, err = boolValue(key, item.Val)
		case "disable_cache":
			// Arca keeps no cache of storage reads, so both values describe it truthfully.
			_, err = boolValue(key, item.Val)
		case "ui", "raw_storage_endpoint", "enable_response_header_hostname":
			// Vault features Arca lacks: turning one off is accurate, turning it on is not.
			var on bool
			if on, err = boolValue(key, item.Val); err == nil && on {
				err = fmt.Errorf("%s = true: Arca does not implement this option yet; remove it or set it to false", key)
			}
		case "seal":
			if conf.Seal != nil {
				return nil, fmt.Errorf("seal (line %d): only one seal block is allowed", item.Pos().Line)
			}
			conf.Seal, err = parseSeal(item)
		case "pid_file":
			conf.PidFile, err = stringValue(key, item.Val)
		case "user_lockout":
			var typ string
			var ul core.UserLockoutConfig
			if typ, ul, err = parseUserLockout(item); err == nil {
				if _, dup := conf.UserLockout[typ]; dup {
					err = fmt.Errorf("user_lockout %q (line %d): only one block per type is allowed", typ, item.Pos().Line)
				} else {
					if conf.UserLockout == nil {
						conf.UserLockout = map[string]core.UserLockoutConfig{}
					}
					conf.UserLockout[typ] = ul
				}
			}
		case "cluster_addr":
			if conf.ClusterAddr, err = stringValue(key, item.Val); err == nil {
				if u, perr := url.Parse(conf.ClusterAddr); perr != nil || u.Host == "" {
					err = fmt.Errorf("cluster_addr: %q is not a URL such as \"https://arca-1.example.com:8201\"", conf.ClusterAddr)
				}
			}
		case "disable_clustering":
			// Arca's servers talk to each other over the API only: there is
			// no cluster listener to disable.
			_, err = boolValue(key, item.Val)
		case "standby_redirect":
			conf.StandbyRedirect, err = boolValue(key, item.Val)
		case "plugin_directory", "telemetry":
			err = fmt.Errorf("%s (line %d): Arca does not implement this option yet; remove it from the configuration", key, item.Pos().Line)
		default:
			return nil, fmt.Errorf("unknown configuration key %q (line %d)", key, item.Pos().Line)
		}
		if err != nil {
			return nil, err
		}
	}
	if conf.Storage.Type == "" {
		return nil, fmt.Errorf("a storage block is required, e.g. storage \"bolt\" { path = \"/var/lib/arca/arca.db\" }")
	}
	if len(conf.Listeners) == 0 {
		return nil, fmt.Errorf("at least one listener block is required, e.g. listener \"tcp\" { address = \"127.0.0.1:8200\" }")
	}
	if conf.DefaultLeaseTTL > 0 && conf.MaxLeaseTTL > 0 && conf.DefaultLeaseTTL > conf.MaxLeaseTTL {
		return nil, fmt.Errorf("default_lease_ttl must not be longer than max_lease_ttl")
	}
	return conf, nil
}

// labeledBlock reads `name "label" { ... }`, in HCL or its JSON form.
// parseStorage reads a storage stanza (storage, storage_source, ...).
func parseStorage(key string, item *ast.ObjectItem) (StorageConfig, error) {
	typ, body, err := labeledBlock(key, item)
	if err != nil {
		return StorageConfig{}, err
	}
	opts, err := stringAttrs(key, body)
	if err != nil {
		return StorageConfig{}, err
	}
	if known, ok := storageOptions[typ]; ok {
		for _, k := range slices.Sorted(maps.Keys(opts)) {
			if !slices.Contains(known, k) {
				return StorageConfig{}, fmt.Errorf("%s %q: unknown option %q (it takes %q)", key, typ, k, known)
			}
		}
	}
	return StorageConfig{Type: typ, Options: opts}, nil
}

func labeledBlock(name string, item *ast.ObjectItem) (string, *ast.ObjectList, error) {
	if len(item.Keys) >= 2 {
		obj, ok := item.Val.(*ast.ObjectType)
		if !ok {
			return "", nil, fmt.Errorf("%s: expected a block", name)
		}
		return keyName(item.Keys[1]), obj.List, nil
	}
	// JSON form: "storage": {"bolt": {...}}
	obj, ok := item.Val.(*ast.ObjectType)
	if !ok || len(obj.List.Items) != 1 || len(obj.List.Items[0].Keys) == 0 {
		return "", nil, fmt.Errorf("%s: expected a block with a type label, e.g. %s \"tcp\" { ... }", name, name)
	}
	inner := obj.List.Items[0]
	body, ok := inner.Val.(*ast.ObjectType)
	if !ok {
		return "", nil, fmt.Errorf("%s: expected a block", name)
	}
	return keyName(inner.Keys[0]), body.List, nil
}

func boolValue(key string, n ast.Node) (bool, error) {
	s, err := stringValue(key, n)
	if err != nil {
		return false, err
	}
	return parseBool(key, s)
}

func parseBool(key, s string) (bool, error) {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("%s: %q is not true or false", key, s)
	}
	return b, nil
}

func stringValue(key string, n ast.Node) (string, error) {
	lit, ok := n.(*ast.LiteralType)
	if !ok {
		return "", fmt.Errorf("%s: expected a single value", key)
	}
	s, err := hclsafe.String(lit.Token)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	return s, nil
}

// keyName is an object key's text; a key the parser cannot read becomes
// "", which every caller rejects as unknown.
func keyName(k *ast.ObjectKey) string {
	s, _ := hclsafe.String(k.Token)
	return s
}

func stringAttrs(block string, body *ast.ObjectList) (map[string]string, error) {
	out := map[string]string{}
	for _, item := range body.Items {
		k := keyName(item.Keys[0])
		v, err := stringValue(block+"."+k, item.Val)
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

func parseListener(typ string, body *ast.ObjectList) (ListenerConfig, error) {
	l := ListenerConfig{Type: typ, Address: "127.0.0.1:8200",
		ReadTimeout: DefaultReadTimeout, ReadHeaderTimeout: DefaultReadHeaderTimeout, IdleTimeout: DefaultIdleTimeout}
	if typ != "tcp" {
		return l, fmt.Errorf("listener %q: only \"tcp\" listeners are supported", typ)
	}
	attrs, err := stringAttrs("listener", body)
	if err != nil {
		return l, err
	}
	for _, k := range slices.Sorted(maps.Keys(attrs)) { // the first error is the same on every start
		v := attrs[k]
		switch k {
		case "address":
			l.Address = v
		case "tls_disable":
			if l.TLSDisable, err = parseBool("listener."+k, v); err != nil {
				return l, err
			}
		case "tls_cert_file":
			l.TLSCertFile = v
		case "tls_key_file":
			l.TLSKeyFile = v
		case "tls_min_version":
			l.TLSMinVersion = v
		case "max_request_size":
			var n int64
			if _, err := fmt.Sscan(v, &n); err != nil {
				return l, fmt.Errorf("listener.max_request_size: %q is not a number of bytes", v)
			}
			l.MaxRequestSize = n
		case "max_request_duration":
			d, err := framework.ParseDuration(v)
			if err != nil || d <= 0 {
				return l, fmt.Errorf("listener.max_request_duration: %q is not a positive duration", v)
			}
			l.MaxRequestDuration = d
		case "max_json_depth", "max_json_string_value_length", "max_json_object_entry_count", "max_json_array_element_count":
			var n int
			if _, err := fmt.Sscan(v, &n); err != nil || n <= 0 {
				return l, fmt.Errorf("listener.%s: %q is not a positive number", k, v)
			}
			switch k {
			case "max_json_depth":
				l.JSON.MaxDepth = n
			case "max_json_string_value_length":
				l.JSON.MaxStringLength = n
			case "max_json_object_entry_count":
				l.JSON.MaxObjectEntries = n
			default:
				l.JSON.MaxArrayElements = n
			}
		case "http_read_timeout", "http_read_header_timeout", "http_idle_timeout", "http_write_timeout":
			d, err := framework.ParseDuration(v)
			if err != nil || d < 0 {
				return l, fmt.Errorf("listener.%s: %q is not a duration such as \"30s\"", k, v)
			}
			switch k {
			case "http_read_timeout":
				l.ReadTimeout = d
			case "http_read_header_timeout":
				l.ReadHeaderTimeout = d
			case "http_idle_timeout":
				l.IdleTimeout = d
			default:
				l.WriteTimeout = d
			}
		case "tls_require_and_verify_client_cert":
			// Off is what Arca does; on would promise client certificate checks it does not make.
			on, err := parseBool("listener."+k, v)
			if err != nil {
				return l, err
			}
			if on {
				return l, fmt.Errorf("listener.%s = true: Arca does not verify client certificates yet; remove the option", k)
			}
		case "cluster_address", "tls_client_ca_file", "x_forwarded_for_authorized_addrs", "proxy_protocol_behavior":
			return l, fmt.Errorf("listener.%s: Arca does not implement this option yet; remove it from the listener", k)
		default:
			return l, fmt.Errorf("listener: unknown key %q", k)
		}
	}
	if !l.TLSDisable && (l.TLSCertFile == "" || l.TLSKeyFile == "") {
		return l, fmt.Errorf("listener %s: set tls_cert_file and tls_key_file, or tls_disable = true", l.Address)
	}
	return l, nil
}

// parseAudit reads `audit "<type>" "<path>" { description = "...",
// options { ... }, local = false }`. HCL reads the JSON form,
// {"audit": [{"<type>": {"<path>": {...}}}]}, into the same keys.
func parseAudit(item *ast.ObjectItem) (AuditDeviceConfig, error) {
	var a AuditDeviceConfig
	obj, ok := item.Val.(*ast.ObjectType)
	if len(item.Keys) != 3 || !ok {
		return a, fmt.Errorf(`audit (line %d): expected audit "<type>" "<path>" { options { ... } }`, item.Pos().Line)
	}
	a.Type, a.Path = keyName(item.Keys[1]), keyName(item.Keys[2])
	name := fmt.Sprintf("audit %q %q", a.Type, a.Path)
	for _, it := range obj.List.Items {
		if len(it.Keys) == 0 {
			return a, fmt.Errorf("%s: expected description, options or local", name)
		}
		k := keyName(it.Keys[0])
		var err error
		switch {
		case k == "description" && len(it.Keys) == 1:
			a.Description, err = stringValue(name+": description", it.Val)
		case k == "local" && len(it.Keys) == 1:
			a.Local, err = boolValue(name+": local", it.Val)
		case k == "options" && len(it.Keys) == 1:
			body, ok := it.Val.(*ast.ObjectType)
			if !ok {
				return a, fmt.Errorf("%s: options must be a block of strings", name)
			}
			a.Options, err = stringAttrs(name+": options", body.List)
		default:
			return a, fmt.Errorf("%s: unknown key %q (description, options or local)", name, k)
		}
		if err != nil {
			return a, err
		}
	}
	return a, nil
}

// parseSeal reads a `seal "transit" { ... }` block. The address, token,
// key_name and mount_path may come from the environment, as in Vault.
func parseSeal(item *ast.ObjectItem) (*sealtransit.Config, error) {
	typ, body, err := labeledBlock("seal", item)
	if err != nil {
		return nil, err
	}
	if typ != "transit" {
		return nil, fmt.Errorf("seal %q (line %d): Arca supports the \"transit\" seal only; remove the block to use Shamir key shares", typ, item.Pos().Line)
	}
	attrs, err := stringAttrs("seal", body)
	if err != nil {
		return nil, err
	}
	c := &sealtransit.Config{
		Address:   os.Getenv("VAULT_ADDR"),
		Token:     os.Getenv("VAULT_TOKEN"),
		KeyName:   os.Getenv("VAULT_TRANSIT_SEAL_KEY_NAME"),
		MountPath: os.Getenv("VAULT_TRANSIT_SEAL_MOUNT_PATH"),
	}
	for _, k := range slices.Sorted(maps.Keys(attrs)) { // the first error is the same on every start
		v := attrs[k]
		switch k {
		case "address":
			c.Address = v
		case "token":
			c.Token = v
		case "key_name":
			c.KeyName = v
		case "mount_path":
			c.MountPath = v
		case "tls_ca_cert":
			c.TLSCACert = v
		case "tls_client_cert":
			c.TLSClientCert = v
		case "tls_client_key":
			c.TLSClientKey = v
		case "tls_server_name":
			c.TLSServerName = v
		case "tls_skip_verify":
			c.TLSSkipVerify, err = parseBool("seal."+k, v)
		case "disable_renewal":
			c.DisableRenewal, err = parseBool("seal."+k, v)
		case "disabled":
			c.Disabled, err = parseBool("seal."+k, v)
		case "namespace":
			if v != "" {
				err = fmt.Errorf("seal.namespace: Arca has no namespaces; remove it and give mount_path relative to the key service's root")
			}
		default:
			err = fmt.Errorf("seal \"transit\": unknown option %q", k)
		}
		if err != nil {
			return nil, err
		}
	}
	// transit.New checks the rest (required fields, the address, TLS files).
	if _, err := sealtransit.New(*c); err != nil {
		return nil, err
	}
	return c, nil
}

// parseUserLockout reads a `user_lockout "<type>" { lockout_threshold,
// lockout_duration, lockout_counter_reset, disable_lockout }` block, the
// type being all, userpass, approle or ldap.
func parseUserLockout(item *ast.ObjectItem) (string, core.UserLockoutConfig, error) {
	var ul core.UserLockoutConfig
	typ, body, err := labeledBlock("user_lockout", item)
	if err != nil {
		return "", ul, err
	}
	typ = strings.ToLower(typ)
	name := fmt.Sprintf("user_lockout %q", typ)
	if typ != "all" && typ != "userpass" && typ != "approle" && typ != "ldap" {
		return "", ul, fmt.Errorf("%s (line %d): the type must be all, userpass, approle or ldap", name, item.Pos().Line)
	}
	attrs, err := stringAttrs(name, body)
	if err != nil {
		return "", ul, err
	}
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		v := attrs[k]
		switch k {
		case "lockout_threshold":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return "", ul, fmt.Errorf("%s: lockout_threshold %q is not a count of at least 1 (use disable_lockout to turn lockout off)", name, v)
			}
			ul.Threshold = &n
		case "lockout_duration", "lockout_counter_reset":
			d, err := framework.ParseDuration(v)
			if err != nil || d <= 0 {
				return "", ul, fmt.Errorf("%s: %s %q is not a positive duration such as \"15m\"", name, k, v)
			}
			if k == "lockout_duration" {
				ul.Duration = &d
			} else {
				ul.CounterReset = &d
			}
		case "disable_lockout":
			b, err := parseBool(name+": "+k, v)
			if err != nil {
				return "", ul, err
			}
			ul.Disable = &b
		default:
			return "", ul, fmt.Errorf("%s: unknown key %q (lockout_threshold, lockout_duration, lockout_counter_reset, disable_lockout)", name, k)
		}
	}
	return typ, ul, nil
}
