package database

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/logical/framework"
	"github.com/arcasec/arca/internal/storage"
	"github.com/arcasec/arca/internal/testutil/pgtest"
)

// clock is a SystemView whose time the test moves.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) DefaultLeaseTTL() time.Duration { return 768 * time.Hour }
func (c *clock) MaxLeaseTTL() time.Duration     { return 768 * time.Hour }
func (c *clock) Now() time.Time                 { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) advance(d time.Duration)        { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }
func (c *clock) LoginGuard() logical.LoginGuard { return logical.NoLoginGuard{} }

func (c *clock) GeneratePasswordFromPolicy(context.Context, string) (string, error) {
	return "", errors.New("the engine tests have no password policies")
}

// engine is a database engine on in-memory storage, configured with
// database/config/production for a real PostgreSQL cluster.
type engine struct {
	t     testing.TB
	b     *backend
	st    logical.Storage
	clock *clock
	pg    *pgtest.Cluster
}

func newEngine(t testing.TB) *engine {
	t.Helper()
	pg := pgtest.Start(t)
	c := &clock{now: time.Date(2030, 6, 1, 2, 0, 0, 0, time.UTC)}
	st := storage.NewInmem()
	lb, err := Factory(context.Background(), &logical.BackendConfig{Storage: st, System: c})
	if err != nil {
		t.Fatal(err)
	}
	e := &engine{t: t, b: lb.(*backend), st: st, clock: c, pg: pg}
	t.Cleanup(func() { e.b.Cleanup(context.Background()) })
	e.must(logical.UpdateOperation, "config/production", map[string]any{
		"plugin_name":    pluginName,
		"connection_url": pg.TemplateURL(),
		"username":       pg.User,
		"password":       pg.Password,
		"allowed_roles":  "*",
	})
	return e
}

func (e *engine) do(op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	return e.b.HandleRequest(context.Background(), &logical.Request{
		Operation: op, Path: path, Data: data, Storage: e.st,
		Auth: &logical.Auth{DisplayName: "token"},
	})
}

func (e *engine) must(op logical.Operation, path string, data map[string]any) *logical.Response {
	e.t.Helper()
	resp, err := e.do(op, path, data)
	if err != nil {
		e.t.Fatalf("%s %s: %v", op, path, err)
	}
	return resp
}

// lease sends a renew or revoke of secret to the engine, as the core does.
func (e *engine) lease(op logical.Operation, secret *logical.Secret) (*logical.Response, error) {
	return e.b.HandleRequest(context.Background(), &logical.Request{Operation: op, Storage: e.st, Secret: secret})
}

// rollback sends the core's periodic RollbackOperation.
func (e *engine) rollback() error {
	_, err := e.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.RollbackOperation, Storage: e.st})
	return err
}

// sql runs statements as the superuser.
func (e *engine) sql(stmts ...string) {
	e.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.pg.URL())
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			e.t.Fatalf("%s: %v", s, err)
		}
	}
}

// query returns the first column of the first row of a query run as the
// superuser.
func (e *engine) query(q string, args ...any) any {
	e.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.pg.URL())
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v any
	if err := conn.QueryRow(ctx, q, args...).Scan(&v); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
	return v
}

func (e *engine) roleExists(name string) bool {
	return e.query(`SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, name).(bool)
}

func (e *engine) connectAs(username, password string) (*pgx.Conn, error) {
	return pgx.Connect(context.Background(), e.pg.URLFor(username, password))
}

func (e *engine) canLogin(username, password string) bool {
	conn, err := e.connectAs(username, password)
	if err != nil {
		return false
	}
	conn.Close(context.Background())
	return true
}

const readonlyCreation = `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}";`

func TestCredsGrantExactlyTheRoleRenewWithinMaxTTLAndRevokeDropsTheUser(t *testing.T) {
	e := newEngine(t)
	e.sql(`CREATE TABLE items (id int)`, `INSERT INTO items VALUES (1), (2)`)
	e.must(logical.UpdateOperation, "roles/app-readonly", map[string]any{
		"db_name": "production", "creation_statements": readonlyCreation, "default_ttl": "1h", "max_ttl": "2h",
	})
	issuedAt := e.clock.Now()
	resp := e.must(logical.ReadOperation, "creds/app-readonly", nil)
	if resp.Secret == nil || resp.Secret.TTL != time.Hour || !resp.Secret.Renewable ||
		resp.Secret.InternalData[framework.SecretTypeKey] != credsType {
		t.Fatalf("secret = %+v", resp.Secret)
	}
	username, password := resp.Data["username"].(string), resp.Data["password"].(string)
	if !strings.HasPrefix(username, "v-token-app-read-") || len(username) > 63 {
		t.Fatalf("username %q", username)
	}
	validUntil := func() time.Time {
		return e.query(`SELECT rolvaliduntil FROM pg_roles WHERE rolname = $1`, username).(time.Time)
	}
	if got := validUntil(); !got.Equal(issuedAt.Add(time.Hour)) {
		t.Fatalf("VALID UNTIL %v, want %v", got, issuedAt.Add(time.Hour))
	}

	ctx := context.Background()
	conn, err := e.connectAs(username, password)
	if err != nil {
		t.Fatalf("the credentials do not log in: %v", err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM items`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("SELECT granted by the role: %d, %v", n, err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO items VALUES (3)`); err == nil {
		t.Fatal("INSERT succeeded: the role granted only SELECT")
	}

	// Renew: the increment counts from now, and max_ttl caps it.
	lease := &logical.Secret{InternalData: resp.Secret.InternalData, IssueTime: issuedAt, Increment: time.Hour}
	e.clock.advance(30 * time.Minute)
	if _, err := e.lease(logical.RenewOperation, lease); err != nil {
		t.Fatalf("renew: %v", err)
	}
	if got, want := validUntil(), issuedAt.Add(90*time.Minute); !got.Equal(want) {
		t.Fatalf("after renew, VALID UNTIL %v, want %v", got, want)
	}
	e.clock.advance(60 * time.Minute)
	renewed, err := e.lease(logical.RenewOperation, lease)
	if err != nil {
		t.Fatalf("renew: %v", err)
	}
	if renewed.Secret.MaxTTL != 2*time.Hour {
		t.Fatalf("renewal MaxTTL %v", renewed.Secret.MaxTTL)
	}
	if got, want := validUntil(), issuedAt.Add(2*time.Hour); !got.Equal(want) {
		t.Fatalf("a renewal past max_ttl: VALID UNTIL %v, want the cap %v", got, want)
	}

	// Revoke ends the open session and drops the user.
	if _, err := e.lease(logical.RevokeOperation, lease); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if e.roleExists(username) {
		t.Fatal("the user survived its revocation")
	}
	if err := conn.QueryRow(ctx, `SELECT 1`).Scan(&n); err == nil {
		t.Fatal("the revoked user's session still answers")
	}
	if e.canLogin(username, password) {
		t.Fatal("the revoked credentials still log in")
	}
	if _, err := e.lease(logical.RevokeOperation, lease); err != nil {
		t.Fatalf("a second revocation (a retry) fails: %v", err)
	}
}

func TestDefaultRevocationKeepsWhatTheUserCreated(t *testing.T) {
	e := newEngine(t)
	e.must(logical.UpdateOperation, "roles/writer", map[string]any{
		"db_name":             "production",
		"creation_statements": []any{`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}'`, `GRANT CREATE ON SCHEMA public TO "{{name}}"`},
	})
	resp := e.must(logical.ReadOperation, "creds/writer", nil)
	username, password := resp.Data["username"].(string), resp.Data["password"].(string)
	conn, err := e.connectAs(username, password)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `CREATE TABLE made_by_app (v text)`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO made_by_app VALUES ('kept')`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if _, err := e.lease(logical.RevokeOperation, resp.Secret); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if e.roleExists(username) {
		t.Fatal("the user survived its revocation")
	}
	if v := e.query(`SELECT v FROM made_by_app`); v != "kept" {
		t.Fatalf("the user's table lost its data: %v", v)
	}
	if owner := e.query(`SELECT tableowner::text FROM pg_tables WHERE tablename = 'made_by_app'`); owner != pgtest.Superuser {
		t.Fatalf("the table's owner is %v, want the admin", owner)
	}
}

func TestRevocationStatementsAreUsedWhenSet(t *testing.T) {
	e := newEngine(t)
	e.sql(`CREATE TABLE revoked (name text)`)
	e.must(logical.UpdateOperation, "roles/custom", map[string]any{
		"db_name":               "production",
		"creation_statements":   readonlyCreation,
		"revocation_statements": `INSERT INTO revoked VALUES ('{{name}}'); REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{{name}}"; DROP ROLE "{{name}}";`,
	})
	resp := e.must(logical.ReadOperation, "creds/custom", nil)
	username := resp.Data["username"].(string)
	if _, err := e.lease(logical.RevokeOperation, resp.Secret); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if e.roleExists(username) || e.query(`SELECT name FROM revoked`) != username {
		t.Fatal("the revocation_statements did not run")
	}
}

func TestFailedCreationLeavesNoUser(t *testing.T) {
	e := newEngine(t)
	e.sql(`CREATE TABLE rollback_log (name text)`)
	countUsers := func() int64 {
		return e.query(`SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-%'`).(int64)
	}
	e.must(logical.UpdateOperation, "roles/broken", map[string]any{
		"db_name":             "production",
		"creation_statements": `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}'; GRANT SELEC ON ALL TABLES IN SCHEMA public TO "{{name}}";`,
		"rollback_statements": `INSERT INTO rollback_log VALUES ('{{name}}')`,
	})
	_, err := e.do(logical.ReadOperation, "creds/broken", nil)
	if logical.StatusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "statement 2 of 2") {
		t.Fatalf("err = %v, want 400 naming the failing statement", err)
	}
	if n := countUsers(); n != 0 {
		t.Fatalf("%d users remain after a failed creation", n)
	}
	if n := e.query(`SELECT count(*) FROM rollback_log`).(int64); n != 1 {
		t.Fatalf("the rollback_statements ran %d times, want once", n)
	}
	if ids, _ := e.b.ListWAL(context.Background(), e.st); len(ids) != 0 {
		t.Fatalf("write-ahead log entries remain: %v", ids)
	}

	// A role the configuration does not allow creates nothing either.
	e.must(logical.UpdateOperation, "config/production", map[string]any{"allowed_roles": "app-readonly"})
	e.must(logical.UpdateOperation, "roles/other", map[string]any{"db_name": "production", "creation_statements": readonlyCreation})
	_, err = e.do(logical.ReadOperation, "creds/other", nil)
	if logical.StatusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "not an allowed role") {
		t.Fatalf("err = %v, want 400 naming allowed roles", err)
	}
	if _, err := e.do(logical.ReadOperation, "creds/nosuch", nil); logical.StatusOf(err) != http.StatusBadRequest {
		t.Fatalf("unknown role: %v", err)
	}
	if n := countUsers(); n != 0 {
		t.Fatalf("%d users were created", n)
	}
}

func TestUnreachableDatabaseIsAClearError(t *testing.T) {
	e := newEngine(t)
	e.must(logical.UpdateOperation, "config/down", map[string]any{
		"plugin_name": pluginName, "verify_connection": false, "allowed_roles": "*",
		"connection_url": "postgresql://{{username}}:{{password}}@127.0.0.1:1/postgres",
		"username":       "admin", "password": "do-not-show-me",
	})
	e.must(logical.UpdateOperation, "roles/r", map[string]any{"db_name": "down", "creation_statements": readonlyCreation})
	_, err := e.do(logical.ReadOperation, "creds/r", nil)
	if logical.StatusOf(err) != http.StatusBadRequest || strings.Contains(err.Error(), "do-not-show-me") {
		t.Fatalf("err = %v, want a 400 without the password", err)
	}
}

func TestWALRollbackDropsAUserLeftByACrash(t *testing.T) {
	e := newEngine(t)
	// A crash between creating the user and creating its lease leaves the
	// user and its write-ahead log entry.
	e.sql(`CREATE ROLE "v-token-crashed" WITH LOGIN PASSWORD 'pw'`)
	u := &issued{Username: "v-token-crashed", Role: "gone", DBName: "production"}
	if _, err := e.b.PutWAL(context.Background(), e.st, walKindUser, u); err != nil {
		t.Fatal(err)
	}
	if err := e.rollback(); err != nil {
		t.Fatal(err)
	}
	if !e.roleExists(u.Username) {
		t.Fatal("a fresh entry was rolled back: its request may still be running")
	}
	e.clock.advance(framework.DefaultWALRollbackMinAge + time.Minute)
	if err := e.rollback(); err != nil {
		t.Fatal(err)
	}
	if e.roleExists(u.Username) {
		t.Fatal("the half-created user survived the rollback")
	}
	if ids, _ := e.b.ListWAL(context.Background(), e.st); len(ids) != 0 {
		t.Fatalf("write-ahead log entries remain: %v", ids)
	}
}

var errInjected = errors.New("injected failure")

func TestRotationFailureAtEachStepKeepsTheCurrentCredential(t *testing.T) {
	e := newEngine(t)
	for _, strategy := range []string{singleUser, alternatingUsers} {
		for _, step := range []string{stepCreate, stepSet, stepTest, stepFinish} {
			t.Run(strategy+"/"+step, func(t *testing.T) {
				role := strings.ReplaceAll(strategy+"-"+step, "-", "_")
				e.sql(`CREATE ROLE `+role+`_a WITH LOGIN`, `CREATE ROLE `+role+`_b WITH LOGIN`)
				data := map[string]any{"db_name": "production", "username": role + "_a", "rotation_period": "1h", "rotation_strategy": strategy}
				if strategy == alternatingUsers {
					data["alternate_username"] = role + "_b"
				}
				e.must(logical.UpdateOperation, "static-roles/"+role, data)
				creds := func() (string, string) {
					resp := e.must(logical.ReadOperation, "static-creds/"+role, nil)
					return resp.Data["username"].(string), resp.Data["password"].(string)
				}
				user, pass := creds()

				e.b.failStep = func(r, s string) error {
					if r == role && s == step {
						return errInjected
					}
					return nil
				}
				_, err := e.do(logical.UpdateOperation, "rotate-role/"+role, nil)
				if err == nil || !strings.Contains(err.Error(), "injected failure") {
					t.Fatalf("rotate-role with a failing %s step: %v", step, err)
				}
				if u, p := creds(); u != user || p != pass {
					t.Fatal("a failed rotation changed the credential handed out")
				}
				if !e.canLogin(user, pass) {
					t.Fatalf("a failure at step %s broke the current credential", step)
				}
				stored, _ := loadStaticRole(context.Background(), e.st, role)
				if stored.Failures != 1 || stored.LastError == "" {
					t.Fatalf("the failure was not recorded: %+v", stored)
				}
				pending := ""
				if step != stepCreate {
					if stored.Pending == nil {
						t.Fatal("the pending password was not kept for the retry")
					}
					pending = stored.Pending.Password
				}

				// The periodic function retries once the backoff has passed,
				// with the same pending password.
				e.b.failStep = nil
				if err := e.rollback(); err != nil {
					t.Fatal(err)
				}
				if u, p := creds(); u != user || p != pass {
					t.Fatal("the retry ran before its backoff")
				}
				e.clock.advance(firstRetryDelay)
				if err := e.rollback(); err != nil {
					t.Fatalf("retry: %v", err)
				}
				newUser, newPass := creds()
				if newPass == pass || !e.canLogin(newUser, newPass) {
					t.Fatal("the retried rotation did not produce a working credential")
				}
				if pending != "" && newPass != pending {
					t.Fatal("the retry did not resume with the pending password")
				}
				if strategy == alternatingUsers && (newUser == user || !e.canLogin(user, pass)) {
					t.Fatal("alternating users: the previous credential must stay valid after the rotation")
				}
				if strategy == singleUser && e.canLogin(user, pass) {
					t.Fatal("single user: the old password still works after the rotation")
				}
			})
		}
	}
}

func TestScheduledRotation(t *testing.T) {
	e := newEngine(t)
	e.sql(`CREATE ROLE by_period WITH LOGIN`, `CREATE ROLE by_schedule WITH LOGIN`)
	start := e.clock.Now() // 02:00 UTC
	e.must(logical.UpdateOperation, "static-roles/by-period", map[string]any{"db_name": "production", "username": "by_period", "rotation_period": "1h"})
	e.must(logical.UpdateOperation, "static-roles/by-schedule", map[string]any{
		"db_name": "production", "username": "by_schedule", "rotation_schedule": "0 3 * * *", "rotation_window": "1h",
	})
	password := func(role string) string {
		return e.must(logical.ReadOperation, "static-creds/"+role, nil).Data["password"].(string)
	}
	ttl := func(role string) int64 {
		return e.must(logical.ReadOperation, "static-creds/"+role, nil).Data["ttl"].(int64)
	}
	if got := ttl("by-period"); got != 3600 {
		t.Fatalf("ttl by period = %d, want 3600", got)
	}
	if got := ttl("by-schedule"); got != 3600 {
		t.Fatalf("ttl by schedule = %d, want 3600 (until 03:00)", got)
	}
	p1, s1 := password("by-period"), password("by-schedule")

	e.clock.advance(59 * time.Minute) // 02:59
	if err := e.rollback(); err != nil {
		t.Fatal(err)
	}
	if password("by-period") != p1 || password("by-schedule") != s1 {
		t.Fatal("rotated before due")
	}
	e.clock.advance(2 * time.Minute) // 03:01
	if err := e.rollback(); err != nil {
		t.Fatal(err)
	}
	p2, s2 := password("by-period"), password("by-schedule")
	if p2 == p1 || s2 == s1 {
		t.Fatal("not rotated when due")
	}
	if !e.canLogin("by_schedule", s2) {
		t.Fatal("the rotated password does not log in")
	}

	// The next day's 03:00 passes while Arca is not running its periodic
	// work; at 04:30 the window has closed, so the rotation waits for the
	// day after.
	e.clock.now = start.Add(24*time.Hour + 150*time.Minute) // next day 04:30
	if err := e.rollback(); err != nil {
		t.Fatal(err)
	}
	if password("by-schedule") != s2 {
		t.Fatal("rotated outside the rotation_window")
	}
	if got := ttl("by-schedule"); got != int64((22*time.Hour+30*time.Minute)/time.Second) {
		t.Fatalf("ttl after a missed window = %d, want until 03:00 the day after", got)
	}
	e.clock.now = start.Add(48*time.Hour + 70*time.Minute) // two days on, 03:10
	if err := e.rollback(); err != nil {
		t.Fatal(err)
	}
	if password("by-schedule") == s2 {
		t.Fatal("not rotated in the next window")
	}
}

func TestFailedScheduledRotationIsRetriedOnlyInsideItsWindow(t *testing.T) {
	e := newEngine(t)
	e.sql(`CREATE ROLE nightly WITH LOGIN`)
	start := e.clock.Now() // 02:00 UTC
	e.must(logical.UpdateOperation, "static-roles/nightly", map[string]any{
		"db_name": "production", "username": "nightly", "rotation_schedule": "0 3 * * *", "rotation_window": "1h",
	})
	password := func() string {
		return e.must(logical.ReadOperation, "static-creds/nightly", nil).Data["password"].(string)
	}
	before := password()

	e.b.failStep = func(_, step string) error {
		if step == stepTest {
			return errInjected
		}
		return nil
	}
	e.clock.now = start.Add(61 * time.Minute) // 03:01, inside the window
	if err := e.rollback(); err == nil {
		t.Fatal("the injected failure did not fail the rotation")
	}
	if password() != before || !e.canLogin("nightly", before) {
		t.Fatal("the failed rotation changed the current credential")
	}
	stored, _ := loadStaticRole(context.Background(), e.st, "nightly")
	pending := stored.Pending.Password

	e.b.failStep = nil
	e.clock.now = start.Add(150 * time.Minute) // 04:30, the window has closed
	if err := e.rollback(); err != nil {
		t.Fatal(err)
	}
	if password() != before {
		t.Fatal("a failed rotation was retried outside its rotation_window")
	}
	e.clock.now = start.Add(24*time.Hour + 65*time.Minute) // the next day, 03:05
	if err := e.rollback(); err != nil {
		t.Fatal(err)
	}
	if got := password(); got != pending || !e.canLogin("nightly", got) {
		t.Fatal("the next window did not finish the pending rotation")
	}
}

func TestWALRollbackCompletesAnInterruptedRootRotation(t *testing.T) {
	e := newEngine(t)
	e.sql(`CREATE ROLE vault_admin WITH LOGIN SUPERUSER PASSWORD 'old-admin-password'`, `CREATE ROLE app_static WITH LOGIN`)
	e.must(logical.UpdateOperation, "config/admin", map[string]any{
		"plugin_name": pluginName, "connection_url": e.pg.TemplateURL(), "allowed_roles": "*",
		"username": "vault_admin", "password": "old-admin-password",
	})
	// Arca stopped after the database took the new password and before it
	// was stored: the stored password no longer works.
	if _, err := e.b.PutWAL(context.Background(), e.st, walKindRoot, &rootRotation{DBName: "admin", Password: "new-admin-password"}); err != nil {
		t.Fatal(err)
	}
	e.sql(`ALTER ROLE vault_admin WITH PASSWORD 'new-admin-password'`)
	e.b.forget("admin")

	e.clock.advance(framework.DefaultWALRollbackMinAge + time.Minute)
	if err := e.rollback(); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if ids, _ := e.b.ListWAL(context.Background(), e.st); len(ids) != 0 {
		t.Fatalf("write-ahead log entries remain: %v", ids)
	}
	e.must(logical.UpdateOperation, "static-roles/app", map[string]any{"db_name": "admin", "username": "app_static", "rotation_period": "1h"})
	resp := e.must(logical.ReadOperation, "config/admin", nil)
	if _, ok := resp.Data["password"]; ok {
		t.Fatal("the config returns a password")
	}
}

func TestRevocationWhileTheDatabaseIsDownSucceedsWhenItReturns(t *testing.T) {
	e := newEngine(t)
	e.must(logical.UpdateOperation, "roles/app", map[string]any{"db_name": "production", "creation_statements": readonlyCreation})
	resp := e.must(logical.ReadOperation, "creds/app", nil)
	username := resp.Data["username"].(string)

	if err := e.pg.Stop(); err != nil {
		t.Fatal(err)
	}
	_, err := e.lease(logical.RevokeOperation, resp.Secret)
	if err == nil {
		t.Fatal("a revocation against a stopped database reported success")
	}
	if strings.Contains(err.Error(), e.pg.Password) {
		t.Fatalf("the error holds the admin password: %v", err)
	}
	if err := e.pg.Restart(); err != nil {
		t.Fatal(err)
	}
	if !e.roleExists(username) {
		t.Fatal("the user vanished while the database was down")
	}
	// The core retries; the same pool reconnects.
	if _, err := e.lease(logical.RevokeOperation, resp.Secret); err != nil {
		t.Fatalf("the retried revocation: %v", err)
	}
	if e.roleExists(username) {
		t.Fatal("the user survived the retried revocation")
	}
}

func TestUsernamesPostgreSQLWouldTruncateAreRefused(t *testing.T) {
	e := newEngine(t)
	e.must(logical.UpdateOperation, "config/production", map[string]any{"username_template": `{{ printf "v-%s-%s" .RoleName (random 70) }}`})
	e.must(logical.UpdateOperation, "roles/app", map[string]any{"db_name": "production", "creation_statements": readonlyCreation})
	_, err := e.do(logical.ReadOperation, "creds/app", nil)
	if logical.StatusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "at most 63") {
		t.Fatalf("err = %v, want a 400 naming the limit", err)
	}
	if n := e.query(`SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-app-%'`).(int64); n != 0 {
		t.Fatalf("%d users were created", n)
	}
}

// With password_authentication=scram-sha-256 the statements carry a
// SCRAM-SHA-256 verifier computed by Arca, never the plaintext, and the
// credentials still log in over PostgreSQL's scram-sha-256 host
// authentication: dynamic users, static-role rotation and rotate-root.
func TestSCRAMPasswordAuthenticationSendsVerifier(t *testing.T) {
	e := newEngine(t)
	if _, err := e.do(logical.UpdateOperation, "config/production", map[string]any{"password_authentication": "md5"}); logical.StatusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "password_authentication") {
		t.Fatalf("password_authentication=md5: err = %v, want a 400 naming the field", err)
	}
	e.must(logical.UpdateOperation, "config/production", map[string]any{"password_authentication": "scram-sha-256"})
	cfg := e.must(logical.ReadOperation, "config/production", nil)
	if got := cfg.Data["connection_details"].(map[string]any)["password_authentication"]; got != "scram-sha-256" {
		t.Fatalf("connection_details.password_authentication = %v", got)
	}

	// The comment records exactly what the statement received.
	e.must(logical.UpdateOperation, "roles/scram", map[string]any{
		"db_name":             "production",
		"creation_statements": `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}'; COMMENT ON ROLE "{{name}}" IS '{{password}}';`,
	})
	resp := e.must(logical.ReadOperation, "creds/scram", nil)
	username, password := resp.Data["username"].(string), resp.Data["password"].(string)
	sent := e.query(`SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1`, username).(string)
	if !strings.HasPrefix(sent, "SCRAM-SHA-256$4096:") || strings.Contains(sent, password) {
		t.Fatalf("the statement received %q, want a SCRAM-SHA-256 verifier without the password", sent)
	}
	if stored := e.query(`SELECT rolpassword FROM pg_authid WHERE rolname = $1`, username).(string); stored != sent {
		t.Fatalf("PostgreSQL stored %q, not the verifier Arca sent", stored)
	}
	if !e.canLogin(username, password) {
		t.Fatal("credentials issued with scram-sha-256 do not log in")
	}

	e.sql(`CREATE ROLE scram_static WITH LOGIN`)
	e.must(logical.UpdateOperation, "static-roles/scram-static", map[string]any{"db_name": "production", "username": "scram_static", "rotation_period": "1h"})
	static := e.must(logical.ReadOperation, "static-creds/scram-static", nil).Data["password"].(string)
	if !e.canLogin("scram_static", static) {
		t.Fatal("a static role rotated with scram-sha-256 does not log in")
	}

	e.must(logical.UpdateOperation, "rotate-root/production", nil)
	if _, err := e.do(logical.UpdateOperation, "rotate-role/scram-static", nil); err != nil {
		t.Fatalf("the engine lost its admin login after rotate-root with scram-sha-256: %v", err)
	}
}

// The verifier has PostgreSQL's layout, a fresh salt each time, and is
// refused for passwords SASLprep would change.
func TestSCRAMVerifierFormat(t *testing.T) {
	a, err := scramVerifier("correct-horse")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := scramVerifier("correct-horse")
	if a == b {
		t.Fatal("two verifiers of one password share a salt")
	}
	parts := strings.Split(strings.TrimPrefix(a, "SCRAM-SHA-256$"), "$")
	if !strings.HasPrefix(a, "SCRAM-SHA-256$4096:") || len(parts) != 2 || len(strings.Split(parts[1], ":")) != 2 {
		t.Fatalf("verifier %q", a)
	}
	if salt, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(parts[0], "4096:")); len(salt) != 16 {
		t.Fatalf("salt of %d bytes, want 16", len(salt))
	}
	if _, err := scramVerifier("pässword"); err == nil {
		t.Fatal("a non-ASCII password got a verifier")
	}
}
