package hclsafe

import "testing"

func TestMalformedDoesNotPanic(t *testing.T) {
	// This input makes the JSON parser of hashicorp/hcl panic.
	if _, err := Parse("{\"\x00"); err == nil {
		t.Fatal("malformed input parsed")
	}
	if f, err := Parse(`path "a" { capabilities = ["read"] }`); err != nil || f == nil {
		t.Fatalf("valid input: %v", err)
	}
}
