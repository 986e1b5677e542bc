package cli

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/arcasec/arca/api"
)

// stringList is a repeatable flag (-policy=a -policy=b), also taking
// comma-separated values.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*s = append(*s, p)
		}
	}
	return nil
}

// kvList is a repeatable key=value flag.
type kvList map[string]string

func (m kvList) String() string { return "" }
func (m kvList) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("%q is not key=value", v)
	}
	m[k] = val
	return nil
}

func runLogin(args []string) int {
	cf := newClientFlags("login")
	method := cf.fs.String("method", "token", "auth method (token)")
	noStore := cf.fs.Bool("no-store", false, "do not store the token in ~/"+api.TokenFile)
	return runCommand(func() error {
		if err := cf.parse(args); err != nil {
			return err
		}
		if *method != "token" {
			return usageError("auth method %q is not supported yet: use -method=token", *method)
		}
		token := cf.fs.Arg(0)
		if token == "" || token == "-" {
			if token == "" {
				fmt.Fprint(stderr, "Token (will be hidden): ")
			}
			line, _ := bufio.NewReader(stdin).ReadString('\n')
			token = strings.TrimSpace(line)
		}
		if token == "" {
			return usageError("no token given")
		}
		c, err := cf.client()
		if err != nil {
			return err
		}
		c.SetToken(token)
		s, err := c.Read(background(), "auth/token/lookup-self", nil)
		if err != nil {
			return fmt.Errorf("Error looking up token: %w", err)
		}
		if !*noStore {
			if err := api.WriteTokenFile(token); err != nil {
				return fmt.Errorf("storing the token: %w", err)
			}
		}
		if cf.format != "table" {
			return cf.output(s)
		}
		if *noStore {
			fmt.Fprintln(stdout, "Success! The token below is valid; it was not stored (-no-store).")
		} else {
			fmt.Fprintln(stdout, "Success! Logged in: the token below is stored, and the next commands use it.")
		}
		fmt.Fprintln(stdout)
		table([][2]string{
			{"token", token},
			{"token_accessor", formatValue(s.Data["accessor"])},
			{"token_duration", formatValue(s.Data["ttl"]) + "s"},
			{"token_policies", formatValue(s.Data["policies"])},
		})
		return nil
	})
}

func runToken(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "Usage: arca token create|lookup|renew|revoke|capabilities [flags] [args]")
		return 1
	}
	switch args[0] {
	case "create":
		return tokenCreate(args[1:])
	case "lookup":
		return tokenLookup(args[1:])
	case "renew":
		return tokenRenew(args[1:])
	case "revoke":
		return tokenRevoke(args[1:])
	case "capabilities":
		return tokenCapabilities(args[1:])
	}
	fmt.Fprintf(stderr, "Error: unknown token subcommand %q\n", args[0])
	return 1
}

func tokenCreate(args []string) int {
	cf := newClientFlags("token create")
	var policies stringList
	meta := kvList{}
	cf.fs.Var(&policies, "policy", "policy for the token (repeatable)")
	cf.fs.Var(meta, "metadata", "key=value metadata (repeatable)")
	ttl := cf.fs.String("ttl", "", "initial TTL, e.g. 1h")
	explicitMax := cf.fs.String("explicit-max-ttl", "", "hard maximum lifetime")
	period := cf.fs.String("period", "", "make a periodic token renewable for this period")
	numUses := cf.fs.Int("use-limit", 0, "number of uses (0: unlimited)")
	orphan := cf.fs.Bool("orphan", false, "create a token with no parent")
	noDefault := cf.fs.Bool("no-default-policy", false, "do not attach the default policy")
	renewable := cf.fs.Bool("renewable", true, "allow the token to be renewed")
	displayName := cf.fs.String("display-name", "", "name shown in audit logs")
	role := cf.fs.String("role", "", "create through this token role")
	id := cf.fs.String("id", "", "custom token ID (root or sudo only)")
	wrapTTL := cf.wrapTTLFlag()
	return runCommand(func() error {
		c, err := cf.setup(args)
		if err != nil {
			return err
		}
		body := map[string]any{"renewable": *renewable, "no_parent": *orphan, "no_default_policy": *noDefault}
		set := func(k, v string) {
			if v != "" {
				body[k] = v
			}
		}
		set("ttl", *ttl)
		set("explicit_max_ttl", *explicitMax)
		set("period", *period)
		set("display_name", *displayName)
		set("id", *id)
		if len(policies) > 0 {
			body["policies"] = []string(policies)
		}
		if len(meta) > 0 {
			body["meta"] = map[string]string(meta)
		}
		if *numUses > 0 {
			body["num_uses"] = *numUses
		}
		path := "auth/token/create"
		if *role != "" {
			path += "/" + *role
		} else if *orphan {
			path = "auth/token/create-orphan"
		}
		c.SetWrapTTL(*wrapTTL)
		s, err := c.Write(background(), path, body)
		if err != nil {
			return fmt.Errorf("Error creating token: %w", err)
		}
		return cf.output(s)
	})
}

func tokenLookup(args []string) int {
	cf := newClientFlags("token lookup")
	accessor := cf.fs.Bool("accessor", false, "the argument is an accessor")
	return runCommand(func() error {
		c, err := cf.setup(args)
		if err != nil {
			return err
		}
		var s *api.Secret
		switch arg := cf.fs.Arg(0); {
		case *accessor:
			s, err = c.Write(background(), "auth/token/lookup-accessor", map[string]any{"accessor": arg})
		case arg == "":
			s, err = c.Read(background(), "auth/token/lookup-self", nil)
		default:
			s, err = c.Write(background(), "auth/token/lookup", map[string]any{"token": arg})
		}
		if err != nil {
			return fmt.Errorf("Error looking up token: %w", err)
		}
		return cf.output(s)
	})
}

func tokenRenew(args []string) int {
	cf := newClientFlags("token renew")
	increment := cf.fs.String("increment", "", "requested extension, e.g. 1h")
	cf.fs.StringVar(increment, "i", "", "alias of -increment")
	accessor := cf.fs.Bool("accessor", false, "the argument is an accessor")
	return runCommand(func() error {
		c, err := cf.setup(args)
		if err != nil {
			return err
		}
		body := map[string]any{}
		if *increment != "" {
			body["increment"] = *increment
		}
		path := "auth/token/renew-self"
		if arg := cf.fs.Arg(0); arg != "" {
			if *accessor {
				path, body["accessor"] = "auth/token/renew-accessor", arg
			} else {
				path, body["token"] = "auth/token/renew", arg
			}
		}
		s, err := c.Write(background(), path, body)
		if err != nil {
			return fmt.Errorf("Error renewing token: %w", err)
		}
		return cf.output(s)
	})
}

func tokenRevoke(args []string) int {
	cf := newClientFlags("token revoke")
	accessor := cf.fs.Bool("accessor", false, "the argument is an accessor")
	self := cf.fs.Bool("self", false, "revoke the token in use")
	mode := cf.fs.String("mode", "", "\"orphan\" revokes only the token, keeping its children")
	return runCommand(func() error {
		c, err := cf.setup(args)
		if err != nil {
			return err
		}
		arg := cf.fs.Arg(0)
		var path string
		body := map[string]any{}
		switch {
		case *self:
			path = "auth/token/revoke-self"
		case arg == "":
			return usageError("token revoke needs a token, -accessor ACCESSOR or -self")
		case *accessor:
			path, body["accessor"] = "auth/token/revoke-accessor", arg
		case *mode == "orphan":
			path, body["token"] = "auth/token/revoke-orphan", arg
		default:
			path, body["token"] = "auth/token/revoke", arg
		}
		if _, err := c.Write(background(), path, body); err != nil {
			return fmt.Errorf("Error revoking token: %w", err)
		}
		fmt.Fprintln(stdout, "Success! Revoked token (if it existed)")
		return nil
	})
}

func tokenCapabilities(args []string) int {
	cf := newClientFlags("token capabilities")
	return runCommand(func() error {
		c, err := cf.setup(args)
		if err != nil {
			return err
		}
		var s *api.Secret
		switch cf.fs.NArg() {
		case 1:
			s, err = c.Write(background(), "sys/capabilities-self", map[string]any{"paths": []string{cf.fs.Arg(0)}})
		case 2:
			s, err = c.Write(background(), "sys/capabilities", map[string]any{"token": cf.fs.Arg(0), "paths": []string{cf.fs.Arg(1)}})
		default:
			return usageError("usage: arca token capabilities [TOKEN] PATH")
		}
		if err != nil {
			return fmt.Errorf("Error checking capabilities: %w", err)
		}
		caps := s.Data["capabilities"]
		switch cf.format {
		case "json":
			return printJSON(caps)
		case "yaml":
			return printYAML(caps)
		}
		list, _ := caps.([]any)
		parts := make([]string, len(list))
		for i, p := range list {
			parts[i] = formatValue(p)
		}
		fmt.Fprintln(stdout, strings.Join(parts, ", "))
		return nil
	})
}
