package servertest

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/arcasec/arca/internal/server"
	"github.com/arcasec/arca/internal/testutil/pgtest"
)

// The PostgreSQL cluster shared by the tests of one package: started by
// the first test that asks for it, stopped by Main when the package's tests
// end. Each test gets its own table, so tests stay independent.
var shared struct {
	sync.Mutex
	cluster *pgtest.Cluster
	err     error
	tables  int
	inMain  bool
}

// Main runs a test package's tests and then stops the PostgreSQL cluster
// they shared, if one was started. Packages that use EachStorage or
// PostgresStorage call it from TestMain:
//
//	func TestMain(m *testing.M) { servertest.Main(m) }
func Main(m *testing.M) {
	shared.Lock()
	shared.inMain = true
	shared.Unlock()
	code := m.Run()
	shared.Lock()
	if shared.cluster != nil {
		if err := shared.cluster.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "servertest: stopping PostgreSQL:", err)
		}
	}
	shared.Unlock()
	os.Exit(code)
}

// PostgresStorage returns a postgresql storage stanza on a new, empty table
// of the package's shared cluster.
func PostgresStorage(t testing.TB) server.StorageConfig {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if !shared.inMain {
		t.Fatal("servertest: PostgresStorage needs TestMain to call servertest.Main, which stops the shared cluster")
	}
	if shared.cluster == nil && shared.err == nil {
		shared.cluster, shared.err = pgtest.New()
	}
	if shared.err != nil {
		t.Fatalf("servertest: starting PostgreSQL: %v", shared.err)
	}
	shared.tables++
	return server.StorageConfig{Type: "postgresql", Options: map[string]string{
		"connection_url": shared.cluster.URL(),
		"table":          fmt.Sprintf("arca_test_%d", shared.tables),
		"max_parallel":   "8", // the test cluster allows 50 connections in all
	}}
}

// BoltStorage returns a bolt storage stanza on a new file in the test's
// temporary directory.
func BoltStorage(t testing.TB) server.StorageConfig {
	return server.StorageConfig{Type: "bolt", Options: map[string]string{"path": filepath.Join(t.TempDir(), "arca.db")}}
}

// EachStorage runs f as one subtest per persistent backend a server-level
// suite must pass on: "bolt" (the embedded default, on a new file) and
// "postgresql" (a new table). Dev servers' inmem storage is what every
// other test runs on.
func EachStorage(t *testing.T, f func(t *testing.T, sc server.StorageConfig)) {
	t.Run("bolt", func(t *testing.T) { f(t, BoltStorage(t)) })
	t.Run("postgresql", func(t *testing.T) { f(t, PostgresStorage(t)) })
}
