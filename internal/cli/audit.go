package cli

import (
	"fmt"
	"sort"
	"strings"

	"github.com/arcasec/arca/api"
)

func runAudit(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "Usage: arca audit list|enable|disable|who-read [flags] [args]")
		return 1
	}
	sub, rest := args[0], args[1:]
	cf := newClientFlags("audit " + sub)
	var path, description string
	var local, detailed bool
	switch sub {
	case "enable":
		cf.fs.StringVar(&path, "path", "", "where to enable the device (default: the device type)")
		cf.fs.StringVar(&description, "description", "", "human-readable description")
		cf.fs.BoolVar(&local, "local", false, "do not replicate the device to other clusters")
	case "list":
		cf.fs.BoolVar(&detailed, "detailed", false, "show device options")
	}
	return runCommand(func() error {
		c, err := cf.setup(rest)
		if err != nil {
			return err
		}
		switch sub {
		case "list":
			return auditList(cf, c, detailed)
		case "enable":
			typ := cf.fs.Arg(0)
			if typ == "" {
				return usageError("usage: arca audit enable [-path=P] TYPE [key=value...]")
			}
			opts := map[string]string{}
			for _, kv := range cf.fs.Args()[1:] {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return usageError("audit device options are key=value, got %q", kv)
				}
				opts[k] = v
			}
			if path == "" {
				path = typ
			}
			path = strings.Trim(path, "/")
			body := map[string]any{"type": typ, "description": description, "options": opts, "local": local}
			if _, err := c.Write(background(), "sys/audit/"+path, body); err != nil {
				return fmt.Errorf("Error enabling audit device: %w", err)
			}
			fmt.Fprintf(stdout, "Success! Enabled the %s audit device at: %s/\n", typ, path)
			return nil
		case "disable":
			p := strings.Trim(cf.fs.Arg(0), "/")
			if p == "" {
				return usageError("usage: arca audit disable PATH")
			}
			if _, err := c.Delete(background(), "sys/audit/"+p, nil); err != nil {
				return fmt.Errorf("Error disabling audit device: %w", err)
			}
			fmt.Fprintf(stdout, "Success! Disabled audit device (if it was enabled) at: %s/\n", p)
			return nil
		case "who-read":
			return auditWhoRead(cf, c)
		}
		return usageError("unknown audit subcommand %q", sub)
	})
}

func auditList(cf *clientFlags, c *api.Client, detailed bool) error {
	s, err := c.Read(background(), "sys/audit", nil)
	if err != nil {
		return fmt.Errorf("Error listing audits: %w", err)
	}
	if cf.format != "table" {
		return cf.output(s)
	}
	if s == nil || len(s.Data) == 0 {
		fmt.Fprintln(stdout, "No audit devices are enabled.")
		return nil
	}
	paths := make([]string, 0, len(s.Data))
	for p := range s.Data {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	header := []string{"Path", "Type", "Description"}
	if detailed {
		header = append(header, "Replication", "Options")
	}
	var rows [][2]string
	for _, p := range paths {
		m, _ := s.Data[p].(map[string]any)
		line := formatValue(m["type"]) + "\t" + formatValue(m["description"])
		if detailed {
			repl := "replicated"
			if l, _ := m["local"].(bool); l {
				repl = "local"
			}
			line += "\t" + repl + "\t" + formatValue(m["options"])
		}
		rows = append(rows, [2]string{p, line})
	}
	printColumns(header, rows)
	return nil
}

// auditWhoRead prints the access report of a path. A KV v2 path may be
// given the way `kv get` takes it (secret/app): it is reported under its
// data path (secret/data/app), which is what clients read.
func auditWhoRead(cf *clientFlags, c *api.Client) error {
	arg := strings.Trim(cf.fs.Arg(0), "/")
	if arg == "" {
		return usageError("usage: arca audit who-read PATH")
	}
	path := arg
	if t, err := resolveKV(c, "", arg); err == nil && t.version == 2 && !strings.HasPrefix(t.rest, "data/") {
		path = t.path("data")
	}
	s, err := c.Read(background(), "sys/access-report/"+path, nil)
	if err != nil {
		return fmt.Errorf("Error reading the access report of %s: %w", path, err)
	}
	if cf.format != "table" {
		return cf.output(s)
	}
	if s == nil {
		return fmt.Errorf("no access report for %s", path)
	}
	d := s.Data
	table([][2]string{
		{"Path", formatValue(d["path"])},
		{"Reads", formatValue(d["reads"])},
		{"First read", formatValue(d["first_read"])},
		{"Last read", formatValue(d["last_read"])},
	})
	readers, _ := d["readers"].([]any)
	if len(readers) == 0 {
		fmt.Fprintln(stdout, "\nNo token has read this path since the server began recording.")
		return nil
	}
	fmt.Fprintln(stdout)
	var rows [][2]string
	for _, r := range readers {
		m, _ := r.(map[string]any)
		rows = append(rows, [2]string{formatValue(m["accessor"]), strings.Join([]string{
			formatValue(m["display_name"]), formatValue(m["policies"]), formatValue(m["auth_mount"]),
			formatValue(m["reads"]), formatValue(m["last_read"]), formatValue(m["remote_addresses"]),
		}, "\t")})
	}
	printColumns([]string{"Accessor", "Display Name", "Policies", "Auth Mount", "Reads", "Last Read", "Remote Addresses"}, rows)
	return nil
}
