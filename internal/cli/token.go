package cli

import (
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

var tokenCommands = []*command{
	{path: []string{"token", "create"}, synopsis: "Create a token", noArgs: true, run: tokenCreate, flags: []flagSpec{
		listFlagSpec("policy", "policy for the token (repeatable)"),
		kvFlagSpec("metadata", "key=value metadata (repeatable)"),
		strFlag("ttl", "", "initial TTL, e.g. 1h"),
		strFlag("explicit-max-ttl", "", "hard maximum lifetime"),
		strFlag("period", "", "make a periodic token renewable for this period"),
		intFlag("use-limit", 0, "number of uses (0: unlimited)"),
		boolFlag("orphan", false, "create a token with no parent"),
		boolFlag("no-default-policy", false, "do not attach the default policy"),
		boolFlag("renewable", true, "allow the token to be renewed"),
		strFlag("display-name", "", "name shown in audit logs"),
		strFlag("role", "", "create through this token role"),
		strFlag("id", "", "custom token ID (root or sudo only)"),
		wrapTTLSpec,
	}},
	{path: []string{"token", "lookup"}, synopsis: "Look up a token (by default the one in use)", args: "[TOKEN]", maxArgs: 1, run: tokenLookup,
		flags: []flagSpec{boolFlag("accessor", false, "the argument is an accessor")}},
	{path: []string{"token", "renew"}, synopsis: "Renew a token (by default the one in use)", args: "[TOKEN]", maxArgs: 1, run: tokenRenew,
		flags: []flagSpec{
			strFlag("increment", "", "requested extension, e.g. 1h").withAliases("i"),
			boolFlag("accessor", false, "the argument is an accessor"),
		}},
	{path: []string{"token", "revoke"}, synopsis: "Revoke a token and its children", args: "[TOKEN]", maxArgs: 1, run: tokenRevoke,
		flags: []flagSpec{
			boolFlag("accessor", false, "the argument is an accessor"),
			boolFlag("self", false, "revoke the token in use"),
			strFlag("mode", "", `"orphan" revokes only the token, keeping its children`),
		}},
	{path: []string{"token", "capabilities"}, synopsis: "Print a token's capabilities on a path", args: "[TOKEN] PATH",
		minArgs: 1, maxArgs: 2, run: tokenCapabilities},
}

func tokenCreate(e *env) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	body := map[string]any{"renewable": e.flag("renewable"), "no_parent": e.flag("orphan"), "no_default_policy": e.flag("no-default-policy")}
	for _, f := range []string{"ttl", "explicit-max-ttl", "period", "display-name", "id"} {
		if v := e.str(f); v != "" {
			body[strings.ReplaceAll(f, "-", "_")] = v
		}
	}
	if p := e.list("policy"); len(p) > 0 {
		body["policies"] = p
	}
	if m := e.kv("metadata"); len(m) > 0 {
		body["meta"] = m
	}
	if n := e.num("use-limit"); n > 0 {
		body["num_uses"] = n
	}
	path := "auth/token/create"
	if role := e.str("role"); role != "" {
		path += "/" + role
	} else if e.flag("orphan") {
		path = "auth/token/create-orphan"
	}
	c.SetWrapTTL(e.str("wrap-ttl"))
	s, err := c.Write(background(), path, body)
	if err != nil {
		return fmt.Errorf("Error creating token: %w", err)
	}
	return e.output(s)
}

func tokenLookup(e *env) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	var s *api.Secret
	switch arg := e.arg(0); {
	case e.flag("accessor"):
		s, err = c.Write(background(), "auth/token/lookup-accessor", map[string]any{"accessor": arg})
	case arg == "":
		s, err = c.Read(background(), "auth/token/lookup-self", nil)
	default:
		s, err = c.Write(background(), "auth/token/lookup", map[string]any{"token": arg})
	}
	if err != nil {
		return fmt.Errorf("Error looking up token: %w", err)
	}
	return e.output(s)
}

func tokenRenew(e *env) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	body := map[string]any{}
	if inc := e.str("increment"); inc != "" {
		body["increment"] = inc
	}
	path := "auth/token/renew-self"
	if arg := e.arg(0); arg != "" {
		if e.flag("accessor") {
			path, body["accessor"] = "auth/token/renew-accessor", arg
		} else {
			path, body["token"] = "auth/token/renew", arg
		}
	}
	s, err := c.Write(background(), path, body)
	if err != nil {
		return fmt.Errorf("Error renewing token: %w", err)
	}
	return e.output(s)
}

func tokenRevoke(e *env) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	arg := e.arg(0)
	var path string
	body := map[string]any{}
	switch {
	case e.flag("self"):
		path = "auth/token/revoke-self"
	case arg == "":
		return usageError("token revoke needs a token, -accessor ACCESSOR or -self")
	case e.flag("accessor"):
		path, body["accessor"] = "auth/token/revoke-accessor", arg
	case e.str("mode") == "orphan":
		path, body["token"] = "auth/token/revoke-orphan", arg
	default:
		path, body["token"] = "auth/token/revoke", arg
	}
	if _, err := c.Write(background(), path, body); err != nil {
		return fmt.Errorf("Error revoking token: %w", err)
	}
	fmt.Fprintln(stdout, "Success! Revoked token (if it existed)")
	return nil
}

func tokenCapabilities(e *env) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	var s *api.Secret
	if len(e.args) == 1 {
		s, err = c.Write(background(), "sys/capabilities-self", map[string]any{"paths": []string{e.arg(0)}})
	} else {
		s, err = c.Write(background(), "sys/capabilities", map[string]any{"token": e.arg(0), "paths": []string{e.arg(1)}})
	}
	if err != nil {
		return fmt.Errorf("Error checking capabilities: %w", err)
	}
	caps := s.Data["capabilities"]
	if done, err := printStructured(e.format, caps); done {
		return err
	}
	list, _ := caps.([]any)
	parts := make([]string, len(list))
	for i, p := range list {
		parts[i] = formatValue(p)
	}
	fmt.Fprintln(stdout, strings.Join(parts, ", "))
	return nil
}
