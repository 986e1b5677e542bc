package scan

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	gitignore "github.com/sabhiram/go-gitignore"
)

// DirOptions configure ScanDir.
type DirOptions struct {
	NoGitignore bool
	// MaxFileBytes skips larger files (0: no limit).
	MaxFileBytes int64
	// Progress, when set, is called with bytes scanned so far.
	Progress func(files, bytes int64)
	// MaxArchiveDepth, when above 0, opens zip, tar and gzip archives and
	// the archives inside them up to this many levels deep.
	MaxArchiveDepth int
}

// ScanDir scans every text file under root, honouring .gitignore files,
// on all CPUs.
func (d *Detector) ScanDir(ctx context.Context, root string, opts DirOptions) ([]Finding, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	paths := make(chan string, 256)
	var walkErr error
	go func() {
		defer close(paths)
		if !st.IsDir() {
			paths <- root
			return
		}
		walkErr = walkFiles(ctx, root, opts.NoGitignore, paths)
	}()

	var mu sync.Mutex
	var out []Finding
	var nFiles, nBytes atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range paths {
				rel := p
				if st.IsDir() {
					if r, err := filepath.Rel(root, p); err == nil {
						rel = filepath.ToSlash(r)
					}
				}
				if opts.MaxArchiveDepth > 0 && archiveKind(p) != "" {
					if fs := d.scanArchiveFile(p, rel, opts.MaxArchiveDepth, opts.MaxFileBytes); len(fs) > 0 {
						mu.Lock()
						out = append(out, fs...)
						mu.Unlock()
					}
					continue
				}
				data, ok := readText(p, opts.MaxFileBytes)
				if !ok {
					continue
				}
				fs := d.scanFile(data, rel)
				if len(fs) > 0 {
					mu.Lock()
					out = append(out, fs...)
					mu.Unlock()
				}
				files, bytes := nFiles.Add(1), nBytes.Add(int64(len(data)))
				if opts.Progress != nil {
					opts.Progress(files, bytes)
				}
			}
		}()
	}
	wg.Wait()
	if walkErr != nil {
		return out, walkErr
	}
	return sortFindings(out), ctx.Err()
}

// walkFiles sends regular files under root, skipping .git and whatever
// the .gitignore files on the way ignore.
func walkFiles(ctx context.Context, root string, noGitignore bool, out chan<- string) error {
	type ignoreAt struct {
		dir string
		gi  *gitignore.GitIgnore
	}
	var stack []ignoreAt
	return filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return err
			}
			return nil // unreadable entries are skipped, as git does
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		for len(stack) > 0 && !strings.HasPrefix(p, stack[len(stack)-1].dir+string(filepath.Separator)) {
			stack = stack[:len(stack)-1]
		}
		name := e.Name()
		if e.IsDir() && name == ".git" {
			return filepath.SkipDir
		}
		if !noGitignore && p != root {
			for _, ig := range stack {
				rel, _ := filepath.Rel(ig.dir, p)
				rel = filepath.ToSlash(rel)
				if e.IsDir() {
					rel += "/"
				}
				if ig.gi.MatchesPath(rel) {
					if e.IsDir() {
						return filepath.SkipDir
					}
					return nil
				}
			}
		}
		if e.IsDir() {
			if !noGitignore {
				if gi, err := gitignore.CompileIgnoreFile(filepath.Join(p, ".gitignore")); err == nil {
					stack = append(stack, ignoreAt{dir: p, gi: gi})
				}
			}
			return nil
		}
		if e.Type().IsRegular() && !scannerFile(name) {
			out <- p
		}
		return nil
	})
}

// scannerFile reports whether p names one of the scanner's own files: a
// gitleaks or Arca rules file, or a list of ignored fingerprints. They are
// never scanned, in any source: a rules file's allowlist may quote the very
// key it allows, and fingerprints look like tokens. gitleaks's default
// config skips its rules files the same way.
func scannerFile(p string) bool {
	switch p[strings.LastIndexAny(p, "/!")+1:] {
	case ".gitleaks.toml", "gitleaks.toml", ".arca-scan.toml", ".gitleaksignore", ".arcaignore":
		return true
	}
	return false
}

// readText reads a file unless it is binary (a NUL in its first 8 KB) or
// over the size limit.
func readText(p string, max int64) ([]byte, bool) {
	if max > 0 {
		if st, err := os.Stat(p); err != nil || st.Size() > max {
			return nil, false
		}
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, false
	}
	head := data
	if len(head) > 8192 {
		head = head[:8192]
	}
	if bytes.IndexByte(head, 0) >= 0 {
		return nil, false
	}
	return data, true
}

// scanFile runs every check that applies to a whole file: the rules,
// base64-decoded values, and the Terraform checks for .tf code, state and
// plans. The scanner's own files are skipped.
func (d *Detector) scanFile(data []byte, rel string) []Finding {
	if scannerFile(rel) {
		return nil
	}
	fs := d.Detect(Fragment{Raw: data, Path: rel})
	fs = append(fs, d.scanDecoded(data, rel)...)
	if isTerraformCode(rel) {
		fs = append(fs, d.scanTerraformCode(data, rel)...)
	} else if isTerraformJSON(rel, data) {
		fs = append(fs, d.scanTerraformJSON(data, rel)...)
	}
	return fs
}

// ScanReader scans everything read from r (stdin, CI logs).
func (d *Detector) ScanReader(r io.Reader, name string) ([]Finding, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	fs := d.Detect(Fragment{Raw: data, Path: name})
	return sortFindings(append(fs, d.scanDecoded(data, name)...)), nil
}

// GitOptions configure ScanGit.
type GitOptions struct {
	LogOpts     string // extra git log arguments, e.g. "--all" or "main..feature"
	SinceCommit string // scan only commits after this one
	// Progress, when set, is called as blobs are read with the number of
	// file versions and bytes so far.
	Progress func(files, bytes int64)
}

// commitMark starts each commit's header in the git log stream.
const commitMark = "\x00arca-commit\x00"

// earliest keeps, of findings with the same fingerprint, the one from the
// earliest commit.
func earliest(fs []Finding) []Finding {
	best := map[string]int{}
	var out []Finding
	for _, f := range fs {
		if i, ok := best[f.Fingerprint]; ok {
			if f.Date < out[i].Date {
				out[i] = f
			}
			continue
		}
		best[f.Fingerprint] = len(out)
		out = append(out, f)
	}
	return out
}

// ScanStaged scans what `git commit` would add: the staged changes.
func (d *Detector) ScanStaged(ctx context.Context, repo string) ([]Finding, error) {
	return d.scanGitCommand(ctx, []string{"-C", repo, "diff", "--cached", "-U0", "--no-color", "--no-ext-diff"}, nil)
}

func (d *Detector) scanGitCommand(ctx context.Context, args []string, input io.Reader) ([]Finding, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Stdin = input
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("running git: %w", err)
	}
	var out []Finding
	seen := map[[32]byte]bool{}
	emit := func(f Fragment) {
		if len(f.Raw) == 0 {
			return
		}
		key := sha256.Sum256(append([]byte(f.Path+"\x00"), f.Raw...))
		if seen[key] {
			return
		}
		seen[key] = true
		out = append(out, d.Detect(f)...)
	}
	parseErr := parseDiff(bufio.NewReaderSize(stdout, 1<<20), emit)
	waitErr := cmd.Wait()
	if waitErr != nil {
		return out, fmt.Errorf("git %s failed: %s", args[2], strings.TrimSpace(stderr.String()))
	}
	if parseErr != nil {
		return out, parseErr
	}
	return sortFindings(out), nil
}

// parseDiff reads `git log -p -U0` (or `git diff -U0`) output and emits
// one fragment per hunk of added lines.
func parseDiff(r *bufio.Reader, emit func(Fragment)) error {
	var cur Fragment
	var buf bytes.Buffer
	flush := func() {
		if buf.Len() > 0 {
			f := cur
			f.Raw = append([]byte(nil), buf.Bytes()...)
			emit(f)
			buf.Reset()
		}
	}
	inHunk := false
	for {
		line, err := r.ReadString('\n')
		if len(line) > 0 {
			text := strings.TrimSuffix(line, "\n")
			switch {
			case strings.HasPrefix(text, commitMark):
				flush()
				inHunk = false
				parts := strings.SplitN(strings.TrimPrefix(text, commitMark), "\x00", 5)
				for len(parts) < 5 {
					parts = append(parts, "")
				}
				cur = Fragment{Commit: parts[0], Author: parts[1], Email: parts[2], Date: parts[3], Message: parts[4]}
			case strings.HasPrefix(text, "diff --git "):
				flush()
				inHunk = false
			case strings.HasPrefix(text, "+++ "):
				p := strings.TrimPrefix(text, "+++ ")
				p = strings.TrimPrefix(p, "b/")
				if p == "/dev/null" {
					p = ""
				}
				cur.Path = p
			case strings.HasPrefix(text, "@@ "):
				flush()
				inHunk = true
				cur.StartLine = hunkStart(text)
			case inHunk && strings.HasPrefix(text, "+"):
				buf.WriteString(text[1:])
				buf.WriteByte('\n')
			case inHunk && (strings.HasPrefix(text, "-") || strings.HasPrefix(text, " ") || strings.HasPrefix(text, `\`)):
			default:
				flush()
				inHunk = false
			}
		}
		if err != nil {
			flush()
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// hunkStart reads the new-file start line from "@@ -a,b +c,d @@".
func hunkStart(h string) int {
	i := strings.Index(h, " +")
	if i < 0 {
		return 1
	}
	rest := h[i+2:]
	if j := strings.IndexAny(rest, ", "); j >= 0 {
		rest = rest[:j]
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// sortFindings orders findings by file, commit and position, so reports
// are stable whatever order the workers finished in.
func sortFindings(fs []Finding) []Finding {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Commit != b.Commit {
			return a.Commit < b.Commit
		}
		if a.StartLine != b.StartLine {
			return a.StartLine < b.StartLine
		}
		return a.StartColumn < b.StartColumn
	})
	return fs
}
