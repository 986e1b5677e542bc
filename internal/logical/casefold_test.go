package logical

import "testing"

func TestCanonicalCase(t *testing.T) {
	pats := []string{"users/+", "users/+/*", "role/+/*", "role/+"}
	for in, want := range map[string]string{
		"users/ADMIN":                  "users/admin",
		"users/Alice/password":         "users/alice/password",
		"users/Alice/Password":         "users/alice/Password", // literal parts stay as sent (404)
		"role/Web/secret-id":           "role/web/secret-id",
		"role/Web":                     "role/web",
		"Role/Web":                     "Role/Web",
		"login/Alice":                  "login/Alice",
		"users":                        "users",
		"role/":                        "role/",
		"users/a/b/C":                  "users/a/b/C",
		"role/X/secret-id/lookup/Keep": "role/x/secret-id/lookup/Keep",
	} {
		if got := CanonicalCase(pats, in); got != want {
			t.Errorf("CanonicalCase(%q) = %q, want %q", in, got, want)
		}
	}
	if got := CanonicalCase(nil, "users/ADMIN"); got != "users/ADMIN" {
		t.Errorf("no patterns: %q", got)
	}
}
