package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/arcasec/arca/internal/policy"
)

var policyCommands = []*command{
	{path: []string{"policy", "list"}, synopsis: "List the ACL policies", noArgs: true, run: policyList},
	{path: []string{"policy", "read"}, synopsis: "Print an ACL policy", args: "NAME", minArgs: 1, maxArgs: 1, run: policyRead},
	{path: []string{"policy", "write"}, synopsis: "Write an ACL policy from a file", args: "NAME FILE", minArgs: 2, maxArgs: 2, run: policyWrite,
		help: "Uploads the policy in FILE (HCL or JSON; - reads stdin) under NAME."},
	{path: []string{"policy", "delete"}, synopsis: "Delete an ACL policy", args: "NAME", minArgs: 1, maxArgs: 1, run: policyDelete},
	{path: []string{"policy", "fmt"}, synopsis: "Format a policy file in place", args: "FILE", minArgs: 1, maxArgs: 1,
		run: func(e *env) error { return policyFmt(e.args) }},
}

func policyList(e *env) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	s, err := c.List(background(), "sys/policies/acl")
	if err != nil {
		return fmt.Errorf("Error listing policies: %w", err)
	}
	if e.format != "table" {
		return e.printList(s)
	}
	keys, _ := s.Data["keys"].([]any)
	for _, k := range keys {
		fmt.Fprintln(stdout, formatValue(k))
	}
	return nil
}

func policyRead(e *env) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	name := e.arg(0)
	s, err := c.Read(background(), "sys/policies/acl/"+name, nil)
	if err != nil {
		return fmt.Errorf("Error reading policy named %s: %w", name, err)
	}
	if s == nil {
		return fmt.Errorf("No policy named: %s", name)
	}
	if e.format != "table" {
		return e.output(s)
	}
	fmt.Fprintln(stdout, formatValue(s.Data["policy"]))
	return nil
}

func policyWrite(e *env) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	name := e.arg(0)
	text, err := readFileOrStdin(e.arg(1))
	if err != nil {
		return err
	}
	if _, err := c.Write(background(), "sys/policies/acl/"+name, map[string]any{"policy": text}); err != nil {
		return fmt.Errorf("Error uploading policy: %w", err)
	}
	fmt.Fprintf(stdout, "Success! Uploaded policy: %s\n", name)
	return nil
}

func policyDelete(e *env) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	name := e.arg(0)
	if _, err := c.Delete(background(), "sys/policies/acl/"+name, nil); err != nil {
		return fmt.Errorf("Error deleting %s: %w", name, err)
	}
	fmt.Fprintf(stdout, "Success! Deleted policy: %s\n", name)
	return nil
}

func readFileOrStdin(name string) (string, error) {
	var b []byte
	var err error
	if name == "-" {
		b, err = io.ReadAll(stdin)
	} else {
		b, err = os.ReadFile(name)
	}
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", name, err)
	}
	return string(b), nil
}

// policyFmt checks a policy file parses and rewrites it canonically
// formatted.
func policyFmt(args []string) error {
	if len(args) != 1 {
		return usageError("usage: arca policy fmt FILE")
	}
	text, err := readFileOrStdin(args[0])
	if err != nil {
		return err
	}
	p, err := policy.Parse("fmt", text)
	if err != nil {
		return fmt.Errorf("Error parsing policy: %w", err)
	}
	out := policy.Format(p)
	if err := os.WriteFile(args[0], []byte(out), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Success! Formatted policy: %s\n", args[0])
	return nil
}
