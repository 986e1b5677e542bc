package config

import (
	"os"
	"testing"
)

func BenchmarkParseDocExample(b *testing.B) {
	src, err := os.ReadFile("testdata/agent.hcl")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Parse(src, "agent.hcl"); err != nil {
			b.Fatal(err)
		}
	}
}
