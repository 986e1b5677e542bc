package mask

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
)

// maskAll writes each chunk through a fresh writer and closes it.
func maskAll(t testing.TB, s *Set, chunks ...string) string {
	t.Helper()
	var buf bytes.Buffer
	w := s.Writer(&buf)
	for _, c := range chunks {
		if n, err := w.Write([]byte(c)); err != nil || n != len(c) {
			t.Fatalf("Write(%q) = %d, %v", c, n, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

const secret = "hunter2-Tr0ub4dor&3"

func TestWholeValue(t *testing.T) {
	s := New([]string{secret})
	got := maskAll(t, s, "password is "+secret+" ok\n")
	if want := "password is ***** ok\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestSplitAcrossTwoWritesAtEveryPoint(t *testing.T) {
	s := New([]string{secret})
	line := "before " + secret + " after\n"
	for i := 0; i <= len(line); i++ {
		got := maskAll(t, s, line[:i], line[i:])
		if want := "before ***** after\n"; got != want {
			t.Fatalf("split at %d: got %q, want %q", i, got, want)
		}
	}
}

func TestBase64Forms(t *testing.T) {
	s := New([]string{secret})
	for name, enc := range map[string]*base64.Encoding{
		"std": base64.StdEncoding, "url": base64.URLEncoding,
		"rawstd": base64.RawStdEncoding, "rawurl": base64.RawURLEncoding,
	} {
		e := enc.EncodeToString([]byte(secret))
		got := maskAll(t, s, "token: "+e+"\n")
		if got != "token: *****\n" {
			t.Errorf("%s: %q became %q", name, e, got)
		}
	}
}

func TestInsideBase64OfLongerString(t *testing.T) {
	s := New([]string{secret})
	for _, user := range []string{"", "a", "ab", "user:", "deploy-bot:", "x:"} {
		for _, tail := range []string{"", "\n", ":x", "zz"} {
			enc := base64.StdEncoding.EncodeToString([]byte(user + secret + tail))
			got := maskAll(t, s, "Authorization: Basic "+enc+"\n")
			if strings.Contains(got, enc) || !strings.Contains(got, Replacement) {
				t.Errorf("base64(%q+secret+%q) = %s not masked: %q", user, tail, enc, got)
			}
			// What is left of the encoding cannot decode to the secret.
			if strings.Contains(got, base64.RawStdEncoding.EncodeToString([]byte(secret))[:8]) {
				t.Errorf("base64(%q+secret+%q): the secret's encoding is visible: %q", user, tail, got)
			}
		}
	}
}

func TestURLEncodedInsideURL(t *testing.T) {
	s := New([]string{secret})
	u := "https://api.example.com/login?user=bob&pass=" + url.QueryEscape(secret) + "&x=1"
	got := maskAll(t, s, "GET "+u+"\n")
	if want := "GET https://api.example.com/login?user=bob&pass=*****&x=1\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	p := "https://bob:" + url.PathEscape(secret) + "@db.example.com/"
	got = maskAll(t, s, p)
	if want := "https://bob:*****@db.example.com/"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestJSONEscaped(t *testing.T) {
	v := `pa"ss\word<1>`
	s := New([]string{v})
	for _, form := range []string{`pa\"ss\\word<1>`, `pa\"ss\\word\u003c1\u003e`} {
		if got := maskAll(t, s, `{"password":"`+form+`"}`); got != `{"password":"*****"}` {
			t.Errorf("JSON form %s: got %q", form, got)
		}
	}
}

func TestOverlappingSecretsMerge(t *testing.T) {
	s := New([]string{"abcdefgh", "efghijkl"})
	if got := maskAll(t, s, "<abcdefghijkl>"); got != "<*****>" {
		t.Fatalf("overlap: got %q", got)
	}
	// One value inside another: the longer wins, one mask.
	s = New([]string{"secretvalue", "value"})
	if got := maskAll(t, s, "[secretvalue] [value]"); got != "[*****] [*****]" {
		t.Fatalf("nested: got %q", got)
	}
	// Split between the two.
	s = New([]string{"abcdefgh", "efghijkl"})
	for i := 0; i <= 14; i++ {
		in := "<abcdefghijkl>"
		if got := maskAll(t, s, in[:i], in[i:]); got != "<*****>" {
			t.Fatalf("overlap split at %d: got %q", i, got)
		}
	}
}

func TestMultiLinePEMPrintedLineByLine(t *testing.T) {
	pem := "-----BEGIN PRIVATE KEY-----\n" +
		"MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n" +
		"VJTUt9Us8cKjMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDu\n" +
		"ab\n" +
		"-----END PRIVATE KEY-----\n"
	s := New([]string{pem})
	var buf bytes.Buffer
	w := s.Writer(&buf)
	for _, line := range strings.SplitAfter(pem, "\n") {
		fmt.Fprintf(w, "log: %s", line)
	}
	w.Close()
	got := buf.String()
	for _, line := range strings.Split(pem, "\n") {
		if len(line) >= MinLen && strings.Contains(got, line) {
			t.Errorf("line %q of the value is visible:\n%s", line, got)
		}
	}
	// Lines shorter than MinLen are not masked ("ab" here).
	if !strings.Contains(got, "log: ab\n") {
		t.Errorf("a short line was masked:\n%s", got)
	}
}

func TestShortValuesAreNotMasked(t *testing.T) {
	s := New([]string{"abc", "1", ""})
	if !s.Empty() {
		t.Fatal("a set of values shorter than MinLen is not empty")
	}
	if got := maskAll(t, s, "abc 1 abcabc"); got != "abc 1 abcabc" {
		t.Fatalf("got %q", got)
	}
}

func TestNoHoldWhenOutputDoesNotLookLikeASecret(t *testing.T) {
	s := New([]string{secret, "another-secret-value"})
	var buf bytes.Buffer
	w := s.Writer(&buf)
	for _, line := range []string{"building...\n", "step 1 of 3", " done", "\n", "progress: 50%"} {
		before := buf.Len()
		w.Write([]byte(line))
		if got := buf.String()[before:]; got != line {
			t.Fatalf("write %q passed %q through at once", line, got)
		}
	}
}

func TestHoldsOnlyAPossiblePrefix(t *testing.T) {
	s := New([]string{secret})
	var buf bytes.Buffer
	w := s.Writer(&buf)
	w.Write([]byte("value: " + secret[:5]))
	if got := buf.String(); got != "value: " {
		t.Fatalf("after a prefix of the secret, %q was written; want only %q", got, "value: ")
	}
	w.Write([]byte("X\n"))
	if got := buf.String(); got != "value: "+secret[:5]+"X\n" {
		t.Fatalf("once it cannot be the secret, got %q", got)
	}
}

func TestCloseFlushesHeldPrefix(t *testing.T) {
	s := New([]string{secret})
	var buf bytes.Buffer
	w := s.Writer(&buf)
	w.Write([]byte("tail " + secret[:len(secret)-1]))
	if strings.Contains(buf.String(), secret[:len(secret)-1]) {
		t.Fatalf("a prefix of the secret was written before Close: %q", buf.String())
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != "tail "+secret[:len(secret)-1] {
		t.Fatalf("after Close: %q", got)
	}
}

func TestFormsListsEncodings(t *testing.T) {
	forms := Forms(secret)
	has := map[string]bool{}
	for _, f := range forms {
		has[f] = true
	}
	for _, want := range []string{
		secret,
		base64.StdEncoding.EncodeToString([]byte(secret)),
		base64.URLEncoding.EncodeToString([]byte(secret)),
		base64.RawStdEncoding.EncodeToString([]byte(secret)),
		url.QueryEscape(secret),
		url.PathEscape(secret),
	} {
		if !has[want] {
			t.Errorf("Forms lacks %q", want)
		}
	}
	for i := 1; i < len(forms); i++ {
		if len(forms[i]) > len(forms[i-1]) {
			t.Fatalf("Forms not longest first: %q", forms)
		}
	}
}

func TestSparseAutomatonAgreesWithDense(t *testing.T) {
	values := []string{secret, "0123456789abcdef-long-value-to-make-states", "another one entirely"}
	dense := New(values)
	old := denseBudget
	denseBudget = 1 // only the root row is dense
	sparse := New(values)
	denseBudget = old
	if sparse.dense != 1 || dense.dense == 1 {
		t.Fatalf("dense states: %d and %d", dense.dense, sparse.dense)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200; i++ {
		in := randomStream(rng, values)
		if a, b := string(dense.Mask([]byte(in))), string(sparse.Mask([]byte(in))); a != b {
			t.Fatalf("input %q:\ndense  %q\nsparse %q", in, a, b)
		}
	}
}

// randomStream mixes noise with values and their forms.
func randomStream(rng *rand.Rand, values []string) string {
	var b strings.Builder
	for j := 0; j < 8; j++ {
		v := values[rng.IntN(len(values))]
		forms := Forms(v)
		switch rng.IntN(4) {
		case 0:
			b.WriteString(forms[rng.IntN(len(forms))])
		case 1:
			f := forms[rng.IntN(len(forms))]
			b.WriteString(f[:rng.IntN(len(f))])
		case 2:
			b.WriteString(base64.StdEncoding.EncodeToString([]byte(strings.Repeat("u", rng.IntN(5)) + v)))
		default:
			n := rng.IntN(12)
			for k := 0; k < n; k++ {
				b.WriteByte(" abc-0123456789+/=\n"[rng.IntN(19)])
			}
		}
	}
	return b.String()
}

// FuzzMaskWriter: whatever the values and however the output is chunked,
// no form of either value survives, chunking never changes the result,
// and output without any form passes through unchanged.
func FuzzMaskWriter(f *testing.F) {
	f.Add("s3cr3t-value", "", "other", "user:", uint64(1))
	f.Add("line one\nline two\n", "two\nline", "x", "", uint64(7))
	f.Add("aaaa", "aaab", "aaaaaaaa", "b", uint64(3))
	f.Add(`q"<&>/ +%`, "abcdefgh", "abcd", "xy", uint64(99))
	f.Add("abcdefgh", "efghijkl", "abcdefghijkl", "", uint64(5))
	f.Fuzz(func(t *testing.T, value, other, noise, prefix string, seed uint64) {
		if len(value) < MinLen || len(value) > 200 || len(other) > 200 || len(noise) > 200 || len(prefix) > 20 ||
			strings.Contains(value+other, "*") {
			t.Skip()
		}
		rng := rand.New(rand.NewPCG(seed, seed>>7))
		values := []string{value, other}
		s := New(values)
		forms := append(Forms(value), Forms(other)...)
		// The stream: noise and forms of the values, interleaved.
		var in strings.Builder
		for i := 0; i < 6; i++ {
			v := values[rng.IntN(2)]
			switch rng.IntN(5) {
			case 0:
				in.WriteString(forms[rng.IntN(len(forms))])
			case 1:
				in.WriteString(base64.StdEncoding.EncodeToString([]byte(prefix + v + noise)))
			case 2:
				in.WriteString(url.QueryEscape(v))
			case 3:
				in.WriteString(v[:rng.IntN(len(v)+1)])
			default:
				in.WriteString(noise)
			}
		}
		stream := in.String()
		// Random chunks.
		var chunks []string
		for rest := stream; rest != ""; {
			n := 1 + rng.IntN(len(rest))
			chunks = append(chunks, rest[:n])
			rest = rest[n:]
		}
		got := maskAll(t, s, chunks...)
		for _, form := range forms {
			if strings.Contains(got, form) {
				t.Fatalf("form %q visible in %q (input %q)", form, got, stream)
			}
		}
		if whole := maskAll(t, s, stream); whole != got {
			t.Fatalf("chunked %q, whole %q", got, whole)
		}
		clean := !strings.Contains(noise, "*")
		for _, form := range forms {
			if strings.Contains(noise, form) {
				clean = false
			}
		}
		if clean {
			if out := maskAll(t, s, noise); out != noise {
				t.Fatalf("noise %q became %q", noise, out)
			}
		}
	})
}

// BenchmarkMaskWriter measures throughput on log-like output with 20
// secrets in the set, written in 4 KiB chunks.
func BenchmarkMaskWriter(b *testing.B) {
	var values []string
	for i := 0; i < 20; i++ {
		values = append(values, fmt.Sprintf("secret-%02d-%x", i, uint64(i)*0x9e3779b97f4a7c15))
	}
	s := New(values)
	var log bytes.Buffer
	for log.Len() < 1<<20 {
		fmt.Fprintf(&log, "2026-12-01T13:00:00Z INFO request id=%d path=/v1/secret/data/app status=200 took=3ms\n", log.Len())
		if log.Len()%37 == 0 {
			log.WriteString("leaked " + values[log.Len()%20] + "\n")
		}
	}
	data := log.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := s.Writer(discard{})
		for off := 0; off < len(data); off += 4096 {
			end := min(off+4096, len(data))
			w.Write(data[off:end])
		}
		w.Close()
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
