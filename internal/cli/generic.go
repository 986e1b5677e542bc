package cli

import (
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"
)

func newTabWriter() *tabwriter.Writer { return tabwriter.NewWriter(stdout, 0, 4, 4, ' ', 0) }

// runRead, runWrite, runDelete and runList are the generic commands: any
// path, raw API semantics.
func runRead(args []string) int {
	cf := newClientFlags("read")
	wrapTTL := cf.wrapTTLFlag()
	return runCommand(func() error {
		if err := cf.parse(args); err != nil {
			return err
		}
		if cf.fs.NArg() < 1 {
			return usageError("usage: arca read PATH [key=value...]")
		}
		c, err := cf.client()
		if err != nil {
			return err
		}
		path := strings.TrimPrefix(cf.fs.Arg(0), "/")
		query := url.Values{}
		data, err := parseKVArgs(cf.fs.Args()[1:])
		if err != nil {
			return err
		}
		for k, v := range data {
			query.Set(k, fmt.Sprint(v))
		}
		c.SetWrapTTL(*wrapTTL)
		s, err := c.Read(background(), path, query)
		if err != nil {
			return opError("reading", path, err)
		}
		if s == nil {
			return &exitError{code: 2, err: fmt.Errorf("No value found at %s", path)}
		}
		return cf.output(s)
	})
}

func runWrite(args []string) int {
	cf := newClientFlags("write")
	wrapTTL := cf.wrapTTLFlag()
	force := cf.fs.Bool("force", false, "allow writing with no data")
	cf.fs.BoolVar(force, "f", false, "alias of -force")
	return runCommand(func() error {
		if err := cf.parse(args); err != nil {
			return err
		}
		if cf.fs.NArg() < 1 {
			return usageError("usage: arca write PATH [key=value...]")
		}
		path := strings.TrimPrefix(cf.fs.Arg(0), "/")
		data, err := parseKVArgs(cf.fs.Args()[1:])
		if err != nil {
			return err
		}
		if len(data) == 0 && !*force {
			return usageError("must supply data or use -force")
		}
		c, err := cf.client()
		if err != nil {
			return err
		}
		c.SetWrapTTL(*wrapTTL)
		s, err := c.Write(background(), path, data)
		if err != nil {
			return opError("writing to", path, err)
		}
		if s == nil {
			fmt.Fprintf(stdout, "Success! Data written to: %s\n", path)
			return nil
		}
		return cf.output(s)
	})
}

func runDelete(args []string) int {
	cf := newClientFlags("delete")
	return runCommand(func() error {
		if err := cf.parse(args); err != nil {
			return err
		}
		if cf.fs.NArg() < 1 {
			return usageError("usage: arca delete PATH")
		}
		c, err := cf.client()
		if err != nil {
			return err
		}
		path := strings.TrimPrefix(cf.fs.Arg(0), "/")
		if _, err := c.Delete(background(), path, nil); err != nil {
			return opError("deleting", path, err)
		}
		fmt.Fprintf(stdout, "Success! Data deleted (if it existed) at: %s\n", path)
		return nil
	})
}

func runList(args []string) int {
	cf := newClientFlags("list")
	return runCommand(func() error {
		if err := cf.parse(args); err != nil {
			return err
		}
		if cf.fs.NArg() != 1 {
			return usageError("usage: arca list PATH")
		}
		c, err := cf.client()
		if err != nil {
			return err
		}
		path := strings.TrimPrefix(cf.fs.Arg(0), "/")
		s, err := c.List(background(), path)
		if err != nil {
			return opError("listing", path, err)
		}
		if s == nil {
			return &exitError{code: 2, err: fmt.Errorf("No value found at %s", path)}
		}
		return cf.printList(s)
	})
}
