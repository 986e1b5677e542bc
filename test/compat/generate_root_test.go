package compat

import (
	"encoding/base64"
	"net/http"
	"slices"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/server/servertest"
)

// initUnsealed initialises a server with 5 shares, threshold 3, unseals it
// and returns a root client and the unseal keys.
func initUnsealed(t *testing.T, addr string) (*vault.Client, []string) {
	t.Helper()
	c := newClient(t, addr, "")
	res, err := c.Sys().Init(&vault.InitRequest{SecretShares: 5, SecretThreshold: 3})
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	for _, k := range res.KeysB64[:3] {
		if _, err := c.Sys().Unseal(k); err != nil {
			t.Fatalf("unseal: %v", err)
		}
	}
	c.SetToken(res.RootToken)
	return c, res.KeysB64
}

// decodeRootToken undoes Vault's encoding of a generated root token:
// unpadded base64 of the token XOR the one-time pad.
func decodeRootToken(t *testing.T, encoded, otp string) string {
	t.Helper()
	raw, err := base64.RawStdEncoding.DecodeString(encoded)
	if err != nil {
		t.Fatalf("encoded token %q is not unpadded base64: %v", encoded, err)
	}
	if len(raw) != len(otp) {
		t.Fatalf("encoded token has %d bytes, the otp %d", len(raw), len(otp))
	}
	for i := range raw {
		raw[i] ^= otp[i]
	}
	return string(raw)
}

func TestGenerateRootShamir(t *testing.T) {
	addr := servertest.StartSealed(t)
	root, keys := initUnsealed(t, addr)
	// generate-root is unauthenticated: the quorum is the authority.
	c := newClient(t, addr, "")

	st, err := c.Sys().GenerateRootStatus()
	if err != nil || st.Started || st.Required != 3 || st.OTPLength != 28 {
		t.Fatalf("status before any attempt = %+v, %v", st, err)
	}
	if _, err := c.Sys().GenerateRootInit("", "some-pgp-key"); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("init with pgp_key: %v, want 400", err)
	}
	if _, err := c.Sys().GenerateRootInit("tooshort", ""); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("init with a short otp: %v, want 400", err)
	}
	st, err = c.Sys().GenerateRootInit("", "")
	if err != nil || !st.Started || st.Nonce == "" || len(st.OTP) != st.OTPLength {
		t.Fatalf("init = %+v, %v", st, err)
	}
	otp, nonce := st.OTP, st.Nonce
	if _, err := c.Sys().GenerateRootInit("", ""); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("a second attempt while one is under way: %v, want 400", err)
	}
	if _, err := c.Sys().GenerateRootUpdate(keys[0], "not-the-nonce"); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("update with a wrong nonce: %v, want 400", err)
	}
	for i, k := range keys[1:3] {
		st, err = c.Sys().GenerateRootUpdate(k, nonce)
		if err != nil || st.Complete || st.Progress != i+1 || st.EncodedToken != "" {
			t.Fatalf("update %d = %+v, %v", i, st, err)
		}
	}
	if _, err := c.Sys().GenerateRootUpdate(keys[1], nonce); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("a repeated key share: %v, want 400", err)
	}
	st, err = c.Sys().GenerateRootUpdate(keys[4], nonce)
	if err != nil || !st.Complete || st.EncodedToken == "" || st.EncodedRootToken != st.EncodedToken {
		t.Fatalf("last update = %+v, %v", st, err)
	}
	token := decodeRootToken(t, st.EncodedToken, otp)
	if token == root.Token() {
		t.Fatal("generate-root returned the existing root token")
	}
	fresh := newClient(t, addr, token)
	self, err := fresh.Auth().Token().LookupSelf()
	if err != nil {
		t.Fatalf("lookup-self with the generated token: %v", err)
	}
	if pols, _ := self.TokenPolicies(); !slices.Equal(pols, []string{"root"}) {
		t.Fatalf("generated token policies = %v, want [root]", pols)
	}
	if _, err := fresh.Sys().ListMounts(); err != nil {
		t.Fatalf("the generated root token cannot list mounts: %v", err)
	}
	if st, err := c.Sys().GenerateRootStatus(); err != nil || st.Started {
		t.Fatalf("status after completion = %+v, %v", st, err)
	}
}

func TestGenerateRootRefusesWrongKeysAndCancels(t *testing.T) {
	addr := servertest.StartSealed(t)
	_, keys := initUnsealed(t, addr)
	_, otherKeys := initUnsealed(t, servertest.StartSealed(t))
	c := newClient(t, addr, "")

	st, err := c.Sys().GenerateRootInit("", "")
	if err != nil {
		t.Fatal(err)
	}
	// Shares of another server's root key combine, but not into this one's.
	for _, k := range otherKeys[:2] {
		if _, err := c.Sys().GenerateRootUpdate(k, st.Nonce); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Sys().GenerateRootUpdate(otherKeys[2], st.Nonce); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("a quorum of another server's keys: %v, want 400", err)
	}
	if _, err := c.Sys().GenerateRootUpdate("zz-not-a-key", st.Nonce); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("an undecodable key: %v, want 400", err)
	}
	if err := c.Sys().GenerateRootCancel(); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	if s, err := c.Sys().GenerateRootStatus(); err != nil || s.Started || s.Nonce != "" {
		t.Fatalf("status after cancel = %+v, %v", s, err)
	}
	if _, err := c.Sys().GenerateRootUpdate(keys[0], st.Nonce); statusOf(err) != http.StatusBadRequest {
		t.Fatalf("update after cancel: %v, want 400", err)
	}
	// A fresh attempt with the caller's own pad works with this server's keys.
	otp := "0123456789abcdefghijABCDEFGH"
	st, err = c.Sys().GenerateRootInit(otp, "")
	if err != nil || st.OTP != "" {
		t.Fatalf("init with an otp = %+v, %v", st, err)
	}
	for _, k := range keys[2:5] {
		if st, err = c.Sys().GenerateRootUpdate(k, st.Nonce); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := newClient(t, addr, decodeRootToken(t, st.EncodedToken, otp)).Auth().Token().LookupSelf(); err != nil {
		t.Fatalf("generated token: %v", err)
	}
}

func TestGenerateRootSealed(t *testing.T) {
	addr := servertest.StartSealed(t)
	root, _ := initUnsealed(t, addr)
	if err := root.Sys().Seal(); err != nil {
		t.Fatal(err)
	}
	if _, err := newClient(t, addr, "").Sys().GenerateRootInit("", ""); statusOf(err) != http.StatusServiceUnavailable {
		t.Fatalf("generate-root on a sealed server: %v, want 503", err)
	}
}
