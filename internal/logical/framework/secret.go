package framework

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/arcasec/arca/internal/logical"
)

// Secret declares a kind of leased secret a backend issues (database
// credentials, a cloud key): how to renew it and how to revoke it. A
// backend lists its kinds in Backend.Secrets and returns one from a path
// handler with Secret.Response; the core then creates the lease and, when
// the client renews or revokes it or it expires, calls Renew or Revoke
// with the lease in req.Secret.
type Secret struct {
	// Type names the kind, unique within the backend, e.g. "creds". It is
	// stored with every lease (in InternalData under SecretTypeKey) and
	// routes renewals and revocations back here, so never rename it.
	Type string
	// Fields describes the data a response of this kind carries, for help.
	Fields map[string]*FieldSchema
	// DefaultDuration is the lease TTL when the handler sets none; 0 means
	// the mount's default_lease_ttl.
	DefaultDuration time.Duration
	// Renew extends a lease. req.Secret is the stored lease (InternalData,
	// IssueTime, and the client's Increment). It returns a response whose
	// Secret holds the TTL and MaxTTL the backend allows (a role's
	// default_ttl and max_ttl; 0 for the mount's); the core applies the
	// increment and caps the result (logical.CalculateTTL). A nil response
	// means the same rules as at issue. A nil Renew makes the secret
	// non-renewable.
	Renew OperationFunc
	// Revoke undoes what the lease granted. req.Secret is the stored lease.
	// It must succeed when the thing is already gone (revocation is retried
	// after a failure, possibly after a crash). A returned error keeps the
	// lease and the core retries with backoff. A nil Revoke means nothing
	// needs undoing.
	Revoke OperationFunc
}

// SecretTypeKey is the key of InternalData under which a lease records its
// Secret.Type. Backends must not use it for their own data.
const SecretTypeKey = "secret_type"

// Response returns a leased response of this kind: data goes to the
// client, internal stays with the lease and comes back in
// req.Secret.InternalData on renew and revoke. Set resp.Secret.TTL or
// MaxTTL on the result to override DefaultDuration and the mount's limits.
func (s *Secret) Response(data, internal map[string]any) *logical.Response {
	in := make(map[string]any, len(internal)+1)
	maps.Copy(in, internal)
	in[SecretTypeKey] = s.Type
	return &logical.Response{
		Data: data,
		Secret: &logical.Secret{
			TTL:          s.DefaultDuration,
			Renewable:    s.Renew != nil,
			InternalData: in,
		},
	}
}

// Secret returns the declared secret kind named typ, or nil.
func (b *Backend) Secret(typ string) *Secret {
	for _, s := range b.Secrets {
		if s.Type == typ {
			return s
		}
	}
	return nil
}

// handleSecret serves a RenewOperation or RevokeOperation by the kind of
// secret the lease records.
func (b *Backend) handleSecret(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	if req.Secret == nil {
		return nil, logical.BadRequest("the %s request carries no lease", req.Operation)
	}
	typ, _ := req.Secret.InternalData[SecretTypeKey].(string)
	s := b.Secret(typ)
	if s == nil {
		return nil, logical.BadRequest("the backend has no secret type %q for this lease", typ)
	}
	op := s.Renew
	if req.Operation == logical.RevokeOperation {
		op = s.Revoke
		if op == nil {
			return nil, nil
		}
	} else if op == nil {
		return nil, logical.BadRequest("lease is not renewable")
	}
	d := &FieldData{Raw: req.Data, Schema: s.Fields}
	if d.Raw == nil {
		d.Raw = map[string]any{}
	}
	resp, err := op(ctx, req, d)
	if err != nil {
		return nil, fmt.Errorf("%s of a %q lease: %w", req.Operation, typ, err)
	}
	return resp, nil
}
