package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/arcasec/arca/internal/storage"
	"github.com/arcasec/arca/internal/storage/postgres"
	"github.com/arcasec/arca/internal/storage/storagetest"
	"github.com/arcasec/arca/internal/testutil/pgtest"
)

// One cluster serves the whole package; each test has its own table.
var cluster *pgtest.Cluster

func TestMain(m *testing.M) {
	c, err := pgtest.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cluster = c
	code := m.Run()
	c.Close()
	os.Exit(code)
}

var tableSeq atomic.Int64

func open(t *testing.T, extra map[string]string) *postgres.Backend {
	t.Helper()
	conf := map[string]string{"connection_url": cluster.URL(), "table": fmt.Sprintf("t%d_kv", tableSeq.Add(1))}
	for k, v := range extra {
		conf[k] = v
	}
	b, err := postgres.Open(context.Background(), conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestConformance(t *testing.T) { storagetest.Run(t, open(t, nil)) }

func TestNewByKind(t *testing.T) {
	for _, kind := range []string{"postgresql", "postgres"} {
		b, err := storage.New(kind, map[string]string{"connection_url": cluster.URL(), "table": "bykind"})
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		b.Close()
	}
}

// TestListMatchesBolt applies the same random writes to bolt and
// PostgreSQL and compares List for every prefix: folders and leaves of the
// same name, bytes around "/" and non-ASCII keys.
func TestListMatchesBolt(t *testing.T) {
	ctx := context.Background()
	pg := open(t, nil)
	bolt, err := storage.OpenBolt(filepath.Join(t.TempDir(), "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer bolt.Close()
	parts := []string{"a", "a-", "a0", "a.b", "b", "é", "\xff", "\xff\xff", "z z", ""}
	r := rand.New(rand.NewPCG(1, 2))
	var prefixes []string
	for i := 0; i < 400; i++ {
		n := 1 + r.IntN(4)
		segs := make([]string, n)
		for j := range segs {
			segs[j] = parts[r.IntN(len(parts))]
		}
		key := strings.Join(segs, "/")
		if key == "" {
			continue // bolt refuses an empty key
		}
		for j := 1; j < n; j++ {
			prefixes = append(prefixes, strings.Join(segs[:j], "/")+"/")
		}
		op := storage.Op{Kind: storage.OpPut, Entry: &storage.Entry{Key: key, Value: []byte(key)}}
		if r.IntN(5) == 0 {
			op.Kind = storage.OpDelete
		}
		for _, s := range []storage.Backend{pg, bolt} {
			if err := s.Transaction(ctx, []storage.Op{op}); err != nil {
				t.Fatalf("%q: %v", key, err)
			}
		}
	}
	prefixes = append(prefixes, "", "nothing/", "\xff/")
	for _, p := range prefixes {
		want, err := bolt.List(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pg.List(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("List(%q)\n got %q\nwant %q", p, got, want)
		}
	}
}

// TestSurvivesPostgresRestart: a restart of PostgreSQL (every connection
// cut) costs no more than the requests in flight; the next ones work.
func TestSurvivesPostgresRestart(t *testing.T) {
	c := pgtest.Start(t)
	ctx := context.Background()
	b, err := postgres.Open(ctx, map[string]string{"connection_url": c.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Put(ctx, &storage.Entry{Key: "k/1", Value: []byte("one")}); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "k/1"); err == nil {
		t.Fatal("read from a stopped database")
	}
	if err := c.Restart(); err != nil {
		t.Fatal(err)
	}
	// The pool holds connections the restart broke: the first use of each
	// must be retried, not returned as an error.
	for i := 0; i < 5; i++ {
		if e, err := b.Get(ctx, "k/1"); err != nil || e == nil || string(e.Value) != "one" {
			t.Fatalf("read after restart: %v, %v", e, err)
		}
		if err := b.Put(ctx, &storage.Entry{Key: fmt.Sprintf("k/%d", i+2), Value: []byte("x")}); err != nil {
			t.Fatalf("write after restart: %v", err)
		}
		if keys, err := b.List(ctx, "k/"); err != nil || len(keys) != i+2 {
			t.Fatalf("list after restart: %v, %v", keys, err)
		}
	}
	if err := b.Transaction(ctx, []storage.Op{{Kind: storage.OpDelete, Entry: &storage.Entry{Key: "k/1"}}}); err != nil {
		t.Fatalf("transaction after restart: %v", err)
	}
}

func TestValuesAreStoredAsGiven(t *testing.T) {
	ctx := context.Background()
	b := open(t, map[string]string{"table": "asgiven"})
	val := []byte{0, 1, 2, 0xff, 'x'}
	if err := b.Put(ctx, &storage.Entry{Key: "core/keyring", Value: val}); err != nil {
		t.Fatal(err)
	}
	var raw []byte
	if err := b.Pool().QueryRow(ctx, `SELECT value FROM asgiven WHERE key = $1`, []byte("core/keyring")).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(raw, val) {
		t.Fatalf("row holds %x, want %x", raw, val)
	}
}

// TestWithoutCreatePrivilege: a user that may not create tables gets the
// exact DDL to hand to an administrator; once it has run, the same user
// opens the store.
func TestWithoutCreatePrivilege(t *testing.T) {
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, cluster.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	n := tableSeq.Add(1) // names of their own, so the test repeats with -count
	role, table := fmt.Sprintf("limited%d", n), fmt.Sprintf("limited%d_kv", n)
	for _, q := range []string{
		`CREATE ROLE ` + role + ` LOGIN PASSWORD 'limited-pw'`,
		`REVOKE CREATE ON SCHEMA public FROM PUBLIC`,
	} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	conf := map[string]string{"connection_url": cluster.URLFor(role, "limited-pw"), "table": table}
	_, err = postgres.New(conf)
	ddl, _ := postgres.DDL(table)
	if err == nil || !strings.Contains(err.Error(), ddl) || strings.Contains(err.Error(), "limited-pw") {
		t.Fatalf("without CREATE: %v", err)
	}
	if _, err := admin.Exec(ctx, ddl); err != nil {
		t.Fatalf("the printed DDL does not run: %v", err)
	}
	if _, err := admin.Exec(ctx, `GRANT SELECT, INSERT, UPDATE, DELETE ON `+table+`, `+table+`_schema TO `+role); err != nil {
		t.Fatal(err)
	}
	b, err := postgres.New(conf)
	if err != nil {
		t.Fatalf("after the DDL ran: %v", err)
	}
	defer b.Close()
	storagetest.Run(t, b)
}

func TestSkipCreateTable(t *testing.T) {
	_, err := postgres.New(map[string]string{"connection_url": cluster.URL(), "table": "never_made", "skip_create_table": "true"})
	if err == nil || !strings.Contains(err.Error(), "CREATE TABLE") {
		t.Fatalf("skip_create_table with no table: %v", err)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	table := fmt.Sprintf("future%d_kv", tableSeq.Add(1))
	b := open(t, map[string]string{"table": table})
	if _, err := b.Pool().Exec(ctx, `UPDATE `+table+`_schema SET version = 99`); err != nil {
		t.Fatal(err)
	}
	_, err := postgres.New(map[string]string{"connection_url": cluster.URL(), "table": table})
	if err == nil || !strings.Contains(err.Error(), "99") {
		t.Fatalf("newer schema: %v", err)
	}
}

func TestConnectionURLFromEnvironment(t *testing.T) {
	t.Setenv("VAULT_PG_CONNECTION_URL", "postgres://nobody@127.0.0.1:1/x?connect_timeout=1")
	t.Setenv("ARCA_PG_CONNECTION_URL", cluster.URL())
	b, err := postgres.New(map[string]string{"table": "fromenv"})
	if err != nil {
		t.Fatalf("ARCA_PG_CONNECTION_URL should win: %v", err)
	}
	b.Close()
	t.Setenv("ARCA_PG_CONNECTION_URL", "")
	t.Setenv("VAULT_PG_CONNECTION_URL", cluster.URL())
	if b, err = postgres.New(map[string]string{"table": "fromenv"}); err != nil {
		t.Fatalf("VAULT_PG_CONNECTION_URL: %v", err)
	}
	b.Close()
}

func TestRejectsBadOptions(t *testing.T) {
	for _, tc := range []struct {
		conf map[string]string
		want string
	}{
		{map[string]string{}, "connection_url"},
		{map[string]string{"connection_url": cluster.URL(), "table": "x; DROP TABLE y"}, "table"},
		{map[string]string{"connection_url": cluster.URL(), "max_parallel": "0"}, "max_parallel"},
		{map[string]string{"connection_url": cluster.URL(), "ha_enabled": "perhaps"}, "ha_enabled"},
		{map[string]string{"connection_url": cluster.URL(), "colour": "blue"}, "colour"},
		{map[string]string{"connection_url": "postgres://u:s3cret@[bad"}, "connection_url"},
		{map[string]string{"connection_url": cluster.URLFor(pgtest.Superuser, "s3cret")}, "password authentication failed"},
	} {
		t.Setenv("ARCA_PG_CONNECTION_URL", "")
		t.Setenv("VAULT_PG_CONNECTION_URL", "")
		_, err := postgres.New(tc.conf)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%v: %v", tc.conf, err)
		}
	}
}

// BenchmarkList lists a folder of 100 children, each a folder of 100 keys,
// and a folder of 10,000 leaves: the skip scan probes once per child.
func BenchmarkList(b *testing.B) {
	ctx := context.Background()
	be, err := postgres.Open(ctx, map[string]string{"connection_url": cluster.URL(), "table": fmt.Sprintf("bench_list_%d", tableSeq.Add(1))})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	var ops []storage.Op
	for i := 0; i < 100; i++ {
		for j := 0; j < 100; j++ {
			ops = append(ops, storage.Op{Kind: storage.OpPut, Entry: &storage.Entry{Key: fmt.Sprintf("deep/%03d/%03d", i, j), Value: []byte("v")}})
			ops = append(ops, storage.Op{Kind: storage.OpPut, Entry: &storage.Entry{Key: fmt.Sprintf("flat/%05d", i*100+j), Value: []byte("v")}})
		}
	}
	if err := be.Transaction(ctx, ops); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		prefix string
		n      int
	}{{"deep/", 100}, {"flat/", 10000}, {"", 2}} {
		b.Run(strings.TrimSuffix(tc.prefix, "/")+"root", func(b *testing.B) {
			for b.Loop() {
				keys, err := be.List(ctx, tc.prefix)
				if err != nil || len(keys) != tc.n {
					b.Fatalf("%d keys, %v", len(keys), err)
				}
			}
		})
	}
}

// TestServersStartTogether: servers started at once on a new database
// create the tables once, and every one of them opens the store.
func TestServersStartTogether(t *testing.T) {
	table := fmt.Sprintf("together%d_kv", tableSeq.Add(1))
	conf := map[string]string{"connection_url": cluster.URL(), "table": table}
	errs := make(chan error, 6)
	for i := 0; i < cap(errs); i++ {
		go func() {
			b, err := postgres.New(conf)
			if err == nil {
				b.Close()
			}
			errs <- err
		}()
	}
	for i := 0; i < cap(errs); i++ {
		if err := <-errs; err != nil {
			t.Fatalf("a server starting beside others: %v", err)
		}
	}
	b := open(t, map[string]string{"table": table})
	var rows int
	if err := b.Pool().QueryRow(context.Background(), "SELECT count(*) FROM "+table+"_schema").Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("schema rows = %d, %v; want 1", rows, err)
	}
}
