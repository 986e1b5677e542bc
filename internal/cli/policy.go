package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/arcasec/arca/internal/policy"
)

func runPolicy(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "Usage: arca policy list|read|write|delete|fmt [flags] [args]")
		return 1
	}
	sub, rest := args[0], args[1:]
	cf := newClientFlags("policy " + sub)
	return runCommand(func() error {
		if err := cf.parse(rest); err != nil {
			return err
		}
		if sub == "fmt" {
			return policyFmt(cf.fs.Args())
		}
		c, err := cf.client()
		if err != nil {
			return err
		}
		name := cf.fs.Arg(0)
		needName := func() error {
			if name == "" {
				return usageError("policy %s needs a policy name", sub)
			}
			return nil
		}
		switch sub {
		case "list":
			s, err := c.List(background(), "sys/policies/acl")
			if err != nil {
				return fmt.Errorf("Error listing policies: %w", err)
			}
			if cf.format != "table" {
				return cf.printList(s)
			}
			keys, _ := s.Data["keys"].([]any)
			for _, k := range keys {
				fmt.Fprintln(stdout, formatValue(k))
			}
			return nil
		case "read":
			if err := needName(); err != nil {
				return err
			}
			s, err := c.Read(background(), "sys/policies/acl/"+name, nil)
			if err != nil {
				return fmt.Errorf("Error reading policy named %s: %w", name, err)
			}
			if s == nil {
				return fmt.Errorf("No policy named: %s", name)
			}
			if cf.format != "table" {
				return cf.output(s)
			}
			fmt.Fprintln(stdout, formatValue(s.Data["policy"]))
			return nil
		case "write":
			if err := needName(); err != nil {
				return err
			}
			if cf.fs.NArg() < 2 {
				return usageError("usage: arca policy write NAME FILE (or - for stdin)")
			}
			text, err := readFileOrStdin(cf.fs.Arg(1))
			if err != nil {
				return err
			}
			if _, err := c.Write(background(), "sys/policies/acl/"+name, map[string]any{"policy": text}); err != nil {
				return fmt.Errorf("Error uploading policy: %w", err)
			}
			fmt.Fprintf(stdout, "Success! Uploaded policy: %s\n", name)
			return nil
		case "delete":
			if err := needName(); err != nil {
				return err
			}
			if _, err := c.Delete(background(), "sys/policies/acl/"+name, nil); err != nil {
				return fmt.Errorf("Error deleting %s: %w", name, err)
			}
			fmt.Fprintf(stdout, "Success! Deleted policy: %s\n", name)
			return nil
		}
		return usageError("unknown policy subcommand %q", sub)
	})
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
