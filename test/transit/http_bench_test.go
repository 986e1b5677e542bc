package transit_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/arcasec/arca/internal/server/servertest"
)

// BenchmarkHTTPEncrypt64 is an encrypt of 64 bytes through a real
// in-process server (listener, core, ACL, engine) with the root token.
func BenchmarkHTTPEncrypt64(b *testing.B) {
	addr, root := servertest.StartDev(b)
	call := func(method, path, body string) {
		req, _ := http.NewRequest(method, addr+"/v1/"+path, strings.NewReader(body))
		req.Header.Set("X-Vault-Token", root)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			b.Fatalf("%s %s: %d", method, path, resp.StatusCode)
		}
	}
	call("POST", "sys/mounts/transit", `{"type":"transit"}`)
	call("POST", "transit/keys/bench", `{}`)
	body := []byte(`{"plaintext":"` + strings.Repeat("A", 86) + `=="}`)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", addr+"/v1/transit/encrypt/bench", bytes.NewReader(body))
			req.Header.Set("X-Vault-Token", root)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}
