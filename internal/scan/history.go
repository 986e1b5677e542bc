package scan

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
)

// History scanning reads what each commit added without asking git for
// patches: `git log --raw` names the blobs each commit changed (cheap: git
// compares trees, not contents), one `git cat-file --batch` process streams
// every blob needed exactly once (a blob read as one commit's new version is
// kept until the later commit that needs it as its old version), and the
// added lines are found here by
// trimming the common head and tail of the two versions and taking the
// lines of the new middle that the old middle does not have. A line that
// only moved is therefore not "added", and a blob that reaches several
// branches is scanned once per path, for the first commit that brought it
// there.

// blobChange is one file a commit added or changed.
type blobChange struct {
	meta   *Fragment // commit fields; shared by the commit's changes
	path   string
	oldSHA string // "" for an added file
	newSHA string
}

const zeroSHA = "0000000000000000000000000000000000000000"

// ScanGit scans the lines added in a repository's history. Each unique
// blob is scanned once, and a secret found in several commits is reported
// once, for the earliest of them.
func (d *Detector) ScanGit(ctx context.Context, repo string, opts GitOptions) ([]Finding, error) {
	args := []string{"-C", repo, "log", "--raw", "-z", "--no-abbrev", "--no-color", "--no-ext-diff", "--full-history", "--reverse",
		"--format=%x00arca-commit%x00%H%x00%an%x00%ae%x00%aI%x00%s%x00"}
	switch {
	case opts.SinceCommit != "":
		args = append(args, opts.SinceCommit+"..HEAD")
	case opts.LogOpts != "":
		args = append(args, logOpts(opts.LogOpts)...)
	default:
		args = append(args, "--all")
	}
	changes, err := gitChanges(ctx, args)
	if err != nil {
		return nil, err
	}
	// Files the allowlist skips (lockfiles, images, vendored code) are not
	// even read.
	kept := changes[:0]
	for _, c := range changes {
		if !d.allowedPath(c.path) {
			kept = append(kept, c)
		}
	}
	changes = kept
	fs, err := d.scanChanges(ctx, repo, changes, opts.Progress)
	if err != nil {
		return nil, err
	}
	return sortFindings(earliest(fs)), nil
}

// logOpts splits --log-opts, dropping the options that would change the
// output Arca reads (gitleaks users pass "-p" or "-U0" out of habit).
func logOpts(s string) []string {
	var out []string
	for _, a := range strings.Fields(s) {
		switch {
		case a == "-p", a == "-u", a == "--patch", a == "--stat", a == "--oneline", a == "--name-only", a == "--name-status",
			strings.HasPrefix(a, "-U"), strings.HasPrefix(a, "--unified"), strings.HasPrefix(a, "--format"),
			strings.HasPrefix(a, "--pretty"), strings.HasPrefix(a, "--color"):
			continue
		}
		out = append(out, a)
	}
	return out
}

// gitChanges runs git log --raw and returns, in commit order, every change
// whose new blob has not been seen at that path before.
func gitChanges(ctx context.Context, args []string) ([]blobChange, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git log failed: %s", strings.TrimSpace(stderr.String()))
	}
	var changes []blobChange
	seen := map[[2]string]bool{} // {path, blob} already scanned
	var meta *Fragment
	fields := bytes.Split(out, []byte{0})
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		// A record starts after the newline git puts between commits.
		f = bytes.TrimLeft(f, "\n")
		if len(f) == 0 {
			continue
		}
		if bytes.HasPrefix(f, []byte("arca-commit")) && i+5 < len(fields) {
			// commitMark is "\x00arca-commit\x00": the split leaves
			// "arca-commit", then the five commit fields.
			meta = &Fragment{Commit: string(fields[i+1]), Author: string(fields[i+2]), Email: string(fields[i+3]),
				Date: string(fields[i+4]), Message: string(fields[i+5])}
			i += 5
			continue
		}
		if f[0] != ':' || meta == nil {
			continue
		}
		// ":oldmode newmode oldsha newsha status", then the path, and for
		// renames and copies a second path.
		parts := strings.Fields(string(f[1:]))
		if len(parts) < 5 || i+1 >= len(fields) {
			continue
		}
		status := parts[4]
		path := string(fields[i+1])
		i++
		if (status[0] == 'R' || status[0] == 'C') && i+1 < len(fields) {
			path = string(fields[i+1])
			i++
		}
		oldSHA, newSHA := parts[2], parts[3]
		// Deletions add nothing; submodules and symlinks hold no text of
		// ours; a blob seen at this path before was scanned then.
		if status[0] == 'D' || parts[1] == "160000" || parts[1] == "120000" || newSHA == zeroSHA || seen[[2]string{path, newSHA}] {
			continue
		}
		if oldSHA == zeroSHA || parts[0] == "160000" || parts[0] == "120000" {
			oldSHA = ""
		}
		seen[[2]string{path, newSHA}] = true
		changes = append(changes, blobChange{meta: meta, path: path, oldSHA: oldSHA, newSHA: newSHA})
	}
	return changes, nil
}

// scanChanges streams the blobs of changes from one cat-file process and
// scans their added lines on a worker per CPU.
func (d *Detector) scanChanges(ctx context.Context, repo string, changes []blobChange, progress func(files, bytes int64)) ([]Finding, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	cmd := exec.CommandContext(ctx, "git", "-C", repo, "cat-file", "--batch")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("running git cat-file: %w", err)
	}
	// uses lists every blob the changes need, in order: old then new.
	// Each blob is asked for once, at its first use, and kept until its
	// last; the writer asks in exactly the order the reader consumes, and
	// the pipe's buffer keeps both sides busy.
	uses := make([]string, 0, 2*len(changes))
	for _, c := range changes {
		if c.oldSHA != "" {
			uses = append(uses, c.oldSHA)
		}
		uses = append(uses, c.newSHA)
	}
	lastUse := make(map[string]int, len(uses))
	for i, sha := range uses {
		lastUse[sha] = i
	}
	writeErr := make(chan error, 1)
	go func() {
		w := bufio.NewWriterSize(stdin, 64<<10)
		asked := make(map[string]bool, len(lastUse))
		var err error
		for _, sha := range uses {
			if asked[sha] {
				continue
			}
			asked[sha] = true
			if _, err = w.WriteString(sha + "\n"); err != nil {
				break
			}
		}
		if err == nil {
			err = w.Flush()
		}
		stdin.Close()
		writeErr <- err
	}()

	type job struct {
		change   *blobChange
		old, new []byte
	}
	jobs := make(chan job, 64)
	var mu sync.Mutex
	var out []Finding
	var wg sync.WaitGroup
	for n := 0; n < runtime.GOMAXPROCS(0); n++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []Finding
			for j := range jobs {
				forAddedRuns(j.old, j.new, func(raw []byte, line int) {
					f := *j.change.meta
					f.Raw, f.Path, f.StartLine = raw, j.change.path, line
					local = append(local, d.detect(f)...)
				})
			}
			mu.Lock()
			out = append(out, local...)
			mu.Unlock()
		}()
	}

	r := bufio.NewReaderSize(stdout, 1<<20)
	kept := map[string][]byte{} // blobs read and needed again later
	use := 0
	next := func() ([]byte, error) {
		sha := uses[use]
		defer func() { use++ }()
		if b, ok := kept[sha]; ok {
			if lastUse[sha] == use {
				delete(kept, sha)
			}
			return b, nil
		}
		b, err := readBlob(r)
		if err == nil && lastUse[sha] > use {
			kept[sha] = b
		}
		return b, err
	}
	var scannedBytes int64
	readErr := func() error {
		defer close(jobs)
		for i := range changes {
			c := &changes[i]
			var old []byte
			if c.oldSHA != "" {
				var err error
				if old, err = next(); err != nil {
					return err
				}
			}
			content, err := next()
			if err != nil {
				return err
			}
			if progress != nil {
				scannedBytes += int64(len(content))
				progress(int64(i+1), scannedBytes)
			}
			if isBinary(content) {
				continue
			}
			select {
			case jobs <- job{change: c, old: old, new: content}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}()
	wg.Wait()
	if readErr != nil {
		cmd.Process.Kill()
	}
	werr := <-writeErr
	waitErr := cmd.Wait()
	switch {
	case readErr != nil:
		return nil, fmt.Errorf("reading blobs from git cat-file: %w (%s)", readErr, strings.TrimSpace(stderr.String()))
	case werr != nil:
		return nil, fmt.Errorf("asking git cat-file for blobs: %w", werr)
	case waitErr != nil:
		return nil, fmt.Errorf("git cat-file failed: %s", strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// readBlob reads one "<sha> <type> <size>\n<content>\n" record.
func readBlob(r *bufio.Reader) ([]byte, error) {
	header, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	f := strings.Fields(header)
	if len(f) == 2 && f[1] == "missing" {
		return nil, fmt.Errorf("blob %s is missing", f[0])
	}
	if len(f) != 3 {
		return nil, fmt.Errorf("unexpected cat-file header %q", strings.TrimSpace(header))
	}
	size, err := strconv.Atoi(f[2])
	if err != nil || size < 0 {
		return nil, fmt.Errorf("unexpected cat-file header %q", strings.TrimSpace(header))
	}
	buf := make([]byte, size+1)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	if buf[size] != '\n' {
		return nil, errors.New("cat-file record not terminated by a newline")
	}
	return buf[:size], nil
}

// isBinary applies git's test: a NUL byte in the first 8000 bytes. git log
// -p shows no lines for such files either.
func isBinary(b []byte) bool {
	return bytes.IndexByte(b[:min(len(b), 8000)], 0) >= 0
}

// forAddedRuns calls fn for each run of consecutive lines of new that old
// does not have, with the run's text (lines ending in "\n") and its first
// line number. The common head and tail are skipped with byte comparisons;
// in the middle, a line counts as added when old's middle has no unused
// copy of it, so lines that only moved are not added.
func forAddedRuns(old, new []byte, fn func(raw []byte, line int)) {
	if len(old) == 0 {
		if len(new) > 0 {
			fn(new, 1)
		}
		return
	}
	// Common head, cut back to a line boundary.
	head := 0
	for head < len(old) && head < len(new) && old[head] == new[head] {
		head++
	}
	if head < len(new) || head < len(old) {
		head = bytes.LastIndexByte(new[:head], '\n') + 1
	}
	// Common tail after the head, cut forward to a line boundary.
	tail := 0
	for tail < len(old)-head && tail < len(new)-head && old[len(old)-1-tail] == new[len(new)-1-tail] {
		tail++
	}
	if tail > 0 {
		// Keep only whole lines in the tail: it must start at a line start
		// in both versions. The tail's bytes are the same in both, so moving
		// past its first newline makes it so.
		newStart, oldStart := len(new)-tail, len(old)-tail
		if (newStart > 0 && new[newStart-1] != '\n') || (oldStart > 0 && old[oldStart-1] != '\n') {
			i := bytes.IndexByte(new[newStart:], '\n')
			if i < 0 {
				tail = 0
			} else {
				tail -= i + 1
			}
		}
	}
	oldMid := old[head : len(old)-tail]
	newMid := new[head : len(new)-tail]
	if len(newMid) == 0 {
		return
	}
	line := 1 + bytes.Count(new[:head], []byte{'\n'})
	if len(oldMid) == 0 {
		fn(newMid, line)
		return
	}
	have := make(map[string]int, bytes.Count(oldMid, []byte{'\n'})+1)
	for rest := oldMid; len(rest) > 0; {
		l := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			l, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		have[string(l)]++
	}
	runStart, runLine := -1, 0
	pos := 0
	for pos < len(newMid) {
		end := len(newMid)
		next := end
		if i := bytes.IndexByte(newMid[pos:], '\n'); i >= 0 {
			end, next = pos+i, pos+i+1
		}
		l := newMid[pos:end]
		if n := have[string(l)]; n > 0 {
			have[string(l)] = n - 1
			if runStart >= 0 {
				fn(newMid[runStart:pos], runLine)
				runStart = -1
			}
		} else if runStart < 0 {
			runStart, runLine = pos, line
		}
		pos = next
		line++
	}
	if runStart >= 0 {
		fn(newMid[runStart:], runLine)
	}
}
