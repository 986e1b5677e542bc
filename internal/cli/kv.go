package cli

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/arcasec/arca/api"
)

// kvTarget is a KV path resolved through the mount preflight.
type kvTarget struct {
	mount   string // "secret/"
	rest    string // "app/db"
	version int    // 1 or 2
}

func (t kvTarget) path(kind string) string {
	if t.version == 2 {
		return t.mount + kind + "/" + t.rest
	}
	return t.mount + t.rest
}

func resolveKV(c *api.Client, mountFlag, arg string) (kvTarget, error) {
	full := strings.TrimPrefix(arg, "/")
	if mountFlag != "" {
		full = strings.Trim(mountFlag, "/") + "/" + full
	}
	mi, err := c.Preflight(background(), full)
	if err != nil {
		return kvTarget{}, fmt.Errorf("preflight capability check for %s: %w", full, err)
	}
	if mi.Type != "kv" {
		return kvTarget{}, fmt.Errorf("%s is not a KV mount (it is %q)", mi.Path, mi.Type)
	}
	return kvTarget{mount: mi.Path, rest: strings.TrimPrefix(full, mi.Path), version: mi.Version}, nil
}

func runKV(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "Usage: arca kv put|get|patch|delete|undelete|destroy|list|rollback|metadata [flags] PATH")
		return 1
	}
	sub, rest := args[0], args[1:]
	if sub == "metadata" {
		return runKVMetadata(rest)
	}
	cf := newClientFlags("kv " + sub)
	mount := cf.fs.String("mount", "", "the KV mount; the path is then relative to it")
	var version int
	var versions string
	var cas int
	var wrapTTL *string
	switch sub {
	case "get":
		cf.fs.IntVar(&version, "version", 0, "version to read (default: latest)")
		wrapTTL = cf.wrapTTLFlag()
	case "put", "patch":
		cf.fs.IntVar(&cas, "cas", -1, "check-and-set: the current version, 0 for a new secret")
	case "delete", "undelete", "destroy":
		cf.fs.StringVar(&versions, "versions", "", "comma-separated versions")
	case "rollback":
		cf.fs.IntVar(&version, "version", 0, "the version to roll back to")
	}
	return runCommand(func() error {
		if err := cf.parse(rest); err != nil {
			return err
		}
		if cf.fs.NArg() < 1 {
			return usageError("usage: arca kv %s [flags] PATH", sub)
		}
		c, err := cf.client()
		if err != nil {
			return err
		}
		t, err := resolveKV(c, *mount, cf.fs.Arg(0))
		if err != nil {
			return err
		}
		ctx := background()
		switch sub {
		case "get":
			q := url.Values{}
			if version > 0 {
				q.Set("version", strconv.Itoa(version))
			}
			// Only the read is wrapped, not the lookup of the mount.
			c.SetWrapTTL(*wrapTTL)
			s, err := c.Read(ctx, t.path("data"), q)
			if err != nil {
				return opError("reading", t.path("data"), err)
			}
			if s == nil {
				return &exitError{code: 2, err: fmt.Errorf("No value found at %s", t.path("data"))}
			}
			if s.WrapInfo != nil {
				return cf.output(s)
			}
			return printKVSecret(cf, t, s)
		case "put", "patch":
			data, err := parseKVArgs(cf.fs.Args()[1:])
			if err != nil {
				return err
			}
			if len(data) == 0 {
				return usageError("must supply data")
			}
			if t.version == 1 {
				if sub == "patch" {
					return usageError("kv patch needs a KV v2 mount")
				}
				if _, err := c.Write(ctx, t.path("data"), data); err != nil {
					return opError("writing data to", t.path("data"), err)
				}
				fmt.Fprintf(stdout, "Success! Data written to: %s\n", t.path("data"))
				return nil
			}
			body := map[string]any{"data": data}
			if cas >= 0 {
				body["options"] = map[string]any{"cas": cas}
			}
			var s *api.Secret
			if sub == "put" {
				s, err = c.Write(ctx, t.path("data"), body)
			} else {
				s, err = c.Patch(ctx, t.path("data"), body)
			}
			if err != nil {
				return opError("writing data to", t.path("data"), err)
			}
			return printKVWrite(cf, t, s)
		case "delete", "undelete", "destroy":
			vs, err := parseVersions(versions)
			if err != nil {
				return err
			}
			if t.version == 1 {
				if sub != "delete" {
					return usageError("kv %s needs a KV v2 mount", sub)
				}
				if _, err := c.Delete(ctx, t.path("data"), nil); err != nil {
					return opError("deleting", t.path("data"), err)
				}
			} else if sub == "delete" && len(vs) == 0 {
				if _, err := c.Delete(ctx, t.path("data"), nil); err != nil {
					return opError("deleting", t.path("data"), err)
				}
			} else {
				if len(vs) == 0 {
					return usageError("kv %s needs -versions", sub)
				}
				if _, err := c.Write(ctx, t.path(sub), map[string]any{"versions": vs}); err != nil {
					return opError(sub+"ing", t.path(sub), err)
				}
			}
			fmt.Fprintf(stdout, "Success! Data %sd at: %s\n", strings.TrimSuffix(sub, "e"), t.path("data"))
			return nil
		case "list":
			s, err := c.List(ctx, t.path("metadata"))
			if err != nil {
				return opError("listing", t.path("metadata"), err)
			}
			if s == nil {
				return &exitError{code: 2, err: fmt.Errorf("No value found at %s", t.path("metadata"))}
			}
			return cf.printList(s)
		case "rollback":
			if t.version != 2 || version <= 0 {
				return usageError("kv rollback needs a KV v2 mount and -version=N")
			}
			meta, err := c.Read(ctx, t.path("metadata"), nil)
			if err != nil || meta == nil {
				return opError("reading", t.path("metadata"), orNotFound(err))
			}
			old, err := c.Read(ctx, t.path("data"), url.Values{"version": {strconv.Itoa(version)}})
			if err != nil || old == nil || old.Data["data"] == nil {
				return fmt.Errorf("Error reading version %d of %s: it is deleted, destroyed or absent", version, t.path("data"))
			}
			s, err := c.Write(ctx, t.path("data"), map[string]any{"data": old.Data["data"], "options": map[string]any{"cas": meta.Data["current_version"]}})
			if err != nil {
				return opError("writing data to", t.path("data"), err)
			}
			return printKVWrite(cf, t, s)
		}
		return usageError("unknown kv subcommand %q", sub)
	})
}

func orNotFound(err error) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("no secret there")
}

func parseVersions(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, p := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n <= 0 {
			return nil, usageError("invalid version %q in -versions", p)
		}
		out = append(out, n)
	}
	return out, nil
}

func section(title string) {
	pad := strings.Repeat("=", 4)
	fmt.Fprintf(stdout, "%s %s %s\n", pad, title, pad)
}

// printKVSecret prints a kv get result like the vault CLI.
func printKVSecret(cf *clientFlags, t kvTarget, s *api.Secret) error {
	if t.version == 1 {
		return cf.output(s)
	}
	data, _ := s.Data["data"].(map[string]any)
	meta, _ := s.Data["metadata"].(map[string]any)
	if cf.field != "" {
		v, ok := data[cf.field]
		if !ok {
			return fmt.Errorf("field %q not present in secret", cf.field)
		}
		return printValue(v, cf.format)
	}
	if cf.format != "table" {
		return cf.output(s)
	}
	if data == nil {
		fmt.Fprintln(stderr, "Warning: this version is deleted or destroyed; its metadata follows")
	}
	section("Secret Path")
	fmt.Fprintln(stdout, t.path("data"))
	fmt.Fprintln(stdout)
	section("Metadata")
	table(mapRows(meta))
	if data != nil {
		fmt.Fprintln(stdout)
		section("Data")
		table(mapRows(data))
	}
	return nil
}

func printKVWrite(cf *clientFlags, t kvTarget, s *api.Secret) error {
	if cf.field != "" || cf.format != "table" {
		return cf.output(s)
	}
	section("Secret Path")
	fmt.Fprintln(stdout, t.path("data"))
	fmt.Fprintln(stdout)
	section("Metadata")
	table(mapRows(s.Data))
	return nil
}

func runKVMetadata(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "Usage: arca kv metadata get|put|patch|delete [flags] PATH")
		return 1
	}
	sub, rest := args[0], args[1:]
	cf := newClientFlags("kv metadata " + sub)
	mount := cf.fs.String("mount", "", "the KV mount; the path is then relative to it")
	maxVersions := cf.fs.Int("max-versions", -1, "versions to keep")
	casRequired := cf.fs.String("cas-required", "", "require check-and-set on writes (true/false)")
	dva := cf.fs.String("delete-version-after", "", "delete versions this long after writing")
	custom := kvList{}
	cf.fs.Var(custom, "custom-metadata", "key=value metadata (repeatable)")
	return runCommand(func() error {
		if err := cf.parse(rest); err != nil {
			return err
		}
		if cf.fs.NArg() != 1 {
			return usageError("usage: arca kv metadata %s [flags] PATH", sub)
		}
		c, err := cf.client()
		if err != nil {
			return err
		}
		t, err := resolveKV(c, *mount, cf.fs.Arg(0))
		if err != nil {
			return err
		}
		if t.version != 2 {
			return usageError("kv metadata needs a KV v2 mount")
		}
		ctx := background()
		switch sub {
		case "get":
			s, err := c.Read(ctx, t.path("metadata"), nil)
			if err != nil {
				return opError("reading", t.path("metadata"), err)
			}
			if s == nil {
				return &exitError{code: 2, err: fmt.Errorf("No value found at %s", t.path("metadata"))}
			}
			if cf.format != "table" || cf.field != "" {
				return cf.output(s)
			}
			versions, _ := s.Data["versions"].(map[string]any)
			meta := map[string]any{}
			for k, v := range s.Data {
				if k != "versions" {
					meta[k] = v
				}
			}
			section("Metadata Path")
			fmt.Fprintln(stdout, t.path("metadata"))
			fmt.Fprintln(stdout)
			section("Metadata")
			table(mapRows(meta))
			nums := make([]int, 0, len(versions))
			for k := range versions {
				n, _ := strconv.Atoi(k)
				nums = append(nums, n)
			}
			sort.Ints(nums)
			for _, n := range nums {
				fmt.Fprintln(stdout)
				section(fmt.Sprintf("Version %d", n))
				v, _ := versions[strconv.Itoa(n)].(map[string]any)
				table(mapRows(v))
			}
			return nil
		case "put", "patch":
			body := map[string]any{}
			if *maxVersions >= 0 {
				body["max_versions"] = *maxVersions
			}
			if *casRequired != "" {
				b, err := strconv.ParseBool(*casRequired)
				if err != nil {
					return usageError("-cas-required must be true or false")
				}
				body["cas_required"] = b
			}
			if *dva != "" {
				body["delete_version_after"] = *dva
			}
			if len(custom) > 0 {
				body["custom_metadata"] = map[string]string(custom)
			}
			var err error
			if sub == "put" {
				_, err = c.Write(ctx, t.path("metadata"), body)
			} else {
				_, err = c.Patch(ctx, t.path("metadata"), body)
			}
			if err != nil {
				return opError("writing", t.path("metadata"), err)
			}
			fmt.Fprintf(stdout, "Success! Data written to: %s\n", t.path("metadata"))
			return nil
		case "delete":
			if _, err := c.Delete(ctx, t.path("metadata"), nil); err != nil {
				return opError("deleting", t.path("metadata"), err)
			}
			fmt.Fprintf(stdout, "Success! Data deleted (if it existed) at: %s\n", t.path("metadata"))
			return nil
		}
		return usageError("unknown kv metadata subcommand %q", sub)
	})
}
