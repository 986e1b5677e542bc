package compat

// Wire details found by sending the same requests to OpenBao and to Arca side
// by side: each test pins the behaviour Vault documents and OpenBao shows.

import (
	"net/http"
	"strings"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/server/servertest"
)

// TestPeerEmptyListIs404 checks that a LIST with nothing to list answers 404,
// as a read of nothing does, for every method's lists (the vault CLI prints
// "No value found" on it, and clients treat 404 as an empty list).
func TestPeerEmptyListIs404(t *testing.T) {
	addr, root := servertest.StartDev(t)
	c := newClient(t, addr, root)
	for _, m := range []string{"approle", "jwt", "userpass"} {
		if err := c.Sys().EnableAuthWithOptions(m, &vault.EnableAuthOptions{Type: m}); err != nil {
			t.Fatalf("enabling %s: %v", m, err)
		}
	}
	if code, _, body := rawRequest(t, "LIST", addr+"/v1/auth/approle/role", root, ""); code != http.StatusNotFound {
		t.Errorf("LIST auth/approle/role with no roles = %d %s, want 404", code, body)
	}
	if _, err := c.Logical().Write("auth/approle/role/r1", map[string]any{"token_ttl": "5m"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"auth/approle/role/r1/secret-id", "auth/jwt/role", "auth/userpass/users", "identity/group/id", "identity/group-alias/id"} {
		code, _, body := rawRequest(t, "LIST", addr+"/v1/"+p, root, "")
		if code != http.StatusNotFound {
			t.Errorf("LIST %s = %d %s, want 404", p, code, body)
		}
	}
	// A list with keys still answers 200 with them.
	s, err := c.Logical().List("auth/approle/role")
	if err != nil || s == nil || !strings.Contains(strings.Join(toStrings(s.Data["keys"]), ","), "r1") {
		t.Fatalf("LIST auth/approle/role = %v, %v; want keys [r1]", s, err)
	}
	if _, err := c.Logical().Delete("auth/approle/role/r1"); err != nil {
		t.Fatal(err)
	}
	if s, err := c.Logical().List("auth/approle/role"); err != nil || s != nil {
		t.Fatalf("LIST after the last role is deleted = %v, %v; want nothing (404)", s, err)
	}
}
