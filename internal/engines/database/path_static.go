package database

import (
	"context"
	"time"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/logical/framework"
	"github.com/robfig/cron/v3"
)

// Rotation strategies of a static role.
const (
	// singleUser changes one user's password in place.
	singleUser = "single-user"
	// alternatingUsers gives two users turns: a rotation sets a new password
	// on the user not in use and makes it current, so the credential a
	// client still holds stays valid until the rotation after.
	alternatingUsers = "alternating-users"
)

// Vault's bounds on a static role's schedule.
const (
	minRotationPeriod = 5 * time.Second
	minRotationWindow = time.Hour
)

// staticRole is a stored database/static-roles/<name>: its settings and the
// state of its credential.
type staticRole struct {
	DBName             string        `json:"db_name"`
	Username           string        `json:"username"`
	AlternateUsername  string        `json:"alternate_username,omitempty"`
	Strategy           string        `json:"rotation_strategy"`
	RotationStatements []string      `json:"rotation_statements"`
	RotationPeriod     time.Duration `json:"rotation_period"`
	RotationSchedule   string        `json:"rotation_schedule"`
	RotationWindow     time.Duration `json:"rotation_window"`

	// Current is the user whose credential static-creds hands out, and
	// Password its password.
	Current      string    `json:"current"`
	Password     string    `json:"password"`
	LastRotation time.Time `json:"last_rotation"`

	// Pending is a rotation under way or failed; it is resumed, with the
	// same password, until it finishes.
	Pending     *pendingRotation `json:"pending,omitempty"`
	Failures    int              `json:"failures,omitempty"`
	LastError   string           `json:"last_error,omitempty"`
	NextAttempt time.Time        `json:"next_attempt,omitzero"`
}

// pendingRotation is a new password on its way to becoming current.
type pendingRotation struct {
	Username string    `json:"username"`
	Password string    `json:"password"`
	Step     string    `json:"step"` // the last step that succeeded
	Started  time.Time `json:"started"`
}

func loadStaticRole(ctx context.Context, s logical.Storage, name string) (*staticRole, error) {
	var r staticRole
	found, err := getJSON(ctx, s, staticRolePrefix+name, &r)
	if !found || err != nil {
		return nil, err
	}
	return &r, nil
}

// schedule parses a standard five-field cron expression.
func parseSchedule(spec string) (cron.Schedule, error) {
	return cron.ParseStandard(spec)
}

// nextRotation returns when the role's credential is next due to rotate,
// as of now. With a schedule and a window, a scheduled time whose window
// has passed is skipped for the next one.
func (r *staticRole) nextRotation(now time.Time) time.Time {
	if r.RotationSchedule == "" {
		return r.LastRotation.Add(r.RotationPeriod)
	}
	sched, err := parseSchedule(r.RotationSchedule)
	if err != nil { // validated when stored
		return time.Time{}
	}
	next := sched.Next(r.LastRotation)
	for r.RotationWindow > 0 && !now.Before(next.Add(r.RotationWindow)) {
		next = sched.Next(next)
	}
	return next
}

func (b *backend) staticRolePaths() []*framework.Path {
	fields := map[string]*framework.FieldSchema{
		"name":                {Type: framework.TypeString, Description: "Name of the static role."},
		"db_name":             {Type: framework.TypeString, Description: "Name of the database connection the role uses."},
		"username":            {Type: framework.TypeString, Description: "The existing database user whose password Arca owns."},
		"alternate_username":  {Type: framework.TypeString, Description: "With rotation_strategy alternating-users: the second existing user, taking turns with username."},
		"rotation_strategy":   {Type: framework.TypeString, Default: singleUser, Description: "single-user (one password changes) or alternating-users (two users take turns)."},
		"rotation_statements": statementsField("Statements that set a password; {{name}} and {{password}}."),
		"rotation_period":     {Type: framework.TypeDuration, Description: "Time between rotations; at least 5s. Excludes rotation_schedule."},
		"rotation_schedule":   {Type: framework.TypeString, Description: "Cron schedule (five fields) of rotations. Excludes rotation_period."},
		"rotation_window":     {Type: framework.TypeDuration, Description: "With rotation_schedule: how long after a scheduled time a rotation may still happen; at least 1h."},
		"credential_type":     {Type: framework.TypeString, Default: "password", Description: "Only password is supported."},
	}
	exists := func(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
		r, err := loadStaticRole(ctx, req.Storage, d.String("name"))
		return r != nil, err
	}
	return []*framework.Path{
		{
			Pattern:      "static-roles/?",
			Operations:   map[logical.Operation]framework.OperationFunc{logical.ListOperation: b.listStaticRoles},
			HelpSynopsis: "List the static roles.",
		},
		{
			Pattern: "static-roles/" + framework.GenericNameRegex("name"),
			Fields:  fields,
			Operations: map[logical.Operation]framework.OperationFunc{
				logical.ReadOperation:   b.readStaticRole,
				logical.CreateOperation: b.writeStaticRole,
				logical.UpdateOperation: b.writeStaticRole,
				logical.DeleteOperation: b.deleteStaticRole,
			},
			ExistenceCheck: exists,
			HelpSynopsis:   "Manage the roles that own existing database users and rotate their passwords.",
		},
		{
			Pattern:      "static-creds/" + framework.GenericNameRegex("name"),
			Fields:       nameField("static role"),
			Operations:   map[logical.Operation]framework.OperationFunc{logical.ReadOperation: b.readStaticCreds},
			HelpSynopsis: "Read a static role's current credential.",
		},
		{
			Pattern:      "rotate-role/" + framework.GenericNameRegex("name"),
			Fields:       nameField("static role"),
			Operations:   map[logical.Operation]framework.OperationFunc{logical.UpdateOperation: b.rotateRoleNow},
			HelpSynopsis: "Rotate a static role's credential now.",
		},
	}
}

func (b *backend) listStaticRoles(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	return list(ctx, req.Storage, staticRolePrefix)
}

func (r *staticRole) scheduleData(data map[string]any) {
	if r.RotationSchedule != "" {
		data["rotation_schedule"] = r.RotationSchedule
		data["rotation_window"] = int64(r.RotationWindow / time.Second)
	} else {
		data["rotation_period"] = int64(r.RotationPeriod / time.Second)
	}
}

func (b *backend) readStaticRole(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	r, err := loadStaticRole(ctx, req.Storage, d.String("name"))
	if err != nil || r == nil {
		return nil, err
	}
	data := map[string]any{
		"db_name":             r.DBName,
		"username":            r.Username,
		"rotation_strategy":   r.Strategy,
		"rotation_statements": nonNil(r.RotationStatements),
		"credential_type":     "password",
		"last_vault_rotation": r.LastRotation.Format(time.RFC3339Nano),
	}
	if r.Strategy == alternatingUsers {
		data["alternate_username"] = r.AlternateUsername
		data["current_username"] = r.Current
	}
	if r.LastError != "" {
		data["last_rotation_error"] = r.LastError
	}
	r.scheduleData(data)
	return &logical.Response{Data: data}, nil
}

// writeStaticRole creates a static role, rotating its credential at once so
// that only Arca knows it, or updates one's schedule and statements.
func (b *backend) writeStaticRole(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.String("name")
	if r, err := loadRole(ctx, req.Storage, name); err != nil {
		return nil, err
	} else if r != nil {
		return nil, logical.BadRequest("role %q is a dynamic role: a static role cannot have the same name", name)
	}
	b.rotating.Lock()
	defer b.rotating.Unlock()
	r, err := loadStaticRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	isNew := r == nil
	if isNew {
		r = &staticRole{
			DBName:            d.String("db_name"),
			Username:          d.String("username"),
			AlternateUsername: d.String("alternate_username"),
			Strategy:          d.String("rotation_strategy"),
		}
	} else {
		for field, stored := range map[string]string{"db_name": r.DBName, "username": r.Username,
			"alternate_username": r.AlternateUsername, "rotation_strategy": r.Strategy} {
			if v, ok := d.GetOk(field); ok && v.(string) != stored {
				return nil, logical.BadRequest("%s of a static role cannot be changed: delete the role and create it again", field)
			}
		}
	}
	if v, ok := d.GetOk("rotation_statements"); ok {
		r.RotationStatements = cleanStatements(v.([]string))
	}
	_, setPeriod := d.GetOk("rotation_period")
	_, setSchedule := d.GetOk("rotation_schedule")
	if setPeriod && setSchedule {
		return nil, logical.BadRequest("rotation_period and rotation_schedule exclude each other: set one")
	}
	if setPeriod {
		r.RotationPeriod, r.RotationSchedule, r.RotationWindow = d.Duration("rotation_period"), "", 0
	}
	if setSchedule {
		r.RotationSchedule, r.RotationPeriod = d.String("rotation_schedule"), 0
	}
	if _, ok := d.GetOk("rotation_window"); ok {
		r.RotationWindow = d.Duration("rotation_window")
	}

	switch {
	case d.String("credential_type") != "password":
		return nil, logical.BadRequest("credential_type %q is not supported: only password is", d.String("credential_type"))
	case r.DBName == "":
		return nil, logical.BadRequest("db_name is required")
	case r.Username == "":
		return nil, logical.BadRequest("username is required")
	case r.Strategy != singleUser && r.Strategy != alternatingUsers:
		return nil, logical.BadRequest("rotation_strategy must be %q or %q, not %q", singleUser, alternatingUsers, r.Strategy)
	case r.Strategy == alternatingUsers && r.AlternateUsername == "":
		return nil, logical.BadRequest("rotation_strategy %q needs alternate_username: the second user", alternatingUsers)
	case r.Strategy == alternatingUsers && r.AlternateUsername == r.Username:
		return nil, logical.BadRequest("alternate_username must differ from username")
	case r.Strategy == singleUser && r.AlternateUsername != "":
		return nil, logical.BadRequest("alternate_username needs rotation_strategy %q", alternatingUsers)
	case r.RotationPeriod == 0 && r.RotationSchedule == "":
		return nil, logical.BadRequest("rotation_period or rotation_schedule is required")
	case r.RotationSchedule == "" && r.RotationPeriod < minRotationPeriod:
		return nil, logical.BadRequest("rotation_period must be at least %s", minRotationPeriod)
	case r.RotationSchedule == "" && r.RotationWindow != 0:
		return nil, logical.BadRequest("rotation_window needs rotation_schedule")
	case r.RotationSchedule != "" && r.RotationWindow != 0 && r.RotationWindow < minRotationWindow:
		return nil, logical.BadRequest("rotation_window must be at least %s", minRotationWindow)
	}
	if r.RotationSchedule != "" {
		if _, err := parseSchedule(r.RotationSchedule); err != nil {
			return nil, logical.BadRequest("rotation_schedule %q is not a five-field cron schedule: %v", r.RotationSchedule, err)
		}
	}
	cfg, err := loadConfig(ctx, req.Storage, r.DBName)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return nil, logical.BadRequest("no database configuration named %q", r.DBName)
	}
	if !cfg.allows(name) {
		return nil, logical.BadRequest("%q is not an allowed role for database %q", name, r.DBName)
	}
	if !isNew {
		return nil, putJSON(ctx, req.Storage, staticRolePrefix+name, r)
	}
	if err := checkUnmanaged(ctx, req.Storage, r); err != nil {
		return nil, err
	}
	if r.Strategy == alternatingUsers {
		if err := b.checkUserExists(ctx, req.Storage, r.DBName, r.AlternateUsername); err != nil {
			return nil, err
		}
	}
	r.Current = r.Username
	if err := putJSON(ctx, req.Storage, staticRolePrefix+name, r); err != nil {
		return nil, err
	}
	// The first rotation makes the password Arca's; a role whose user
	// cannot be rotated is not kept.
	if err := b.rotate(ctx, req.Storage, name, r, r.Username); err != nil {
		if derr := req.Storage.Delete(ctx, staticRolePrefix+name); derr != nil {
			b.logger.Error("removing a static role whose first rotation failed", "role", name, "error", derr)
		}
		return nil, logical.BadRequest("static role %q was not created: the first rotation of user %q failed: %v", name, r.Username, err)
	}
	return nil, nil
}

func (b *backend) deleteStaticRole(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	b.rotating.Lock()
	defer b.rotating.Unlock()
	return nil, req.Storage.Delete(ctx, staticRolePrefix+d.String("name"))
}

func (b *backend) readStaticCreds(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.String("name")
	r, err := loadStaticRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, logical.BadRequest("unknown static role: %q", name)
	}
	now := b.now()
	ttl := r.nextRotation(now).Sub(now)
	if ttl < 0 {
		ttl = 0
	}
	data := map[string]any{
		"username":            r.Current,
		"password":            r.Password,
		"last_vault_rotation": r.LastRotation.Format(time.RFC3339Nano),
		"ttl":                 int64(ttl / time.Second),
	}
	r.scheduleData(data)
	return &logical.Response{Data: data}, nil
}

func (b *backend) rotateRoleNow(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.String("name")
	b.rotating.Lock()
	defer b.rotating.Unlock()
	r, err := loadStaticRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, logical.BadRequest("unknown static role: %q", name)
	}
	if err := b.rotate(ctx, req.Storage, name, r, r.target()); err != nil {
		return nil, logical.BadRequest("rotating static role %q failed; its current credential is unchanged and the rotation will be retried: %v", name, err)
	}
	return nil, nil
}

// checkUserExists refuses a static role naming a user the database does
// not have.
func (b *backend) checkUserExists(ctx context.Context, s logical.Storage, dbName, username string) error {
	p, _, err := b.connection(ctx, s, dbName)
	if err != nil {
		return err
	}
	dctx, cancel := withTimeout(ctx)
	defer cancel()
	exists, err := p.userExists(dctx, username)
	if err != nil {
		return logical.BadRequest("checking user %q in database %q: %v", username, dbName, err)
	}
	if !exists {
		return logical.BadRequest("database %q has no user %q: create it before the static role", dbName, username)
	}
	return nil
}

// checkUnmanaged refuses a new static role for a user another static role
// of the same database already rotates: the two would undo each other.
func checkUnmanaged(ctx context.Context, s logical.Storage, r *staticRole) error {
	names, err := s.List(ctx, staticRolePrefix)
	if err != nil {
		return err
	}
	for _, name := range names {
		other, err := loadStaticRole(ctx, s, name)
		if err != nil {
			return err
		}
		if other == nil || other.DBName != r.DBName {
			continue
		}
		for _, u := range []string{r.Username, r.AlternateUsername} {
			if u != "" && (u == other.Username || u == other.AlternateUsername) {
				return logical.BadRequest("user %q of database %q is already managed by static role %q", u, r.DBName, name)
			}
		}
	}
	return nil
}
