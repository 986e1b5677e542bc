package database

import (
	"context"
	"encoding/base64"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSplitStatementsKeepsQuotedSemicolons(t *testing.T) {
	in := []string{
		`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}";`,
		`COMMENT ON ROLE "a;b" IS 'it''s; fine' -- trailing; comment` + "\n" + `;/* block; /* nested; */ still; */ SELECT 1`,
		`DO $body$ BEGIN PERFORM 1; PERFORM 2; END $body$; SELECT $1`,
		"  ;  ",
	}
	want := []string{
		`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`,
		`GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}"`,
		`COMMENT ON ROLE "a;b" IS 'it''s; fine' -- trailing; comment`,
		`/* block; /* nested; */ still; */ SELECT 1`,
		`DO $body$ BEGIN PERFORM 1; PERFORM 2; END $body$`,
		`SELECT $1`,
	}
	if got := splitStatements(in); !slices.Equal(got, want) {
		t.Fatalf("split:\n got %q\nwant %q", got, want)
	}
}

func TestRenderRefusesValuesThatBreakQuoting(t *testing.T) {
	stmts := []string{`CREATE ROLE "{{name}}" PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`}
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	got, err := substitution{name: "v-app", password: "pw-1", expiration: exp}.render(stmts)
	if err != nil || got[0] != `CREATE ROLE "v-app" PASSWORD 'pw-1' VALID UNTIL '2030-01-02 03:04:05+0000'` {
		t.Fatalf("render = %q, %v", got, err)
	}
	for _, bad := range []substitution{{name: `x"; DROP ROLE admin; --`}, {name: "x", password: "it's"}, {name: `a\b`}} {
		if _, err := bad.render(stmts); err == nil {
			t.Errorf("render accepted %+v", bad)
		} else if bad.password != "" && strings.Contains(err.Error(), bad.password) {
			t.Errorf("the error repeats the password: %v", err)
		}
	}
}

func TestCheckConnectionURLRefusesEmbeddedPasswords(t *testing.T) {
	ok := []string{
		"postgresql://{{username}}:{{password}}@db.internal:5432/production",
		"postgres://{{username}}@db:5432/app?sslmode=disable",
		"postgres://db:5432/app?user={{username}}&password={{password}}",
		"host=db user={{username}} password={{password}} dbname=app",
		"host=db user={{username}} password='{{password}}' dbname=app",
		"host=/run/postgresql dbname=app",
	}
	for _, u := range ok {
		if err := checkConnectionURL(u); err != nil {
			t.Errorf("%q refused: %v", u, err)
		}
	}
	bad := []string{
		"postgresql://vault_admin:hunter2@db.internal:5432/production",
		"postgres://{{username}}:hunter2@db/app",
		"postgres://db/app?password=hunter2",
		"host=db user=admin password=hunter2",
		"host=db PASSWORD = 'hunter2'",
		"",
	}
	for _, u := range bad {
		err := checkConnectionURL(u)
		if err == nil {
			t.Errorf("%q accepted", u)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the error repeats the password: %v", err)
		}
	}
}

func TestDefaultUsernameHasVaultShape(t *testing.T) {
	now := func() time.Time { return time.Unix(1700000000, 0) }
	tmpl, err := parseUsernameTemplate("", now)
	if err != nil {
		t.Fatal(err)
	}
	name, err := generateUsername(tmpl, "token-with-a-long-name", "app-readonly")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^v-token-wi-app-read-[A-Za-z0-9]{20}-1700000000$`).MatchString(name) {
		t.Fatalf("username %q", name)
	}
	long, _ := parseUsernameTemplate(`{{ printf "%s-%s" .RoleName (random 80) | truncate 63 }}`, now)
	if name, _ := generateUsername(long, "x", "role"); len(name) != 63 {
		t.Fatalf("truncated username has %d bytes", len(name))
	}
	if _, err := parseUsernameTemplate("{{ nosuchfunc }}", now); err == nil {
		t.Fatal("a template calling an unknown function was accepted")
	}
}

func TestGeneratedPasswordsFollowTheDefaultPolicy(t *testing.T) {
	seen := map[string]bool{}
	b := &backend{system: &clock{}}
	for range 50 {
		p, err := b.generatePassword(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^[A-Za-z0-9-]{20}$`).MatchString(p) || !strings.ContainsAny(p, lower) ||
			!strings.ContainsAny(p, upper) || !strings.ContainsAny(p, digits) || !strings.Contains(p, "-") {
			t.Fatalf("a password of %d characters breaks the policy", len(p))
		}
		if seen[p] {
			t.Fatal("the same password was generated twice")
		}
		seen[p] = true
	}
}

// FuzzSplitStatements checks that splitting never panics, yields only
// trimmed non-empty statements, and loses no text but separators and
// surrounding space.
func FuzzSplitStatements(f *testing.F) {
	for _, s := range []string{"a;b", `'x;y';"q;"`, "$$;$$;$a$;$a$", "/* ; */;--;\n;", "$", "'", "/*", "$1;$a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := splitSQL(s)
		kept := 0
		for _, stmt := range out {
			if stmt == "" || stmt != strings.TrimSpace(stmt) {
				t.Fatalf("statement %q is empty or untrimmed", stmt)
			}
			if !strings.Contains(s, stmt) {
				t.Fatalf("statement %q is not part of the input", stmt)
			}
			kept += len(stmt)
		}
		if kept > len(s) {
			t.Fatalf("statements hold %d bytes of a %d-byte input", kept, len(s))
		}
		if !strings.Contains(s, ";") && strings.TrimSpace(s) != "" && (len(out) != 1 || out[0] != strings.TrimSpace(s)) {
			t.Fatalf("input without a semicolon split into %q", out)
		}
	})
}

func TestStatementsAcceptVaultsEncodings(t *testing.T) {
	sql := `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}'; GRANT SELECT ON t TO "{{name}}";`
	b64 := base64.StdEncoding.EncodeToString([]byte(sql))
	jsonList := `["CREATE ROLE \"{{name}}\"", "GRANT SELECT ON t TO \"{{name}}\""]`
	cases := map[string]struct {
		in   []string
		want []string
	}{
		"plain":            {[]string{sql}, []string{sql}},
		"base64":           {[]string{b64}, []string{sql}},
		"json array":       {[]string{jsonList}, []string{`CREATE ROLE "{{name}}"`, `GRANT SELECT ON t TO "{{name}}"`}},
		"base64 json":      {[]string{base64.StdEncoding.EncodeToString([]byte(jsonList))}, []string{`CREATE ROLE "{{name}}"`, `GRANT SELECT ON t TO "{{name}}"`}},
		"empty clears":     {[]string{""}, []string{}},
		"short sql kept":   {[]string{"ABCD"}, []string{"ABCD"}}, // "ABCD" decodes to bytes that are not text
		"a list of plains": {[]string{"SELECT 1", "SELECT 2"}, []string{"SELECT 1", "SELECT 2"}},
	}
	for name, tc := range cases {
		if got := cleanStatements(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %q, want %q", name, got, tc.want)
		}
	}
}
