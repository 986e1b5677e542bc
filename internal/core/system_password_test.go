package core

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/arcasec/arca/internal/logical"
)

// A backend generates passwords from a named policy through the system view
// the core lends it.
func TestSystemViewGeneratesFromPasswordPolicy(t *testing.T) {
	c, _, root := newClockedCore(t)
	ctx := context.Background()
	policy := "length = 12\nrule \"charset\" {\n  charset = \"xyz\"\n  min-chars = 12\n}\n"
	if _, err := call(c, root, logical.UpdateOperation, "sys/policies/password/db", map[string]any{"policy": policy}); err != nil {
		t.Fatal(err)
	}
	var sys logical.SystemView = c.mounts.get("cubbyhole/").sys
	pw, err := sys.GeneratePasswordFromPolicy(ctx, "db")
	if err != nil {
		t.Fatal(err)
	}
	if len(pw) != 12 || strings.Trim(pw, "xyz") != "" {
		t.Fatalf("password %q, want 12 characters from xyz", pw)
	}
	if _, err := sys.GeneratePasswordFromPolicy(ctx, "missing"); logical.StatusOf(err) != http.StatusNotFound {
		t.Fatalf("a missing policy: %v, want a 404 error", err)
	}
	if _, err := sys.GeneratePasswordFromPolicy(ctx, "../db"); logical.StatusOf(err) != http.StatusBadRequest {
		t.Fatalf("a name with a slash: %v, want a 400 error", err)
	}
}
