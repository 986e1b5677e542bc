package storage_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/arcasec/arca/internal/storage"
)

func fill(t *testing.T, s storage.Storage, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if err := s.Put(context.Background(), &storage.Entry{Key: k, Value: []byte("v:" + k)}); err != nil {
			t.Fatal(err)
		}
	}
}

// allKeys lists every key of s with its value.
func allKeys(t *testing.T, s storage.Storage, prefix string, out map[string]string) map[string]string {
	t.Helper()
	ctx := context.Background()
	if out == nil {
		out = map[string]string{}
	}
	children, err := s.List(ctx, prefix)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range children {
		if strings.HasSuffix(c, "/") {
			allKeys(t, s, prefix+c, out)
			continue
		}
		e, err := s.Get(ctx, prefix+c)
		if err != nil || e == nil {
			t.Fatalf("get %s: %v", prefix+c, err)
		}
		out[prefix+c] = string(e.Value)
	}
	return out
}

var sampleKeys = []string{"core/seal-config", "core/keyring", "core/mounts", "logical/a/b/c", "logical/a/b-", "logical/a/b", "sys/token/id/x", "z"}

func TestMigrateCopiesEveryKeyAndReleasesTheLock(t *testing.T) {
	ctx := context.Background()
	from, err := storage.OpenBolt(filepath.Join(t.TempDir(), "from.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer from.Close()
	fill(t, from, sampleKeys...)
	for i := 0; i < 300; i++ { // more than one batch
		fill(t, from, fmt.Sprintf("logical/many/%04d", i))
	}
	to := storage.NewInmem()
	res, err := storage.Migrate(ctx, from, to, storage.MigrateOptions{BatchSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	want := allKeys(t, from, "", nil)
	got := allKeys(t, to, "", nil)
	if res.Keys != len(want) || len(got) != len(want) {
		t.Fatalf("copied %d keys, destination has %d, source %d", res.Keys, len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s = %q, want %q", k, got[k], v)
		}
	}
	if st, err := storage.MigrationInProgress(ctx, from); err != nil || st != nil {
		t.Fatalf("lock left on the source: %v, %v", st, err)
	}
	if _, ok := got[storage.MigrationLockKey]; ok {
		t.Fatal("the migration lock was copied")
	}
}

func TestMigrateRefusesANonEmptyDestination(t *testing.T) {
	from, to := storage.NewInmem(), storage.NewInmem()
	fill(t, from, sampleKeys...)
	fill(t, to, "core/seal-config")
	_, err := storage.Migrate(context.Background(), from, to, storage.MigrateOptions{})
	if !errors.Is(err, storage.ErrDestinationNotEmpty) || !strings.Contains(err.Error(), "core/") {
		t.Fatalf("non-empty destination: %v", err)
	}
	if e, _ := to.Get(context.Background(), "core/seal-config"); string(e.Value) != "v:core/seal-config" {
		t.Fatal("the destination was written to")
	}
}

func TestMigrateRefusesWhileLockedAndResets(t *testing.T) {
	ctx := context.Background()
	from, to := storage.NewInmem(), storage.NewInmem()
	fill(t, from, sampleKeys...)
	if err := from.Put(ctx, &storage.Entry{Key: storage.MigrationLockKey, Value: []byte(`{"start":"2026-01-02T03:04:05Z"}`)}); err != nil {
		t.Fatal(err)
	}
	_, err := storage.Migrate(ctx, from, to, storage.MigrateOptions{})
	if err == nil || !strings.Contains(err.Error(), "2026-01-02T03:04:05Z") || !strings.Contains(err.Error(), "-reset") {
		t.Fatalf("locked source: %v", err)
	}
	if err := storage.ResetMigrationLock(ctx, from); err != nil {
		t.Fatal(err)
	}
	if _, err := storage.Migrate(ctx, from, to, storage.MigrateOptions{}); err != nil {
		t.Fatalf("after reset: %v", err)
	}
}

// A halted migration resumes with Start: keys before it are not copied
// again, and the destination may hold data.
func TestMigrateResumesFromStart(t *testing.T) {
	ctx := context.Background()
	from, to := storage.NewInmem(), storage.NewInmem()
	fill(t, from, sampleKeys...)
	fill(t, to, "core/seal-config")
	res, err := storage.Migrate(ctx, from, to, storage.MigrateOptions{Start: "logical/a/b-"})
	if err != nil {
		t.Fatal(err)
	}
	got := allKeys(t, to, "", nil)
	for _, k := range []string{"logical/a/b-", "logical/a/b/c", "sys/token/id/x", "z"} {
		if _, ok := got[k]; !ok {
			t.Errorf("%s (after start) not copied", k)
		}
	}
	for _, k := range []string{"core/keyring", "core/mounts", "logical/a/b"} {
		if _, ok := got[k]; ok {
			t.Errorf("%s (before start) copied", k)
		}
	}
	if res.Keys != 4 {
		t.Fatalf("copied %d keys, want 4", res.Keys)
	}
}
