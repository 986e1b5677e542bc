package database_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	vault "github.com/hashicorp/vault/api"
	"github.com/jackc/pgx/v5"

	"github.com/arcasec/arca/internal/server/servertest"
	"github.com/arcasec/arca/internal/testutil/pgtest"
)

// setup starts PostgreSQL and a dev server with the database engine at
// database/, and returns a client with the root token.
func setup(t *testing.T) (*vault.Client, *pgtest.Cluster) {
	t.Helper()
	pg := pgtest.Start(t)
	addr, root := servertest.StartDev(t)
	conf := vault.DefaultConfig()
	conf.Address = addr
	conf.MaxRetries = 0
	c, err := vault.NewClient(conf)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(root)
	if err := c.Sys().Mount("database", &vault.MountInput{Type: "database"}); err != nil {
		t.Fatalf("enabling the database engine: %v", err)
	}
	return c, pg
}

// canLogin reports whether username can log in with password.
func canLogin(pg *pgtest.Cluster, username, password string) bool {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.URLFor(username, password))
	if err != nil {
		return false
	}
	conn.Close(ctx)
	return true
}

func statusOf(err error) int {
	var re *vault.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// writeConfig configures database/config/production as the issue's flow
// does, with an admin user created for it.
func writeConfig(t *testing.T, c *vault.Client, pg *pgtest.Cluster, allowed string) {
	t.Helper()
	pg.Exec(t, `CREATE ROLE vault_admin WITH LOGIN SUPERUSER PASSWORD 'vault_admin_password'`)
	_, err := c.Logical().Write("database/config/production", map[string]any{
		"plugin_name":    "postgresql-database-plugin",
		"connection_url": pg.TemplateURL(),
		"allowed_roles":  allowed,
		"username":       "vault_admin",
		"password":       "vault_admin_password",
	})
	if err != nil {
		t.Fatalf("writing the config: %v", err)
	}
}

func TestConfigNeverReturnsThePassword(t *testing.T) {
	c, pg := setup(t)
	writeConfig(t, c, pg, "app-readonly,app-readwrite")
	s, err := c.Logical().Read("database/config/production")
	if err != nil || s == nil {
		t.Fatalf("read: %v, %v", s, err)
	}
	if s.Data["plugin_name"] != "postgresql-database-plugin" {
		t.Fatalf("plugin_name = %v", s.Data["plugin_name"])
	}
	details := s.Data["connection_details"].(map[string]any)
	if details["connection_url"] != pg.TemplateURL() || details["username"] != "vault_admin" {
		t.Fatalf("connection_details = %v", details)
	}
	if roles := s.Data["allowed_roles"].([]any); len(roles) != 2 || roles[0] != "app-readonly" {
		t.Fatalf("allowed_roles = %v", roles)
	}
	raw, _ := c.Logical().ReadRaw("database/config/production")
	body := new(strings.Builder)
	if raw != nil {
		defer raw.Body.Close()
		buf := make([]byte, 64<<10)
		n, _ := raw.Body.Read(buf)
		body.Write(buf[:n])
	}
	if strings.Contains(body.String(), "vault_admin_password") {
		t.Fatalf("the admin password is in the response: %s", body)
	}
	list, err := c.Logical().List("database/config")
	if err != nil || list == nil || len(list.Data["keys"].([]any)) != 1 {
		t.Fatalf("list: %v, %v", list, err)
	}
}

func TestConfigBadInputIsRefusedWithoutLeakingPasswords(t *testing.T) {
	c, pg := setup(t)
	pg.Exec(t, `CREATE ROLE vault_admin WITH LOGIN SUPERUSER PASSWORD 'right-password'`)
	base := func() map[string]any {
		return map[string]any{
			"plugin_name":    "postgresql-database-plugin",
			"connection_url": pg.TemplateURL(),
			"username":       "vault_admin",
			"password":       "right-password",
		}
	}
	cases := map[string]struct {
		change map[string]any
		want   string // in the error message
		secret string // never in the error message
	}{
		"password in the URL": {map[string]any{"connection_url": "postgresql://vault_admin:right-password@" + pg.Host + "/postgres"},
			"must not contain a password", "right-password"},
		"password in the URL without placeholders": {map[string]any{"connection_url": "postgresql://admin:s3cr3t-in-url@db.internal:5432/production"},
			"must not contain a password", "s3cr3t-in-url"},
		"wrong password":        {map[string]any{"password": "wrong-password-123"}, "error verifying the connection", "wrong-password-123"},
		"unreachable database":  {map[string]any{"connection_url": "postgresql://{{username}}:{{password}}@127.0.0.1:1/postgres?connect_timeout=2"}, "error verifying the connection", "right-password"},
		"unknown plugin":        {map[string]any{"plugin_name": "mysql-database-plugin"}, "plugin_name", ""},
		"negative pool size":    {map[string]any{"max_open_connections": -1}, "max_open_connections", ""},
		"bad username_template": {map[string]any{"username_template": "{{ nosuch }}"}, "username_template", ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			data := base()
			for k, v := range tc.change {
				data[k] = v
			}
			_, err := c.Logical().Write("database/config/bad", data)
			if statusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want 400 naming %q", err, tc.want)
			}
			if tc.secret != "" && strings.Contains(err.Error(), tc.secret) {
				t.Fatalf("the error repeats a password: %v", err)
			}
			if s, _ := c.Logical().Read("database/config/bad"); s != nil {
				t.Fatal("a refused config was stored")
			}
		})
	}
	// verify_connection=false stores a config for a database that is down.
	data := base()
	data["connection_url"] = "postgresql://{{username}}:{{password}}@127.0.0.1:1/postgres"
	data["verify_connection"] = false
	if _, err := c.Logical().Write("database/config/later", data); err != nil {
		t.Fatalf("verify_connection=false: %v", err)
	}
}

func TestStaticRoleSingleUserRotation(t *testing.T) {
	c, pg := setup(t)
	writeConfig(t, c, pg, "*")
	pg.Exec(t, `CREATE ROLE app_static WITH LOGIN PASSWORD 'known-to-the-dba'`)
	if _, err := c.Logical().Write("database/static-roles/app", map[string]any{
		"db_name": "production", "username": "app_static", "rotation_period": "24h",
	}); err != nil {
		t.Fatalf("creating the static role: %v", err)
	}
	// The first rotation took the password out of the DBA's hands.
	if canLogin(pg, "app_static", "known-to-the-dba") {
		t.Fatal("the password from before the static role still works")
	}
	first, err := c.Logical().Read("database/static-creds/app")
	if err != nil {
		t.Fatal(err)
	}
	if first.Data["username"] != "app_static" || !canLogin(pg, "app_static", first.Data["password"].(string)) {
		t.Fatalf("static-creds %v do not log in", first.Data["username"])
	}
	if ttl, _ := first.Data["ttl"].(json.Number).Int64(); ttl <= 0 || ttl > 86400 {
		t.Fatalf("ttl = %v, want up to a day", first.Data["ttl"])
	}
	role, err := c.Logical().Read("database/static-roles/app")
	if err != nil || role.Data["username"] != "app_static" || role.Data["password"] != nil {
		t.Fatalf("static role = %v, %v", role.Data, err)
	}

	if _, err := c.Logical().Write("database/rotate-role/app", nil); err != nil {
		t.Fatalf("rotate-role: %v", err)
	}
	second, _ := c.Logical().Read("database/static-creds/app")
	if second.Data["password"] == first.Data["password"] {
		t.Fatal("rotate-role kept the password")
	}
	if !canLogin(pg, "app_static", second.Data["password"].(string)) || canLogin(pg, "app_static", first.Data["password"].(string)) {
		t.Fatal("after a single-user rotation, only the new password must work")
	}

	// Bad input.
	for name, data := range map[string]map[string]any{
		"no such user":         {"db_name": "production", "username": "nobody_here", "rotation_period": "1h"},
		"period too short":     {"db_name": "production", "username": "app_static", "rotation_period": "1s"},
		"both schedules":       {"db_name": "production", "username": "app_static", "rotation_period": "1h", "rotation_schedule": "0 * * * *"},
		"bad cron":             {"db_name": "production", "username": "app_static", "rotation_schedule": "every hour"},
		"unknown strategy":     {"db_name": "production", "username": "app_static", "rotation_period": "1h", "rotation_strategy": "random"},
		"alternate missing":    {"db_name": "production", "username": "app_static", "rotation_period": "1h", "rotation_strategy": "alternating-users"},
		"no alternate user":    {"db_name": "production", "username": "app_static", "rotation_period": "1h", "rotation_strategy": "alternating-users", "alternate_username": "nobody_here"},
		"unknown db":           {"db_name": "nope", "username": "app_static", "rotation_period": "1h"},
		"window too short":     {"db_name": "production", "username": "app_static", "rotation_schedule": "0 * * * *", "rotation_window": "10m"},
		"window with period":   {"db_name": "production", "username": "app_static", "rotation_period": "1h", "rotation_window": "2h"},
		"user already managed": {"db_name": "production", "username": "app_static", "rotation_period": "1h"},
	} {
		if _, err := c.Logical().Write("database/static-roles/bad", data); statusOf(err) != http.StatusBadRequest {
			t.Errorf("%s: err = %v, want 400", name, err)
		}
		if s, _ := c.Logical().Read("database/static-roles/bad"); s != nil {
			t.Errorf("%s: the refused role was stored", name)
		}
	}
	if !canLogin(pg, "app_static", second.Data["password"].(string)) {
		t.Fatal("a refused static role changed the password of the user static role app manages")
	}
}

func TestStaticRoleAlternatingUsersKeepsThePreviousCredential(t *testing.T) {
	c, pg := setup(t)
	writeConfig(t, c, pg, "*")
	pg.Exec(t, `CREATE ROLE app_a WITH LOGIN`)
	pg.Exec(t, `CREATE ROLE app_b WITH LOGIN`)
	if _, err := c.Logical().Write("database/static-roles/app", map[string]any{
		"db_name": "production", "username": "app_a", "alternate_username": "app_b",
		"rotation_strategy": "alternating-users", "rotation_schedule": "0 3 * * *", "rotation_window": "1h",
	}); err != nil {
		t.Fatalf("creating the static role: %v", err)
	}
	read := func() (string, string) {
		s, err := c.Logical().Read("database/static-creds/app")
		if err != nil {
			t.Fatal(err)
		}
		if s.Data["rotation_schedule"] != "0 3 * * *" {
			t.Fatalf("rotation_schedule = %v", s.Data["rotation_schedule"])
		}
		return s.Data["username"].(string), s.Data["password"].(string)
	}
	user1, pass1 := read()
	if user1 != "app_a" || !canLogin(pg, user1, pass1) {
		t.Fatalf("first credential %s does not log in", user1)
	}
	rotate := func() {
		if _, err := c.Logical().Write("database/rotate-role/app", nil); err != nil {
			t.Fatalf("rotate-role: %v", err)
		}
	}
	rotate()
	user2, pass2 := read()
	if user2 != "app_b" || !canLogin(pg, user2, pass2) {
		t.Fatalf("second credential %s does not log in", user2)
	}
	if !canLogin(pg, user1, pass1) {
		t.Fatal("the previous credential stopped working at the first rotation after it")
	}
	rotate()
	user3, pass3 := read()
	if user3 != "app_a" || pass3 == pass1 || !canLogin(pg, user3, pass3) {
		t.Fatalf("third credential %s does not log in", user3)
	}
	if !canLogin(pg, user2, pass2) {
		t.Fatal("the previous credential stopped working at the first rotation after it")
	}
	if canLogin(pg, user1, pass1) {
		t.Fatal("a credential two rotations old still works")
	}
}

func TestStaticRoleNotInAllowedRoles(t *testing.T) {
	c, pg := setup(t)
	writeConfig(t, c, pg, "app-readonly")
	pg.Exec(t, `CREATE ROLE app_static WITH LOGIN PASSWORD 'unchanged'`)
	_, err := c.Logical().Write("database/static-roles/other", map[string]any{
		"db_name": "production", "username": "app_static", "rotation_period": "1h",
	})
	if statusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "not an allowed role") {
		t.Fatalf("err = %v, want 400 naming the allowed roles", err)
	}
	if !canLogin(pg, "app_static", "unchanged") {
		t.Fatal("a refused static role changed the user's password")
	}
}

func TestRotateRootReplacesTheAdminPassword(t *testing.T) {
	c, pg := setup(t)
	writeConfig(t, c, pg, "*")
	if _, err := c.Logical().Write("database/rotate-root/production", nil); err != nil {
		t.Fatalf("rotate-root: %v", err)
	}
	if canLogin(pg, "vault_admin", "vault_admin_password") {
		t.Fatal("the old admin password still works")
	}
	s, _ := c.Logical().Read("database/config/production")
	if _, ok := s.Data["password"]; ok {
		t.Fatal("the config returns a password")
	}
	// Arca still reaches the database with the password only it knows.
	pg.Exec(t, `CREATE ROLE app_static WITH LOGIN`)
	if _, err := c.Logical().Write("database/reset/production", nil); err != nil {
		t.Fatalf("reset: %v", err)
	}
	if _, err := c.Logical().Write("database/static-roles/app", map[string]any{
		"db_name": "production", "username": "app_static", "rotation_period": "1h",
	}); err != nil {
		t.Fatalf("using the database after rotate-root: %v", err)
	}
	if _, err := c.Logical().Write("database/reset/nope", nil); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("reset of an unknown config: %v", err)
	}
}

func TestRolesAreStoredAsWritten(t *testing.T) {
	c, pg := setup(t)
	writeConfig(t, c, pg, "app-readonly")
	creation := `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}";`
	if _, err := c.Logical().Write("database/roles/app-readonly", map[string]any{
		"db_name": "production", "creation_statements": creation, "default_ttl": "1h", "max_ttl": "24h",
	}); err != nil {
		t.Fatalf("writing the role: %v", err)
	}
	s, err := c.Logical().Read("database/roles/app-readonly")
	if err != nil {
		t.Fatal(err)
	}
	if s.Data["db_name"] != "production" || s.Data["default_ttl"].(json.Number).String() != "3600" ||
		s.Data["max_ttl"].(json.Number).String() != "86400" || s.Data["creation_statements"].([]any)[0] != creation {
		t.Fatalf("role = %v", s.Data)
	}
	for name, data := range map[string]map[string]any{
		"no db_name":            {"creation_statements": creation},
		"no creation":           {"db_name": "production"},
		"default above max":     {"db_name": "production", "creation_statements": creation, "default_ttl": "2h", "max_ttl": "1h"},
		"unsupported cred type": {"db_name": "production", "creation_statements": creation, "credential_type": "rsa_private_key"},
	} {
		if _, err := c.Logical().Write("database/roles/bad", data); statusOf(err) != http.StatusBadRequest {
			t.Errorf("%s: err = %v, want 400", name, err)
		}
	}
	if list, err := c.Logical().List("database/roles"); err != nil || len(list.Data["keys"].([]any)) != 1 {
		t.Fatalf("list: %v, %v", list, err)
	}
}

// TestIssueFlowThroughTheVaultClient runs the design documents' flow: the
// config and role exactly as written there, then database/creds.
func TestIssueFlowThroughTheVaultClient(t *testing.T) {
	c, pg := setup(t)
	pg.Exec(t, `CREATE TABLE orders (id int)`)
	pg.Exec(t, `INSERT INTO orders VALUES (1)`)
	writeConfig(t, c, pg, "app-readonly,app-readwrite")
	if _, err := c.Logical().Write("database/roles/app-readonly", map[string]any{
		"db_name":             "production",
		"creation_statements": `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}";`,
		"default_ttl":         "1h",
		"max_ttl":             "24h",
	}); err != nil {
		t.Fatalf("writing the role: %v", err)
	}
	s, err := c.Logical().Read("database/creds/app-readonly")
	if err != nil {
		t.Fatalf("reading creds: %v", err)
	}
	if s.LeaseDuration != 3600 || !s.Renewable {
		t.Fatalf("lease_duration %d renewable %v, want 3600 and true", s.LeaseDuration, s.Renewable)
	}
	username, _ := s.Data["username"].(string)
	password, _ := s.Data["password"].(string)
	if !strings.HasPrefix(username, "v-") || password == "" {
		t.Fatalf("creds: username %q, password empty: %v", username, password == "")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.URLFor(username, password))
	if err != nil {
		t.Fatalf("the issued credentials do not log in: %v", err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM orders`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("SELECT: %d, %v", n, err)
	}
	if _, err := conn.Exec(ctx, `DELETE FROM orders`); err == nil {
		t.Fatal("DELETE succeeded: the role granted only SELECT")
	}

	// The other allowed role exists in allowed_roles but not as a role; a
	// role outside allowed_roles is refused.
	if _, err := c.Logical().Write("database/roles/intruder", map[string]any{
		"db_name": "production", "creation_statements": `CREATE ROLE "{{name}}" WITH LOGIN SUPERUSER PASSWORD '{{password}}'`,
	}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Logical().Read("database/creds/intruder")
	if statusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "not an allowed role") {
		t.Fatalf("creds of a role outside allowed_roles: %v", err)
	}
}

// TestGeneratedPasswordsNeverReachErrorsOrLogs makes PostgreSQL quote a
// generated password in its error (casting it to an integer) and checks
// that neither the client's error, the stored rotation error nor the
// server log holds it.
func TestGeneratedPasswordsNeverReachErrorsOrLogs(t *testing.T) {
	pg := pgtest.Start(t)
	var log strings.Builder
	var logMu sync.Mutex
	_, addr, root := servertest.StartDevServer(t, writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return log.Write(p)
	}))
	conf := vault.DefaultConfig()
	conf.Address = addr
	conf.MaxRetries = 0
	c, err := vault.NewClient(conf)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(root)
	if err := c.Sys().Mount("database", &vault.MountInput{Type: "database"}); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, c, pg, "*")
	leak := `SELECT '{{password}}'::int`
	quoted := regexp.MustCompile(`"[A-Za-z0-9-]{20}"`)

	if _, err := c.Logical().Write("database/roles/leaky", map[string]any{"db_name": "production", "creation_statements": leak}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Logical().Read("database/creds/leaky")
	if statusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), `"[redacted]"`) || quoted.MatchString(err.Error()) {
		t.Fatalf("creds error = %v, want a 400 with the password redacted", err)
	}

	pg.Exec(t, `CREATE ROLE app_static WITH LOGIN`)
	if _, err := c.Logical().Write("database/static-roles/app", map[string]any{
		"db_name": "production", "username": "app_static", "rotation_period": "1h",
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("database/static-roles/app", map[string]any{"rotation_statements": leak}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Logical().Write("database/rotate-role/app", nil)
	if statusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), `"[redacted]"`) || quoted.MatchString(err.Error()) {
		t.Fatalf("rotate-role error = %v, want a 400 with the password redacted", err)
	}
	role, err := c.Logical().Read("database/static-roles/app")
	if err != nil {
		t.Fatal(err)
	}
	if msg, _ := role.Data["last_rotation_error"].(string); !strings.Contains(msg, "[redacted]") || quoted.MatchString(msg) {
		t.Fatalf("last_rotation_error = %q", msg)
	}

	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(log.String(), "rotation of a static role failed") || !strings.Contains(log.String(), "[redacted]") {
		t.Fatal("the failed rotation was not logged with its redacted error")
	}
	// The log is JSON: a quoted value appears with escaped quotes.
	if m := regexp.MustCompile(`\\"[A-Za-z0-9-]{20}\\"`).FindString(log.String()); m != "" {
		t.Fatal("the server log holds a password-shaped quoted value")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestConfigUpdateKeepsOmittedFieldsAndPoolLimitsHold(t *testing.T) {
	c, pg := setup(t)
	writeConfig(t, c, pg, "*")
	// An update that leaves out the password keeps it: the connection
	// still verifies.
	if _, err := c.Logical().Write("database/config/production", map[string]any{
		"max_open_connections": 2, "max_idle_connections": 1, "max_connection_lifetime": "3600s",
	}); err != nil {
		t.Fatalf("update without the password: %v", err)
	}
	s, err := c.Logical().Read("database/config/production")
	if err != nil {
		t.Fatal(err)
	}
	d := s.Data["connection_details"].(map[string]any)
	if d["max_open_connections"].(json.Number).String() != "2" || d["max_idle_connections"].(json.Number).String() != "1" ||
		d["max_connection_lifetime"] != "3600s" || d["username"] != "vault_admin" || d["password"] != nil {
		t.Fatalf("connection_details = %v", d)
	}
	if _, err := c.Logical().Write("database/roles/r", map[string]any{
		"db_name": "production", "creation_statements": `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}'`,
	}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Logical().Read("database/creds/r")
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent creds: %v", err)
		}
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var open int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE usename = 'vault_admin'`).Scan(&open); err != nil {
		t.Fatal(err)
	}
	if open > 2 {
		t.Fatalf("%d connections open as the admin, max_open_connections is 2", open)
	}
}

// TestPasswordPolicyShapesGeneratedPasswords: with password_policy set, the
// credentials the engine issues follow that policy (sys/policies/password),
// and a policy that does not exist is a clear error, not a default password.
func TestPasswordPolicyShapesGeneratedPasswords(t *testing.T) {
	c, pg := setup(t)
	writeConfig(t, c, pg, "*")
	if _, err := c.Logical().Write("sys/policies/password/db-digits", map[string]any{
		"policy": "length = 32\nrule \"charset\" {\n  charset = \"0123456789\"\n  min-chars = 1\n}\n",
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("database/config/production", map[string]any{"password_policy": "db-digits"}); err != nil {
		t.Fatalf("setting password_policy: %v", err)
	}
	if _, err := c.Logical().Write("database/roles/app", map[string]any{
		"db_name":             "production",
		"creation_statements": `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
		"default_ttl":         "1h",
	}); err != nil {
		t.Fatal(err)
	}
	s, err := c.Logical().Read("database/creds/app")
	if err != nil {
		t.Fatalf("reading creds: %v", err)
	}
	username, _ := s.Data["username"].(string)
	password, _ := s.Data["password"].(string)
	if !regexp.MustCompile(`^[0-9]{32}$`).MatchString(password) {
		t.Fatalf("a password of %d characters does not follow the policy db-digits (32 digits)", len(password))
	}
	if !canLogin(pg, username, password) {
		t.Fatal("the issued credentials do not log in")
	}
	if _, err := c.Logical().Write("database/config/production", map[string]any{"password_policy": "missing"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Read("database/creds/app"); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("creds with a password policy that does not exist: %v", err)
	}
}
