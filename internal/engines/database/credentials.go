package database

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"text/template"
	"time"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/passpolicy"
	"github.com/google/uuid"
)

// defaultUsernameTemplate is the shape of Vault's PostgreSQL usernames:
// v-<display name>-<role>-<random>-<unix time>, at most 63 bytes, the
// length PostgreSQL keeps of an identifier.
const defaultUsernameTemplate = `{{ printf "v-%s-%s-%s-%s" (.DisplayName | truncate 8) (.RoleName | truncate 8) (random 20) (unix_time) | truncate 63 }}`

// usernameFuncs are the functions Vault's username templates may call.
func usernameFuncs(now func() time.Time) template.FuncMap {
	return template.FuncMap{
		"random": func(n int) (string, error) { return randomString(alphanumeric, n) },
		"truncate": func(n int, s string) (string, error) {
			if n < 0 {
				return "", fmt.Errorf("truncate: negative length %d", n)
			}
			if len(s) > n {
				s = s[:n]
			}
			return s, nil
		},
		"truncate_sha256": func(n int, s string) (string, error) {
			if n < 8 {
				return "", fmt.Errorf("truncate_sha256: length %d is under 8", n)
			}
			if len(s) <= n {
				return s, nil
			}
			sum := sha256.Sum256([]byte(s[n-8:]))
			return s[:n-8] + hex.EncodeToString(sum[:])[:8], nil
		},
		"uppercase": strings.ToUpper,
		"lowercase": strings.ToLower,
		"replace":   func(old, new, s string) string { return strings.ReplaceAll(s, old, new) },
		"sha256": func(s string) string {
			sum := sha256.Sum256([]byte(s))
			return hex.EncodeToString(sum[:])
		},
		"base64":           func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
		"uuid":             func() (string, error) { u, err := uuid.NewRandom(); return u.String(), err },
		"unix_time":        func() string { return fmt.Sprint(now().Unix()) },
		"unix_time_millis": func() string { return fmt.Sprint(now().UnixMilli()) },
		"timestamp":        func(layout string) string { return now().UTC().Format(layout) },
	}
}

// parseUsernameTemplate parses a username_template ("" is the default).
func parseUsernameTemplate(text string, now func() time.Time) (*template.Template, error) {
	if text == "" {
		text = defaultUsernameTemplate
	}
	return template.New("username_template").Funcs(usernameFuncs(now)).Option("missingkey=error").Parse(text)
}

// generateUsername renders a username for a dynamic role's user.
func generateUsername(tmpl *template.Template, displayName, roleName string) (string, error) {
	var b strings.Builder
	err := tmpl.Execute(&b, struct{ DisplayName, RoleName string }{displayName, roleName})
	if err != nil {
		return "", fmt.Errorf("rendering username_template: %w", err)
	}
	name := strings.TrimSpace(b.String())
	if name == "" {
		return "", fmt.Errorf("username_template rendered an empty username")
	}
	return name, nil
}

const (
	lower        = "abcdefghijklmnopqrstuvwxyz"
	upper        = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	digits       = "0123456789"
	alphanumeric = lower + upper + digits
)

// generatePassword returns a new password from the named password
// policy (sys/policies/password/<name>), or from Vault's default policy for
// generated credentials when the database names none: 20 letters, digits
// and dashes with at least one of each kind.
func (b *backend) generatePassword(ctx context.Context, policy string) (string, error) {
	p, err := passpolicy.FromPolicy(ctx, b.system, policy)
	if err != nil {
		// A policy that does not exist is the configuration's fault, not
		// a missing secret: a 404 would read as "no credentials here".
		if logical.StatusOf(err) == http.StatusNotFound {
			return "", logical.BadRequest("password_policy %q of the database configuration does not exist", policy)
		}
		return "", fmt.Errorf("generating a password from password_policy %q: %w", policy, err)
	}
	return p, nil
}

// randomString draws n characters uniformly from charset with crypto/rand.
func randomString(charset string, n int) (string, error) {
	if n < 0 {
		return "", fmt.Errorf("random: negative length %d", n)
	}
	b := make([]byte, n)
	max := big.NewInt(int64(len(charset)))
	for i := range b {
		k, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", err
		}
		b[i] = charset[k.Int64()]
	}
	return string(b), nil
}
