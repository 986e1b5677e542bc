package approle

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/logical/framework"
)

// periodicTidyInterval is how often the periodic function tidies secret IDs.
const periodicTidyInterval = 5 * time.Minute

func (b *backend) tidyPath() *framework.Path {
	return &framework.Path{
		Pattern: "tidy/secret-id",
		Operations: map[logical.Operation]framework.OperationFunc{
			logical.UpdateOperation: b.tidyHandler,
		},
		HelpSynopsis: "Removes expired secret IDs and accessors that name no secret ID.",
	}
}

func (b *backend) tidyHandler(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	secrets, accessors, err := b.tidy(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	resp := &logical.Response{StatusCode: http.StatusAccepted}
	resp.AddWarning(fmt.Sprintf("Tidy operation finished: removed %d secret IDs and %d accessors.", secrets, accessors))
	return resp, nil
}

func (b *backend) periodic(ctx context.Context, req *logical.Request) error {
	now := b.now()
	b.tidyMu.Lock()
	due := b.lastTidy.IsZero() || now.Sub(b.lastTidy) >= periodicTidyInterval
	b.tidyMu.Unlock()
	if !due {
		return nil
	}
	_, _, err := b.tidy(ctx, req.Storage)
	return err
}

// tidy removes secret IDs that expired or belong to no role (or have no
// accessor), and accessors whose secret ID is gone. It returns how many of
// each it removed.
func (b *backend) tidy(ctx context.Context, s logical.Storage) (secrets, accessors int, err error) {
	b.tidyMu.Lock()
	defer b.tidyMu.Unlock()
	b.rolesMu.RLock()
	defer b.rolesMu.RUnlock()
	now := b.now().UTC()

	// The roles that exist, by the HMAC of their names.
	names, err := s.List(ctx, rolePrefix)
	if err != nil {
		return 0, 0, err
	}
	roles := map[string]bool{}
	for _, n := range names {
		h, err := b.hmac(ctx, s, "role_name", n)
		if err != nil {
			return 0, 0, err
		}
		roles[h] = true
	}

	roleDirs, err := s.List(ctx, secretIDPrefix)
	if err != nil {
		return 0, 0, err
	}
	for _, dir := range roleDirs {
		roleHMAC := strings.TrimSuffix(dir, "/")
		hashes, err := s.List(ctx, secretIDPrefix+dir)
		if err != nil {
			return secrets, accessors, err
		}
		for _, h := range hashes {
			if err := ctx.Err(); err != nil {
				return secrets, accessors, err
			}
			removed, err := b.tidySecretID(ctx, s, roleHMAC, h, roles[roleHMAC], now)
			if err != nil {
				return secrets, accessors, err
			}
			if removed {
				secrets++
			}
		}
	}

	accs, err := s.List(ctx, accessorPrefix)
	if err != nil {
		return secrets, accessors, err
	}
	for _, a := range accs {
		removed, err := b.tidyAccessor(ctx, s, a)
		if err != nil {
			return secrets, accessors, err
		}
		if removed {
			accessors++
		}
	}
	b.lastTidy = now
	return secrets, accessors, nil
}

func (b *backend) tidySecretID(ctx context.Context, s logical.Storage, roleHMAC, h string, roleExists bool, now time.Time) (bool, error) {
	lock := b.secretLock(h)
	lock.Lock()
	defer lock.Unlock()
	var e secretIDEntry
	ok, err := getJSON(ctx, s, secretIDKey(roleHMAC, h), &e)
	if err != nil || !ok {
		return false, err
	}
	remove := !roleExists || e.expired(now)
	if !remove {
		accHMAC, err := b.hmac(ctx, s, "accessor", e.Accessor)
		if err != nil {
			return false, err
		}
		var acc accessorEntry
		found, err := getJSON(ctx, s, accessorPrefix+accHMAC, &acc)
		if err != nil {
			return false, err
		}
		remove = !found
	}
	if !remove {
		return false, nil
	}
	return true, b.deleteSecretID(ctx, s, roleHMAC, h, e.Accessor)
}

func (b *backend) tidyAccessor(ctx context.Context, s logical.Storage, accHMAC string) (bool, error) {
	var acc accessorEntry
	ok, err := getJSON(ctx, s, accessorPrefix+accHMAC, &acc)
	if err != nil || !ok {
		return false, err
	}
	// Under the secret ID's lock: a secret ID being generated stores its
	// accessor and entry under that lock, so it is never caught half-way.
	lock := b.secretLock(acc.SecretIDHMAC)
	lock.Lock()
	defer lock.Unlock()
	e, err := s.Get(ctx, secretIDKey(acc.RoleNameHMAC, acc.SecretIDHMAC))
	if err != nil || e != nil {
		return false, err
	}
	return true, s.Delete(ctx, accessorPrefix+accHMAC)
}
