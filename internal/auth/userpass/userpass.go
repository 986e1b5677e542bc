// Package userpass is the userpass auth method: people log in with a user
// name and a password. Passwords are kept only as bcrypt hashes; a login for
// a name that does not exist does the same bcrypt work as one that does, and
// both go through the mount's login lockout (user_lockout), so neither the
// answer nor its timing tells which names exist.
package userpass

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/arcasec/arca/internal/logical"
	fw "github.com/arcasec/arca/internal/logical/framework"
)

// userPrefix is where users live in the mount's storage: user/<name>.
const userPrefix = "user/"

// bcryptCost is the work factor of stored password hashes (a variable only
// so the package's fuzz target can run at bcrypt's lowest cost).
var bcryptCost = bcrypt.DefaultCost

// bcryptMaxPassword is the most bytes of a password bcrypt reads.
const bcryptMaxPassword = 72

// errInvalidCredentials is the one answer to a wrong password or an unknown
// user (Vault's wording).
var errInvalidCredentials = logical.BadRequest("invalid username or password")

// user is one stored user.
type user struct {
	PasswordHash []byte `json:"password_hash"`
	fw.TokenParams
}

// dummyHash is compared against when a login names no user, so that such a
// login costs what a real one does. Its password is random and forgotten.
var dummyHash = sync.OnceValue(func() []byte {
	var pw [32]byte
	if _, err := rand.Read(pw[:]); err != nil {
		panic("userpass: reading random bytes: " + err.Error())
	}
	h, err := bcrypt.GenerateFromPassword(pw[:], bcryptCost)
	if err != nil {
		panic("userpass: hashing the dummy password: " + err.Error())
	}
	return h
})

type backend struct {
	*fw.Backend
}

// Factory creates a userpass mount.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := newBackend()
	b.Setup(conf)
	go dummyHash() // computed ahead, so the first unknown-user login costs what the others do
	return b, nil
}

func userFields() map[string]*fw.FieldSchema {
	f := map[string]*fw.FieldSchema{
		"username":    {Type: fw.TypeString, Description: "The user's name (case-insensitive)."},
		"password":    {Type: fw.TypeString, Description: "The user's password; stored only as a bcrypt hash."},
		"policies":    {Type: fw.TypeCommaStringSlice, Description: "Deprecated: use token_policies."},
		"ttl":         {Type: fw.TypeDuration, Description: "Deprecated: use token_ttl."},
		"max_ttl":     {Type: fw.TypeDuration, Description: "Deprecated: use token_max_ttl."},
		"bound_cidrs": {Type: fw.TypeCommaStringSlice, Description: "Deprecated: use token_bound_cidrs."},
	}
	fw.AddTokenFields(f)
	return f
}

func newBackend() *backend {
	b := &backend{}
	up, rd, del, list := logical.UpdateOperation, logical.ReadOperation, logical.DeleteOperation, logical.ListOperation
	type opmap = map[logical.Operation]fw.OperationFunc
	b.Backend = &fw.Backend{
		Help: "The userpass auth method: users log in with a name and a password (bcrypt-hashed at rest).",
		PathsSpecial: &logical.Paths{
			Unauthenticated: []string{"login/*"},
			CaseInsensitive: []string{"users/+", "users/+/*", "login/+"},
		},
		Paths: []*fw.Path{
			{
				Pattern:      "login/" + fw.GenericNameRegex("username"),
				Fields:       map[string]*fw.FieldSchema{"username": {Type: fw.TypeString}, "password": {Type: fw.TypeString, Description: "The user's password."}},
				Operations:   opmap{up: b.login},
				HelpSynopsis: "Log in with a user name and password.",
			},
			{
				Pattern:      "users/?",
				Operations:   opmap{list: b.listUsers},
				HelpSynopsis: "List the users.",
			},
			{
				Pattern:      "users/" + fw.GenericNameRegex("username") + "/password",
				Fields:       map[string]*fw.FieldSchema{"username": {Type: fw.TypeString}, "password": {Type: fw.TypeString, Description: "The new password."}},
				Operations:   opmap{up: b.updatePassword},
				HelpSynopsis: "Change a user's password.",
			},
			{
				Pattern: "users/" + fw.GenericNameRegex("username") + "/policies",
				Fields: map[string]*fw.FieldSchema{
					"username":       {Type: fw.TypeString},
					"policies":       {Type: fw.TypeCommaStringSlice, Description: "Deprecated: use token_policies."},
					"token_policies": {Type: fw.TypeCommaStringSlice, Description: "Policies attached to the user's login tokens."},
				},
				Operations:   opmap{up: b.updatePolicies},
				HelpSynopsis: "Change a user's policies.",
			},
			{
				Pattern: "users/" + fw.GenericNameRegex("username"),
				Fields:  userFields(),
				Operations: opmap{
					rd:                      b.readUser,
					logical.CreateOperation: b.writeUser,
					up:                      b.writeUser,
					del:                     b.deleteUser,
				},
				ExistenceCheck: b.userExists,
				HelpSynopsis:   "Create, read, update or delete a user.",
			},
		},
		AuthRenew: b.renew,
	}
	// The core lowercases users/<name> before the ACL check
	// (CaseInsensitive above); the framework refuses any that still
	// arrives otherwise, so the user the ACL checked is the user changed.
	fw.RequireLowercase("username", b.Backend.Paths)
	return b
}

// guard is the mount's login lockout.
func (b *backend) guard() logical.LoginGuard {
	if b.System == nil {
		return logical.NoLoginGuard{}
	}
	return b.System.LoginGuard()
}

// userName is the name a login is for: logins are case-insensitive.
func userName(d *fw.FieldData) string { return strings.ToLower(d.String("username")) }

func (b *backend) user(ctx context.Context, s logical.Storage, name string) (*user, error) {
	if name == "" {
		return nil, nil
	}
	e, err := s.Get(ctx, userPrefix+name)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, nil
	}
	u := new(user)
	if err := json.Unmarshal(e.Value, u); err != nil {
		return nil, err
	}
	return u, nil
}

func (b *backend) putUser(ctx context.Context, s logical.Storage, name string, u *user) error {
	raw, err := json.Marshal(u)
	if err != nil {
		return err
	}
	return s.Put(ctx, &logical.StorageEntry{Key: userPrefix + name, Value: raw})
}

func (b *backend) userExists(ctx context.Context, req *logical.Request, d *fw.FieldData) (bool, error) {
	u, err := b.user(ctx, req.Storage, d.String("username"))
	return u != nil, err
}

// hashPassword checks a new password and returns its bcrypt hash.
func hashPassword(pw string) ([]byte, error) {
	if pw == "" {
		return nil, logical.BadRequest("missing password")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcryptCost)
	if errors.Is(err, bcrypt.ErrPasswordTooLong) {
		return nil, logical.BadRequest("password is longer than 72 bytes, the most bcrypt takes")
	}
	return h, err
}

func (b *backend) writeUser(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	name := d.String("username")
	u, err := b.user(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	creating := u == nil
	if creating {
		u = &user{}
	}
	if pw, ok := d.GetOk("password"); ok || creating {
		s, _ := pw.(string)
		if u.PasswordHash, err = hashPassword(s); err != nil {
			return nil, err
		}
	}
	if err := parseTokenFields(&u.TokenParams, d); err != nil {
		return nil, err
	}
	return nil, b.putUser(ctx, req.Storage, name, u)
}

// parseTokenFields reads the token_* fields and their deprecated names
// (policies, ttl, max_ttl, bound_cidrs), which count only when the new
// name is absent.
func parseTokenFields(p *fw.TokenParams, d *fw.FieldData) error {
	if err := p.ParseTokenFields(d); err != nil {
		return err
	}
	legacy := func(old, current string) (any, bool) {
		if _, ok := d.Raw[current]; ok {
			return nil, false
		}
		return d.GetOk(old)
	}
	if v, ok := legacy("policies", "token_policies"); ok {
		p.TokenPolicies = fw.NormalizePolicies(v.([]string))
	}
	for _, f := range []struct {
		old, current string
		to           *time.Duration
	}{{"ttl", "token_ttl", &p.TokenTTL}, {"max_ttl", "token_max_ttl", &p.TokenMaxTTL}} {
		if v, ok := legacy(f.old, f.current); ok {
			if v.(time.Duration) < 0 {
				return logical.BadRequest("%s must not be negative", f.old)
			}
			*f.to = v.(time.Duration)
		}
	}
	if v, ok := legacy("bound_cidrs", "token_bound_cidrs"); ok {
		cidrs, err := fw.ParseCIDRs("bound_cidrs", v.([]string))
		if err != nil {
			return err
		}
		p.TokenBoundCIDRs = cidrs
	}
	if p.TokenMaxTTL > 0 && p.TokenTTL > p.TokenMaxTTL {
		return logical.BadRequest("token_ttl must not be greater than token_max_ttl")
	}
	return nil
}

func (b *backend) readUser(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	name := d.String("username")
	u, err := b.user(ctx, req.Storage, name)
	if err != nil || u == nil {
		return nil, err
	}
	data := u.ResponseData()
	// The deprecated names, as clients written for them read them.
	data["policies"] = data["token_policies"]
	data["ttl"] = data["token_ttl"]
	data["max_ttl"] = data["token_max_ttl"]
	data["bound_cidrs"] = data["token_bound_cidrs"]
	return &logical.Response{Data: data}, nil
}

func (b *backend) deleteUser(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	name := d.String("username")
	return nil, req.Storage.Delete(ctx, userPrefix+name)
}

func (b *backend) listUsers(ctx context.Context, req *logical.Request, _ *fw.FieldData) (*logical.Response, error) {
	keys, err := req.Storage.List(ctx, userPrefix)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, nil
	}
	return &logical.Response{Data: map[string]any{"keys": keys}}, nil
}

// existingUser is the user a users/<name>/... path names, which must exist.
func (b *backend) existingUser(ctx context.Context, req *logical.Request, d *fw.FieldData) (string, *user, error) {
	name := d.String("username")
	u, err := b.user(ctx, req.Storage, name)
	if err != nil {
		return "", nil, err
	}
	if u == nil {
		return "", nil, logical.BadRequest("no user is named %q", name)
	}
	return name, u, nil
}

func (b *backend) updatePassword(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	name, u, err := b.existingUser(ctx, req, d)
	if err != nil {
		return nil, err
	}
	if u.PasswordHash, err = hashPassword(d.String("password")); err != nil {
		return nil, err
	}
	return nil, b.putUser(ctx, req.Storage, name, u)
}

func (b *backend) updatePolicies(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	name, u, err := b.existingUser(ctx, req, d)
	if err != nil {
		return nil, err
	}
	pols, ok := d.GetOk("token_policies")
	if !ok {
		pols, ok = d.GetOk("policies")
	}
	if !ok {
		return nil, logical.BadRequest("missing token_policies (or policies)")
	}
	u.TokenPolicies = fw.NormalizePolicies(pols.([]string))
	return nil, b.putUser(ctx, req.Storage, name, u)
}

// login checks a password. A locked-out name is refused before any check;
// an unknown name is compared against a dummy hash, so it costs the same as
// a wrong password and fails the same way, and counts toward its lockout.
func (b *backend) login(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	name := userName(d)
	password := d.String("password")
	if password == "" {
		return nil, logical.BadRequest("missing password")
	}
	guard := b.guard()
	if guard.Locked(ctx, name) {
		return nil, logical.ErrLoginLocked
	}
	u, err := b.user(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	hash := dummyHash()
	if u != nil {
		hash = u.PasswordHash
	}
	// bcrypt reads only the first 72 bytes, and no stored password is
	// longer (hashPassword refuses it): a longer one is never the password,
	// though it is still compared, so it costs what any wrong one does.
	match := bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil && len(password) <= bcryptMaxPassword
	if u == nil || !match {
		guard.Failed(ctx, name)
		return nil, errInvalidCredentials
	}
	if !fw.RemoteAddrAllowed(req.RemoteAddr, u.TokenBoundCIDRs) {
		// Vault refuses the login itself, not only the token's later use.
		return nil, logical.ErrPermissionDenied
	}
	guard.Succeeded(ctx, name)
	auth := &logical.Auth{
		DisplayName: name,
		Metadata:    map[string]string{"username": name},
		Alias:       &logical.Alias{Name: name},
	}
	u.PopulateAuth(auth)
	return &logical.Response{Auth: auth}, nil
}

// renew allows a login token to be renewed while its user exists with the
// same policies, on the user's current TTLs.
func (b *backend) renew(ctx context.Context, req *logical.Request, _ *fw.FieldData) (*logical.Response, error) {
	name := req.Auth.Metadata["username"]
	u, err := b.user(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, logical.BadRequest("user %q no longer exists, so its token cannot be renewed", name)
	}
	if !samePolicies(u.TokenPolicies, req.Auth.TokenPolicies) {
		return nil, logical.BadRequest("policies have changed, not renewing")
	}
	return &logical.Response{Auth: &logical.Auth{
		TTL:      u.TokenTTL,
		MaxTTL:   u.TokenMaxTTL,
		Period:   u.TokenPeriod,
		Policies: req.Auth.Policies,
	}}, nil
}

// samePolicies compares two policy lists as sets, "default" aside.
func samePolicies(a, b []string) bool {
	norm := func(in []string) []string {
		return slices.DeleteFunc(fw.NormalizePolicies(in), func(p string) bool { return p == "default" })
	}
	return slices.Equal(norm(a), norm(b))
}
