package scan

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const awsKey = "AKIAQYLPMN5HHHFPZAM2"

func git(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Ada", "GIT_AUTHOR_EMAIL=ada@example.com",
		"GIT_COMMITTER_NAME=Ada", "GIT_COMMITTER_EMAIL=ada@example.com", "GIT_CONFIG_GLOBAL=/dev/null")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

func TestGitHistory(t *testing.T) {
	dir := t.TempDir()
	git(t, dir, "init", "-q", "-b", "main")
	os.WriteFile(filepath.Join(dir, "README.md"), []byte("hello\n"), 0o644)
	git(t, dir, "add", ".")
	git(t, dir, "commit", "-q", "-m", "first")
	// A secret added, then deleted in the next commit: still in history.
	os.WriteFile(filepath.Join(dir, "config.env"), []byte("A=1\nAWS_ACCESS_KEY_ID="+awsKey+"\n"), 0o644)
	git(t, dir, "add", ".")
	git(t, dir, "commit", "-q", "-m", "add config")
	os.WriteFile(filepath.Join(dir, "config.env"), []byte("A=1\n"), 0o644)
	git(t, dir, "commit", "-q", "-am", "remove the key")
	// The same hunk again in another file is reported once per file.
	d := NewDetector(DefaultConfig())
	fs, err := d.ScanGit(context.Background(), dir, GitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 {
		t.Fatalf("findings = %+v", fs)
	}
	f := fs[0]
	if f.File != "config.env" || f.StartLine != 2 || f.Message != "add config" || f.Author != "Ada" || f.Email != "ada@example.com" || len(f.Commit) != 40 || f.Date == "" {
		t.Fatalf("finding lacks commit metadata: %+v", f)
	}
	// --since-commit HEAD~1 sees only the deletion: nothing added.
	fs, err = d.ScanGit(context.Background(), dir, GitOptions{SinceCommit: "HEAD~1"})
	if err != nil || len(fs) != 0 {
		t.Fatalf("since HEAD~1: %v %+v", err, fs)
	}
	if _, err := d.ScanGit(context.Background(), t.TempDir(), GitOptions{}); err == nil {
		t.Fatal("scanning a non-repository succeeded")
	}
}

func TestStaged(t *testing.T) {
	dir := t.TempDir()
	git(t, dir, "init", "-q")
	os.WriteFile(filepath.Join(dir, "a.py"), []byte("x = 1\n"), 0o644)
	git(t, dir, "add", ".")
	git(t, dir, "commit", "-q", "-m", "x")
	os.WriteFile(filepath.Join(dir, "a.py"), []byte("x = 1\nkey = '"+awsKey+"'\n"), 0o644)
	d := NewDetector(DefaultConfig())
	if fs, _ := d.ScanStaged(context.Background(), dir); len(fs) != 0 {
		t.Fatalf("unstaged change reported: %+v", fs)
	}
	git(t, dir, "add", "a.py")
	fs, err := d.ScanStaged(context.Background(), dir)
	if err != nil || len(fs) != 1 || fs[0].StartLine != 2 {
		t.Fatalf("staged: %v %+v", err, fs)
	}
}

func TestDirHonoursGitignore(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "build"), 0o755)
	os.MkdirAll(filepath.Join(dir, "src"), 0o755)
	os.WriteFile(filepath.Join(dir, ".gitignore"), []byte("build/\n*.log\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "build", "out.txt"), []byte(awsKey+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "debug.log"), []byte(awsKey+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "src", "app.go"), []byte(`const k = "`+awsKey+`"`+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "src", "blob.bin"), append([]byte{0, 1, 2}, []byte(awsKey)...), 0o644)
	d := NewDetector(DefaultConfig())
	fs, err := d.ScanDir(context.Background(), dir, DirOptions{})
	if err != nil || len(fs) != 1 || fs[0].File != "src/app.go" {
		t.Fatalf("with .gitignore: %v %+v", err, fs)
	}
	fs, _ = d.ScanDir(context.Background(), dir, DirOptions{NoGitignore: true})
	if len(fs) != 3 {
		t.Fatalf("--no-gitignore: %d findings, want 3 (binary skipped)", len(fs))
	}
}

func TestKubernetesSecretDecoded(t *testing.T) {
	// The generic rule sees the decoded value of a Secret's data entry.
	doc := "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  aws: " + b64(awsKey) + "\n"
	fs := NewDetector(DefaultConfig()).scanDecoded([]byte(doc), "secret.yaml")
	if len(fs) == 0 || fs[0].StartLine != 6 {
		t.Fatalf("decoded findings = %+v", fs)
	}
}

func b64(s string) string {
	return strings.TrimSpace(string(mustB64(s)))
}

func TestReports(t *testing.T) {
	fs := detect(t, "x.env", "AWS="+awsKey+"\n")
	Redact(fs, 100)
	if fs[0].Secret != "REDACTED" || strings.Contains(fs[0].Match, awsKey) {
		t.Fatalf("redaction: %+v", fs[0])
	}
	var buf bytes.Buffer
	// JSON with gitleaks's field names.
	WriteReport(&buf, "json", fs)
	var generic []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &generic); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"RuleID", "Description", "File", "StartLine", "EndLine", "StartColumn", "EndColumn", "Match", "Secret", "Entropy", "Commit", "Author", "Email", "Date", "Message", "Tags", "Fingerprint"} {
		if _, ok := generic[0][k]; !ok {
			t.Errorf("JSON report lacks %s", k)
		}
	}
	// SARIF 2.1.0 with rules, locations and partial fingerprints.
	buf.Reset()
	WriteReport(&buf, "sarif", fs)
	var sarif struct {
		Version string
		Runs    []struct {
			Tool struct {
				Driver struct {
					Rules []struct{ ID string }
				}
			}
			Results []struct {
				RuleID    string
				Locations []struct {
					PhysicalLocation struct{ Region struct{ StartLine int } }
				}
				PartialFingerprints map[string]string
			}
		}
	}
	if err := json.Unmarshal(buf.Bytes(), &sarif); err != nil || sarif.Version != "2.1.0" {
		t.Fatalf("sarif: %v %s", err, buf.String())
	}
	r := sarif.Runs[0].Results[0]
	if sarif.Runs[0].Tool.Driver.Rules[0].ID != "aws-access-token" || r.Locations[0].PhysicalLocation.Region.StartLine != 1 || r.PartialFingerprints["arcaFingerprint/v1"] == "" {
		t.Fatalf("sarif content: %+v", sarif)
	}
	if strings.Contains(buf.String(), awsKey) {
		t.Fatal("the SARIF report carries the secret")
	}
	buf.Reset()
	WriteReport(&buf, "csv", fs)
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(rows) != 2 || rows[0][0] != "RuleID" {
		t.Fatalf("csv: %v %v", err, rows)
	}
	buf.Reset()
	WriteReport(&buf, "junit", fs)
	var suite struct {
		Failures int `xml:"failures,attr"`
	}
	if err := xml.Unmarshal(buf.Bytes(), &suite); err != nil || suite.Failures != 1 {
		t.Fatalf("junit: %v %s", err, buf.String())
	}
}

func TestSuppressions(t *testing.T) {
	dir := t.TempDir()
	fs := detect(t, "x.env", "AWS="+awsKey+"\nB=AKIAQYLPMN5HHHFPZAX7\n")
	if len(fs) != 2 {
		t.Fatalf("findings = %d", len(fs))
	}
	ignore := filepath.Join(dir, ".gitleaksignore")
	os.WriteFile(ignore, []byte("# reviewed\n"+fs[0].Fingerprint+"\nx.env:aws-access-token:2\n"), 0o644)
	s := NewSuppressions()
	if err := s.LoadIgnoreFile(ignore); err != nil {
		t.Fatal(err)
	}
	if left := s.Filter(fs); len(left) != 0 {
		t.Fatalf("ignore file (ours and gitleaks's fingerprints): %+v", left)
	}
	baseline := filepath.Join(dir, "baseline.json")
	f, _ := os.Create(baseline)
	WriteReport(f, "json", fs[:1])
	f.Close()
	s = NewSuppressions()
	s.LoadBaseline(baseline)
	if left := s.Filter(fs); len(left) != 1 || left[0].Secret != "AKIAQYLPMN5HHHFPZAX7" {
		t.Fatalf("baseline: %+v", left)
	}
}

func FuzzLoadConfig(f *testing.F) {
	f.Add("[[rules]]\nid = \"x\"\nregex = '''a[0-9]+'''\nkeywords = [\"a\"]\n")
	f.Add("[extend]\nuseDefault = true\ndisabledRules = [\"jwt\"]\n")
	f.Add("[[allowlists]]\npaths = ['''x''']\ncondition = \"AND\"\n")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := ParseConfig(text)
		if err != nil {
			return
		}
		NewDetector(c).Detect(Fragment{Raw: []byte("a123 token = 'x9!kq2mZ0pL' " + awsKey), Path: "f"})
	})
}

func FuzzDetect(f *testing.F) {
	d := NewDetector(DefaultConfig())
	f.Add([]byte("password = \"hunter2hunter2Xy9!\"\n" + awsKey))
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\nabc\n"))
	f.Add([]byte("kind: Secret\ndata:\n  a: QUtJQQ==\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, fd := range d.Detect(Fragment{Raw: raw, Path: "fuzz.txt"}) {
			if fd.StartLine < 1 || fd.StartColumn < 1 || fd.EndLine < fd.StartLine {
				t.Fatalf("bad position: %+v", fd)
			}
		}
		d.scanDecoded(raw, "fuzz.yaml")
	})
}

func mustB64(s string) []byte {
	out := make([]byte, base64Std.EncodedLen(len(s)))
	base64Std.Encode(out, []byte(s))
	return out
}

var base64Std = base64.StdEncoding

// TestKubernetesSecretLayouts covers the manifests Secrets come in: JSON,
// several documents with other kinds between them, List objects, folded
// values and a .dockerconfigjson.
func TestKubernetesSecretLayouts(t *testing.T) {
	d := NewDetector(DefaultConfig())
	dockerCfg := `{"auths":{"registry.example.com":{"auth":"` + b64("deploy:Zq8#vR2!mN5pLx") + `"}}}`
	cases := []struct {
		name, doc string
		rule      string
		line      int
	}{
		{"json manifest", `{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"},
  "data": {"aws": "` + b64(awsKey) + `"}}`, "aws-access-token", 2},
		{"multi-document", "apiVersion: v1\nkind: ConfigMap\ndata:\n  a: b\n---\napiVersion: v1\nkind: Secret\ndata:\n  key: " + b64(awsKey) + "\n", "aws-access-token", 9},
		{"list", "apiVersion: v1\nkind: List\nitems:\n  - apiVersion: v1\n    kind: Secret\n    data:\n      id: " + b64(awsKey) + "\n", "aws-access-token", 7},
		{"key name judged", "kind: Secret\ndata:\n  db-password: " + b64("Xk9mQ2vL7pRtW4ab") + "\n", "generic-api-key", 3},
		{"docker config", "kind: Secret\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: " + b64(dockerCfg) + "\n", "docker-config-auth", 4},
		{"template falls back", "kind: Secret\ndata:\n  aws: " + b64(awsKey) + "\n  x: {{ .Values.x | b64enc }}\n", "aws-access-token", 3},
	}
	for _, c := range cases {
		fs := d.scanDecoded([]byte(c.doc), "secret.yaml")
		found := false
		for _, f := range fs {
			if f.RuleID == c.rule && f.StartLine == c.line {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no %s at line %d in %+v", c.name, c.rule, c.line, fs)
		}
	}
	// A ConfigMap's base64-looking values are not decoded.
	if fs := d.scanDecoded([]byte("kind: ConfigMap\ndata:\n  aws: "+b64(awsKey)+"\n---\nkind: Secret\n"), "cm.yaml"); len(fs) != 0 {
		t.Errorf("ConfigMap data decoded: %+v", fs)
	}
}

// TestArchives scans a zip holding a file and a tar.gz that holds another:
// each finding names its path through the archives, and the depth limit
// stops at the nested archive.
func TestArchives(t *testing.T) {
	dir := t.TempDir()
	var tgz bytes.Buffer
	gz := gzip.NewWriter(&tgz)
	tw := tar.NewWriter(gz)
	inner := []byte("GITHUB_TOKEN=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\n")
	tw.WriteHeader(&tar.Header{Name: "conf/.env", Mode: 0o600, Size: int64(len(inner)), Typeflag: tar.TypeReg})
	tw.Write(inner)
	tw.Close()
	gz.Close()
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	w, _ := zw.Create("app/settings.py")
	w.Write([]byte("AWS_ACCESS_KEY_ID = \"" + awsKey + "\"\n"))
	w, _ = zw.Create("vendor/bundle.tar.gz")
	w.Write(tgz.Bytes())
	zw.Close()
	if err := os.WriteFile(filepath.Join(dir, "release.zip"), zbuf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	d := NewDetector(DefaultConfig())
	scanAt := func(depth int) map[string]bool {
		fs, err := d.ScanDir(context.Background(), dir, DirOptions{MaxArchiveDepth: depth})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, f := range fs {
			got[f.RuleID+" "+f.File] = true
		}
		return got
	}
	if got := scanAt(0); len(got) != 0 {
		t.Fatalf("archives opened without --max-archive-depth: %v", got)
	}
	if got := scanAt(1); !got["aws-access-token release.zip!app/settings.py"] || len(got) != 1 {
		t.Fatalf("depth 1: %v", got)
	}
	if got := scanAt(2); !got["github-pat release.zip!vendor/bundle.tar.gz!conf/.env"] || len(got) != 2 {
		t.Fatalf("depth 2: %v", got)
	}
}

// FuzzArchive feeds arbitrary bytes to the archive walker as every kind:
// it never panics and never reads past its budget.
func FuzzArchive(f *testing.F) {
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	w, _ := zw.Create("a.env")
	w.Write([]byte("AWS=" + awsKey + "\n"))
	zw.Close()
	f.Add(zbuf.Bytes())
	f.Add([]byte("\x1f\x8b\x08\x00\x00\x00\x00\x00"))
	d := NewDetector(DefaultConfig())
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, kind := range []string{"zip", "tar", "tgz", "gz"} {
			a := &archiveScan{d: d, maxDepth: 3, maxEntry: 1 << 20, budget: 4 << 20}
			a.walk(bytes.NewReader(data), int64(len(data)), "f", kind, 1)
			if a.budget < -(1 << 20) {
				t.Fatalf("read %d bytes past the budget", -a.budget)
			}
		}
	})
}

// TestScannerFilesSkipped checks that the scanner's own files (rules files
// whose allowlists quote a key, fingerprint lists) are not reported in dir,
// archive, git history and staged scans, while the same key in other files,
// even under a similar name, is.
func TestScannerFilesSkipped(t *testing.T) {
	dir := t.TempDir()
	own := map[string]string{
		".gitleaks.toml":   "[allowlist]\nregexes = ['''" + awsKey + "''']\n",
		"ci/gitleaks.toml": "[allowlist]\nregexes = ['''" + awsKey + "''']\n",
		".arca-scan.toml":  "[allowlist]\nregexes = ['''" + awsKey + "''']\n",
		".gitleaksignore":  "app.env:aws-access-token:1\n# was " + awsKey + "\n",
		"ci/.arcaignore":   "# " + awsKey + "\n",
	}
	others := map[string]string{
		"app.env":                     "AWS_ACCESS_KEY_ID=" + awsKey + "\n",
		"ci/gitleaks.toml.d/keys.env": "AWS_ACCESS_KEY_ID=" + awsKey + "\n",
	}
	const want = "app.env ci/gitleaks.toml.d/keys.env"
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	for _, m := range []map[string]string{own, others} {
		for name, text := range m {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			w, _ := zw.Create(name)
			w.Write([]byte(text))
		}
	}
	zw.Close()
	files := func(fs []Finding, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range fs {
			out = append(out, f.File)
		}
		return strings.Join(out, " ")
	}
	d := NewDetector(DefaultConfig())
	if got := files(d.ScanDir(context.Background(), dir, DirOptions{})); got != want {
		t.Errorf("dir: findings in %q, want %q", got, want)
	}

	git(t, dir, "init", "-q", "-b", "main")
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", "rules and ignores")
	if got := files(d.ScanGit(context.Background(), dir, GitOptions{})); got != want {
		t.Errorf("git: findings in %q, want %q", got, want)
	}

	for _, m := range []map[string]string{own, others} {
		for name, text := range m {
			os.WriteFile(filepath.Join(dir, name), []byte(text+"GITHUB_TOKEN="+ghToken+"\n"), 0o644)
		}
	}
	git(t, dir, "add", "-A")
	if got := files(d.ScanStaged(context.Background(), dir)); got != want {
		t.Errorf("staged: findings in %q, want %q", got, want)
	}

	archives := t.TempDir()
	if err := os.WriteFile(filepath.Join(archives, "release.zip"), zbuf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, want := files(d.ScanDir(context.Background(), archives, DirOptions{MaxArchiveDepth: 1})), "release.zip!app.env release.zip!ci/gitleaks.toml.d/keys.env"; got != want {
		t.Errorf("archive: findings in %q, want %q", got, want)
	}
}

// TestDecodedPositions checks that a secret found in a decoded base64 value
// is reported at the encoded value's lines and columns in the file.
func TestDecodedPositions(t *testing.T) {
	enc := b64(awsKey)
	half := len(enc) / 2
	dockerCfg := `{"auths":{"registry.example.com":{"auth":"` + b64("deploy:Zq8#vR2!mN5pLx") + `"}}}`
	dockerEnc := b64(dockerCfg)
	files := map[string]string{
		"multi.yaml":    "kind: ConfigMap\ndata:\n  a: b\n---\napiVersion: v1\nkind: Secret\ndata:\n  other: eA==\n  aws: " + enc + "\n",
		"one-line.json": `{"metadata": {"name": "é-ü-ß"}, "kind": "Secret", "data": {"note": "eA==", "aws": "` + enc + `"}}` + "\n",
		"block.yaml":    "kind: Secret\ndata:\n  aws: |\n    " + enc[:half] + "\n    " + enc[half:] + "\n",
		"template.yaml": "kind: Secret\ndata:\n  aws: " + enc + "\n  x: {{ .Values.x | b64enc }}\n",
		"config.json":   "{\n  \"auths\": {\n    \"registry.example.com\": {\"auth\": \"" + b64("deploy:Zq8#vR2!mN5pLx") + "\"}\n  }\n}\n",
		"pull.yaml":     "kind: Secret\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: " + dockerEnc + "\n",
	}
	// where each file's decoded finding must sit: first and last line, and
	// the encoded text its columns must hold.
	want := map[string]struct {
		start, end int
		text       string
	}{
		"multi.yaml":    {9, 9, enc},
		"one-line.json": {1, 1, enc},
		"block.yaml":    {4, 5, enc[:half] + "\n    " + enc[half:]},
		"template.yaml": {3, 3, enc},
		"config.json":   {3, 3, b64("deploy:Zq8#vR2!mN5pLx")},
		"pull.yaml":     {4, 4, dockerEnc},
	}
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	fs, err := NewDetector(DefaultConfig()).ScanDir(context.Background(), dir, DirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range fs {
		w, ok := want[f.File]
		if !ok || !slices.Contains(f.Tags, "decoded:base64") {
			continue
		}
		seen[f.File] = true
		if f.StartLine != w.start || f.EndLine != w.end {
			t.Errorf("%s %s: lines %d-%d, want %d-%d", f.File, f.RuleID, f.StartLine, f.EndLine, w.start, w.end)
			continue
		}
		lines := strings.Split(files[f.File], "\n")[f.StartLine-1 : f.EndLine]
		text := strings.Join(lines, "\n")
		lastStart := len(text) - len(lines[len(lines)-1])
		if f.StartColumn < 1 || lastStart+f.EndColumn > len(text) || f.StartColumn-1 > lastStart+f.EndColumn {
			t.Errorf("%s %s: columns %d-%d outside %q", f.File, f.RuleID, f.StartColumn, f.EndColumn, text)
			continue
		}
		if got := text[f.StartColumn-1 : lastStart+f.EndColumn]; got != w.text {
			t.Errorf("%s %s: columns %d-%d hold %q, want %q", f.File, f.RuleID, f.StartColumn, f.EndColumn, got, w.text)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("%s: no decoded finding", name)
		}
	}
}
