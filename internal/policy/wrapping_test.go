package policy

import (
	"strings"
	"testing"
	"time"
)

func TestWrappingTTLBounds(t *testing.T) {
	a := mustACL(t,
		`path "secret/*" {
  capabilities = ["read"]
  min_wrapping_ttl = "1m"
  max_wrapping_ttl = 3600
}`,
		`path "secret/*" {
  capabilities = ["read"]
  min_wrapping_ttl = "30s"
  max_wrapping_ttl = "10m"
}`,
		`path "open/*" { capabilities = ["read"] }`,
	)
	d := a.Check("secret/x", Read, nil)
	if !d.Allowed || d.MinWrappingTTL != 30*time.Second || d.MaxWrappingTTL != 10*time.Minute {
		t.Fatalf("merged decision = %+v, want allowed with bounds [30s, 10m]", d)
	}
	for ttl, want := range map[time.Duration]bool{
		0: false, 29 * time.Second: false, 30 * time.Second: true, 10 * time.Minute: true, 11 * time.Minute: false,
	} {
		if got := d.WrapTTLAllowed(ttl); got != want {
			t.Errorf("WrapTTLAllowed(%s) = %v, want %v", ttl, got, want)
		}
	}
	open := a.Check("open/x", Read, nil)
	if !open.WrapTTLAllowed(0) || !open.WrapTTLAllowed(time.Hour) {
		t.Fatalf("a path without bounds must allow any wrapping: %+v", open)
	}
	if !RootACL().Check("secret/x", Read, nil).WrapTTLAllowed(0) {
		t.Fatal("root must not need wrapping")
	}

	// Bounds that merge into an empty range allow nothing.
	crossed := mustACL(t,
		`path "s/*" { capabilities = ["read"] min_wrapping_ttl = "1h" }`,
		`path "s/*" { capabilities = ["read"] max_wrapping_ttl = "1m" }`,
	).Check("s/x", Read, nil)
	for _, ttl := range []time.Duration{0, time.Minute, time.Hour} {
		if crossed.WrapTTLAllowed(ttl) {
			t.Errorf("min 1h and max 1m merged allow %s", ttl)
		}
	}
}

func TestUnenforcedFieldsRefused(t *testing.T) {
	for field, text := range map[string]string{
		"control_group": `{"path": {"secret/*": {"capabilities": ["read"], "control_group": {"max_ttl": "1h"}}}}`,
		"mfa_methods":   `path "secret/*" { capabilities = ["read"] mfa_methods = ["totp"] }`,
	} {
		if _, err := Parse("p", text); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("policy with %s: err = %v, want a refusal naming it", field, err)
		}
	}
	if _, err := Parse("p", `path "s/*" { capabilities = ["read"] min_wrapping_ttl = "1h" max_wrapping_ttl = "1m" }`); err == nil || !strings.Contains(err.Error(), "max_wrapping_ttl") {
		t.Errorf("max below min: err = %v", err)
	}
	if _, err := Parse("p", `path "s/*" { capabilities = ["read"] min_wrapping_ttl = "-1m" }`); err == nil {
		t.Error("a negative min_wrapping_ttl was accepted")
	}
}
