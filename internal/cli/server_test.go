package cli

import (
	"bytes"
	"encoding/base64"
	"regexp"
	"testing"

	"github.com/arcasec/arca/internal/server"
)

// TestDevBannerLinesScriptsRead: scripts written for `vault server -dev`
// take the unseal key and root token from the lines that start with
// "Unseal Key: " and "Root Token: "; the banner keeps them exactly.
func TestDevBannerLinesScriptsRead(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	var out bytes.Buffer
	printDevBanner(&out, &server.DevResult{Address: "127.0.0.1:8200", RootToken: "hvs.devroot", UnsealKey: key})
	for re, want := range map[string]string{
		`(?m)^Unseal Key: (\S+)$`:                 base64.StdEncoding.EncodeToString(key),
		`(?m)^Root Token: (\S+)$`:                 "hvs.devroot",
		`(?m)^\s*\$ export VAULT_ADDR='([^']+)'$`: "http://127.0.0.1:8200",
	} {
		m := regexp.MustCompile(re).FindAllSubmatch(out.Bytes(), -1)
		if len(m) != 1 || string(m[0][1]) != want {
			t.Errorf("%s matched %q in the banner, want exactly %q once:\n%s", re, m, want, out.String())
		}
	}
}
