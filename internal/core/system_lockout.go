package core

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/arcasec/arca/internal/logical"
	fw "github.com/arcasec/arca/internal/logical/framework"
)

// The sys/locked-users paths and the user_lockout_config tune.

func (b *systemBackend) lockedUserPaths() []*fw.Path {
	type opmap = map[logical.Operation]fw.OperationFunc
	return []*fw.Path{
		{
			Pattern: "locked-users/(?P<mount_accessor>[^/]+)/unlock/(?P<alias_identifier>.+)",
			Fields: map[string]*fw.FieldSchema{
				"mount_accessor":   {Type: fw.TypeString, Description: "The accessor of the auth mount the name is locked out of."},
				"alias_identifier": {Type: fw.TypeString, Description: "The locked name: a userpass user name, an AppRole role ID."},
			},
			Operations:   opmap{logical.UpdateOperation: b.unlockUser},
			HelpSynopsis: "Lift a login lock. Unlocking a name that is not locked succeeds.",
		},
		{
			Pattern:      "locked-users/?",
			Fields:       map[string]*fw.FieldSchema{"mount_accessor": {Type: fw.TypeString, Description: "Only this auth mount's locked names."}},
			Operations:   opmap{logical.ReadOperation: b.lockedUsers, logical.ListOperation: b.lockedUsers},
			HelpSynopsis: "The names locked out of auth mounts by too many failed logins, by mount.",
		},
	}
}

func (b *systemBackend) lockedUsers(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	acc := d.String("mount_accessor")
	byMount := b.core.lockout.lockedNames(ctx, acc)
	if acc != "" {
		if _, ok := byMount[acc]; !ok {
			byMount[acc] = []string{}
		}
	}
	type mountLocks struct {
		acc   string
		names []string
	}
	var mounts []mountLocks
	total := 0
	for a, names := range byMount {
		mounts = append(mounts, mountLocks{a, names})
		total += len(names)
	}
	// Most locked first, as Vault orders them; then by accessor, so the
	// order is stable.
	sort.Slice(mounts, func(i, j int) bool {
		if len(mounts[i].names) != len(mounts[j].names) {
			return len(mounts[i].names) > len(mounts[j].names)
		}
		return mounts[i].acc < mounts[j].acc
	})
	accessors := make([]map[string]any, 0, len(mounts))
	for _, m := range mounts {
		accessors = append(accessors, map[string]any{
			"mount_accessor":    m.acc,
			"counts":            len(m.names),
			"alias_identifiers": m.names,
		})
	}
	return &logical.Response{Data: map[string]any{
		"by_namespace": []map[string]any{{
			"namespace_id":    "root",
			"namespace_path":  "",
			"counts":          total,
			"mount_accessors": accessors,
		}},
		"total": total,
	}}, nil
}

func (b *systemBackend) unlockUser(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	acc, name := d.String("mount_accessor"), d.String("alias_identifier")
	if acc == "" {
		return nil, logical.BadRequest("missing mount_accessor")
	}
	if name == "" {
		return nil, logical.BadRequest("missing alias_identifier")
	}
	if m := b.core.mountByAccessor(acc); m == nil || m.entry.Table != authTable {
		return nil, logical.BadRequest("mount_accessor %q names no auth mount", acc)
	}
	return nil, b.core.lockout.unlock(ctx, lockKey{accessor: acc, name: name})
}

// tuneUserLockout applies a user_lockout_config tune to a mount's lockout
// settings. "system" (or "0") for a duration, and 0 for the threshold, go
// back to the server's setting.
func tuneUserLockout(cur *UserLockoutConfig, in map[string]any) (*UserLockoutConfig, error) {
	next := UserLockoutConfig{}
	if cur != nil {
		next = *cur
	}
	for k, v := range in {
		switch k {
		case "lockout_threshold":
			n, err := strconv.Atoi(strings.TrimSpace(fmt.Sprint(v)))
			if err != nil || n < 0 {
				return nil, logical.BadRequest("user_lockout_config.lockout_threshold: %v is not a count of failed logins", v)
			}
			next.Threshold = nil
			if n > 0 {
				next.Threshold = &n
			}
		case "lockout_duration", "lockout_counter_reset_duration", "lockout_counter_reset":
			to := &next.Duration
			if k != "lockout_duration" {
				to = &next.CounterReset
			}
			*to = nil
			if s, ok := v.(string); ok && (s == "system" || s == "") {
				continue
			}
			dur, err := fw.ParseDuration(v)
			if err != nil || dur < 0 {
				return nil, logical.BadRequest("user_lockout_config.%s: %v is not a duration such as \"15m\"", k, v)
			}
			if dur > 0 {
				*to = &dur
			}
		case "lockout_disable":
			var on bool
			switch x := v.(type) {
			case bool:
				on = x
			default:
				parsed, err := strconv.ParseBool(fmt.Sprint(x))
				if err != nil {
					return nil, logical.BadRequest("user_lockout_config.lockout_disable: %v is not true or false", v)
				}
				on = parsed
			}
			next.Disable = &on
		default:
			return nil, logical.BadRequest("user_lockout_config: unknown key %q (lockout_threshold, lockout_duration, lockout_counter_reset_duration, lockout_disable)", k)
		}
	}
	if next == (UserLockoutConfig{}) {
		return nil, nil
	}
	return &next, nil
}
