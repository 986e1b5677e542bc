package database

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/logical/framework"
)

// dbConfig is a stored database/config/<name>.
type dbConfig struct {
	PluginName             string        `json:"plugin_name"`
	PluginVersion          string        `json:"plugin_version"`
	ConnectionURL          string        `json:"connection_url"`
	Username               string        `json:"username"`
	Password               string        `json:"password"`
	AllowedRoles           []string      `json:"allowed_roles"`
	VerifyConnection       bool          `json:"verify_connection"`
	MaxOpenConnections     int           `json:"max_open_connections"`
	MaxIdleConnections     int           `json:"max_idle_connections"`
	MaxConnectionLifetime  time.Duration `json:"max_connection_lifetime"`
	UsernameTemplate       string        `json:"username_template"`
	PasswordPolicy         string        `json:"password_policy"`
	RootRotationStatements []string      `json:"root_rotation_statements"`
	// PasswordAuthentication is how passwords reach PostgreSQL:
	// "password" (or empty) sends them for PostgreSQL to hash,
	// "scram-sha-256" sends a verifier computed here.
	PasswordAuthentication string `json:"password_authentication,omitempty"`
	// Details are the plugin fields as the client submitted them, password
	// excepted: a read returns them unchanged in type and form ("3600s"
	// stays "3600s"), which Terraform compares against its own state.
	Details map[string]any `json:"details"`
}

// pluginFields are the fields read back under connection_details.
var pluginFields = []string{"connection_url", "username", "max_open_connections", "max_idle_connections",
	"max_connection_lifetime", "username_template", "disable_escaping", "password_authentication"}

func (c *dbConfig) connectionDetails() map[string]any {
	out := make(map[string]any, len(c.Details))
	for k, v := range c.Details {
		out[k] = v
	}
	return out
}

func (c *dbConfig) settings() connSettings {
	return connSettings{
		URL: c.ConnectionURL, Username: c.Username, Password: c.Password, PasswordAuth: c.PasswordAuthentication,
		MaxOpen: c.MaxOpenConnections, MaxIdle: c.MaxIdleConnections, MaxLifetime: c.MaxConnectionLifetime,
		ConnectTimeout: verifyTimeout,
	}
}

// allows reports whether role may use this database: allowed_roles lists
// it, or holds "*". An empty list allows no role.
func (c *dbConfig) allows(role string) bool {
	return slices.Contains(c.AllowedRoles, "*") || slices.Contains(c.AllowedRoles, role)
}

func loadConfig(ctx context.Context, s logical.Storage, name string) (*dbConfig, error) {
	var c dbConfig
	found, err := getJSON(ctx, s, configPrefix+name, &c)
	if !found || err != nil {
		return nil, err
	}
	return &c, nil
}

func (b *backend) configPaths() []*framework.Path {
	fields := map[string]*framework.FieldSchema{
		"name":                     {Type: framework.TypeString, Description: "Name of this database connection."},
		"plugin_name":              {Type: framework.TypeString, Description: "The database plugin: postgresql-database-plugin."},
		"plugin_version":           {Type: framework.TypeString, Description: "Accepted for compatibility; Arca's plugin is built in."},
		"verify_connection":        {Type: framework.TypeBool, Default: true, Description: "Connect to the database before saving the configuration."},
		"allowed_roles":            {Type: framework.TypeCommaStringSlice, Description: `Roles that may use this connection; "*" allows every role.`},
		"root_rotation_statements": statementsField("Statements that change the admin's password on rotate-root; {{username}} and {{password}}."),
		"password_policy":          {Type: framework.TypeString, Description: "the password policy (sys/policies/password/<name>) generated passwords follow; Vault's default shape when empty"},
		"connection_url":           {Type: framework.TypeString, Description: "Connection URL with {{username}} and {{password}} placeholders; it must not hold a password."},
		"username":                 {Type: framework.TypeString, Description: "The admin user Arca connects as."},
		"password":                 {Type: framework.TypeString, Description: "The admin user's password; never returned."},
		"max_open_connections":     {Type: framework.TypeInt, Default: 4, Description: "Most connections open to the database at once."},
		"max_idle_connections":     {Type: framework.TypeInt, Description: "Most idle connections kept; 0 means max_open_connections."},
		"max_connection_lifetime":  {Type: framework.TypeDuration, Description: "Longest a connection is reused; 0 means without limit."},
		"username_template":        {Type: framework.TypeString, Description: "Template of generated usernames."},
		"disable_escaping":         {Type: framework.TypeBool, Description: "Accepted for compatibility: Arca never splices the username or password into the URL, so nothing needs escaping."},
		"password_authentication":  {Type: framework.TypeString, Default: "password", Description: "How passwords are sent to PostgreSQL: password (PostgreSQL hashes them) or scram-sha-256 (Arca sends a SCRAM-SHA-256 verifier, so the plaintext never reaches the database)."},
	}
	exists := func(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
		c, err := loadConfig(ctx, req.Storage, d.String("name"))
		return c != nil, err
	}
	return []*framework.Path{
		{
			Pattern:      "config/?",
			Operations:   map[logical.Operation]framework.OperationFunc{logical.ListOperation: b.listConfigs},
			HelpSynopsis: "List the configured database connections.",
		},
		{
			Pattern: "config/" + framework.GenericNameRegex("name"),
			Fields:  fields,
			Operations: map[logical.Operation]framework.OperationFunc{
				logical.ReadOperation:   b.readConfig,
				logical.CreateOperation: b.writeConfig,
				logical.UpdateOperation: b.writeConfig,
				logical.DeleteOperation: b.deleteConfig,
			},
			ExistenceCheck: exists,
			HelpSynopsis:   "Configure a connection to a database.",
		},
		{
			Pattern:      "reset/" + framework.GenericNameRegex("name"),
			Fields:       nameField("database connection"),
			Operations:   map[logical.Operation]framework.OperationFunc{logical.UpdateOperation: b.resetConfig},
			HelpSynopsis: "Close a database connection, so the next use reconnects with the stored configuration.",
		},
		{
			Pattern:      "rotate-root/" + framework.GenericNameRegex("name"),
			Fields:       nameField("database connection"),
			Operations:   map[logical.Operation]framework.OperationFunc{logical.UpdateOperation: b.rotateRoot},
			HelpSynopsis: "Replace the admin user's password with one only Arca knows.",
		},
	}
}

func (b *backend) listConfigs(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	return list(ctx, req.Storage, configPrefix)
}

func (b *backend) readConfig(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	c, err := loadConfig(ctx, req.Storage, d.String("name"))
	if err != nil || c == nil {
		return nil, err
	}
	roles := c.AllowedRoles
	if roles == nil {
		roles = []string{}
	}
	return &logical.Response{Data: map[string]any{
		"plugin_name":    c.PluginName,
		"plugin_version": c.PluginVersion,
		"allowed_roles":  roles,
		// The password is never returned: it is not part of the details.
		"connection_details":                 c.connectionDetails(),
		"verify_connection":                  c.VerifyConnection,
		"password_policy":                    c.PasswordPolicy,
		"root_credentials_rotate_statements": nonNil(c.RootRotationStatements),
	}}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// writeConfig creates or updates a configuration. On update, fields the
// request leaves out keep their stored values.
func (b *backend) writeConfig(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.String("name")
	c, err := loadConfig(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	isNew := c == nil
	if isNew {
		c = &dbConfig{}
	}
	setString := func(field string, dst *string) {
		if v, ok := d.GetOk(field); ok {
			*dst = v.(string)
		}
	}
	setString("plugin_name", &c.PluginName)
	setString("plugin_version", &c.PluginVersion)
	setString("connection_url", &c.ConnectionURL)
	setString("username", &c.Username)
	setString("password", &c.Password)
	setString("username_template", &c.UsernameTemplate)
	setString("password_policy", &c.PasswordPolicy)
	if _, ok := d.GetOk("password_authentication"); ok || isNew {
		c.PasswordAuthentication = d.String("password_authentication")
	}
	if v, ok := d.GetOk("allowed_roles"); ok {
		c.AllowedRoles = v.([]string)
	}
	if v, ok := d.GetOk("root_rotation_statements"); ok {
		c.RootRotationStatements = cleanStatements(v.([]string))
	}
	if _, ok := d.GetOk("verify_connection"); ok || isNew {
		c.VerifyConnection = d.Bool("verify_connection")
	}
	if _, ok := d.GetOk("max_open_connections"); ok || isNew {
		c.MaxOpenConnections = d.Int("max_open_connections")
	}
	if _, ok := d.GetOk("max_idle_connections"); ok {
		c.MaxIdleConnections = d.Int("max_idle_connections")
	}
	if _, ok := d.GetOk("max_connection_lifetime"); ok {
		c.MaxConnectionLifetime = d.Duration("max_connection_lifetime")
	}

	if c.Details == nil {
		c.Details = map[string]any{}
	}
	for _, f := range pluginFields {
		if v, ok := d.Raw[f]; ok {
			c.Details[f] = v
		}
	}
	switch {
	case c.PasswordAuthentication != "" && c.PasswordAuthentication != passwordAuthPassword && c.PasswordAuthentication != passwordAuthSCRAM:
		return nil, logical.BadRequest("password_authentication %q is not supported: use %q or %q", c.PasswordAuthentication, passwordAuthPassword, passwordAuthSCRAM)
	case c.PluginName == "":
		return nil, logical.BadRequest("plugin_name is required")
	case c.PluginName != pluginName:
		return nil, logical.BadRequest("plugin_name %q is not supported: Arca's database plugin is %q", c.PluginName, pluginName)
	case c.MaxOpenConnections < 0:
		return nil, logical.BadRequest("max_open_connections must not be negative")
	case c.MaxIdleConnections < 0:
		return nil, logical.BadRequest("max_idle_connections must not be negative")
	case c.MaxConnectionLifetime < 0:
		return nil, logical.BadRequest("max_connection_lifetime must not be negative")
	}
	if err := checkConnectionURL(c.ConnectionURL); err != nil {
		return nil, logical.BadRequest("%v", err)
	}
	if _, err := parseUsernameTemplate(c.UsernameTemplate, b.now); err != nil {
		return nil, logical.BadRequest("username_template: %v", err)
	}

	if c.VerifyConnection {
		p, err := openPostgres(c.settings())
		if err != nil {
			return nil, logical.BadRequest("%v", err)
		}
		vctx, cancel := withTimeout(ctx)
		err = p.verify(vctx)
		cancel()
		p.close()
		if err != nil {
			return nil, logical.BadRequest("error verifying the connection to database %q: %v", name, err)
		}
	}
	if err := putJSON(ctx, req.Storage, configPrefix+name, c); err != nil {
		return nil, err
	}
	b.forget(name)
	return nil, nil
}

func (b *backend) deleteConfig(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.String("name")
	if err := req.Storage.Delete(ctx, configPrefix+name); err != nil {
		return nil, err
	}
	b.forget(name)
	return nil, nil
}

func (b *backend) resetConfig(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.String("name")
	c, err := loadConfig(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, logical.BadRequest("no database configuration named %q", name)
	}
	b.forget(name)
	return nil, nil
}

// rotateRoot replaces the admin's password with a generated one that is
// stored and never returned. The new password is tested by logging in with
// it before it replaces the stored one; if the database took it but storing
// it fails, the old one is set back.
func (b *backend) rotateRoot(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.String("name")
	b.rotating.Lock()
	defer b.rotating.Unlock()
	p, c, err := b.connection(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if c.Username == "" {
		return nil, logical.BadRequest("database %q has no username to rotate", name)
	}
	newPassword, err := b.generatePassword(ctx, c.PasswordPolicy)
	if err != nil {
		return nil, err
	}
	stmts := c.RootRotationStatements
	if len(stmts) == 0 {
		stmts = []string{`ALTER ROLE "{{username}}" WITH PASSWORD '{{password}}'`}
	}
	// Should Arca stop between setting the password and storing it, the
	// write-ahead log entry lets the rollback store whichever password
	// the database took.
	walID, err := b.PutWAL(ctx, req.Storage, walKindRoot, &rootRotation{DBName: name, Password: newPassword})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := b.DeleteWAL(ctx, req.Storage, walID); err != nil {
			b.logger.Warn("removing the write-ahead log entry of a root rotation", "database", name, "error", err)
		}
	}()
	dctx, cancel := withTimeout(ctx)
	defer cancel()
	if err := p.setPassword(dctx, stmts, substitution{name: c.Username, password: newPassword}); err != nil {
		return nil, logical.BadRequest("rotating the root credentials of database %q: %v", name, err)
	}
	old := c.Password
	c.Password = newPassword
	err = p.login(dctx, c.Username, newPassword)
	if err == nil {
		if err = putJSON(ctx, req.Storage, configPrefix+name, c); err == nil {
			b.forget(name)
			return nil, nil
		}
	}
	// The new password did not take or could not be stored: keep the old.
	if rerr := p.setPassword(dctx, stmts, substitution{name: c.Username, password: old}); rerr != nil {
		b.logger.Error("rotate-root failed and the old admin password could not be restored", "database", name, "error", rerr)
	}
	return nil, fmt.Errorf("rotating the root credentials of database %q failed and the previous ones were kept: %w", name, p.redact(err, newPassword))
}

// walKindRoot is the kind of the write-ahead log entry of a root rotation.
const walKindRoot = "root-rotation"

// rootRotation is what a root rotation's write-ahead log entry holds: the
// password it was about to set.
type rootRotation struct {
	DBName   string `json:"db_name"`
	Password string `json:"password"`
}

// rollbackRootRotation finishes a root rotation interrupted by a stop: if
// the stored admin password no longer logs in but the one the rotation was
// setting does, that one is stored.
func (b *backend) rollbackRootRotation(ctx context.Context, s logical.Storage, data map[string]any) error {
	dbName, _ := data["db_name"].(string)
	password, _ := data["password"].(string)
	b.rotating.Lock()
	defer b.rotating.Unlock()
	p, c, err := b.connection(ctx, s, dbName)
	if err != nil || c.Username == "" {
		return nil // the configuration is gone: nothing to repair
	}
	dctx, cancel := withTimeout(ctx)
	defer cancel()
	if p.login(dctx, c.Username, c.Password) == nil {
		return nil
	}
	if err := p.login(dctx, c.Username, password); err != nil {
		return fmt.Errorf("neither the stored admin password of database %q nor the one an interrupted rotation set logs in", dbName)
	}
	c.Password = password
	if err := putJSON(ctx, s, configPrefix+dbName, c); err != nil {
		return err
	}
	b.forget(dbName)
	b.logger.Warn("an interrupted root rotation was completed", "database", dbName)
	return nil
}
