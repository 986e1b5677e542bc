package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/arcasec/arca/internal/mask"
	"github.com/arcasec/arca/internal/sopsfile"
)

// Exit codes shared with sops, so scripts that check them keep working.
const (
	exitFileGeneric      = 1
	exitFileCannotRead   = 2
	exitFileCannotWrite  = 3
	exitFileMACMismatch  = 51
	exitFileInvalidPath  = 91
	exitFileEmpty        = 92
	exitFileNoKey        = 111
	exitFileNoDataKey    = 128
	exitFileNotModified  = 200
	exitFileNoEditor     = 201
	exitFileAlreadyEncr  = 203
	exitFileNotEncrypted = 1
)

const fileUsage = `Usage: arca file <command> [flags] FILE

Commands (as in sops):
    encrypt      encrypt a plaintext file (stdout, or -i in place, or --output)
    decrypt      decrypt to stdout (or -i, --output); --extract '["a"]["b"]'
    edit         decrypt to a private temp file, run $EDITOR, re-encrypt if changed
    exec-env     run a command with the file's top-level values in its environment
    exec-file    run a command with the decrypted file at {} (a private temp file)
    set          set one value: set FILE '["a"]["b"]' JSON-VALUE
    unset        remove one value: unset FILE '["a"]["b"]'
    rotate       re-encrypt everything with a new data key
    updatekeys   re-wrap the data key for the current .sops.yaml creation rule
    filestatus   print {"encrypted": true|false}
    git-diff     textconv driver: print a file decrypted, for git diff

Master keys: age recipients (--age) and transit keys on an Arca, OpenBao or
Vault server (--hc-vault-transit https://HOST:8200/v1/transit/keys/NAME, with
ARCA_TOKEN or VAULT_TOKEN), or the creation rules of .sops.yaml.
`

// fileFlags are the flags the file commands share.
type fileFlags struct {
	fs                                         *flag.FlagSet
	inPlace                                    bool
	output, inputType, outputType, age, config string
	transit                                    string
	addAge, rmAge, addTransit, rmTransit       string
	ignoreMAC                                  bool
	extract                                    string
	rule                                       sopsfile.Rule
	threshold                                  int
	pristine                                   bool
	mask                                       bool
	yes                                        bool
}

func newFileFlags(name string) *fileFlags {
	f := &fileFlags{fs: flag.NewFlagSet("file "+name, flag.ContinueOnError)}
	f.fs.SetOutput(stderr)
	f.fs.BoolVar(&f.inPlace, "in-place", false, "write the result back to the file")
	f.fs.BoolVar(&f.inPlace, "i", false, "alias of --in-place")
	f.fs.StringVar(&f.output, "output", "", "write the result to this file")
	f.fs.StringVar(&f.inputType, "input-type", "", "yaml, json, dotenv or binary (default: from the extension)")
	f.fs.StringVar(&f.outputType, "output-type", "", "yaml, json, dotenv or binary (default: the input type)")
	f.fs.StringVar(&f.age, "age", os.Getenv("SOPS_AGE_RECIPIENTS"), "comma-separated age recipients (default: $SOPS_AGE_RECIPIENTS or .sops.yaml)")
	f.fs.StringVar(&f.transit, "hc-vault-transit", os.Getenv("SOPS_VAULT_URIS"), "comma-separated transit key URIs, e.g. https://arca:8200/v1/transit/keys/app (default: $SOPS_VAULT_URIS or .sops.yaml)")
	f.fs.StringVar(&f.config, "config", os.Getenv("SOPS_CONFIG"), "path to .sops.yaml (default: found from the working directory up)")
	f.fs.BoolVar(&f.ignoreMAC, "ignore-mac", false, "decrypt even if the MAC does not match")
	f.fs.StringVar(&f.extract, "extract", "", `print one value, e.g. '["db"]["password"]'`)
	f.fs.StringVar(&f.rule.UnencryptedSuffix, "unencrypted-suffix", "", "keys ending in this stay clear")
	f.fs.StringVar(&f.rule.EncryptedSuffix, "encrypted-suffix", "", "only keys ending in this are encrypted")
	f.fs.StringVar(&f.rule.UnencryptedRegex, "unencrypted-regex", "", "keys matching this stay clear")
	f.fs.StringVar(&f.rule.EncryptedRegex, "encrypted-regex", "", "only keys matching this are encrypted")
	f.fs.BoolVar(&f.rule.MACOnlyEncrypted, "mac-only-encrypted", false, "compute the MAC over encrypted values only")
	f.fs.IntVar(&f.threshold, "shamir-secret-sharing-threshold", 0, "key groups needed to decrypt")
	f.fs.StringVar(&f.addAge, "add-age", "", "rotate: add these age recipients to the first key group")
	f.fs.StringVar(&f.rmAge, "rm-age", "", "rotate: remove these age recipients from every key group")
	f.fs.StringVar(&f.addTransit, "add-hc-vault-transit", "", "rotate: add these transit key URIs to the first key group")
	f.fs.StringVar(&f.rmTransit, "rm-hc-vault-transit", "", "rotate: remove these transit key URIs from every key group")
	f.fs.BoolVar(&f.pristine, "pristine", false, "exec-env: do not inherit the environment")
	f.fs.BoolVar(&f.mask, "mask", false, "exec-env: mask the values in the command's output (default: when stdout is not a terminal)")
	f.fs.BoolVar(&f.yes, "yes", false, "updatekeys: do not ask")
	f.fs.BoolVar(&f.yes, "y", false, "alias of --yes")
	return f
}

// fileErr is an error with a sops exit code.
func fileErr(code int, format string, args ...any) error {
	return &exitError{code: code, err: fmt.Errorf(format, args...)}
}

func runFile(args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, fileUsage)
		if len(args) == 0 {
			return 1
		}
		return 0
	}
	verb, rest := args[0], args[1:]
	f := newFileFlags(verb)
	return runCommand(func() error {
		if err := f.fs.Parse(rest); err != nil {
			return &exitError{code: 1, err: err}
		}
		if f.fs.NArg() < 1 {
			return usageError("usage: arca file %s [flags] FILE", verb)
		}
		if f.inPlace && f.output != "" {
			return usageError("--in-place and --output cannot be used together")
		}
		path := f.fs.Arg(0)
		switch verb {
		case "encrypt":
			return f.encrypt(path)
		case "decrypt", "git-diff":
			return f.decrypt(path, verb == "git-diff")
		case "edit":
			return f.edit(path)
		case "exec-env":
			return f.execEnv(path, commandArgs(f.fs.Args()[1:]))
		case "exec-file":
			return f.execFile(path, commandArgs(f.fs.Args()[1:]))
		case "set":
			if f.fs.NArg() != 3 {
				return usageError(`usage: arca file set FILE '["key"]["sub"]' JSON-VALUE`)
			}
			return f.set(path, f.fs.Arg(1), f.fs.Arg(2), false)
		case "unset":
			if f.fs.NArg() != 2 {
				return usageError(`usage: arca file unset FILE '["key"]["sub"]'`)
			}
			return f.set(path, f.fs.Arg(1), "", true)
		case "rotate":
			return f.rotate(path)
		case "updatekeys":
			return f.updateKeys(path)
		case "filestatus":
			return f.fileStatus(path)
		}
		return usageError("unknown file command %q; run 'arca file -help'", verb)
	})
}

func (f *fileFlags) formats(path string) (in, out sopsfile.Format, err error) {
	in = sopsfile.FormatFor(path)
	if f.inputType != "" {
		if in, err = sopsfile.ParseFormat(f.inputType); err != nil {
			return "", "", usageError("%v", err)
		}
	}
	out = in
	if f.outputType != "" {
		if out, err = sopsfile.ParseFormat(f.outputType); err != nil {
			return "", "", usageError("%v", err)
		}
	}
	return in, out, nil
}

func readInput(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fileErr(exitFileCannotRead, "reading %s: %v", path, err)
	}
	return data, nil
}

// writeResult writes to --output, back in place, or stdout. Files are
// replaced atomically so a failure never leaves half a file.
func (f *fileFlags) writeResult(path string, data []byte) error {
	target := f.output
	if f.inPlace {
		target = path
	}
	if target == "" {
		_, err := stdout.Write(data)
		return err
	}
	if err := writeFileAtomic(target, data); err != nil {
		return fileErr(exitFileCannotWrite, "writing %s: %v", target, err)
	}
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	mode := os.FileMode(0o600)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".arca-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// creationKeys decides keys and rule for a new file: --age and
// --hc-vault-transit (one key group) win, else the matching .sops.yaml
// creation rule.
func (f *fileFlags) creationKeys(path string) ([][]sopsfile.MasterKey, sopsfile.Rule, int, error) {
	rule, threshold := f.rule, f.threshold
	var groups [][]sopsfile.MasterKey
	if f.age != "" || f.transit != "" {
		keys, err := sopsfile.ParseAgeRecipients(f.age)
		if err != nil {
			return nil, rule, 0, usageError("%v", err)
		}
		transit, err := sopsfile.ParseVaultTransitURIs(f.transit)
		if err != nil {
			return nil, rule, 0, usageError("--hc-vault-transit: %v", err)
		}
		groups = [][]sopsfile.MasterKey{append(keys, transit...)}
	}
	cfgPath := f.config
	if cfgPath == "" {
		wd, _ := os.Getwd()
		if p, err := sopsfile.FindConfig(wd); err == nil {
			cfgPath = p
		}
	}
	if cfgPath != "" {
		cfg, err := sopsfile.LoadConfig(cfgPath)
		if err != nil {
			return nil, rule, 0, fileErr(5, "%v", err)
		}
		cr, err := cfg.RuleFor(path)
		if err != nil && groups == nil {
			return nil, rule, 0, fileErr(5, "%v", err)
		}
		if cr != nil {
			if groups == nil {
				if groups, err = cr.Keys(); err != nil {
					return nil, rule, 0, fileErr(5, "%v", err)
				}
			}
			if rule == (sopsfile.Rule{}) {
				rule = cr.Rule()
			}
			if threshold == 0 {
				threshold = cr.ShamirThreshold
			}
		}
	}
	if len(groups) == 0 {
		return nil, rule, 0, fileErr(exitFileNoKey, "no encryption key: give --age recipients or --hc-vault-transit keys, set SOPS_AGE_RECIPIENTS or SOPS_VAULT_URIS, or add a creation rule to .sops.yaml")
	}
	return groups, rule, threshold, nil
}

func (f *fileFlags) encrypt(path string) error {
	in, out, err := f.formats(path)
	if err != nil {
		return err
	}
	data, err := readInput(path)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(data)) == 0 && in != sopsfile.Binary {
		return fileErr(exitFileEmpty, "%s is empty: there is nothing to encrypt", path)
	}
	if _, err := sopsfile.Load(data, in); err == nil {
		return fileErr(exitFileAlreadyEncr, "%s is already encrypted", path)
	}
	if in != out {
		// Convert first, then encrypt in the output format.
		file := &sopsfile.File{Format: in}
		if file.Tree, err = sopsfile.ParsePlain(data, in); err != nil {
			return err
		}
		if data, err = file.Plaintext(out); err != nil {
			return err
		}
	}
	groups, rule, threshold, err := f.creationKeys(path)
	if err != nil {
		return err
	}
	enc, err := sopsfile.Encrypt(data, sopsfile.EncryptOptions{Format: out, KeyGroups: groups, ShamirThreshold: threshold, Rule: rule})
	if err != nil {
		return fileErr(23, "encrypting %s: %v", path, err)
	}
	return f.writeResult(path, enc)
}

// open loads and decrypts a file, mapping errors to sops's exit codes.
func (f *fileFlags) open(path string) (*sopsfile.File, []byte, error) {
	in, _, err := f.formats(path)
	if err != nil {
		return nil, nil, err
	}
	data, err := readInput(path)
	if err != nil {
		return nil, nil, err
	}
	file, err := sopsfile.Load(data, in)
	if err != nil {
		return nil, nil, fileErr(exitFileNotEncrypted, "%s: %v", path, err)
	}
	sources := sopsfile.KeySources{"hc_vault": sopsfile.VaultTransit{}}
	if ids, err := sopsfile.LoadAgeIdentities(); err != nil {
		// Only a file that needs an age key fails for it.
		sources["age"] = unusableSource{err}
	} else {
		sources["age"] = ids
	}
	key, err := file.DataKey(sources)
	if err != nil {
		return nil, nil, fileErr(exitFileNoDataKey, "%s: %v", path, err)
	}
	if err := file.DecryptTree(key, f.ignoreMAC); err != nil {
		if errors.Is(err, sopsfile.ErrMACMismatch) {
			return nil, nil, fileErr(exitFileMACMismatch, "%s: %v", path, err)
		}
		return nil, nil, fileErr(25, "%s: %v", path, err)
	}
	return file, key, nil
}

// unusableSource is a key source that could not be set up: it gives the
// reason to the entries that needed it.
type unusableSource struct{ err error }

func (u unusableSource) Unwrap(string, *sopsfile.Map) ([]byte, error) { return nil, u.err }

func (f *fileFlags) decrypt(path string, gitDiff bool) error {
	_, out, err := f.formats(path)
	if err != nil {
		return err
	}
	file, _, err := f.open(path)
	if err != nil {
		if gitDiff {
			// Without a key, git diff still shows the encrypted file.
			data, rerr := os.ReadFile(path)
			if rerr == nil {
				_, werr := stdout.Write(data)
				return werr
			}
		}
		return err
	}
	if f.extract != "" {
		keys, err := parseTreePath(f.extract)
		if err != nil {
			return err
		}
		v, err := lookupPath(file.Tree, keys)
		if err != nil {
			return fileErr(exitFileInvalidPath, "%v", err)
		}
		if m, ok := v.(*sopsfile.Map); ok {
			sub := &sopsfile.File{Format: file.Format, Tree: m}
			text, err := sub.Plaintext(out)
			if err != nil {
				return err
			}
			_, err = stdout.Write(text)
			return err
		}
		text, err := sopsfile.ScalarText(v)
		if err != nil {
			return err
		}
		_, err = fmt.Fprint(stdout, text)
		return err
	}
	text, err := file.Plaintext(out)
	if err != nil {
		return err
	}
	return f.writeResult(path, text)
}

// reencrypt writes a decrypted file back with its data key and key groups.
func (f *fileFlags) reencrypt(path string, file *sopsfile.File, key []byte) error {
	enc, err := sopsfile.EncryptTree(file.Tree, file.Metadata.KeyGroups, sopsfile.EncryptOptions{
		Format: file.Format, DataKey: key, ShamirThreshold: file.Metadata.ShamirThreshold, Rule: file.Metadata.Rule,
	})
	if err != nil {
		return fileErr(23, "encrypting %s: %v", path, err)
	}
	if err := writeFileAtomic(path, enc); err != nil {
		return fileErr(exitFileCannotWrite, "writing %s: %v", path, err)
	}
	return nil
}

func (f *fileFlags) edit(path string) error {
	file, key, err := f.open(path)
	if err != nil {
		return err
	}
	plain, err := file.Plaintext("")
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "arca-edit-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir) // the plaintext never outlives the edit
	tmp := filepath.Join(dir, filepath.Base(path))
	if err := os.WriteFile(tmp, plain, 0o600); err != nil {
		return err
	}
	before := sha256.Sum256(plain)
	editor := os.Getenv("SOPS_EDITOR")
	if editor == "" {
		editor = os.Getenv("EDITOR")
	}
	if editor == "" {
		for _, e := range []string{"vim", "nano", "vi"} {
			if _, err := exec.LookPath(e); err == nil {
				editor = e
				break
			}
		}
	}
	if editor == "" {
		return fileErr(exitFileNoEditor, "no editor: set $EDITOR")
	}
	cmd := exec.Command("/bin/sh", "-c", editor+` "$1"`, "editor", tmp)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("the editor failed: %w", err)
	}
	edited, err := os.ReadFile(tmp)
	if err != nil {
		return err
	}
	if sha256.Sum256(edited) == before {
		return fileErr(exitFileNotModified, "file has not changed, exiting")
	}
	tree, err := sopsfile.ParsePlain(edited, file.Format)
	if err != nil {
		return fmt.Errorf("the edited file does not parse (nothing was written): %w", err)
	}
	file.Tree = tree
	return f.reencrypt(path, file, key)
}

func (f *fileFlags) set(path, treePath, value string, unset bool) error {
	keys, err := parseTreePath(treePath)
	if err != nil {
		return err
	}
	file, key, err := f.open(path)
	if err != nil {
		return err
	}
	if unset {
		if err := deletePath(file.Tree, keys); err != nil {
			return fileErr(exitFileInvalidPath, "%v", err)
		}
	} else {
		v, err := sopsfile.ParseJSONValue([]byte(value))
		if err != nil {
			return usageError("the value must be JSON: %v", err)
		}
		if err := setPath(file.Tree, keys, v); err != nil {
			return fileErr(exitFileInvalidPath, "%v", err)
		}
	}
	return f.reencrypt(path, file, key)
}

func (f *fileFlags) rotate(path string) error {
	file, _, err := f.open(path)
	if err != nil {
		return err
	}
	newKey, err := sopsfile.NewDataKey()
	if err != nil {
		return err
	}
	keys, err := sopsfile.MasterKeys(file.Metadata.KeyGroups)
	if err != nil {
		return err
	}
	if keys, err = f.changeKeys(keys); err != nil {
		return err
	}
	groups, err := sopsfile.WrapGroups(newKey, keys, file.Metadata.ShamirThreshold)
	if err != nil {
		return err
	}
	file.Metadata.KeyGroups = groups
	enc, err := sopsfile.EncryptTree(file.Tree, groups, sopsfile.EncryptOptions{
		Format: file.Format, DataKey: newKey, ShamirThreshold: file.Metadata.ShamirThreshold, Rule: file.Metadata.Rule,
	})
	if err != nil {
		return err
	}
	return f.writeResult(path, enc)
}

// changeKeys applies rotate's --add-* and --rm-* flags, as sops does:
// added keys join the first group, removed ones leave every group.
func (f *fileFlags) changeKeys(groups [][]sopsfile.MasterKey) ([][]sopsfile.MasterKey, error) {
	add, err := sopsfile.ParseAgeRecipients(f.addAge)
	if err != nil {
		return nil, usageError("--add-age: %v", err)
	}
	addTransit, err := sopsfile.ParseVaultTransitURIs(f.addTransit)
	if err != nil {
		return nil, usageError("--add-hc-vault-transit: %v", err)
	}
	rm, err := sopsfile.ParseAgeRecipients(f.rmAge)
	if err != nil {
		return nil, usageError("--rm-age: %v", err)
	}
	rmTransit, err := sopsfile.ParseVaultTransitURIs(f.rmTransit)
	if err != nil {
		return nil, usageError("--rm-hc-vault-transit: %v", err)
	}
	if len(groups) > 0 {
		groups[0] = append(groups[0], append(add, addTransit...)...)
	}
	for _, r := range append(rm, rmTransit...) {
		removed := false
		for i, g := range groups {
			groups[i] = slices.DeleteFunc(g, func(k sopsfile.MasterKey) bool {
				if k.Kind() == r.Kind() && k.String() == r.String() {
					removed = true
					return true
				}
				return false
			})
		}
		if !removed {
			return nil, usageError("%s is not a master key of the file; nothing was changed", r)
		}
	}
	return groups, nil
}

func (f *fileFlags) updateKeys(path string) error {
	_, key, err := f.open(path)
	if err != nil {
		return err
	}
	f.age, f.transit = "", ""
	groups, _, threshold, err := f.creationKeys(path)
	if err != nil {
		return err
	}
	wrapped, err := sopsfile.WrapGroups(key, groups, threshold)
	if err != nil {
		return err
	}
	// Only the key groups change: the values, the MAC and lastmodified are
	// written back as they were, as sops does.
	in, _, err := f.formats(path)
	if err != nil {
		return err
	}
	data, err := readInput(path)
	if err != nil {
		return err
	}
	enc, err := sopsfile.Load(data, in)
	if err != nil {
		return fileErr(exitFileNotEncrypted, "%s: %v", path, err)
	}
	enc.Metadata.KeyGroups = wrapped
	enc.Metadata.ShamirThreshold = threshold
	out, err := enc.Render()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(path, out); err != nil {
		return fileErr(exitFileCannotWrite, "writing %s: %v", path, err)
	}
	fmt.Fprintf(stderr, "Updated the keys of %s\n", path)
	return nil
}

func (f *fileFlags) fileStatus(path string) error {
	in, _, err := f.formats(path)
	if err != nil {
		return err
	}
	data, err := readInput(path)
	if err != nil {
		return err
	}
	file, err := sopsfile.Load(data, in)
	encrypted := err == nil && file.Metadata.Version != "" && file.Metadata.MAC != ""
	return json.NewEncoder(stdout).Encode(map[string]bool{"encrypted": encrypted})
}

// commandArgs drops the "--" that separates a command from the file.
func commandArgs(args []string) []string {
	if len(args) > 0 && args[0] == "--" {
		return args[1:]
	}
	return args
}

// topLevelEnv renders the top-level scalars as KEY=value strings.
func topLevelEnv(file *sopsfile.File) ([]string, error) {
	var env []string
	for _, it := range file.Tree.Items {
		if it.Key == "" {
			continue
		}
		switch it.Value.(type) {
		case *sopsfile.Map, []any:
			return nil, fmt.Errorf("cannot use the complex value %q as an environment variable", it.Key)
		}
		if strings.Contains(it.Key, "=") {
			return nil, fmt.Errorf("the key %q contains '=' and cannot be an environment variable", it.Key)
		}
		v, err := sopsfile.ScalarText(it.Value)
		if err != nil {
			return nil, err
		}
		env = append(env, it.Key+"="+v)
	}
	return env, nil
}

func (f *fileFlags) execEnv(path string, command []string) error {
	if len(command) == 0 {
		return usageError("usage: arca file exec-env FILE -- COMMAND")
	}
	file, _, err := f.open(path)
	if err != nil {
		return err
	}
	env, err := topLevelEnv(file)
	if err != nil {
		return err
	}
	var base []string
	if !f.pristine {
		base = os.Environ()
	}
	return runChildMasked([]string{"/bin/sh", "-c", strings.Join(command, " ")}, base, env, f.maskSet(env))
}

// maskSet is the masking of exec-env's output: the file's top-level values
// (env's), unless -mask=false or stdout is a terminal.
func (f *fileFlags) maskSet(env []string) *mask.Set {
	given := false
	f.fs.Visit(func(fl *flag.Flag) { given = given || fl.Name == "mask" })
	if !maskOutput(given, f.mask) {
		return nil
	}
	values := make([]string, 0, len(env))
	for _, kv := range env {
		_, v, _ := strings.Cut(kv, "=")
		values = append(values, v)
	}
	return mask.New(values)
}

func (f *fileFlags) execFile(path string, command []string) error {
	if len(command) == 0 {
		return usageError("usage: arca file exec-file FILE -- 'COMMAND {}'")
	}
	_, out, err := f.formats(path)
	if err != nil {
		return err
	}
	file, _, err := f.open(path)
	if err != nil {
		return err
	}
	plain, err := file.Plaintext(out)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "arca-exec-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "tmp-file"+filepath.Ext(path))
	if err := os.WriteFile(tmp, plain, 0o600); err != nil {
		return err
	}
	line := strings.ReplaceAll(strings.Join(command, " "), "{}", tmp)
	return runChild([]string{"/bin/sh", "-c", line}, os.Environ(), nil)
}

// runChild runs a command through the agent's child supervisor (signals
// forwarded, exit code passed through, 128+N for a signal death) with env
// added to base; a nil base is an empty environment.
func runChild(argv, base, env []string) error {
	return runChildMasked(argv, base, env, nil)
}

// Tree paths in sops's syntax: ["key"][0]["sub"].
var treePathPart = regexp.MustCompile(`^\[(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|(\d+))\]`)

func parseTreePath(s string) ([]any, error) {
	var out []any
	rest := strings.TrimSpace(s)
	if rest == "" {
		return nil, fileErr(exitFileInvalidPath, "empty tree path")
	}
	for rest != "" {
		m := treePathPart.FindStringSubmatch(rest)
		if m == nil {
			return nil, fileErr(exitFileInvalidPath, `invalid tree path %q: use ["key"][0]["sub"]`, s)
		}
		switch {
		case m[3] != "":
			n, _ := strconv.Atoi(m[3])
			out = append(out, n)
		case strings.HasPrefix(m[0], `["`):
			k, err := strconv.Unquote(`"` + m[1] + `"`)
			if err != nil {
				return nil, fileErr(exitFileInvalidPath, "invalid tree path %q", s)
			}
			out = append(out, k)
		default:
			out = append(out, m[2])
		}
		rest = rest[len(m[0]):]
	}
	return out, nil
}

func lookupPath(v any, path []any) (any, error) {
	for _, p := range path {
		switch t := v.(type) {
		case *sopsfile.Map:
			k, ok := p.(string)
			if !ok {
				return nil, fmt.Errorf("expected a key, got index %v", p)
			}
			if v, ok = t.Get(k); !ok {
				return nil, fmt.Errorf("key %q not found", k)
			}
		case []any:
			i, ok := p.(int)
			if !ok || i >= len(t) {
				return nil, fmt.Errorf("index %v out of range", p)
			}
			v = t[i]
		default:
			return nil, fmt.Errorf("cannot descend into a scalar at %v", p)
		}
	}
	return v, nil
}

func setPath(root *sopsfile.Map, path []any, value any) error {
	parent, err := lookupPath(root, path[:len(path)-1])
	if err != nil {
		return err
	}
	switch t := parent.(type) {
	case *sopsfile.Map:
		k, ok := path[len(path)-1].(string)
		if !ok {
			return errors.New("the last path element must be a key here")
		}
		t.Set(k, value)
		return nil
	case []any:
		i, ok := path[len(path)-1].(int)
		if !ok || i > len(t) {
			return errors.New("list index out of range")
		}
		if i == len(t) {
			return errors.New("appending to a list is not supported")
		}
		t[i] = value
		return nil
	}
	return errors.New("cannot set a value inside a scalar")
}

func deletePath(root *sopsfile.Map, path []any) error {
	parent, err := lookupPath(root, path[:len(path)-1])
	if err != nil {
		return err
	}
	if m, ok := parent.(*sopsfile.Map); ok {
		if k, ok := path[len(path)-1].(string); ok && m.Delete(k) {
			return nil
		}
	}
	return fmt.Errorf("no value at %v", path)
}
