package ha_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/testutil/arcaproc"
)

// TestPGLeaseRevokedAfterKill: a database credential with a short lease,
// issued by the active server just before it is killed with SIGKILL, is
// revoked by the server that takes over (its PostgreSQL role dropped, the
// lease gone).
func TestPGLeaseRevokedAfterKill(t *testing.T) {
	pg, servers, root, a := pgCluster(t)
	c, _ := arcaproc.Client(servers[a].Addr, root)
	if err := c.Sys().Mount("database", &vault.MountInput{Type: "database"}); err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, `CREATE ROLE ha_admin WITH LOGIN SUPERUSER PASSWORD 'ha_admin_password'`)
	if _, err := c.Logical().Write("database/config/production", map[string]any{
		"plugin_name": "postgresql-database-plugin", "connection_url": pg.TemplateURL(),
		"allowed_roles": "short", "username": "ha_admin", "password": "ha_admin_password",
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("database/roles/short", map[string]any{
		"db_name":             "production",
		"creation_statements": `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
		"default_ttl":         "8s", "max_ttl": "1m",
	}); err != nil {
		t.Fatal(err)
	}
	s, err := c.Logical().Read("database/creds/short")
	if err != nil {
		t.Fatal(err)
	}
	user, _ := s.Data["username"].(string)
	if user == "" || !pg.RoleExists(t, user) {
		t.Fatalf("the credential's role %q does not exist", user)
	}
	servers[a].Kill()
	rest := append(append([]*arcaproc.Server{}, servers[:a]...), servers[a+1:]...)
	b, err := arcaproc.WaitActive(rest, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for pg.RoleExists(t, user) {
		if time.Now().After(deadline) {
			t.Fatalf("the role of a lease due 8 s after issue still exists a minute later")
		}
		time.Sleep(200 * time.Millisecond)
	}
	nc, _ := arcaproc.Client(rest[b].Addr, root)
	_, err = nc.Sys().Lookup(s.LeaseID)
	var re *vault.ResponseError
	if err == nil || !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest || !strings.Contains(err.Error(), "invalid lease") {
		t.Fatalf("lookup of the revoked lease on the new active server: %v", err)
	}
}
