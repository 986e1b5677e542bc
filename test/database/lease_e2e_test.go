package database_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/jackc/pgx/v5"

	"github.com/arcasec/arca/internal/logical/leasetest"
	"github.com/arcasec/arca/internal/server"
	"github.com/arcasec/arca/internal/server/servertest"
	"github.com/arcasec/arca/internal/testutil/pgtest"
)

// The tests in this file drive dynamic credentials through a running
// server: the core's lease manager issues, renews, expires and revokes
// them, and PostgreSQL is checked for what that did to the users.

// issueCreation is the role of the issue's flow, as written there.
const issueCreation = `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}";`

// clockStart is a manual clock's start: the real time, to the second, so
// that VALID UNTIL, which PostgreSQL compares with its own clock, lies
// ahead of the real time as it lies ahead of the manual one.
func clockStart() time.Time { return time.Now().UTC().Truncate(time.Second) }

// leaseServer starts a dev server on a manual clock with the database
// engine at database/, configured with database/config/production for pg
// and the issue's role app-readonly (default_ttl 1h, max_ttl 24h).
func leaseServer(t *testing.T, pg *pgtest.Cluster) (*vault.Client, *leasetest.Clock) {
	t.Helper()
	clock := leasetest.NewClock(clockStart())
	srv, res, err := server.StartDev(context.Background(), server.DevOptions{ListenAddress: "127.0.0.1:0", Clock: clock}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	c := newClient(t, "http://"+res.Address, res.RootToken)
	if err := c.Sys().Mount("database", &vault.MountInput{Type: "database"}); err != nil {
		t.Fatalf("enabling the database engine: %v", err)
	}
	writeConfig(t, c, pg, "app-readonly,app-readwrite")
	writeRole(t, c, "app-readonly", issueCreation, "1h", "24h")
	return c, clock
}

func newClient(t *testing.T, addr, token string) *vault.Client {
	t.Helper()
	conf := vault.DefaultConfig()
	conf.Address = addr
	conf.MaxRetries = 0
	c, err := vault.NewClient(conf)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
}

func writeRole(t *testing.T, c *vault.Client, name, creation, defaultTTL, maxTTL string) {
	t.Helper()
	if _, err := c.Logical().Write("database/roles/"+name, map[string]any{
		"db_name": "production", "creation_statements": creation, "default_ttl": defaultTTL, "max_ttl": maxTTL,
	}); err != nil {
		t.Fatalf("writing role %s: %v", name, err)
	}
}

// creds reads database/creds/<role> and returns the secret with its
// username and password.
func creds(t *testing.T, c *vault.Client, role string) (s *vault.Secret, username, password string) {
	t.Helper()
	s, err := c.Logical().Read("database/creds/" + role)
	if err != nil {
		t.Fatalf("reading database/creds/%s: %v", role, err)
	}
	username, _ = s.Data["username"].(string)
	password, _ = s.Data["password"].(string)
	if username == "" || password == "" {
		t.Fatalf("database/creds/%s returned no username or password", role)
	}
	return s, username, password
}

func validUntil(t *testing.T, pg *pgtest.Cluster, username string) time.Time {
	t.Helper()
	return pg.Query(t, `SELECT rolvaliduntil FROM pg_roles WHERE rolname = $1`, username).(time.Time)
}

// eventually waits for cond, which the server's own goroutines (the expiry
// and rollback loops) make true. The deadline only stops a broken test
// from hanging; nothing here measures time.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// advanceUntil moves the clock by step at a time until cond holds: time
// passes for the server's loops as it would on a real clock, whatever
// moment each of them happens to be waiting from.
func advanceUntil(t *testing.T, clock *leasetest.Clock, step time.Duration, what string, cond func() bool) {
	t.Helper()
	eventually(t, what, func() bool {
		if cond() {
			return true
		}
		clock.Advance(step)
		return false
	})
}

// wantDropped waits for the user to be dropped by the server.
func wantDropped(t *testing.T, pg *pgtest.Cluster, username string) {
	t.Helper()
	eventually(t, "user "+username+" dropped", func() bool { return !pg.RoleExists(t, username) })
}

func wantInvalidLease(t *testing.T, c *vault.Client, leaseID string) {
	t.Helper()
	_, err := c.Sys().Lookup(leaseID)
	if statusOf(err) != 400 || !strings.Contains(err.Error(), "invalid lease") {
		t.Fatalf("lookup of %s: err = %v, want 400 invalid lease", leaseID, err)
	}
}

func lookupLease(t *testing.T, c *vault.Client, leaseID string) map[string]any {
	t.Helper()
	s, err := c.Sys().Lookup(leaseID)
	if err != nil {
		t.Fatalf("looking up %s: %v", leaseID, err)
	}
	return s.Data
}

func number(t *testing.T, v any) int64 {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("%v (%T) is not a number", v, v)
	}
	i, err := n.Int64()
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// The issue's flow through the Go client: a lease under
// database/creds/app-readonly/, credentials that log in and read, renewals
// that move VALID UNTIL and stop at max_ttl, and a revocation that ends
// the user's session and drops it.
func TestDynamicCredsLeaseLifecycleThroughServer(t *testing.T) {
	pg := pgtest.Start(t)
	pg.Exec(t, `CREATE TABLE orders (id int)`)
	pg.Exec(t, `INSERT INTO orders VALUES (1)`)
	c, clock := leaseServer(t, pg)

	s, username, password := creds(t, c, "app-readonly")
	if !strings.HasPrefix(s.LeaseID, "database/creds/app-readonly/") || len(s.LeaseID) <= len("database/creds/app-readonly/") {
		t.Fatalf("lease_id = %q, want database/creds/app-readonly/<id>", s.LeaseID)
	}
	if s.LeaseDuration != 3600 || !s.Renewable {
		t.Fatalf("lease_duration %d renewable %v, want 3600 and true", s.LeaseDuration, s.Renewable)
	}
	issued, err := time.Parse(time.RFC3339Nano, lookupLease(t, c, s.LeaseID)["issue_time"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if got := validUntil(t, pg, username); !got.Equal(issued.Add(time.Hour)) {
		t.Fatalf("VALID UNTIL %v, want the lease's end %v", got, issued.Add(time.Hour))
	}

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.URLFor(username, password))
	if err != nil {
		t.Fatalf("the issued credentials do not log in: %v", err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM orders`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("SELECT as the issued user: %d, %v", n, err)
	}

	// Half an hour on, a renewal by an hour: the lease and the user both
	// end an hour from now.
	clock.Advance(30 * time.Minute)
	r, err := c.Sys().Renew(s.LeaseID, 3600)
	if err != nil {
		t.Fatalf("renew: %v", err)
	}
	if r.LeaseID != s.LeaseID || r.LeaseDuration != 3600 || !r.Renewable {
		t.Fatalf("renew = lease %s duration %d renewable %v", r.LeaseID, r.LeaseDuration, r.Renewable)
	}
	if got, want := validUntil(t, pg, username), issued.Add(90*time.Minute); !got.Equal(want) {
		t.Fatalf("after renew, VALID UNTIL %v, want %v", got, want)
	}
	if ttl := number(t, lookupLease(t, c, s.LeaseID)["ttl"]); ttl != 3600 {
		t.Fatalf("lookup ttl after renew = %d, want 3600", ttl)
	}

	// A renewal by a day is cut to what max_ttl leaves: 23h30m.
	r, err = c.Sys().Renew(s.LeaseID, 86400)
	if err != nil {
		t.Fatalf("renew by a day: %v", err)
	}
	if r.LeaseDuration != 84600 || len(r.Warnings) == 0 {
		t.Fatalf("renew by a day: lease_duration %d warnings %v, want 84600 and a warning", r.LeaseDuration, r.Warnings)
	}
	if got, want := validUntil(t, pg, username), issued.Add(24*time.Hour); !got.Equal(want) {
		t.Fatalf("renew by a day: VALID UNTIL %v, want the cap %v", got, want)
	}

	// Half an hour before max_ttl, a renewal by an hour gets half an hour,
	// in Arca and in PostgreSQL.
	clock.Advance(23 * time.Hour)
	r, err = c.Sys().Renew(s.LeaseID, 3600)
	if err != nil {
		t.Fatalf("renew near max_ttl: %v", err)
	}
	if r.LeaseDuration != 1800 || len(r.Warnings) == 0 {
		t.Fatalf("renew past max_ttl: lease_duration %d warnings %v, want 1800 and a warning", r.LeaseDuration, r.Warnings)
	}
	if got, want := validUntil(t, pg, username), issued.Add(24*time.Hour); !got.Equal(want) {
		t.Fatalf("renew past max_ttl: VALID UNTIL %v, want the cap %v", got, want)
	}

	// Revoke: the open session ends and the user is gone.
	if err := c.Sys().Revoke(s.LeaseID); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if pg.RoleExists(t, username) {
		t.Fatal("the user survived a synchronous revocation")
	}
	if err := conn.QueryRow(ctx, `SELECT 1`).Scan(&n); err == nil {
		t.Fatal("the revoked user's open session still answers")
	}
	wantInvalidLease(t, c, s.LeaseID)
	if _, err := c.Sys().Renew(s.LeaseID, 3600); statusOf(err) != 400 {
		t.Fatalf("renewing a revoked lease: %v, want 400", err)
	}
}

// Every other way a lease ends drops its user: expiry on the clock,
// revocation of the token that read it, and revoke-prefix.
func TestDynamicCredsLeaseEndsDropTheUser(t *testing.T) {
	pg := pgtest.Start(t)
	c, clock := leaseServer(t, pg)

	t.Run("expiry", func(t *testing.T) {
		writeRole(t, c, "app-readwrite", issueCreation, "3s", "1h")
		s, username, _ := creds(t, c, "app-readwrite")
		if s.LeaseDuration != 3 {
			t.Fatalf("lease_duration = %d, want 3", s.LeaseDuration)
		}
		clock.Advance(2 * time.Second)
		if !pg.RoleExists(t, username) {
			t.Fatal("the user was dropped before its lease expired")
		}
		lookupLease(t, c, s.LeaseID)
		clock.Advance(time.Second)
		advanceUntil(t, clock, time.Second, "the expired user dropped", func() bool { return !pg.RoleExists(t, username) })
		wantInvalidLease(t, c, s.LeaseID)
	})

	t.Run("token revoked", func(t *testing.T) {
		if err := c.Sys().PutPolicy("app", `path "database/creds/app-readonly" { capabilities = ["read"] }`); err != nil {
			t.Fatal(err)
		}
		tok, err := c.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"app"}})
		if err != nil {
			t.Fatal(err)
		}
		app, _ := c.Clone()
		app.SetToken(tok.Auth.ClientToken)
		mine, mineUser, _ := creds(t, app, "app-readonly")
		other, otherUser, _ := creds(t, c, "app-readonly")

		if err := c.Auth().Token().RevokeTree(tok.Auth.ClientToken); err != nil {
			t.Fatal(err)
		}
		wantDropped(t, pg, mineUser)
		wantInvalidLease(t, c, mine.LeaseID)
		if !pg.RoleExists(t, otherUser) {
			t.Fatal("revoking a token dropped a user another token read")
		}
		lookupLease(t, c, other.LeaseID)
		if err := c.Sys().Revoke(other.LeaseID); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("revoke-prefix", func(t *testing.T) {
		writeRole(t, c, "app-readwrite", issueCreation, "1h", "24h")
		a, userA, _ := creds(t, c, "app-readonly")
		b, userB, _ := creds(t, c, "app-readonly")
		kept, keptUser, _ := creds(t, c, "app-readwrite")
		if err := c.Sys().RevokePrefix("database/creds/app-readonly/"); err != nil {
			t.Fatalf("revoke-prefix: %v", err)
		}
		for _, u := range []string{userA, userB} {
			if pg.RoleExists(t, u) {
				t.Fatalf("user %s survived revoke-prefix", u)
			}
		}
		wantInvalidLease(t, c, a.LeaseID)
		wantInvalidLease(t, c, b.LeaseID)
		if !pg.RoleExists(t, keptUser) {
			t.Fatal("revoke-prefix of app-readonly dropped a user of app-readwrite")
		}
		lookupLease(t, c, kept.LeaseID)
	})

	// Last: it takes the engine away.
	t.Run("engine disabled", func(t *testing.T) {
		s, username, _ := creds(t, c, "app-readonly")
		if err := c.Sys().Unmount("database"); err != nil {
			t.Fatalf("disabling the engine: %v", err)
		}
		if pg.RoleExists(t, username) {
			t.Fatal("disabling the engine left the user of its lease")
		}
		if n := pg.Query(t, `SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-%'`).(int64); n != 0 {
			t.Fatalf("%d issued users outlived the engine", n)
		}
		wantInvalidLease(t, c, s.LeaseID)
	})
}

// quietLog discards the server's log.
func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// boltServer starts an uninitialised server on a bolt file and a manual
// clock; several may run one after another on the same file.
func boltServer(t *testing.T, path string, clock *leasetest.Clock) (*server.Server, string) {
	return servertest.StartConfig(t, &server.Config{
		Storage: server.StorageConfig{Type: "bolt", Options: map[string]string{"path": path}},
		Clock:   clock,
	}, nil)
}

// A server stopped while leases run and started again later still revokes
// them: the one that expired while it was down at once, the other when it
// expires after the restart. Storage is a bolt file, as in production.
func TestDynamicCredsLeasesSurviveARestart(t *testing.T) {
	pg := pgtest.Start(t)
	clock := leasetest.NewClock(clockStart())
	path := filepath.Join(t.TempDir(), "arca.db")
	start := func() (*server.Server, string) { return boltServer(t, path, clock) }
	ctx := context.Background()
	srv, addr := start()
	root, key := servertest.InitUnseal(t, srv)
	c := newClient(t, addr, root)
	if err := c.Sys().Mount("database", &vault.MountInput{Type: "database"}); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, c, pg, "*")
	writeRole(t, c, "short", issueCreation, "10m", "1h")
	writeRole(t, c, "long", issueCreation, "1h", "2h")
	short, shortUser, _ := creds(t, c, "short")
	long, longUser, _ := creds(t, c, "long")

	clock.Advance(5 * time.Minute) // mid-TTL for both
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	clock.Advance(25 * time.Minute) // short expires while the server is down
	if !pg.RoleExists(t, shortUser) || !pg.RoleExists(t, longUser) {
		t.Fatal("a user was dropped while the server was down")
	}

	srv, addr = start()
	if err := srv.Core.Unseal(ctx, key); err != nil {
		t.Fatal(err)
	}
	c = newClient(t, addr, root)
	wantDropped(t, pg, shortUser)
	wantInvalidLease(t, c, short.LeaseID)
	if !pg.RoleExists(t, longUser) {
		t.Fatal("the restart dropped a user whose lease had not expired")
	}
	if ttl := number(t, lookupLease(t, c, long.LeaseID)["ttl"]); ttl != 30*60 {
		t.Fatalf("ttl of the live lease after the restart = %d, want %d", ttl, 30*60)
	}
	clock.Advance(30 * time.Minute)
	advanceUntil(t, clock, time.Second, "the user of the lease that expired after the restart dropped", func() bool { return !pg.RoleExists(t, longUser) })
	wantInvalidLease(t, c, long.LeaseID)
}

// A revocation while PostgreSQL is down fails, keeps the lease, shows the
// attempts in lookup, is retried by the manager with growing waits, and
// completes once PostgreSQL is back.
func TestDynamicCredsRevocationRetriedWhilePostgresIsDown(t *testing.T) {
	pg := pgtest.Start(t)
	c, clock := leaseServer(t, pg)
	s, username, _ := creds(t, c, "app-readonly")

	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	err := c.Sys().Revoke(s.LeaseID)
	if err == nil {
		t.Fatal("revoke reported success with PostgreSQL down")
	}
	if strings.Contains(err.Error(), pg.Password) || strings.Contains(err.Error(), "vault_admin_password") {
		t.Fatal("the revocation error holds a password")
	}
	attempts := func() (int64, time.Time, map[string]any) {
		info := lookupLease(t, c, s.LeaseID)
		n, _ := info["revoke_attempts"].(json.Number).Int64()
		next, err := time.Parse(time.RFC3339Nano, info["next_revoke_attempt"].(string))
		if err != nil {
			t.Fatalf("next_revoke_attempt %v: %v", info["next_revoke_attempt"], err)
		}
		return n, next, info
	}
	n, next, info := attempts()
	if n != 1 || info["last_revoke_error"] == "" || info["renewable"] != false {
		t.Fatalf("lookup after a failed revocation = %v", info)
	}
	if msg, _ := info["last_revoke_error"].(string); strings.Contains(msg, pg.Password) || strings.Contains(msg, "vault_admin_password") {
		t.Fatal("last_revoke_error holds a password")
	}
	firstWait := next.Sub(clock.Now())
	if firstWait <= 0 {
		t.Fatalf("next_revoke_attempt %v is not after now %v", next, clock.Now())
	}

	// The manager's own retry fails too, and waits longer before the next.
	advanceUntil(t, clock, 100*time.Millisecond, "a second revocation attempt", func() bool { n, _, _ := attempts(); return n >= 2 })
	_, later, _ := attempts()
	if wait := later.Sub(next); wait <= firstWait {
		t.Fatalf("the backoff did not grow: %v, then at least %v", firstWait, wait)
	}

	if err := pg.Restart(); err != nil {
		t.Fatal(err)
	}
	if !pg.RoleExists(t, username) {
		t.Fatal("the user vanished while PostgreSQL was down")
	}
	advanceUntil(t, clock, time.Second, "the retried revocation drops the user", func() bool { return !pg.RoleExists(t, username) })
	eventually(t, "the revoked lease is deleted", func() bool {
		_, err := c.Sys().Lookup(s.LeaseID)
		return statusOf(err) == 400
	})
}

// A static role's scheduled rotation runs on a server by itself: the core's
// rollback loop calls the engine's periodic function on the core's clock.
func TestStaticRoleRotatesOnScheduleThroughServer(t *testing.T) {
	pg := pgtest.Start(t)
	c, clock := leaseServer(t, pg)
	pg.Exec(t, `CREATE ROLE app_static WITH LOGIN`)
	if _, err := c.Logical().Write("database/config/production", map[string]any{"allowed_roles": "*"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("database/static-roles/app", map[string]any{
		"db_name": "production", "username": "app_static", "rotation_period": "1h",
	}); err != nil {
		t.Fatalf("creating the static role: %v", err)
	}
	password := func() string {
		s, err := c.Logical().Read("database/static-creds/app")
		if err != nil {
			t.Fatal(err)
		}
		return s.Data["password"].(string)
	}
	first := password()
	clock.Advance(30 * time.Minute)
	if password() != first {
		t.Fatal("rotated before the rotation_period passed")
	}
	clock.Advance(30 * time.Minute)
	advanceUntil(t, clock, time.Minute, "the scheduled rotation", func() bool { return password() != first })
	second := password()
	if !canLogin(pg, "app_static", second) || canLogin(pg, "app_static", first) {
		t.Fatal("after the scheduled rotation only the new password must log in")
	}
}

// A server that stops after creating a user and before leasing it leaves a
// write-ahead log entry, and the next server's rollback loop drops that
// user; a user whose lease was stored is left alone. The stop is the state
// on disk mid-request: a copy of the bolt file taken while a creation
// statement holds the request after the user was committed.
func TestHalfCreatedUserRolledBackAfterACrash(t *testing.T) {
	pg := pgtest.Start(t)
	clock := leasetest.NewClock(clockStart())
	dir := t.TempDir()
	start := func(path string) (*server.Server, string) { return boltServer(t, path, clock) }
	ctx := context.Background()
	srv, addr := start(filepath.Join(dir, "arca.db"))
	root, key := servertest.InitUnseal(t, srv)
	c := newClient(t, addr, root)
	if err := c.Sys().Mount("database", &vault.MountInput{Type: "database"}); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, c, pg, "*")
	writeRole(t, c, "app", issueCreation, "1h", "24h")
	leased, leasedUser, _ := creds(t, c, "app")

	// The user is committed, then the request waits in PostgreSQL.
	writeRole(t, c, "stalls", `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}'; COMMIT; SELECT pg_sleep(600)`, "1h", "24h")
	done := make(chan error, 1)
	go func() {
		_, err := c.Logical().Read("database/creds/stalls")
		done <- err
	}()
	var halfCreated string
	eventually(t, "the creation statements reach pg_sleep", func() bool {
		v := pg.Query(t, `SELECT coalesce(max(rolname), '') FROM pg_roles WHERE rolname LIKE 'v-root-stalls-%'`).(string)
		halfCreated = v
		return v != "" && pg.Query(t, `SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'`).(int64) > 0
	})
	crashed := filepath.Join(dir, "crashed.db")
	raw, err := os.ReadFile(filepath.Join(dir, "arca.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(crashed, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	// End the first server's request and the server: only the copy goes on.
	pg.Query(t, `SELECT count(pg_cancel_backend(pid)) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'`)
	<-done
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if !pg.RoleExists(t, halfCreated) {
		t.Fatal("the half-created user is gone before any rollback")
	}

	srv, addr = start(crashed)
	if err := srv.Core.Unseal(ctx, key); err != nil {
		t.Fatal(err)
	}
	c = newClient(t, addr, root)
	clock.Advance(5 * time.Minute)
	if !pg.RoleExists(t, halfCreated) {
		t.Fatal("a write-ahead log entry younger than the rollback age was rolled back")
	}
	advanceUntil(t, clock, time.Minute, "the rollback drops the half-created user", func() bool { return !pg.RoleExists(t, halfCreated) })
	if !pg.RoleExists(t, leasedUser) {
		t.Fatal("the rollback dropped a user whose lease exists")
	}
	lookupLease(t, c, leased.LeaseID)
}
