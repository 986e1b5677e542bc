package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/arcasec/arca/internal/seal/transit"
	"github.com/arcasec/arca/internal/server"
	"github.com/arcasec/arca/internal/server/servertest"
)

func TestOperatorGenerateRoot(t *testing.T) {
	addr := servertest.StartSealed(t)
	t.Setenv("HOME", t.TempDir())
	t.Setenv("VAULT_ADDR", addr)
	t.Setenv("VAULT_TOKEN", "")
	t.Setenv("ARCA_ADDR", "")
	t.Setenv("ARCA_TOKEN", "")
	t.Setenv("VAULT_FORMAT", "")
	var init struct {
		Keys []string `json:"unseal_keys_b64"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, "operator", "init", "-key-shares=3", "-key-threshold=2", "-format=json")), &init); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := arca(t, "", "operator", "unseal", "-migrate", init.Keys[0]); code == 0 || !strings.Contains(errOut, "no seal migration is pending") {
		t.Fatalf("unseal -migrate without a pending migration: exit %d, %s", code, errOut)
	}
	mustRun(t, "operator", "unseal", init.Keys[0])
	mustRun(t, "operator", "unseal", init.Keys[1])

	if otp := strings.TrimSpace(mustRun(t, "operator", "generate-root", "-generate-otp")); len(otp) != 28 {
		t.Fatalf("-generate-otp = %q, want 28 characters", otp)
	}
	var st struct {
		Nonce, OTP   string
		EncodedToken string `json:"encoded_token"`
		Complete     bool
	}
	if err := json.Unmarshal([]byte(mustRun(t, "operator", "generate-root", "-init", "-format=json")), &st); err != nil || st.OTP == "" {
		t.Fatalf("-init: %+v, %v", st, err)
	}
	otp := st.OTP
	if out := mustRun(t, "operator", "generate-root", "-status"); !strings.Contains(out, "0/2") {
		t.Fatalf("-status:\n%s", out)
	}
	mustRun(t, "operator", "generate-root", init.Keys[2])
	// The last key comes from stdin, as at the prompt, with the nonce given.
	code, out, errOut := arca(t, init.Keys[0]+"\n", "operator", "generate-root", "-format=json", "-nonce="+st.Nonce)
	if code != 0 {
		t.Fatalf("last key: exit %d: %s", code, errOut)
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || !st.Complete || st.EncodedToken == "" {
		t.Fatalf("last key: %+v, %v", st, err)
	}
	token := strings.TrimSpace(mustRun(t, "operator", "generate-root", "-decode="+st.EncodedToken, "-otp="+otp))
	if !strings.HasPrefix(token, "hvs.") {
		t.Fatalf("decoded token %q", token)
	}
	t.Setenv("VAULT_TOKEN", token)
	if out := mustRun(t, "token", "lookup"); !strings.Contains(out, "root") {
		t.Fatalf("the generated token:\n%s", out)
	}
	if code, _, errOut := arca(t, "", "operator", "generate-root", "-decode="+st.EncodedToken, "-otp=short"); code == 0 || !strings.Contains(errOut, "OTP") {
		t.Fatalf("decode with a wrong OTP: exit %d, %s", code, errOut)
	}
	mustRun(t, "operator", "generate-root", "-init")
	mustRun(t, "operator", "generate-root", "-cancel")
	if out := mustRun(t, "operator", "generate-root", "-status"); !strings.Contains(out, "Started       false") {
		t.Fatalf("-status after -cancel:\n%s", out)
	}
}

func TestOperatorInitRecoveryKeys(t *testing.T) {
	keyAddr, keyToken := servertest.StartDev(t)
	t.Setenv("HOME", t.TempDir())
	t.Setenv("VAULT_ADDR", keyAddr)
	t.Setenv("VAULT_TOKEN", keyToken)
	t.Setenv("ARCA_ADDR", "")
	t.Setenv("ARCA_TOKEN", "")
	t.Setenv("VAULT_FORMAT", "")
	if code, _, errOut := arca(t, "", "secrets", "enable", "transit"); code != 0 {
		if strings.Contains(errOut, "plugin not found in the catalog") {
			t.Skipf("the key server has no transit engine yet: %s", errOut)
		}
		t.Fatalf("enabling transit: %s", errOut)
	}
	mustRun(t, "write", "-f", "transit/keys/seal")
	_, addr := servertest.StartConfig(t, &server.Config{
		Storage: server.StorageConfig{Type: "inmem"},
		Seal:    &transit.Config{Address: keyAddr, Token: keyToken, KeyName: "seal", DisableRenewal: true},
	}, nil)
	t.Setenv("VAULT_ADDR", addr)
	t.Setenv("VAULT_TOKEN", "")
	var init struct {
		Unseal   []string `json:"unseal_keys_b64"`
		Recovery []string `json:"recovery_keys_b64"`
		Root     string   `json:"root_token"`
	}
	out := mustRun(t, "operator", "init", "-recovery-shares=3", "-recovery-threshold=2", "-format=json")
	if err := json.Unmarshal([]byte(out), &init); err != nil || len(init.Unseal) != 0 || len(init.Recovery) != 3 || init.Root == "" {
		t.Fatalf("init output %q: %v", out, err)
	}
	out = mustRun(t, "status")
	for _, want := range []string{"Seal Type", "transit", "Total Recovery Shares    3", "Sealed                   false"} {
		if !strings.Contains(out, want) {
			t.Fatalf("status lacks %q:\n%s", want, out)
		}
	}
	if code, _, errOut := arca(t, "", "operator", "init", "-key-shares=3", "-key-threshold=2"); code == 0 || !strings.Contains(errOut, "secret_shares") {
		t.Fatalf("init with -key-shares on a transit seal: exit %d, %s", code, errOut)
	}
	if code, _, errOut := arca(t, "", "operator", "init"); code == 0 || !strings.Contains(errOut, "already initialized") {
		t.Fatalf("a second init: exit %d, %s", code, errOut)
	}
}
