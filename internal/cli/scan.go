package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/arcasec/arca/internal/scan"
)

const scanUsage = `Usage: arca scan <source> [flags] [target]

Sources:
    dir [PATH]     files under PATH (default .), honouring .gitignore
    git [REPO]     lines added in the history of REPO (default .)
    staged [REPO]  staged changes, for a pre-commit hook
    stdin          standard input (CI logs)

Exit codes: 0 no leaks, 1 leaks found (see --exit-code), 2 error.
`

// redactFlag takes --redact, --redact=false or --redact=N (percent).
type redactFlag struct{ percent int }

func (r *redactFlag) String() string   { return strconv.Itoa(r.percent) }
func (r *redactFlag) IsBoolFlag() bool { return true }
func (r *redactFlag) Set(s string) error {
	if b, err := strconv.ParseBool(s); err == nil {
		r.percent = 0
		if b {
			r.percent = 100
		}
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 100 {
		return fmt.Errorf("--redact takes true, false or a percentage from 0 to 100")
	}
	r.percent = n
	return nil
}

func runScan(args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, scanUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	source, rest := args[0], args[1:]
	fs := flag.NewFlagSet("scan "+source, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var configPath, format, reportPath, baseline, ignorePath, logOpts, since string
	fs.StringVar(&configPath, "config", "", "gitleaks-format rules file (default: $GITLEAKS_CONFIG, else the rules in $GITLEAKS_CONFIG_TOML, else .arca-scan.toml or .gitleaks.toml in the target directory, else built-in)")
	fs.StringVar(&configPath, "c", "", "alias of --config")
	fs.StringVar(&format, "report-format", "json", "json, sarif, csv or junit")
	fs.StringVar(&format, "f", "json", "alias of --report-format")
	fs.StringVar(&reportPath, "report-path", "", "write the report here ('-' for stdout)")
	fs.StringVar(&reportPath, "r", "", "alias of --report-path")
	fs.StringVar(&baseline, "baseline-path", "", "an earlier JSON report whose findings are ignored")
	fs.StringVar(&baseline, "b", "", "alias of --baseline-path")
	fs.StringVar(&ignorePath, "gitleaks-ignore-path", ".", "file of ignored fingerprints, or a directory holding .gitleaksignore or .arcaignore (the target's are read too)")
	fs.StringVar(&ignorePath, "i", ".", "alias of --gitleaks-ignore-path")
	exitCode := fs.Int("exit-code", 1, "exit code when leaks are found")
	redact := &redactFlag{percent: 100}
	fs.Var(redact, "redact", "hide secrets in every output (default true; --redact=false shows them, --redact=N hides N%)")
	noGitignore := fs.Bool("no-gitignore", false, "dir: scan files .gitignore excludes too")
	maxMB := fs.Int("max-target-megabytes", 0, "skip files larger than this (0: no limit)")
	fs.StringVar(&logOpts, "log-opts", "", "git: arguments for git log, e.g. '--since=2024-01-01 main'")
	fs.StringVar(&since, "since-commit", "", "git: only commits after this one (what a pull request adds)")
	archiveDepth := fs.Int("max-archive-depth", 0, "dir: open zip, tar and gzip archives, and archives in them, this many levels deep (0: do not open)")
	verbose := fs.Bool("verbose", false, "print each finding")
	fs.BoolVar(verbose, "v", false, "alias of --verbose")
	fs.Bool("no-banner", true, "accepted for gitleaks compatibility")
	fs.Bool("no-color", true, "accepted for gitleaks compatibility")
	// gitleaks takes flags after the target too: "gitleaks dir . -r out.json".
	positional, err := parseInterspersed(fs, rest)
	if err != nil {
		return 2
	}
	if len(positional) > 1 {
		fmt.Fprintf(stderr, "Error: scan %s takes one target, got %q\n", source, positional)
		return 2
	}
	target := "."
	if len(positional) == 1 {
		target = positional[0]
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()

	cfg, err := scanConfig(configPath, target)
	if err != nil {
		fmt.Fprintln(stderr, "Error: "+oneLine(err.Error()))
		return 2
	}
	det := scan.NewDetector(cfg)
	progress := newProgress()
	var findings []scan.Finding
	switch source {
	case "dir", "files", "directory":
		findings, err = det.ScanDir(ctx, target, scan.DirOptions{NoGitignore: *noGitignore, MaxFileBytes: int64(*maxMB) << 20, Progress: progress.update, MaxArchiveDepth: *archiveDepth})
	case "git":
		findings, err = det.ScanGit(ctx, target, scan.GitOptions{LogOpts: logOpts, SinceCommit: since, Progress: progress.update})
	case "staged", "protect":
		findings, err = det.ScanStaged(ctx, target)
	case "stdin":
		findings, err = det.ScanReader(stdin, "stdin")
	default:
		fmt.Fprintf(stderr, "Error: unknown scan source %q\n%s", source, scanUsage)
		return 2
	}
	progress.done()
	if err != nil {
		fmt.Fprintln(stderr, "Error: "+oneLine(err.Error()))
		return 2
	}

	sup := scan.NewSuppressions()
	if st, err := os.Stat(target); err == nil && st.IsDir() && (source == "dir" || source == "files" || source == "directory") {
		sup.Root = target
	}
	for _, name := range ignoreFiles(ignorePath, target) {
		if err := sup.LoadIgnoreFile(name); err != nil {
			fmt.Fprintln(stderr, "Error: "+oneLine(err.Error()))
			return 2
		}
	}
	if baseline != "" {
		if err := sup.LoadBaseline(baseline); err != nil {
			fmt.Fprintln(stderr, "Error: "+oneLine(err.Error()))
			return 2
		}
	}
	findings = sup.Filter(findings)
	scan.Redact(findings, redact.percent)

	if *verbose {
		for _, f := range findings {
			printFinding(f)
		}
	}
	if reportPath != "" {
		if err := writeScanReport(reportPath, format, findings); err != nil {
			fmt.Fprintln(stderr, "Error: "+oneLine(err.Error()))
			return 2
		}
	}
	fmt.Fprintf(stderr, "scan completed in %s; leaks found: %d\n", time.Since(start).Round(time.Millisecond), len(findings))
	if len(findings) > 0 {
		return *exitCode
	}
	return 0
}

// scanConfig finds the rules in gitleaks's order: --config, else the file
// $GITLEAKS_CONFIG names, else the rules $GITLEAKS_CONFIG_TOML holds, else
// .arca-scan.toml or .gitleaks.toml in the target when it is a directory,
// else the built-in rules.
func scanConfig(path, target string) (*scan.Config, error) {
	if path == "" {
		path = os.Getenv("GITLEAKS_CONFIG")
	}
	if path == "" {
		if text := os.Getenv("GITLEAKS_CONFIG_TOML"); text != "" {
			c, err := scan.ParseConfig(text)
			if err != nil {
				return nil, fmt.Errorf("GITLEAKS_CONFIG_TOML: %w", err)
			}
			return c, nil
		}
		if st, err := os.Stat(target); err == nil && st.IsDir() {
			for _, name := range []string{".arca-scan.toml", ".gitleaks.toml"} {
				if _, err := os.Stat(filepath.Join(target, name)); err == nil {
					path = filepath.Join(target, name)
					break
				}
			}
		}
	}
	if path == "" {
		return scan.DefaultConfig(), nil
	}
	return scan.LoadConfig(path)
}

// ignoreFiles lists the fingerprint files to honour, as gitleaks does: the
// -i path when it is a file, else its .gitleaksignore (and .arcaignore);
// and those at the root of the target. Missing files are skipped later.
func ignoreFiles(ignorePath, target string) []string {
	var out []string
	for _, dir := range []string{ignorePath, target} {
		if st, err := os.Stat(dir); err == nil && !st.IsDir() {
			if dir == ignorePath {
				out = append(out, dir)
			}
			continue
		}
		out = append(out, filepath.Join(dir, ".gitleaksignore"), filepath.Join(dir, ".arcaignore"))
	}
	return out
}

func writeScanReport(path, format string, fs []scan.Finding) error {
	if path == "-" {
		return scan.WriteReport(stdout, format, fs)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("creating the report: %w", err)
	}
	if err := scan.WriteReport(f, format, fs); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func printFinding(f scan.Finding) {
	var b strings.Builder
	fmt.Fprintf(&b, "Finding:     %s\n", strings.TrimSpace(f.Match))
	fmt.Fprintf(&b, "Secret:      %s\n", f.Secret)
	fmt.Fprintf(&b, "RuleID:      %s\n", f.RuleID)
	fmt.Fprintf(&b, "Entropy:     %.6f\n", f.Entropy)
	fmt.Fprintf(&b, "File:        %s\n", f.File)
	fmt.Fprintf(&b, "Line:        %d\n", f.StartLine)
	if f.Commit != "" {
		fmt.Fprintf(&b, "Commit:      %s\nAuthor:      %s\nEmail:       %s\nDate:        %s\n", f.Commit, f.Author, f.Email, f.Date)
	}
	fmt.Fprintf(&b, "Fingerprint: %s\n\n", f.Fingerprint)
	fmt.Fprint(stdout, b.String())
}

// progress prints a one-line counter on stderr while a long scan runs, only
// when stderr is a terminal.
type progress struct {
	mu    sync.Mutex
	tty   bool
	last  time.Time
	shown bool
}

func newProgress() *progress {
	p := &progress{}
	if f, ok := stderr.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) update(files, bytes int64) {
	if !p.tty {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.shown = true
	fmt.Fprintf(stderr, "\rscanning: %d files, %.1f MB", files, float64(bytes)/(1<<20))
}

func (p *progress) done() {
	if p.shown {
		fmt.Fprint(stderr, "\r\033[K")
	}
}
