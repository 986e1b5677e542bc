package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"gopkg.in/yaml.v3"

	"github.com/arcasec/arca/api"
)

// The process's streams; tests replace them.
var (
	stdin  io.Reader = os.Stdin
	stdout io.Writer = os.Stdout
	stderr io.Writer = os.Stderr
)

// exitError is an error with the exit code it should produce.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

// clientFlags are the flags every command that talks to a server takes,
// named as in the vault CLI.
type clientFlags struct {
	fs      *flag.FlagSet
	address string
	token   string
	format  string
	field   string
	caCert  string
	skip    bool
}

func newClientFlags(name string) *clientFlags {
	cf := &clientFlags{fs: flag.NewFlagSet(name, flag.ContinueOnError)}
	cf.fs.SetOutput(stderr)
	cf.fs.StringVar(&cf.address, "address", "", "server address (default: $ARCA_ADDR, $VAULT_ADDR or "+api.DefaultAddress+")")
	cf.fs.StringVar(&cf.token, "token", "", "token to use (default: $ARCA_TOKEN, $VAULT_TOKEN or the stored login)")
	cf.fs.StringVar(&cf.format, "format", "", "output format: table, json or yaml (default: $VAULT_FORMAT or table)")
	cf.fs.StringVar(&cf.field, "field", "", "print only this field's value")
	cf.fs.StringVar(&cf.caCert, "ca-cert", "", "PEM file of CAs to trust")
	cf.fs.BoolVar(&cf.skip, "tls-skip-verify", false, "do not verify the server's TLS certificate")
	cf.fs.String("namespace", "", "ignored: Arca has no namespaces")
	return cf
}

// checkFormat settles -format: the flag, else $VAULT_FORMAT, else table.
func (cf *clientFlags) checkFormat() error {
	if cf.format == "" {
		cf.format = os.Getenv("VAULT_FORMAT")
	}
	if cf.format == "" {
		cf.format = "table"
	}
	switch cf.format {
	case "table", "json", "yaml", "raw":
	default:
		return &exitError{code: 1, err: fmt.Errorf("invalid -format %q: use table, json or yaml", cf.format)}
	}
	return nil
}

// parseInterspersed parses flags that may come before, between or after
// the positional arguments, as cobra-based tools (gitleaks) allow; "--" ends
// the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// clientAndPath builds the client and returns the first argument, a mount
// path, trimmed of slashes; an empty one is a usage error.
func (e *env) clientAndPath() (*api.Client, string, error) {
	p := mountPath(e.arg(0))
	if p == "" {
		return nil, "", e.usageError()
	}
	c, err := e.client()
	return c, p, err
}

func (cf *clientFlags) client() (*api.Client, error) {
	conf := api.DefaultConfig()
	if cf.address != "" {
		conf.Address = cf.address
	}
	if cf.token != "" {
		conf.Token = cf.token
	}
	if cf.caCert != "" {
		conf.CACert = cf.caCert
	}
	if cf.skip {
		conf.TLSSkipVerify = true
	}
	return api.NewClient(conf)
}

// runCommand runs fn and turns its error into one line on stderr and an
// exit code.
func runCommand(fn func() error) int {
	err := fn()
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if !errors.Is(ee.err, flag.ErrHelp) && ee.err.Error() != "" {
			printError(ee.err)
		}
		return ee.code
	}
	printError(err)
	return 2
}

func printError(err error) {
	msg := oneLine(err.Error())
	if !strings.HasPrefix(msg, "Error ") {
		msg = "Error: " + msg
	}
	fmt.Fprintln(stderr, msg)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func usageError(format string, args ...any) error {
	return &exitError{code: 1, err: fmt.Errorf(format, args...)}
}

// output prints a response in the chosen format. For table output, the
// data is printed as Key/Value rows.
func (cf *clientFlags) output(s *api.Secret) error {
	if s == nil {
		return nil
	}
	if cf.field != "" {
		return printField(s, cf.field, cf.format)
	}
	if s.WrapInfo != nil && cf.format == "table" {
		// The vault CLI prints these keys with a trailing colon.
		rows := wrapRows(s.WrapInfo)
		for i := range rows {
			rows[i][0] += ":"
		}
		table(rows)
		return nil
	}
	if done, err := printStructured(cf.format, s); done {
		return err
	}
	printSecretTable(s)
	return nil
}

// printField prints one field of the data (or of the auth block): raw for
// table output, JSON-encoded with -format=json, as vault does.
func printField(s *api.Secret, field, format string) error {
	if s.Data != nil {
		if v, ok := s.Data[field]; ok {
			return printValue(v, format)
		}
	}
	if s.Auth != nil {
		for k, v := range authRows(s.Auth) {
			if k == field {
				return printValue(v, format)
			}
		}
	}
	if s.WrapInfo != nil {
		for _, r := range wrapRows(s.WrapInfo) {
			if r[0] == field {
				return printValue(r[1], format)
			}
		}
	}
	return fmt.Errorf("field %q not present in the response", field)
}

func printValue(v any, format string) error {
	if done, err := printStructured(format, v); done {
		return err
	}
	fmt.Fprintln(stdout, formatValue(v))
	return nil
}

// printStructured prints v as JSON or YAML when the format asks for one,
// and reports whether it did; the caller prints its table otherwise.
func printStructured(format string, v any) (bool, error) {
	switch format {
	case "json":
		return true, printJSON(v)
	case "yaml":
		return true, printYAML(v)
	}
	return false, nil
}

func printJSON(v any) error {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printYAML(v any) error {
	// Round-trip through JSON so field names match the JSON output.
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var generic any
	if err := json.Unmarshal(raw, &generic); err != nil {
		return err
	}
	out, err := yaml.Marshal(generic)
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}

// formatValue renders a value as the vault CLI's tables do.
func formatValue(v any) string {
	switch t := v.(type) {
	case nil:
		return "<nil>"
	case string:
		return t
	case json.Number:
		return t.String()
	case []any:
		parts := make([]string, len(t))
		for i, e := range t {
			parts[i] = formatValue(e)
		}
		return "[" + strings.Join(parts, " ") + "]"
	case []string:
		return "[" + strings.Join(t, " ") + "]"
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ":" + formatValue(t[k])
		}
		return "map[" + strings.Join(parts, " ") + "]"
	}
	return fmt.Sprint(v)
}

// table prints Key/Value rows.
func table(rows [][2]string) {
	tw := tabwriter.NewWriter(stdout, 0, 4, 4, ' ', 0)
	fmt.Fprintln(tw, "Key\tValue")
	fmt.Fprintln(tw, "---\t-----")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
	}
	tw.Flush()
}

func mapRows(m map[string]any) [][2]string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	rows := make([][2]string, 0, len(keys))
	for _, k := range keys {
		rows = append(rows, [2]string{k, formatValue(m[k])})
	}
	return rows
}

// authKeys are the rows of an auth block, in the vault CLI's order;
// token_meta_* rows follow them.
var authKeys = []string{"token", "token_accessor", "token_duration", "token_renewable", "token_policies", "identity_policies", "policies"}

func authRows(a *api.SecretAuth) map[string]any {
	rows := map[string]any{
		"token":             a.ClientToken,
		"token_accessor":    a.Accessor,
		"token_duration":    formatDuration(a.LeaseDuration),
		"token_renewable":   a.Renewable,
		"token_policies":    nonNil(a.TokenPolicies),
		"identity_policies": nonNil(a.IdentityPolicies),
		"policies":          nonNil(a.Policies),
	}
	for k, v := range a.Metadata {
		rows["token_meta_"+k] = v
	}
	return rows
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// authTable renders an auth block as the vault CLI does: policy lists
// quoted (["default" "app"]), metadata as sorted token_meta_* rows.
func authTable(a *api.SecretAuth) [][2]string {
	ar := authRows(a)
	var rows [][2]string
	for _, k := range authKeys {
		v := ar[k]
		if l, ok := v.([]string); ok {
			rows = append(rows, [2]string{k, fmt.Sprintf("%q", l)})
			continue
		}
		rows = append(rows, [2]string{k, formatValue(v)})
	}
	meta := make([]string, 0, len(a.Metadata))
	for k := range a.Metadata {
		meta = append(meta, k)
	}
	sort.Strings(meta)
	for _, k := range meta {
		rows = append(rows, [2]string{"token_meta_" + k, a.Metadata[k]})
	}
	return rows
}

// wrapRows describe a wrapping token, named as -field takes them.
func wrapRows(w *api.SecretWrapInfo) [][2]string {
	rows := [][2]string{
		{"wrapping_token", w.Token},
		{"wrapping_accessor", w.Accessor},
		{"wrapping_token_ttl", formatDuration(w.TTL)},
		{"wrapping_token_creation_time", w.CreationTime},
		{"wrapping_token_creation_path", w.CreationPath},
	}
	if w.WrappedAccessor != "" {
		rows = append(rows, [2]string{"wrapped_accessor", w.WrappedAccessor})
	}
	return rows
}

// formatDuration renders seconds like the vault CLI: 768h, 1h30m, ∞.
func formatDuration(secs int64) string {
	if secs == 0 {
		return "∞"
	}
	d := fmt.Sprint(secs) + "s"
	if dur, err := parseSeconds(secs); err == nil {
		d = dur
	}
	return d
}

func parseSeconds(secs int64) (string, error) {
	h, m, s := secs/3600, (secs%3600)/60, secs%60
	var b strings.Builder
	if h > 0 {
		fmt.Fprintf(&b, "%dh", h)
	}
	if m > 0 {
		fmt.Fprintf(&b, "%dm", m)
	}
	if s > 0 || b.Len() == 0 {
		fmt.Fprintf(&b, "%ds", s)
	}
	return b.String(), nil
}

func printSecretTable(s *api.Secret) {
	var rows [][2]string
	if s.Auth != nil {
		rows = append(rows, authTable(s.Auth)...)
	}
	if s.LeaseDuration > 0 {
		if s.LeaseID != "" {
			rows = append(rows, [2]string{"lease_id", s.LeaseID}, [2]string{"lease_duration", formatDuration(s.LeaseDuration)}, [2]string{"lease_renewable", fmt.Sprint(s.Renewable)})
		} else {
			rows = append(rows, [2]string{"refresh_interval", formatDuration(s.LeaseDuration)})
		}
	}
	rows = append(rows, mapRows(s.Data)...)
	printWarnings(s)
	if len(rows) > 0 {
		table(rows)
	}
}

// printWarnings prints the warnings of a response on stderr.
func printWarnings(s *api.Secret) {
	if s == nil {
		return
	}
	for _, w := range s.Warnings {
		fmt.Fprintln(stderr, "WARNING! "+w)
	}
}

// printList prints the keys of a list response.
func (cf *clientFlags) printList(s *api.Secret) error {
	switch cf.format {
	case "json":
		keys := []any{}
		if s != nil {
			if k, ok := s.Data["keys"].([]any); ok {
				keys = k
			}
		}
		return printJSON(keys)
	case "yaml":
		return printYAML(s.Data["keys"])
	}
	keys, _ := s.Data["keys"].([]any)
	fmt.Fprintln(stdout, "Keys")
	fmt.Fprintln(stdout, "----")
	for _, k := range keys {
		fmt.Fprintln(stdout, formatValue(k))
	}
	return nil
}

// parseKVArgs reads k=v, k=@file and k=- arguments, and a lone "-" for a
// JSON object on stdin.
func parseKVArgs(args []string) (map[string]any, error) {
	data := map[string]any{}
	for _, a := range args {
		if a == "-" {
			dec := json.NewDecoder(bufio.NewReader(stdin))
			dec.UseNumber()
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				return nil, fmt.Errorf("reading a JSON object from stdin: %w", err)
			}
			for k, v := range m {
				data[k] = v
			}
			continue
		}
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, usageError("invalid key/value pair %q: use key=value, key=@file or key=-", a)
		}
		switch {
		case v == "-":
			b, err := io.ReadAll(stdin)
			if err != nil {
				return nil, err
			}
			v = strings.TrimSuffix(string(b), "\n")
		case strings.HasPrefix(v, "@"):
			b, err := os.ReadFile(v[1:])
			if err != nil {
				return nil, fmt.Errorf("reading the value of %q: %w", k, err)
			}
			v = string(b)
		}
		data[k] = v
	}
	return data, nil
}

func background() context.Context { return context.Background() }

// errorf formats a failure of an operation on a path the way the vault
// CLI does: "Error reading secret/x: permission denied".
func opError(verb, path string, err error) error {
	return fmt.Errorf("Error %s %s: %w", verb, path, err)
}
