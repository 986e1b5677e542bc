package rules

import (
	"encoding/base64"
	"encoding/json"
	"hash/crc32"
	"math"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// The test decodes default.toml with the gitleaks field names the engine reads.
type testConfig struct {
	Title      string          `toml:"title"`
	Rules      []testRule      `toml:"rules"`
	Allowlists []testAllowlist `toml:"allowlists"`
	Allowlist  *testAllowlist  `toml:"allowlist"`
}

type testRule struct {
	ID          string          `toml:"id"`
	Description string          `toml:"description"`
	Regex       string          `toml:"regex"`
	SecretGroup int             `toml:"secretGroup"`
	Entropy     float64         `toml:"entropy"`
	Keywords    []string        `toml:"keywords"`
	Path        string          `toml:"path"`
	Tags        []string        `toml:"tags"`
	Allowlists  []testAllowlist `toml:"allowlists"`

	re     *regexp.Regexp
	allows []compiledAllowlist
}

type testAllowlist struct {
	Description string   `toml:"description"`
	Condition   string   `toml:"condition"`
	Regexes     []string `toml:"regexes"`
	RegexTarget string   `toml:"regexTarget"`
	Paths       []string `toml:"paths"`
	Stopwords   []string `toml:"stopwords"`
}

type compiledAllowlist struct {
	target    string
	regexes   []*regexp.Regexp
	stopwords []string
}

// pathOnlyRules match on a file's path alone and so cannot have keywords.
var pathOnlyRules = []string{"pkcs12-file"}

func loadConfig(t testing.TB) *testConfig {
	t.Helper()
	var cfg testConfig
	md, err := toml.Decode(string(DefaultTOML), &cfg)
	if err != nil {
		t.Fatalf("default.toml does not parse: %v", err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		t.Fatalf("default.toml has keys the gitleaks format does not define: %v", und)
	}
	for i := range cfg.Rules {
		r := &cfg.Rules[i]
		if r.Regex != "" {
			re, err := regexp.Compile(r.Regex)
			if err != nil {
				t.Fatalf("rule %s: regex does not compile: %v", r.ID, err)
			}
			r.re = re
		}
		for _, al := range r.Allowlists {
			r.allows = append(r.allows, compileAllowlist(t, r.ID, al))
		}
	}
	return &cfg
}

func compileAllowlist(t testing.TB, id string, al testAllowlist) compiledAllowlist {
	c := compiledAllowlist{target: al.RegexTarget, stopwords: al.Stopwords}
	for _, s := range al.Regexes {
		re, err := regexp.Compile(s)
		if err != nil {
			t.Fatalf("rule %s: allowlist regex %q does not compile: %v", id, s, err)
		}
		c.regexes = append(c.regexes, re)
	}
	return c
}

func globalAllows(t testing.TB, cfg *testConfig) []compiledAllowlist {
	var out []compiledAllowlist
	for _, al := range cfg.Allowlists {
		out = append(out, compileAllowlist(t, "global", al))
	}
	return out
}

func shannon(s string) float64 {
	if s == "" {
		return 0
	}
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	h := 0.0
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / float64(len(s))
			h -= p * math.Log2(p)
		}
	}
	return h
}

// verdict is why a rule did or did not report a line.
type verdict string

const (
	reported    verdict = "reported"
	noKeyword   verdict = "no keyword near the match"
	noMatch     verdict = "regex did not match"
	lowEntropy  verdict = "below the entropy threshold"
	allowlisted verdict = "allowlisted"
	invalid     verdict = "rejected by Validate"
)

// detect applies one rule to one input the way the engine does: keyword
// gate, regex, secret group, entropy, allowlists, Validate. It returns the
// strongest verdict over all matches.
func detect(r *testRule, global []compiledAllowlist, input string) verdict {
	if r.re == nil {
		return noMatch
	}
	best := noMatch
	rank := map[verdict]int{noMatch: 0, noKeyword: 1, lowEntropy: 2, allowlisted: 3, invalid: 4, reported: 5}
	for _, m := range r.re.FindAllStringSubmatchIndex(input, -1) {
		v := judge(r, global, input, m)
		if rank[v] > rank[best] {
			best = v
		}
	}
	return best
}

// keywordWindow is how far from a match a keyword may be: the engine checks
// only a window around each keyword hit.
const keywordWindow = 64

func judge(r *testRule, global []compiledAllowlist, input string, m []int) verdict {
	match := input[m[0]:m[1]]
	if len(r.Keywords) > 0 {
		lo, hi := max(0, m[0]-keywordWindow), min(len(input), m[1]+keywordWindow)
		window := strings.ToLower(input[lo:hi])
		if !slices.ContainsFunc(r.Keywords, func(k string) bool { return strings.Contains(window, k) }) {
			return noKeyword
		}
	}
	secret := match
	if g := r.SecretGroup; g > 0 && 2*g+1 < len(m) && m[2*g] >= 0 {
		secret = input[m[2*g]:m[2*g+1]]
	} else if g == 0 {
		for i := 1; 2*i+1 < len(m); i++ {
			if m[2*i] >= 0 {
				secret = input[m[2*i]:m[2*i+1]]
				break
			}
		}
	}
	if r.Entropy > 0 && shannon(secret) < r.Entropy {
		return lowEntropy
	}
	for _, al := range append(slices.Clip(r.allows), global...) {
		target := secret
		switch al.target {
		case "match":
			target = match
		case "line":
			target = input
		}
		for _, re := range al.regexes {
			if re.MatchString(target) {
				return allowlisted
			}
		}
		lower := strings.ToLower(secret)
		for _, w := range al.stopwords {
			if strings.Contains(lower, w) {
				return allowlisted
			}
		}
	}
	if !Validate(r.ID, secret) {
		return invalid
	}
	return reported
}

func TestDefaultRulesAreWellFormed(t *testing.T) {
	cfg := loadConfig(t)
	if cfg.Title == "" {
		t.Error("default.toml has no title")
	}
	seen := map[string]bool{}
	lowerKeyword := regexp.MustCompile(`^[^A-Z]{2,40}$`)
	// An unbounded repetition is allowed only on a negated class, which stops
	// at the first excluded character.
	unboundedClass := regexp.MustCompile(`(\[\^?)(?:\\.|[^\]])*\](\*|\+|\{\d+,\})?`)
	unboundedAny := regexp.MustCompile(`(?:^|[^\\])(?:\.|\\[sSwWdD])(?:\*|\+|\{\d+,\})`)
	for _, r := range cfg.Rules {
		if r.ID == "" || r.Description == "" {
			t.Errorf("rule %q needs an id and a description", r.ID)
		}
		if seen[r.ID] {
			t.Errorf("rule id %s is defined twice", r.ID)
		}
		seen[r.ID] = true
		if r.Regex == "" && r.Path == "" {
			t.Errorf("rule %s has neither a regex nor a path", r.ID)
		}
		if len(r.Keywords) == 0 && !slices.Contains(pathOnlyRules, r.ID) {
			t.Errorf("rule %s has no keywords and is not a documented exception", r.ID)
		}
		for _, k := range r.Keywords {
			if !lowerKeyword.MatchString(k) {
				t.Errorf("rule %s: keyword %q must be short and lower-case", r.ID, k)
			}
		}
		if unboundedAny.MatchString(unboundedClass.ReplaceAllString(r.Regex, "C")) {
			t.Errorf("rule %s: regex has an unbounded repetition", r.ID)
		}
		for _, m := range unboundedClass.FindAllStringSubmatch(r.Regex, -1) {
			if m[2] != "" && m[1] != "[^" {
				t.Errorf("rule %s: regex repeats %s without bound", r.ID, m[0])
			}
		}
	}
	if len(cfg.Rules) < 150 {
		t.Errorf("only %d rules; the built-in set must cover gitleaks's ~150 vendors", len(cfg.Rules))
	}
}

type testCase struct {
	Rule string   `toml:"rule"`
	TP   []string `toml:"tp"`
	FP   []string `toml:"fp"`
}

// rulesWithoutContentCases cannot be exercised by strings: path-only rules.
var rulesWithoutContentCases = []string{"pkcs12-file"}

func TestRuleCases(t *testing.T) {
	cfg := loadConfig(t)
	global := globalAllows(t, cfg)
	var file struct {
		Case []testCase `toml:"case"`
	}
	if _, err := toml.DecodeFile("testdata/cases.toml", &file); err != nil {
		t.Fatalf("testdata/cases.toml: %v", err)
	}
	byID := map[string]*testRule{}
	for i := range cfg.Rules {
		byID[cfg.Rules[i].ID] = &cfg.Rules[i]
	}
	tpCount, fpCount := map[string]int{}, map[string]int{}
	for _, c := range file.Case {
		r, ok := byID[c.Rule]
		if !ok {
			t.Errorf("cases.toml names unknown rule %s", c.Rule)
			continue
		}
		for _, in := range c.TP {
			if v := detect(r, global, in); v != reported {
				t.Errorf("rule %s: true positive not reported (%s): %q", c.Rule, v, in)
			}
			tpCount[c.Rule]++
		}
		for _, in := range c.FP {
			if v := detect(r, global, in); v == reported {
				t.Errorf("rule %s: false positive reported: %q", c.Rule, in)
			}
			fpCount[c.Rule]++
		}
	}
	for _, r := range cfg.Rules {
		if slices.Contains(rulesWithoutContentCases, r.ID) {
			continue
		}
		if tpCount[r.ID] == 0 || fpCount[r.ID] == 0 {
			t.Errorf("rule %s: needs true and false positive cases (has %d tp, %d fp)", r.ID, tpCount[r.ID], fpCount[r.ID])
		}
	}
	if testing.Verbose() {
		for _, r := range cfg.Rules {
			t.Logf("coverage %-45s tp=%-3d fp=%d", r.ID, tpCount[r.ID], fpCount[r.ID])
		}
	}
}

// TestGitleaksCompatibility runs gitleaks's public rule test cases against the
// built-in rules with the same ids and reports recall and false-positive rate.
func TestGitleaksCompatibility(t *testing.T) {
	cfg := loadConfig(t)
	global := globalAllows(t, cfg)
	data, err := os.ReadFile("testdata/gitleaks_cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []testCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatalf("testdata/gitleaks_cases.json: %v", err)
	}
	byID := map[string]*testRule{}
	for i := range cfg.Rules {
		byID[cfg.Rules[i].ID] = &cfg.Rules[i]
	}
	var tpHit, tpAll, fpHit, fpAll, tpValidated int
	var missingRules []string
	for _, c := range cases {
		r, ok := byID[c.Rule]
		if !ok {
			missingRules = append(missingRules, c.Rule)
			continue
		}
		var hit, fps int
		for _, in := range c.TP {
			switch detect(r, global, in) {
			case reported:
				hit++
			case invalid:
				tpValidated++
			}
		}
		for _, in := range c.FP {
			if detect(r, global, in) == reported {
				fps++
			}
		}
		tpHit, tpAll, fpHit, fpAll = tpHit+hit, tpAll+len(c.TP), fpHit+fps, fpAll+len(c.FP)
		if testing.Verbose() && (hit < len(c.TP) || fps > 0) {
			t.Logf("gitleaks %-45s recall %d/%d, false positives %d/%d", c.Rule, hit, len(c.TP), fps, len(c.FP))
		}
	}
	sort.Strings(missingRules)
	recall := float64(tpHit) / float64(max(tpAll, 1))
	fpRate := float64(fpHit) / float64(max(fpAll, 1))
	t.Logf("gitleaks cases: %d rules compared, %d without an Arca rule %v", len(cases)-len(missingRules), len(missingRules), missingRules)
	t.Logf("gitleaks cases: recall %.1f%% (%d/%d), false-positive rate %.1f%% (%d/%d)", 100*recall, tpHit, tpAll, 100*fpRate, fpHit, fpAll)
	// gitleaks's generated true positives are random strings: GitHub and npm
	// tokens without a valid checksum, JWTs that do not decode, "12345678-ABCD"
	// filler. Validate rejects those on purpose; count them apart.
	t.Logf("gitleaks cases: %d true positives matched a rule but were rejected by Validate; recall before validation %.1f%%",
		tpValidated, 100*float64(tpHit+tpValidated)/float64(max(tpAll, 1)))
	if recall < minGitleaksRecall {
		t.Errorf("recall on gitleaks's true positives fell to %.3f (floor %.2f)", recall, minGitleaksRecall)
	}
	if fpRate > maxGitleaksFPRate {
		t.Errorf("false-positive rate on gitleaks's false positives rose to %.3f (ceiling %.2f)", fpRate, maxGitleaksFPRate)
	}
}

// Floors set from the measured figures, so a regression fails the test.
const (
	minGitleaksRecall = 0.92
	maxGitleaksFPRate = 0.07
)

func ghToken(prefix, body string) string {
	return prefix + body + encodeBase62CRC(crc32.ChecksumIEEE([]byte(body)))
}

func TestValidateChecksums(t *testing.T) {
	body := "Zq8VhW3kR9mPx2LcT7bN4sJd6FgY1a"
	for _, id := range []string{"github-pat", "github-oauth", "github-app-token", "github-refresh-token", "npm-access-token"} {
		prefix := map[string]string{"github-pat": "ghp_", "github-oauth": "gho_", "github-app-token": "ghs_", "github-refresh-token": "ghr_", "npm-access-token": "npm_"}[id]
		good := ghToken(prefix, body)
		if !Validate(id, good) {
			t.Errorf("%s: valid checksum rejected", id)
		}
		bad := good[:len(good)-1] + string(rune('0'+(good[len(good)-1]-'0'+1)%10))
		if Validate(id, bad) {
			t.Errorf("%s: wrong checksum accepted", id)
		}
		if Validate(id, good[:len(good)-1]) {
			t.Errorf("%s: truncated token accepted", id)
		}
	}
	if got := encodeBase62CRC(0); got != "000000" {
		t.Errorf("encodeBase62CRC(0) = %q, want 000000", got)
	}
	if got := encodeBase62CRC(61); got != "00000z" {
		t.Errorf("encodeBase62CRC(61) = %q, want 00000z", got)
	}
}

func b64url(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestValidateJWT(t *testing.T) {
	sig := b64url("0123456789abcdef0123456789abcdef")
	for _, tc := range []struct {
		name, token string
		want        bool
	}{
		{"signed", b64url(`{"alg":"HS256","typ":"JWT"}`) + "." + b64url(`{"sub":"42"}`) + "." + sig, true},
		{"unsigned", b64url(`{"alg":"none"}`) + "." + b64url(`{"sub":"42"}`) + ".", true},
		{"no alg", b64url(`{"typ":"JWT"}`) + "." + b64url(`{"sub":"42"}`) + "." + sig, false},
		{"payload not JSON", b64url(`{"alg":"HS256"}`) + "." + b64url(`not json`) + "." + sig, false},
		{"header not base64", "eyJ!!!." + b64url(`{"sub":"42"}`) + "." + sig, false},
		{"one part", b64url(`{"alg":"HS256"}`), false},
	} {
		if got := Validate("jwt", tc.token); got != tc.want {
			t.Errorf("%s: Validate = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestValidatePEM(t *testing.T) {
	raw := make([]byte, 300)
	for i := range raw {
		raw[i] = byte(i*37 + 11)
	}
	body := base64.StdEncoding.EncodeToString(raw)
	wrap := func(label, b string) string {
		return "-----BEGIN " + label + "-----\n" + b[:64] + "\n" + b[64:] + "\n-----END " + label + "-----"
	}
	for _, tc := range []struct {
		name, block string
		want        bool
	}{
		{"rsa", wrap("RSA PRIVATE KEY", body), true},
		{"pkcs8", wrap("PRIVATE KEY", body), true},
		{"encrypted with headers", "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00FF\n\n" + body + "\n-----END RSA PRIVATE KEY-----", true},
		{"json escaped", strings.ReplaceAll(wrap("PRIVATE KEY", body), "\n", `\n`), true},
		{"public key", wrap("PUBLIC KEY", body), false},
		{"certificate", wrap("CERTIFICATE", body), false},
		{"not base64", wrap("PRIVATE KEY", strings.Repeat("!not base64 at all", 10)), false},
		{"too short", "-----BEGIN PRIVATE KEY-----\nMIIBVQ==\n-----END PRIVATE KEY-----", false},
		{"filler", wrap("PRIVATE KEY", strings.Repeat("A", 400)), false},
		{"no footer", "-----BEGIN PRIVATE KEY-----\n" + body, false},
	} {
		if got := Validate("private-key", tc.block); got != tc.want {
			t.Errorf("%s: Validate = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestValidatePlaceholdersAndReferences(t *testing.T) {
	rejected := []string{
		"CHANGE_ME", "changeme", "${DB_PASSWORD}", "$DB_PASSWORD", "{{ .Values.password }}",
		"<your-key>", "xxxxxxxxxxxxxxxx", "****************", "AKIAIOSFODNN7EXAMPLE",
		"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "your_api_key_here", "aaaaaaaaaaaa",
		"abcdefghijklmnop", "12345678901", "var.db_password", "local.token", "os.environ[\"KEY\"]",
		"process.env.API_KEY", "os.Getenv(\"TOKEN\")", "ENV[\"SECRET\"]", "${{ secrets.NPM_TOKEN }}",
		"%NUGET_PASSWORD%", "secrets.GITHUB_TOKEN", "vault:secret/data/app#password",
	}
	for _, s := range rejected {
		if Validate("stripe-access-token", s) {
			t.Errorf("placeholder or reference %q accepted", s)
		}
	}
	genericRejected := []string{
		"3f786850e387550fdab836ed7e6dc881de23001b", "123e4567-e89b-12d3-a456-426614174000",
		"sha512-aGVsbG8gd29ybGQgdGhpcyBpcyBhIGxvY2tmaWxlIGhhc2g=", "database_password_prod",
		"bearerTokenValue", "API_TOKEN_NAME", "getPassword()", "onlylowercaseletters",
	}
	for _, s := range genericRejected {
		if Validate("generic-api-key", s) {
			t.Errorf("generic: non-secret %q accepted", s)
		}
	}
	for _, s := range []string{"Zq8VhW3kR9mPx2LcT7bN", "s3cr3t-P4ssw0rd!", "hX9#kL2$mQ7"} {
		if !Validate("generic-api-key", s) {
			t.Errorf("generic: secret-looking value rejected")
		}
	}
	if Validate("aws-access-token", "") {
		t.Error("empty secret accepted")
	}
}

func FuzzValidate(f *testing.F) {
	ids := []string{"github-pat", "npm-access-token", "jwt", "private-key", "generic-api-key", "aws-access-token"}
	f.Add(0, "ghp_Zq8VhW3kR9mPx2LcT7bN4sJd6FgY1a000000")
	f.Add(2, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln")
	f.Add(3, "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----")
	f.Add(4, "${{ secrets.X }}")
	f.Add(3, "-----BEGIN PRIVATE KEY----------END X-----")
	f.Fuzz(func(t *testing.T, i int, secret string) {
		Validate(ids[uint(i)%uint(len(ids))], secret)
	})
}

// BenchmarkValidate measures Validate on the secrets the rules extract from
// every case in cases.toml, true and false positives alike.
func BenchmarkValidate(b *testing.B) {
	cfg := loadConfig(b)
	byID := map[string]*testRule{}
	for i := range cfg.Rules {
		byID[cfg.Rules[i].ID] = &cfg.Rules[i]
	}
	var file struct {
		Case []testCase `toml:"case"`
	}
	if _, err := toml.DecodeFile("testdata/cases.toml", &file); err != nil {
		b.Fatal(err)
	}
	type cand struct{ id, s string }
	var cands []cand
	for _, c := range file.Case {
		r := byID[c.Rule]
		if r == nil || r.re == nil {
			continue
		}
		for _, in := range append(c.TP, c.FP...) {
			m := r.re.FindStringSubmatch(in)
			if m == nil {
				continue
			}
			secret := m[0]
			for _, g := range m[1:] {
				if g != "" {
					secret = g
					break
				}
			}
			cands = append(cands, cand{c.Rule, secret})
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := cands[i%len(cands)]
		Validate(c.id, c.s)
	}
}

func TestValidateRuleSpecificBranches(t *testing.T) {
	for _, tc := range []struct {
		rule, secret string
		want         bool
	}{
		{"vault-service-token", "s.Xk3mP9qL2wR7tY5vB8nC4dF6", true},
		{"vault-service-token", "s.AcceptanceTimeoutSecond", false},
		{"vault-service-token", "hvs.CAESIJk3mP9qL2wR7tY5vB8nC4dF6gH1jK0lZ", true},
		{"curl-auth-user", "admin:Xk3mP9qL2wR7", true},
		{"curl-auth-user", "admin:password", false},
		{"curl-auth-user", "$USER:$PASS", false},
		{"database-url-password", "app:${DB_PASSWORD}", false},
		{"atlassian-api-token", "searchConfluenceUsingCql", false},
		{"generic-api-key", "AfsGMoWJTyWiasGIdGya", true},
		{"generic-api-key", "SecretValue", false},
	} {
		if got := Validate(tc.rule, tc.secret); got != tc.want {
			t.Errorf("Validate(%s, %q) = %v, want %v", tc.rule, tc.secret, got, tc.want)
		}
	}
}

func TestGlobalPathAllowlist(t *testing.T) {
	cfg := loadConfig(t)
	var paths []*regexp.Regexp
	for _, al := range cfg.Allowlists {
		for _, p := range al.Paths {
			paths = append(paths, regexp.MustCompile(p))
		}
	}
	allowed := func(path string) bool {
		return slices.ContainsFunc(paths, func(re *regexp.Regexp) bool { return re.MatchString(path) })
	}
	for _, p := range []string{"package-lock.json", "web/yarn.lock", "go.sum", "a/node_modules/x/index.js", "static/app.min.js", "infra/.terraform.lock.hcl"} {
		if !allowed(p) {
			t.Errorf("path %s should be skipped", p)
		}
	}
	for _, p := range []string{"config/app.env", "main.go", "terraform.tfstate", "secrets.zip", "keys/server.p12", "src/lock.go"} {
		if allowed(p) {
			t.Errorf("path %s must be scanned", p)
		}
	}
}
