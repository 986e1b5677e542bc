package compat

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/arcasec/arca/internal/server"
)

// benchLogins posts body to path on a fresh dev server (after setup) as
// fast as the benchmark goes, in parallel, each call a full login: the
// method's check, a token stored, the response.
func benchLogins(b *testing.B, setup func(root string, call func(method, path, body string)), path, body string, wantStatus int) {
	cat := server.Catalog()
	cat.Auth["rolestub"] = roleStub
	srv, res, err := server.StartDev(context.Background(), server.DevOptions{ListenAddress: "127.0.0.1:0", Catalog: &cat},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { shutdown(srv) })
	addr := "http://" + res.Address
	call := func(method, p, body string) {
		req, _ := http.NewRequest(method, addr+"/v1/"+p, bytes.NewReader([]byte(body)))
		req.Header.Set("X-Vault-Token", res.RootToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			b.Fatalf("%s %s: %d", method, p, resp.StatusCode)
		}
	}
	setup(res.RootToken, call)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := http.Post(addr+"/v1/"+path, "application/json", bytes.NewReader([]byte(body)))
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != wantStatus {
				b.Fatalf("login: %d, want %d", resp.StatusCode, wantStatus)
			}
		}
	})
}

// BenchmarkLoginTokenIssue is the core's share of a login: an auth method
// that checks nothing, so what is measured is routing, audit, the token
// written to storage and the response.
func BenchmarkLoginTokenIssue(b *testing.B) {
	benchLogins(b, func(_ string, call func(string, string, string)) {
		call("POST", "sys/auth/ci", `{"type":"rolestub"}`)
	}, "auth/ci/login", `{"role":"deploy"}`, http.StatusOK)
}

// BenchmarkUserpassLogin is a userpass login: a bcrypt comparison (cost
// 10) and the token.
func BenchmarkUserpassLogin(b *testing.B) {
	benchLogins(b, func(_ string, call func(string, string, string)) {
		call("POST", "sys/auth/userpass", `{"type":"userpass"}`)
		call("POST", "auth/userpass/users/bench", `{"password":"bench password"}`)
	}, "auth/userpass/login/bench", `{"password":"bench password"}`, http.StatusOK)
}

// BenchmarkUserpassLoginWrongPassword and ...UnknownUser are refused
// logins (lockout off, so every attempt reaches the password check): their
// figures should match, as an unknown user is checked against a dummy hash.
func BenchmarkUserpassLoginWrongPassword(b *testing.B) {
	benchLogins(b, userpassNoLockout, "auth/userpass/login/bench", `{"password":"wrong"}`, http.StatusBadRequest)
}

func BenchmarkUserpassLoginUnknownUser(b *testing.B) {
	benchLogins(b, userpassNoLockout, "auth/userpass/login/nobody", `{"password":"wrong"}`, http.StatusBadRequest)
}

func userpassNoLockout(_ string, call func(string, string, string)) {
	call("POST", "sys/auth/userpass", `{"type":"userpass"}`)
	call("POST", "sys/auth/userpass/tune", `{"user_lockout_config":{"lockout_disable":true}}`)
	call("POST", "auth/userpass/users/bench", `{"password":"bench password"}`)
}
