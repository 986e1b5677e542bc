package core

import (
	"context"
	"time"

	"github.com/arcasec/arca/internal/barrier"
	"github.com/arcasec/arca/internal/logical"
	fw "github.com/arcasec/arca/internal/logical/framework"
)

// The sys/rotate/config paths: when the barrier rotates its key by itself.

var rotateConfigFields = map[string]*fw.FieldSchema{
	"max_operations": {Type: fw.TypeInt, Description: "encryptions after which the key is rotated"},
	"interval":       {Type: fw.TypeDuration, Description: "age at which the key is rotated; 0 for none"},
	"enabled":        {Type: fw.TypeBool, Description: "false stops automatic rotation; encryptions are still counted"},
}

func (b *systemBackend) rotateConfigPath() *fw.Path {
	return &fw.Path{
		Pattern: "rotate(/keyring)?/config",
		Fields:  rotateConfigFields,
		Operations: map[logical.Operation]fw.OperationFunc{
			logical.ReadOperation:   b.readRotateConfig,
			logical.UpdateOperation: b.writeRotateConfig,
		},
	}
}

func (b *systemBackend) readRotateConfig(ctx context.Context, req *logical.Request, _ *fw.FieldData) (*logical.Response, error) {
	rc, err := b.core.barrier.RotationConfig()
	if err != nil {
		return nil, err
	}
	// Vault answers a duration string when an interval is set, the number 0 when not.
	var interval any = 0
	if rc.Interval > 0 {
		interval = rc.Interval.String()
	}
	return &logical.Response{Data: map[string]any{
		"max_operations": rc.MaxOperations,
		"interval":       interval,
		"enabled":        !rc.Disabled,
	}}, nil
}

func (b *systemBackend) writeRotateConfig(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	rc, err := b.core.barrier.RotationConfig()
	if err != nil {
		return nil, err
	}
	if v, ok := d.GetOk("max_operations"); ok {
		rc.MaxOperations = int64(v.(int))
	}
	if v, ok := d.GetOk("interval"); ok {
		rc.Interval = v.(time.Duration)
	}
	if v, ok := d.GetOk("enabled"); ok {
		rc.Disabled = !v.(bool)
	}
	if rc.MaxOperations < barrier.MinMaxOperations || rc.MaxOperations > barrier.MaxOperationsLimit {
		return nil, logical.BadRequest("max_operations must be between %d and %d, got %d",
			barrier.MinMaxOperations, int64(barrier.MaxOperationsLimit), rc.MaxOperations)
	}
	if rc.Interval != 0 && rc.Interval < barrier.MinRotationInterval {
		return nil, logical.BadRequest("interval must be 0 (no rotation by age) or at least %s, got %s",
			barrier.MinRotationInterval, rc.Interval)
	}
	if err := b.core.barrier.SetRotationConfig(ctx, rc); err != nil {
		return nil, err
	}
	return nil, nil
}
