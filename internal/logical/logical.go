// Package logical defines what passes between the core and a backend (secrets
// engine or auth method): the Request, the Response, the Backend interface,
// the errors that map to HTTP status codes, and the path framework backends
// use to declare their paths instead of routing by hand.
package logical

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/arcasec/arca/internal/storage"
)

// Operation is what a request does to a path.
type Operation string

const (
	ReadOperation   Operation = "read"
	CreateOperation Operation = "create"
	UpdateOperation Operation = "update"
	PatchOperation  Operation = "patch"
	DeleteOperation Operation = "delete"
	ListOperation   Operation = "list"
	HelpOperation   Operation = "help"

	// The core sends these to a backend itself; no client request carries
	// them and no ACL applies to them.
	//
	// RenewOperation asks the backend to extend the lease in req.Secret.
	// RevokeOperation asks it to undo what the lease in req.Secret granted
	// (drop the database user, ...). RollbackOperation runs the backend's
	// periodic work and rolls back write-ahead log entries older than the
	// backend's minimum age; the core sends it to every mount about once a
	// minute.
	RenewOperation    Operation = "renew"
	RevokeOperation   Operation = "revoke"
	RollbackOperation Operation = "rollback"
	// AuthRenewOperation asks an auth method whether a token it issued at
	// login may be renewed (the role still exists, its terms still allow
	// it). Request.Auth is the token as stored, InternalData included; the
	// method returns a Response whose Auth carries the terms to renew under
	// (TTL, MaxTTL, Period, Policies), or an error to refuse.
	AuthRenewOperation Operation = "renew-auth"
	// ResolveRoleOperation asks an auth method which of its roles a login
	// request (Path and Data as the client sent them) is for, so that a
	// rate limit quota with a role can apply to it. The method answers
	// with Data {"role": name}, or ErrUnsupportedOperation when it has no
	// roles.
	ResolveRoleOperation Operation = "resolve-role"
)

// Storage is the storage a backend sees: its own view behind the barrier.
type Storage = storage.Storage

// StorageEntry is one stored key and value.
type StorageEntry = storage.Entry

// Request is one operation on a backend. Path is relative to the mount.
type Request struct {
	ID         string
	Operation  Operation
	Path       string
	Data       map[string]any
	Storage    Storage
	MountPoint string // e.g. "secret/"
	MountType  string

	// Set by the core for authenticated requests.
	ClientToken         string
	ClientTokenAccessor string
	Auth                *Auth // the caller's token as an Auth block; nil when unauthenticated
	EntityID            string

	Headers    http.Header
	RemoteAddr string
	// ContentType of a PATCH body, checked by the HTTP layer.
	ContentType string
	// WrapTTL, when non-zero, asks for the response to be wrapped: the
	// client gets a single-use token that unwraps it, valid for WrapTTL.
	WrapTTL time.Duration

	// Secret is the lease a RenewOperation or RevokeOperation is about, as
	// the core stored it: its InternalData as the backend returned it, its
	// IssueTime, and for a renewal the Increment the client asked for.
	Secret *Secret
}

// Response is what a backend returns. A nil *Response with a nil error is a
// 204 No Content.
type Response struct {
	Data     map[string]any
	Secret   *Secret
	Auth     *Auth
	Warnings []string
	// StatusCode, when non-zero, overrides the status the HTTP layer would
	// choose (KV v2 returns 404 with a body for deleted versions).
	StatusCode int
	// Raw, when set, is written as the response body verbatim (with
	// RawContentType), outside the envelope; used by sys/metrics and the like.
	Raw            []byte
	RawContentType string
	// WrapInfo, when set, replaces the response: it describes the token
	// that unwraps it.
	WrapInfo *WrapInfo
}

// WrapInfo describes a response-wrapping token.
type WrapInfo struct {
	Token        string
	Accessor     string
	TTL          time.Duration
	CreationTime time.Time
	CreationPath string
	// WrappedAccessor is the accessor of the token the wrapped response
	// carries, for token-creating responses.
	WrappedAccessor string
}

// AddWarning appends a warning shown to the client.
func (r *Response) AddWarning(w string) { r.Warnings = append(r.Warnings, w) }

// Secret makes a response leased. A backend returns it (usually through
// framework.Secret.Response) with TTL, MaxTTL and InternalData; the core
// caps the TTL (see CalculateTTL), creates the lease, and fills in LeaseID
// and IssueTime before the response leaves. On renew and revoke the core
// hands the stored lease back in Request.Secret.
type Secret struct {
	// LeaseID is set by the core: "<mount path><request path>/<random id>",
	// e.g. "database/creds/readonly/AbC123". A backend leaves it empty.
	LeaseID string
	// TTL is the lease's lifetime from now; 0 means the mount's default.
	// On a renewal the backend returns the TTL it grants (0: the same rule);
	// the core applies the client's increment and caps it by MaxTTL.
	TTL time.Duration
	// MaxTTL caps the lease's whole life, counted from IssueTime, renewals
	// included; 0 means the mount's (or the system's) max_lease_ttl.
	MaxTTL time.Duration
	// Renewable says whether the client may renew the lease.
	Renewable bool
	// InternalData is kept with the lease and handed back on renew and
	// revoke; it is never sent to the client.
	InternalData map[string]any
	// IssueTime is when the lease was created (set by the core).
	IssueTime time.Time
	// Increment is the extension the client asked for on a renewal
	// (0: none asked); set by the core on RenewOperation requests.
	Increment time.Duration
	// WALKey, when set by the backend, is the storage key (in its own
	// storage) of the write-ahead log entry that undoes the change behind
	// this secret. The core deletes it in the transaction that stores the
	// lease: a stop before the lease exists leaves it for the rollback,
	// and once the lease exists only the lease revokes the change.
	WALKey string
}

// Auth describes a token: the caller's on requests, and the one to issue on
// a login response.
type Auth struct {
	ClientToken   string
	Accessor      string
	DisplayName   string
	Policies      []string // token policies plus identity policies
	TokenPolicies []string
	// IdentityPolicies are those the token gains from its identity entity
	// and the entity's groups, set by the core.
	IdentityPolicies []string
	Metadata         map[string]string
	TTL              time.Duration
	MaxTTL           time.Duration
	ExplicitMaxTTL   time.Duration
	Period           time.Duration
	Renewable        bool
	NumUses          int
	NoParent         bool
	EntityID         string
	TokenType        string
	Orphan           bool
	// InternalData is kept with the token and handed back on renew.
	InternalData map[string]any

	// BoundCIDRs limits where the token may be used from (token_bound_cidrs).
	BoundCIDRs []string
	// NoDefaultPolicy leaves the "default" policy off a login token.
	NoDefaultPolicy bool
	// Alias names who logged in, as the method knows them (a role ID, a user
	// name, a JWT's user claim). The core resolves it to an identity entity
	// through the mount's accessor and sets EntityID on the token.
	Alias *Alias
	// GroupAliases are the external groups the login belongs to (a JWT's
	// groups claim), resolved to identity groups whose policies the token
	// gains.
	GroupAliases []*Alias
}

// Alias is a login's name within its auth method.
type Alias struct {
	Name     string
	Metadata map[string]string
}

// Paths lists a backend's special paths, as patterns with an optional
// trailing "*" glob.
type Paths struct {
	// Unauthenticated paths need no token (login endpoints).
	Unauthenticated []string
	// Root paths need the sudo capability.
	Root []string
	// CaseInsensitive lists paths with a name the backend keeps in
	// lowercase (a user, a role, a policy), as segment patterns: "+" is the
	// name's segment, a trailing "*" matches the rest unchanged, other
	// segments are literal ("users/+", "role/+/*"). The core lowercases the
	// name's segment of a matching request path BEFORE the ACL check, so
	// users/ADMIN is checked, and served, as users/admin.
	CaseInsensitive []string
	// FormBody paths also accept a write whose body is
	// application/x-www-form-urlencoded (an OIDC provider's form_post
	// callback); every other path takes JSON only.
	FormBody []string
}

// SystemView is what the core lends a backend: configuration it needs and
// hooks into core services, never the core itself.
type SystemView interface {
	LeaseClock
	// GeneratePasswordFromPolicy returns a new password from the named
	// password policy (sys/policies/password/<name>).
	GeneratePasswordFromPolicy(ctx context.Context, policyName string) (string, error)
	// LoginGuard is the mount's login lockout (user_lockout); never nil.
	LoginGuard() LoginGuard
}

// LoginGuard locks a login name out of an auth method after too many failed
// logins in a row (Vault's user_lockout). A method that takes passwords or
// secret IDs asks Locked before it checks credentials, and reports the
// outcome with Failed or Succeeded. It must do the same work for a name that
// does not exist as for one that does, so a locked or unknown name cannot
// be told apart by timing. When lockout is disabled the methods do nothing
// and Locked is false.
type LoginGuard interface {
	Locked(ctx context.Context, name string) bool
	Failed(ctx context.Context, name string)
	Succeeded(ctx context.Context, name string)
}

// ErrLoginLocked is the error a method returns for a locked-out name.
var ErrLoginLocked = Errorf(http.StatusForbidden, "too many failed logins: this user is locked out; try again later or ask an operator to unlock it (sys/locked-users)")

// NoLoginGuard is a LoginGuard that never locks anyone out.
type NoLoginGuard struct{}

func (NoLoginGuard) Locked(context.Context, string) bool { return false }
func (NoLoginGuard) Failed(context.Context, string)      {}
func (NoLoginGuard) Succeeded(context.Context, string)   {}

// LeaseClock is the part of a SystemView that lease lifetimes are computed
// from (see CalculateTTL).
type LeaseClock interface {
	// DefaultLeaseTTL and MaxLeaseTTL are the mount's tuned values, falling
	// back to the server's.
	DefaultLeaseTTL() time.Duration
	MaxLeaseTTL() time.Duration
	// Now is the core's clock. Backends measure time with it, never with
	// time.Now, so tests can move it.
	Now() time.Time
}

// BackendConfig is what a Factory receives when a mount is created or loaded.
type BackendConfig struct {
	Storage   Storage
	System    SystemView
	Logger    *slog.Logger
	MountPath string
	// Options are the mount's options (e.g. {"version": "2"} for KV).
	Options map[string]string
}

// Backend is a secrets engine or an auth method.
type Backend interface {
	// HandleRequest serves a request routed to this backend.
	HandleRequest(ctx context.Context, req *Request) (*Response, error)
	// ExistenceCheck reports, for a create-or-update write, whether the
	// target exists. checked is false when the backend does not distinguish
	// create from update, in which case the core treats the write as update.
	ExistenceCheck(ctx context.Context, req *Request) (checked, exists bool, err error)
	// SpecialPaths returns the backend's unauthenticated and sudo paths.
	SpecialPaths() *Paths
	// Cleanup releases resources when the mount is disabled or the core seals.
	Cleanup(ctx context.Context)
}

// Factory creates a backend for a mount.
type Factory func(ctx context.Context, conf *BackendConfig) (Backend, error)
