package cli

import (
	"fmt"
	"sort"
	"strings"
)

var auditCommands = []*command{
	{path: []string{"audit", "list"}, synopsis: "List the enabled audit devices", noArgs: true, run: auditList,
		flags: []flagSpec{boolFlag("detailed", false, "show device options")}},
	{path: []string{"audit", "enable"}, synopsis: "Enable an audit device", args: "TYPE [key=value...]", minArgs: 1, run: auditEnable,
		help: "Enables an audit device of TYPE (file, socket, syslog) with its options as key=value,\n" +
			"e.g. 'arca audit enable file file_path=/var/log/arca/audit.log'.",
		flags: []flagSpec{
			strFlag("path", "", "where to enable the device (default: the device type)"),
			strFlag("description", "", "human-readable description"),
			boolFlag("local", false, "do not replicate the device to other clusters"),
		}},
	{path: []string{"audit", "disable"}, synopsis: "Disable an audit device", args: "PATH", minArgs: 1, maxArgs: 1, run: auditDisable},
	{path: []string{"audit", "who-read"}, synopsis: "Print who read a path (the access report)", args: "PATH", minArgs: 1, maxArgs: 1, run: auditWhoRead},
}

func auditEnable(e *env) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	typ := e.arg(0)
	opts := map[string]string{}
	for _, kv := range e.args[1:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usageError("audit device options are key=value, got %q", kv)
		}
		opts[k] = v
	}
	path := mountPath(e.str("path"))
	if path == "" {
		path = typ
	}
	body := map[string]any{"type": typ, "description": e.str("description"), "options": opts, "local": e.flag("local")}
	if _, err := c.Write(background(), "sys/audit/"+path, body); err != nil {
		return fmt.Errorf("Error enabling audit device: %w", err)
	}
	fmt.Fprintf(stdout, "Success! Enabled the %s audit device at: %s/\n", typ, path)
	return nil
}

func auditDisable(e *env) error {
	c, p, err := e.clientAndPath()
	if err != nil {
		return err
	}
	if _, err := c.Delete(background(), "sys/audit/"+p, nil); err != nil {
		return fmt.Errorf("Error disabling audit device: %w", err)
	}
	fmt.Fprintf(stdout, "Success! Disabled audit device (if it was enabled) at: %s/\n", p)
	return nil
}

func auditList(e *env) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	detailed := e.flag("detailed")
	s, err := c.Read(background(), "sys/audit", nil)
	if err != nil {
		return fmt.Errorf("Error listing audits: %w", err)
	}
	if e.format != "table" {
		return e.output(s)
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
func auditWhoRead(e *env) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	arg := mountPath(e.arg(0))
	if arg == "" {
		return e.usageError()
	}
	path := arg
	if t, err := resolveKV(c, "", arg); err == nil && t.version == 2 && !strings.HasPrefix(t.rest, "data/") {
		path = t.path("data")
	}
	s, err := c.Read(background(), "sys/access-report/"+path, nil)
	if err != nil {
		return fmt.Errorf("Error reading the access report of %s: %w", path, err)
	}
	if e.format != "table" {
		return e.output(s)
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
