package compat

import (
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/server/servertest"
)

// A policy of the kind Vault's documentation shows: 24 characters with at
// least two digits and one symbol from a short set.
const appPasswordPolicy = `length = 24
rule "charset" {
  charset = "abcdefghijklmnopqrstuvwxyz"
  min-chars = 1
}
rule "charset" {
  charset = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
  min-chars = 1
}
rule "charset" {
  charset = "0123456789"
  min-chars = 2
}
rule "charset" {
  charset = "!@#$%^&*"
  min-chars = 1
}
`

// checkAppPassword fails unless pw follows appPasswordPolicy.
func checkAppPassword(t *testing.T, pw string) {
	t.Helper()
	if utf8.RuneCountInString(pw) != 24 {
		t.Fatalf("password of %d characters, want 24", utf8.RuneCountInString(pw))
	}
	sets := []struct {
		chars string
		min   int
	}{
		{"abcdefghijklmnopqrstuvwxyz", 1}, {"ABCDEFGHIJKLMNOPQRSTUVWXYZ", 1}, {"0123456789", 2}, {"!@#$%^&*", 1},
	}
	all := ""
	for _, s := range sets {
		all += s.chars
		n := 0
		for _, c := range pw {
			if strings.ContainsRune(s.chars, c) {
				n++
			}
		}
		if n < s.min {
			t.Fatalf("password has %d of %q, want at least %d", n, s.chars, s.min)
		}
	}
	for _, c := range pw {
		if !strings.ContainsRune(all, c) {
			t.Fatalf("password holds %q, outside the policy's charsets", c)
		}
	}
}

func generate(t *testing.T, c *vault.Client, name string) string {
	t.Helper()
	s, err := c.Logical().Read("sys/policies/password/" + name + "/generate")
	if err != nil {
		t.Fatalf("generate from %s: %v", name, err)
	}
	pw, ok := s.Data["password"].(string)
	if !ok {
		t.Fatalf("generate from %s answered %v, no password", name, s.Data)
	}
	return pw
}

// readStatus reads path and returns the HTTP status and body.
func readStatus(t *testing.T, c *vault.Client, path string) (int, string) {
	t.Helper()
	resp, err := c.Logical().ReadRaw(path)
	if resp == nil {
		t.Fatalf("read %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestPasswordPolicyLifecycle(t *testing.T) {
	c := devClient(t)

	if _, err := c.Logical().Write("sys/policies/password/app", map[string]any{"policy": appPasswordPolicy}); err != nil {
		t.Fatalf("write: %v", err)
	}
	s, err := c.Logical().Read("sys/policies/password/app")
	if err != nil || s == nil {
		t.Fatalf("read: %v, %v", s, err)
	}
	if s.Data["policy"] != appPasswordPolicy {
		t.Fatalf("read back %q, want the policy as written", s.Data["policy"])
	}

	seen := map[string]bool{}
	for range 50 {
		pw := generate(t, c, "app")
		checkAppPassword(t, pw)
		if seen[pw] {
			t.Fatalf("the same password came twice")
		}
		seen[pw] = true
	}

	// The policy may be sent base64-encoded; it is stored decoded.
	short := "length = 8\nrule \"charset\" {\n  charset = \"ab\"\n  min-chars = 8\n}\n"
	if _, err := c.Logical().Write("sys/policies/password/short", map[string]any{
		"policy": base64.StdEncoding.EncodeToString([]byte(short)),
	}); err != nil {
		t.Fatalf("write base64: %v", err)
	}
	if s, err := c.Logical().Read("sys/policies/password/short"); err != nil || s.Data["policy"] != short {
		t.Fatalf("read base64-written policy: %v, %v", s, err)
	}
	if pw := generate(t, c, "short"); len(pw) != 8 || strings.Trim(pw, "ab") != "" {
		t.Fatalf("password %q from a policy of 8 characters from ab", pw)
	}

	list, err := c.Logical().List("sys/policies/password")
	if err != nil || list == nil {
		t.Fatalf("list: %v, %v", list, err)
	}
	keys, _ := list.Data["keys"].([]any)
	if !slices.Equal(keys, []any{"app", "short"}) {
		t.Fatalf("list = %v, want [app short]", list.Data["keys"])
	}

	if _, err := c.Logical().Delete("sys/policies/password/app"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if s, err := c.Logical().Read("sys/policies/password/app"); err != nil || s != nil {
		t.Fatalf("read after delete: %v, %v; want no policy", s, err)
	}
	if code, body := readStatus(t, c, "sys/policies/password/app/generate"); code != http.StatusNotFound {
		t.Fatalf("generate after delete: %d %s, want 404", code, body)
	}
}

func TestPasswordPolicyBadInput(t *testing.T) {
	c := devClient(t)
	if _, err := c.Logical().Write("sys/policies/password/app", map[string]any{"policy": appPasswordPolicy}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path string
		data       map[string]any
		want       string
	}{
		{"missing policy", "app", map[string]any{}, "missing policy"},
		{"not HCL", "app", map[string]any{"policy": "length = = 4"}, "not valid HCL"},
		{"length too short", "app", map[string]any{"policy": "length = 3\nrule \"charset\" { charset = \"abc\" }"}, "length must be between 4 and 100, got 3"},
		{"no charset", "app", map[string]any{"policy": "length = 20"}, "no charset"},
		{"impossible", "app", map[string]any{"policy": "length = 4\nrule \"charset\" {\n charset = \"abc\"\n min-chars = 5\n}"}, "the sum of their min-chars"},
		{"misspelt key", "app", map[string]any{"policy": "length = 20\nrule \"charset\" {\n charset = \"abc\"\n min_chars = 5\n}"}, `unknown key "min_chars"`},
		{"name with a slash", "team/app", map[string]any{"policy": appPasswordPolicy}, "cannot contain a slash"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Logical().Write("sys/policies/password/"+tc.path, tc.data)
			if statusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("write: %v; want 400 saying %q", err, tc.want)
			}
		})
	}
	// Nothing refused replaced the stored policy.
	if s, err := c.Logical().Read("sys/policies/password/app"); err != nil || s.Data["policy"] != appPasswordPolicy {
		t.Fatalf("stored policy after refused writes: %v, %v", s, err)
	}
	checkAppPassword(t, generate(t, c, "app"))

	// vault/api reads a 404 as no secret; the body names the policy.
	if s, err := c.Logical().Read("sys/policies/password/nope/generate"); s != nil || err != nil {
		t.Fatalf("generate from a missing policy: %v, %v; want nothing", s, err)
	}
	if code, body := readStatus(t, c, "sys/policies/password/nope/generate"); code != http.StatusNotFound || !strings.Contains(body, `no password policy named \"nope\"`) {
		t.Fatalf("generate from a missing policy: %d %s, want 404 naming it", code, body)
	}
}

// Password policies are not root-protected paths in Vault: an ACL policy
// decides, path by path, like anywhere else.
func TestPasswordPolicyACL(t *testing.T) {
	root := devClient(t)
	if _, err := root.Logical().Write("sys/policies/password/app", map[string]any{"policy": appPasswordPolicy}); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().PutPolicy("generate-only", `path "sys/policies/password/+/generate" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	tokenFor := func(policies ...string) *vault.Client {
		t.Helper()
		s, err := root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: policies})
		if err != nil {
			t.Fatal(err)
		}
		c, err := root.Clone()
		if err != nil {
			t.Fatal(err)
		}
		c.SetToken(s.Auth.ClientToken)
		return c
	}

	gen := tokenFor("generate-only")
	checkAppPassword(t, generate(t, gen, "app"))
	if _, err := gen.Logical().Read("sys/policies/password/app"); statusOf(err) != http.StatusForbidden {
		t.Fatalf("read of the policy text with generate-only: %v, want 403", err)
	}
	if _, err := gen.Logical().Write("sys/policies/password/app", map[string]any{"policy": "length = 4\nrule \"charset\" { charset = \"a\" }"}); statusOf(err) != http.StatusForbidden {
		t.Fatalf("write with generate-only: %v, want 403", err)
	}
	if _, err := gen.Logical().List("sys/policies/password"); statusOf(err) != http.StatusForbidden {
		t.Fatalf("list with generate-only: %v, want 403", err)
	}

	def := tokenFor("default")
	if _, err := def.Logical().Read("sys/policies/password/app/generate"); statusOf(err) != http.StatusForbidden {
		t.Fatalf("generate with the default policy: %v, want 403", err)
	}
	if s, err := root.Logical().Read("sys/policies/password/app"); err != nil || s.Data["policy"] != appPasswordPolicy {
		t.Fatalf("policy after refused writes: %v, %v", s, err)
	}
}

// A generated password reaches the client and nothing else: the audit log
// holds only its HMAC, and the server log never has it.
func TestGeneratedPasswordsStayOutOfLogs(t *testing.T) {
	serverLog := &lockedBuffer{}
	_, addr, root := servertest.StartDevServer(t, serverLog)
	c := newClient(t, addr, root)
	auditPath := filepath.Join(t.TempDir(), "audit.log")
	if err := c.Sys().EnableAuditWithOptions("file", &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": auditPath}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().Write("sys/policies/password/app", map[string]any{"policy": appPasswordPolicy}); err != nil {
		t.Fatal(err)
	}
	var passwords []string
	for range 5 {
		passwords = append(passwords, generate(t, c, "app"))
	}

	raw, err := os.ReadFile(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	responses := 0
	for _, l := range parseAuditLines(t, raw) {
		if l.Type == "response" && l.Request.Path == "sys/policies/password/app/generate" {
			responses++
			if pw, _ := l.Response.Data["password"].(string); !strings.HasPrefix(pw, "hmac-sha256:") {
				t.Fatalf("audited password %q is not an HMAC", pw)
			}
		}
	}
	if responses != len(passwords) {
		t.Fatalf("%d generate responses audited, want %d", responses, len(passwords))
	}
	for _, pw := range passwords {
		if strings.Contains(string(raw), pw) {
			t.Fatal("a generated password is in the audit log")
		}
		if strings.Contains(serverLog.String(), pw) {
			t.Fatal("a generated password is in the server log")
		}
	}
}
