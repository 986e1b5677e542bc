package jwt

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/storage"
	"github.com/arcasec/arca/internal/testutil/oidctest"
)

// es256 signs a JWS signing input with a P-256 key (r||s, 32 bytes each).
func es256(k *ecdsa.PrivateKey, in []byte) []byte {
	h := sha256.Sum256(in)
	r, s, err := ecdsa.Sign(rand.Reader, k, h[:])
	if err != nil {
		panic(err)
	}
	out := make([]byte, 64)
	r.FillBytes(out[:32])
	s.FillBytes(out[32:])
	return out
}

// FuzzJWTLogin sends arbitrary token strings, and tokens with arbitrary
// header and claims JSON signed by the configured key, through the login
// path of a mount whose keys come from jwt_validation_pubkeys (no
// network). A login either succeeds with an Auth block or fails with a
// 4xx; it never panics and never fails as a server error.
func FuzzJWTLogin(f *testing.F) {
	key := oidctest.NewEC(f, "k")
	priv := key.Priv.(*ecdsa.PrivateKey)
	s := storage.NewInmem()
	b, err := Factory(context.Background(), &logical.BackendConfig{Storage: s})
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	do := func(path string, data map[string]any) (*logical.Response, error) {
		return b.HandleRequest(ctx, &logical.Request{Operation: logical.UpdateOperation, Path: path, Data: data, Storage: s, RemoteAddr: "127.0.0.1:1234"})
	}
	for path, data := range map[string]map[string]any{
		"config": {"jwt_validation_pubkeys": []string{key.PublicPEM(f)}, "bound_issuer": "https://iss"},
		"role/plain": {"role_type": "jwt", "user_claim": "sub", "bound_audiences": "arca",
			"claim_mappings": map[string]any{"repo": "repo", "n": "num"}},
		"role/pointer": {"role_type": "jwt", "user_claim": "/user/name", "user_claim_json_pointer": true,
			"groups_claim": "/groups", "bound_claims_type": "glob", "bound_claims": map[string]any{"env": []any{"prod*", "stage"}},
			"bound_subject": "s", "bound_audiences": "arca"},
	} {
		if _, err := do(path, data); err != nil {
			f.Fatalf("write %s: %v", path, err)
		}
	}
	now := time.Now().Unix()
	valid := `{"iss":"https://iss","aud":"arca","sub":"s","exp":` + strconv.FormatInt(now+3600, 10) + `,"iat":` + strconv.FormatInt(now, 10) + `,"repo":"a/b","num":3,"user":{"name":"u"},"groups":["g1","g2"],"env":"prod-1"}`
	f.Add("", []byte(`{"alg":"ES256","typ":"JWT"}`), []byte(valid), false)
	f.Add("", []byte(`{"alg":"ES256","typ":"JWT"}`), []byte(valid), true)
	f.Add("", []byte(`{"alg":"ES256","crit":["x"],"x":1}`), []byte(valid), false)
	f.Add("", []byte(`{"alg":"none"}`), []byte(valid), false)
	f.Add("", []byte(`{"alg":"ES256"}`), []byte(`{"exp":"soon","aud":[1,2],"sub":{"a":1}}`), true)
	f.Add("", []byte(`{"alg":"ES256"}`), []byte(`[]`), false)
	f.Add("", []byte(`{"alg":"ES256"}`), []byte(`{"iss":"https://iss","aud":"arca","sub":"s","exp":1e400}`), false)
	f.Add("a.b.c", []byte(nil), []byte(nil), false)
	f.Add("eyJhbGciOiJFUzI1NiJ9..", []byte(nil), []byte(nil), false)
	f.Add("a.b.c.d.e", []byte(nil), []byte(nil), true)
	f.Add(strings.Repeat(".", 100), []byte(nil), []byte(nil), false)

	enc := base64.RawURLEncoding
	f.Fuzz(func(t *testing.T, raw string, header, claims []byte, pointer bool) {
		role := "plain"
		if pointer {
			role = "pointer"
		}
		tok := raw
		if tok == "" {
			input := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
			tok = input + "." + enc.EncodeToString(es256(priv, []byte(input)))
		}
		resp, err := do("login", map[string]any{"role": role, "jwt": tok})
		if err != nil {
			if st := logical.StatusOf(err); st < 400 || st >= 500 {
				t.Fatalf("login failed with status %d: %v", st, err)
			}
			if len(tok) > 20 && strings.Contains(err.Error(), tok) {
				t.Fatalf("the error echoes the token")
			}
			return
		}
		if resp == nil || resp.Auth == nil || resp.Auth.Alias == nil || resp.Auth.Alias.Name == "" {
			t.Fatalf("a login without an error returned no usable Auth: %+v", resp)
		}
		if raw != "" {
			// A string the fuzzer made up carries no signature of the key.
			t.Fatalf("an arbitrary token string logged in: %q", raw)
		}
		if resp.Auth.Metadata["role"] != role {
			t.Fatalf("role metadata %q, want %q", resp.Auth.Metadata["role"], role)
		}
	})
}
