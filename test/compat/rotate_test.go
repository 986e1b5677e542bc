package compat

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/arcasec/arca/internal/server/servertest"
)

// TestKeyRotationConfig reads and writes sys/rotate/config (and its newer
// name sys/rotate/keyring/config) with the official client: Vault's
// defaults, partial updates, and a 400 naming the field for a bad value,
// which leaves the stored settings as they were.
func TestKeyRotationConfig(t *testing.T) {
	c := devClient(t)
	read := func(path string) map[string]any {
		t.Helper()
		s, err := c.Logical().Read(path)
		if err != nil || s == nil {
			t.Fatalf("reading %s: %v, %v", path, s, err)
		}
		return s.Data
	}
	want := func(path string, maxOps string, interval any, enabled bool) {
		t.Helper()
		d := read(path)
		if d["max_operations"] != json.Number(maxOps) || fmt.Sprint(d["interval"]) != fmt.Sprint(interval) || d["enabled"] != enabled {
			t.Fatalf("%s = %v, want max_operations %s, interval %v, enabled %v", path, d, maxOps, interval, enabled)
		}
	}
	want("sys/rotate/config", "3865470566", 0, true)

	if _, err := c.Logical().Write("sys/rotate/config", map[string]any{"max_operations": 2000000000, "interval": "4320h"}); err != nil {
		t.Fatal(err)
	}
	want("sys/rotate/config", "2000000000", "4320h0m0s", true)
	if _, err := c.Logical().Write("sys/rotate/keyring/config", map[string]any{"enabled": false}); err != nil {
		t.Fatal(err)
	}
	want("sys/rotate/keyring/config", "2000000000", "4320h0m0s", false)

	for _, tc := range []struct {
		data  map[string]any
		field string
	}{
		{map[string]any{"max_operations": 10}, "max_operations"},
		{map[string]any{"max_operations": 4000000000}, "max_operations"},
		{map[string]any{"max_operations": "lots"}, "max_operations"},
		{map[string]any{"interval": "1h"}, "interval"},
		{map[string]any{"interval": "soon"}, "interval"},
		{map[string]any{"enabled": "maybe"}, "enabled"},
	} {
		_, err := c.Logical().Write("sys/rotate/config", tc.data)
		if statusOf(err) != 400 || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("writing %v: %v, want a 400 naming %s", tc.data, err, tc.field)
		}
	}
	want("sys/rotate/config", "2000000000", "4320h0m0s", false)

	if _, err := c.Logical().Write("sys/rotate/config", map[string]any{"interval": 0, "enabled": true}); err != nil {
		t.Fatal(err)
	}
	want("sys/rotate/config", "2000000000", 0, true)
}

// TestRotationConfigNeedsSudo: like sys/rotate, the settings are for root
// or a policy with sudo.
func TestRotationConfigNeedsSudo(t *testing.T) {
	c := devClient(t)
	if err := c.Sys().PutPolicy("rotate-no-sudo", `path "sys/rotate/config" { capabilities = ["read", "update"] }`); err != nil {
		t.Fatal(err)
	}
	tok, err := c.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"rotate-no-sudo"}})
	if err != nil {
		t.Fatal(err)
	}
	limited := newClient(t, c.Address(), tok.Auth.ClientToken)
	if _, err := limited.Logical().Read("sys/rotate/config"); statusOf(err) != 403 {
		t.Fatalf("reading without sudo: %v, want 403", err)
	}
	if _, err := limited.Logical().Write("sys/rotate/config", map[string]any{"enabled": false}); statusOf(err) != 403 {
		t.Fatalf("writing without sudo: %v, want 403", err)
	}
}

// TestKeyStatusCountsEncryptions: sys/key-status reports the encryptions
// made under the active key; the count is not reset by sealing and
// unsealing, and a rotation starts the new key's count.
func TestKeyStatusCountsEncryptions(t *testing.T) {
	addr := servertest.StartSealed(t)
	c := newClient(t, addr, "")
	sys := c.Sys()
	init, err := sys.Init(&vault.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sys.Unseal(init.Keys[0]); err != nil {
		t.Fatal(err)
	}
	c.SetToken(init.RootToken)

	first, err := sys.KeyStatus()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if err := sys.PutPolicy(fmt.Sprintf("p%d", i), `path "secret/*" { capabilities = ["read"] }`); err != nil {
			t.Fatal(err)
		}
	}
	written, err := sys.KeyStatus()
	if err != nil {
		t.Fatal(err)
	}
	if written.Term != 1 || written.Encryptions < first.Encryptions+20 {
		t.Fatalf("after 20 writes: term %d, %d encryptions (from %d)", written.Term, written.Encryptions, first.Encryptions)
	}

	if err := sys.Seal(); err != nil {
		t.Fatal(err)
	}
	if _, err := sys.Unseal(init.Keys[0]); err != nil {
		t.Fatal(err)
	}
	reopened, err := sys.KeyStatus()
	if err != nil {
		t.Fatal(err)
	}
	if reopened.Term != 1 || reopened.Encryptions < written.Encryptions {
		t.Fatalf("after seal and unseal: term %d, %d encryptions; want term 1, at least %d", reopened.Term, reopened.Encryptions, written.Encryptions)
	}

	if err := sys.Rotate(); err != nil {
		t.Fatal(err)
	}
	rotated, err := sys.KeyStatus()
	if err != nil {
		t.Fatal(err)
	}
	if rotated.Term != 2 || rotated.Encryptions >= reopened.Encryptions {
		t.Fatalf("after a rotation: term %d, %d encryptions; want term 2 and a fresh count", rotated.Term, rotated.Encryptions)
	}
	if p, err := sys.GetPolicy("p0"); err != nil || p == "" {
		t.Fatalf("a policy written under term 1: %q, %v", p, err)
	}
}
