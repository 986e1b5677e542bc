package cli

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/arcasec/arca/internal/core"
	"github.com/arcasec/arca/internal/logical/leasetest"
	"github.com/arcasec/arca/internal/server"
)

// leaseEnv starts a dev server with the stub leasing engine mounted at
// stub/ and points the CLI at it.
func leaseEnv(t *testing.T, e *leasetest.Engine) {
	t.Helper()
	cat := server.Catalog()
	cat.Secrets["stub"] = e.Factory
	catalogEnv(t, cat)
	mustRun(t, "secrets", "enable", "stub")
}

// catalogEnv starts a dev server with the given catalog and points the
// CLI at it.
func catalogEnv(t *testing.T, cat core.Catalog) {
	t.Helper()
	srv, res, err := server.StartDev(context.Background(), server.DevOptions{ListenAddress: "127.0.0.1:0", Catalog: &cat},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	t.Setenv("HOME", t.TempDir())
	t.Setenv("VAULT_ADDR", "http://"+res.Address)
	t.Setenv("VAULT_TOKEN", res.RootToken)
	t.Setenv("ARCA_ADDR", "")
	t.Setenv("ARCA_TOKEN", "")
	t.Setenv("VAULT_FORMAT", "")
}

func waitRevoked(t *testing.T, e *leasetest.Engine, user string) {
	t.Helper()
	select {
	case r := <-e.Revocations:
		if r.User != user || r.Err != nil {
			t.Fatalf("revocation %+v, want %s", r, user)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("%s was never revoked", user)
	}
}

func TestLeaseCommands(t *testing.T) {
	e := leasetest.NewEngine(10)
	e.TTL, e.MaxTTL = time.Hour, 2*time.Hour
	leaseEnv(t, e)

	var creds struct {
		LeaseID       string `json:"lease_id"`
		LeaseDuration int    `json:"lease_duration"`
		Data          struct{ Username string }
	}
	read := func() {
		if err := json.Unmarshal([]byte(mustRun(t, "read", "-format=json", "stub/creds/app")), &creds); err != nil {
			t.Fatal(err)
		}
	}
	read()
	if !strings.HasPrefix(creds.LeaseID, "stub/creds/app/") || creds.LeaseDuration != 3600 {
		t.Fatalf("read creds = %+v", creds)
	}

	out := mustRun(t, "lease", "lookup", creds.LeaseID)
	for _, want := range []string{"expire_time", "issue_time", "renewable", "true", creds.LeaseID} {
		if !strings.Contains(out, want) {
			t.Fatalf("lookup output lacks %q:\n%s", want, out)
		}
	}
	var renewed struct {
		LeaseID       string `json:"lease_id"`
		LeaseDuration int    `json:"lease_duration"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, "lease", "renew", "-format=json", "-increment=90m", creds.LeaseID)), &renewed); err != nil {
		t.Fatal(err)
	}
	if renewed.LeaseID != creds.LeaseID || renewed.LeaseDuration != 5400 {
		t.Fatalf("renew = %+v, want 5400 s", renewed)
	}
	if code, _, errOut := arca(t, "", "lease", "renew", "-increment=soon", creds.LeaseID); code != 2 || !strings.Contains(errOut, "increment") {
		t.Fatalf("bad increment: exit %d, stderr %q", code, errOut)
	}

	// Revoke, synchronously, and queued (the default, as in vault).
	if out := mustRun(t, "lease", "revoke", "-sync", creds.LeaseID); !strings.Contains(out, "Success! Revoked lease: "+creds.LeaseID) {
		t.Fatalf("revoke output %q", out)
	}
	waitRevoked(t, e, creds.Data.Username)
	code, _, errOut := arca(t, "", "lease", "lookup", creds.LeaseID)
	if code != 2 || !strings.Contains(errOut, "invalid lease") {
		t.Fatalf("lookup of a revoked lease: exit %d, stderr %q", code, errOut)
	}
	read()
	if out := mustRun(t, "lease", "revoke", creds.LeaseID); !strings.Contains(out, "queued") {
		t.Fatalf("queued revoke output %q", out)
	}
	waitRevoked(t, e, creds.Data.Username)

	// By prefix, and by force (the engine is not called).
	read()
	mustRun(t, "lease", "revoke", "-prefix", "-sync", "stub/creds")
	waitRevoked(t, e, creds.Data.Username)
	read()
	if out := mustRun(t, "lease", "revoke", "-prefix", "-force", "stub/"); !strings.Contains(out, "Force revoked") {
		t.Fatalf("force output %q", out)
	}
	if code, _, errOut := arca(t, "", "lease", "lookup", creds.LeaseID); code != 2 || !strings.Contains(errOut, "invalid lease") {
		t.Fatalf("lookup after force: exit %d, stderr %q", code, errOut)
	}
	if live := e.Live(); len(live) != 1 || live[0] != creds.Data.Username {
		t.Fatalf("live in the engine %v: force must not call it", live)
	}

	if code, _, errOut := arca(t, "", "lease", "revoke", "-force", "x"); code != 1 || !strings.Contains(errOut, "-force requires -prefix") {
		t.Fatalf("-force without -prefix: exit %d, stderr %q", code, errOut)
	}
	if code, _, _ := arca(t, "", "lease", "lookup"); code != 1 {
		t.Fatalf("lookup without an ID: exit %d", code)
	}
}
