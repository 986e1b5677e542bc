package scan

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const ghToken = "ghp_" + "bImbFvyAC99OdJ1LywIwApnicXOEiw0bULBp"

// TestGitHistoryAddedLinesOnly builds a history with the cases that tell
// "added lines" apart from "lines present": a secret in the middle of a
// long file, a move within the file, a rename with an edit, the same blob
// on two branches, and a binary file.
func TestGitHistoryAddedLinesOnly(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	commit := func(msg string) {
		t.Helper()
		git(t, dir, "add", "-A")
		git(t, dir, "commit", "-q", "-m", msg)
	}
	var body []string
	for i := 0; i < 200; i++ {
		body = append(body, fmt.Sprintf("line %d of a long file", i))
	}
	lines := func(extra map[int]string) string {
		var b strings.Builder
		for i, l := range body {
			if e, ok := extra[i]; ok {
				b.WriteString(e + "\n")
			}
			b.WriteString(l + "\n")
		}
		return b.String()
	}

	git(t, dir, "init", "-q", "-b", "main")
	write("app/settings.py", lines(nil))
	commit("start")
	write("app/settings.py", lines(map[int]string{100: `AWS_ACCESS_KEY_ID = "` + awsKey + `"`}))
	commit("add a key in the middle")
	// Moving the line elsewhere in the file adds nothing.
	write("app/settings.py", lines(map[int]string{10: `AWS_ACCESS_KEY_ID = "` + awsKey + `"`}))
	commit("move it up")
	// Rename with an edit: only the edit is new.
	git(t, dir, "mv", "app/settings.py", "app/config.py")
	write("app/config.py", lines(map[int]string{10: `AWS_ACCESS_KEY_ID = "` + awsKey + `"`, 150: `GITHUB_TOKEN = "` + ghToken + `"`}))
	commit("rename and add a token")
	// A binary file with a key inside is not text.
	write("blob.bin", "\x00\x01binary AKIAQYLPMN5HHHFPZAM3 \x00")
	commit("binary")
	// The same file on a branch: one blob, scanned once.
	git(t, dir, "checkout", "-q", "-b", "feature")
	write("deploy/.env", "SLACK_WEBHOOK=https://hooks.slack.com/services/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\n")
	commit("feature env")
	git(t, dir, "checkout", "-q", "main")
	write("deploy/.env", "SLACK_WEBHOOK=https://hooks.slack.com/services/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\n")
	commit("same env on main")

	d := NewDetector(DefaultConfig())
	fs, err := d.ScanGit(context.Background(), dir, GitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Finding{}
	for _, f := range fs {
		got[f.RuleID] = f
		if strings.Contains(f.File, "blob.bin") {
			t.Errorf("a binary file was scanned: %+v", f)
		}
	}
	if len(fs) != 3 {
		t.Fatalf("want 3 findings (AWS key, GitHub token, Slack webhook), got %d: %+v", len(fs), fs)
	}
	aws := got["aws-access-token"]
	if aws.Message != "add a key in the middle" || aws.File != "app/settings.py" || aws.StartLine != 101 {
		t.Errorf("AWS key reported at %s:%d in %q, want app/settings.py:101 in the commit that added it", aws.File, aws.StartLine, aws.Message)
	}
	gh := got["github-pat"]
	if gh.Message != "rename and add a token" || gh.File != "app/config.py" || gh.StartLine != 152 {
		t.Errorf("GitHub token reported at %s:%d in %q", gh.File, gh.StartLine, gh.Message)
	}
	if _, ok := got["slack-webhook-url"]; !ok {
		t.Errorf("no Slack webhook finding: %+v", fs)
	}
	// gitleaks habits in --log-opts do not break the scan.
	fs, err = d.ScanGit(context.Background(), dir, GitOptions{LogOpts: "-p -U0 --full-history main"})
	if err != nil || len(fs) != 3 {
		t.Fatalf("--log-opts with -p on main: %v, %d findings, want the 3 of main", err, len(fs))
	}
}

func TestForAddedRuns(t *testing.T) {
	type run struct {
		text string
		line int
	}
	collect := func(old, new string) []run {
		var out []run
		forAddedRuns([]byte(old), []byte(new), func(raw []byte, line int) { out = append(out, run{string(raw), line}) })
		return out
	}
	cases := []struct {
		old, new string
		want     []run
	}{
		{"", "a\nb\n", []run{{"a\nb\n", 1}}},
		{"a\nb\n", "a\nb\n", nil},
		{"a\nb\nc\n", "a\nX\nb\nc\n", []run{{"X\n", 2}}},
		{"a\nb\nc\n", "a\nb\nc\nd", []run{{"d", 4}}},
		{"a\nb\nc\n", "c\na\nb\n", nil},                 // reordered: nothing added
		{"key=1\n", "key=12\n", []run{{"key=12\n", 1}}}, // an edited line is added whole
		{"a\nb\n", "a\nb\nb\n", []run{{"b\n", 3}}},      // a second copy of a line is new
		{"x\ny\n", "", nil},                             // everything deleted
		{"a\nold\nz\n", "a\nnew1\nnew2\nz\n", []run{{"new1\nnew2\n", 2}}},
	}
	for _, c := range cases {
		got := collect(c.old, c.new)
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("old %q new %q: got %v, want %v", c.old, c.new, got, c.want)
		}
	}
}

// FuzzAddedRuns checks forAddedRuns against its contract on any input:
// each run is whole lines of new at the line number given, and every line
// of new that old does not contain at all is in some run.
func FuzzAddedRuns(f *testing.F) {
	f.Add([]byte("a\nb\nc\n"), []byte("a\nX\nc\n"))
	f.Add([]byte("same"), []byte("same"))
	f.Add([]byte(""), []byte("x\n\ny"))
	f.Add([]byte("ab\ncd"), []byte("ab\ncdX\nab\n"))
	f.Fuzz(func(t *testing.T, old, new []byte) {
		newLines := bytes.SplitAfter(new, []byte("\n"))
		covered := make([]bool, len(newLines))
		forAddedRuns(old, new, func(raw []byte, line int) {
			if line < 1 || line > len(newLines) {
				t.Fatalf("run at line %d of a %d-line file", line, len(newLines))
			}
			for _, l := range bytes.SplitAfter(raw, []byte("\n")) {
				if len(l) == 0 {
					continue
				}
				if line > len(newLines) || !bytes.Equal(newLines[line-1], l) {
					t.Fatalf("run line %d is %q, new has %q", line, l, newLines[min(line, len(newLines))-1])
				}
				covered[line-1] = true
				line++
			}
		})
		oldSet := map[string]bool{}
		for _, l := range bytes.Split(old, []byte("\n")) {
			oldSet[string(l)] = true
		}
		for i, l := range newLines {
			text := string(bytes.TrimSuffix(l, []byte("\n")))
			if len(l) > 0 && !oldSet[text] && !covered[i] {
				t.Fatalf("line %d %q is not in old and was not reported (old %q new %q)", i+1, text, old, new)
			}
		}
	})
}
