package framework

import (
	"context"
	"strings"
	"testing"

	"github.com/arcasec/arca/internal/logical"
)

func TestCheckPattern(t *testing.T) {
	sound := []string{
		"config",
		"(?P<path>.*)",
		"data/(?P<path>.+)",
		"metadata(?:/(?P<path>.*))?",
		"mounts/(?P<path>.+?)/tune",
		"access-report/(?P<path>.+)/",
		"roles/" + GenericNameRegex("role_name"),
		"keys/(?P<name>[^/]+)(?:/(?P<version>\\d+))?",
		"a/(?P<x>.+)|b/(?P<y>.+)",
		"rotate(/keyring)?",
	}
	for _, p := range sound {
		if err := CheckPattern(p); err != nil {
			t.Errorf("CheckPattern(%q) = %v, want nil", p, err)
		}
	}
	unsound := map[string]string{
		"metadata/?(?P<path>.*)":        "path",
		"meta(?P<path>.*)":              "path",
		"(?P<name>.+)tune":              "name",
		"x/(?P<a>\\w+)-(?P<b>\\w+)":     "a",
		"keys/(?P<name>.+)(?P<rest>.*)": "name",
		"(?:a/(?P<p>[^/]+))+":           "p",
	}
	for p, group := range unsound {
		err := CheckPattern(p)
		if err == nil || !strings.Contains(err.Error(), `group "`+group+`"`) {
			t.Errorf("CheckPattern(%q) = %v, want an error naming group %q", p, err, group)
		}
	}
	if err := CheckPattern("data/(?P<path>.+"); err == nil {
		t.Error("a pattern that does not parse passed")
	}
}

// TestCompileRefusesUnsoundPaths: a backend with an unsound pattern, or a
// group that is not a declared field, fails on its first request, as one
// whose pattern does not compile does.
func TestCompileRefusesUnsoundPaths(t *testing.T) {
	for _, p := range []*Path{
		{Pattern: "metadata/?(?P<path>.*)", Fields: map[string]*FieldSchema{"path": {Type: TypeString}}},
		{Pattern: "data/(?P<path>.+)"},
	} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(r.(error).Error(), p.Pattern) {
					t.Errorf("pattern %q: recovered %v, want a panic naming the pattern", p.Pattern, r)
				}
			}()
			b := &Backend{Paths: []*Path{p}}
			b.HandleRequest(context.Background(), &logical.Request{Operation: logical.ReadOperation, Path: "data/x"})
		}()
	}
}

// TestCapturesBeatData: a capture, empty or not, is what the handler sees;
// data under its name stays in the request's data.
func TestCapturesBeatData(t *testing.T) {
	var got, gotData string
	b := &Backend{Paths: []*Path{{
		Pattern:             "(?P<path>.*)",
		Fields:              map[string]*FieldSchema{"path": {Type: TypeString, Default: "default"}},
		TakesArbitraryInput: true,
		Operations: map[logical.Operation]OperationFunc{logical.ReadOperation: func(_ context.Context, req *logical.Request, d *FieldData) (*logical.Response, error) {
			got, gotData = d.String("path"), req.Data["path"].(string)
			return nil, nil
		}},
	}}}
	for _, path := range []string{"", "app/db"} {
		req := &logical.Request{Operation: logical.ReadOperation, Path: path, Data: map[string]any{"path": "admin/db"}}
		if _, err := b.HandleRequest(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		if got != path || gotData != "admin/db" {
			t.Errorf("path %q: field = %q, data = %q; want the path and the data unchanged", path, got, gotData)
		}
	}
}
