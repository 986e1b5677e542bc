package compat

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/logical/leasetest"
	"github.com/arcasec/arca/internal/server"
)

// tryLogin attempts a userpass login and returns its error.
func tryLogin(c *vault.Client, name, password string) error {
	_, err := c.Logical().Write("auth/userpass/login/"+name, map[string]any{"password": password})
	return err
}

// lockedUsers reads sys/locked-users (for one mount when accessor is set)
// and returns the locked names by mount accessor, and the total.
func lockedUsers(t *testing.T, root *vault.Client, accessor string) (map[string][]string, int) {
	t.Helper()
	var query map[string][]string
	if accessor != "" {
		query = map[string][]string{"mount_accessor": {accessor}}
	}
	s, err := root.Logical().ReadWithData("sys/locked-users", query)
	if err != nil || s == nil {
		t.Fatalf("reading sys/locked-users: %v %v", s, err)
	}
	out := map[string][]string{}
	sum := 0
	for _, ns := range s.Data["by_namespace"].([]any) {
		for _, m := range ns.(map[string]any)["mount_accessors"].([]any) {
			m := m.(map[string]any)
			names := toStrings(m["alias_identifiers"])
			out[m["mount_accessor"].(string)] = names
			sum += len(names)
		}
	}
	total := jsonInt(t, s.Data["total"])
	if total != sum {
		t.Fatalf("sys/locked-users total = %d, but it lists %d names", total, sum)
	}
	return out, total
}

func jsonInt(t *testing.T, v any) int {
	t.Helper()
	switch n := v.(type) {
	case interface{ Int64() (int64, error) }:
		i, err := n.Int64()
		if err != nil {
			t.Fatal(err)
		}
		return int(i)
	case float64:
		return int(n)
	}
	t.Fatalf("%v (%T) is not a number", v, v)
	return 0
}

// failLogins makes n logins with a wrong password, each refused as invalid.
func failLogins(t *testing.T, c *vault.Client, name string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		err := tryLogin(c, name, "wrong password")
		if statusOf(err) != http.StatusBadRequest || !strings.Contains(errorText(err), "invalid username or password") {
			t.Fatalf("failed login %d for %s: %v, want 400 invalid username or password", i+1, name, err)
		}
	}
}

func wantLocked(t *testing.T, err error, who string) {
	t.Helper()
	if statusOf(err) != http.StatusForbidden || !strings.Contains(errorText(err), "locked") {
		t.Fatalf("login as %s: %v, want a 403 saying it is locked out", who, err)
	}
}

func TestLoginLockout(t *testing.T) {
	root := devClient(t)
	acc := enableUserpass(t, root)
	anon := newClient(t, root.Address(), "")

	// The defaults are Vault's, and the tune shows them.
	tune, err := root.Logical().Read("sys/auth/userpass/tune")
	if err != nil {
		t.Fatal(err)
	}
	if jsonInt(t, tune.Data["user_lockout_threshold"]) != 5 || jsonInt(t, tune.Data["user_lockout_duration"]) != 900 ||
		jsonInt(t, tune.Data["user_lockout_counter_reset_duration"]) != 900 || tune.Data["user_lockout_disable"] != false {
		t.Fatalf("default lockout in the tune: %v", tune.Data)
	}
	if err := root.Sys().TuneMount("auth/userpass", vault.MountConfigInput{
		UserLockoutConfig: &vault.UserLockoutConfigInput{LockoutThreshold: "3"},
	}); err != nil {
		t.Fatalf("tuning user_lockout_config: %v", err)
	}
	if tune, _ = root.Logical().Read("sys/auth/userpass/tune"); jsonInt(t, tune.Data["user_lockout_threshold"]) != 3 {
		t.Fatalf("the tune after setting lockout_threshold: %v", tune.Data)
	}

	for _, u := range []string{"alice", "bob", "carol"} {
		writeUser(t, root, u, map[string]any{"password": "right password"})
	}

	// Three failures lock alice out: the right password no longer works.
	failLogins(t, anon, "alice", 3)
	errAlice := tryLogin(anon, "alice", "right password")
	wantLocked(t, errAlice, "alice")

	// A name that does not exist locks the same way, with the same answer.
	failLogins(t, anon, "ghost", 3)
	errGhost := tryLogin(anon, "ghost", "anything")
	wantLocked(t, errGhost, "ghost")
	if errorText(errAlice) != errorText(errGhost) {
		t.Fatalf("a locked user (%q) and a locked unknown name (%q) are told apart", errorText(errAlice), errorText(errGhost))
	}

	// Others are unaffected; a success resets the count.
	loginUserpass(t, root, "carol", "right password")
	failLogins(t, anon, "bob", 2)
	loginUserpass(t, root, "bob", "right password")
	failLogins(t, anon, "bob", 2)
	loginUserpass(t, root, "bob", "right password")

	// sys/locked-users lists both locked names under the mount.
	byMount, total := lockedUsers(t, root, "")
	if total != 2 || !slices.Equal(byMount[acc], []string{"alice", "ghost"}) {
		t.Fatalf("sys/locked-users = %v (total %d), want alice and ghost under %s", byMount, total, acc)
	}
	if byMount, total = lockedUsers(t, root, acc); total != 2 || len(byMount[acc]) != 2 {
		t.Fatalf("sys/locked-users?mount_accessor=%s = %v", acc, byMount)
	}

	// Unlock lifts alice's lock and nobody else's; unlocking again is fine.
	for i := 0; i < 2; i++ {
		if _, err := root.Logical().Write("sys/locked-users/"+acc+"/unlock/alice", nil); err != nil {
			t.Fatalf("unlock: %v", err)
		}
	}
	loginUserpass(t, root, "alice", "right password")
	wantLocked(t, tryLogin(anon, "ghost", "anything"), "ghost")
	if byMount, total = lockedUsers(t, root, ""); total != 1 || !slices.Equal(byMount[acc], []string{"ghost"}) {
		t.Fatalf("sys/locked-users after unlocking alice = %v", byMount)
	}
	if _, err := root.Logical().Write("sys/locked-users/auth_nowhere_1234/unlock/alice", nil); statusOf(err) != http.StatusBadRequest || !strings.Contains(errorText(err), "mount_accessor") {
		t.Fatalf("unlock on an unknown mount: %v, want 400 naming mount_accessor", err)
	}

	// A bad tune names its field; lockout cannot be tuned on other mounts.
	err = root.Sys().TuneMount("auth/userpass", vault.MountConfigInput{UserLockoutConfig: &vault.UserLockoutConfigInput{LockoutDuration: "soon"}})
	if statusOf(err) != http.StatusBadRequest || !strings.Contains(errorText(err), "lockout_duration") {
		t.Fatalf("tuning lockout_duration to \"soon\": %v, want 400 naming it", err)
	}
	err = root.Sys().TuneMount("secret", vault.MountConfigInput{UserLockoutConfig: &vault.UserLockoutConfigInput{LockoutThreshold: "2"}})
	if statusOf(err) != http.StatusBadRequest {
		t.Fatalf("tuning lockout on a kv mount: %v, want 400", err)
	}

	// Disabled on the mount: failures lock nobody.
	disable := true
	if err := root.Sys().TuneMount("auth/userpass", vault.MountConfigInput{UserLockoutConfig: &vault.UserLockoutConfigInput{DisableLockout: &disable}}); err != nil {
		t.Fatal(err)
	}
	failLogins(t, anon, "carol", 4)
	loginUserpass(t, root, "carol", "right password")
}

// A lock ends on its own after lockout_duration on the server's clock, and
// failures further apart than lockout_counter_reset do not add up.
func TestLoginLockoutExpires(t *testing.T) {
	clock := leasetest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	srv, res, err := server.StartDev(context.Background(), server.DevOptions{ListenAddress: "127.0.0.1:0", Clock: clock}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(srv) })
	root := newClient(t, "http://"+res.Address, res.RootToken)
	enableUserpass(t, root)
	if err := root.Sys().TuneMount("auth/userpass", vault.MountConfigInput{UserLockoutConfig: &vault.UserLockoutConfigInput{
		LockoutThreshold: "2", LockoutDuration: "10m", LockoutCounterResetDuration: "1m",
	}}); err != nil {
		t.Fatal(err)
	}
	writeUser(t, root, "dora", map[string]any{"password": "pw"})
	anon := newClient(t, root.Address(), "")

	failLogins(t, anon, "dora", 1)
	clock.Advance(2 * time.Minute) // past the counter reset: the count starts again
	failLogins(t, anon, "dora", 1)
	loginUserpass(t, root, "dora", "pw")

	failLogins(t, anon, "dora", 2)
	wantLocked(t, tryLogin(anon, "dora", "pw"), "dora")
	clock.Advance(9 * time.Minute)
	wantLocked(t, tryLogin(anon, "dora", "pw"), "dora")
	clock.Advance(2 * time.Minute)
	loginUserpass(t, root, "dora", "pw")
	if _, total := lockedUsers(t, root, ""); total != 0 {
		t.Fatalf("sys/locked-users lists %d names after the lock ran out", total)
	}
}

// The server's user_lockout stanzas set the lockout, and a lock survives a
// restart.
func TestLoginLockoutConfigAndRestart(t *testing.T) {
	dir := t.TempDir()
	conf := boltConfig(dir, `
user_lockout "all" {
  lockout_threshold = 4
}
user_lockout "userpass" {
  lockout_threshold = "2"
  lockout_duration  = "1h"
}
`)
	srv, addr := startFromConfig(t, conf)
	c := newClient(t, addr, "")
	rootToken, key := initAndUnseal(t, c)
	root := newClient(t, addr, rootToken)
	acc := enableUserpass(t, root)
	writeUser(t, root, "erin", map[string]any{"password": "pw"})
	tune, err := root.Logical().Read("sys/auth/userpass/tune")
	if err != nil {
		t.Fatal(err)
	}
	if jsonInt(t, tune.Data["user_lockout_threshold"]) != 2 || jsonInt(t, tune.Data["user_lockout_duration"]) != 3600 {
		t.Fatalf("the tune under user_lockout stanzas: %v", tune.Data)
	}
	anon := newClient(t, addr, "")
	failLogins(t, anon, "erin", 2)
	wantLocked(t, tryLogin(anon, "erin", "pw"), "erin")
	shutdown(srv)

	_, addr = startFromConfig(t, conf)
	c = newClient(t, addr, "")
	if _, err := c.Sys().Unseal(key); err != nil {
		t.Fatal(err)
	}
	root = newClient(t, addr, rootToken)
	anon = newClient(t, addr, "")
	wantLocked(t, tryLogin(anon, "erin", "pw"), "erin")
	if byMount, _ := lockedUsers(t, root, ""); !slices.Equal(byMount[acc], []string{"erin"}) {
		t.Fatalf("sys/locked-users after a restart = %v, want erin", byMount)
	}
	if _, err := root.Logical().Write("sys/locked-users/"+acc+"/unlock/erin", nil); err != nil {
		t.Fatal(err)
	}
	loginUserpass(t, root, "erin", "pw")
}

func TestLoginLockoutConfigErrors(t *testing.T) {
	for _, tc := range []struct{ stanza, want string }{
		{`user_lockout "github" { lockout_threshold = 3 }`, "all, userpass, approle or ldap"},
		{`user_lockout "all" { lockout_threshold = "many" }`, "lockout_threshold"},
		{`user_lockout "all" { lockout_duration = "-5m" }`, "lockout_duration"},
		{`user_lockout "all" { lockout_counter_reset = "x" }`, "lockout_counter_reset"},
		{`user_lockout "all" { disable_lockout = "maybe" }`, "disable_lockout"},
		{`user_lockout "all" { lockout_treshold = 3 }`, "lockout_treshold"},
		{"user_lockout \"all\" {}\nuser_lockout \"all\" {}", "only one"},
	} {
		_, err := server.ParseConfig(boltConfig(t.TempDir(), tc.stanza))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one naming %q", tc.stanza, err, tc.want)
		}
	}
}
