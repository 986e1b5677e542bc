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

var kvMountFlag = strFlag("mount", "", "the KV mount; the path is then relative to it")

var kvCommands = []*command{
	{path: []string{"kv", "get"}, synopsis: "Read a secret (a version of it with -version)", args: "PATH",
		flags: []flagSpec{kvMountFlag, intFlag("version", 0, "version to read (default: latest)"), wrapTTLSpec}, run: kvRun(kvGet)},
	{path: []string{"kv", "put"}, synopsis: "Write a secret, replacing its data", args: "PATH key=value...",
		help:  "Writes a new version of the secret at PATH. A value may be @file or - (stdin).",
		flags: []flagSpec{kvMountFlag, kvCASFlag}, run: kvRun(kvPut)},
	{path: []string{"kv", "patch"}, synopsis: "Change some keys of a secret (KV v2)", args: "PATH key=value...",
		flags: []flagSpec{kvMountFlag, kvCASFlag}, run: kvRun(kvPut)},
	{path: []string{"kv", "delete"}, synopsis: "Delete the latest version, or -versions", args: "PATH",
		flags: []flagSpec{kvMountFlag, kvVersionsFlag}, run: kvRun(kvDelete)},
	{path: []string{"kv", "undelete"}, synopsis: "Restore deleted versions (KV v2)", args: "PATH",
		flags: []flagSpec{kvMountFlag, kvVersionsFlag}, run: kvRun(kvDelete)},
	{path: []string{"kv", "destroy"}, synopsis: "Destroy versions for good (KV v2)", args: "PATH",
		flags: []flagSpec{kvMountFlag, kvVersionsFlag}, run: kvRun(kvDelete)},
	{path: []string{"kv", "list"}, synopsis: "List the keys under a path", args: "PATH",
		flags: []flagSpec{kvMountFlag}, run: kvRun(kvListKeys)},
	{path: []string{"kv", "rollback"}, synopsis: "Write an old version again as the newest (KV v2)", args: "PATH",
		flags: []flagSpec{kvMountFlag, intFlag("version", 0, "the version to roll back to")}, run: kvRun(kvRollback)},
	{path: []string{"kv", "metadata", "get"}, synopsis: "Read a secret's metadata and versions", args: "PATH",
		flags: []flagSpec{kvMountFlag}, run: kvMetaRun(kvMetaGet)},
	{path: []string{"kv", "metadata", "put"}, synopsis: "Write a secret's metadata", args: "PATH",
		flags: kvMetaFlags, run: kvMetaRun(kvMetaPut)},
	{path: []string{"kv", "metadata", "patch"}, synopsis: "Change some of a secret's metadata", args: "PATH",
		flags: kvMetaFlags, run: kvMetaRun(kvMetaPut)},
	{path: []string{"kv", "metadata", "delete"}, synopsis: "Delete a secret with all its versions", args: "PATH",
		flags: []flagSpec{kvMountFlag}, run: kvMetaRun(kvMetaDelete)},
}

var (
	kvCASFlag      = intFlag("cas", -1, "check-and-set: the current version, 0 for a new secret")
	kvVersionsFlag = strFlag("versions", "", "comma-separated versions")
	kvMetaFlags    = []flagSpec{kvMountFlag,
		intFlag("max-versions", -1, "versions to keep"),
		strFlag("cas-required", "", "require check-and-set on writes (true/false)"),
		strFlag("delete-version-after", "", "delete versions this long after writing"),
		kvFlagSpec("custom-metadata", "key=value metadata (repeatable)"),
	}
)

// kvRun resolves the KV path (the first argument) through the mount
// preflight, then runs fn.
func kvRun(fn func(e *env, c *api.Client, t kvTarget) error) func(e *env) error {
	return func(e *env) error {
		if len(e.args) < 1 {
			return e.usageError()
		}
		c, err := e.client()
		if err != nil {
			return err
		}
		t, err := resolveKV(c, e.str("mount"), e.arg(0))
		if err != nil {
			return err
		}
		return fn(e, c, t)
	}
}

// kvMetaRun is kvRun for the metadata commands: one argument, a v2 mount.
func kvMetaRun(fn func(e *env, c *api.Client, t kvTarget) error) func(e *env) error {
	return kvRun(func(e *env, c *api.Client, t kvTarget) error {
		if len(e.args) != 1 {
			return e.usageError()
		}
		if t.version != 2 {
			return usageError("kv metadata needs a KV v2 mount")
		}
		return fn(e, c, t)
	})
}

func (e *env) sub() string { return e.cmd.path[len(e.cmd.path)-1] }

func kvGet(e *env, c *api.Client, t kvTarget) error {
	q := url.Values{}
	if v := e.num("version"); v > 0 {
		q.Set("version", strconv.Itoa(v))
	}
	// Only the read is wrapped, not the lookup of the mount.
	c.SetWrapTTL(e.str("wrap-ttl"))
	s, err := c.Read(background(), t.path("data"), q)
	if err != nil {
		return opError("reading", t.path("data"), err)
	}
	if s == nil {
		return notFound(t.path("data"))
	}
	if s.WrapInfo != nil {
		return e.output(s)
	}
	return printKVSecret(e.clientFlags, t, s)
}

func kvPut(e *env, c *api.Client, t kvTarget) error {
	ctx, sub := background(), e.sub()
	data, err := parseKVArgs(e.args[1:])
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
	if cas := e.num("cas"); cas >= 0 {
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
	return printKVWrite(e.clientFlags, t, s)
}

func kvDelete(e *env, c *api.Client, t kvTarget) error {
	ctx, sub := background(), e.sub()
	vs, err := parseVersions(e.str("versions"))
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
}

func kvListKeys(e *env, c *api.Client, t kvTarget) error {
	s, err := c.List(background(), t.path("metadata"))
	if err != nil {
		return opError("listing", t.path("metadata"), err)
	}
	if s == nil {
		return notFound(t.path("metadata"))
	}
	return e.printList(s)
}

func kvRollback(e *env, c *api.Client, t kvTarget) error {
	ctx, version := background(), e.num("version")
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
	return printKVWrite(e.clientFlags, t, s)
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

func kvMetaGet(e *env, c *api.Client, t kvTarget) error {
	s, err := c.Read(background(), t.path("metadata"), nil)
	if err != nil {
		return opError("reading", t.path("metadata"), err)
	}
	if s == nil {
		return notFound(t.path("metadata"))
	}
	if e.format != "table" || e.field != "" {
		return e.output(s)
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
}

func kvMetaPut(e *env, c *api.Client, t kvTarget) error {
	body := map[string]any{}
	if n := e.num("max-versions"); n >= 0 {
		body["max_versions"] = n
	}
	if v := e.str("cas-required"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return usageError("-cas-required must be true or false")
		}
		body["cas_required"] = b
	}
	if v := e.str("delete-version-after"); v != "" {
		body["delete_version_after"] = v
	}
	if custom := e.kv("custom-metadata"); len(custom) > 0 {
		body["custom_metadata"] = custom
	}
	var err error
	if e.sub() == "put" {
		_, err = c.Write(background(), t.path("metadata"), body)
	} else {
		_, err = c.Patch(background(), t.path("metadata"), body)
	}
	if err != nil {
		return opError("writing", t.path("metadata"), err)
	}
	fmt.Fprintf(stdout, "Success! Data written to: %s\n", t.path("metadata"))
	return nil
}

func kvMetaDelete(e *env, c *api.Client, t kvTarget) error {
	if _, err := c.Delete(background(), t.path("metadata"), nil); err != nil {
		return opError("deleting", t.path("metadata"), err)
	}
	fmt.Fprintf(stdout, "Success! Data deleted (if it existed) at: %s\n", t.path("metadata"))
	return nil
}
