package framework

import (
	"testing"
	"time"

	"github.com/arcasec/arca/internal/logical"
)

func tokenFieldData(t *testing.T, raw map[string]any) *FieldData {
	t.Helper()
	p := &Path{Pattern: "role", Fields: TokenFields()}
	d, _, err := p.fieldData(&logical.Request{Data: raw}, nil)
	if err != nil {
		t.Fatalf("fieldData: %v", err)
	}
	return d
}

func TestTokenParamsParseAndPopulate(t *testing.T) {
	var p TokenParams
	d := tokenFieldData(t, map[string]any{
		"token_ttl": "1h", "token_max_ttl": 7200, "token_policies": "Dev, ops,dev",
		"token_bound_cidrs": "10.0.0.0/8,127.0.0.1", "token_num_uses": 3,
	})
	if err := p.ParseTokenFields(d); err != nil {
		t.Fatal(err)
	}
	if p.TokenTTL != time.Hour || p.TokenMaxTTL != 2*time.Hour || p.TokenNumUses != 3 {
		t.Fatalf("parsed %+v", p)
	}
	if got := p.TokenPolicies; len(got) != 2 || got[0] != "dev" || got[1] != "ops" {
		t.Fatalf("policies %v", got)
	}
	if got := p.TokenBoundCIDRs; len(got) != 2 || got[1] != "127.0.0.1/32" {
		t.Fatalf("cidrs %v", got)
	}
	// An update that names one field leaves the others alone.
	if err := p.ParseTokenFields(tokenFieldData(t, map[string]any{"token_num_uses": 0})); err != nil {
		t.Fatal(err)
	}
	if p.TokenTTL != time.Hour || p.TokenNumUses != 0 {
		t.Fatalf("partial update: %+v", p)
	}
	a := &logical.Auth{Policies: []string{"base"}}
	p.PopulateAuth(a)
	if a.TTL != time.Hour || a.MaxTTL != 2*time.Hour || len(a.Policies) != 3 || !a.Renewable {
		t.Fatalf("auth %+v", a)
	}
}

func TestTokenParamsRefuseBadInput(t *testing.T) {
	for name, raw := range map[string]map[string]any{
		"negative ttl":   {"token_ttl": -5},
		"negative uses":  {"token_num_uses": -1},
		"bad cidr":       {"token_bound_cidrs": "10.0.0.0/33"},
		"not an address": {"token_bound_cidrs": "example.com"},
		"batch":          {"token_type": "batch"},
		"unknown type":   {"token_type": "weird"},
		"ttl above max":  {"token_ttl": 7200, "token_max_ttl": 3600},
	} {
		var p TokenParams
		err := p.ParseTokenFields(tokenFieldData(t, raw))
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if code := logical.StatusOf(err); code != 400 {
			t.Errorf("%s: status %d (%v)", name, code, err)
		}
	}
}

func TestRemoteAddrAllowed(t *testing.T) {
	cidrs := []string{"10.0.0.0/8", "::1/128"}
	for addr, want := range map[string]bool{
		"10.1.2.3:5555": true, "10.1.2.3": true, "11.0.0.1:80": false, "[::1]:80": true,
		"[::ffff:10.0.0.1]:80": true, "garbage": false,
	} {
		if got := RemoteAddrAllowed(addr, cidrs); got != want {
			t.Errorf("%s: got %v", addr, got)
		}
	}
	if !RemoteAddrAllowed("garbage", nil) {
		t.Error("an empty list must allow every address")
	}
}
