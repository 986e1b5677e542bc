package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestWrapAndUnwrapCommands(t *testing.T) {
	devEnv(t)
	mustRun(t, "kv", "put", "secret/app/db", "password=s3cr3t")

	// kv get -wrap-ttl prints the wrapping token instead of the secret.
	out := mustRun(t, "kv", "get", "-wrap-ttl=5m", "secret/app/db")
	if strings.Contains(out, "s3cr3t") || !strings.Contains(out, "wrapping_token:") || !strings.Contains(out, "secret/data/app/db") {
		t.Fatalf("wrapped kv get output:\n%s", out)
	}
	tok := strings.TrimSpace(mustRun(t, "kv", "get", "-wrap-ttl=5m", "-field=wrapping_token", "secret/app/db"))
	out = mustRun(t, "unwrap", "-format=json", tok)
	var env struct {
		Data struct{ Data map[string]string }
	}
	if err := json.Unmarshal([]byte(out), &env); err != nil || env.Data.Data["password"] != "s3cr3t" {
		t.Fatalf("unwrap output %q: %v", out, err)
	}
	code, _, errOut := arca(t, "", "unwrap", tok)
	if code != 2 || !strings.Contains(errOut, "wrapping token is not valid or does not exist") {
		t.Fatalf("second unwrap: exit %d, stderr %q", code, errOut)
	}

	// A wrapped token creation, unwrapped with the wrapping token as the
	// command's token.
	tok = strings.TrimSpace(mustRun(t, "token", "create", "-policy=default", "-wrap-ttl=1m", "-field=wrapping_token"))
	t.Setenv("VAULT_TOKEN", tok)
	created := strings.TrimSpace(mustRun(t, "unwrap", "-field=token"))
	if !strings.HasPrefix(created, "hvs.") {
		t.Fatalf("unwrapped token %q", created)
	}
	t.Setenv("VAULT_TOKEN", created)
	if out := mustRun(t, "token", "lookup"); !strings.Contains(out, "default") {
		t.Fatalf("the unwrapped token does not work:\n%s", out)
	}
}

func TestWriteWrapsSysWrappingWrapByDefault(t *testing.T) {
	devEnv(t)
	tok := strings.TrimSpace(mustRun(t, "write", "-field=wrapping_token", "sys/wrapping/wrap", "api_key=k3y"))
	if out := mustRun(t, "unwrap", "-field=api_key", tok); out != "k3y\n" {
		t.Fatalf("unwrapped api_key %q", out)
	}
	code, _, errOut := arca(t, "", "read", "-wrap-ttl=soon", "sys/mounts")
	if code != 2 || !strings.Contains(errOut, "X-Vault-Wrap-TTL") {
		t.Fatalf("bad -wrap-ttl: exit %d, stderr %q", code, errOut)
	}
}
