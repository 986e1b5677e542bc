package agent_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/server/servertest"
	"github.com/arcasec/arca/internal/testutil/arcaproc"
	"github.com/arcasec/arca/internal/testutil/pgtest"
)

// databaseServer starts a dev server and a PostgreSQL cluster, with the
// database engine at database/ and a role "app" of the given TTLs.
func databaseServer(t *testing.T, ttl, maxTTL string) (addr, root string, pg *pgtest.Cluster) {
	t.Helper()
	pg = pgtest.Start(t)
	addr, root = servertest.StartDev(t)
	c := vaultClient(t, addr, root)
	if err := c.Sys().Mount("database", &vault.MountInput{Type: "database"}); err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, `CREATE ROLE arca_admin WITH LOGIN SUPERUSER PASSWORD 'arca_admin_password'`)
	if _, err := c.Logical().Write("database/config/app", map[string]any{
		"plugin_name": "postgresql-database-plugin", "connection_url": pg.TemplateURL(),
		"allowed_roles": "app", "username": "arca_admin", "password": "arca_admin_password",
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("database/roles/app", map[string]any{
		"db_name":             "app",
		"creation_statements": `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
		"default_ttl":         ttl, "max_ttl": maxTTL,
	}); err != nil {
		t.Fatal(err)
	}

	return addr, root, pg
}

// TestAgentDatabaseCredsRenewedThenReplacedAtMaxTTL is the issue's
// dynamic-secret proof against real PostgreSQL: a database/creds template
// with a 3 s lease and a 9 s max TTL. The agent renews the lease (the same
// user keeps working past its first TTL), fetches new credentials when the
// lease cannot be renewed any further, re-renders and runs the command each
// time, and the server drops the old user when its lease ends.
func TestAgentDatabaseCredsRenewedThenReplacedAtMaxTTL(t *testing.T) {
	addr, root, pg := databaseServer(t, "3s", "9s")

	dir := t.TempDir()
	tokenFile := tokenFileWith(t, dir, root)
	dest := filepath.Join(dir, "db.env")
	ran := filepath.Join(dir, "ran")
	startAgent(t, dir, tokenAuthHCL(addr, tokenFile)+fmt.Sprintf(`
template {
  contents    = "{{ with secret \"database/creds/app\" }}{{ .Data.username }} {{ .Data.password }} {{ .LeaseDuration }}{{ end }}"
  destination = %q
  command     = "cut -d' ' -f1 %s >> %s"
}
`, dest, dest, ran))

	var firstUser, firstPass string
	waitFor(t, 20*time.Second, "the first credentials", func() bool {
		f := strings.Fields(readFileOrEmpty(dest))
		if len(f) != 3 {
			return false
		}
		firstUser, firstPass = f[0], f[1]
		return true
	})
	if !canLogIn(pg, firstUser, firstPass) {
		t.Fatal("the rendered credentials do not log in")
	}
	issued := time.Now()

	// Renewed: 4.5 s after issue, past the 3 s TTL, the first user is still
	// the rendered one and still there.
	time.Sleep(time.Until(issued.Add(4500 * time.Millisecond)))
	if f := strings.Fields(readFileOrEmpty(dest)); len(f) != 3 || f[0] != firstUser {
		t.Fatalf("the credentials were replaced before max_ttl instead of renewed: %q", f)
	}
	if !pg.RoleExists(t, firstUser) {
		t.Fatal("the first user was dropped: its lease was not renewed")
	}

	// Replaced: new credentials before the 9 s max TTL ends, the command
	// run again, and the old user dropped by the server.
	var secondUser, secondPass string
	waitFor(t, 20*time.Second, "new credentials at max_ttl", func() bool {
		f := strings.Fields(readFileOrEmpty(dest))
		if len(f) != 3 || f[0] == firstUser {
			return false
		}
		secondUser, secondPass = f[0], f[1]
		return true
	})
	if !canLogIn(pg, secondUser, secondPass) {
		t.Fatal("the new credentials do not log in")
	}
	waitFor(t, 10*time.Second, "the command to run for both renders", func() bool {
		return strings.HasPrefix(readFileOrEmpty(ran), firstUser+"\n"+secondUser+"\n")
	})
	waitFor(t, 20*time.Second, "the server to drop the first user", func() bool { return !pg.RoleExists(t, firstUser) })
}

// TestRunRevokesItsLeasesWhenTheCommandEnds: `arca run -dotenv` with
// database credentials revokes their lease when the command exits (the
// user is dropped), unless -revoke=false.
func TestRunRevokesItsLeasesWhenTheCommandEnds(t *testing.T) {
	addr, root, pg := databaseServer(t, "1h", "2h")
	bin, err := arcaproc.Binary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tmpl := filepath.Join(dir, "db.env.tmpl")
	writeFile(t, tmpl, `{{ with secret "database/creds/app" }}DB_USER={{ .Data.username }}
DB_PASSWORD={{ .Data.password }}{{ end }}
`)
	for _, keep := range []bool{false, true} {
		seen := filepath.Join(dir, fmt.Sprint("seen-", keep))
		args := []string{"run", "-mask=false", "-dotenv", tmpl}
		if keep {
			args = append(args, "-revoke=false")
		}
		args = append(args, "--", "/bin/sh", "-c", `echo "$DB_USER" > `+seen)
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "VAULT_ADDR="+addr, "VAULT_TOKEN="+root)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("arca run: %v\n%s", err, out)
		}
		user := strings.TrimSpace(readFile(t, seen))
		if user == "" {
			t.Fatal("the command saw no DB_USER")
		}
		if exists := pg.RoleExists(t, user); exists != keep {
			t.Fatalf("-revoke=%v: the user exists after the command: %v", !keep, exists)
		}
	}
}
