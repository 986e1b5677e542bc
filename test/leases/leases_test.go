package leases_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/core"
	"github.com/arcasec/arca/internal/logical/leasetest"
	"github.com/arcasec/arca/internal/server"
	"github.com/arcasec/arca/internal/server/servertest"
)

// TestMain stops the PostgreSQL cluster the storage-parameterised tests
// share (servertest.EachStorage).
func TestMain(m *testing.M) { servertest.Main(m) }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// catalogWith is the build's catalog plus the stub engine as "stub".
func catalogWith(e *leasetest.Engine) *core.Catalog {
	cat := server.Catalog()
	cat.Secrets["stub"] = e.Factory
	return &cat
}

// leaseServer starts a dev server on a manual clock with the stub engine
// mounted at stub/, and returns a root client.
func leaseServer(t *testing.T, e *leasetest.Engine) (*vault.Client, *leasetest.Clock) {
	t.Helper()
	return leaseServerOn(t, e, server.StorageConfig{Type: "inmem"})
}

// leaseServerOn is leaseServer on the given storage (servertest.EachStorage).
func leaseServerOn(t *testing.T, e *leasetest.Engine, store server.StorageConfig) (*vault.Client, *leasetest.Clock) {
	t.Helper()
	clock := leasetest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	srv, res, err := server.StartDev(context.Background(), server.DevOptions{
		ListenAddress: "127.0.0.1:0", Catalog: catalogWith(e), Clock: clock, Storage: &store,
	}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	c := client(t, "http://"+res.Address, res.RootToken)
	if err := c.Sys().Mount("stub", &vault.MountInput{Type: "stub"}); err != nil {
		t.Fatal(err)
	}
	return c, clock
}

func client(t *testing.T, addr, token string) *vault.Client {
	t.Helper()
	conf := vault.DefaultConfig()
	conf.Address = addr
	conf.MaxRetries = 0
	c, err := vault.NewClient(conf)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
}

func statusOf(err error) int {
	var re *vault.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// nextRevocation waits for the stub's next revocation attempt. The expiry
// loop runs on its own goroutine; the deadline only stops a broken test
// from hanging.
func nextRevocation(t *testing.T, e *leasetest.Engine) leasetest.Revocation {
	t.Helper()
	select {
	case r := <-e.Revocations:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("no revocation reached the engine")
		return leasetest.Revocation{}
	}
}

func noRevocation(t *testing.T, e *leasetest.Engine) {
	t.Helper()
	select {
	case r := <-e.Revocations:
		t.Fatalf("unexpected revocation of %s (err %v)", r.User, r.Err)
	default:
	}
}

func readCreds(t *testing.T, c *vault.Client, path string) *vault.Secret {
	t.Helper()
	s, err := c.Logical().Read(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return s
}

func lookup(t *testing.T, c *vault.Client, leaseID string) map[string]any {
	t.Helper()
	s, err := c.Sys().Lookup(leaseID)
	if err != nil {
		t.Fatalf("looking up %s: %v", leaseID, err)
	}
	return s.Data
}

func wantInvalidLease(t *testing.T, c *vault.Client, leaseID string) {
	t.Helper()
	_, err := c.Sys().Lookup(leaseID)
	if statusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "invalid lease") {
		t.Fatalf("lookup of %s: err = %v, want 400 invalid lease", leaseID, err)
	}
}

func ttlOf(t *testing.T, data map[string]any) int64 {
	t.Helper()
	n, err := data["ttl"].(json.Number).Int64()
	if err != nil {
		t.Fatalf("ttl %v: %v", data["ttl"], err)
	}
	return n
}

// A leased read gets a lease ID under its path; lookup, renew (capped by
// the secret's max_ttl) and revoke work through the Go client, and revoke
// reaches the engine.
func TestLeaseLifecycleThroughVaultAPI(t *testing.T) {
	servertest.EachStorage(t, testLeaseLifecycleThroughVaultAPI)
}

func testLeaseLifecycleThroughVaultAPI(t *testing.T, store server.StorageConfig) {
	e := leasetest.NewEngine(10)
	e.TTL, e.MaxTTL = time.Hour, 3*time.Hour
	c, clock := leaseServerOn(t, e, store)

	s := readCreds(t, c, "stub/creds/readonly")
	if !strings.HasPrefix(s.LeaseID, "stub/creds/readonly/") || len(s.LeaseID) != len("stub/creds/readonly/")+24 {
		t.Fatalf("lease_id = %q, want stub/creds/readonly/<24 chars>", s.LeaseID)
	}
	if s.LeaseDuration != 3600 || !s.Renewable {
		t.Fatalf("lease_duration = %d, renewable = %v; want 3600, true", s.LeaseDuration, s.Renewable)
	}
	user := s.Data["username"].(string)

	info := lookup(t, c, s.LeaseID)
	if info["id"] != s.LeaseID || info["renewable"] != true || ttlOf(t, info) != 3600 || info["last_renewal"] != nil {
		t.Fatalf("lookup = %v", info)
	}
	issued, _ := time.Parse(time.RFC3339Nano, info["issue_time"].(string))
	if !issued.Equal(clock.Now()) {
		t.Fatalf("issue_time = %v, want %v", issued, clock.Now())
	}

	// Renew by two hours, an hour later: within max_ttl.
	clock.Advance(time.Hour - time.Minute)
	r, err := c.Sys().RenewWithContext(context.Background(), s.LeaseID, 7200)
	if err != nil {
		t.Fatal(err)
	}
	if r.LeaseID != s.LeaseID || r.LeaseDuration != 7200 || !r.Renewable {
		t.Fatalf("renew = %+v", r)
	}
	if info := lookup(t, c, s.LeaseID); info["last_renewal"] == nil || ttlOf(t, info) != 7200 {
		t.Fatalf("lookup after renew = %v", info)
	}
	// Renew by ten hours: capped at the three hours from issue.
	clock.Advance(time.Hour)
	r, err = c.Sys().Renew(s.LeaseID, 36000)
	if err != nil {
		t.Fatal(err)
	}
	if r.LeaseDuration != 3600+60 || len(r.Warnings) == 0 {
		t.Fatalf("renew past max_ttl: lease_duration = %d warnings %v, want %d and a warning", r.LeaseDuration, r.Warnings, 3600+60)
	}
	if e.Renewals() != 2 {
		t.Fatalf("the engine saw %d renewals, want 2", e.Renewals())
	}

	if err := c.Sys().Revoke(s.LeaseID); err != nil {
		t.Fatal(err)
	}
	if r := nextRevocation(t, e); r.User != user || r.Err != nil {
		t.Fatalf("revocation = %+v, want %s", r, user)
	}
	wantInvalidLease(t, c, s.LeaseID)
	if _, err := c.Sys().Renew(s.LeaseID, 0); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("renewing a revoked lease: err = %v, want 400", err)
	}
	if err := c.Sys().Revoke(s.LeaseID); err != nil {
		t.Fatalf("revoking a lease twice: %v", err)
	}
	if len(e.Live()) != 0 {
		t.Fatalf("still live in the engine: %v", e.Live())
	}
}

// A lease that expires is revoked through its engine, with no client
// asking; one that is renewed in time is not.
func TestLeaseExpiryRevokesThroughEngine(t *testing.T) {
	e := leasetest.NewEngine(10)
	e.TTL = 10 * time.Minute
	c, clock := leaseServer(t, e)
	a := readCreds(t, c, "stub/creds/a")
	b := readCreds(t, c, "stub/creds/b")

	clock.Advance(9 * time.Minute)
	if _, err := c.Sys().Renew(b.LeaseID, 600); err != nil {
		t.Fatal(err)
	}
	noRevocation(t, e)
	clock.Advance(time.Minute)
	if r := nextRevocation(t, e); r.User != a.Data["username"] || r.Err != nil {
		t.Fatalf("revocation = %+v, want %v", r, a.Data["username"])
	}
	wantInvalidLease(t, c, a.LeaseID)
	lookup(t, c, b.LeaseID)
	noRevocation(t, e)

	clock.Advance(10 * time.Minute)
	if r := nextRevocation(t, e); r.User != b.Data["username"] {
		t.Fatalf("revocation = %+v, want %v", r, b.Data["username"])
	}
	wantInvalidLease(t, c, b.LeaseID)
}

// A revocation that fails is kept, shown in lookup, retried with growing
// waits, and completes once the engine works again.
func TestFailedRevocationRetriedWithBackoff(t *testing.T) {
	e := leasetest.NewEngine(10)
	e.TTL = time.Minute
	c, clock := leaseServer(t, e)
	s := readCreds(t, c, "stub/creds/app")
	e.FailRevoke.Store(true)

	clock.Advance(time.Minute)
	if r := nextRevocation(t, e); r.Err == nil {
		t.Fatal("the first attempt should fail")
	}
	info := lookup(t, c, s.LeaseID)
	if info["revoke_attempts"] != json.Number("1") || !strings.Contains(info["last_revoke_error"].(string), "unreachable") {
		t.Fatalf("lookup after a failed revocation = %v", info)
	}
	next, _ := time.Parse(time.RFC3339Nano, info["next_revoke_attempt"].(string))
	first := next.Sub(clock.Now())
	if first <= 0 {
		t.Fatalf("next attempt %v is not after now %v", next, clock.Now())
	}
	// Explicit revocation while the engine fails: an error, the lease kept.
	if err := c.Sys().Revoke(s.LeaseID); err == nil {
		t.Fatal("revoke succeeded while the engine fails")
	}
	<-e.Revocations
	info = lookup(t, c, s.LeaseID)
	next2, _ := time.Parse(time.RFC3339Nano, info["next_revoke_attempt"].(string))
	if second := next2.Sub(clock.Now()); second <= first {
		t.Fatalf("backoff did not grow: %v then %v", first, second)
	}
	if _, err := c.Sys().Renew(s.LeaseID, 60); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("renewing a lease being revoked: err = %v, want 400", err)
	}

	e.FailRevoke.Store(false)
	noRevocation(t, e)
	clock.Advance(next2.Sub(clock.Now()))
	if r := nextRevocation(t, e); r.Err != nil || r.User != s.Data["username"] {
		t.Fatalf("retry = %+v", r)
	}
	wantInvalidLease(t, c, s.LeaseID)
}

// Revoking a token revokes the leases it created, and theirs of its
// children; other leases stay.
func TestRevokingTokenRevokesItsLeases(t *testing.T) {
	servertest.EachStorage(t, testRevokingTokenRevokesItsLeases)
}

func testRevokingTokenRevokesItsLeases(t *testing.T, store server.StorageConfig) {
	e := leasetest.NewEngine(10)
	root, _ := leaseServerOn(t, e, store)
	sec, err := root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"root"}})
	if err != nil {
		t.Fatal(err)
	}
	tc, _ := root.Clone()
	tc.SetToken(sec.Auth.ClientToken)
	mine := readCreds(t, tc, "stub/creds/mine")
	other := readCreds(t, root, "stub/creds/other")

	if err := root.Auth().Token().RevokeTree(sec.Auth.ClientToken); err != nil {
		t.Fatal(err)
	}
	if r := nextRevocation(t, e); r.User != mine.Data["username"] {
		t.Fatalf("revocation = %+v, want %v", r, mine.Data["username"])
	}
	wantInvalidLease(t, root, mine.LeaseID)
	lookup(t, root, other.LeaseID)
	noRevocation(t, e)
}

// Leases belong to the mount that issued them, not to its path: after a
// remount they are still revoked through it, one by one, by prefix under
// their old path, and by force without calling it.
func TestRemountKeepsRevocationWorking(t *testing.T) {
	e := leasetest.NewEngine(10)
	c, _ := leaseServer(t, e)
	one := readCreds(t, c, "stub/creds/x")
	two := readCreds(t, c, "stub/creds/x")
	three := readCreds(t, c, "stub/creds/y")
	if err := c.Sys().Remount("stub", "moved"); err != nil {
		t.Fatal(err)
	}

	if err := c.Sys().Revoke(one.LeaseID); err != nil {
		t.Fatal(err)
	}
	if r := nextRevocation(t, e); r.User != one.Data["username"] {
		t.Fatalf("revocation = %+v", r)
	}

	keys, err := c.Logical().List("sys/leases/lookup/stub/creds/")
	if err != nil || keys == nil {
		t.Fatalf("list: %v %v", keys, err)
	}
	if got := keys.Data["keys"]; len(got.([]any)) != 2 || got.([]any)[0] != "x/" || got.([]any)[1] != "y/" {
		t.Fatalf("listed %v, want [x/ y/]", got)
	}

	if err := c.Sys().RevokePrefix("stub/creds/x"); err != nil {
		t.Fatal(err)
	}
	if r := nextRevocation(t, e); r.User != two.Data["username"] {
		t.Fatalf("revocation = %+v", r)
	}
	wantInvalidLease(t, c, two.LeaseID)

	if err := c.Sys().RevokeForce("stub/creds"); err != nil {
		t.Fatal(err)
	}
	noRevocation(t, e)
	wantInvalidLease(t, c, three.LeaseID)
	if live := e.Live(); !slices.Equal(live, []string{three.Data["username"].(string)}) {
		t.Fatalf("live in the engine: %v, want only the force-revoked one", live)
	}
}

// Revoke-prefix and revoke-force need sudo; lookup and renew of one's own
// lease do not.
func TestLeasePrefixPathsNeedSudo(t *testing.T) {
	e := leasetest.NewEngine(10)
	root, _ := leaseServer(t, e)
	if err := root.Sys().PutPolicy("leases", `
path "stub/*" { capabilities = ["read"] }
path "sys/leases/*" { capabilities = ["update", "list"] }
path "sys/revoke-prefix/*" { capabilities = ["update"] }
`); err != nil {
		t.Fatal(err)
	}
	sec, err := root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"leases"}})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := root.Clone()
	c.SetToken(sec.Auth.ClientToken)
	s := readCreds(t, c, "stub/creds/app")
	lookup(t, c, s.LeaseID)
	if _, err := c.Sys().Renew(s.LeaseID, 60); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"revoke-prefix":        c.Sys().RevokePrefix("stub/"),
		"revoke-force":         c.Sys().RevokeForce("stub/"),
		"legacy revoke-prefix": func() error { _, err := c.Logical().Write("sys/revoke-prefix/stub", nil); return err }(),
		"list":                 func() error { _, err := c.Logical().List("sys/leases/lookup/stub/"); return err }(),
	} {
		if statusOf(err) != http.StatusForbidden {
			t.Errorf("%s without sudo: err = %v, want 403", name, err)
		}
	}
	noRevocation(t, e)
}

// Bad input gets a 400 that names what is wrong.
func TestLeaseBadInput(t *testing.T) {
	c, _ := leaseServer(t, leasetest.NewEngine(10))
	for _, tc := range []struct {
		path string
		data map[string]any
		want string
	}{
		{"sys/leases/lookup", map[string]any{}, "lease_id"},
		{"sys/leases/renew", map[string]any{}, "lease_id"},
		{"sys/leases/renew", map[string]any{"lease_id": "stub/creds/x/nope"}, "invalid lease"},
		{"sys/leases/renew", map[string]any{"lease_id": "stub/creds/x/nope", "increment": "soon"}, "increment"},
		{"sys/leases/renew", map[string]any{"lease_id": "auth/token/create/h123"}, "auth/token/renew"},
		{"sys/leases/revoke", map[string]any{}, "lease_id"},
	} {
		_, err := c.Logical().Write(tc.path, tc.data)
		if statusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %v: err = %v, want 400 naming %q", tc.path, tc.data, err, tc.want)
		}
	}
}

// Leases survive a restart of a server on persistent storage: expiry resumes from
// storage and revokes through the engine; the lease count is restored.
func TestLeaseExpiryResumesAfterRestart(t *testing.T) {
	servertest.EachStorage(t, testLeaseExpiryResumesAfterRestart)
}

func testLeaseExpiryResumesAfterRestart(t *testing.T, store server.StorageConfig) {
	e := leasetest.NewEngine(10)
	e.TTL = 30 * time.Minute
	clock := leasetest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	start := func() (*server.Server, string) {
		return servertest.StartConfig(t, &server.Config{Storage: store, Catalog: catalogWith(e), Clock: clock}, nil)
	}
	ctx := context.Background()
	srv, addr := start()
	root, key := servertest.InitUnseal(t, srv)
	c := client(t, addr, root)
	if err := c.Sys().Mount("stub", &vault.MountInput{Type: "stub"}); err != nil {
		t.Fatal(err)
	}
	s := readCreds(t, c, "stub/creds/app")
	readCreds(t, c, "stub/creds/app")
	srv.Shutdown(ctx)

	clock.Advance(time.Hour) // the lease expires while the server is down
	srv, addr = start()
	defer srv.Shutdown(ctx)
	noRevocation(t, e)
	if err := srv.Core.Unseal(ctx, key); err != nil {
		t.Fatal(err)
	}
	nextRevocation(t, e)
	nextRevocation(t, e)
	wantInvalidLease(t, client(t, addr, root), s.LeaseID)
	if live := e.Live(); len(live) != 0 {
		t.Fatalf("still live after restart and expiry: %v", live)
	}
}

// The metrics count outstanding leases.
func TestLeaseCountInMetrics(t *testing.T) {
	c, _ := leaseServer(t, leasetest.NewEngine(10))
	gauge := func() string {
		req := c.NewRequest(http.MethodGet, "/v1/sys/metrics")
		req.Params.Set("format", "prometheus")
		resp, err := c.RawRequest(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(line, "arca_lease_count ") {
				return strings.TrimPrefix(line, "arca_lease_count ")
			}
		}
		t.Fatalf("no arca_lease_count in %s", body)
		return ""
	}
	if g := gauge(); g != "0" {
		t.Fatalf("lease count = %s before any lease", g)
	}
	s := readCreds(t, c, "stub/creds/a")
	readCreds(t, c, "stub/creds/b")
	if g := gauge(); g != "2" {
		t.Fatalf("lease count = %s, want 2", g)
	}
	if err := c.Sys().Revoke(s.LeaseID); err != nil {
		t.Fatal(err)
	}
	if g := gauge(); g != "1" {
		t.Fatalf("lease count = %s after a revocation, want 1", g)
	}
	if n, _ := c.Logical().Read("sys/leases/count"); n == nil || n.Data["lease_count"] != json.Number("1") {
		t.Fatalf("sys/leases/count = %v", n)
	}
}

// The core runs each mount's periodic function and rolls back its stale
// write-ahead log entries on its own clock.
func TestCoreRunsPeriodicFuncAndWALRollback(t *testing.T) {
	e := leasetest.NewEngine(0)
	e.RolledBack = make(chan string, 1)
	c, clock := leaseServer(t, e)
	if _, err := c.Logical().Write("stub/wal/half-created", nil); err != nil {
		t.Fatal(err)
	}
	clock.Advance(11 * time.Minute)
	select {
	case name := <-e.RolledBack:
		if name != "half-created" {
			t.Fatalf("rolled back %q", name)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the write-ahead log entry was never rolled back")
	}
	if e.Periodic.Load() == 0 {
		t.Fatal("the periodic function did not run")
	}
}

// Disabling an engine revokes what it issued first; while that fails the
// mount stays, so the revocation can still be retried through it.
func TestUnmountRevokesLeasesFirst(t *testing.T) {
	e := leasetest.NewEngine(10)
	c, _ := leaseServer(t, e)
	s := readCreds(t, c, "stub/creds/app")
	e.FailRevoke.Store(true)
	if err := c.Sys().Unmount("stub"); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("unmount while revocation fails: err = %v, want 400", err)
	}
	<-e.Revocations
	if mounts, _ := c.Sys().ListMounts(); mounts["stub/"] == nil {
		t.Fatal("the mount went away with a lease it could not revoke")
	}
	lookup(t, c, s.LeaseID)

	e.FailRevoke.Store(false)
	if err := c.Sys().Unmount("stub"); err != nil {
		t.Fatal(err)
	}
	if r := nextRevocation(t, e); r.Err != nil || r.User != s.Data["username"] {
		t.Fatalf("revocation = %+v", r)
	}
	wantInvalidLease(t, c, s.LeaseID)
}

// A token that expires takes its leases with it.
func TestExpiredTokenRevokesItsLeases(t *testing.T) {
	e := leasetest.NewEngine(10)
	e.TTL = 24 * time.Hour
	root, clock := leaseServer(t, e)
	sec, err := root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"root"}, TTL: "10m"})
	if err != nil {
		t.Fatal(err)
	}
	tc, _ := root.Clone()
	tc.SetToken(sec.Auth.ClientToken)
	s := readCreds(t, tc, "stub/creds/app")

	clock.Advance(11 * time.Minute)
	if _, err := tc.Auth().Token().LookupSelf(); statusOf(err) != http.StatusForbidden {
		t.Fatalf("expired token: err = %v, want 403", err)
	}
	if r := nextRevocation(t, e); r.User != s.Data["username"] || r.Err != nil {
		t.Fatalf("revocation = %+v", r)
	}
	wantInvalidLease(t, root, s.LeaseID)
}

// metric reads one gauge from sys/metrics.
func metric(t *testing.T, c *vault.Client, name string) string {
	t.Helper()
	req := c.NewRequest(http.MethodGet, "/v1/sys/metrics")
	req.Params.Set("format", "prometheus")
	resp, err := c.RawRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, name+" ") {
			return strings.TrimPrefix(line, name+" ")
		}
	}
	t.Fatalf("no %s in %s", name, body)
	return ""
}

// waitMetric polls a gauge until it reads want; the deadline only stops a
// broken test from hanging.
func waitMetric(t *testing.T, c *vault.Client, name, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := metric(t, c, name)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %s, want %s", name, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A token that expires is revoked by the expiration manager, with no
// request using it: its child token goes too, and the leases of both are
// revoked through their engine.
func TestExpiredTokenRevokedByManager(t *testing.T) {
	e := leasetest.NewEngine(10)
	e.TTL = 24 * time.Hour
	root, clock := leaseServer(t, e)
	sec, err := root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"root"}, TTL: "3s"})
	if err != nil {
		t.Fatal(err)
	}
	parent, _ := root.Clone()
	parent.SetToken(sec.Auth.ClientToken)
	childSec, err := parent.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"root"}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	child, _ := root.Clone()
	child.SetToken(childSec.Auth.ClientToken)
	other, err := root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"default"}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	mine := readCreds(t, parent, "stub/creds/parent")
	theirs := readCreds(t, child, "stub/creds/child")
	if got := metric(t, root, "arca_token_count"); got != "4" {
		t.Fatalf("token count = %s, want 4", got)
	}

	clock.Advance(2 * time.Second)
	noRevocation(t, e)
	clock.Advance(2 * time.Second)
	revoked := map[any]bool{}
	for range 2 {
		r := nextRevocation(t, e)
		if r.Err != nil {
			t.Fatalf("revocation = %+v", r)
		}
		revoked[r.User] = true
	}
	if !revoked[mine.Data["username"]] || !revoked[theirs.Data["username"]] {
		t.Fatalf("revoked %v, want the leases of the expired token and its child", revoked)
	}
	waitMetric(t, root, "arca_token_count", "2") // root and the unrelated token
	wantInvalidLease(t, root, mine.LeaseID)
	wantInvalidLease(t, root, theirs.LeaseID)
	if _, err := root.Auth().Token().LookupAccessor(childSec.Auth.Accessor); err == nil {
		t.Fatal("the child of an expired token is still known")
	}
	if _, err := root.Auth().Token().LookupAccessor(other.Auth.Accessor); err != nil {
		t.Fatalf("an unrelated token was revoked: %v", err)
	}
}

// A renewed token is not revoked at its first expiry but at its new one.
func TestRenewedTokenExpiresAtNewTime(t *testing.T) {
	e := leasetest.NewEngine(10)
	e.TTL = 24 * time.Hour
	root, clock := leaseServer(t, e)
	sec, err := root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"root"}, TTL: "1m", ExplicitMaxTTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	tc, _ := root.Clone()
	tc.SetToken(sec.Auth.ClientToken)
	s := readCreds(t, tc, "stub/creds/app")
	clock.Advance(50 * time.Second)
	if _, err := tc.Auth().Token().RenewSelf(600); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	if _, err := tc.Auth().Token().LookupSelf(); err != nil {
		t.Fatalf("renewed token refused: %v", err)
	}
	noRevocation(t, e)
	clock.Advance(10 * time.Minute)
	if r := nextRevocation(t, e); r.User != s.Data["username"] || r.Err != nil {
		t.Fatalf("revocation = %+v", r)
	}
	waitMetric(t, root, "arca_token_count", "1")
}

// Token expiry survives a restart: a token that expired while the server
// was down is revoked, with its lease, once the server is unsealed again.
func TestTokenExpiryResumesAfterRestart(t *testing.T) {
	e := leasetest.NewEngine(10)
	e.TTL = 24 * time.Hour
	clock := leasetest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	path := filepath.Join(t.TempDir(), "arca.db")
	start := func() (*server.Server, string) {
		return servertest.StartConfig(t, &server.Config{
			Storage: server.StorageConfig{Type: "bolt", Options: map[string]string{"path": path}},
			Catalog: catalogWith(e),
			Clock:   clock,
		}, nil)
	}
	ctx := context.Background()
	srv, addr := start()
	root, key := servertest.InitUnseal(t, srv)
	c := client(t, addr, root)
	if err := c.Sys().Mount("stub", &vault.MountInput{Type: "stub"}); err != nil {
		t.Fatal(err)
	}
	sec, err := c.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"root"}, TTL: "3s"})
	if err != nil {
		t.Fatal(err)
	}
	tc, _ := c.Clone()
	tc.SetToken(sec.Auth.ClientToken)
	s := readCreds(t, tc, "stub/creds/app")
	srv.Shutdown(ctx)

	clock.Advance(time.Minute)
	srv, addr = start()
	defer srv.Shutdown(ctx)
	if err := srv.Core.Unseal(ctx, key); err != nil {
		t.Fatal(err)
	}
	if r := nextRevocation(t, e); r.User != s.Data["username"] || r.Err != nil {
		t.Fatalf("revocation = %+v", r)
	}
	c = client(t, addr, root)
	waitMetric(t, c, "arca_token_count", "1")
	wantInvalidLease(t, c, s.LeaseID)
}
