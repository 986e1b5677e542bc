package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// pluginName is the only plugin Arca ships, under Vault's name for it.
const pluginName = "postgresql-database-plugin"

// Default statements, as Vault's PostgreSQL plugin uses them.
var (
	defaultRenewStatements    = []string{`ALTER ROLE "{{name}}" VALID UNTIL '{{expiration}}'`}
	defaultRotationStatements = []string{`ALTER ROLE "{{name}}" WITH PASSWORD '{{password}}'`}
)

// Placeholder stand-ins while a connection_url is parsed: plain words, so
// they survive URL and keyword/value parsing unchanged.
const (
	userSentinel     = "arcaplaceholderusername"
	passwordSentinel = "arcaplaceholderpassword"
)

// connSettings is what a database/config entry says about connecting.
type connSettings struct {
	URL            string
	Username       string
	Password       string
	PasswordAuth   string // password_authentication
	MaxOpen        int
	MaxIdle        int
	MaxLifetime    time.Duration
	ConnectTimeout time.Duration // 0: pgx's default
}

// checkConnectionURL refuses a connection_url that carries a password of
// its own: the stored URL must never hold one. {{password}} is allowed.
func checkConnectionURL(raw string) error {
	if strings.TrimSpace(raw) == "" {
		return errors.New("connection_url is empty")
	}
	s := strings.NewReplacer("{{username}}", userSentinel, "{{password}}", passwordSentinel).Replace(raw)
	if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
		u, err := url.Parse(s)
		if err != nil {
			return errors.New("connection_url is not a valid URL")
		}
		if p, ok := u.User.Password(); ok && p != passwordSentinel {
			return errors.New("connection_url must not contain a password: write {{password}} in its place and set the password field")
		}
		if p, ok := u.Query()["password"]; ok && (len(p) != 1 || p[0] != passwordSentinel) {
			return errors.New("connection_url must not contain a password parameter: write {{password}} in its place and set the password field")
		}
		return nil
	}
	for _, m := range dsnPassword.FindAllStringSubmatch(s, -1) {
		if strings.Trim(m[1], "'") != passwordSentinel {
			return errors.New("connection_url must not contain a password: write password={{password}} and set the password field")
		}
	}
	return nil
}

// dsnPassword finds password=value in a keyword/value connection string.
var dsnPassword = regexp.MustCompile(`(?i)(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S*)`)

// connConfig builds the connection configuration for username and password
// from the connection_url template. Values are set on the parsed
// configuration, never spliced into the URL, so no escaping can go wrong.
func (cs *connSettings) connConfig(username, password string) (*pgx.ConnConfig, error) {
	s := strings.NewReplacer("{{username}}", userSentinel, "{{password}}", passwordSentinel).Replace(cs.URL)
	cfg, err := pgx.ParseConfig(s)
	if err != nil {
		// pgx's message may quote the URL; the URL holds no password, but
		// say only what is wrong.
		return nil, errors.New("connection_url cannot be parsed as a PostgreSQL URL or keyword/value string")
	}
	// The configured (or tested) user and password win over whatever the
	// URL names, placeholder or not; fallback hosts share them.
	if username != "" || cfg.User == userSentinel {
		cfg.User = username
	}
	if password != "" || cfg.Password == passwordSentinel {
		cfg.Password = password
	}
	if cs.ConnectTimeout > 0 {
		cfg.ConnectTimeout = cs.ConnectTimeout
	}
	return cfg, nil
}

// postgres is a connection pool to one configured database, acting as the
// configured admin user.
type postgres struct {
	settings connSettings
	db       *sql.DB
}

// openPostgres opens the admin's pool. Connections are made lazily.
func openPostgres(cs connSettings) (*postgres, error) {
	cfg, err := cs.connConfig(cs.Username, cs.Password)
	if err != nil {
		return nil, err
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(cs.MaxOpen)
	idle := cs.MaxIdle
	if idle == 0 || idle > cs.MaxOpen && cs.MaxOpen > 0 {
		idle = cs.MaxOpen // Vault's rule: 0 means as many as may be open
	}
	db.SetMaxIdleConns(idle)
	db.SetConnMaxLifetime(cs.MaxLifetime)
	return &postgres{settings: cs, db: db}, nil
}

func (p *postgres) close() { p.db.Close() }

// redact removes the secrets of p and of extra from an error's message, so
// that no password reaches a client or a log.
func (p *postgres) redact(err error, extra ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, s := range append(extra, p.settings.Password) {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return errors.New(msg)
}

// verify connects as the admin.
func (p *postgres) verify(ctx context.Context) error {
	return p.redact(p.db.PingContext(ctx))
}

// exec runs statements in one transaction: all of them or none.
func (p *postgres) exec(ctx context.Context, stmts []string, secrets ...string) error {
	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return p.redact(err, secrets...)
	}
	defer tx.Rollback()
	for i, stmt := range stmts {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("statement %d of %d: %w", i+1, len(stmts), p.redact(err, secrets...))
		}
	}
	return p.redact(tx.Commit(), secrets...)
}

// newUser creates a user from the creation statements in one transaction.
// On failure nothing of the transaction remains, and the rollback
// statements then undo what a statement may have done outside it.
func (p *postgres) newUser(ctx context.Context, creation, rollback []string, sub substitution) error {
	plain := sub.password
	sub, err := p.hashPassword(sub)
	if err != nil {
		return err
	}
	stmts, err := sub.render(splitStatements(creation))
	if err != nil {
		return err
	}
	if len(stmts) == 0 {
		return errors.New("the role has no creation_statements")
	}
	err = p.exec(ctx, stmts, plain, sub.password)
	if err == nil {
		return nil
	}
	if rb, rerr := sub.render(splitStatements(rollback)); rerr == nil && len(rb) > 0 {
		if rerr := p.exec(ctx, rb, plain, sub.password); rerr != nil {
			return fmt.Errorf("creating the user: %w; then the rollback_statements failed: %w", err, rerr)
		}
	}
	return fmt.Errorf("creating the user: %w", err)
}

// renewUser extends a user's validity to expiration.
func (p *postgres) renewUser(ctx context.Context, renew []string, sub substitution) error {
	if len(renew) == 0 {
		renew = defaultRenewStatements
	}
	stmts, err := sub.render(splitStatements(renew))
	if err != nil {
		return err
	}
	return p.exec(ctx, stmts)
}

// setPassword changes a user's password with the rotation statements.
func (p *postgres) setPassword(ctx context.Context, rotation []string, sub substitution) error {
	if len(rotation) == 0 {
		rotation = defaultRotationStatements
	}
	plain := sub.password
	sub, err := p.hashPassword(sub)
	if err != nil {
		return err
	}
	stmts, err := sub.render(splitStatements(rotation))
	if err != nil {
		return err
	}
	return p.exec(ctx, stmts, plain, sub.password)
}

// hashPassword puts the SCRAM-SHA-256 verifier of sub's password in its
// place when the configuration asks for scram-sha-256, so that statements
// carry the verifier and never the plaintext.
func (p *postgres) hashPassword(sub substitution) (substitution, error) {
	if p.settings.PasswordAuth != passwordAuthSCRAM || sub.password == "" {
		return sub, nil
	}
	v, err := scramVerifier(sub.password)
	if err != nil {
		return sub, err
	}
	sub.password = v
	return sub, nil
}

// revokeUser removes a user with the revocation statements or, without
// them, by default. Removing a user that no longer exists succeeds.
func (p *postgres) revokeUser(ctx context.Context, revocation []string, username string) error {
	if len(revocation) > 0 {
		stmts, err := substitution{name: username}.render(splitStatements(revocation))
		if err != nil {
			return err
		}
		return p.exec(ctx, stmts)
	}
	return p.dropUser(ctx, username)
}

// dropUser is the default revocation: the user can no longer log in, its
// sessions end, what it owns passes to the admin (so no data is dropped
// with it), its privileges are revoked and the role is dropped.
func (p *postgres) dropUser(ctx context.Context, username string) error {
	if exists, err := p.userExists(ctx, username); err != nil || !exists {
		return err
	}
	role := pgx.Identifier{username}.Sanitize()
	if _, err := p.db.ExecContext(ctx, `ALTER ROLE `+role+` NOLOGIN`); err != nil {
		return fmt.Errorf("disabling the login of the user: %w", p.redact(err))
	}
	if _, err := p.db.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()`, username); err != nil {
		return fmt.Errorf("ending the sessions of the user: %w", p.redact(err))
	}
	err := p.exec(ctx, []string{
		`REASSIGN OWNED BY ` + role + ` TO CURRENT_USER`,
		`DROP OWNED BY ` + role,
		`DROP ROLE IF EXISTS ` + role,
	})
	if err != nil {
		return fmt.Errorf("dropping the user: %w", err)
	}
	return nil
}

// userExists reports whether the database has a role named username.
func (p *postgres) userExists(ctx context.Context, username string) (bool, error) {
	var exists bool
	err := p.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, username).Scan(&exists)
	return exists, p.redact(err)
}

// login connects as username with password and runs a query: the test step
// of a rotation.
func (p *postgres) login(ctx context.Context, username, password string) error {
	cfg, err := p.settings.connConfig(username, password)
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return p.redact(err, password)
	}
	defer conn.Close(ctx)
	var one int
	return p.redact(conn.QueryRow(ctx, "SELECT 1").Scan(&one), password)
}
