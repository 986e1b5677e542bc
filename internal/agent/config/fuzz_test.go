package config

import (
	"os"
	"testing"
)

// FuzzAgentConfig: no configuration text makes Parse panic, and a text it
// accepts has a server address and a method for every auto_auth.
func FuzzAgentConfig(f *testing.F) {
	for _, file := range []string{"testdata/agent.hcl", "testdata/agent.json"} {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`auto_auth { method "approle" { config { role_id_file_path = "/r" } } sink "file" { config { path = "/t" } } }`))
	f.Add([]byte(`exec { command = ["a"] } env_template "X" { contents = "x" }`))
	f.Add([]byte(`{"auto_auth": {"method": {"approle": {"config": {"role_id_file_path": "/r"}}}}}`))
	f.Add([]byte(`template { contents = "x" destination = "/x" wait = "1s:2s" }`))
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := Parse(src, "fuzz.hcl")
		if err != nil {
			return
		}
		if c.Vault == nil || c.Vault.Address == "" {
			t.Fatalf("accepted config without a server address: %+v", c.Vault)
		}
		if c.AutoAuth != nil && c.AutoAuth.Method == nil {
			t.Fatal("accepted auto_auth without a method")
		}
		for _, tp := range c.Templates {
			if tp.Destination == "" {
				t.Fatalf("accepted a template without destination: %+v", tp)
			}
		}
	})
}
