package kv

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/storage"
)

// sysView gives the TTLs KV uses; KV calls no other system hook.
type sysView struct{ logical.SystemView }

func (sysView) DefaultLeaseTTL() time.Duration { return time.Hour }
func (sysView) MaxLeaseTTL() time.Duration     { return 2 * time.Hour }

func newBackend(t testing.TB, version string) (logical.Backend, logical.Storage) {
	t.Helper()
	st := storage.NewInmem()
	b, err := Factory(context.Background(), &logical.BackendConfig{Storage: st, System: sysView{}, Options: map[string]string{"version": version}})
	if err != nil {
		t.Fatal(err)
	}
	return b, st
}

func do(t testing.TB, b logical.Backend, st logical.Storage, op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	t.Helper()
	return b.HandleRequest(context.Background(), &logical.Request{Operation: op, Path: path, Data: data, Storage: st})
}

func TestFactoryRejectsUnknownVersion(t *testing.T) {
	if _, err := Factory(context.Background(), &logical.BackendConfig{Options: map[string]string{"version": "3"}}); err == nil {
		t.Fatal("version 3 accepted")
	}
}

func TestMaxVersionsPrunes(t *testing.T) {
	b, st := newBackend(t, "2")
	do(t, b, st, logical.UpdateOperation, "config", map[string]any{"max_versions": json.Number("2")})
	for i := 0; i < 4; i++ {
		if _, err := do(t, b, st, logical.UpdateOperation, "data/k", map[string]any{"data": map[string]any{"i": i}}); err != nil {
			t.Fatal(err)
		}
	}
	resp, _ := do(t, b, st, logical.ReadOperation, "metadata/k", nil)
	versions := resp.Data["versions"].(map[string]any)
	if len(versions) != 2 || versions["3"] == nil || versions["4"] == nil || resp.Data["oldest_version"] != 3 {
		t.Fatalf("after pruning: versions %v oldest %v", versions, resp.Data["oldest_version"])
	}
	// The pruned version's data is gone from storage, not just hidden.
	if e, _ := st.Get(context.Background(), versionKey("k", 1)); e != nil {
		t.Fatal("pruned version 1 still stored")
	}
	if r, _ := do(t, b, st, logical.ReadOperation, "data/k", map[string]any{"version": "1"}); r != nil {
		t.Fatalf("pruned version readable: %v", r.Data)
	}
}

func TestDeleteVersionAfter(t *testing.T) {
	b, st := newBackend(t, "2")
	do(t, b, st, logical.UpdateOperation, "metadata/k", map[string]any{"delete_version_after": "1s"})
	do(t, b, st, logical.UpdateOperation, "data/k", map[string]any{"data": map[string]any{"a": "b"}})
	if r, _ := do(t, b, st, logical.ReadOperation, "data/k", nil); r == nil || r.StatusCode != 0 {
		t.Fatal("fresh version unreadable")
	}
	time.Sleep(1100 * time.Millisecond)
	r, _ := do(t, b, st, logical.ReadOperation, "data/k", nil)
	if r == nil || r.StatusCode != http.StatusNotFound || r.Data["data"] != nil {
		t.Fatalf("expired version still readable: %+v", r)
	}
}

func TestSubkeys(t *testing.T) {
	b, st := newBackend(t, "2")
	do(t, b, st, logical.UpdateOperation, "data/k", map[string]any{"data": map[string]any{
		"a": "1", "b": map[string]any{"c": "2", "d": map[string]any{"e": "3"}},
	}})
	r, err := do(t, b, st, logical.ReadOperation, "subkeys/k", map[string]any{"depth": "2"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"a": nil, "b": map[string]any{"c": nil, "d": nil}}
	if !reflect.DeepEqual(r.Data["subkeys"], want) {
		t.Fatalf("subkeys = %v", r.Data["subkeys"])
	}
}

func TestBadInput(t *testing.T) {
	b, st := newBackend(t, "2")
	cases := []struct {
		op   logical.Operation
		path string
		data map[string]any
	}{
		{logical.UpdateOperation, "data/k", map[string]any{"data": "not an object"}},
		{logical.UpdateOperation, "data/k", map[string]any{}},
		{logical.UpdateOperation, "data/k", map[string]any{"data": map[string]any{}, "options": map[string]any{"cas": "x"}}},
		{logical.UpdateOperation, "metadata/k", map[string]any{"max_versions": json.Number("-1")}},
		{logical.UpdateOperation, "metadata/k", map[string]any{"delete_version_after": "soon"}},
		{logical.ReadOperation, "data/k", map[string]any{"version": "-2"}},
		{logical.UpdateOperation, "destroy/k", map[string]any{"versions": "one"}},
	}
	for _, c := range cases {
		if _, err := do(t, b, st, c.op, c.path, c.data); logical.StatusOf(err) != http.StatusBadRequest {
			t.Errorf("%s %s %v: err = %v, want 400", c.op, c.path, c.data, err)
		}
	}
}

func TestMergePatch(t *testing.T) {
	doc := map[string]any{"a": "1", "b": map[string]any{"c": "2", "d": "3"}, "e": "4"}
	patch := map[string]any{"a": nil, "b": map[string]any{"c": "9", "z": "0"}, "f": []any{"x"}}
	got := MergePatch(doc, patch)
	want := map[string]any{"b": map[string]any{"c": "9", "d": "3", "z": "0"}, "e": "4", "f": []any{"x"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("MergePatch = %v", got)
	}
	if doc["a"] != "1" {
		t.Fatal("MergePatch changed its input")
	}
}

func FuzzPatch(f *testing.F) {
	f.Add(`{"a":1,"b":{"c":2}}`, `{"b":{"c":null,"d":[1]},"e":"x"}`)
	f.Fuzz(func(t *testing.T, docJSON, patchJSON string) {
		var doc, patch map[string]any
		if json.Unmarshal([]byte(docJSON), &doc) != nil || json.Unmarshal([]byte(patchJSON), &patch) != nil {
			return
		}
		out := MergePatch(doc, patch)
		for k, v := range patch {
			if v == nil {
				if _, ok := out[k]; ok {
					t.Fatalf("null in the patch did not remove %q", k)
				}
			}
		}
		if _, err := json.Marshal(out); err != nil {
			t.Fatalf("patched document does not encode: %v", err)
		}
	})
}

func BenchmarkReadLatest(b *testing.B) {
	be, st := newBackend(b, "2")
	do(b, be, st, logical.UpdateOperation, "data/app/db", map[string]any{"data": map[string]any{"user": "app", "password": "p"}})
	b.ReportAllocs()
	for b.Loop() {
		do(b, be, st, logical.ReadOperation, "data/app/db", nil)
	}
}
