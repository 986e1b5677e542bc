package database

import (
	"context"
	"fmt"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/logical/framework"
)

// credsType is the secret type of dynamic credentials' leases.
const credsType = "creds"

// maxIdentifierLength is the most bytes PostgreSQL keeps of a name.
const maxIdentifierLength = 63

// walKindUser is the kind of the write-ahead log entry written before a
// dynamic user is created and deleted with the creation of its lease: if
// Arca stops before the user's lease exists, the rollback drops the user.
const walKindUser = "creds-user"

func (b *backend) credsPath() *framework.Path {
	return &framework.Path{
		Pattern:      "creds/" + framework.GenericNameRegex("name"),
		Fields:       nameField("role"),
		Operations:   map[logical.Operation]framework.OperationFunc{logical.ReadOperation: b.readCreds},
		HelpSynopsis: "Create a database user for a role and return its credentials, under a lease.",
	}
}

func (b *backend) credsSecret() *framework.Secret {
	return &framework.Secret{
		Type: credsType,
		Fields: map[string]*framework.FieldSchema{
			"username": {Type: framework.TypeString, Description: "The database user."},
			"password": {Type: framework.TypeString, Description: "Its password."},
		},
		Renew:  b.renewCreds,
		Revoke: b.revokeCreds,
	}
}

// issued is what a lease keeps about the user it stands for.
type issued struct {
	Username string `json:"username"`
	Role     string `json:"role"`
	DBName   string `json:"db_name"`
}

func issuedFrom(internal map[string]any) (*issued, error) {
	u := &issued{}
	u.Username, _ = internal["username"].(string)
	u.Role, _ = internal["role"].(string)
	u.DBName, _ = internal["db_name"].(string)
	if u.Username == "" || u.DBName == "" {
		return nil, fmt.Errorf("the lease does not name a database user")
	}
	return u, nil
}

func (u *issued) internalData() map[string]any {
	return map[string]any{"username": u.Username, "role": u.Role, "db_name": u.DBName}
}

// readCreds creates a user for the role, valid until its lease's TTL ends.
// A write-ahead log entry names the user until its lease exists, so a
// crash in between leaves no user behind.
func (b *backend) readCreds(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.String("name")
	role, err := loadRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if role == nil {
		return nil, logical.BadRequest("unknown role: %q", name)
	}
	p, cfg, err := b.connection(ctx, req.Storage, role.DBName)
	if err != nil {
		return nil, err
	}
	if !cfg.allows(name) {
		return nil, logical.BadRequest("%q is not an allowed role for database %q", name, role.DBName)
	}
	tmpl, err := parseUsernameTemplate(cfg.UsernameTemplate, b.now)
	if err != nil {
		return nil, logical.BadRequest("username_template of database %q: %v", role.DBName, err)
	}
	displayName := "token"
	if req.Auth != nil && req.Auth.DisplayName != "" {
		displayName = req.Auth.DisplayName
	}
	username, err := generateUsername(tmpl, displayName, name)
	if err != nil {
		return nil, logical.BadRequest("%v", err)
	}
	// PostgreSQL would cut a longer name silently, and the user could then
	// not be found to be revoked.
	if len(username) > maxIdentifierLength {
		return nil, logical.BadRequest("the username_template of database %q produced a username of %d bytes; PostgreSQL keeps at most %d", role.DBName, len(username), maxIdentifierLength)
	}
	password, err := b.generatePassword(ctx, cfg.PasswordPolicy)
	if err != nil {
		return nil, err
	}
	ttl, warnings := logical.CalculateTTL(b.system, logical.LeaseTerms{Default: role.DefaultTTL, Max: role.MaxTTL})
	u := &issued{Username: username, Role: name, DBName: role.DBName}

	walID, err := b.PutWAL(ctx, req.Storage, walKindUser, u)
	if err != nil {
		return nil, err
	}
	dctx, cancel := withTimeout(ctx)
	defer cancel()
	sub := substitution{name: username, password: password, expiration: b.now().Add(ttl)}
	if err := p.newUser(dctx, role.CreationStatements, role.RollbackStatements, sub); err != nil {
		// Nothing of the user remains (one transaction): the entry has
		// nothing left to undo.
		if derr := b.DeleteWAL(ctx, req.Storage, walID); derr != nil {
			b.logger.Warn("removing the write-ahead log entry of a user that was not created", "error", derr)
		}
		return nil, logical.BadRequest("role %q: %v", name, err)
	}
	// The entry stays until the core has stored the lease, and goes in
	// the same transaction (Secret.WALKey): a stop in between leaves it,
	// and the rollback drops the user nobody holds a lease for.
	resp := b.Secret(credsType).Response(map[string]any{"username": username, "password": password}, u.internalData())
	resp.Secret.WALKey = framework.WALKey(walID)
	resp.Secret.TTL = ttl
	resp.Secret.MaxTTL = role.MaxTTL
	resp.Warnings = append(resp.Warnings, warnings...)
	return resp, nil
}

// renewCreds extends the user's validity to the lease's new end, which the
// core computes by the same rule (logical.CalculateTTL).
func (b *backend) renewCreds(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	u, err := issuedFrom(req.Secret.InternalData)
	if err != nil {
		return nil, err
	}
	role, err := loadRole(ctx, req.Storage, u.Role)
	if err != nil {
		return nil, err
	}
	if role == nil {
		return nil, logical.BadRequest("the role %q that issued this lease was deleted: the lease cannot be renewed", u.Role)
	}
	ttl, _ := logical.CalculateTTL(b.system, logical.LeaseTerms{
		Requested: req.Secret.Increment, Default: role.DefaultTTL, Max: role.MaxTTL, Issued: req.Secret.IssueTime,
	})
	p, _, err := b.connection(ctx, req.Storage, u.DBName)
	if err != nil {
		return nil, err
	}
	dctx, cancel := withTimeout(ctx)
	defer cancel()
	if err := p.renewUser(dctx, role.RenewStatements, substitution{name: u.Username, expiration: b.now().Add(ttl)}); err != nil {
		return nil, fmt.Errorf("renewing user %q: %w", u.Username, err)
	}
	secret := *req.Secret
	secret.TTL, secret.MaxTTL = role.DefaultTTL, role.MaxTTL
	return &logical.Response{Secret: &secret}, nil
}

// revokeCreds removes the user, with its role's revocation statements or,
// when the role has none or was deleted, by default. A user already gone is
// revoked.
func (b *backend) revokeCreds(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	u, err := issuedFrom(req.Secret.InternalData)
	if err != nil {
		return nil, err
	}
	return nil, b.dropIssued(ctx, req.Storage, u)
}

func (b *backend) dropIssued(ctx context.Context, s logical.Storage, u *issued) error {
	role, err := loadRole(ctx, s, u.Role)
	if err != nil {
		return err
	}
	var stmts []string
	if role != nil {
		stmts = role.RevocationStatements
	}
	p, _, err := b.connection(ctx, s, u.DBName)
	if err != nil {
		return err
	}
	dctx, cancel := withTimeout(ctx)
	defer cancel()
	if err := p.revokeUser(dctx, stmts, u.Username); err != nil {
		return fmt.Errorf("revoking user %q: %w", u.Username, err)
	}
	return nil
}

// walRollback undoes what a stop interrupted: it drops a user whose lease
// was never created, and completes a root rotation.
func (b *backend) walRollback(ctx context.Context, req *logical.Request, kind string, data any) error {
	m, _ := data.(map[string]any)
	switch kind {
	case walKindRoot:
		return b.rollbackRootRotation(ctx, req.Storage, m)
	case walKindUser:
	default:
		return nil
	}
	u, err := issuedFrom(m)
	if err != nil {
		return nil // nothing this engine can act on
	}
	return b.dropIssued(ctx, req.Storage, u)
}
