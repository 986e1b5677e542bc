package compat

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/server/servertest"
	"github.com/arcasec/arca/internal/testutil/oidctest"
)

// TestProbeLoginSecretsNotLogged logs in (and fails to) with every login
// method, and checks that no password, secret ID, JWT, OIDC code or issued
// token appears in plaintext in the file audit log, the server's own log,
// or an error message.
func TestProbeLoginSecretsNotLogged(t *testing.T) {
	ctx := context.Background()
	var serverLog lockedBuffer
	_, addr, rootToken := servertest.StartDevServer(t, &serverLog)
	root := newClient(t, addr, rootToken)
	logPath := filepath.Join(t.TempDir(), "audit.log")
	if err := root.Sys().EnableAuditWithOptionsWithContext(ctx, "file", &vault.EnableAuditOptions{
		Type: "file", Options: map[string]string{"file_path": logPath},
	}); err != nil {
		t.Fatal(err)
	}
	anon := newClient(t, addr, "")
	var secrets []string // plaintext that must appear nowhere
	var errs []string    // every error message a client saw
	note := func(err error) {
		if err != nil {
			errs = append(errs, errorText(err)) // the server's messages, not the client's URL
		}
	}

	// userpass: a right and a wrong password, and a password change.
	enableUserpass(t, root)
	const pw, wrongPW, newPW = "userpass-pw-5b1e0c", "userpass-wrong-9d2f4a", "userpass-new-3c7b8e"
	secrets = append(secrets, pw, wrongPW, newPW)
	writeUser(t, root, "alice", map[string]any{"password": pw})
	s, err := anon.Logical().Write("auth/userpass/login/alice", map[string]any{"password": pw})
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, s.Auth.ClientToken)
	_, err = anon.Logical().Write("auth/userpass/login/alice", map[string]any{"password": wrongPW})
	note(err)
	_, err = anon.Logical().Write("auth/userpass/login/alice", map[string]any{"password": []string{wrongPW, wrongPW}})
	note(err)
	mustWrite(t, root, "auth/userpass/users/alice/password", map[string]any{"password": newPW})

	// AppRole: generated and custom secret IDs, a login, a bad login.
	roleID := enableAppRole(t, root, "r", nil)
	sid, _ := newSecretID(t, root, "r", nil)
	const customSID = "custom-secret-id-6e4d2a"
	mustWrite(t, root, "auth/approle/role/r/custom-secret-id", map[string]any{"secret_id": customSID})
	secrets = append(secrets, sid, customSID)
	s, err = appRoleLogin(root, roleID, sid)
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, s.Auth.ClientToken)
	_, err = appRoleLogin(root, roleID, customSID+"x")
	note(err)
	_, err = root.Logical().Write("auth/approle/role/r/secret-id/lookup", map[string]any{"secret_id": sid})
	note(err)

	// JWT: a good and a refused token.
	key := oidctest.NewEC(t, "k")
	const iss = "https://issuer.example"
	mountJWT(t, root, "jwt", "jwt", map[string]any{"jwt_validation_pubkeys": []string{key.PublicPEM(t)}, "bound_issuer": iss})
	mustWrite(t, root, "auth/jwt/role/r", map[string]any{"role_type": "jwt", "user_claim": "sub", "bound_audiences": "arca"})
	good := oidctest.Sign(t, key, probeClaims(iss, "svc"))
	expired := probeClaims(iss, "svc")
	expired["exp"] = time.Now().Add(-time.Hour).Unix()
	bad := oidctest.Sign(t, key, expired)
	secrets = append(secrets, good, bad, strings.Split(good, ".")[2], strings.Split(bad, ".")[2])
	s, err = anon.Logical().Write("auth/jwt/login", map[string]any{"role": "r", "jwt": good})
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, s.Auth.ClientToken)
	_, err = anon.Logical().Write("auth/jwt/login", map[string]any{"role": "r", "jwt": bad})
	note(err)

	// OIDC: a callback with a code, and one replayed.
	okey := oidctest.NewEd25519(t, "ed")
	provider := oidctest.NewIssuer(t, okey)
	mountJWT(t, root, "oidc", "oidc", map[string]any{
		"oidc_discovery_url": provider.URL, "oidc_client_id": provider.ClientID, "oidc_client_secret": provider.ClientSecret, "default_role": "web",
	})
	secrets = append(secrets, provider.ClientSecret)
	const redirect = "http://localhost:8250/oidc/callback"
	mustWrite(t, root, "auth/oidc/role/web", map[string]any{"user_claim": "email", "allowed_redirect_uris": []string{redirect}})
	au, err := anon.Logical().Write("auth/oidc/oidc/auth_url", map[string]any{"redirect_uri": redirect})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(au.Data["auth_url"].(string))
	q := u.Query()
	now := time.Now()
	idTok := oidctest.Sign(t, okey, map[string]any{"iss": provider.URL, "aud": provider.ClientID, "sub": "u", "email": "ada@example.com",
		"nonce": q.Get("nonce"), "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()})
	code := provider.MintCode(q.Get("code_challenge"), idTok)
	secrets = append(secrets, code, idTok)
	s, err = anon.Logical().ReadWithData("auth/oidc/oidc/callback", map[string][]string{"state": {q.Get("state")}, "code": {code}})
	if err != nil {
		t.Fatalf("oidc callback: %v", err)
	}
	secrets = append(secrets, s.Auth.ClientToken)
	_, err = anon.Logical().ReadWithData("auth/oidc/oidc/callback", map[string][]string{"state": {q.Get("state")}, "code": {code}})
	note(err)
	_, err = anon.Logical().Write("auth/oidc/oidc/callback", map[string]any{"state": "nope", "code": code})
	note(err)

	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) == 0 {
		t.Fatal("the audit log is empty")
	}
	logText := serverLog.String()
	for _, sec := range secrets {
		if strings.Contains(string(raw), sec) {
			t.Errorf("the audit log holds %.12s... in plaintext", sec)
		}
		if strings.Contains(logText, sec) {
			t.Errorf("the server log holds %.12s... in plaintext", sec)
		}
		for _, e := range errs {
			if strings.Contains(e, sec) {
				t.Errorf("an error message holds %.12s...: %s", sec, e)
			}
		}
	}
	if len(errs) < 5 {
		t.Fatalf("only %d refusals were seen: %v", len(errs), errs)
	}
}
