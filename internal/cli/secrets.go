package cli

import (
	"fmt"
	"sort"
	"strings"
)

func runSecrets(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "Usage: arca secrets list|enable|disable|tune|move [flags] [args]")
		return 1
	}
	sub, rest := args[0], args[1:]
	cf := newClientFlags("secrets " + sub)
	var path, description, version, defTTL, maxTTL string
	options := kvList{}
	var nonHMACRequest, nonHMACResponse stringList
	detailed := false
	switch sub {
	case "enable", "tune":
		cf.fs.StringVar(&description, "description", "", "human-readable description")
		cf.fs.StringVar(&defTTL, "default-lease-ttl", "", "default lease TTL")
		cf.fs.StringVar(&maxTTL, "max-lease-ttl", "", "maximum lease TTL")
		cf.fs.Var(options, "options", "key=value engine option (repeatable)")
		cf.fs.Var(&nonHMACRequest, "audit-non-hmac-request-keys", "request data key audit devices write in plaintext (repeatable)")
		cf.fs.Var(&nonHMACResponse, "audit-non-hmac-response-keys", "response data key audit devices write in plaintext (repeatable)")
		if sub == "enable" {
			cf.fs.StringVar(&path, "path", "", "mount path (default: the engine type)")
			cf.fs.StringVar(&version, "version", "", "KV version (1 or 2); shorthand for -options=version=N")
		}
	case "list":
		cf.fs.BoolVar(&detailed, "detailed", false, "show mount details")
	}
	return runCommand(func() error {
		c, err := cf.setup(rest)
		if err != nil {
			return err
		}
		switch sub {
		case "list":
			s, err := c.Read(background(), "sys/mounts", nil)
			if err != nil {
				return fmt.Errorf("Error listing secrets engines: %w", err)
			}
			if cf.format != "table" {
				return cf.output(s)
			}
			paths := make([]string, 0, len(s.Data))
			for p := range s.Data {
				paths = append(paths, p)
			}
			sort.Strings(paths)
			rows := [][2]string{}
			for _, p := range paths {
				m, _ := s.Data[p].(map[string]any)
				line := formatValue(m["type"]) + "\t" + formatValue(m["accessor"]) + "\t" + formatValue(m["description"])
				if detailed {
					line += "\t" + formatValue(m["options"]) + "\t" + formatValue(m["uuid"])
				}
				rows = append(rows, [2]string{p, line})
			}
			printColumns([]string{"Path", "Type", "Accessor", "Description"}, rows)
			return nil
		case "enable":
			typ := cf.fs.Arg(0)
			if typ == "" {
				return usageError("usage: arca secrets enable [-path=P] TYPE")
			}
			if path == "" {
				path = typ
			}
			if version != "" {
				options["version"] = version
			}
			config := map[string]any{"default_lease_ttl": defTTL, "max_lease_ttl": maxTTL}
			if len(nonHMACRequest) > 0 {
				config["audit_non_hmac_request_keys"] = []string(nonHMACRequest)
			}
			if len(nonHMACResponse) > 0 {
				config["audit_non_hmac_response_keys"] = []string(nonHMACResponse)
			}
			body := map[string]any{"type": typ, "description": description, "config": config}
			if len(options) > 0 {
				body["options"] = map[string]string(options)
			}
			if _, err := c.Write(background(), "sys/mounts/"+strings.Trim(path, "/"), body); err != nil {
				return fmt.Errorf("Error enabling: %w", err)
			}
			fmt.Fprintf(stdout, "Success! Enabled the %s secrets engine at: %s/\n", typ, strings.Trim(path, "/"))
			return nil
		case "disable":
			p := strings.Trim(cf.fs.Arg(0), "/")
			if p == "" {
				return usageError("usage: arca secrets disable PATH")
			}
			if _, err := c.Delete(background(), "sys/mounts/"+p, nil); err != nil {
				return fmt.Errorf("Error disabling secrets engine at %s/: %w", p, err)
			}
			fmt.Fprintf(stdout, "Success! Disabled the secrets engine (if it existed) at: %s/\n", p)
			return nil
		case "tune":
			p := strings.Trim(cf.fs.Arg(0), "/")
			if p == "" {
				return usageError("usage: arca secrets tune [flags] PATH")
			}
			body := map[string]any{}
			if defTTL != "" {
				body["default_lease_ttl"] = defTTL
			}
			if maxTTL != "" {
				body["max_lease_ttl"] = maxTTL
			}
			if description != "" {
				body["description"] = description
			}
			if len(nonHMACRequest) > 0 {
				body["audit_non_hmac_request_keys"] = []string(nonHMACRequest)
			}
			if len(nonHMACResponse) > 0 {
				body["audit_non_hmac_response_keys"] = []string(nonHMACResponse)
			}
			if len(options) > 0 {
				body["options"] = map[string]string(options)
			}
			if _, err := c.Write(background(), "sys/mounts/"+p+"/tune", body); err != nil {
				return fmt.Errorf("Error tuning secrets engine %s: %w", p, err)
			}
			fmt.Fprintf(stdout, "Success! Tuned the secrets engine at: %s/\n", p)
			return nil
		case "move":
			if cf.fs.NArg() != 2 {
				return usageError("usage: arca secrets move SOURCE DESTINATION")
			}
			from, to := strings.Trim(cf.fs.Arg(0), "/"), strings.Trim(cf.fs.Arg(1), "/")
			if _, err := c.Write(background(), "sys/remount", map[string]any{"from": from, "to": to}); err != nil {
				return fmt.Errorf("Error moving secrets engine %s/ to %s/: %w", from, to, err)
			}
			fmt.Fprintf(stdout, "Success! Finished moving secrets engine %s/ to %s/\n", from, to)
			return nil
		}
		return usageError("unknown secrets subcommand %q", sub)
	})
}

// printColumns prints a header and rows whose second cell holds the
// remaining tab-separated columns.
func printColumns(header []string, rows [][2]string) {
	var b strings.Builder
	b.WriteString(strings.Join(header, "\t") + "\n")
	dashes := make([]string, len(header))
	for i, h := range header {
		dashes[i] = strings.Repeat("-", len(h))
	}
	b.WriteString(strings.Join(dashes, "\t") + "\n")
	for _, r := range rows {
		b.WriteString(r[0] + "\t" + r[1] + "\n")
	}
	tw := newTabWriter()
	fmt.Fprint(tw, b.String())
	tw.Flush()
}
