package config

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/hcl/ast"
	"github.com/hashicorp/hcl/hcl/token"

	"github.com/arcasec/arca/internal/hclsafe"
)

// This file reads HCL v1 syntax trees. HCL's JSON reader flattens nested
// objects into items with several keys ("auto_auth": {"method": {...}}
// becomes one item keyed auto_auth, method), so a block's body is gathered
// from every item that starts with its key, and the keys after the first are
// either labels (method "approle") or the path to a nested block.

// entry is one attribute or block of a body: its first key, the keys that
// follow it, and its value.
type entry struct {
	key    string
	labels []string
	val    ast.Node
	line   int
}

// body is the contents of one block.
type body struct {
	where   string // the stanza, for messages: vault, auto_auth.method "approle", ...
	line    int
	entries []entry
}

// parser carries the file name into every message.
type parser struct {
	name string
}

// errf builds an error naming the file, the line and the stanza.
func (p *parser) errf(line int, where, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	loc := p.name
	if line > 0 {
		if loc != "" {
			loc += ":"
		}
		loc += "line " + strconv.Itoa(line)
	}
	switch {
	case loc != "" && where != "":
		return fmt.Errorf("%s: %s: %s", loc, where, msg)
	case loc != "":
		return fmt.Errorf("%s: %s", loc, msg)
	case where != "":
		return fmt.Errorf("%s: %s", where, msg)
	}
	return fmt.Errorf("%s", msg)
}

// keyText is an object key's text; one the parser cannot read is "".
func keyText(k *ast.ObjectKey) string {
	if k == nil {
		return ""
	}
	s, _ := hclsafe.String(k.Token)
	return s
}

// entries turns an object list into entries.
func entries(list *ast.ObjectList) []entry {
	if list == nil {
		return nil
	}
	out := make([]entry, 0, len(list.Items))
	for _, it := range list.Items {
		if it == nil || len(it.Keys) == 0 {
			continue
		}
		e := entry{key: keyText(it.Keys[0]), val: it.Val, line: it.Pos().Line}
		for _, k := range it.Keys[1:] {
			e.labels = append(e.labels, keyText(k))
		}
		out = append(out, e)
	}
	return out
}

// inner is the body an entry opens after using skip of its labels: its
// object's items, or, when keys remain, the nested item they name.
func (p *parser) inner(e entry, skip int, where string) (*body, error) {
	b := &body{where: where, line: e.line}
	if len(e.labels) > skip {
		rest := e.labels[skip:]
		b.entries = []entry{{key: rest[0], labels: rest[1:], val: e.val, line: e.line}}
		return b, nil
	}
	obj, ok := e.val.(*ast.ObjectType)
	if !ok {
		return nil, p.errf(e.line, where, "expected a block { ... }")
	}
	b.entries = entries(obj.List)
	return b, nil
}

// group collects a body's entries by key, keeping the order of first
// appearance.
func group(b *body) ([]string, map[string][]entry) {
	var order []string
	m := map[string][]entry{}
	for _, e := range b.entries {
		if _, ok := m[e.key]; !ok {
			order = append(order, e.key)
		}
		m[e.key] = append(m[e.key], e)
	}
	return order, m
}

// single returns the one entry an attribute must have.
func (p *parser) single(b *body, es []entry) (entry, error) {
	if len(es) > 1 {
		return entry{}, p.errf(es[1].line, b.where, "%s is given more than once", es[0].key)
	}
	e := es[0]
	if len(e.labels) > 0 {
		return entry{}, p.errf(e.line, b.where, "%s: expected a value, not a block", e.key)
	}
	return e, nil
}

// merged gathers the bodies of a block that may appear once (vault,
// auto_auth, retry, ...): items reached through JSON flattening merge into
// it, but two blocks written out are an error.
func (p *parser) merged(es []entry, where string) (*body, error) {
	b := &body{where: where, line: es[0].line}
	whole := 0
	for _, e := range es {
		if len(e.labels) == 0 {
			if whole++; whole > 1 {
				return nil, p.errf(e.line, where, "only one %s block is allowed", es[0].key)
			}
		}
		in, err := p.inner(e, 0, where)
		if err != nil {
			return nil, err
		}
		b.entries = append(b.entries, in.entries...)
	}
	return b, nil
}

// literal is an attribute's literal token.
func (p *parser) literal(where string, e entry) (token.Token, error) {
	lit, ok := e.val.(*ast.LiteralType)
	if !ok {
		return token.Token{}, p.errf(e.line, where, "%s: expected a single value", e.key)
	}
	return lit.Token, nil
}

func (p *parser) str(where string, e entry) (string, error) {
	t, err := p.literal(where, e)
	if err != nil {
		return "", err
	}
	s, err := hclsafe.String(t)
	if err != nil {
		return "", p.errf(e.line, where, "%s: %v", e.key, err)
	}
	return s, nil
}

// scan reads a string attribute and converts it with f; a string f refuses
// is an error with msg, formatted with the key and the string as written.
func scan[T any](p *parser, where string, e entry, f func(string) (T, bool), msg string) (T, error) {
	s, err := p.str(where, e)
	if err != nil {
		var zero T
		return zero, err
	}
	v, ok := f(s)
	if !ok {
		return v, p.errf(e.line, where, msg, e.key, s)
	}
	return v, nil
}

func (p *parser) boolean(where string, e entry) (bool, error) {
	return scan(p, where, e, func(s string) (bool, bool) {
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		return b, err == nil
	}, "%s: %q is not true or false")
}

func (p *parser) integer(where string, e entry) (int, error) {
	return scan(p, where, e, func(s string) (int, bool) {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		return n, err == nil
	}, "%s: %q is not a whole number")
}

// duration reads "5m", "30s", "1h30m", "2d" or a bare number of seconds.
func (p *parser) duration(where string, e entry) (time.Duration, error) {
	return scan(p, where, e, parseDuration, "%s: %q is not a duration such as \"30s\", \"5m\" or a number of seconds")
}

func parseDuration(s string) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, true
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f < 0 || math.IsNaN(f) || f*float64(time.Second) > math.MaxInt64 {
			return 0, false
		}
		return time.Duration(f * float64(time.Second)), true
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 32)
		if err != nil || n > 100000 {
			return 0, false
		}
		return time.Duration(n) * 24 * time.Hour, true
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, false
	}
	return d, true
}

// mode reads a file mode: an HCL number as the parser reads it (0640 is
// octal), a string always as octal ("0640" or "640").
func (p *parser) mode(where string, e entry) (os.FileMode, error) {
	t, err := p.literal(where, e)
	if err != nil {
		return 0, err
	}
	var n uint64
	switch t.Type {
	case token.NUMBER:
		v, err := hclsafe.Value(t)
		i, ok := v.(int64)
		if err != nil || !ok || i < 0 {
			return 0, p.errf(e.line, where, "%s: %s is not a file mode such as \"0640\"", e.key, t.Text)
		}
		n = uint64(i)
	case token.STRING:
		s, _ := hclsafe.String(t)
		n, err = strconv.ParseUint(strings.TrimSpace(s), 8, 32)
		if err != nil {
			return 0, p.errf(e.line, where, "%s: %q is not an octal file mode such as \"0640\"", e.key, s)
		}
	default:
		return 0, p.errf(e.line, where, "%s: %s is not a file mode such as \"0640\"", e.key, t.Text)
	}
	if n > 0o777 {
		return 0, p.errf(e.line, where, "%s: %s is not a file mode; write it in octal, such as \"0640\"", e.key, t.Text)
	}
	return os.FileMode(n), nil
}

// strings reads a list of strings; shell reports whether a single string was
// given instead of a list.
func (p *parser) strList(where string, e entry) (list []string, single bool, err error) {
	switch v := e.val.(type) {
	case *ast.LiteralType:
		s, err := p.str(where, e)
		if err != nil {
			return nil, false, err
		}
		return []string{s}, true, nil
	case *ast.ListType:
		for _, n := range v.List {
			lit, ok := n.(*ast.LiteralType)
			if !ok {
				return nil, false, p.errf(e.line, where, "%s: expected a list of strings", e.key)
			}
			s, err := hclsafe.String(lit.Token)
			if err != nil {
				return nil, false, p.errf(e.line, where, "%s: %v", e.key, err)
			}
			list = append(list, s)
		}
		return list, false, nil
	}
	return nil, false, p.errf(e.line, where, "%s: expected a string or a list of strings", e.key)
}

// plain converts a method's config value: strings, numbers, bools, and
// lists of them.
func (p *parser) plain(where string, e entry) (any, error) {
	switch v := e.val.(type) {
	case *ast.LiteralType:
		val, err := hclsafe.Value(v.Token)
		if err != nil {
			return nil, p.errf(e.line, where, "%s: %v", e.key, err)
		}
		if i, ok := val.(int64); ok {
			return int(i), nil
		}
		return val, nil
	case *ast.ListType:
		var out []any
		for _, n := range v.List {
			lit, ok := n.(*ast.LiteralType)
			if !ok {
				return nil, p.errf(e.line, where, "%s: expected a value or a list of values", e.key)
			}
			val, err := hclsafe.Value(lit.Token)
			if err != nil {
				return nil, p.errf(e.line, where, "%s: %v", e.key, err)
			}
			out = append(out, val)
		}
		return out, nil
	}
	return nil, p.errf(e.line, where, "%s: expected a value or a list of values", e.key)
}

// A stanza is declared, not walked by hand: fields maps each key to what
// reads it, and walk does what every block needs (group the entries, refuse
// an attribute given twice, skip ignored keys, name the stanza and line of an
// unknown key).

// setter reads one attribute (given once, not a block) into its place.
type setter func(where string, e entry) error

// each reads every entry of a key: a nested block (its bodies merged) or a
// stanza that may repeat.
type each func(es []entry) error

// fields maps a stanza's keys to a setter or an each.
type fields map[string]any

// also gives the keys names the same setter (typically a refusal).
func (f fields) also(s setter, names ...string) fields {
	for _, n := range names {
		f[n] = s
	}
	return f
}

// stanza declares one block.
type stanza struct {
	keys   fields
	ignore []string // accepted and skipped; checked before keys
	other  setter   // reads any other key; nil makes it an unknown key
	hint   string   // follows the unknown-key message, e.g. " (min, max)"
}

// given records which keys a body set.
type given map[string]bool

// walk reads a body by its declaration, in the order keys first appear.
func (p *parser) walk(b *body, s stanza) (given, error) {
	order, g := group(b)
	seen := given{}
	for _, k := range order {
		es := g[k]
		if slices.Contains(s.ignore, k) {
			continue
		}
		f := s.keys[k]
		if f == nil && s.other != nil {
			f = s.other
		}
		switch f := f.(type) {
		case setter:
			e, err := p.single(b, es)
			if err != nil {
				return nil, err
			}
			if err := f(b.where, e); err != nil {
				return nil, err
			}
		case each:
			if err := f(es); err != nil {
				return nil, err
			}
		default:
			return nil, p.errf(es[0].line, b.where, "unknown key %q%s", k, s.hint)
		}
		seen[k] = true
	}
	return seen, nil
}

// merge reads a block that may appear once (see merged) with read.
func (p *parser) merge(where string, read func(*body) error) each {
	return func(es []entry) error {
		b, err := p.merged(es, where)
		if err != nil {
			return err
		}
		return read(b)
	}
}

// nested reads a block that may appear once by its declaration.
func (p *parser) nested(where string, s stanza) each {
	return p.merge(where, func(b *body) error {
		_, err := p.walk(b, s)
		return err
	})
}

// block reads a block that may appear once into dst.
func block[T any](p *parser, where string, dst *T, read func(*body) (T, error)) each {
	return p.merge(where, func(b *body) (err error) {
		*dst, err = read(b)
		return err
	})
}

// appendTo reads each entry of a repeatable stanza onto list.
func appendTo[T any](list *[]T, read func(entry) (T, error)) each {
	return func(es []entry) error {
		for _, e := range es {
			v, err := read(e)
			if err != nil {
				return err
			}
			*list = append(*list, v)
		}
		return nil
	}
}

// to is the setter that stores what read returns in dst.
func to[T any](dst *T, read func(string, entry) (T, error)) setter {
	return func(where string, e entry) (err error) {
		*dst, err = read(where, e)
		return err
	}
}

// conv is the setter that stores what f makes of a string (see scan).
func conv[T any](p *parser, dst *T, f func(string) (T, bool), msg string) setter {
	return to(dst, func(where string, e entry) (T, error) { return scan(p, where, e, f, msg) })
}

// check runs s, then refuses with msg what ok rejects.
func (p *parser) check(s setter, ok func() bool, msg string) setter {
	return func(where string, e entry) error {
		if err := s(where, e); err != nil {
			return err
		}
		if !ok() {
			return p.errf(e.line, where, "%s", msg)
		}
		return nil
	}
}

// refuse is the setter for a key Arca knows but does not honour; msg's verb
// is the key.
func (p *parser) refuse(msg string) setter {
	return func(where string, e entry) error {
		return p.errf(e.line, where, msg, e.key)
	}
}

// command reads a command (see strList) and whether it was a single string.
func (p *parser) command(list *[]string, shell *bool) setter {
	return func(where string, e entry) (err error) {
		*list, *shell, err = p.strList(where, e)
		return err
	}
}
