package core

import (
	"context"

	"github.com/arcasec/arca/internal/logical"
	fw "github.com/arcasec/arca/internal/logical/framework"
)

// The sys/wrapping paths: wrap arbitrary data, and unwrap, look up or
// rewrap a wrapping token. The work is the core's (wrapping.go).

var wrappingTokenFields = map[string]*fw.FieldSchema{
	"token": {Type: fw.TypeString, Description: "the wrapping token; default: the token the request is made with"},
}

func (b *systemBackend) wrappingPaths() []*fw.Path {
	rd, up := logical.ReadOperation, logical.UpdateOperation
	type opmap = map[logical.Operation]fw.OperationFunc
	c := b.core
	return []*fw.Path{
		{Pattern: "wrapping/wrap", TakesArbitraryInput: true, Operations: opmap{up: coreOp(c.wrapData)}},
		{Pattern: "wrapping/unwrap", Fields: wrappingTokenFields, Operations: opmap{up: coreOp(c.unwrap)}},
		{Pattern: "wrapping/lookup", Fields: wrappingTokenFields, Operations: opmap{rd: coreOp(c.lookupWrapping), up: coreOp(c.lookupWrapping)}},
		{Pattern: "wrapping/rewrap", Fields: wrappingTokenFields, Operations: opmap{up: coreOp(c.rewrap)}},
	}
}

// coreOp serves a path with a core method that reads the request itself.
func coreOp(fn func(context.Context, *logical.Request) (*logical.Response, error)) fw.OperationFunc {
	return func(ctx context.Context, req *logical.Request, _ *fw.FieldData) (*logical.Response, error) {
		return fn(ctx, req)
	}
}
