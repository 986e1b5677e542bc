package audit

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/arcasec/arca/internal/logical"
)

// kvReadInput is what the core audits for a KV v2 read by a policy token.
func kvReadInput() *Input {
	auth := &logical.Auth{ClientToken: "hvs.AAAAAAAAAAAAAAAAAAAAAAAA", Accessor: "BBBBBBBBBBBBBBBBBBBBBBBB",
		DisplayName: "token", Policies: []string{"bench", "default"}, TokenPolicies: []string{"bench", "default"},
		TokenType: "service", TTL: 24 * time.Hour}
	req := &logical.Request{ID: "4b8d1a52-0f5c-4a3e-9a63-3f3a1d7c2e10", Operation: logical.ReadOperation, Path: "data/bench/hot",
		MountPoint: "secret/", MountType: "kv", ClientToken: auth.ClientToken, ClientTokenAccessor: auth.Accessor,
		Auth: auth, RemoteAddr: "127.0.0.1:51234"}
	resp := &logical.Response{Data: map[string]any{
		"data": map[string]any{"username": "app", "password": "s3cr3t"},
		"metadata": map[string]any{"created_time": "2026-11-29T17:00:00.123456789Z", "custom_metadata": nil,
			"deletion_time": "", "destroyed": false, "version": 1},
	}}
	return &Input{Time: time.Now(), Path: "secret/data/bench/hot", Request: req, Response: resp, Auth: auth,
		MountAccessor: "kv_12345678", MountClass: "secret"}
}

// BenchmarkFileDevice measures recording one KV read (request and response
// entries) to a file: go test -bench FileDevice ./internal/audit
func BenchmarkFileDevice(b *testing.B) {
	salt, _ := NewSalt()
	d, err := New(Config{Path: "file/", Type: "file", Options: map[string]string{"file_path": filepath.Join(b.TempDir(), "audit.log")}, Salt: salt})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	in := kvReadInput()
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := d.Log(ctx, "request", in); err != nil {
				b.Fatal(err)
			}
			if err := d.Log(ctx, "response", in); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkFormat measures formatting alone.
func BenchmarkFormat(b *testing.B) {
	salt, _ := NewSalt()
	h := NewHasher(salt)
	f, _ := newFormatter(options{})
	in := kvReadInput()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := f.entry(nil, "response", in, h); err != nil {
			b.Fatal(err)
		}
	}
}
