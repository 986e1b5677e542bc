// Package cli implements Arca's command line. Commands that talk to a server
// do so only through the public client in package api; their names, flags and
// environment variables mirror the vault CLI's.
//
// Every command is one entry of a single table (commandTable): its name path
// ({"secrets", "enable"}), a synopsis, help text, its flags and a run
// function. Dispatch, flag parsing, argument-count checks, `-help` output and
// the list of valid subcommands all come from that table.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// command is one (sub)command of the table.
type command struct {
	path     []string // e.g. {"secrets", "enable"}
	synopsis string   // one line, shown in the parent's list
	args     string   // the positional part of the usage line, e.g. "TYPE"
	help     string   // paragraphs shown by -help
	flags    []flagSpec
	// minArgs and maxArgs bound the positional arguments (maxArgs 0: no
	// bound; noArgs: none); outside them the command fails with its usage
	// line.
	minArgs, maxArgs int
	noArgs           bool
	// run does the work; it gets the parsed flags and arguments.
	run func(e *env) error
	// raw, for the commands that parse their own arguments (server, scan,
	// file), gets the arguments after the command name.
	raw func(args []string) int
}

// flagSpec declares one flag. def is a string, bool or int default, or one
// of the list kinds (listFlag, kvFlag) for repeatable flags.
type flagSpec struct {
	name    string
	usage   string
	def     any
	aliases []string
	// env names environment variables whose value, when set, is a string
	// flag's default (the first set one wins).
	env []string
}

// listFlag and kvFlag mark repeatable flags: -policy=a -policy=b (also
// comma-separated), and -options=k=v.
type (
	listFlag struct{}
	kvFlag   struct{}
)

func (s flagSpec) withAliases(a ...string) flagSpec { s.aliases = a; return s }

func strFlag(name, def, usage string) flagSpec { return flagSpec{name: name, def: def, usage: usage} }
func boolFlag(name string, def bool, usage string) flagSpec {
	return flagSpec{name: name, def: def, usage: usage}
}
func intFlag(name string, def int, usage string) flagSpec {
	return flagSpec{name: name, def: def, usage: usage}
}
func listFlagSpec(name, usage string) flagSpec {
	return flagSpec{name: name, def: listFlag{}, usage: usage}
}
func kvFlagSpec(name, usage string) flagSpec {
	return flagSpec{name: name, def: kvFlag{}, usage: usage}
}

// wrapTTLSpec is -wrap-ttl, for commands whose one response can be wrapped;
// $ARCA_WRAP_TTL or $VAULT_WRAP_TTL is its default.
var wrapTTLSpec = flagSpec{name: "wrap-ttl", def: "", env: []string{"ARCA_WRAP_TTL", "VAULT_WRAP_TTL"},
	usage: "wrap the response in a single-use token valid this long (e.g. 5m); unwrap it with 'arca unwrap'"}

// env is what a command's run function gets: the client flags (address,
// token, format, field), its own flags by name, and the positional
// arguments.
type env struct {
	*clientFlags
	cmd   *command
	args  []string
	strs  map[string]*string
	bools map[string]*bool
	ints  map[string]*int
	lists map[string]*stringList
	kvs   map[string]kvList
	given map[string]bool
}

// str, flag, num, list and kv return a declared flag's value by name; a
// name the command did not declare is a programming error.
func (e *env) str(name string) string           { return *declared(e, e.strs, name) }
func (e *env) flag(name string) bool            { return *declared(e, e.bools, name) }
func (e *env) num(name string) int              { return *declared(e, e.ints, name) }
func (e *env) list(name string) []string        { return []string(*declared(e, e.lists, name)) }
func (e *env) kv(name string) map[string]string { return declared(e, e.kvs, name) }

func declared[V any](e *env, m map[string]V, name string) V {
	v, ok := m[name]
	if !ok {
		panic(fmt.Sprintf("cli: %s reads flag -%s, which it does not declare with that kind", e.cmd.name(), name))
	}
	return v
}

// set reports whether the flag (or one of its aliases) was on the command line.
func (e *env) set(name string) bool { return e.given[name] }

// arg returns the i-th positional argument, or "".
func (e *env) arg(i int) string {
	if i < len(e.args) {
		return e.args[i]
	}
	return ""
}

// usageError is the command's usage line as an error (exit 1).
func (e *env) usageError() error {
	return usageError("usage: %s", e.cmd.usageLine())
}

func (c *command) name() string { return strings.Join(c.path, " ") }

func (c *command) usageLine() string {
	line := "arca " + c.name()
	if len(c.flags) > 0 || c.run != nil {
		line += " [flags]"
	}
	if c.args != "" {
		line += " " + c.args
	}
	return line
}

// commandTable lists every command. Each file adds its own slice.
func commandTable() []*command {
	var all []*command
	for _, group := range [][]*command{
		topCommands, genericCommands, kvCommands, secretsCommands, authCommands,
		tokenCommands, loginCommands, leaseCommands, auditCommands, operatorCommands, policyCommands,
		runCommands,
	} {
		all = append(all, group...)
	}
	return all
}

var topCommands = []*command{
	{path: []string{"server"}, synopsis: "Start an Arca server", raw: runServer},
	{path: []string{"scan"}, synopsis: "Find leaked secrets in files, git history, staged changes and logs", raw: runScan},
	{path: []string{"file"}, synopsis: "Encrypt and decrypt SOPS-format files", raw: runFile},
	agentCommand,
	{path: []string{"kv"}, synopsis: "Read and write KV secrets (v1 and v2)"},
	{path: []string{"kv", "metadata"}, synopsis: "Read and write the metadata of KV v2 secrets"},
	{path: []string{"secrets"}, synopsis: "Enable, tune, move and disable secrets engines"},
	{path: []string{"auth"}, synopsis: "Enable, tune, move and disable auth methods"},
	{path: []string{"token"}, synopsis: "Create, look up, renew and revoke tokens"},
	{path: []string{"lease"}, synopsis: "Look up, renew and revoke leases"},
	{path: []string{"audit"}, synopsis: "Enable, list and disable audit devices; see who read a secret"},
	{path: []string{"operator"}, synopsis: "Initialize, unseal, seal and rotate the server; generate a root token; migrate storage"},
	{path: []string{"policy"}, synopsis: "Manage ACL policies"},
}

// Run executes the command named by args and returns the exit code.
func Run(args []string) int {
	if len(args) == 0 || isHelp(args[0]) || args[0] == "help" {
		if len(args) > 1 && args[0] == "help" {
			return Run(append(append([]string{}, args[1:]...), "-help"))
		}
		printChildren(stderr, nil, "Usage: arca <command> [args]\n\nCommands:\n")
		if len(args) == 0 {
			return 1
		}
		return 0
	}
	if args[0] == "version" || args[0] == "-version" || args[0] == "--version" {
		fmt.Fprintln(stdout, "Arca "+Version)
		return 0
	}
	table := commandTable()
	var cmd *command
	depth := 0
	for _, c := range table {
		if len(c.path) > depth && len(c.path) <= len(args) && equalPath(c.path, args[:len(c.path)]) {
			cmd, depth = c, len(c.path)
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "arca: unknown command %q; run 'arca -help' for the list\n", args[0])
		return 1
	}
	rest := args[depth:]
	switch {
	case cmd.raw != nil:
		return cmd.raw(rest)
	case cmd.run != nil:
		return cmd.execute(rest)
	}
	// A group: its subcommands are listed.
	if len(rest) > 0 && !isHelp(rest[0]) {
		fmt.Fprintf(stderr, "Error: unknown %s subcommand %q; valid subcommands: %s\n",
			cmd.name(), rest[0], strings.Join(childNames(cmd.path), ", "))
		return 1
	}
	printChildren(stderr, cmd.path, fmt.Sprintf("Usage: arca %s <subcommand> [flags] [args]\n\n%s\n\nSubcommands:\n", cmd.name(), cmd.synopsis))
	if len(rest) == 0 {
		return 1
	}
	return 0
}

func isHelp(a string) bool { return a == "-h" || a == "-help" || a == "--help" }

func equalPath(a, b []string) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// children returns the commands one level below parent.
func children(parent []string) []*command {
	var out []*command
	for _, c := range commandTable() {
		if len(c.path) == len(parent)+1 && equalPath(parent, c.path[:len(parent)]) {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path[len(parent)] < out[j].path[len(parent)] })
	return out
}

func childNames(parent []string) []string {
	var names []string
	for _, c := range children(parent) {
		names = append(names, c.path[len(parent)])
	}
	return names
}

func printChildren(w io.Writer, parent []string, header string) {
	var b strings.Builder
	b.WriteString(header)
	for _, c := range children(parent) {
		fmt.Fprintf(&b, "    %-14s %s\n", c.path[len(parent)], c.synopsis)
	}
	fmt.Fprint(w, b.String())
}

// execute parses the flags and arguments of a table command and runs it.
func (c *command) execute(args []string) int {
	cf := newClientFlags(c.name())
	e := &env{clientFlags: cf, cmd: c, strs: map[string]*string{}, bools: map[string]*bool{},
		ints: map[string]*int{}, lists: map[string]*stringList{}, kvs: map[string]kvList{}, given: map[string]bool{}}
	aliasOf := map[string]string{}
	for _, s := range c.flags {
		names := append([]string{s.name}, s.aliases...)
		for i, n := range names {
			aliasOf[n] = s.name
			usage := s.usage
			if i > 0 {
				usage = "alias of -" + s.name
			}
			switch d := s.def.(type) {
			case string:
				if i == 0 {
					for _, ev := range s.env {
						if v := os.Getenv(ev); v != "" {
							d = v
							break
						}
					}
					e.strs[s.name] = cf.fs.String(n, d, usage)
				} else {
					cf.fs.StringVar(e.strs[s.name], n, d, usage)
				}
			case bool:
				if i == 0 {
					e.bools[s.name] = cf.fs.Bool(n, d, usage)
				} else {
					cf.fs.BoolVar(e.bools[s.name], n, d, usage)
				}
			case int:
				if i == 0 {
					e.ints[s.name] = cf.fs.Int(n, d, usage)
				} else {
					cf.fs.IntVar(e.ints[s.name], n, d, usage)
				}
			case listFlag:
				if i == 0 {
					e.lists[s.name] = &stringList{}
				}
				cf.fs.Var(e.lists[s.name], n, usage)
			case kvFlag:
				if i == 0 {
					e.kvs[s.name] = kvList{}
				}
				cf.fs.Var(e.kvs[s.name], n, usage)
			default:
				panic("cli: flag " + s.name + " of " + c.name() + " has an unknown kind")
			}
		}
	}
	cf.fs.Usage = func() { c.printHelp(cf.fs) }
	return runCommand(func() error {
		positional, err := parseInterspersed(cf.fs, args)
		if errors.Is(err, flag.ErrHelp) {
			return &exitError{code: 0, err: err}
		}
		if err != nil {
			return &exitError{code: 1, err: err}
		}
		if err := cf.checkFormat(); err != nil {
			return err
		}
		e.args = positional
		cf.fs.Visit(func(f *flag.Flag) {
			if n, ok := aliasOf[f.Name]; ok {
				e.given[n] = true
			}
		})
		if len(positional) < c.minArgs || (c.maxArgs > 0 && len(positional) > c.maxArgs) || (c.noArgs && len(positional) > 0) {
			return e.usageError()
		}
		return c.run(e)
	})
}

// printHelp prints the generated help of a command: usage line, text, its
// own flags, then the flags every server command takes.
func (c *command) printHelp(fs *flag.FlagSet) {
	own := map[string]bool{}
	kind := map[string]any{}
	for _, s := range c.flags {
		for _, n := range append([]string{s.name}, s.aliases...) {
			own[n], kind[n] = true, s.def
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: %s\n\n", c.usageLine())
	text := c.help
	if text == "" {
		text = c.synopsis + "."
	}
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		b.WriteString(strings.TrimRight("  "+line, " ") + "\n")
	}
	section := func(title string, mine bool) {
		first := true
		fs.VisitAll(func(f *flag.Flag) {
			if own[f.Name] != mine {
				return
			}
			if first {
				fmt.Fprintf(&b, "\n%s:\n", title)
				first = false
			}
			name, usage := flag.UnquoteUsage(f)
			switch kind[f.Name].(type) {
			case kvFlag:
				name = "key=value"
			case listFlag:
				name = "string"
			}
			fmt.Fprintf(&b, "\n  -%s", f.Name)
			if name != "" {
				fmt.Fprintf(&b, "=<%s>", name)
			}
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "[]" {
				fmt.Fprintf(&b, " (default: %s)", f.DefValue)
			}
			fmt.Fprintf(&b, "\n      %s\n", usage)
		})
	}
	section("Command options", true)
	section("HTTP and output options", false)
	fmt.Fprint(stderr, b.String())
}
