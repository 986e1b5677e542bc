package framework

import (
	"context"
	"strings"

	"github.com/arcasec/arca/internal/logical"
)

// RequireLowercase makes field, a path capture the backend keeps in
// lowercase (role names, user names, policy names), refused with a 400
// unless the request spells it in lowercase without surrounding spaces, on every operation of the paths whose pattern captures it.
//
// An ACL checks the path as the request wrote it. A backend that lowercased
// the name itself would let role/ADMIN/secret-id pass a policy that denies
// role/admin/secret-id and then act on admin: the name the ACL checked must
// be the name the backend acts on.
func RequireLowercase(field string, paths []*Path) {
	for _, p := range paths {
		if !strings.Contains(p.Pattern, "(?P<"+field+">") {
			continue
		}
		for op, f := range p.Operations {
			p.Operations[op] = lowercaseOnly(field, f)
		}
		if ec := p.ExistenceCheck; ec != nil {
			p.ExistenceCheck = func(ctx context.Context, req *logical.Request, d *FieldData) (bool, error) {
				if err := checkLowercase(field, d); err != nil {
					return false, nil // the operation refuses it
				}
				return ec(ctx, req, d)
			}
		}
	}
}

func lowercaseOnly(field string, f OperationFunc) OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *FieldData) (*logical.Response, error) {
		if err := checkLowercase(field, d); err != nil {
			return nil, err
		}
		return f(ctx, req, d)
	}
}

func checkLowercase(field string, d *FieldData) error {
	// The capture as the URL gave it: a TypeLowerCaseString field would
	// read lowercased already.
	v, _ := coerceString(d.Raw[field])
	if lower := strings.ToLower(strings.TrimSpace(v)); lower != v {
		return logical.BadRequest("%s %q: names are case-insensitive and kept in lowercase; write it as %q", field, v, lower)
	}
	return nil
}
