package framework

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/arcasec/arca/internal/logical"
)

// OperationFunc handles one operation on a declared path.
type OperationFunc func(ctx context.Context, req *logical.Request, d *FieldData) (*logical.Response, error)

// ExistenceFunc reports whether the target of a write already exists.
type ExistenceFunc func(ctx context.Context, req *logical.Request, d *FieldData) (bool, error)

// Path declares one path of a backend: a pattern, its typed fields and a
// handler per operation. Pattern is a regular expression matched against
// the whole mount-relative path. Its named groups are declared fields whose
// values come from the path alone: a request's data never fills or
// overrides one, since the ACL decided on the path and not on the data.
// A named group must span whole path segments (see CheckPattern).
type Path struct {
	Pattern        string
	Fields         map[string]*FieldSchema
	Operations     map[logical.Operation]OperationFunc
	ExistenceCheck ExistenceFunc
	// TakesArbitraryInput turns off the warning for fields the path does not
	// declare (KV v1 writes store whatever they are given).
	TakesArbitraryInput bool
	HelpSynopsis        string
	HelpDescription     string

	re *regexp.Regexp
}

// Backend is a logical.Backend assembled from declared paths.
type Backend struct {
	// Help describes the backend as a whole.
	Help         string
	Paths        []*Path
	PathsSpecial *logical.Paths
	// Clean is called from Cleanup.
	Clean func(ctx context.Context)

	// Secrets declares the kinds of leased secret the backend issues; the
	// core's renewals and revocations are routed to them (see Secret).
	Secrets []*Secret

	// PeriodicFunc, when set, runs on every RollbackOperation the core
	// sends, about once a minute, for work on a schedule (rotation, tidy).
	// req.Storage is the backend's storage. An error is logged and the
	// function runs again next time; a round that finds the previous one
	// still running is skipped. ctx is cancelled when the core seals, and
	// sealing waits for the function to return.
	PeriodicFunc func(ctx context.Context, req *logical.Request) error

	// WALRollback undoes the change a write-ahead log entry describes (see
	// PutWAL). It must succeed when the change never happened or is already
	// undone. The entry is deleted when it returns nil and retried on the
	// next round otherwise.
	WALRollback func(ctx context.Context, req *logical.Request, kind string, data any) error
	// WALRollbackMinAge is how old an entry must be before it is rolled
	// back; 0 means DefaultWALRollbackMinAge.
	WALRollbackMinAge time.Duration

	// AuthRenew, for an auth method, decides whether a token it issued at
	// login may be renewed: the core calls it for AuthRenewOperation with
	// req.Auth set to the token (InternalData and Metadata included), with
	// no path routing and empty field data. It returns a Response whose
	// Auth carries the terms to renew under (TTL, MaxTTL, Period), or an
	// error to refuse. A backend without it refuses every renewal.
	AuthRenew OperationFunc

	// ResolveRole, for an auth method with roles, names the role a login
	// request is for (ResolveRoleOperation): the request is routed to its
	// declared path and d holds its fields, as for the login itself. It
	// must not check credentials or change anything. A backend without it
	// answers ErrUnsupportedOperation.
	ResolveRole func(ctx context.Context, req *logical.Request, d *FieldData) (string, error)

	// System is the core's view lent to the backend (mount TTLs, clock,
	// hooks). Setup sets it; without it the framework uses the real clock.
	System logical.SystemView

	once sync.Once
}

// Setup keeps what the backend needs from its configuration: call it from
// the backend's Factory before returning the backend.
func (b *Backend) Setup(conf *logical.BackendConfig) {
	b.System = conf.System
}

// now is the core's clock when the backend has one.
func (b *Backend) now() time.Time {
	if b.System != nil {
		return b.System.Now()
	}
	return time.Now()
}

// randomID returns 16 random bytes in hex.
func randomID() (string, error) {
	var buf [16]byte
	if _, err := rand.Read(buf[:]); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return hex.EncodeToString(buf[:]), nil
}

var _ logical.Backend = (*Backend)(nil)

// compile compiles every pattern once. A pattern that breaks the rules of
// CheckPattern is a programming error, like one that does not compile.
func (b *Backend) compile() {
	b.once.Do(func() {
		for _, p := range b.Paths {
			if err := p.check(); err != nil {
				panic(err)
			}
			p.re = regexp.MustCompile("^(?:" + p.Pattern + ")$")
		}
	})
}

// route finds the first declared path matching path and returns it with the
// values of its named groups. Every named group has a value, "" when it
// matched nothing or took no part in the match.
func (b *Backend) route(path string) (*Path, map[string]string) {
	b.compile()
	for _, p := range b.Paths {
		m := p.re.FindStringSubmatch(path)
		if m == nil {
			continue
		}
		captures := make(map[string]string, len(m))
		for i, name := range p.re.SubexpNames() {
			if name != "" {
				captures[name] = m[i]
			}
		}
		return p, captures
	}
	return nil, nil
}

// fieldData builds the FieldData for a request on p, validating every
// supplied field against its schema. The path's captures are set last and
// always, so request data under a capture's name never reaches the handler
// as that field (it stays in req.Data, where KV v1 keeps it as content).
func (p *Path) fieldData(req *logical.Request, captures map[string]string) (*FieldData, []string, error) {
	raw := make(map[string]any, len(req.Data)+len(captures))
	var unknown []string
	for k, v := range req.Data {
		if _, ok := p.Fields[k]; !ok {
			unknown = append(unknown, k)
		}
		raw[k] = v
	}
	for k, v := range captures {
		raw[k] = v
	}
	d := &FieldData{Raw: raw, Schema: p.Fields}
	if err := d.Validate(); err != nil {
		return nil, nil, err
	}
	var warnings []string
	if len(unknown) > 0 && !p.TakesArbitraryInput {
		sort.Strings(unknown)
		warnings = append(warnings, fmt.Sprintf("Endpoint ignored these unrecognized parameters: [%s]", strings.Join(unknown, " ")))
	}
	return d, warnings, nil
}

// HandleRequest routes req to the declared path and operation.
func (b *Backend) HandleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	switch req.Operation {
	case logical.RenewOperation, logical.RevokeOperation:
		return b.handleSecret(ctx, req)
	case logical.RollbackOperation:
		return b.rollback(ctx, req)
	case logical.AuthRenewOperation:
		if b.AuthRenew == nil {
			return nil, logical.BadRequest("this auth type doesn't support renew")
		}
		if req.Auth == nil {
			return nil, logical.BadRequest("no token to renew")
		}
		return b.AuthRenew(ctx, req, &FieldData{Raw: map[string]any{}, Schema: map[string]*FieldSchema{}})
	}
	if req.Operation == logical.ResolveRoleOperation && b.ResolveRole == nil {
		return nil, logical.ErrUnsupportedOperation
	}
	p, captures := b.route(req.Path)
	if p == nil && req.Operation == logical.HelpOperation && strings.Trim(req.Path, "/") == "" {
		return &logical.Response{Data: map[string]any{"help": b.rootHelp()}}, nil
	}
	if p == nil {
		return nil, logical.ErrUnsupportedPath
	}
	if req.Operation == logical.ResolveRoleOperation {
		d, _, err := p.fieldData(req, captures)
		if err != nil {
			return nil, err
		}
		role, err := b.ResolveRole(ctx, req, d)
		if err != nil {
			return nil, err
		}
		return &logical.Response{Data: map[string]any{"role": role}}, nil
	}
	if req.Operation == logical.HelpOperation {
		return &logical.Response{Data: map[string]any{"help": p.help(b.Help)}}, nil
	}
	op, ok := p.Operations[req.Operation]
	if !ok && req.Operation == logical.CreateOperation {
		op, ok = p.Operations[logical.UpdateOperation]
	}
	if !ok {
		return nil, logical.ErrUnsupportedOperation
	}
	d, warnings, err := p.fieldData(req, captures)
	if err != nil {
		return nil, err
	}
	resp, err := op(ctx, req, d)
	if len(warnings) > 0 && err == nil {
		if resp == nil {
			resp = &logical.Response{}
		}
		resp.Warnings = append(resp.Warnings, warnings...)
	}
	return resp, err
}

// ExistenceCheck runs the existence check of the path req targets.
func (b *Backend) ExistenceCheck(ctx context.Context, req *logical.Request) (checked, exists bool, err error) {
	p, captures := b.route(req.Path)
	if p == nil || p.ExistenceCheck == nil {
		return false, false, nil
	}
	if _, ok := p.Operations[logical.CreateOperation]; !ok {
		return false, false, nil
	}
	d, _, err := p.fieldData(req, captures)
	if err != nil {
		return false, false, err
	}
	exists, err = p.ExistenceCheck(ctx, req, d)
	return true, exists, err
}

// SpecialPaths returns the declared special paths.
func (b *Backend) SpecialPaths() *logical.Paths { return b.PathsSpecial }

// Cleanup calls Clean when set.
func (b *Backend) Cleanup(ctx context.Context) {
	if b.Clean != nil {
		b.Clean(ctx)
	}
}

// rootHelp is the help of the backend itself (`vault path-help` of a
// mount): its description and the paths it declares.
func (b *Backend) rootHelp() string {
	var s strings.Builder
	if b.Help != "" {
		s.WriteString(strings.TrimSpace(b.Help) + "\n\n")
	}
	s.WriteString("## PATHS\n")
	for _, p := range b.Paths {
		s.WriteString("\n    " + p.Pattern + "\n")
		if p.HelpSynopsis != "" {
			s.WriteString("        " + strings.TrimSpace(p.HelpSynopsis) + "\n")
		}
	}
	return s.String()
}

func (p *Path) help(backendHelp string) string {
	var s strings.Builder
	if p.HelpSynopsis != "" {
		s.WriteString(p.HelpSynopsis + "\n\n")
	}
	if p.HelpDescription != "" {
		s.WriteString(p.HelpDescription + "\n\n")
	}
	if len(p.Fields) > 0 {
		names := make([]string, 0, len(p.Fields))
		for n := range p.Fields {
			names = append(names, n)
		}
		sort.Strings(names)
		s.WriteString("Parameters:\n")
		for _, n := range names {
			f := p.Fields[n]
			fmt.Fprintf(&s, "  %s (%s): %s\n", n, f.Type, f.Description)
		}
	}
	if s.Len() == 0 {
		return backendHelp
	}
	return s.String()
}

// Pattern helpers.

// GenericNameRegex matches a name made of word characters, dashes and dots.
func GenericNameRegex(name string) string {
	return fmt.Sprintf(`(?P<%s>\w(([\w.-]+)?\w)?)`, name)
}

// MatchAllRegex matches the rest of the path, possibly empty.
func MatchAllRegex(name string) string {
	return fmt.Sprintf(`(?P<%s>.*)`, name)
}

// OptionalTrailingSlash matches an optional "/".
const OptionalTrailingSlash = `/?`
