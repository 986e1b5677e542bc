// Package template renders agent templates in the language Vault Agent users
// already write (consul-template's): Go text/template with functions such as
// secret, secrets, env, file, base64Encode, toJSON, parseJSON, timestamp and
// sprig's string helpers. A template asks its Source for secrets; it never
// talks to a server itself.
package template

import (
	"errors"
	"os"

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

// Template is a parsed template.
type Template struct {
	// TODO(helper template)
}

// Parse parses text. name (the source file, or a stanza's description)
// appears in errors with the line: "agent.tmpl:3: function \"secert\" not defined".
func Parse(name, text string, opts Options) (*Template, error) {
	return nil, errors.New("template: not implemented")
}

// Execute renders the template, asking src for secrets.
func (t *Template) Execute(src Source) ([]byte, error) {
	return nil, errors.New("template: not implemented")
}

// WriteFile writes content to path atomically (a temporary file in the same
// directory, fsync, rename) with perm, creating parent directories when
// mkdirs is set. When content equals what the file holds it writes nothing
// and reports changed false. With backup, the previous file is kept as
// path+".bak".
func WriteFile(path string, content []byte, perm os.FileMode, backup, mkdirs bool) (changed bool, err error) {
	return false, errors.New("template: not implemented")
}
