package auth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arcasec/arca/internal/agent/config"
)

// A method stanza the agent cannot honour is refused with an error that
// names the field.
func TestNewMethodRefusesBadConfig(t *testing.T) {
	for _, tc := range []struct {
		m    config.Method
		want string
	}{
		{config.Method{Type: "kubernetes"}, `"kubernetes" is not supported`},
		{config.Method{}, "no type"},
		{config.Method{Type: "approle", Config: map[string]any{}}, "role_id_file_path is required"},
		{config.Method{Type: "approle", Config: map[string]any{"role_id_file_path": 3}}, "role_id_file_path must be a string"},
		{config.Method{Type: "approle", Config: map[string]any{"role_id_file_path": "r", "secret_id_file_path": "s",
			"remove_secret_id_file_after_reading": "maybe"}}, "remove_secret_id_file_after_reading must be true or false"},
		{config.Method{Type: "approle", Config: map[string]any{"role_id_file_path": "r",
			"secret_id_response_wrapping_path": "auth/approle/role/x/secret-id"}}, "needs secret_id_file_path"},
		{config.Method{Type: "approle", Config: map[string]any{"role_id_file_path": "r", "secret_id_file_path": "s",
			"secret_id_response_wrapping_path": ""}}, "secret_id_response_wrapping_path is empty"},
		{config.Method{Type: "jwt", Config: map[string]any{"path": "/t"}}, "role is required"},
		{config.Method{Type: "jwt", Config: map[string]any{"role": "r"}}, "path is required"},
		{config.Method{Type: "token_file", Config: map[string]any{}}, "token_file_path is required"},
		{config.Method{Type: "token_file", WrapTTL: time.Minute, Config: map[string]any{"token_file_path": "f"}}, "wrap_ttl cannot be used"},
	} {
		_, err := NewMethod(&tc.m)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewMethod(%+v) = %v, want an error containing %q", tc.m, err, tc.want)
		}
	}
	for _, ok := range []config.Method{
		{Type: "approle", Config: map[string]any{"role_id_file_path": "r"}},
		{Type: "approle", Config: map[string]any{"role_id_file_path": "r", "secret_id_file_path": "s", "remove_secret_id_file_after_reading": "false"}},
		{Type: "jwt", Config: map[string]any{"path": "/t", "role": "r", "remove_jwt_after_reading": false}},
		{Type: "token_file", Config: map[string]any{"token_file_path": "f"}},
	} {
		if _, err := NewMethod(&ok); err != nil {
			t.Errorf("NewMethod(%+v): %v", ok, err)
		}
	}
}

// A sink is refused when its directory does not exist (no directory is
// created) or its stanza is not a file sink with a plain mode.
func TestNewSinkRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope", "token")
	if _, err := NewSink(&config.Sink{Type: "file", Path: missing}); err == nil {
		t.Fatal("a sink in a missing directory was accepted")
	}
	if _, err := os.Stat(filepath.Dir(missing)); !os.IsNotExist(err) {
		t.Fatal("NewSink created the sink's directory")
	}
	for _, tc := range []struct {
		s    config.Sink
		want string
	}{
		{config.Sink{Type: "unix", Path: filepath.Join(dir, "t")}, `"unix" is not supported`},
		{config.Sink{Type: "file"}, "path is required"},
		{config.Sink{Type: "file", Path: filepath.Join(dir, "t"), Mode: os.ModeDir | 0o700}, "not a plain file mode"},
	} {
		if _, err := NewSink(&tc.s); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewSink(%+v) = %v, want an error containing %q", tc.s, err, tc.want)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("the write check left files behind: %v", entries)
	}
}

// The backoff doubles from min to max, never below min nor above max.
func TestBackoffGrowsWithinBounds(t *testing.T) {
	b := newBackoff(100*time.Millisecond, time.Second)
	prev := time.Duration(0)
	for i := 0; i < 20; i++ {
		d := b.next()
		if d < 100*time.Millisecond || d > time.Second {
			t.Fatalf("wait %d is %v, outside [100ms, 1s]", i, d)
		}
		if i == 0 && d != 100*time.Millisecond {
			t.Fatalf("first wait %v, want min", d)
		}
		if i > 0 && i < 3 && d <= prev {
			t.Fatalf("wait %d (%v) did not grow from %v", i, d, prev)
		}
		prev = d
	}
	b.reset()
	if d := b.next(); d != 100*time.Millisecond {
		t.Fatalf("after reset the wait is %v, want min", d)
	}
}
