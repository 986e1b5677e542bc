package cli

import (
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"
)

func newTabWriter() *tabwriter.Writer { return tabwriter.NewWriter(stdout, 0, 4, 4, ' ', 0) }

// The generic commands: any path, raw API semantics.
var genericCommands = []*command{
	{path: []string{"read"}, synopsis: "Read data at any path", args: "PATH [key=value...]", minArgs: 1,
		help:  "Reads the data at PATH; key=value pairs become query parameters.",
		flags: []flagSpec{wrapTTLSpec}, run: runRead},
	{path: []string{"write"}, synopsis: "Write data to any path", args: "PATH [key=value...]", minArgs: 1,
		help: "Writes key=value pairs to PATH. A value may be @file (the file's contents) or - (stdin);\n" +
			"a lone - reads a JSON object from stdin.",
		flags: []flagSpec{wrapTTLSpec, boolFlag("force", false, "allow writing with no data").withAliases("f")}, run: runWrite},
	{path: []string{"delete"}, synopsis: "Delete data at any path", args: "PATH", minArgs: 1, run: runDelete},
	{path: []string{"list"}, synopsis: "List keys under any path", args: "PATH", minArgs: 1, maxArgs: 1, run: runList},
	{path: []string{"unwrap"}, synopsis: "Print a wrapped response, using its wrapping token up", args: "[TOKEN]", maxArgs: 1,
		help: "Prints the response a wrapping token holds, using the token up. Without an argument the\n" +
			"command's token is the wrapping token, as with `VAULT_TOKEN=<wrapping token> vault unwrap`.",
		run: runUnwrap},
	{path: []string{"status"}, synopsis: "Print seal and server status", noArgs: true, run: runStatus},
}

// notFound is the exit-2 error of a read that found nothing.
func notFound(path string) error {
	return &exitError{code: 2, err: fmt.Errorf("No value found at %s", path)}
}

func runRead(e *env) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	path := strings.TrimPrefix(e.arg(0), "/")
	query := url.Values{}
	data, err := parseKVArgs(e.args[1:])
	if err != nil {
		return err
	}
	for k, v := range data {
		query.Set(k, fmt.Sprint(v))
	}
	c.SetWrapTTL(e.str("wrap-ttl"))
	s, err := c.Read(background(), path, query)
	if err != nil {
		return opError("reading", path, err)
	}
	if s == nil {
		return notFound(path)
	}
	return e.output(s)
}

func runWrite(e *env) error {
	path := strings.TrimPrefix(e.arg(0), "/")
	data, err := parseKVArgs(e.args[1:])
	if err != nil {
		return err
	}
	if len(data) == 0 && !e.flag("force") {
		return usageError("must supply data or use -force")
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	c.SetWrapTTL(e.str("wrap-ttl"))
	s, err := c.Write(background(), path, data)
	if err != nil {
		return opError("writing to", path, err)
	}
	if s == nil {
		fmt.Fprintf(stdout, "Success! Data written to: %s\n", path)
		return nil
	}
	return e.output(s)
}

func runDelete(e *env) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	path := strings.TrimPrefix(e.arg(0), "/")
	if _, err := c.Delete(background(), path, nil); err != nil {
		return opError("deleting", path, err)
	}
	fmt.Fprintf(stdout, "Success! Data deleted (if it existed) at: %s\n", path)
	return nil
}

func runList(e *env) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	path := strings.TrimPrefix(e.arg(0), "/")
	s, err := c.List(background(), path)
	if err != nil {
		return opError("listing", path, err)
	}
	if s == nil {
		return notFound(path)
	}
	return e.printList(s)
}

func runUnwrap(e *env) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	s, err := c.Unwrap(background(), e.arg(0))
	if err != nil {
		return fmt.Errorf("Error unwrapping: %w", err)
	}
	return e.output(s)
}
