package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"

	"golang.org/x/term"

	"github.com/arcasec/arca/api"
	"github.com/arcasec/arca/internal/agent/child"
	"github.com/arcasec/arca/internal/agent/template"
	"github.com/arcasec/arca/internal/agent/watch"
	"github.com/arcasec/arca/internal/mask"
)

var runCommands = []*command{
	{path: []string{"run"}, synopsis: "Run a command with secrets in its environment, masked in its output",
		args: "-- COMMAND [ARGS...]", minArgs: 1,
		help: `Reads secrets, puts them in the environment of COMMAND and runs it (directly, not
through a shell); its exit code is arca's.

  -secret DB_PASSWORD=secret/app/db#password   one variable from one field
  -secret-path secret/app/api                  every field, named upper-cased
  -dotenv secrets.env.tmpl                     KEY=value lines from an agent template

Paths are KV paths as 'arca kv get' takes them (v1 or v2). With -mask (the
default when standard output is not a terminal) every secret value, and its
base64, URL- and JSON-encoded forms, is replaced by ***** in the command's
standard output and error. Values shorter than 4 bytes are not masked.
Leases a -dotenv template took (database/creds/...) are revoked when the
command ends, unless -revoke=false.
Put the command after --, so its own flags are not read as arca's.`,
		flags: []flagSpec{
			listFlagSpec("secret", "VAR=path#field: set VAR to one field of a KV secret (repeatable)"),
			listFlagSpec("secret-path", "a KV path whose every field becomes a variable, upper-cased (repeatable)"),
			strFlag("dotenv", "", "a template (the agent's template language) rendering KEY=value lines"),
			boolFlag("mask", false, "mask secret values in the command's output (default: when stdout is not a terminal)"),
			boolFlag("pristine", false, "do not inherit arca's environment"),
			boolFlag("revoke", true, "revoke the leases of -dotenv's dynamic secrets when the command ends"),
		},
		run: runRun},
}

// runVar is one variable for the child, with where it came from (for
// conflict errors: never the value).
type runVar struct {
	name, value, source string
}

// runVars collects variables and refuses a name set twice.
type runVars struct {
	list   []runVar
	byName map[string]int
}

func (v *runVars) add(name, value, source string) error {
	if name == "" || strings.ContainsAny(name, "=\x00") {
		return usageError("invalid variable name %q from %s", name, source)
	}
	if v.byName == nil {
		v.byName = map[string]int{}
	}
	if i, ok := v.byName[name]; ok {
		return usageError("variable %s is set twice: by %s and by %s", name, v.list[i].source, source)
	}
	v.byName[name] = len(v.list)
	v.list = append(v.list, runVar{name, value, source})
	return nil
}

func (v *runVars) env() []string {
	out := make([]string, len(v.list))
	for i, r := range v.list {
		out[i] = r.name + "=" + r.value
	}
	return out
}

func (v *runVars) values() []string {
	out := make([]string, len(v.list))
	for i, r := range v.list {
		out[i] = r.value
	}
	return out
}

func runRun(e *env) error {
	if len(e.list("secret")) == 0 && len(e.list("secret-path")) == 0 && e.str("dotenv") == "" {
		return usageError("arca run needs -secret, -secret-path or -dotenv")
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	var vars runVars
	kv := kvReader{c: c, cache: map[string]map[string]any{}}
	for _, spec := range e.list("secret") {
		name, ref, ok := strings.Cut(spec, "=")
		path, field, hasField := strings.Cut(ref, "#")
		if !ok || name == "" || !hasField || path == "" || field == "" {
			return usageError("invalid -secret %q: use VAR=path#field", spec)
		}
		data, err := kv.read(path)
		if err != nil {
			return err
		}
		val, ok := data[field]
		if !ok {
			return fmt.Errorf("-secret %s: the secret at %s has no field %q", name, path, field)
		}
		if err := vars.add(name, envText(val), "-secret "+spec); err != nil {
			return err
		}
	}
	for _, path := range e.list("secret-path") {
		data, err := kv.read(path)
		if err != nil {
			return err
		}
		fields := make([]string, 0, len(data))
		for f := range data {
			fields = append(fields, f)
		}
		sort.Strings(fields)
		for _, f := range fields {
			if err := vars.add(envName(f), envText(data[f]), fmt.Sprintf("-secret-path %s (field %q)", path, f)); err != nil {
				return err
			}
		}
	}
	if file := e.str("dotenv"); file != "" {
		leases, err := renderDotenv(c, file, &vars)
		if len(leases) > 0 && e.flag("revoke") {
			defer revokeLeases(c, leases)
		}
		if err != nil {
			return err
		}
	}
	var base []string
	if !e.flag("pristine") {
		base = os.Environ()
	}
	var set *mask.Set
	if maskOutput(e.set("mask"), e.flag("mask")) {
		set = mask.New(vars.values())
	}
	return runChildMasked(e.args, base, vars.env(), set)
}

// kvReader reads KV secrets (v1 or v2, found by the mount preflight), each
// path once.
type kvReader struct {
	c     *api.Client
	cache map[string]map[string]any
}

func (r kvReader) read(path string) (map[string]any, error) {
	if d, ok := r.cache[path]; ok {
		return d, nil
	}
	t, err := resolveKV(r.c, "", path)
	if err != nil {
		return nil, err
	}
	s, err := r.c.Read(background(), t.path("data"), nil)
	if err != nil {
		return nil, opError("reading", t.path("data"), err)
	}
	if s == nil || s.Data == nil {
		return nil, notFound(t.path("data"))
	}
	data := s.Data
	if t.version == 2 {
		d, ok := s.Data["data"].(map[string]any)
		if !ok {
			return nil, notFound(t.path("data"))
		}
		data = d
	}
	r.cache[path] = data
	return data, nil
}

// envName turns a field name into a variable name: upper case, and every
// character other than A-Z, 0-9 and _ becomes _.
func envName(field string) string {
	b := []byte(strings.ToUpper(field))
	for i, ch := range b {
		if !(ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

// envText is a field's value as an environment variable holds it: strings
// as they are, other values as JSON.
func envText(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case json.Number:
		return t.String()
	case nil:
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// renderDotenv renders a template file through a one-shot watcher and adds
// its KEY=value lines.
// renderDotenv renders file and adds its variables to vars. It returns the
// leases the render took, even when it fails after taking some.
func renderDotenv(c *api.Client, file string, vars *runVars) (leases []string, err error) {
	text, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading -dotenv template: %w", err)
	}
	t, err := template.Parse(file, string(text), template.Options{ErrorOnMissingKey: true})
	if err != nil {
		return nil, err
	}
	src := watch.New(c, watch.Options{Retries: 2, Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	out, err := t.Execute(src)
	leases = src.Leases()
	if err != nil {
		return leases, fmt.Errorf("rendering %s: %w", file, err)
	}
	entries, err := parseDotenv(string(out))
	if err != nil {
		return leases, fmt.Errorf("the output of %s: %w", file, err)
	}
	for _, kv := range entries {
		if err := vars.add(kv.name, kv.value, fmt.Sprintf("-dotenv %s (line %d)", file, kv.line)); err != nil {
			return leases, err
		}
	}
	return leases, nil
}

// revokeLeases revokes what a run took, so a CI job's credentials end with
// it; a failure is reported, not fatal (the leases still expire).
func revokeLeases(c *api.Client, leases []string) {
	for _, id := range leases {
		if _, err := c.Write(background(), "sys/leases/revoke", map[string]any{"lease_id": id}); err != nil {
			fmt.Fprintf(stderr, "Warning: revoking lease %s: %v\n", id, err)
		}
	}
}

type dotenvEntry struct {
	name, value string
	line        int
}

// parseDotenv reads KEY=value lines: blank lines and # comments are
// skipped, an "export " prefix is allowed; a value may be unquoted (trimmed,
// ending at " #"), single-quoted (literal) or double-quoted (with \n, \t,
// \r, \", \\ and \$ escapes, and spanning lines). Nothing is expanded: a $
// in a secret stays a $.
func parseDotenv(text string) ([]dotenvEntry, error) {
	var out []dotenvEntry
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		line := strings.TrimSpace(strings.TrimSuffix(lines[i], "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		key, rest, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" || strings.ContainsAny(key, " \t\"'") {
			return nil, fmt.Errorf("line %d is not KEY=value", lineNo)
		}
		rest = strings.TrimLeft(rest, " \t")
		var val string
		switch {
		case strings.HasPrefix(rest, "'"):
			end := strings.IndexByte(rest[1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("line %d: unterminated single-quoted value of %s", lineNo, key)
			}
			val = rest[1 : 1+end]
			if err := onlyComment(rest[2+end:], lineNo); err != nil {
				return nil, err
			}
		case strings.HasPrefix(rest, `"`):
			var b strings.Builder
			s := rest[1:]
			closed := false
			for !closed {
				j := 0
				for ; j < len(s); j++ {
					ch := s[j]
					if ch == '"' {
						closed = true
						break
					}
					if ch == '\\' && j+1 < len(s) {
						j++
						switch s[j] {
						case 'n':
							b.WriteByte('\n')
						case 't':
							b.WriteByte('\t')
						case 'r':
							b.WriteByte('\r')
						default: // \" \\ \$ and any other: the character itself
							b.WriteByte(s[j])
						}
						continue
					}
					b.WriteByte(ch)
				}
				if closed {
					if err := onlyComment(s[j+1:], lineNo); err != nil {
						return nil, err
					}
					break
				}
				// The value goes on to the next line.
				i++
				if i >= len(lines) {
					return nil, fmt.Errorf("line %d: unterminated double-quoted value of %s", lineNo, key)
				}
				b.WriteByte('\n')
				s = strings.TrimSuffix(lines[i], "\r")
			}
			val = b.String()
		default:
			val = rest
			if k := strings.Index(val, " #"); k >= 0 {
				val = val[:k]
			}
			val = strings.TrimSpace(val)
		}
		out = append(out, dotenvEntry{key, val, lineNo})
	}
	return out, nil
}

func onlyComment(rest string, line int) error {
	rest = strings.TrimSpace(rest)
	if rest != "" && !strings.HasPrefix(rest, "#") {
		return fmt.Errorf("line %d: unexpected text after the quoted value", line)
	}
	return nil
}

// maskOutput settles -mask: as given, else on when standard output is not
// a terminal.
func maskOutput(given, value bool) bool {
	if given {
		return value
	}
	if f, ok := stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return false
	}
	return true
}

// runChildMasked is runChild with the child's stdout and stderr passed
// through set's masking writers (when set hides anything).
func runChildMasked(argv, base, env []string, set *mask.Set) error {
	out, errOut := stdout, stderr
	var closers []io.Closer
	if set != nil && !set.Empty() {
		mo, me := set.Writer(stdout), set.Writer(stderr)
		out, errOut = mo, me
		closers = append(closers, mo, me)
	}
	envs := make(chan []string, 1)
	envs <- env
	code, err := child.Run(context.Background(), child.Options{
		Argv: argv, BaseEnv: base, Stdin: stdin, Stdout: out, Stderr: errOut,
	}, envs)
	for _, c := range closers {
		c.Close()
	}
	if err != nil {
		return &exitError{code: code, err: err}
	}
	if code != 0 {
		return &exitError{code: code, err: errors.New("")}
	}
	return nil
}
