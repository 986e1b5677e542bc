// Package cli implements Arca's command line. Commands that talk to a server
// do so only through the public client in package api; their names, flags and
// environment variables mirror the vault CLI's.
package cli

import (
	"fmt"
	"sort"
	"strings"
)

// command is one top-level subcommand. run receives the arguments after the
// command name and returns the process exit code.
type command struct {
	synopsis string
	run      func(args []string) int
}

var commands = map[string]command{
	"server": {"Start an Arca server", runServer},
	"scan":   {"Find leaked secrets in files, git history, staged changes and logs", runScan},
	"file":   {"Encrypt and decrypt SOPS-format files", runFile},

	"status":   {"Print seal and server status", runStatus},
	"operator": {"Initialize, unseal, seal and rotate the server; generate a root token; migrate storage", runOperator},
	"login":    {"Authenticate and store the token", runLogin},
	"token":    {"Create, look up, renew and revoke tokens", runToken},
	"policy":   {"Manage ACL policies", runPolicy},
	"secrets":  {"Enable, tune, move and disable secrets engines", runSecrets},
	"audit":    {"Enable, list and disable audit devices; see who read a secret", runAudit},
	"kv":       {"Read and write KV secrets (v1 and v2)", runKV},
	"read":     {"Read data at any path", runRead},
	"write":    {"Write data to any path", runWrite},
	"delete":   {"Delete data at any path", runDelete},
	"list":     {"List keys under any path", runList},
	"unwrap":   {"Print a wrapped response, using its wrapping token up", runUnwrap},
	"lease":    {"Look up, renew and revoke leases", runLease},
}

// Run executes the command named by args[0] and returns the exit code.
func Run(args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		usage()
		if len(args) == 0 {
			return 1
		}
		return 0
	}
	if args[0] == "version" || args[0] == "-version" || args[0] == "--version" {
		fmt.Fprintln(stdout, "Arca "+Version)
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "arca: unknown command %q; run 'arca -help' for the list\n", args[0])
		return 1
	}
	return cmd.run(args[1:])
}

func usage() {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("Usage: arca <command> [args]\n\nCommands:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "    %-12s %s\n", n, commands[n].synopsis)
	}
	fmt.Fprint(stderr, b.String())
}
