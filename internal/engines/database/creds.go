package database

import (
	"context"
	"fmt"
	"time"

	"github.com/arcasec/arca/internal/logical"
)

// issued is what the engine keeps about a user it created, to renew and
// remove it later.
type issued struct {
	Username string
	Role     string
	DBName   string
}

// createUser creates a database user for role, valid until expiration.
// Failure leaves no user behind: the creation runs in one transaction, and
// the rollback statements run after a failed one.
func (b *backend) createUser(ctx context.Context, s logical.Storage, roleName, displayName string, expiration time.Time) (*issued, string, error) {
	role, err := loadRole(ctx, s, roleName)
	if err != nil {
		return nil, "", err
	}
	if role == nil {
		return nil, "", logical.BadRequest("unknown role: %q", roleName)
	}
	p, cfg, err := b.connection(ctx, s, role.DBName)
	if err != nil {
		return nil, "", err
	}
	if !cfg.allows(roleName) {
		return nil, "", logical.BadRequest("%q is not an allowed role for database %q", roleName, role.DBName)
	}
	tmpl, err := parseUsernameTemplate(cfg.UsernameTemplate, b.now)
	if err != nil {
		return nil, "", logical.BadRequest("username_template of database %q: %v", role.DBName, err)
	}
	username, err := generateUsername(tmpl, displayName, roleName)
	if err != nil {
		return nil, "", logical.BadRequest("%v", err)
	}
	password, err := generatePassword()
	if err != nil {
		return nil, "", err
	}
	dctx, cancel := withTimeout(ctx)
	defer cancel()
	sub := substitution{name: username, password: password, expiration: expiration}
	if err := p.newUser(dctx, role.CreationStatements, role.RollbackStatements, sub); err != nil {
		return nil, "", logical.BadRequest("role %q: %v", roleName, err)
	}
	return &issued{Username: username, Role: roleName, DBName: role.DBName}, password, nil
}

// renewUser extends an issued user's validity to expiration.
func (b *backend) renewUser(ctx context.Context, s logical.Storage, u *issued, expiration time.Time) error {
	role, err := loadRole(ctx, s, u.Role)
	if err != nil {
		return err
	}
	if role == nil {
		return fmt.Errorf("the role %q that issued the user was deleted", u.Role)
	}
	p, _, err := b.connection(ctx, s, u.DBName)
	if err != nil {
		return err
	}
	dctx, cancel := withTimeout(ctx)
	defer cancel()
	return p.renewUser(dctx, role.RenewStatements, substitution{name: u.Username, expiration: expiration})
}

// revokeUser removes an issued user, with its role's revocation statements
// or, when it has none or was deleted, by default.
func (b *backend) revokeUser(ctx context.Context, s logical.Storage, u *issued) error {
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
	return p.revokeUser(dctx, stmts, u.Username)
}
