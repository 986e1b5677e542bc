package template

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arcasec/arca/api"
)

// fakeSource answers from maps and records every call.
type fakeSource struct {
	mu      sync.Mutex
	secrets map[string]*api.Secret
	lists   map[string][]string
	err     error
	calls   []fakeCall
}

type fakeCall struct {
	path string
	data map[string]any
}

func (f *fakeSource) Secret(path string, data map[string]any) (*api.Secret, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fakeCall{path, data})
	if f.err != nil {
		return nil, f.err
	}
	s, ok := f.secrets[path]
	if !ok {
		return nil, fmt.Errorf("no secret at %s", path)
	}
	return s, nil
}

func (f *fakeSource) List(path string) ([]string, error) {
	if f.err != nil {
		return nil, f.err
	}
	return f.lists[path], nil
}

const dbPassword = "Sup3r-s3cret-pw!"

func testSource() *fakeSource {
	return &fakeSource{
		secrets: map[string]*api.Secret{
			"secret/data/app/db": {
				Data: map[string]any{
					"data":     map[string]any{"password": dbPassword, "user": "app", "port": "5432", "json": `{"a":{"b":"c"}}`},
					"metadata": map[string]any{"version": float64(3), "created_time": "2026-01-01T00:00:00Z"},
				},
			},
			"secret/data/deleted": {Data: map[string]any{"data": nil, "metadata": map[string]any{"version": float64(2)}}},
			"database/creds/readonly": {
				LeaseID:       "database/creds/readonly/AbC123",
				LeaseDuration: 3600,
				Renewable:     true,
				Data:          map[string]any{"username": "v-app-readonly-x1", "password": "A1a-generated-pw"},
			},
			"pki/issue/web": {
				Data: map[string]any{"certificate": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", "serial_number": "01:02"},
			},
			"secret/app":       {Data: map[string]any{"one": "1", "two": "2"}},
			"secret/data/nums": {Data: map[string]any{"data": map[string]any{"port": json.Number("5432"), "ratio": json.Number("0.5")}}},
		},
		lists: map[string][]string{"secret/metadata/": {"alpha", "beta"}},
	}
}

func render(t *testing.T, src Source, text string, opts Options) string {
	t.Helper()
	tmpl, err := Parse("test.tmpl", text, opts)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	out, err := tmpl.Execute(src)
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	return string(out)
}

func renderErr(t *testing.T, src Source, text string, opts Options) error {
	t.Helper()
	tmpl, err := Parse("app.tmpl", text, opts)
	if err != nil {
		return err
	}
	out, err := tmpl.Execute(src)
	if err == nil {
		t.Fatalf("Execute of %q succeeded with %q; want an error", text, out)
	}
	if out != nil {
		t.Fatalf("a failed render returned output %q", out)
	}
	return err
}

func TestKVv2Shape(t *testing.T) {
	got := render(t, testSource(),
		`{{ with secret "secret/data/app/db" }}user={{ .Data.data.user }} pw={{ .Data.data.password }} v{{ .Data.metadata.version }}{{ end }}`,
		Options{})
	want := "user=app pw=" + dbPassword + " v3"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestDatabaseCredsLeaseFields(t *testing.T) {
	src := testSource()
	got := render(t, src, `{{ with secret "database/creds/readonly" }}{{ .Data.username }}:{{ .Data.password }} lease={{ .LeaseID }} ttl={{ .LeaseDuration }} renewable={{ .Renewable }}{{ end }}`, Options{})
	want := "v-app-readonly-x1:A1a-generated-pw lease=database/creds/readonly/AbC123 ttl=3600 renewable=true"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if len(src.calls) != 1 || src.calls[0].data != nil {
		t.Fatalf("a read must reach the source once with no data, got %+v", src.calls)
	}
}

func TestSameSecretTwiceInOneRenderIsOneCall(t *testing.T) {
	src := testSource()
	got := render(t, src, `{{ with secret "database/creds/readonly" }}{{ .Data.username }}{{ end }}/{{ with secret "database/creds/readonly" }}{{ .Data.password }}{{ end }}`, Options{})
	if got != "v-app-readonly-x1/A1a-generated-pw" {
		t.Fatalf("got %q", got)
	}
	if len(src.calls) != 1 {
		t.Fatalf("one render must ask once for one set of credentials, asked %d times", len(src.calls))
	}
}

func TestSecretWriteParameters(t *testing.T) {
	src := testSource()
	got := render(t, src, `{{ with secret "pki/issue/web" "common_name=a.example" "ttl=24h" "alt_names=b.example,c=d" }}{{ .Data.certificate }}{{ end }}`, Options{})
	if !strings.HasPrefix(got, "-----BEGIN CERTIFICATE-----") {
		t.Fatalf("got %q", got)
	}
	want := map[string]any{"common_name": "a.example", "ttl": "24h", "alt_names": "b.example,c=d"}
	if len(src.calls) != 1 || src.calls[0].path != "pki/issue/web" || !reflect.DeepEqual(src.calls[0].data, want) {
		t.Fatalf("source got %+v, want one write of %v", src.calls, want)
	}
}

func TestSecretBadParameterDoesNotEchoIt(t *testing.T) {
	err := renderErr(t, testSource(), `{{ with secret "transit/encrypt/k" "hunter2-plaintext" }}{{ end }}`, Options{})
	if strings.Contains(err.Error(), "hunter2-plaintext") {
		t.Fatalf("error echoes the parameter: %v", err)
	}
	if !strings.Contains(err.Error(), "parameter 1 is not key=value") || !strings.HasPrefix(err.Error(), "app.tmpl:1:") {
		t.Fatalf("error does not say what is wrong and where: %v", err)
	}
}

func TestSecretsRange(t *testing.T) {
	got := render(t, testSource(), `{{ range secrets "secret/metadata/" }}[{{ . }}]{{ end }}`, Options{})
	if got != "[alpha][beta]" {
		t.Fatalf("got %q", got)
	}
	got = render(t, testSource(), `{{ with secret "secret/app" }}{{ range $k, $v := .Data }}{{ $k }}={{ $v }};{{ end }}{{ end }}`, Options{})
	if got != "one=1;two=2;" {
		t.Fatalf("got %q", got)
	}
}

func TestMissingKey(t *testing.T) {
	// Without error_on_missing_key a missing key renders "<no value>"; a
	// field of a nil value (a KV v2 read whose data is null, or .Data.data
	// of a KV v1 secret) is an error either way, as in consul-template,
	// which runs text/template with missingkey=zero.
	if got := render(t, testSource(), `{{ with secret "secret/data/app/db" }}{{ .Data.data.nope }}{{ end }}`, Options{}); got != "<no value>" {
		t.Errorf("got %q, want <no value>", got)
	}
	for _, text := range []string{
		`{{ with secret "secret/data/deleted" }}{{ .Data.data.password }}{{ end }}`,
		`{{ with secret "secret/app" }}{{ .Data.data.password }}{{ end }}`,
	} {
		err := renderErr(t, testSource(), text, Options{})
		if !strings.HasPrefix(err.Error(), "app.tmpl:1:") || !strings.Contains(err.Error(), `nil data; no entry for key "password"`) {
			t.Errorf("%s: got %v", text, err)
		}
	}
	for _, text := range []string{
		`{{ with secret "secret/data/app/db" }}{{ .Data.data.nope }}{{ end }}`,
		`{{ with secret "secret/data/deleted" }}{{ .Data.data.password }}{{ end }}`,
		`{{ with secret "secret/app" }}{{ .Data.data.password }}{{ end }}`,
	} {
		err := renderErr(t, testSource(), text, Options{ErrorOnMissingKey: true})
		if !strings.HasPrefix(err.Error(), "app.tmpl:1:") || !strings.Contains(err.Error(), "no entry for key") {
			t.Errorf("%s with error_on_missing_key: error %q does not name the place and the key", text, err)
		}
		if strings.Contains(err.Error(), dbPassword) {
			t.Errorf("error holds the secret: %v", err)
		}
	}
}

func TestCustomDelimiters(t *testing.T) {
	got := render(t, testSource(), `{{ literal }} [[ with secret "secret/data/app/db" ]][[ .Data.data.user ]][[ end ]]`,
		Options{LeftDelim: "[[", RightDelim: "]]"})
	if got != "{{ literal }} app" {
		t.Fatalf("got %q", got)
	}
}

func TestParseErrorNamesFileAndLine(t *testing.T) {
	_, err := Parse("app.tmpl", "line one\nline two\n{{ secert \"x\" }}\n", Options{})
	if err == nil {
		t.Fatal("Parse accepted an unknown function")
	}
	if !strings.HasPrefix(err.Error(), "app.tmpl:3: ") || !strings.Contains(err.Error(), `"secert"`) {
		t.Fatalf("error %q does not start with app.tmpl:3 and name the function", err)
	}
	_, err = Parse("app.tmpl", "a\n{{ if true }}", Options{})
	if err == nil || !strings.HasPrefix(err.Error(), "app.tmpl:2: ") {
		t.Fatalf("unclosed if: got %v", err)
	}
}

func TestUnsupportedFunctionsFailAtParseWithReason(t *testing.T) {
	cases := map[string]string{
		"\n{{ key \"service/redis\" }}":                                              "app.tmpl:2: key is a Consul function; Arca agent serves Vault secrets only",
		"{{ range service \"web\" }}{{ end }}":                                       "app.tmpl:1: service is a Consul function",
		"{{ with pkiCert \"pki/issue/web\" \"common_name=a\" }}{{ .Cert }}{{ end }}": "app.tmpl:1: pkiCert needs a PKI secrets engine",
		"{{ if true }}\n\n{{ writeToFile \"a\" }}{{ end }}":                          "app.tmpl:3: writeToFile is not supported",
		"{{ executeTemplate \"x\" }}":                                                "app.tmpl:1: executeTemplate is not supported",
		"{{ \"x\" | plugin \"p\" }}":                                                 "app.tmpl:1: plugin is not supported",
		"{{ define \"d\" }}\n{{ nomadVar \"x\" }}{{ end }}":                          "app.tmpl:2: nomadVar is a Nomad function",
	}
	for text, want := range cases {
		_, err := Parse("app.tmpl", text, Options{})
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: got %v, want prefix %q", text, err, want)
		}
	}
}

func TestExecErrorsNameLineAndHoldNoSecret(t *testing.T) {
	pre := "first line\n{{ with secret \"secret/data/app/db\" }}\n"
	cases := []string{
		`{{ .Data.data.password | parseInt }}`,
		`{{ .Data.data.password | parseFloat }}`,
		`{{ .Data.data.password | parseBool }}`,
		`{{ .Data.data.password | base64Decode }}`,
		`{{ .Data.data.password | parseJSON }}`,
		`{{ range .Data.data.password }}{{ end }}`,
		`{{ range $i, $e := (len .Data.data.password) }}{{ end }}`,
		`{{ .Data.data.password | sprig_mustToDate "2006" }}`,
		`{{ regexMatch (printf "(%s" .Data.data.password) "x" }}`,
		`{{ .Data.data.password | sprig_mustRegexFind "(" }}`,
		`{{ file .Data.data.password }}`,
		`{{ index .Data.data.password 99 }}`,
		`{{ .Data.data.password | add 1 }}`,
		`{{ secret .Data.data.password }}`,
		`{{ .Data.data.password.deeper }}`,
		`{{ template "nope" .Data.data.password }}`,
		`{{ $x := .Data.data.password }}{{ $x | sprig_mustFromJson }}`,
	}
	for _, c := range cases {
		err := renderErr(t, testSource(), pre+c+"\n{{ end }}", Options{})
		msg := err.Error()
		if strings.Contains(msg, dbPassword) || strings.Contains(msg, "s3cret") {
			t.Errorf("%s: error holds the secret: %s", c, msg)
		}
		if !regexp.MustCompile(`^app\.tmpl:3(:\d+)?: `).MatchString(msg) {
			t.Errorf("%s: error does not start with app.tmpl:3: %s", c, msg)
		}
	}
}

func TestSourceErrorIsReported(t *testing.T) {
	src := testSource()
	src.err = errors.New("permission denied")
	err := renderErr(t, src, `{{ with secret "secret/data/app/db" }}{{ end }}`, Options{})
	if !strings.Contains(err.Error(), "permission denied") || !strings.Contains(err.Error(), `secret "secret/data/app/db"`) {
		t.Fatalf("got %v", err)
	}
	if _, err := mustParse(t, `{{ secret "x" }}`).Execute(nil); err == nil || !strings.Contains(err.Error(), "no secret source") {
		t.Fatalf("nil source: got %v", err)
	}
}

func mustParse(t *testing.T, text string) *Template {
	t.Helper()
	tmpl, err := Parse("t", text, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

func TestFunctions(t *testing.T) {
	dir := t.TempDir()
	fpath := filepath.Join(dir, "f.txt")
	if err := os.WriteFile(fpath, []byte("file contents\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ARCA_TPL_TEST", "from-env")
	old := now
	now = func() time.Time { return time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("x", 3600)) }
	defer func() { now = old }()

	cases := []struct{ text, want string }{
		{`{{ env "ARCA_TPL_TEST" }}`, "from-env"},
		{`{{ env "ARCA_TPL_UNSET_X" }}`, ""},
		{`{{ envOrDefault "ARCA_TPL_UNSET_X" "dflt" }}`, "dflt"},
		{`{{ mustEnv "ARCA_TPL_TEST" }}`, "from-env"},
		{`{{ file "` + fpath + `" }}`, "file contents\n"},
		{`{{ file "` + fpath + `" | trimSpace }}`, "file contents"},
		{`{{ base64Encode "hello" }}`, "aGVsbG8="},
		{`{{ base64Decode "aGVsbG8=" }}`, "hello"},
		{`{{ base64URLEncode "a?b>c" }}`, "YT9iPmM="},
		{`{{ base64URLDecode "YT9iPmM=" }}`, "a?b>c"},
		{`{{ (parseJSON "{\"a\":[1,2],\"b\":\"<x>\"}") | toJSON }}`, `{"a":[1,2],"b":"\u003cx\u003e"}`},
		{`{{ (parseJSON "{\"b\":\"<x>\"}") | toUnescapedJSON }}`, `{"b":"<x>"}`},
		{`{{ (parseJSON "{\"a\":1}") | toJSONPretty }}`, "{\n  \"a\": 1\n}"},
		{`{{ (parseJSON "") | len }}`, "0"},
		{`{{ (parseYAML "a:\n  b: c\n") | toYAML }}`, "a:\n  b: c"},
		{`{{ (parseYAML "a: {b: c}") | toJSON }}`, `{"a":{"b":"c"}}`},
		{`{{ (parseJSON "{\"a\":\"x\",\"t\":{\"k\":\"v\"}}") | toTOML }}`, "a = \"x\"\n\n[t]\n  k = \"v\"\n"},
		{`{{ "true" | parseBool }}`, "true"},
		{`{{ "-42" | parseInt }}`, "-42"},
		{`{{ "42" | parseUint }}`, "42"},
		{`{{ "1.5" | parseFloat }}`, "1.5"},
		{`{{ "foo.bar.baz" | replaceAll "." "_" }}`, "foo_bar_baz"},
		{`{{ "foo.bar" | regexReplaceAll "foo([.a-z]+)" "$1" }}`, ".bar"},
		{`{{ "foo.bar" | regexMatch "^f[a-z]+\\.bar$" }}`, "true"},
		{`{{ "a,b,c" | split "," | join ";" }}`, "a;b;c"},
		{`{{ (parseJSON "[1,\"x\"]") | join "-" }}`, "1-x"},
		{`{{ "" | split "," | len }}`, "0"},
		{`{{ "  pad \n" | trimSpace }}`, "pad"},
		{`{{ "xxhixx" | trim "x" }}`, "hi"},
		{`{{ "prefix-body" | trimPrefix "prefix-" }}`, "body"},
		{`{{ "body.txt" | trimSuffix ".txt" }}`, "body"},
		{`{{ "MiXeD" | toLower }}`, "mixed"},
		{`{{ "MiXeD" | toUpper }}`, "MIXED"},
		{`{{ "hello wide world-x" | toTitle }}`, "Hello Wide World-X"},
		{`{{ $l := "a,b" | split "," }}{{ $l | contains "b" }}{{ $l | contains "z" }}`, "truefalse"},
		{`{{ in ("a,b" | split ",") "a" }}{{ in "haystack" "st" }}`, "truetrue"},
		{`{{ $n := "a,z" | split "," }}{{ $h := "a,b" | split "," }}{{ containsAll $n $h }}{{ containsAny $n $h }}{{ containsNone $n $h }}{{ containsNotAll $n $h }}`, "falsetruefalsetrue"},
		{`{{ "x" | sha256Hex }}`, "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"},
		{`{{ "x" | md5sum }}`, "9dd4e461268c8034f5c8564e155c67a6"},
		{`{{ timestamp }}`, "2026-03-04T04:06:07Z"},
		{`{{ timestamp "2006-01-02" }}`, "2026-03-04"},
		{`{{ timestamp "unix" }}`, fmt.Sprint(time.Date(2026, 3, 4, 4, 6, 7, 0, time.UTC).Unix())},
		{`{{ "a\n\nb" | indent 2 }}`, "  a\n\n  b"},
		{`{{ 2 | add 3 }} {{ 10 | subtract 3 }} {{ 4 | multiply 5 }} {{ 10 | divide 2 }} {{ 10 | modulo 3 }}`, "5 7 20 5 1"},
		{`{{ 1.5 | add 1 }} {{ minimum 3 7 }} {{ maximum 3 7 }} {{ 7.5 | divide 2 }}`, "2.5 3 7 3.75"},
		{`{{ range loop 3 }}{{ . }}{{ end }}|{{ range loop 5 8 }}{{ . }}{{ end }}`, "012|567"},
		{`{{ scratch.Set "a" "1" }}{{ scratch.SetX "a" "2" }}{{ scratch.Get "a" }}{{ scratch.Key "a" }}{{ scratch.Key "b" }}`, "1truefalse"},
		{`{{ scratch.MapSet "m" "b" "2" }}{{ scratch.MapSet "m" "a" "1" }}{{ scratch.MapSetX "m" "a" "9" }}{{ scratch.MapValues "m" }}`, "[1 2]"},
		{`{{ "hello" | sprig_upper }} {{ sprig_list 1 2 | sprig_last }} {{ "abc" | sprig_trunc 2 }}`, "HELLO 2 ab"},
		{`{{ sprig_contains "ell" "hello" }}`, "true"},
		{`{{ printf "%s-%d" "a" 1 }}`, "a-1"},
		{`{{ with secret "secret/data/nums" }}{{ .Data.data.port | add 1 }} {{ .Data.data.ratio | multiply 4 }} {{ .Data.data | toJSON }}{{ end }}`, `5433 2 {"port":5432,"ratio":0.5}`},
		{`{{ with secret "secret/data/nums" }}{{ .Data.data | toTOML }}{{ end }}`, "port = 5432\nratio = 0.5\n"},
		{`{{ with secret "database/creds/readonly" }}{{ .LeaseDuration | divide 3 | multiply 2 }}{{ end }}`, "2400"},
	}
	for _, c := range cases {
		if got := render(t, testSource(), c.text, Options{}); got != c.want {
			t.Errorf("%s\n got %q\nwant %q", c.text, got, c.want)
		}
	}
}

func TestFunctionErrors(t *testing.T) {
	for text, want := range map[string]string{
		`{{ mustEnv "ARCA_TPL_UNSET_X" }}`:    "ARCA_TPL_UNSET_X is not set",
		`{{ file "/nonexistent/arca/x" }}`:    "cannot read /nonexistent/arca/x",
		`{{ 1 | divide 0 }}`:                  "division by zero",
		`{{ 1.0 | modulo 0 }}`:                "division by zero",
		`{{ "x" | regexMatch "(" }}`:          "invalid regular expression: missing closing )",
		`{{ "a" | indent -1 }}`:               "negative width",
		`{{ loop 1 2 3 }}`:                    "loop takes one or two integers",
		`{{ range loop 2000000 }}{{ end }}`:   "more than",
		`{{ sprig_repeat 2000000000 "abc" }}`: "would exceed",
		`{{ timestamp "a" "b" }}`:             "at most one layout",
		`{{ in 5 "x" }}`:                      "not a list, string or map",
		`{{ secret "p" "=v" }}`:               "not key=value",
	} {
		err := renderErr(t, testSource(), text, Options{})
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %q, want it to contain %q", text, err, want)
		}
	}
}

func TestConcurrentExecute(t *testing.T) {
	tmpl := mustParse(t, `{{ scratch.Set "k" "v" }}{{ with secret "secret/data/app/db" }}{{ .Data.data.user }}{{ end }}{{ scratch.Get "k" }}`)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := tmpl.Execute(testSource())
			if err != nil || string(out) != "appv" {
				errs <- fmt.Errorf("got %q, %v", out, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "nested", "deeper", "app.conf")

	if _, err := WriteFile(path, []byte("v1"), 0o640, false, false); err == nil {
		t.Fatal("WriteFile created missing directories without mkdirs")
	}
	changed, err := WriteFile(path, []byte("v1"), 0o640, true, true)
	if err != nil || !changed {
		t.Fatalf("first write: changed=%v err=%v", changed, err)
	}
	assertFile(t, path, "v1", 0o640)
	if _, err := os.Stat(path + ".bak"); !os.IsNotExist(err) {
		t.Fatalf("a first write has nothing to back up, yet .bak exists (%v)", err)
	}

	changed, err = WriteFile(path, []byte("v1"), 0o640, true, true)
	if err != nil || changed {
		t.Fatalf("same content: changed=%v err=%v, want false", changed, err)
	}
	if _, err := os.Stat(path + ".bak"); !os.IsNotExist(err) {
		t.Fatal("an unchanged write made a backup")
	}

	changed, err = WriteFile(path, []byte("v2"), 0o600, true, true)
	if err != nil || !changed {
		t.Fatalf("second write: changed=%v err=%v", changed, err)
	}
	assertFile(t, path, "v2", 0o600)
	assertFile(t, path+".bak", "v1", 0o640)

	changed, err = WriteFile(path, []byte("v3"), 0o600, false, true)
	if err != nil || !changed {
		t.Fatalf("third write: changed=%v err=%v", changed, err)
	}
	assertFile(t, path+".bak", "v1", 0o640) // without backup the old .bak stays as it was

	// Same content, new mode: nothing rewritten, mode brought to the config.
	if changed, err = WriteFile(path, []byte("v3"), 0o644, false, true); err != nil || changed {
		t.Fatalf("mode only: changed=%v err=%v", changed, err)
	}
	assertFile(t, path, "v3", 0o644)

	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "app.conf" && e.Name() != "app.conf.bak" {
			t.Errorf("left behind %s", e.Name())
		}
	}
}

func TestWriteFileReplacesAtomically(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.conf")
	if _, err := WriteFile(path, []byte("old"), 0o600, false, false); err != nil {
		t.Fatal(err)
	}
	// A reader holding the old file keeps reading the old content: the new
	// one arrives by rename, not by truncate-and-write.
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := WriteFile(path, []byte("new content"), 0o600, false, false); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, _ := f.Read(buf)
	if string(buf[:n]) != "old" {
		t.Fatalf("the open file now reads %q: the write was not a rename", buf[:n])
	}
	assertFile(t, path, "new content", 0o600)
}

func TestWriteFileDefaultMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if _, err := WriteFile(path, []byte("x"), 0, false, false); err != nil {
		t.Fatal(err)
	}
	assertFile(t, path, "x", 0o644)
}

func assertFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != content {
		t.Fatalf("%s holds %q, want %q", path, b, content)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != mode {
		t.Fatalf("%s has mode %o, want %o", path, fi.Mode().Perm(), mode)
	}
}
