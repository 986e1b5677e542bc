// Package hclsafe parses HCL (v1) and its JSON form without panicking: the
// hashicorp/hcl parser panics on some malformed input, and policies and
// configuration files come from users.
package hclsafe

import (
	"errors"
	"fmt"

	"github.com/hashicorp/hcl"
	"github.com/hashicorp/hcl/hcl/ast"
	"github.com/hashicorp/hcl/hcl/token"
)

// ErrMalformed is returned for input the HCL library could not handle.
var ErrMalformed = errors.New("the text is not valid HCL or JSON")

// Parse parses HCL or JSON text.
func Parse(text string) (f *ast.File, err error) {
	defer func() {
		if recover() != nil {
			f, err = nil, ErrMalformed
		}
	}()
	return hcl.Parse(text)
}

// DecodeObject decodes an HCL node into out.
func DecodeObject(out any, n ast.Node) (err error) {
	defer func() {
		if recover() != nil {
			err = ErrMalformed
		}
	}()
	return hcl.DecodeObject(out, n)
}

// Value returns the value of a literal token.
func Value(t token.Token) (v any, err error) {
	defer func() {
		if recover() != nil {
			v, err = nil, ErrMalformed
		}
	}()
	return t.Value(), nil
}

// String returns the value of a literal token as a string: strings as they
// are, other literals as written.
func String(t token.Token) (string, error) {
	v, err := Value(t)
	if err != nil {
		return "", err
	}
	if s, ok := v.(string); ok {
		return s, nil
	}
	return fmt.Sprint(v), nil
}
