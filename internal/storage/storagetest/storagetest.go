// Package storagetest is a conformance suite every storage backend passes.
package storagetest

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/arcasec/arca/internal/storage"
)

// Run checks b against the storage contract. b must start empty.
func Run(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	put := func(k, v string) {
		t.Helper()
		if err := b.Put(ctx, &storage.Entry{Key: k, Value: []byte(v)}); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}
	get := func(k string) *storage.Entry {
		t.Helper()
		e, err := b.Get(ctx, k)
		if err != nil {
			t.Fatalf("get %s: %v", k, err)
		}
		return e
	}
	list := func(p string) []string {
		t.Helper()
		keys, err := b.List(ctx, p)
		if err != nil {
			t.Fatalf("list %q: %v", p, err)
		}
		return keys
	}

	if e := get("missing"); e != nil {
		t.Fatalf("missing key returned %v", e)
	}
	if err := b.Delete(ctx, "missing"); err != nil {
		t.Fatalf("deleting a missing key: %v", err)
	}
	put("a", "1")
	put("a", "2")
	if e := get("a"); e == nil || string(e.Value) != "2" || e.Key != "a" {
		t.Fatalf("overwrite: %+v", e)
	}
	for _, k := range []string{"foo/bar", "foo/baz/1", "foo/baz/2", "foo/qux/x/y", "foobar", "z"} {
		put(k, k)
	}
	if got, want := list(""), []string{"a", "foo/", "foobar", "z"}; !slices.Equal(got, want) {
		t.Fatalf("list root = %v, want %v", got, want)
	}
	if got, want := list("foo/"), []string{"bar", "baz/", "qux/"}; !slices.Equal(got, want) {
		t.Fatalf("list foo/ = %v, want %v", got, want)
	}
	if got := list("nothing/"); len(got) != 0 {
		t.Fatalf("list of empty prefix = %v", got)
	}
	if err := b.Delete(ctx, "foo/bar"); err != nil {
		t.Fatal(err)
	}
	if e := get("foo/bar"); e != nil {
		t.Fatal("deleted key still there")
	}
	// Values are copied: changing the caller's slice changes nothing stored.
	buf := []byte("orig")
	b.Put(ctx, &storage.Entry{Key: "copy", Value: buf})
	buf[0] = 'X'
	if e := get("copy"); string(e.Value) != "orig" {
		t.Fatalf("stored value aliased the caller's buffer: %q", e.Value)
	}
	// Transactions apply every op.
	ops := []storage.Op{
		{Kind: storage.OpPut, Entry: &storage.Entry{Key: "tx/1", Value: []byte("one")}},
		{Kind: storage.OpPut, Entry: &storage.Entry{Key: "tx/2", Value: []byte("two")}},
		{Kind: storage.OpDelete, Entry: &storage.Entry{Key: "a"}},
	}
	if err := b.Transaction(ctx, ops); err != nil {
		t.Fatal(err)
	}
	if get("a") != nil || get("tx/1") == nil || string(get("tx/2").Value) != "two" {
		t.Fatal("transaction not applied whole")
	}
	// Many keys list in order.
	for i := 0; i < 200; i++ {
		put(fmt.Sprintf("many/%03d", i), "v")
	}
	if got := list("many/"); len(got) != 200 || got[0] != "000" || got[199] != "199" {
		t.Fatalf("list many = %d keys", len(got))
	}
}
