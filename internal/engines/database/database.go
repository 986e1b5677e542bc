// Package database is the database secrets engine: it holds connections to
// databases and issues credentials in them. Dynamic roles create a user per
// request from SQL statements; static roles own existing users and rotate
// their passwords, either one user's (single-user) or two users' in turn
// (alternating-users). The one plugin is PostgreSQL's, under Vault's name
// postgresql-database-plugin, and the HTTP paths are Vault's.
package database

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/logical/framework"
)

// Storage layout, relative to the mount.
const (
	configPrefix     = "config/"
	rolePrefix       = "role/"
	staticRolePrefix = "static-role/"
)

// verifyTimeout bounds how long a write waits for a database to answer.
const verifyTimeout = 10 * time.Second

// Factory creates the engine for a mount.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := newBackend(conf)
	b.Setup(conf)
	return b, nil
}

type backend struct {
	*framework.Backend
	logger *slog.Logger
	system logical.SystemView

	mu    sync.Mutex
	conns map[string]*postgres // by config name, opened on first use

	// rotating serialises rotations, so one role is never rotated twice at
	// once.
	rotating sync.Mutex

	// failStep, when set (by tests), is called before each rotation step
	// and fails the step when it returns an error.
	failStep func(role, step string) error
}

func newBackend(conf *logical.BackendConfig) *backend {
	b := &backend{logger: conf.Logger, system: conf.System, conns: map[string]*postgres{}}
	if b.logger == nil {
		b.logger = slog.New(slog.DiscardHandler)
	}
	paths := append(b.configPaths(), b.rolePaths()...)
	paths = append(paths, b.staticRolePaths()...)
	b.Backend = &framework.Backend{
		Help:         "The database secrets engine issues and rotates database credentials.",
		Paths:        append(paths, b.credsPath()),
		Secrets:      []*framework.Secret{b.credsSecret()},
		PeriodicFunc: func(ctx context.Context, req *logical.Request) error { return b.rotateDue(ctx, req.Storage) },
		WALRollback:  b.walRollback,
		Clean:        func(context.Context) { b.closeAll() },
	}
	return b
}

// now is the core's clock.
func (b *backend) now() time.Time {
	if b.system == nil {
		return time.Now()
	}
	return b.system.Now()
}

// connection returns the open pool for a configuration, opening it first.
func (b *backend) connection(ctx context.Context, s logical.Storage, name string) (*postgres, *dbConfig, error) {
	cfg, err := loadConfig(ctx, s, name)
	if err != nil {
		return nil, nil, err
	}
	if cfg == nil {
		return nil, nil, logical.BadRequest("no database configuration named %q", name)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if p, ok := b.conns[name]; ok {
		return p, cfg, nil
	}
	p, err := openPostgres(cfg.settings())
	if err != nil {
		return nil, nil, logical.BadRequest("database %q: %v", name, err)
	}
	b.conns[name] = p
	return p, cfg, nil
}

// forget closes a configuration's pool, so the next use opens a new one
// with the stored settings.
func (b *backend) forget(name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p, ok := b.conns[name]; ok {
		p.close()
		delete(b.conns, name)
	}
}

func (b *backend) closeAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for name, p := range b.conns {
		p.close()
		delete(b.conns, name)
	}
}

// getJSON decodes the entry at key into v; found is false when there is
// none.
func getJSON(ctx context.Context, s logical.Storage, key string, v any) (found bool, err error) {
	e, err := s.Get(ctx, key)
	if err != nil || e == nil {
		return false, err
	}
	if err := json.Unmarshal(e.Value, v); err != nil {
		return false, fmt.Errorf("decoding the stored %s: %w", key, err)
	}
	return true, nil
}

func putJSON(ctx context.Context, s logical.Storage, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.Put(ctx, &logical.StorageEntry{Key: key, Value: raw})
}

// list answers a LIST of the names stored under prefix.
func list(ctx context.Context, s logical.Storage, prefix string) (*logical.Response, error) {
	keys, err := s.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, nil
	}
	sort.Strings(keys)
	return &logical.Response{Data: map[string]any{"keys": keys}}, nil
}

// nameField declares the <name> path segment.
func nameField(what string) map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{"name": {Type: framework.TypeString, Description: "Name of the " + what + "."}}
}

// statementsField declares a field of SQL statements: a list, or one
// string holding statements separated by semicolons.
func statementsField(desc string) *framework.FieldSchema {
	return &framework.FieldSchema{Type: framework.TypeStringSlice, Description: desc}
}

// cleanStatements reads statements as Vault accepts them: each element is
// SQL, a JSON array of SQL strings, or either of them base64-encoded. Empty
// elements are dropped, so "" clears a list.
func cleanStatements(in []string) []string {
	out := []string{}
	for _, s := range in {
		s = strings.TrimSpace(s)
		if dec, ok := decodeBase64Text(s); ok {
			s = strings.TrimSpace(dec)
		}
		var list []string
		if strings.HasPrefix(s, "[") && json.Unmarshal([]byte(s), &list) == nil {
			for _, e := range list {
				if e = strings.TrimSpace(e); e != "" {
					out = append(out, e)
				}
			}
			continue
		}
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// decodeBase64Text decodes s when it is standard base64 of printable text.
// SQL is never mistaken for it: a statement has spaces or punctuation that
// base64 lacks.
func decodeBase64Text(s string) (string, bool) {
	if s == "" || len(s)%4 != 0 || strings.ContainsFunc(s, unicode.IsSpace) {
		return "", false
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || !utf8.Valid(b) {
		return "", false
	}
	for _, r := range string(b) {
		if unicode.IsControl(r) && !unicode.IsSpace(r) {
			return "", false
		}
	}
	return string(b), true
}

// withTimeout bounds a database call made while serving a request.
func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, verifyTimeout)
}
