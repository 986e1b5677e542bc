package cli

import (
	"fmt"
	"strings"
)

// runLease mirrors `vault lease`: look up, renew and revoke leases.
func runLease(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "Usage: arca lease lookup|renew|revoke [flags] ID")
		return 1
	}
	switch args[0] {
	case "lookup":
		return leaseLookup(args[1:])
	case "renew":
		return leaseRenew(args[1:])
	case "revoke":
		return leaseRevoke(args[1:])
	}
	fmt.Fprintf(stderr, "Error: unknown lease subcommand %q\n", args[0])
	return 1
}

// leaseArg returns the one lease ID (or prefix) a lease command takes.
func leaseArg(cf *clientFlags, usage string) (string, error) {
	if cf.fs.NArg() != 1 || strings.TrimSpace(cf.fs.Arg(0)) == "" {
		return "", usageError("usage: arca lease %s", usage)
	}
	return strings.TrimSpace(cf.fs.Arg(0)), nil
}

func leaseLookup(args []string) int {
	cf := newClientFlags("lease lookup")
	return runCommand(func() error {
		c, err := cf.setup(args)
		if err != nil {
			return err
		}
		id, err := leaseArg(cf, "lookup [flags] ID")
		if err != nil {
			return err
		}
		s, err := c.Write(background(), "sys/leases/lookup", map[string]any{"lease_id": id})
		if err != nil {
			return fmt.Errorf("Error looking up lease: %w", err)
		}
		return cf.output(s)
	})
}

func leaseRenew(args []string) int {
	cf := newClientFlags("lease renew")
	increment := cf.fs.String("increment", "", "the renewal asked for, e.g. 1h (default: the lease's own)")
	return runCommand(func() error {
		c, err := cf.setup(args)
		if err != nil {
			return err
		}
		id, err := leaseArg(cf, "renew [-increment=DURATION] ID")
		if err != nil {
			return err
		}
		body := map[string]any{"lease_id": id}
		if *increment != "" {
			body["increment"] = *increment // seconds or a duration; the server checks it
		}
		s, err := c.Write(background(), "sys/leases/renew", body)
		if err != nil {
			return fmt.Errorf("Error renewing %s: %w", id, err)
		}
		return cf.output(s)
	})
}

func leaseRevoke(args []string) int {
	cf := newClientFlags("lease revoke")
	prefix := cf.fs.Bool("prefix", false, "treat the ID as a prefix: revoke every lease under it")
	force := cf.fs.Bool("force", false, "with -prefix: delete the leases even if the backend fails to revoke them")
	sync := cf.fs.Bool("sync", false, "wait for the revocation to finish instead of queuing it")
	return runCommand(func() error {
		c, err := cf.setup(args)
		if err != nil {
			return err
		}
		id, err := leaseArg(cf, "revoke [-prefix] [-force] [-sync] ID")
		if err != nil {
			return err
		}
		if *force && !*prefix {
			return usageError("-force requires -prefix")
		}
		switch {
		case *force:
			_, err = c.Write(background(), "sys/leases/revoke-force/"+id, nil)
		case *prefix:
			_, err = c.Write(background(), "sys/leases/revoke-prefix/"+id, map[string]any{"sync": *sync})
		default:
			_, err = c.Write(background(), "sys/leases/revoke", map[string]any{"lease_id": id, "sync": *sync})
		}
		if err != nil {
			return fmt.Errorf("Error revoking lease %s: %w", id, err)
		}
		switch {
		case *force:
			fmt.Fprintf(stdout, "Success! Force revoked any leases with prefix: %s\n", id)
		case !*sync:
			fmt.Fprintln(stdout, "All revocation operations queued successfully!")
		case *prefix:
			fmt.Fprintf(stdout, "Success! Revoked any leases with prefix: %s\n", id)
		default:
			fmt.Fprintf(stdout, "Success! Revoked lease: %s\n", id)
		}
		return nil
	})
}
