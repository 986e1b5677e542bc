// Package template renders agent templates in the language Vault Agent users
// already write (consul-template's): Go text/template with functions such as
// secret, secrets, env, file, base64Encode, toJSON, parseJSON, timestamp and
// sprig's helpers under the "sprig_" prefix. A template asks its Source for
// secrets; it never talks to a server itself.
//
// Errors name the template and the line ("app.tmpl:3: ...") and never carry
// a secret value: the messages of the functions written here say what went
// wrong without echoing their argument, the engine's own messages that would
// print a value have it cut out, other functions' messages are withheld, and
// every string a render read from a secret, a file or the environment is
// replaced by ***** in what is left.
package template

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"text/template"
	"text/template/parse"

	"github.com/arcasec/arca/api"
)

// Source supplies the data templates read. The agent's watcher implements
// it: each call is answered from its cache or fetched once, and then kept
// fresh.
type Source interface {
	// Secret is the template function secret: a read of path, or, when
	// data is not empty, a write of data to path (pki/issue/..., a
	// database/creds read has none).
	Secret(path string, data map[string]any) (*api.Secret, error)
	// List is the template function secrets: the keys under path.
	List(path string) ([]string, error)
}

// Options tune one template.
type Options struct {
	LeftDelim, RightDelim string // "" means {{ and }}
	// ErrorOnMissingKey makes a missing map key an error rather than
	// "<no value>".
	ErrorOnMissingKey bool
}

// MaxOutput bounds what one render may produce; a template that writes more
// fails rather than filling memory.
const MaxOutput = 64 << 20

// Template is a parsed template. It is safe for concurrent use: each Execute
// works on its own copy of the function table.
type Template struct {
	name string
	opts Options
	tmpl *template.Template
}

// Parse parses text. name (the source file, or a stanza's description)
// appears in errors with the line: "agent.tmpl:3: function \"secert\" not defined".
// A function of consul-template that Arca does not serve (Consul's key,
// service and their kin, writeToFile, executeTemplate, plugin, sockaddr,
// Nomad's) is refused here, with its line and the reason.
func Parse(name, text string, opts Options) (*Template, error) {
	t := template.New(name).Delims(opts.LeftDelim, opts.RightDelim).Funcs(baseFuncs())
	t.Option(missingKeyOption(opts))
	if _, err := t.Parse(text); err != nil {
		return nil, errors.New(strings.TrimPrefix(err.Error(), "template: "))
	}
	for _, tt := range t.Templates() {
		if tt.Tree == nil || tt.Tree.Root == nil {
			continue
		}
		if err := checkUnsupported(tt.Tree, tt.Tree.Root); err != nil {
			return nil, err
		}
	}
	return &Template{name: name, opts: opts, tmpl: t}, nil
}

func missingKeyOption(opts Options) string {
	if opts.ErrorOnMissingKey {
		return "missingkey=error"
	}
	// consul-template's choice: a missing key of a map of interfaces (every
	// secret's Data) renders "<no value>"; of a map of strings, "".
	return "missingkey=zero"
}

// checkUnsupported walks a parse tree for calls of the functions Arca
// declines, so a template using one fails at parse time with its line.
func checkUnsupported(tree *parse.Tree, n parse.Node) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := checkUnsupported(tree, c); err != nil {
				return err
			}
		}
	case *parse.ActionNode:
		return checkUnsupported(tree, n.Pipe)
	case *parse.IfNode:
		return checkBranch(tree, &n.BranchNode)
	case *parse.RangeNode:
		return checkBranch(tree, &n.BranchNode)
	case *parse.WithNode:
		return checkBranch(tree, &n.BranchNode)
	case *parse.TemplateNode:
		if n.Pipe != nil {
			return checkUnsupported(tree, n.Pipe)
		}
	case *parse.PipeNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Cmds {
			if err := checkUnsupported(tree, c); err != nil {
				return err
			}
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			if err := checkUnsupported(tree, a); err != nil {
				return err
			}
		}
	case *parse.ChainNode:
		return checkUnsupported(tree, n.Node)
	case *parse.IdentifierNode:
		if why, ok := unsupported[n.Ident]; ok {
			loc, _ := tree.ErrorContext(n)
			return fmt.Errorf("%s: %s", trimColumn(loc), why)
		}
	}
	return nil
}

func checkBranch(tree *parse.Tree, b *parse.BranchNode) error {
	if err := checkUnsupported(tree, b.Pipe); err != nil {
		return err
	}
	if err := checkUnsupported(tree, b.List); err != nil {
		return err
	}
	if b.ElseList != nil {
		return checkUnsupported(tree, b.ElseList)
	}
	return nil
}

// trimColumn turns "name:3:7" into "name:3", the form parse errors take.
func trimColumn(loc string) string {
	i := strings.LastIndexByte(loc, ':')
	if i < 0 {
		return loc
	}
	j := strings.LastIndexByte(loc[:i], ':')
	if j < 0 {
		return loc
	}
	return loc[:i]
}

// Execute renders the template, asking src for secrets. On error nothing is
// returned but the error, which names the template and line and holds no
// secret value.
func (t *Template) Execute(src Source) ([]byte, error) {
	r := &run{src: src, memo: map[string]*api.Secret{}}
	c, err := t.tmpl.Clone()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.name, err)
	}
	c.Option(missingKeyOption(t.opts))
	c.Funcs(r.funcs())
	out := &capBuffer{max: MaxOutput}
	if err := c.Execute(out, nil); err != nil {
		return nil, r.execError(t.name, err)
	}
	return out.buf.Bytes(), nil
}

// capBuffer is a bytes.Buffer that refuses to grow past max.
type capBuffer struct {
	buf bytes.Buffer
	max int
}

var errTooLarge = &funcError{msg: fmt.Sprintf("the rendered output exceeds %d MiB", MaxOutput>>20)}

func (b *capBuffer) Write(p []byte) (int, error) {
	if b.buf.Len()+len(p) > b.max {
		return 0, errTooLarge
	}
	return b.buf.Write(p)
}

// funcError is an error whose message was written here and holds no value
// from a secret: it may be shown as it is.
type funcError struct {
	msg string
}

func (e *funcError) Error() string { return e.msg }

func ferr(format string, args ...any) error {
	return &funcError{msg: fmt.Sprintf(format, args...)}
}

var (
	execRe = regexp.MustCompile(`(?s)^template: (.*?): executing "(?:[^"\\]|\\.)*" at <(.*?)>: (.*)$`)
	callRe = regexp.MustCompile(`(?s)^error calling ([A-Za-z0-9_]+): `)
	nilRe  = regexp.MustCompile(`^nil pointer evaluating interface \{\}\.(\w+)$`)
)

// valueEchoes are the engine's messages that end in the value they met.
var valueEchoes = []string{
	"range can't iterate over ",
	"if/with can't use ",
	"range over send-only channel ",
	"can't use ",
}

// builtins are text/template's own functions; their messages name types
// and indexes, never a value.
var builtins = map[string]bool{
	"and": true, "or": true, "not": true, "len": true, "index": true, "slice": true,
	"print": true, "printf": true, "println": true, "html": true, "js": true,
	"urlquery": true, "eq": true, "ne": true, "lt": true, "le": true, "gt": true, "ge": true,
}

func (r *run) execError(name string, err error) error {
	msg := err.Error()
	m := execRe.FindStringSubmatch(msg)
	if m == nil {
		return errors.New(r.redact(strings.TrimPrefix(msg, "template: ")))
	}
	loc, at, detail := m[1], m[2], m[3]
	detail = r.cleanDetail(err, detail)
	return errors.New(r.redact(fmt.Sprintf("%s: at <%s>: %s", loc, at, detail)))
}

func (r *run) cleanDetail(err error, detail string) string {
	var fe *funcError
	if errors.As(err, &fe) {
		if cm := callRe.FindStringSubmatch(detail); cm != nil {
			return "error calling " + cm[1] + ": " + fe.msg
		}
		return fe.msg
	}
	if cm := callRe.FindStringSubmatch(detail); cm != nil {
		if builtins[cm[1]] {
			return detail
		}
		return "error calling " + cm[1] + ": it failed (its message is withheld: it could hold a secret value)"
	}
	if m := nilRe.FindStringSubmatch(detail); m != nil {
		// A field of a nil value: .Data.data of a deleted KV v2 version.
		return fmt.Sprintf("nil data; no entry for key %q", m[1])
	}
	for _, p := range valueEchoes {
		if strings.HasPrefix(detail, p) {
			return p + "this value"
		}
	}
	return detail
}

// minRedact is the shortest value the final scrub replaces; shorter strings
// ("1", "yes") would garble messages and are kept out of them structurally.
const minRedact = 4

func (r *run) redact(s string) string {
	if len(r.seen) == 0 {
		return s
	}
	vals := make([]string, 0, len(r.seen))
	for v := range r.seen {
		vals = append(vals, v)
	}
	sort.Slice(vals, func(i, j int) bool { return len(vals[i]) > len(vals[j]) })
	for _, v := range vals {
		s = strings.ReplaceAll(s, v, "*****")
	}
	return s
}

// note remembers every string inside v as a value errors must not show.
func (r *run) note(v any) {
	r.noteDepth(v, 0)
}

func (r *run) noteDepth(v any, depth int) {
	if depth > 64 {
		return
	}
	switch v := v.(type) {
	case string:
		if len(v) >= minRedact {
			if r.seen == nil {
				r.seen = map[string]struct{}{}
			}
			r.seen[v] = struct{}{}
		}
	case []byte:
		r.noteDepth(string(v), depth)
	case fmt.Stringer:
		r.noteDepth(v.String(), depth)
	case map[string]any:
		for _, e := range v {
			r.noteDepth(e, depth+1)
		}
	case map[any]any:
		for _, e := range v {
			r.noteDepth(e, depth+1)
		}
	case map[string]string:
		for _, e := range v {
			r.noteDepth(e, depth+1)
		}
	case []any:
		for _, e := range v {
			r.noteDepth(e, depth+1)
		}
	case []string:
		for _, e := range v {
			r.noteDepth(e, depth+1)
		}
	}
}

func (r *run) noteSecret(s *api.Secret) {
	if s == nil {
		return
	}
	r.note(s.Data)
	if s.Auth != nil {
		r.note(s.Auth.ClientToken)
		r.note(s.Auth.Accessor)
	}
	if s.WrapInfo != nil {
		r.note(s.WrapInfo.Token)
		r.note(s.WrapInfo.Accessor)
	}
}

// WriteFile writes content to path atomically (a temporary file in the same
// directory, fsync, rename) with perm, creating parent directories when
// mkdirs is set. When content equals what the file holds it writes nothing
// and reports changed false (the mode is still brought to perm). With
// backup, the previous file is kept as path+".bak". A perm of 0 means 0644,
// Vault Agent's default.
func WriteFile(path string, content []byte, perm os.FileMode, backup, mkdirs bool) (changed bool, err error) {
	return writeFile(path, content, perm, backup, mkdirs)
}
