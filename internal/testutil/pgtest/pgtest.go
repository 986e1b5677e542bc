// Package pgtest starts throwaway PostgreSQL clusters for tests: initdb and
// pg_ctl from Debian's postgresql package (scripts/setup.d/50-postgresql.sh)
// on a free loopback port, in a temporary directory removed at the end.
//
// PostgreSQL refuses to run as root, and CI runs as root: then the cluster
// runs as the "postgres" OS user the package creates.
package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Superuser is the name of the cluster's superuser.
const Superuser = "pgtest_admin"

// Cluster is a running throwaway PostgreSQL cluster.
type Cluster struct {
	Host     string // always 127.0.0.1
	Port     int
	User     string // the superuser
	Password string // the superuser's password (SCRAM over TCP)

	bin      string // the directory of initdb and pg_ctl
	dir      string
	osUser   *user.User // nil when the cluster runs as the current user
	running  bool
	settings []string // extra "name=value" server settings (NewWith)
}

// Start starts a cluster for the test and stops and removes it when the test
// ends. It fails the test when PostgreSQL is not installed.
func Start(t testing.TB) *Cluster {
	t.Helper()
	c, err := New()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return c
}

// New initialises and starts a cluster. The caller must Close it.
func New() (*Cluster, error) { return NewWith() }

// NewWith is New with extra server settings ("name=value"), which win over
// the test defaults: a benchmark passes "fsync=on" to measure a durable
// database.
func NewWith(settings ...string) (*Cluster, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	c := &Cluster{Host: "127.0.0.1", User: Superuser, bin: bin, settings: settings}
	if os.Geteuid() == 0 {
		if c.osUser, err = user.Lookup("postgres"); err != nil {
			return nil, fmt.Errorf("running as root needs the postgres OS user (from the postgresql package): %w", err)
		}
	}
	c.Password = randomHex(16)
	if c.dir, err = os.MkdirTemp("", "pgtest-"); err != nil {
		return nil, err
	}
	if err := c.init(); err != nil {
		os.RemoveAll(c.dir)
		return nil, err
	}
	// A free port may be taken by someone else between our probe and the
	// server's bind: try a few.
	for attempt := 0; ; attempt++ {
		if c.Port, err = freePort(); err == nil {
			if err = c.Restart(); err == nil {
				return c, nil
			}
		}
		if attempt == 4 {
			os.RemoveAll(c.dir)
			return nil, err
		}
	}
}

// init creates the data directory with a password-protected superuser.
func (c *Cluster) init() error {
	pwfile := filepath.Join(c.dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(c.Password+"\n"), 0o600); err != nil {
		return err
	}
	if c.osUser != nil {
		uid, _ := strconv.Atoi(c.osUser.Uid)
		gid, _ := strconv.Atoi(c.osUser.Gid)
		for _, p := range []string{c.dir, pwfile} {
			if err := os.Chown(p, uid, gid); err != nil {
				return err
			}
		}
	}
	err := c.run(filepath.Join(c.bin, "initdb"), "-D", c.dataDir(), "-U", c.User, "--pwfile", pwfile,
		"--auth-host=scram-sha-256", "--auth-local=peer", "--no-sync", "--encoding=UTF8", "--locale=C")
	os.Remove(pwfile)
	return err
}

// Restart starts the cluster again after Stop, on the same port; New starts
// it the first time.
func (c *Cluster) Restart() error {
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s -c fsync=off -c max_connections=50",
		c.Port, c.dir)
	for _, kv := range c.settings {
		opts += " -c " + kv
	}
	if err := c.run(filepath.Join(c.bin, "pg_ctl"), "-D", c.dataDir(), "-l", filepath.Join(c.dir, "log"), "-w", "-o", opts, "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		return fmt.Errorf("%w\n%s", err, log)
	}
	c.running = true
	return nil
}

// Stop stops the cluster at once (connections are cut), keeping its data
// for Restart.
func (c *Cluster) Stop() error {
	if !c.running {
		return nil
	}
	c.running = false
	return c.run(filepath.Join(c.bin, "pg_ctl"), "-D", c.dataDir(), "-m", "immediate", "-w", "stop")
}

// Close stops the cluster and removes its directory.
func (c *Cluster) Close() error {
	err := c.Stop()
	return errors.Join(err, os.RemoveAll(c.dir))
}

// URL returns a connection URL for the superuser to database "postgres".
func (c *Cluster) URL() string {
	return c.URLFor(c.User, c.Password)
}

// URLFor returns a connection URL for another user to database "postgres".
func (c *Cluster) URLFor(username, password string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(username, password),
		Host: net.JoinHostPort(c.Host, strconv.Itoa(c.Port)), Path: "/postgres", RawQuery: "sslmode=disable"}
	return u.String()
}

// TemplateURL returns a connection URL with Vault's {{username}} and
// {{password}} placeholders, as database/config takes it.
func (c *Cluster) TemplateURL() string {
	return fmt.Sprintf("postgresql://{{username}}:{{password}}@%s/postgres?sslmode=disable",
		net.JoinHostPort(c.Host, strconv.Itoa(c.Port)))
}

func (c *Cluster) dataDir() string { return filepath.Join(c.dir, "data") }

// run runs a command as the cluster's OS user.
func (c *Cluster) run(name string, args ...string) error {
	if c.osUser != nil {
		args = append([]string{"-u", c.osUser.Username, "--", name}, args...)
		name = "runuser"
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = c.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", filepath.Base(name), args[len(args)-1], err, out.Bytes())
	}
	return nil
}

// binDir finds the newest installed PostgreSQL's bin directory.
func binDir() (string, error) {
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(found) == 0 {
		return "", errors.New("PostgreSQL is not installed: run scripts/setup.d/50-postgresql.sh")
	}
	major := func(p string) int {
		n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
		return n
	}
	sort.Slice(found, func(i, j int) bool { return major(found[i]) > major(found[j]) })
	return filepath.Dir(found[0]), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Exec runs one statement on the cluster as its superuser, failing t on an
// error.
func (c *Cluster) Exec(t testing.TB, stmt string, args ...any) {
	t.Helper()
	c.withConn(t, func(ctx context.Context, conn *pgx.Conn) {
		if _, err := conn.Exec(ctx, stmt, args...); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	})
}

// Query runs q as the superuser and returns the first column of its one
// row.
func (c *Cluster) Query(t testing.TB, q string, args ...any) any {
	t.Helper()
	var v any
	c.withConn(t, func(ctx context.Context, conn *pgx.Conn) {
		if err := conn.QueryRow(ctx, q, args...).Scan(&v); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	})
	return v
}

// RoleExists reports whether a role (a database user) of that name exists.
func (c *Cluster) RoleExists(t testing.TB, name string) bool {
	t.Helper()
	return c.Query(t, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, name).(bool)
}

func (c *Cluster) withConn(t testing.TB, f func(context.Context, *pgx.Conn)) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.URL())
	if err != nil {
		t.Fatalf("pgtest: connecting: %v", err)
	}
	defer conn.Close(ctx)
	f(ctx, conn)
}
