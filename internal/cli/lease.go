package cli

import (
	"fmt"
	"strings"

	"github.com/arcasec/arca/api"
)

// The lease commands mirror `vault lease`: look up, renew and revoke leases.
var leaseCommands = []*command{
	{path: []string{"lease", "lookup"}, synopsis: "Look up a lease", args: "ID", minArgs: 1, maxArgs: 1, run: leaseLookup},
	{path: []string{"lease", "renew"}, synopsis: "Renew a lease", args: "ID", minArgs: 1, maxArgs: 1, run: leaseRenew,
		flags: []flagSpec{strFlag("increment", "", "the renewal asked for, e.g. 1h (default: the lease's own)")}},
	{path: []string{"lease", "revoke"}, synopsis: "Revoke a lease, or every lease under a prefix", args: "ID", minArgs: 1, maxArgs: 1, run: leaseRevoke,
		flags: []flagSpec{
			boolFlag("prefix", false, "treat the ID as a prefix: revoke every lease under it"),
			boolFlag("force", false, "with -prefix: delete the leases even if the backend fails to revoke them"),
			boolFlag("sync", false, "wait for the revocation to finish instead of queuing it"),
		}},
}

// leaseArg returns the client and the one lease ID (or prefix) a lease
// command takes.
func leaseArg(e *env) (*api.Client, string, error) {
	id := strings.TrimSpace(e.arg(0))
	if id == "" {
		return nil, "", e.usageError()
	}
	c, err := e.client()
	return c, id, err
}

func leaseLookup(e *env) error {
	c, id, err := leaseArg(e)
	if err != nil {
		return err
	}
	s, err := c.Write(background(), "sys/leases/lookup", map[string]any{"lease_id": id})
	if err != nil {
		return fmt.Errorf("Error looking up lease: %w", err)
	}
	return e.output(s)
}

func leaseRenew(e *env) error {
	c, id, err := leaseArg(e)
	if err != nil {
		return err
	}
	body := map[string]any{"lease_id": id}
	if inc := e.str("increment"); inc != "" {
		body["increment"] = inc // seconds or a duration; the server checks it
	}
	s, err := c.Write(background(), "sys/leases/renew", body)
	if err != nil {
		return fmt.Errorf("Error renewing %s: %w", id, err)
	}
	return e.output(s)
}

func leaseRevoke(e *env) error {
	force, prefix, sync := e.flag("force"), e.flag("prefix"), e.flag("sync")
	if force && !prefix {
		return usageError("-force requires -prefix")
	}
	c, id, err := leaseArg(e)
	if err != nil {
		return err
	}
	switch {
	case force:
		_, err = c.Write(background(), "sys/leases/revoke-force/"+id, nil)
	case prefix:
		_, err = c.Write(background(), "sys/leases/revoke-prefix/"+id, map[string]any{"sync": sync})
	default:
		_, err = c.Write(background(), "sys/leases/revoke", map[string]any{"lease_id": id, "sync": sync})
	}
	if err != nil {
		return fmt.Errorf("Error revoking lease %s: %w", id, err)
	}
	switch {
	case force:
		fmt.Fprintf(stdout, "Success! Force revoked any leases with prefix: %s\n", id)
	case !sync:
		fmt.Fprintln(stdout, "All revocation operations queued successfully!")
	case prefix:
		fmt.Fprintf(stdout, "Success! Revoked any leases with prefix: %s\n", id)
	default:
		fmt.Fprintf(stdout, "Success! Revoked lease: %s\n", id)
	}
	return nil
}
