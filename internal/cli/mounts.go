package cli

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/arcasec/arca/api"
)

// mountKind is what differs between `arca secrets` and `arca auth`: the sys
// path of the table, the word for a mount in messages, and where a mount's
// routes live.
type mountKind struct {
	sys    string // "sys/mounts" or "sys/auth"
	noun   string // "secrets engine" or "auth method"
	prefix string // "" or "auth/": the router path of a mount
}

var (
	secretsKind = mountKind{sys: "sys/mounts", noun: "secrets engine"}
	authKind    = mountKind{sys: "sys/auth", noun: "auth method", prefix: "auth/"}
)

// The flags secrets and auth enable and tune share.
var mountConfigFlags = []flagSpec{
	strFlag("description", "", "human-readable description"),
	strFlag("default-lease-ttl", "", "default lease TTL"),
	strFlag("max-lease-ttl", "", "maximum lease TTL"),
	kvFlagSpec("options", "key=value engine option (repeatable)"),
	listFlagSpec("audit-non-hmac-request-keys", "request data key audit devices write in plaintext (repeatable)"),
	listFlagSpec("audit-non-hmac-response-keys", "response data key audit devices write in plaintext (repeatable)"),
}

// The flags auth enable and tune add.
var authConfigFlags = []flagSpec{
	strFlag("listing-visibility", "", `"unauth" to list the method on the login page of the UI, or "hidden"`),
	listFlagSpec("passthrough-request-headers", "request header passed through to the method (repeatable)"),
	listFlagSpec("allowed-response-headers", "response header the method may set (repeatable)"),
	strFlag("token-type", "", "type of the tokens the method issues: service, batch, default-service or default-batch"),
}

// The lockout flags of auth tune, sent as user_lockout_config.
var lockoutFlags = []flagSpec{
	strFlag("user-lockout-threshold", "", "failed logins after which a user is locked out"),
	strFlag("user-lockout-duration", "", "how long a locked-out user stays locked, e.g. 15m"),
	strFlag("user-lockout-counter-reset-duration", "", "how long after the last failure the failure count resets"),
	boolFlag("user-lockout-disable", false, "disable user lockout for this method"),
}

func joinFlags(groups ...[]flagSpec) []flagSpec {
	var out []flagSpec
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

var secretsCommands = []*command{
	{path: []string{"secrets", "list"}, synopsis: "List the enabled secrets engines", noArgs: true,
		flags: []flagSpec{boolFlag("detailed", false, "show mount details")}, run: secretsKind.list},
	{path: []string{"secrets", "enable"}, synopsis: "Enable a secrets engine", args: "TYPE", minArgs: 1, maxArgs: 1,
		help: "Enables a secrets engine of TYPE (kv, transit, database) at -path, by default its type.",
		flags: joinFlags(mountConfigFlags, []flagSpec{
			strFlag("path", "", "mount path (default: the engine type)"),
			strFlag("version", "", "KV version (1 or 2); shorthand for -options=version=N"),
		}), run: secretsKind.enable},
	{path: []string{"secrets", "disable"}, synopsis: "Disable a secrets engine, deleting its data", args: "PATH", minArgs: 1, maxArgs: 1,
		run: secretsKind.disable},
	{path: []string{"secrets", "tune"}, synopsis: "Change a secrets engine's configuration", args: "PATH", minArgs: 1, maxArgs: 1,
		flags: mountConfigFlags, run: secretsKind.tune},
	{path: []string{"secrets", "move"}, synopsis: "Move a secrets engine to another path", args: "SOURCE DESTINATION", minArgs: 2, maxArgs: 2,
		run: secretsKind.move},
}

var authCommands = []*command{
	{path: []string{"auth", "list"}, synopsis: "List the enabled auth methods", noArgs: true,
		flags: []flagSpec{boolFlag("detailed", false, "show TTLs, token type, options and UUID")}, run: authKind.list},
	{path: []string{"auth", "enable"}, synopsis: "Enable an auth method", args: "TYPE", minArgs: 1, maxArgs: 1,
		help: "Enables an auth method of TYPE (userpass, approle, jwt, oidc) at auth/<path>, by default\n" +
			"auth/<type>. Clients then log in at auth/<path>/login (see 'arca login -method').",
		flags: joinFlags(mountConfigFlags, authConfigFlags, []flagSpec{
			strFlag("path", "", "mount path below auth/ (default: the method type)"),
			boolFlag("local", false, "do not replicate the method to other clusters"),
			boolFlag("seal-wrap", false, "seal-wrap the method's storage"),
		}), run: authKind.enable},
	{path: []string{"auth", "disable"}, synopsis: "Disable an auth method, revoking its tokens", args: "PATH", minArgs: 1, maxArgs: 1,
		run: authKind.disable},
	{path: []string{"auth", "tune"}, synopsis: "Change an auth method's configuration", args: "PATH", minArgs: 1, maxArgs: 1,
		flags: joinFlags(mountConfigFlags, authConfigFlags, lockoutFlags), run: authKind.tune},
	{path: []string{"auth", "move"}, synopsis: "Move an auth method to another path", args: "SOURCE DESTINATION", minArgs: 2, maxArgs: 2,
		run: authKind.move},
	{path: []string{"auth", "help"}, synopsis: "Print the help of an auth method", args: "TYPE | PATH", minArgs: 1, maxArgs: 1,
		help: "With the PATH of an enabled method, prints the help the method itself gives\n" +
			"(GET /v1/auth/<path>?help=1). With a TYPE, prints how 'arca login' logs in with it.",
		run: authHelp},
}

// mountPath trims a user's path to the form messages use ("kv", "my/approle").
func mountPath(p string) string { return strings.Trim(p, "/") }

func (k mountKind) list(e *env) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	s, err := c.Read(background(), k.sys, nil)
	if err != nil {
		return fmt.Errorf("Error listing %ss: %w", k.noun, err)
	}
	if e.format != "table" {
		return e.output(s)
	}
	paths := make([]string, 0)
	if s != nil {
		for p := range s.Data {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	header := []string{"Path", "Type", "Accessor", "Description"}
	detailed := e.flag("detailed")
	if detailed {
		if k == authKind {
			header = append(header, "Default TTL", "Max TTL", "Token Type", "Replication")
		}
		header = append(header, "Options", "UUID")
	}
	rows := [][2]string{}
	for _, p := range paths {
		m, _ := s.Data[p].(map[string]any)
		cells := []string{formatValue(m["type"]), formatValue(m["accessor"]), formatValue(m["description"])}
		if detailed {
			if k == authKind {
				conf, _ := m["config"].(map[string]any)
				repl := "replicated"
				if l, _ := m["local"].(bool); l {
					repl = "local"
				}
				cells = append(cells, ttlCell(conf["default_lease_ttl"]), ttlCell(conf["max_lease_ttl"]), orDefault(conf["token_type"], "default-service"), repl)
			}
			cells = append(cells, formatValue(m["options"]), formatValue(m["uuid"]))
		}
		rows = append(rows, [2]string{p, strings.Join(cells, "\t")})
	}
	printColumns(header, rows)
	return nil
}

// ttlCell renders a mount TTL in seconds; 0 is the system default.
func ttlCell(v any) string {
	n, err := strconv.ParseInt(formatValue(v), 10, 64)
	if err != nil || n == 0 {
		return "system"
	}
	return formatDuration(n)
}

func orDefault(v any, def string) string {
	if s, _ := v.(string); s != "" {
		return s
	}
	return def
}

// mountConfig collects the configuration flags given into the body of an
// enable (under "config") or a tune (at the top level).
func mountConfig(e *env) map[string]any {
	conf := map[string]any{}
	for flagName, key := range map[string]string{
		"default-lease-ttl": "default_lease_ttl", "max-lease-ttl": "max_lease_ttl",
		"listing-visibility": "listing_visibility", "token-type": "token_type",
	} {
		if _, ok := e.strs[flagName]; ok && e.str(flagName) != "" {
			conf[key] = e.str(flagName)
		}
	}
	for _, name := range []string{"audit-non-hmac-request-keys", "audit-non-hmac-response-keys", "passthrough-request-headers", "allowed-response-headers"} {
		if _, ok := e.lists[name]; ok && len(e.list(name)) > 0 {
			conf[strings.ReplaceAll(name, "-", "_")] = e.list(name)
		}
	}
	return conf
}

func (k mountKind) enable(e *env) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	typ := e.arg(0)
	path := mountPath(e.str("path"))
	if path == "" {
		path = typ
	}
	options := e.kv("options")
	if _, ok := e.strs["version"]; ok && e.str("version") != "" {
		options["version"] = e.str("version")
	}
	config := mountConfig(e)
	if k == secretsKind {
		// As before: the TTLs are always sent, empty meaning the default.
		config["default_lease_ttl"], config["max_lease_ttl"] = e.str("default-lease-ttl"), e.str("max-lease-ttl")
	}
	body := map[string]any{"type": typ, "description": e.str("description"), "config": config}
	if len(options) > 0 {
		body["options"] = options
	}
	if k == authKind {
		body["local"], body["seal_wrap"] = e.flag("local"), e.flag("seal-wrap")
	}
	s, err := c.Write(background(), k.sys+"/"+path, body)
	if err != nil {
		return fmt.Errorf("Error enabling: %w", err)
	}
	printWarnings(s)
	if k == authKind {
		fmt.Fprintf(stdout, "Success! Enabled %s auth method at: %s/\n", typ, path)
	} else {
		fmt.Fprintf(stdout, "Success! Enabled the %s secrets engine at: %s/\n", typ, path)
	}
	return nil
}

func (k mountKind) disable(e *env) error {
	c, p, err := e.clientAndPath()
	if err != nil {
		return err
	}
	if _, err := c.Delete(background(), k.sys+"/"+p, nil); err != nil {
		return fmt.Errorf("Error disabling %s at %s/: %w", k.noun, p, err)
	}
	fmt.Fprintf(stdout, "Success! Disabled the %s (if it existed) at: %s/\n", k.noun, p)
	return nil
}

func (k mountKind) tune(e *env) error {
	c, p, err := e.clientAndPath()
	if err != nil {
		return err
	}
	body := mountConfig(e)
	if d := e.str("description"); d != "" {
		body["description"] = d
	}
	if opts := e.kv("options"); len(opts) > 0 {
		body["options"] = opts
	}
	if k == authKind {
		lockout := map[string]any{}
		if v := e.str("user-lockout-threshold"); v != "" {
			if _, err := strconv.ParseUint(v, 10, 32); err != nil {
				return usageError("-user-lockout-threshold must be a whole number, got %q", v)
			}
			lockout["lockout_threshold"] = v
		}
		if v := e.str("user-lockout-duration"); v != "" {
			lockout["lockout_duration"] = v
		}
		if v := e.str("user-lockout-counter-reset-duration"); v != "" {
			lockout["lockout_counter_reset_duration"] = v
		}
		if e.set("user-lockout-disable") {
			lockout["lockout_disable"] = e.flag("user-lockout-disable")
		}
		if len(lockout) > 0 {
			body["user_lockout_config"] = lockout
		}
	}
	s, err := c.Write(background(), k.sys+"/"+p+"/tune", body)
	if err != nil {
		return fmt.Errorf("Error tuning %s %s: %w", k.noun, p, err)
	}
	printWarnings(s) // a setting the server does not know is ignored, with a warning
	fmt.Fprintf(stdout, "Success! Tuned the %s at: %s/\n", k.noun, p)
	return nil
}

func (k mountKind) move(e *env) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	from, to := mountPath(e.arg(0)), mountPath(e.arg(1))
	// auth move takes the paths with or without their auth/ prefix.
	from, to = k.prefix+strings.TrimPrefix(from, k.prefix), k.prefix+strings.TrimPrefix(to, k.prefix)
	if _, err := c.Write(background(), "sys/remount", map[string]any{"from": from, "to": to}); err != nil {
		return fmt.Errorf("Error moving %s %s/ to %s/: %w", k.noun, from, to, err)
	}
	fmt.Fprintf(stdout, "Success! Finished moving %s %s/ to %s/\n", k.noun, from, to)
	return nil
}

// authHelp prints an enabled method's own help, or, for a method type
// that is not a mounted path, how `arca login` uses it.
func authHelp(e *env) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	arg := mountPath(strings.TrimPrefix(mountPath(e.arg(0)), "auth/"))
	mounts, err := c.Read(background(), "sys/auth", nil)
	if err != nil {
		// A token that may not list the methods may still read a path's help.
		if perr := printPathHelp(e, c, "auth/"+arg); perr == nil {
			return nil
		}
		return fmt.Errorf("Error listing auth methods: %w", err)
	}
	if mounts != nil {
		if _, ok := mounts.Data[arg+"/"]; ok {
			return printPathHelp(e, c, "auth/"+arg)
		}
	}
	if h, ok := loginHandlers[arg]; ok {
		fmt.Fprintln(stdout, strings.TrimSpace(h.help))
		return nil
	}
	return fmt.Errorf("no auth method is enabled at auth/%s/ and %q is not a method type 'arca login' knows", arg, arg)
}

// printPathHelp prints the help text a backend gives for a path.
func printPathHelp(e *env, c *api.Client, path string) error {
	s, err := c.Read(background(), path, url.Values{"help": {"1"}})
	if err != nil {
		return fmt.Errorf("Error reading help of %s: %w", path, err)
	}
	if s == nil {
		return fmt.Errorf("no help at %s", path)
	}
	if e.format != "table" {
		return e.output(s)
	}
	fmt.Fprintln(stdout, strings.TrimSpace(formatValue(s.Data["help"])))
	return nil
}

// printColumns prints a header and rows whose second cell holds the
// remaining tab-separated columns.
func printColumns(header []string, rows [][2]string) {
	var b strings.Builder
	b.WriteString(strings.Join(header, "\t") + "\n")
	dashes := make([]string, len(header))
	for i, h := range header {
		dashes[i] = strings.Repeat("-", len(h))
	}
	b.WriteString(strings.Join(dashes, "\t") + "\n")
	for _, r := range rows {
		b.WriteString(r[0] + "\t" + r[1] + "\n")
	}
	tw := newTabWriter()
	fmt.Fprint(tw, b.String())
	tw.Flush()
}
