package compat

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"

	vault "github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/userpass"
)

// enableUserpass mounts userpass at auth/userpass/ and returns the mount's
// accessor.
func enableUserpass(t *testing.T, root *vault.Client) string {
	t.Helper()
	if err := root.Sys().EnableAuthWithOptions("userpass", &vault.EnableAuthOptions{Type: "userpass"}); err != nil {
		t.Fatalf("enabling userpass: %v", err)
	}
	auths, err := root.Sys().ListAuth()
	if err != nil {
		t.Fatal(err)
	}
	return auths["userpass/"].Accessor
}

func writeUser(t *testing.T, root *vault.Client, name string, data map[string]any) {
	t.Helper()
	if _, err := root.Logical().Write("auth/userpass/users/"+name, data); err != nil {
		t.Fatalf("writing user %s: %v", name, err)
	}
}

// loginUserpass logs in through vault/api's userpass helper and returns a
// client holding the new token.
func loginUserpass(t *testing.T, root *vault.Client, name, password string) (*vault.Client, *vault.Secret) {
	t.Helper()
	c := newClient(t, root.Address(), "")
	auth, err := userpass.NewUserpassAuth(name, &userpass.Password{FromString: password})
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Auth().Login(context.Background(), auth)
	if err != nil {
		t.Fatalf("login as %s: %v", name, err)
	}
	return c, s
}

// errorText is the joined error messages of a vault/api error.
func errorText(err error) string {
	var re *vault.ResponseError
	if errors.As(err, &re) {
		return strings.Join(re.Errors, " ")
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestUserpassLoginAndUsers(t *testing.T) {
	root := devClient(t)
	enableUserpass(t, root)
	if err := root.Sys().PutPolicy("reader", `path "secret/data/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	// Names are case-insensitive and kept in lowercase, as in Vault: users/Alice
	// is users/alice (and is checked by the ACL as such:
	// TestProbeUserpassCaseAroundDeny).
	if _, err := root.Logical().Write("auth/userpass/users/Alice", map[string]any{"password": "first"}); err != nil {
		t.Fatalf("writing users/Alice: %v", err)
	}
	if u, err := root.Logical().Read("auth/userpass/users/alice"); err != nil || u == nil {
		t.Fatalf("users/Alice was not kept as users/alice: %v %v", u, err)
	}
	writeUser(t, root, "alice", map[string]any{"password": "correct horse", "token_policies": "reader", "token_ttl": "1h"})

	// The password is never shown.
	u, err := root.Logical().Read("auth/userpass/users/alice")
	if err != nil || u == nil {
		t.Fatalf("reading the user: %v %v", u, err)
	}
	if _, ok := u.Data["password"]; ok {
		t.Fatalf("the user's read shows a password field: %v", u.Data)
	}
	if _, ok := u.Data["password_hash"]; ok {
		t.Fatalf("the user's read shows the password hash: %v", u.Data)
	}
	if got := toStrings(u.Data["token_policies"]); !slices.Equal(got, []string{"reader"}) {
		t.Fatalf("token_policies = %v", got)
	}
	list, err := root.Logical().List("auth/userpass/users")
	if err != nil || list == nil || !slices.Equal(toStrings(list.Data["keys"]), []string{"alice"}) {
		t.Fatalf("listing users: %v %v", list, err)
	}

	c, s := loginUserpass(t, root, "alice", "correct horse")
	if !slices.Equal(s.Auth.Policies, []string{"default", "reader"}) {
		t.Fatalf("login policies = %v, want default and reader", s.Auth.Policies)
	}
	if s.Auth.LeaseDuration != 3600 || !s.Auth.Renewable {
		t.Fatalf("login lease_duration = %d renewable = %v, want 3600 and renewable", s.Auth.LeaseDuration, s.Auth.Renewable)
	}
	if s.Auth.Metadata["username"] != "alice" {
		t.Fatalf("login metadata = %v", s.Auth.Metadata)
	}
	self, err := c.Auth().Token().LookupSelf()
	if err != nil {
		t.Fatal(err)
	}
	if self.Data["path"] != "auth/userpass/login/alice" || self.Data["display_name"] != "userpass-alice" {
		t.Fatalf("lookup-self path = %v display_name = %v", self.Data["path"], self.Data["display_name"])
	}
	if meta, _ := self.Data["meta"].(map[string]any); meta["username"] != "alice" {
		t.Fatalf("lookup-self meta = %v", self.Data["meta"])
	}
	if _, ok := self.Data["entity_id"]; !ok {
		t.Fatal("lookup-self has no entity_id")
	}
	// The token does what its policy allows and nothing more.
	if _, err := root.KVv2("secret").Put(context.Background(), "app", map[string]any{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KVv2("secret").Get(context.Background(), "app"); err != nil {
		t.Fatalf("reading with the login token: %v", err)
	}
	if _, err := c.KVv2("secret").Put(context.Background(), "app", map[string]any{"k": "w"}); statusOf(err) != http.StatusForbidden {
		t.Fatalf("writing with a read-only login token: %v, want 403", err)
	}

	// A wrong password and an unknown user get the same 400.
	anon := newClient(t, root.Address(), "")
	_, errWrong := anon.Logical().Write("auth/userpass/login/alice", map[string]any{"password": "wrong"})
	_, errUnknown := anon.Logical().Write("auth/userpass/login/nobody", map[string]any{"password": "wrong"})
	for _, err := range []error{errWrong, errUnknown} {
		if statusOf(err) != http.StatusBadRequest || !strings.Contains(errorText(err), "invalid username or password") {
			t.Fatalf("bad login: %v, want 400 invalid username or password", err)
		}
	}
	if errorText(errWrong) != errorText(errUnknown) {
		t.Fatalf("a wrong password (%q) and an unknown user (%q) are told apart", errorText(errWrong), errorText(errUnknown))
	}
	if _, err := anon.Logical().Write("auth/userpass/login/alice", nil); statusOf(err) != http.StatusBadRequest || !strings.Contains(errorText(err), "password") {
		t.Fatalf("login without a password: %v, want 400 naming password", err)
	}

	// A new password replaces the old one.
	if _, err := root.Logical().Write("auth/userpass/users/alice/password", map[string]any{"password": "battery staple"}); err != nil {
		t.Fatal(err)
	}
	if _, err := anon.Logical().Write("auth/userpass/login/alice", map[string]any{"password": "correct horse"}); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("login with the old password: %v, want 400", err)
	}
	loginUserpass(t, root, "alice", "battery staple")

	// Creating a user needs a password; bad token fields name themselves.
	if _, err := root.Logical().Write("auth/userpass/users/bob", map[string]any{"token_policies": "reader"}); statusOf(err) != http.StatusBadRequest || !strings.Contains(errorText(err), "password") {
		t.Fatalf("creating a user without a password: %v, want 400 naming password", err)
	}
	if _, err := root.Logical().Write("auth/userpass/users/bob", map[string]any{"password": "x", "token_bound_cidrs": "not-a-cidr"}); statusOf(err) != http.StatusBadRequest || !strings.Contains(errorText(err), "token_bound_cidrs") {
		t.Fatalf("a malformed token_bound_cidrs: %v, want 400 naming it", err)
	}

	// A deleted user cannot log in.
	if _, err := root.Logical().Delete("auth/userpass/users/alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := anon.Logical().Write("auth/userpass/login/alice", map[string]any{"password": "battery staple"}); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("login as a deleted user: %v, want 400", err)
	}
}

func TestLoginTokenNumUsesAndNoDefaultPolicy(t *testing.T) {
	root := devClient(t)
	enableUserpass(t, root)
	writeUser(t, root, "once", map[string]any{"password": "pw", "token_num_uses": 2, "token_policies": "reader"})
	writeUser(t, root, "plain", map[string]any{"password": "pw", "token_no_default_policy": true, "token_policies": "reader"})

	c, _ := loginUserpass(t, root, "once", "pw")
	for i := 0; i < 2; i++ {
		if _, err := c.Auth().Token().LookupSelf(); err != nil {
			t.Fatalf("use %d of 2: %v", i+1, err)
		}
	}
	if _, err := c.Auth().Token().LookupSelf(); statusOf(err) != http.StatusForbidden {
		t.Fatalf("a third use of a two-use token: %v, want 403", err)
	}

	_, s := loginUserpass(t, root, "plain", "pw")
	if slices.Contains(s.Auth.Policies, "default") || !slices.Contains(s.Auth.Policies, "reader") {
		t.Fatalf("policies with token_no_default_policy = %v, want reader without default", s.Auth.Policies)
	}
}

// clientFrom is a client whose connections come from the loopback address
// ip (any of 127.0.0.0/8 reaches the server on 127.0.0.1).
func clientFrom(t *testing.T, addr, token, ip string) *vault.Client {
	t.Helper()
	conf := vault.DefaultConfig()
	conf.Address = addr
	conf.MaxRetries = 0
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	conf.HttpClient = &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}
	c, err := vault.NewClient(conf)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
}

func TestLoginTokenBoundCIDRs(t *testing.T) {
	root := devClient(t)
	enableUserpass(t, root)
	writeUser(t, root, "here", map[string]any{"password": "pw", "token_bound_cidrs": "127.0.0.1/32"})
	writeUser(t, root, "two", map[string]any{"password": "pw", "token_bound_cidrs": "127.0.0.2/32"})
	writeUser(t, root, "far", map[string]any{"password": "pw", "token_bound_cidrs": "10.0.0.0/8"})

	// Bound to where the client is: allowed, and lookup shows the binding.
	c, _ := loginUserpass(t, root, "here", "pw")
	self, err := c.Auth().Token().LookupSelf()
	if err != nil {
		t.Fatalf("using a token from its bound address: %v", err)
	}
	// A block of one address reads back as the bare address, as in Vault.
	if got := toStrings(self.Data["bound_cidrs"]); !slices.Equal(got, []string{"127.0.0.1"}) {
		t.Fatalf("lookup bound_cidrs = %v", got)
	}

	// A user bound elsewhere cannot log in from here.
	anon := newClient(t, root.Address(), "")
	if _, err := anon.Logical().Write("auth/userpass/login/far", map[string]any{"password": "pw"}); statusOf(err) != http.StatusForbidden {
		t.Fatalf("login from outside the user's bound CIDRs: %v, want 403", err)
	}

	// A token issued to 127.0.0.2 works from there and nowhere else.
	from2 := clientFrom(t, root.Address(), "", "127.0.0.2")
	s, err := from2.Logical().Write("auth/userpass/login/two", map[string]any{"password": "pw"})
	if err != nil {
		t.Fatalf("login from 127.0.0.2: %v", err)
	}
	tok := s.Auth.ClientToken
	from2.SetToken(tok)
	if _, err := from2.Auth().Token().LookupSelf(); err != nil {
		t.Fatalf("using the token from its bound address: %v", err)
	}
	from1 := newClient(t, root.Address(), tok)
	for name, call := range map[string]func() error{
		"lookup-self": func() error { _, err := from1.Auth().Token().LookupSelf(); return err },
		"renew-self":  func() error { _, err := from1.Auth().Token().RenewSelf(0); return err },
		"kv read":     func() error { _, err := from1.Logical().Read("secret/data/x"); return err },
	} {
		if err := call(); statusOf(err) != http.StatusForbidden || !strings.Contains(errorText(err), "permission denied") {
			t.Fatalf("%s from outside the token's bound CIDRs: %v, want 403 permission denied", name, err)
		}
	}
	// sys/seal checks the token through another door; it is refused too.
	if err := from1.Sys().Seal(); statusOf(err) != http.StatusForbidden {
		t.Fatalf("sys/seal from outside the token's bound CIDRs: %v, want 403", err)
	}
}

func TestLoginTokenRenewalAsksTheMethod(t *testing.T) {
	root := devClient(t)
	enableUserpass(t, root)
	writeUser(t, root, "carol", map[string]any{"password": "pw", "token_policies": "reader", "token_ttl": "10m", "token_max_ttl": "1h"})

	c, s := loginUserpass(t, root, "carol", "pw")
	if s.Auth.LeaseDuration != 600 {
		t.Fatalf("lease_duration = %d, want 600", s.Auth.LeaseDuration)
	}
	r, err := c.Auth().Token().RenewSelf(0)
	if err != nil {
		t.Fatalf("renewing while the user is unchanged: %v", err)
	}
	if r.Auth.LeaseDuration != 600 {
		t.Fatalf("renewed lease_duration = %d, want the user's token_ttl 600", r.Auth.LeaseDuration)
	}
	// The user's TTL as it is now applies to the renewal.
	writeUser(t, root, "carol", map[string]any{"token_ttl": "20m"})
	if r, err = c.Auth().Token().RenewSelf(0); err != nil || r.Auth.LeaseDuration != 1200 {
		t.Fatalf("renewal after token_ttl changed: %v %v, want 1200", r, err)
	}
	// A bigger increment than the maximum is cut to it.
	if r, err = c.Auth().Token().RenewSelf(7200); err != nil || r.Auth.LeaseDuration > 3600 {
		t.Fatalf("renewal asking past token_max_ttl: %v %v", r, err)
	}

	// The policies changed: renewing is refused, by token and by accessor.
	if _, err := root.Logical().Write("auth/userpass/users/carol/policies", map[string]any{"token_policies": "reader,writer"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Auth().Token().RenewSelf(0); statusOf(err) != http.StatusBadRequest || !strings.Contains(errorText(err), "policies have changed") {
		t.Fatalf("renew-self after the policies changed: %v, want 400 policies have changed", err)
	}
	if _, err := root.Auth().Token().RenewAccessor(s.Auth.Accessor, 0); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("renew-accessor after the policies changed: %v, want 400", err)
	}
	// The token itself still works until it expires.
	if _, err := c.Auth().Token().LookupSelf(); err != nil {
		t.Fatalf("the token after a refused renewal: %v", err)
	}

	// The user deleted: a fresh login's token cannot be renewed either.
	writeUser(t, root, "carol", map[string]any{"token_policies": "reader"})
	c2, s2 := loginUserpass(t, root, "carol", "pw")
	if _, err := root.Logical().Delete("auth/userpass/users/carol"); err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Auth().Token().RenewSelf(0); statusOf(err) != http.StatusBadRequest || !strings.Contains(errorText(err), "no longer exists") {
		t.Fatalf("renewing after the user was deleted: %v, want 400", err)
	}
	if _, err := root.Auth().Token().Renew(s2.Auth.ClientToken, 0); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("auth/token/renew after the user was deleted: %v, want 400", err)
	}
}

func TestLoginTokenFollowsMountTune(t *testing.T) {
	root := devClient(t)
	enableUserpass(t, root)
	if err := root.Sys().TuneMount("auth/userpass", vault.MountConfigInput{DefaultLeaseTTL: "5m", MaxLeaseTTL: "15m"}); err != nil {
		t.Fatal(err)
	}
	writeUser(t, root, "dave", map[string]any{"password": "pw"})
	writeUser(t, root, "erin", map[string]any{"password": "pw", "token_ttl": "1h", "token_explicit_max_ttl": "10m"})
	_, s := loginUserpass(t, root, "dave", "pw")
	if s.Auth.LeaseDuration != 300 {
		t.Fatalf("lease_duration = %d, want the mount's default 300", s.Auth.LeaseDuration)
	}
	_, s = loginUserpass(t, root, "erin", "pw")
	if s.Auth.LeaseDuration != 600 {
		t.Fatalf("lease_duration = %d, want token_explicit_max_ttl 600", s.Auth.LeaseDuration)
	}
}

// A login token belongs to the mount that issued it: moved, the mount
// still renews it; disabled, the mount takes it (and its locks) along.
func TestLoginTokensFollowTheirMount(t *testing.T) {
	root := devClient(t)
	acc := enableUserpass(t, root)
	writeUser(t, root, "gina", map[string]any{"password": "pw", "token_policies": "reader"})
	c, _ := loginUserpass(t, root, "gina", "pw")
	anon := newClient(t, root.Address(), "")
	failLogins(t, anon, "hank", 5)

	if err := root.Sys().Remount("auth/userpass", "auth/people"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Auth().Token().RenewSelf(0); err != nil {
		t.Fatalf("renewing after the mount moved: %v", err)
	}
	if _, err := root.Logical().Write("auth/people/users/gina/policies", map[string]any{"token_policies": "other"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Auth().Token().RenewSelf(0); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("renewal after the moved mount's user changed: %v, want 400", err)
	}
	if byMount, _ := lockedUsers(t, root, acc); len(byMount[acc]) != 1 {
		t.Fatalf("locks after the move: %v", byMount)
	}

	if err := root.Sys().DisableAuth("people"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Auth().Token().LookupSelf(); statusOf(err) != http.StatusForbidden {
		t.Fatalf("a token of a disabled (moved) mount: %v, want 403", err)
	}
	if _, total := lockedUsers(t, root, ""); total != 0 {
		t.Fatalf("sys/locked-users lists %d names of a disabled mount", total)
	}
}

// token_period makes login tokens periodic: each renewal grants the period,
// whatever increment is asked, with no maximum but an explicit one.
func TestLoginTokenPeriod(t *testing.T) {
	root := devClient(t)
	enableUserpass(t, root)
	writeUser(t, root, "ivy", map[string]any{"password": "pw", "token_period": "30m", "token_max_ttl": "10m"})
	c, s := loginUserpass(t, root, "ivy", "pw")
	if s.Auth.LeaseDuration != 1800 {
		t.Fatalf("periodic login lease_duration = %d, want 1800", s.Auth.LeaseDuration)
	}
	self, err := c.Auth().Token().LookupSelf()
	if err != nil || jsonInt(t, self.Data["period"]) != 1800 {
		t.Fatalf("lookup-self of a periodic token: %v %v", self, err)
	}
	r, err := c.Auth().Token().RenewSelf(60)
	if err != nil || r.Auth.LeaseDuration != 1800 {
		t.Fatalf("renewing a periodic token: %v %v, want 1800", r, err)
	}
	// A changed period applies at the next renewal.
	writeUser(t, root, "ivy", map[string]any{"token_period": "1h"})
	if r, err = c.Auth().Token().RenewSelf(0); err != nil || r.Auth.LeaseDuration != 3600 {
		t.Fatalf("renewal after token_period changed: %v %v, want 3600", r, err)
	}
}
