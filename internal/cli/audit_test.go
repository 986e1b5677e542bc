package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAuditCommands(t *testing.T) {
	devEnv(t)
	logPath := filepath.Join(t.TempDir(), "audit.log")
	if out := mustRun(t, "audit", "list"); !strings.Contains(out, "No audit devices") {
		t.Fatalf("audit list with none:\n%s", out)
	}
	out := mustRun(t, "audit", "enable", "-description=main log", "file", "file_path="+logPath, "mode=0640")
	if !strings.Contains(out, "Enabled the file audit device at: file/") {
		t.Fatalf("audit enable:\n%s", out)
	}
	if fi, err := os.Stat(logPath); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("audit file mode: %v %v", fi, err)
	}
	out = mustRun(t, "audit", "list", "-detailed")
	for _, want := range []string{"file/", "main log", "file_path:" + logPath} {
		if !strings.Contains(out, want) {
			t.Fatalf("audit list -detailed lacks %q:\n%s", want, out)
		}
	}
	if code, _, errOut := arca(t, "", "audit", "enable", "-path=bad", "file", "file_path"); code == 0 || !strings.Contains(errOut, "key=value") {
		t.Fatalf("option without '=': %d %s", code, errOut)
	}

	// who-read takes the KV path as kv get does.
	mustRun(t, "kv", "put", "secret/app", "password=x")
	mustRun(t, "kv", "get", "secret/app")
	mustRun(t, "kv", "get", "secret/app")
	out = mustRun(t, "audit", "who-read", "secret/app")
	for _, want := range []string{"secret/data/app", "Reads", "root", "auth/token/", "127.0.0.1"} {
		if !strings.Contains(out, want) {
			t.Fatalf("who-read lacks %q:\n%s", want, out)
		}
	}
	out = mustRun(t, "audit", "who-read", "-format=json", "secret/data/app")
	var s struct {
		Data struct {
			Reads   int              `json:"reads"`
			Readers []map[string]any `json:"readers"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil || s.Data.Reads != 2 || len(s.Data.Readers) != 1 {
		t.Fatalf("who-read -format=json: %v\n%s", err, out)
	}
	out = mustRun(t, "audit", "who-read", "secret/never-read")
	if !strings.Contains(out, "No token has read this path") {
		t.Fatalf("who-read of an unread path:\n%s", out)
	}

	if out := mustRun(t, "audit", "disable", "file"); !strings.Contains(out, "Disabled audit device") {
		t.Fatalf("audit disable:\n%s", out)
	}
	raw, _ := os.ReadFile(logPath)
	if strings.Contains(string(raw), `"password":"x"`) || !strings.Contains(string(raw), "secret/data/app") {
		t.Fatal("the audit file is not what it should be")
	}
}

func TestSecretsTuneNonHMACKeys(t *testing.T) {
	devEnv(t)
	mustRun(t, "secrets", "enable", "-version=2", "-audit-non-hmac-response-keys=created_time", "-path=kvx", "kv")
	mustRun(t, "secrets", "tune", "-audit-non-hmac-request-keys=cas", "-audit-non-hmac-request-keys=version", "kvx")
	out := mustRun(t, "read", "-format=json", "sys/mounts/kvx/tune")
	var s struct {
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(s.Data["audit_non_hmac_request_keys"]) != "[cas version]" || fmt.Sprint(s.Data["audit_non_hmac_response_keys"]) != "[created_time]" {
		t.Fatalf("tune shows %v", s.Data)
	}
}
