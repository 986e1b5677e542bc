package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/jackc/pgx/v5"

	"github.com/arcasec/arca/api"
	"github.com/arcasec/arca/internal/testutil/pgtest"
)

// Helpers shared by the package's tests: clients, files, waiting, and
// PostgreSQL checks.

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor polls cond every 50ms until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fileIs reports whether path holds exactly want.
func fileIs(path, want string) func() bool {
	return func() bool {
		b, err := os.ReadFile(path)
		return err == nil && string(b) == want
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func vaultClient(t *testing.T, addr, token string) *vault.Client {
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

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func kvPut(t *testing.T, c *vault.Client, path string, data map[string]any) {
	t.Helper()
	if _, err := c.Logical().Write("secret/data/"+path, map[string]any{"data": data}); err != nil {
		t.Fatal(err)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// apiClient is Arca's own client (package api), as the agent's parts use.
func apiClient(t *testing.T, addr, token string) *api.Client {
	t.Helper()
	c, err := api.NewClient(api.Config{Address: addr, Token: token, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// canLogIn reports whether username/password opens a session.
func canLogIn(pg *pgtest.Cluster, username, password string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg.URLFor(username, password))
	if err != nil {
		return false
	}
	conn.Close(ctx)
	return true
}

func readFileOrEmpty(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// tokenFileWith writes token to dir/token, for token_file auto-auth.
func tokenFileWith(t *testing.T, dir, token string) string {
	t.Helper()
	path := filepath.Join(dir, "token")
	writeFile(t, path, token)
	return path
}

// tokenAuthHCL is the opening of an agent configuration: the server's
// address and token_file auto-auth from tokenFile.
func tokenAuthHCL(addr, tokenFile string) string {
	return fmt.Sprintf(`
vault { address = %q }
auto_auth {
  method "token_file" { config = { token_file_path = %q } }
}`, addr, tokenFile)
}
