package core

import (
	"context"
	"net/http"
	"strings"

	"github.com/arcasec/arca/internal/logical"
	fw "github.com/arcasec/arca/internal/logical/framework"
)

// leaseRootPaths are the lease paths that need sudo, as in Vault: listing
// leases and revoking many at once.
var leaseRootPaths = []string{
	"leases/lookup/*", "leases/revoke-prefix/*", "leases/revoke-force/*",
	"revoke-prefix/*", "revoke-force/*",
}

var leaseIDFields = map[string]*fw.FieldSchema{
	"lease_id":     {Type: fw.TypeString, Description: "the lease ID"},
	"url_lease_id": {Type: fw.TypeString, Description: "the lease ID, in the path"},
	"increment":    {Type: fw.TypeDuration, Description: "the renewal asked for, from now (seconds or a duration like 1h)"},
	"sync":         {Type: fw.TypeBool, Default: true, Description: "wait for the revocation to finish (false: queue it, 202)"},
}

var leasePrefixFields = map[string]*fw.FieldSchema{
	"prefix": {Type: fw.TypeString, Description: "the lease ID prefix (path segments)"},
	"sync":   {Type: fw.TypeBool, Default: true, Description: "wait for the revocations to finish (false: queue them, 202)"},
}

// leasePaths are sys/leases/* and the legacy sys/renew, sys/revoke,
// sys/revoke-prefix and sys/revoke-force that clients such as node-vault
// still call.
func (b *systemBackend) leasePaths() []*fw.Path {
	rd, up, list := logical.ReadOperation, logical.UpdateOperation, logical.ListOperation
	type opmap = map[logical.Operation]fw.OperationFunc
	var paths []*fw.Path
	for _, p := range []string{"leases/", ""} {
		paths = append(paths,
			&fw.Path{Pattern: p + "renew(?:/(?P<url_lease_id>.+))?", Fields: leaseIDFields, Operations: opmap{up: b.leaseRenew},
				HelpSynopsis: "Renew a lease: extend it by increment, within its max_ttl."},
			&fw.Path{Pattern: p + "revoke(?:/(?P<url_lease_id>.+))?", Fields: leaseIDFields, Operations: opmap{up: b.leaseRevoke},
				HelpSynopsis: "Revoke a lease: the backend that issued it undoes it."},
			&fw.Path{Pattern: p + "revoke-prefix/(?P<prefix>.+)", Fields: leasePrefixFields, Operations: opmap{up: b.leaseRevokePrefix(false)},
				HelpSynopsis: "Revoke every lease under a prefix (sudo)."},
			&fw.Path{Pattern: p + "revoke-force/(?P<prefix>.+)", Fields: leasePrefixFields, Operations: opmap{up: b.leaseRevokePrefix(true)},
				HelpSynopsis: "Delete every lease under a prefix without asking the backend to revoke it (sudo)."},
		)
	}
	paths = append(paths,
		&fw.Path{Pattern: "leases/lookup", Fields: leaseIDFields, Operations: opmap{up: b.leaseLookup},
			HelpSynopsis: "Describe a lease: issue and expire times, ttl, renewable."},
		&fw.Path{Pattern: "leases/lookup/(?P<prefix>.+)", Fields: leasePrefixFields, Operations: opmap{list: b.leaseList},
			HelpSynopsis: "List the lease IDs under a prefix (sudo)."},
		&fw.Path{Pattern: "leases/lookup/?", Fields: leasePrefixFields, Operations: opmap{list: b.leaseList}},
		&fw.Path{Pattern: "leases/tidy", Operations: opmap{up: b.leaseTidy},
			HelpSynopsis: "Remove lease index entries that point nowhere and revoke leases whose token is gone."},
		&fw.Path{Pattern: "leases/count", Operations: opmap{rd: b.leaseCount},
			HelpSynopsis: "The number of outstanding leases."},
	)
	return paths
}

// leaseIDOf returns the lease ID of a request: the body's, or the path's.
func leaseIDOf(d *fw.FieldData) (string, error) {
	id := d.String("lease_id")
	if id == "" {
		id = d.String("url_lease_id")
	}
	if id == "" {
		return "", logical.BadRequest("missing required field \"lease_id\"")
	}
	return id, nil
}

func (b *systemBackend) leaseLookup(ctx context.Context, _ *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	id := d.String("lease_id")
	if id == "" {
		return nil, logical.BadRequest("missing required field \"lease_id\"")
	}
	le, err := b.core.expiration.settled(ctx, id)
	if err != nil {
		return nil, err
	}
	if le == nil {
		return nil, errLeaseNotFound
	}
	return &logical.Response{Data: le.lookup(b.core.Now())}, nil
}

func (b *systemBackend) leaseList(ctx context.Context, _ *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	prefix := strings.Trim(d.String("prefix"), "/")
	if prefix != "" {
		prefix += "/"
	}
	keys, err := b.core.expiration.view.List(ctx, leaseIDPrefix+prefix)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, logical.ErrUnsupportedPath // Vault answers 404 to an empty list
	}
	return &logical.Response{Data: map[string]any{"keys": keys}}, nil
}

func (b *systemBackend) leaseRenew(ctx context.Context, _ *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	id, err := leaseIDOf(d)
	if err != nil {
		return nil, err
	}
	increment, err := durationField(d, "increment")
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(id, "auth/") {
		return nil, logical.BadRequest("tokens are renewed with auth/token/renew, not with sys/leases/renew")
	}
	return b.core.expiration.renew(ctx, id, increment)
}

func (b *systemBackend) leaseRevoke(ctx context.Context, _ *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	id, err := leaseIDOf(d)
	if err != nil {
		return nil, err
	}
	em := b.core.expiration
	if !d.Bool("sync") {
		if err := em.revokeLater(ctx, id); err != nil {
			return nil, err
		}
		return &logical.Response{StatusCode: http.StatusAccepted}, nil
	}
	if err := em.revoke(ctx, id, "", false); err != nil {
		return nil, revokeFailed(b, id, err)
	}
	return nil, nil
}

// revokeFailed is what a client sees when a backend could not revoke a
// lease: the lease is kept and retried, and the cause is in the log and
// in the lease's lookup.
func revokeFailed(b *systemBackend, id string, err error) error {
	if logical.StatusOf(err) < 500 {
		return err
	}
	b.core.logger.Warn("revoking a lease failed; it will be retried", "lease_id", id, "error", err)
	return logical.Errorf(http.StatusInternalServerError, "failed to revoke lease %s; it is kept and revocation will be retried (sys/leases/lookup shows the attempts)", id)
}

func (b *systemBackend) leaseRevokePrefix(force bool) fw.OperationFunc {
	return func(ctx context.Context, _ *logical.Request, d *fw.FieldData) (*logical.Response, error) {
		prefix := strings.TrimPrefix(d.String("prefix"), "/")
		if prefix == "" {
			return nil, logical.BadRequest("missing required field \"prefix\"")
		}
		em := b.core.expiration
		if !force && !d.Bool("sync") {
			err := em.walkIDs(ctx, strings.TrimSuffix(prefix, "/")+"/", func(id string) error { return em.revokeLater(ctx, id) })
			if err != nil {
				return nil, err
			}
			return &logical.Response{StatusCode: http.StatusAccepted}, nil
		}
		if err := em.revokePrefix(ctx, prefix, force); err != nil {
			return nil, revokeFailed(b, prefix, err)
		}
		// Tokens are leases too in Vault's model: a prefix under auth/
		// revokes the tokens issued there.
		if err := b.core.tokens.revokeByPathPrefix(ctx, prefix); err != nil {
			return nil, err
		}
		return nil, nil
	}
}

func (b *systemBackend) leaseTidy(context.Context, *logical.Request, *fw.FieldData) (*logical.Response, error) {
	em := b.core.expiration
	if !em.tidying.CompareAndSwap(false, true) {
		return &logical.Response{StatusCode: http.StatusAccepted, Warnings: []string{"Tidy operation already in progress."}}, nil
	}
	go func() {
		defer em.tidying.Store(false)
		if err := em.tidy(context.Background()); err != nil {
			b.core.logger.Warn("lease tidy failed", "error", err)
		}
	}()
	return &logical.Response{StatusCode: http.StatusAccepted, Warnings: []string{"Tidy operation successfully started. Any information from the operation will be printed to Arca's server logs."}}, nil
}

func (b *systemBackend) leaseCount(context.Context, *logical.Request, *fw.FieldData) (*logical.Response, error) {
	return &logical.Response{Data: map[string]any{"lease_count": b.core.leaseCount.Load()}}, nil
}
