package database

import (
	"context"
	"time"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/logical/framework"
)

// dynamicRole is a stored database/roles/<name>: how to create, renew and
// remove the users it issues.
type dynamicRole struct {
	DBName               string        `json:"db_name"`
	CreationStatements   []string      `json:"creation_statements"`
	RevocationStatements []string      `json:"revocation_statements"`
	RollbackStatements   []string      `json:"rollback_statements"`
	RenewStatements      []string      `json:"renew_statements"`
	DefaultTTL           time.Duration `json:"default_ttl"`
	MaxTTL               time.Duration `json:"max_ttl"`
}

func loadRole(ctx context.Context, s logical.Storage, name string) (*dynamicRole, error) {
	var r dynamicRole
	found, err := getJSON(ctx, s, rolePrefix+name, &r)
	if !found || err != nil {
		return nil, err
	}
	return &r, nil
}

func (b *backend) rolePaths() []*framework.Path {
	fields := map[string]*framework.FieldSchema{
		"name":                  {Type: framework.TypeString, Description: "Name of the role."},
		"db_name":               {Type: framework.TypeString, Description: "Name of the database connection (database/config/<name>) the role uses."},
		"creation_statements":   statementsField("Statements that create the user; {{name}}, {{password}}, {{expiration}}."),
		"revocation_statements": statementsField("Statements that remove the user; {{name}}. Without them the user's privileges are revoked, its sessions ended and the role dropped."),
		"rollback_statements":   statementsField("Statements run when creating a user fails; {{name}}."),
		"renew_statements":      statementsField("Statements that extend the user's validity; {{name}}, {{expiration}}."),
		"default_ttl":           {Type: framework.TypeDuration, Description: "Lease duration of issued credentials; the mount's default when 0."},
		"max_ttl":               {Type: framework.TypeDuration, Description: "Longest lifetime of issued credentials, renewals included; the mount's maximum when 0."},
		"credential_type":       {Type: framework.TypeString, Default: "password", Description: "Only password is supported."},
		"credential_config":     {Type: framework.TypeMap, Description: "Accepted for compatibility; must be empty."},
	}
	exists := func(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
		r, err := loadRole(ctx, req.Storage, d.String("name"))
		return r != nil, err
	}
	return []*framework.Path{
		{
			Pattern:      "roles/?",
			Operations:   map[logical.Operation]framework.OperationFunc{logical.ListOperation: b.listRoles},
			HelpSynopsis: "List the dynamic roles.",
		},
		{
			Pattern: "roles/" + framework.GenericNameRegex("name"),
			Fields:  fields,
			Operations: map[logical.Operation]framework.OperationFunc{
				logical.ReadOperation:   b.readRole,
				logical.CreateOperation: b.writeRole,
				logical.UpdateOperation: b.writeRole,
				logical.DeleteOperation: b.deleteRole,
			},
			ExistenceCheck: exists,
			HelpSynopsis:   "Manage the roles that create a database user per credentials request.",
		},
	}
}

func (b *backend) listRoles(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	return list(ctx, req.Storage, rolePrefix)
}

func (b *backend) readRole(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	r, err := loadRole(ctx, req.Storage, d.String("name"))
	if err != nil || r == nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{
		"db_name":               r.DBName,
		"creation_statements":   nonNil(r.CreationStatements),
		"revocation_statements": nonNil(r.RevocationStatements),
		"rollback_statements":   nonNil(r.RollbackStatements),
		"renew_statements":      nonNil(r.RenewStatements),
		"default_ttl":           int64(r.DefaultTTL / time.Second),
		"max_ttl":               int64(r.MaxTTL / time.Second),
		"credential_type":       "password",
		"credential_config":     map[string]any{},
	}}, nil
}

// writeRole creates or updates a role; on update, fields left out keep
// their stored values.
func (b *backend) writeRole(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.String("name")
	if s, err := loadStaticRole(ctx, req.Storage, name); err != nil {
		return nil, err
	} else if s != nil {
		return nil, logical.BadRequest("role %q is a static role: a dynamic role cannot have the same name", name)
	}
	r, err := loadRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		r = &dynamicRole{}
	}
	if v, ok := d.GetOk("db_name"); ok {
		r.DBName = v.(string)
	}
	for field, dst := range map[string]*[]string{
		"creation_statements":   &r.CreationStatements,
		"revocation_statements": &r.RevocationStatements,
		"rollback_statements":   &r.RollbackStatements,
		"renew_statements":      &r.RenewStatements,
	} {
		if v, ok := d.GetOk(field); ok {
			*dst = cleanStatements(v.([]string))
		}
	}
	if _, ok := d.GetOk("default_ttl"); ok {
		r.DefaultTTL = d.Duration("default_ttl")
	}
	if _, ok := d.GetOk("max_ttl"); ok {
		r.MaxTTL = d.Duration("max_ttl")
	}
	switch {
	case r.DBName == "":
		return nil, logical.BadRequest("db_name is required")
	case len(splitStatements(r.CreationStatements)) == 0:
		return nil, logical.BadRequest("creation_statements is required")
	case d.String("credential_type") != "password":
		return nil, logical.BadRequest("credential_type %q is not supported: only password is", d.String("credential_type"))
	case len(d.Get("credential_config").(map[string]any)) > 0:
		return nil, logical.BadRequest("credential_config is not supported for credential_type password")
	case r.DefaultTTL < 0 || r.MaxTTL < 0:
		return nil, logical.BadRequest("default_ttl and max_ttl must not be negative")
	case r.MaxTTL > 0 && r.DefaultTTL > r.MaxTTL:
		return nil, logical.BadRequest("default_ttl (%s) must not be greater than max_ttl (%s)", r.DefaultTTL, r.MaxTTL)
	}
	return nil, putJSON(ctx, req.Storage, rolePrefix+name, r)
}

func (b *backend) deleteRole(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return nil, req.Storage.Delete(ctx, rolePrefix+d.String("name"))
}
