// Package postgres is Arca's PostgreSQL storage backend: every key the
// barrier writes is one row (key bytea primary key, value bytea) of one
// table, so several Arca servers can share a store (HA, ha.go).
//
// The backend sees only what the barrier wrote: ciphertext, never plaintext.
// Keys are stored as bytes, so their order is the byte order bolt uses and
// any key bolt accepts PostgreSQL accepts too (text would refuse invalid
// UTF-8 and NUL). List walks the primary key index with one recursive query
// that jumps over each folder (a "skip scan"), so listing a prefix costs one
// index probe per child, however many keys lie below the children.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/arcasec/arca/internal/storage"
)

// Defaults for the configuration keys.
const (
	DefaultTable       = "arca_kv_store"
	DefaultHATable     = "arca_ha_locks"
	DefaultMaxParallel = 128
)

// SchemaVersion is the layout of the tables this release writes. It is
// stored in the <table>_schema table; a store written by a later release
// (a higher number) is refused rather than misread.
const SchemaVersion = 1

// Options lists the configuration keys the backend reads.
var Options = []string{"connection_url", "table", "max_parallel", "ha_enabled", "ha_table",
	"max_connect_retries", "skip_create_table"}

// Backend is a storage.Backend on a PostgreSQL table.
type Backend struct {
	pool        *pgxpool.Pool
	table       string // quoted identifier
	schemaTable string // quoted identifier
	haEnabled   bool
	haTable     string // unquoted name, as configured

	getSQL, putSQL, deleteSQL, listSQL, listAllSQL string
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$`)

// quoteIdent quotes a table name, optionally schema-qualified.
func quoteIdent(field, name string) (string, error) {
	if !identRE.MatchString(name) {
		return "", fmt.Errorf("postgresql storage: %s %q is not a table name (letters, digits and _, optionally schema.table)", field, name)
	}
	return pgx.Identifier(strings.Split(name, ".")).Sanitize(), nil
}

// New opens the backend from the storage stanza's options; see Options.
// connection_url may come from ARCA_PG_CONNECTION_URL or
// VAULT_PG_CONNECTION_URL (ARCA_ wins) when the stanza does not set it.
func New(conf map[string]string) (storage.Backend, error) { return Open(context.Background(), conf) }

// Open is New returning the concrete type (for HA and tests).
func Open(ctx context.Context, conf map[string]string) (*Backend, error) {
	for k := range conf {
		if !contains(Options, k) {
			return nil, fmt.Errorf("postgresql storage: unknown option %q (it takes %q)", k, Options)
		}
	}
	url := conf["connection_url"]
	if url == "" {
		url = os.Getenv("ARCA_PG_CONNECTION_URL")
	}
	if url == "" {
		url = os.Getenv("VAULT_PG_CONNECTION_URL")
	}
	if url == "" {
		return nil, errors.New("postgresql storage needs connection_url (or ARCA_PG_CONNECTION_URL), e.g. connection_url = \"postgres://arca:...@db:5432/arca\"")
	}
	tableName := orDefault(conf["table"], DefaultTable)
	table, err := quoteIdent("table", tableName)
	if err != nil {
		return nil, err
	}
	schemaTable, err := quoteIdent("table", tableName+"_schema")
	if err != nil {
		return nil, err
	}
	haTable := orDefault(conf["ha_table"], DefaultHATable)
	if _, err := quoteIdent("ha_table", haTable); err != nil {
		return nil, err
	}
	maxParallel, err := intOption(conf, "max_parallel", DefaultMaxParallel, 1)
	if err != nil {
		return nil, err
	}
	retries, err := intOption(conf, "max_connect_retries", 1, 1)
	if err != nil {
		return nil, err
	}
	haEnabled, err := boolOption(conf, "ha_enabled")
	if err != nil {
		return nil, err
	}
	skipCreate, err := boolOption(conf, "skip_create_table")
	if err != nil {
		return nil, err
	}

	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message may quote the URL, password included: say only what is wrong.
		return nil, errors.New("postgresql storage: connection_url is not a valid PostgreSQL connection string or URL")
	}
	pc.MaxConns = int32(min(maxParallel, 1<<30))
	if pc.ConnConfig.ConnectTimeout == 0 {
		// A database host that drops packets must not hold a request (or
		// the start) for the operating system's TCP timeout of minutes;
		// connect_timeout in the URL overrides this.
		pc.ConnConfig.ConnectTimeout = 10 * time.Second
	}
	pc.HealthCheckPeriod = 5 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgresql storage: %w", err)
	}
	// A server started with its database is common (compose, systemd):
	// try max_connect_retries times, one second apart, before giving up.
	for attempt := 1; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = pool.Ping(pctx)
		cancel()
		if err == nil {
			break
		}
		if attempt >= retries {
			pool.Close()
			return nil, fmt.Errorf("postgresql storage: connecting to %s:%d: %w", pc.ConnConfig.Host, pc.ConnConfig.Port, err)
		}
		select {
		case <-ctx.Done():
			pool.Close()
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	b := &Backend{pool: pool, table: table, schemaTable: schemaTable, haEnabled: haEnabled, haTable: haTable}
	b.prepareSQL()
	if err := b.ensureSchema(ctx, tableName, skipCreate); err != nil {
		pool.Close()
		return nil, err
	}
	return b, nil
}

// Pool is the connection pool, shared with the HA lock.
func (b *Backend) Pool() *pgxpool.Pool { return b.pool }

// HAEnabled reports the ha_enabled option.
func (b *Backend) HAEnabled() bool { return b.haEnabled }

// HATable is the ha_table option (unquoted; default arca_ha_locks).
func (b *Backend) HATable() string { return b.haTable }

// Close closes every connection.
func (b *Backend) Close() error {
	b.pool.Close()
	return nil
}

// DDL returns the statements that create the backend's tables, as the
// server runs them (and prints them when it may not).
func DDL(table string) (string, error) {
	qt, err := quoteIdent("table", table)
	if err != nil {
		return "", err
	}
	qs, err := quoteIdent("table", table+"_schema")
	if err != nil {
		return "", err
	}
	return fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
  key   bytea PRIMARY KEY,
  value bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS %s (
  version integer NOT NULL
);
INSERT INTO %s (version) SELECT %d WHERE NOT EXISTS (SELECT 1 FROM %s);`, qt, qs, qs, SchemaVersion, qs), nil
}

// ensureSchema creates the tables when they are missing, or says which
// statements a database administrator must run, and checks the version.
func (b *Backend) ensureSchema(ctx context.Context, tableName string, skipCreate bool) error {
	ddl, _ := DDL(tableName)
	var haveTable, haveSchema bool
	err := b.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL, to_regclass($2) IS NOT NULL`,
		b.table, b.schemaTable).Scan(&haveTable, &haveSchema)
	if err != nil {
		return fmt.Errorf("postgresql storage: looking for table %s: %w", b.table, err)
	}
	if !haveTable || !haveSchema {
		if skipCreate {
			return fmt.Errorf("postgresql storage: table %s or %s does not exist and skip_create_table is set; create them with:\n%s", b.table, b.schemaTable, ddl)
		}
		if err := b.createTables(ctx, tableName, ddl); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && (pe.Code == "42501" || pe.Code == "42P06") { // insufficient_privilege
				return fmt.Errorf("postgresql storage: the database user may not create table %s (%s); have an administrator run:\n%s\nand grant the user SELECT, INSERT, UPDATE, DELETE on both tables", b.table, pe.Message, ddl)
			}
			return fmt.Errorf("postgresql storage: creating table %s: %w", b.table, err)
		}
	}
	var version int
	err = b.pool.QueryRow(ctx, "SELECT max(version) FROM "+b.schemaTable).Scan(&version)
	if err != nil {
		return fmt.Errorf("postgresql storage: reading the schema version from %s (it must hold one row, version %d): %w", b.schemaTable, SchemaVersion, err)
	}
	if version > SchemaVersion {
		return fmt.Errorf("postgresql storage: table %s has schema version %d, written by a newer Arca; this release knows version %d", b.table, version, SchemaVersion)
	}
	return nil
}

// createTables runs the DDL under a transaction-scoped advisory lock:
// servers started together on a new database would otherwise race in
// CREATE TABLE IF NOT EXISTS (PostgreSQL reports a duplicate key in its
// catalog to the loser) and insert the version row twice.
func (b *Backend) createTables(ctx context.Context, tableName, ddl string) error {
	h := fnv.New64a()
	h.Write([]byte("arca storage schema " + tableName))
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(h.Sum64())); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, ddl); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func (b *Backend) prepareSQL() {
	t := b.table
	b.getSQL = "SELECT value FROM " + t + " WHERE key = $1"
	b.putSQL = "INSERT INTO " + t + " (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
	b.deleteSQL = "DELETE FROM " + t + " WHERE key = $1"
	// $1 is the prefix, $2 its length, $3 the first key past every key
	// that starts with the prefix. Each step finds the first key at or
	// after a bound, keeps its part up to the next "/" (a folder) or its
	// end (a leaf), and jumps past everything the child covers: past
	// "prefix/child" for a leaf, to "prefix/child0" ("0" follows "/") for
	// a folder.
	child := func(k string) string {
		rest := "substring(" + k + " FROM $2 + 1)"
		pos := "position('\\x2f'::bytea IN " + rest + ")"
		return "CASE WHEN " + pos + " > 0 THEN substring(" + rest + " FOR " + pos + ") ELSE " + rest + " END"
	}
	next := `CASE WHEN length(w.child) = 0 THEN $1 || '\x00'::bytea
	  WHEN get_byte(w.child, length(w.child) - 1) = 47 THEN $1 || substring(w.child FOR length(w.child) - 1) || '\x30'::bytea
	  ELSE $1 || w.child || '\x00'::bytea END`
	walk := func(upper string) string {
		return `WITH RECURSIVE w(child) AS (
	  SELECT (SELECT ` + child("k.key") + ` FROM ` + t + ` k WHERE k.key >= $1` + upper + ` ORDER BY k.key LIMIT 1)
	UNION ALL
	  SELECT (SELECT ` + child("k.key") + ` FROM ` + t + ` k WHERE k.key >= ` + next + upper + ` ORDER BY k.key LIMIT 1)
	  FROM w WHERE w.child IS NOT NULL
	) SELECT child FROM w WHERE child IS NOT NULL`
	}
	b.listSQL = walk(" AND k.key < $3")
	b.listAllSQL = walk("")
}

// retryable reports whether err means the connection was lost (PostgreSQL
// restarted, a network cut) rather than that the statement failed.
func retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// 08: connection exception; 57P01-57P03: admin/crash shutdown, cannot connect now.
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	}
	var ne net.Error
	var ce *pgconn.ConnectError
	return pgconn.SafeToRetry(err) || errors.As(err, &ne) || errors.As(err, &ce) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.Contains(err.Error(), "conn closed") // pgx's error for a connection it already closed
}

// again runs an idempotent operation, and once more when the first try
// lost its connection: the pool drops the broken connection and dials anew.
// A write retried after its first try committed writes the same value
// again: harmless, unless another write to the same key completed in the
// instant between the two tries (the retry follows the failure at once).
func again(ctx context.Context, op func() error) error {
	err := op()
	if retryable(err) && ctx.Err() == nil {
		err = op()
	}
	return err
}

func (b *Backend) Get(ctx context.Context, key string) (*storage.Entry, error) {
	var val []byte
	err := again(ctx, func() error { return b.pool.QueryRow(ctx, b.getSQL, []byte(key)).Scan(&val) })
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("postgresql storage: reading a key: %w", err)
	}
	return &storage.Entry{Key: key, Value: val}, nil
}

// Put writes one entry; an upsert is idempotent, so a lost connection is
// retried once.
func (b *Backend) Put(ctx context.Context, e *storage.Entry) error {
	err := again(ctx, func() error {
		_, err := b.pool.Exec(ctx, b.putSQL, []byte(e.Key), nonNil(e.Value))
		return err
	})
	if err != nil {
		return fmt.Errorf("postgresql storage: writing a key: %w", err)
	}
	return nil
}

func (b *Backend) Delete(ctx context.Context, key string) error {
	err := again(ctx, func() error {
		_, err := b.pool.Exec(ctx, b.deleteSQL, []byte(key))
		return err
	})
	if err != nil {
		return fmt.Errorf("postgresql storage: deleting a key: %w", err)
	}
	return nil
}

// List returns the immediate children of prefix, sorted by bytes, a folder
// once with its trailing "/".
func (b *Backend) List(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	err := again(ctx, func() error {
		out = out[:0]
		p := []byte(prefix)
		var rows pgx.Rows
		var err error
		if upper := prefixEnd(p); upper != nil {
			rows, err = b.pool.Query(ctx, b.listSQL, p, len(p), upper)
		} else {
			rows, err = b.pool.Query(ctx, b.listAllSQL, p, len(p))
		}
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var child []byte
			if err := rows.Scan(&child); err != nil {
				return err
			}
			out = append(out, string(child))
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("postgresql storage: listing keys: %w", err)
	}
	return out, nil
}

// Transaction applies ops in one database transaction (read committed is
// enough: the ops only write, and each write is a single statement). It is
// retried only when the connection was lost before anything was sent.
func (b *Backend) Transaction(ctx context.Context, ops []storage.Op) error {
	if len(ops) == 0 {
		return nil
	}
	run := func() error {
		tx, err := b.pool.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(context.WithoutCancel(ctx))
		batch := &pgx.Batch{}
		for _, op := range ops {
			if op.Kind == storage.OpDelete {
				batch.Queue(b.deleteSQL, []byte(op.Entry.Key))
			} else {
				batch.Queue(b.putSQL, []byte(op.Entry.Key), nonNil(op.Entry.Value))
			}
		}
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			return err
		}
		return tx.Commit(ctx)
	}
	err := run()
	if err != nil && pgconn.SafeToRetry(err) && ctx.Err() == nil {
		err = run()
	}
	if err != nil {
		return fmt.Errorf("postgresql storage: transaction of %d writes: %w", len(ops), err)
	}
	return nil
}

// prefixEnd is the smallest byte string greater than every string that
// starts with p, or nil when there is none (p empty or all 0xff).
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

func nonNil(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return v
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func intOption(conf map[string]string, key string, def, minimum int) (int, error) {
	v, ok := conf[key]
	if !ok || v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < minimum {
		return 0, fmt.Errorf("postgresql storage: %s must be a whole number of at least %d, not %q", key, minimum, v)
	}
	return n, nil
}

func boolOption(conf map[string]string, key string) (bool, error) {
	v, ok := conf[key]
	if !ok || v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("postgresql storage: %s must be true or false, not %q", key, v)
	}
	return b, nil
}

func init() {
	storage.Register("postgresql", New)
	storage.Register("postgres", New)
}
