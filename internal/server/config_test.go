package server

import (
	"maps"
	"strings"
	"testing"
	"time"
)

const minimalConfig = `storage "inmem" {}
listener "tcp" { tls_disable = true }
`

// TestConfigRefusesWhatArcaIgnores checks that an option Arca does not act
// on stops start-up with an error naming it, rather than being accepted and
// silently doing nothing.
func TestConfigRefusesWhatArcaIgnores(t *testing.T) {
	for _, tc := range []struct{ text, names string }{
		{`seal "awskms" {}`, "awskms"},
		{`seal "shamir" {}`, "shamir"},
		{`seal "transit" { address = "https://vault:8200" token = "t" key_name = "k" namespace = "ns1/" }`, "namespace"},
		{`seal "transit" { address = "https://vault:8200" token = "t" key_name = "k" key_nme = "x" }`, "key_nme"},
		{`seal "transit" { address = "https://vault:8200" token = "t" key_name = "k" disable_renewal = "maybe" }`, "disable_renewal"},
		{`seal "transit" { address = "vault:8200" token = "t" key_name = "k" }`, "address"},
		{`seal "transit" { address = "https://vault:8200" token = "t" key_name = "k" tls_ca_cert = "/nonexistent/ca.pem" }`, "tls_ca_cert"},
		{"seal \"transit\" { address = \"https://a:8200\" token = \"t\" key_name = \"k\" }\nseal \"transit\" { address = \"https://b:8200\" token = \"t\" key_name = \"k\" }", "only one seal"},
		{`telemetry { prometheus_retention_time = "30s" }`, "telemetry"},
		{`cluster_addr = "127.0.0.1"`, "cluster_addr"},
		{`standby_redirect = "sometimes"`, "standby_redirect"},
		{`plugin_directory = "/plugins"`, "plugin_directory"},
		{`ui = true`, "ui"},
		{`raw_storage_endpoint = true`, "raw_storage_endpoint"},
		{`enable_response_header_hostname = true`, "enable_response_header_hostname"},
		{`disable_mlock = "perhaps"`, "disable_mlock"},
		{`api_addr = "arca.example.com"`, "api_addr"},
		{`ha_storage "consul" {}`, "ha_storage"},
		{`storage_typo = 1`, "storage_typo"},
	} {
		_, err := ParseConfig(minimalConfig + tc.text)
		if err == nil || !strings.Contains(err.Error(), tc.names) {
			t.Errorf("%s: err = %v, want an error naming %s", tc.text, err, tc.names)
		}
	}
	listener := func(opts string) string {
		return `storage "inmem" {}` + "\nlistener \"tcp\" {\n tls_disable = true\n " + opts + "\n}\n"
	}
	for _, tc := range []struct{ text, names string }{
		{listener(`tls_client_ca_file = "/ca.pem"`), "tls_client_ca_file"},
		{listener(`tls_require_and_verify_client_cert = true`), "tls_require_and_verify_client_cert"},
		{listener(`x_forwarded_for_authorized_addrs = "10.0.0.0/8"`), "x_forwarded_for_authorized_addrs"},
		{listener(`proxy_protocol_behavior = "use_always"`), "proxy_protocol_behavior"},
		{listener(`cluster_address = "127.0.0.1:8201"`), "cluster_address"},
		{listener(`http_read_timeout = "soon"`), "http_read_timeout"},
		{listener(`http_idle_timeout = "-1s"`), "http_idle_timeout"},
		{listener(`tls_disable = "yes please"`), "tls_disable"},
		{listener(`adress = "127.0.0.1:8200"`), "adress"},
		{`storage "bolt" { path = "/tmp/a.db" pth = "/tmp/b.db" }` + "\nlistener \"tcp\" { tls_disable = true }\n", "pth"},
		{`storage "inmem" { path = "/tmp/a.db" }` + "\nlistener \"tcp\" { tls_disable = true }\n", "path"},
	} {
		_, err := ParseConfig(tc.text)
		if err == nil || !strings.Contains(err.Error(), tc.names) {
			t.Errorf("%s: err = %v, want an error naming %s", tc.text, err, tc.names)
		}
	}
}

// TestConfigAcceptsWhatArcaDoes checks the options Arca implements, and the
// off values of features it lacks, still load.
func TestConfigAcceptsWhatArcaDoes(t *testing.T) {
	conf, err := ParseConfig(minimalConfig + `
api_addr = "https://arca.example.com:8200"
disable_mlock = true
disable_cache = true
ui = false
raw_storage_endpoint = false
pid_file = "/run/arca.pid"
cluster_addr = "https://arca-1.example.com:8201"
disable_clustering = true
standby_redirect = true
`)
	if err != nil {
		t.Fatal(err)
	}
	if !conf.DisableMlock || conf.APIAddr != "https://arca.example.com:8200" || conf.PidFile != "/run/arca.pid" {
		t.Fatalf("disable_mlock = %v, api_addr = %q, pid_file = %q", conf.DisableMlock, conf.APIAddr, conf.PidFile)
	}
	if conf.ClusterAddr != "https://arca-1.example.com:8201" || !conf.StandbyRedirect {
		t.Fatalf("cluster_addr = %q, standby_redirect = %v", conf.ClusterAddr, conf.StandbyRedirect)
	}
	conf, err = ParseConfig(minimalConfig)
	if err != nil {
		t.Fatal(err)
	}
	if conf.DisableMlock {
		t.Fatal("memory locking is off without disable_mlock")
	}
}

// TestConfigPostgresqlStorage: the postgresql stanza in Vault's shape, in
// HCL and in JSON, with numbers and booleans as Vault users write them.
func TestConfigPostgresqlStorage(t *testing.T) {
	hcl := `storage "postgresql" {
  connection_url = "postgres://arca@db:5432/arca"
  table = "vault_kv_store"
  max_parallel = 16
  ha_enabled = true
  ha_table = "vault_ha_locks"
  max_connect_retries = 5
  skip_create_table = false
}
listener "tcp" { tls_disable = true }
`
	json := `{"storage": {"postgresql": {"connection_url": "postgres://arca@db:5432/arca", "table": "vault_kv_store",
  "max_parallel": 16, "ha_enabled": true, "ha_table": "vault_ha_locks", "max_connect_retries": 5, "skip_create_table": false}},
  "listener": {"tcp": {"tls_disable": true}}}`
	want := map[string]string{"connection_url": "postgres://arca@db:5432/arca", "table": "vault_kv_store",
		"max_parallel": "16", "ha_enabled": "true", "ha_table": "vault_ha_locks", "max_connect_retries": "5",
		"skip_create_table": "false"}
	for _, text := range []string{hcl, json} {
		conf, err := ParseConfig(text)
		if err != nil {
			t.Fatal(err)
		}
		if conf.Storage.Type != "postgresql" || !maps.Equal(conf.Storage.Options, want) {
			t.Fatalf("storage = %+v", conf.Storage)
		}
	}
	_, err := ParseConfig(`storage "postgres" { connection_url = "x" tabel = "y" }` + "\nlistener \"tcp\" { tls_disable = true }\n")
	if err == nil || !strings.Contains(err.Error(), "tabel") {
		t.Fatalf("misspelt option: %v", err)
	}
}

func TestConfigListenerTimeouts(t *testing.T) {
	conf, err := ParseConfig(minimalConfig)
	if err != nil {
		t.Fatal(err)
	}
	l := conf.Listeners[0]
	if l.ReadTimeout != 30*time.Second || l.ReadHeaderTimeout != 10*time.Second || l.IdleTimeout != 5*time.Minute || l.WriteTimeout != 0 {
		t.Fatalf("default timeouts: read %s, read header %s, idle %s, write %s", l.ReadTimeout, l.ReadHeaderTimeout, l.IdleTimeout, l.WriteTimeout)
	}
	conf, err = ParseConfig(`storage "inmem" {}
listener "tcp" {
  tls_disable              = true
  http_read_timeout        = "1m"
  http_read_header_timeout = 5
  http_idle_timeout        = "90s"
  http_write_timeout       = "2m"
}
`)
	if err != nil {
		t.Fatal(err)
	}
	l = conf.Listeners[0]
	if l.ReadTimeout != time.Minute || l.ReadHeaderTimeout != 5*time.Second || l.IdleTimeout != 90*time.Second || l.WriteTimeout != 2*time.Minute {
		t.Fatalf("set timeouts: read %s, read header %s, idle %s, write %s", l.ReadTimeout, l.ReadHeaderTimeout, l.IdleTimeout, l.WriteTimeout)
	}
}

func TestConfigTransitSeal(t *testing.T) {
	t.Setenv("VAULT_TOKEN", "")
	t.Setenv("VAULT_ADDR", "")
	conf, err := ParseConfig(minimalConfig + `
seal "transit" {
  address         = "https://keys.example.com:8200"
  token           = "s.sealtoken"
  key_name        = "autounseal"
  mount_path      = "/seal-transit/"
  tls_server_name = "keys"
  tls_skip_verify = "true"
  disable_renewal = "true"
  disabled        = "false"
}
`)
	if err != nil {
		t.Fatal(err)
	}
	s := conf.Seal
	if s == nil || s.Address != "https://keys.example.com:8200" || s.Token != "s.sealtoken" || s.KeyName != "autounseal" ||
		s.MountPath != "/seal-transit/" || s.TLSServerName != "keys" || !s.TLSSkipVerify || !s.DisableRenewal || s.Disabled {
		t.Fatalf("seal = %+v", s)
	}
	// The token may come from the environment, as in Vault.
	t.Setenv("VAULT_TOKEN", "s.fromenv")
	conf, err = ParseConfig(minimalConfig + `seal "transit" { address = "https://keys:8200" key_name = "k" }`)
	if err != nil || conf.Seal.Token != "s.fromenv" {
		t.Fatalf("seal = %+v, %v", conf.Seal, err)
	}
	t.Setenv("VAULT_TOKEN", "")
	if _, err := ParseConfig(minimalConfig + `seal "transit" { address = "https://keys:8200" key_name = "k" }`); err == nil || !strings.Contains(err.Error(), "token") {
		t.Fatalf("a seal without a token: %v", err)
	}
	if conf, err := ParseConfig(minimalConfig); err != nil || conf.Seal != nil {
		t.Fatalf("no seal block: seal = %+v, %v", conf.Seal, err)
	}
}

func TestMigrateConfig(t *testing.T) {
	conf, err := ParseMigrateConfig(`storage_source "bolt" { path = "/var/lib/arca/arca.db" }
storage_destination "postgresql" {
  connection_url = "postgres://arca@db/arca"
  max_parallel = 4
}
cluster_addr = "https://10.0.0.1:8201"
`)
	if err != nil {
		t.Fatal(err)
	}
	if conf.Source.Type != "bolt" || conf.Source.Options["path"] != "/var/lib/arca/arca.db" ||
		conf.Destination.Type != "postgresql" || conf.Destination.Options["max_parallel"] != "4" {
		t.Fatalf("parsed %+v", conf)
	}
	for _, tc := range []struct{ text, want string }{
		{`storage_source "bolt" { path = "/a" }`, "storage_destination"},
		{`storage_source "bolt" { path = "/a" }` + "\n" + `storage_destination "inmem" {}`, "inmem"},
		{`storage_source "bolt" { path = "/a" }` + "\n" + `storage_source "bolt" { path = "/b" }`, "exactly one"},
		{`storage_source "bolt" { pth = "/a" }` + "\n" + `storage_destination "bolt" { path = "/b" }`, "pth"},
		{`storage "bolt" { path = "/a" }`, "storage"},
	} {
		if _, err := ParseMigrateConfig(tc.text); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %s", tc.text, err, tc.want)
		}
	}
}
