package passpolicy

import (
	"context"
	"crypto/rand"
	"errors"
	"math"
	"strings"
	"testing"
	"unicode/utf8"
)

const (
	lower   = "abcdefghijklmnopqrstuvwxyz"
	upper   = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	digits  = "0123456789"
	symbols = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
)

// The examples of Vault's password policy documentation (concepts and API).
// The performance examples there have no length, which Vault refuses, so
// they get one here.
var documented = []struct {
	name    string
	text    string
	length  int
	charset string
	rules   []Rule
}{
	{
		name: "20 lowercase",
		text: `length = 20
rule "charset" {
  charset = "abcdefghijklmnopqrstuvwxyz"
}`,
		length: 20, charset: lower,
		rules: []Rule{{Charset: lower}},
	},
	{
		name: "one of each kind and a symbol from !@#$%^&*",
		text: `length = 20
rule "charset" {
  charset = "abcdefghijklmnopqrstuvwxyz"
  min-chars = 1
}
rule "charset" {
  charset = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
  min-chars = 1
}
rule "charset" {
  charset = "0123456789"
  min-chars = 1
}
rule "charset" {
  charset = "!@#$%^&*"
  min-chars = 1
}`,
		length: 20, charset: "!#$%&*0123456789@ABCDEFGHIJKLMNOPQRSTUVWXYZ^abcdefghijklmnopqrstuvwxyz",
		rules: []Rule{{lower, 1}, {upper, 1}, {digits, 1}, {"!@#$%^&*", 1}},
	},
	{
		name: "charset rule example",
		text: `length = 20
rule "charset" {
  charset = "abcde"
  min-chars = 1
}
rule "charset" {
  charset = "01234"
  min-chars = 1
}`,
		length: 20, charset: "01234abcde",
		rules: []Rule{{"abcde", 1}, {"01234", 1}},
	},
	{
		name: "min-chars left out",
		text: `length = 8
rule "charset" {
  charset = "abcde"
}
rule "charset" {
  charset = "01234"
  min-chars = 1
}`,
		length: 8, charset: "01234abcde",
		rules: []Rule{{"abcde", 0}, {"01234", 1}},
	},
	{
		name:   "API sample payload",
		text:   "length = 20\nrule \"charset\" {\n  charset = \"abcde\"\n}\n",
		length: 20, charset: "abcde",
		rules: []Rule{{"abcde", 0}},
	},
	{
		name: "performance: no minimum characters",
		text: `length = 20
rule "charset" {
  charset = "abcdefghijklmnopqrstuvwxyz"
}
rule "charset" {
  charset = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
}
rule "charset" {
  charset = "0123456789"
}
rule "charset" {
  charset = "!\"#$%&'()*+,-./:;<=>?@[\\]^_` + "`" + `{|}~"
}`,
		length: 20, charset: sortedString(lower + upper + digits + symbols),
		rules: []Rule{{lower, 0}, {upper, 0}, {digits, 0}, {symbols, 0}},
	},
	{
		name: "performance: 1 uppercase, 1 lowercase, 1 numeric, 1 from all ASCII symbols",
		text: `length = 16
rule "charset" {
  charset = "abcdefghijklmnopqrstuvwxyz"
  min-chars = 1
}
rule "charset" {
  charset = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
  min-chars = 1
}
rule "charset" {
  charset = "0123456789"
  min-chars = 1
}
rule "charset" {
  charset = "!\"#$%&'()*+,-./:;<=>?@[\\]^_` + "`" + `{|}~"
  min-chars = 1
}`,
		length: 16, charset: sortedString(lower + upper + digits + symbols),
		rules: []Rule{{lower, 1}, {upper, 1}, {digits, 1}, {symbols, 1}},
	},
	{
		name: "performance: 1 uppercase, 1 lowercase, 1 numeric, 1 from !@#$",
		text: `length = 12
rule "charset" {
  charset = "abcdefghijklmnopqrstuvwxyz"
  min-chars = 1
}
rule "charset" {
  charset = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
  min-chars = 1
}
rule "charset" {
  charset = "0123456789"
  min-chars = 1
}
rule "charset" {
  charset = "!@#$"
  min-chars = 1
}
# Fleshes out the rest of the symbols but doesn't add any required characters
rule "charset" {
  charset = "!\"#$%&'()*+,-./:;<=>?@[\\]^_` + "`" + `{|}~"
}`,
		length: 12, charset: sortedString(lower + upper + digits + symbols),
		rules: []Rule{{lower, 1}, {upper, 1}, {digits, 1}, {"!@#$", 1}, {symbols, 0}},
	},
	{
		name: "default policy",
		text: DefaultText, length: 20, charset: sortedString(lower + upper + digits + "-"),
		rules: []Rule{{lower, 1}, {upper, 1}, {digits, 1}, {"-", 1}},
	},
	{
		name:   "JSON form",
		text:   `{"length": 16, "rule": [{"charset": {"charset": "abcde", "min-chars": 2}}, {"charset": {"charset": "01234"}}]}`,
		length: 16, charset: "01234abcde",
		rules: []Rule{{"abcde", 2}, {"01234", 0}},
	},
}

func sortedString(s string) string {
	seen := map[rune]bool{}
	var rs []rune
	for _, c := range s {
		if !seen[c] {
			seen[c] = true
			rs = append(rs, c)
		}
	}
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && rs[j] < rs[j-1]; j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
	return string(rs)
}

func TestParseDocumentedExamples(t *testing.T) {
	for _, tc := range documented {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse(tc.text)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if p.Length() != tc.length {
				t.Errorf("length %d, want %d", p.Length(), tc.length)
			}
			if p.Charset() != tc.charset {
				t.Errorf("charset %q, want %q", p.Charset(), tc.charset)
			}
			if len(p.Rules()) != len(tc.rules) {
				t.Fatalf("rules %+v, want %+v", p.Rules(), tc.rules)
			}
			for i := range tc.rules {
				if p.Rules()[i] != tc.rules[i] {
					t.Errorf("rule %d is %+v, want %+v", i+1, p.Rules()[i], tc.rules[i])
				}
			}
		})
	}
}

func TestParseRefusesBadPolicies(t *testing.T) {
	rule := func(charset string, min int) string {
		return "rule \"charset\" {\n  charset = \"" + charset + "\"\n  min-chars = " + itoa(min) + "\n}\n"
	}
	all256 := make([]rune, 0, 300)
	for c := rune(0x100); len(all256) < 257; c++ {
		all256 = append(all256, c)
	}
	cases := []struct {
		name, text, want string
	}{
		{"not HCL", "length = = 20", "not valid HCL"},
		{"only a length, which the docs call invalid", "length = 20", "no charset"},
		{"no length", rule("abc", 0), "length is required"},
		{"length too short", "length = 3\n" + rule("abc", 0), "length must be between 4 and 100, got 3"},
		{"length too long", "length = 101\n" + rule("abc", 0), "length must be between 4 and 100, got 101"},
		{"length not a number", "length = \"20\"\n" + rule("abc", 0), "length must be a whole number"},
		{"length a fraction", "length = 20.5\n" + rule("abc", 0), "length must be a whole number"},
		{"min-chars over length", "length = 5\n" + rule("abc", 3) + rule("def", 3), "at least 6 characters (the sum of their min-chars) but length is 5"},
		{"negative min-chars", "length = 10\n" + rule("abc", -1), "rule 1 (charset): min-chars must be a whole number of 0 or more"},
		{"unknown rule type", "length = 10\nrule \"regex\" { pattern = \"x\" }", `unknown rule type "regex"`},
		{"rule without a type", "length = 10\nrule { charset = \"abc\" }", `rule must be a block with a type`},
		{"misspelt min-chars", "length = 10\nrule \"charset\" {\n charset = \"abc\"\n min_chars = 2\n}", `rule 1 (charset): unknown key "min_chars"`},
		{"unknown top-level key", "length = 10\ncharset = \"abc\"\n" + rule("abc", 0), `unknown key "charset" in the password policy`},
		{"empty charset", "length = 10\n" + rule("abc", 0) + rule("", 1), "rule 2 (charset): charset is required and cannot be empty"},
		{"charset not a string", "length = 10\nrule \"charset\" { charset = [\"abc\"] }", "rule 1 (charset): charset must be a string"},
		{"unprintable character", "length = 10\n" + rule(`ab\u0007`, 0), "rule 1 (charset): charset holds the character U+0007, which is not printable"},
		{"over 256 characters", "length = 10\n" + rule(string(all256), 0), "the charsets hold 257 distinct characters together; at most 256 are allowed"},
		{"too restrictive", "length = 10\n" + rule(lower+upper+digits, 0) + rule("x", 6), "too restrictive"},
		{"too many count combinations", "length = 100\n" + rule(lower, 20) + rule(upper, 20) + rule(digits, 20), "too many to check"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse(tc.text)
			if err == nil {
				t.Fatalf("Parse accepted %q as %+v", tc.text, p)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

func itoa(n int) string {
	if n < 0 {
		return "-" + itoa(-n)
	}
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// check fails the test unless pw follows p.
func check(t *testing.T, p *Policy, pw string) {
	t.Helper()
	if !utf8.ValidString(pw) || utf8.RuneCountInString(pw) != p.Length() {
		t.Fatalf("password of %d characters, want %d", utf8.RuneCountInString(pw), p.Length())
	}
	for _, c := range pw {
		if !strings.ContainsRune(p.Charset(), c) {
			t.Fatalf("password holds %q, outside the charset", c)
		}
	}
	for i, r := range p.Rules() {
		n := 0
		for _, c := range pw {
			if strings.ContainsRune(r.Charset, c) {
				n++
			}
		}
		if n < r.MinChars {
			t.Fatalf("password has %d characters of rule %d's charset, want at least %d", n, i+1, r.MinChars)
		}
	}
}

func TestGeneratedPasswordsMeetTheRules(t *testing.T) {
	policies := []string{
		DefaultText,
		// Overlapping charsets: each rule counts on its own.
		"length = 6\n" + `rule "charset" { charset = "abcde"
min-chars = 3 }
rule "charset" { charset = "cdefg"
min-chars = 3 }`,
		// Every character is forced.
		"length = 4\n" + `rule "charset" { charset = "ab"
min-chars = 4 }`,
		// Multi-byte characters.
		"length = 12\n" + `rule "charset" { charset = "äöüß€"
min-chars = 2 }
rule "charset" { charset = "xyz" }`,
	}
	for _, doc := range documented {
		policies = append(policies, doc.text)
	}
	for _, text := range policies {
		p, err := Parse(text)
		if err != nil {
			t.Fatalf("Parse(%q): %v", text, err)
		}
		for range 2000 {
			pw, err := p.Generate(rand.Reader)
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			check(t, p, pw)
		}
	}
}

func TestDefaultIsVaultsDefault(t *testing.T) {
	if Default.Length() != 20 || Default.Charset() != sortedString(lower+upper+digits+"-") {
		t.Fatalf("default policy: length %d, charset %q", Default.Length(), Default.Charset())
	}
	want := []Rule{{lower, 1}, {upper, 1}, {digits, 1}, {"-", 1}}
	for i, r := range want {
		if Default.Rules()[i] != r {
			t.Fatalf("default rule %d is %+v, want %+v", i+1, Default.Rules()[i], r)
		}
	}
	seen := map[string]bool{}
	for range 1000 {
		pw, err := Default.Generate(nil)
		if err != nil {
			t.Fatal(err)
		}
		check(t, Default, pw)
		if seen[pw] {
			t.Fatalf("the same password came twice in 1000")
		}
		seen[pw] = true
	}
}

// fixedReader returns its bytes, then zeros.
type fixedReader struct{ b []byte }

func (r *fixedReader) Read(b []byte) (int, error) {
	n := copy(b, r.b)
	clear(b[n:])
	r.b = r.b[n:]
	return len(b), nil
}

// A byte value that would favour the first characters is skipped, and every
// other value picks its own character in turn.
func TestNoModuloBias(t *testing.T) {
	// With 63 characters, the values 252 to 255 would give the first four
	// characters a fifth chance each: they must be skipped.
	p, err := Parse("length = 100\nrule \"charset\" { charset = \"" + lower + upper + digits + "-\" }")
	if err != nil {
		t.Fatal(err)
	}
	stream := []byte{252, 253, 254, 255}
	for b := range 252 {
		stream = append(stream, byte(b))
	}
	pw, err := p.Generate(&fixedReader{stream})
	if err != nil {
		t.Fatal(err)
	}
	charset := p.Charset()
	var want strings.Builder
	for i := range 100 {
		want.WriteByte(charset[i%63])
	}
	if pw != want.String() {
		t.Fatalf("password %q, want %q: biased bytes were used", pw, want.String())
	}
}

// Every password that meets the rules is equally likely: a candidate missing
// a rule is drawn again whole, rather than patched (which would favour
// passwords with many required characters).
func TestGenerateIsUniformOverValidPasswords(t *testing.T) {
	// Of the 16 strings over {a, b} of length 4, all but "bbbb" are valid.
	p, err := Parse("length = 4\n" + `rule "charset" { charset = "a"
min-chars = 1 }
rule "charset" { charset = "b" }`)
	if err != nil {
		t.Fatal(err)
	}
	const per = 1000
	counts := map[string]int{}
	for range 15 * per {
		pw, err := p.Generate(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		counts[pw]++
	}
	if len(counts) != 15 || counts["bbbb"] != 0 {
		t.Fatalf("passwords seen: %v, want the 15 with an a", counts)
	}
	// Each count has a standard deviation near 31; 400 is over 12 of them,
	// while patching a candidate would give "aaaa" about 1875.
	for pw, n := range counts {
		if n < per-400 || n > per+400 {
			t.Fatalf("%q came %d times in %d, want about %d", pw, n, 15*per, per)
		}
	}
}

// The acceptance share the policy check relies on agrees with the closed
// form for disjoint charsets with min-chars 1 (inclusion and exclusion).
func TestAcceptanceAgreesWithInclusionExclusion(t *testing.T) {
	sizes := []float64{26, 26, 10, 1} // the default policy
	total, length := 63.0, 20.0
	want := 0.0
	for mask := 0; mask < 1<<len(sizes); mask++ {
		missing, sign := 0.0, 1.0
		for i, s := range sizes {
			if mask&(1<<i) != 0 {
				missing += s
				sign = -sign
			}
		}
		want += sign * math.Pow((total-missing)/total, length)
	}
	got, err := Default.acceptance()
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(got-want) > 1e-12 {
		t.Fatalf("acceptance %v, want %v", got, want)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestGenerateReportsARandomnessFailure(t *testing.T) {
	if pw, err := Default.Generate(failingReader{}); err == nil || pw != "" {
		t.Fatalf("Generate without randomness: %q, %v", pw, err)
	}
}

func FuzzParsePasswordPolicy(f *testing.F) {
	for _, doc := range documented {
		f.Add(doc.text)
	}
	f.Add("length = 20")
	f.Add(`{"length": 8, "rule": {"charset": {"charset": "ab", "min-chars": 8}}}`)
	f.Add("length = 4\nrule \"charset\" { charset = \"\\u0000\" }")
	f.Fuzz(func(t *testing.T, text string) {
		p, err := Parse(text)
		if err != nil {
			if p != nil {
				t.Fatalf("Parse returned a policy with error %v", err)
			}
			return
		}
		if p.Length() < MinLength || p.Length() > MaxLength || len(p.Rules()) == 0 || p.Charset() == "" {
			t.Fatalf("accepted policy out of bounds: %+v", p)
		}
		pw, err := p.Generate(rand.Reader)
		if err != nil {
			t.Fatalf("an accepted policy failed to generate: %v", err)
		}
		check(t, p, pw)
	})
}

// JSON writers may send whole numbers as 16.0; a fraction is refused.
func TestParseJSONNumbers(t *testing.T) {
	p, err := Parse(`{"length": 16.0, "rule": [{"charset": {"charset": "abc", "min-chars": 2.0}}]}`)
	if err != nil {
		t.Fatal(err)
	}
	if p.Length() != 16 || p.Rules()[0] != (Rule{"abc", 2}) {
		t.Fatalf("parsed length %d, rules %+v", p.Length(), p.Rules())
	}
	for _, text := range []string{
		`{"length": 16.5, "rule": [{"charset": {"charset": "abc"}}]}`,
		`{"length": 16, "rule": [{"charset": {"charset": "abc", "min-chars": 1.5}}]}`,
		`{"length": 1e300, "rule": [{"charset": {"charset": "abc"}}]}`,
	} {
		if _, err := Parse(text); err == nil || !strings.Contains(err.Error(), "whole number") {
			t.Errorf("Parse(%s): %v, want a whole-number error", text, err)
		}
	}
}

// namedPolicies is a Source with policies by name.
type namedPolicies map[string]*Policy

func (n namedPolicies) GeneratePasswordFromPolicy(_ context.Context, name string) (string, error) {
	p, ok := n[name]
	if !ok {
		return "", errors.New("no such policy")
	}
	return p.Generate(rand.Reader)
}

func TestFromPolicy(t *testing.T) {
	ctx := context.Background()
	short, err := Parse("length = 6\nrule \"charset\" { charset = \"q\" }")
	if err != nil {
		t.Fatal(err)
	}
	src := namedPolicies{"short": short}
	if pw, err := FromPolicy(ctx, src, "short"); err != nil || pw != "qqqqqq" {
		t.Fatalf("from the named policy: %q, %v", pw, err)
	}
	pw, err := FromPolicy(ctx, src, "")
	if err != nil {
		t.Fatal(err)
	}
	check(t, Default, pw)
	if _, err := FromPolicy(ctx, src, "missing"); err == nil {
		t.Fatal("a missing policy gave a password")
	}
}
