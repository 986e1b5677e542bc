// Package rules holds Arca's built-in secret-detection rules and the offline
// validators that reject candidates which match a rule's shape but cannot be
// real secrets: bad checksums, undecodable JWTs and PEM blocks, placeholders,
// documented examples and references to values kept elsewhere.
//
// The rules are in gitleaks's TOML configuration format (DefaultTOML), so the
// engine loads built-in and user rules with one parser.
package rules

import (
	"bytes"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"hash/crc32"
	"regexp"
	"strings"
)

// DefaultTOML is the built-in rule set in gitleaks's configuration format.
//
//go:embed default.toml
var DefaultTOML []byte

// Validate reports whether secret, reported by the rule ruleID, can be a real
// secret. It returns false for candidates that are certainly not: tokens whose
// embedded checksum is wrong, JWTs and PEM keys that do not decode, placeholders,
// documented example values and references to secrets stored elsewhere. It is
// called on every candidate, so it allocates little and never panics.
func Validate(ruleID, secret string) bool {
	if secret == "" || isPlaceholder(secret) {
		return false
	}
	switch ruleID {
	case "github-pat", "github-oauth", "github-app-token", "github-refresh-token":
		return validBase62Checksum(secret, 4)
	case "npm-access-token":
		return validBase62Checksum(secret, 4)
	case "jwt":
		return validJWT(secret)
	case "jwt-base64":
		raw, err := base64.StdEncoding.DecodeString(secret)
		if err != nil {
			raw, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(secret, "="))
		}
		return err == nil && jwtShaped(strings.TrimSpace(string(raw)))
	case "private-key":
		return validPrivateKeyPEM(secret)
	case "generic-api-key", "hashicorp-tf-password", "kubernetes-secret-yaml":
		return plausibleGenericSecret(secret)
	case "vault-service-token":
		// Legacy "s." tokens are 24 random base62 characters; words and
		// identifiers of that length lack digits.
		return !strings.HasPrefix(secret, "s.") || strings.ContainsAny(secret, "0123456789")
	case "curl-auth-user", "database-url-password", "url-basic-auth-password":
		// user:password pairs: judge the password alone.
		if _, pw, ok := strings.Cut(secret, ":"); ok {
			return !isPlaceholder(pw)
		}
	}
	return true
}

// validBase62Checksum checks the GitHub/npm token layout: a prefix of
// prefixLen bytes, 30 random base62 characters, then the CRC32 of those 30
// characters in 6 base62 digits.
func validBase62Checksum(token string, prefixLen int) bool {
	if len(token) != prefixLen+36 {
		return false
	}
	body, sum := token[prefixLen:prefixLen+30], token[prefixLen+30:]
	return encodeBase62CRC(crc32.ChecksumIEEE([]byte(body))) == sum
}

const base62Digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// encodeBase62CRC encodes a CRC32 value as 6 base62 digits, zero-padded on the
// left (62^6 > 2^32, so 6 digits always suffice).
func encodeBase62CRC(v uint32) string {
	var b [6]byte
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = base62Digits[v%62]
		v /= 62
	}
	return string(b[:])
}

// validJWT requires a header that is a JSON object naming an algorithm and a
// payload that is a JSON object; the signature is opaque.
func validJWT(token string) bool {
	parts := strings.SplitN(token, ".", 4)
	if len(parts) < 2 || len(parts) > 3 {
		return false
	}
	var header struct {
		Alg string `json:"alg"`
	}
	hdr, err := decodeBase64URL(parts[0])
	if err != nil || json.Unmarshal(hdr, &header) != nil || header.Alg == "" {
		return false
	}
	payload, err := decodeBase64URL(parts[1])
	if err != nil {
		return false
	}
	var claims map[string]json.RawMessage
	return json.Unmarshal(payload, &claims) == nil
}

// jwtKeys are names a JWT's first part starts with in practice: the
// registered JOSE header parameters (RFC 7515, 7516, 7797, 8225), JWT
// claims (RFC 7519) for tokens built the other way round, and JWK members
// (RFC 7517) for headers that embed a key.
var jwtKeys = map[string]bool{
	"alg": true, "jku": true, "jwk": true, "kid": true, "x5u": true, "x5c": true, "x5t": true, "x5t#S256": true,
	"typ": true, "cty": true, "crit": true, "enc": true, "zip": true, "epk": true, "apu": true, "apv": true,
	"iv": true, "tag": true, "p2s": true, "p2c": true, "b64": true, "ppt": true, "svt": true, "url": true, "nonce": true,
	"iss": true, "sub": true, "aud": true, "exp": true, "nbf": true, "iat": true, "jti": true,
	"kty": true, "use": true, "key_ops": true, "ver": true, "version": true,
}

// jwtShaped reports whether token is header.payload[.signature] with a JSON
// object in both parts and a name from jwtKeys in the first. It does not
// insist on alg: tokens whose header holds only x5c, jku or zip exist.
func jwtShaped(token string) bool {
	parts := strings.SplitN(token, ".", 4)
	if len(parts) < 2 || len(parts) > 3 {
		return false
	}
	var header, payload map[string]json.RawMessage
	h, err := decodeBase64URL(parts[0])
	if err != nil || json.Unmarshal(h, &header) != nil {
		return false
	}
	p, err := decodeBase64URL(parts[1])
	if err != nil || json.Unmarshal(p, &payload) != nil {
		return false
	}
	for k := range header {
		if jwtKeys[k] {
			return true
		}
	}
	return false
}

func decodeBase64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// pemArmor finds the BEGIN and END lines of an armored block.
var pemArmor = regexp.MustCompile(`-----BEGIN ([A-Z0-9 _-]{0,60})-----|-----END [A-Z0-9 _-]{0,60}-----`)

// minKeyBytes is the smallest plausible private key body: a raw Ed25519 seed
// wrapped in PKCS #8 is 48 bytes; anything shorter is a truncated example.
const minKeyBytes = 48

// validPrivateKeyPEM requires the block to be a private key (not a public key
// or certificate) whose body, after removing armor headers and the escapes a
// key picks up inside JSON or YAML strings, is valid base64 of plausible size.
func validPrivateKeyPEM(block string) bool {
	locs := pemArmor.FindAllStringSubmatchIndex(block, -1)
	if len(locs) < 2 || locs[0][2] < 0 {
		return false
	}
	label := strings.ToUpper(block[locs[0][2]:locs[0][3]])
	if !strings.Contains(label, "PRIVATE KEY") {
		return false
	}
	body := block[locs[0][1]:locs[1][0]]
	var clean bytes.Buffer
	for _, line := range splitPEMLines(body) {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case strings.Contains(line, ":"): // RFC 1421 headers: Proc-Type, DEK-Info, Version
		case strings.HasPrefix(line, "=") && len(line) == 5: // OpenPGP armor checksum
		default:
			clean.WriteString(line)
		}
	}
	if strings.Contains(label, "PGP") {
		return clean.Len() >= minKeyBytes
	}
	raw, err := base64.StdEncoding.DecodeString(clean.String())
	if err != nil || len(raw) < minKeyBytes {
		return false
	}
	return !lowVariety(clean.String())
}

// splitPEMLines splits on real line breaks and on the literal "\n" and "\r"
// escapes of keys stored in JSON, YAML or shell strings, and drops quote and
// concatenation debris left by multi-line string literals.
func splitPEMLines(body string) []string {
	body = strings.NewReplacer(`\r\n`, "\n", `\n`, "\n", `\r`, "\n", "\r", "", `"`, "", "'", "").Replace(body)
	return strings.Split(body, "\n")
}

// lowVariety reports a value made of very few distinct characters, like
// "AAAAAAAA" or "xXxXxXxX".
func lowVariety(s string) bool {
	if len(s) < 8 {
		return false
	}
	var seen [256]bool
	n := 0
	for i := 0; i < len(s); i++ {
		if !seen[s[i]] {
			seen[s[i]] = true
			n++
		}
	}
	return n <= 3 || (len(s) >= 32 && n <= 6)
}

// Placeholder and reference detection. The lists are data so adding a
// pattern is a one-line change; everything compiles once at start-up.
var (
	// placeholderWords are case-insensitive fragments that only appear in
	// values written to be replaced.
	placeholderWords = []string{
		"example", "changeme", "change_me", "change-me", "changeit", "placeholder",
		"replace_me", "replaceme", "replace-me", "your_", "your-", "yourkey", "yoursecret",
		"yourtoken", "yourpassword", "_here", "-here", "insert_", "redacted", "dummy",
		"notasecret", "not_a_secret", "not-a-secret", "xxxxx", "*****", "•••", "...",
	}
	placeholderLower = lowerAll(placeholderWords)

	// weakDefaults are values that stand for "a password goes here" in
	// documentation and sample configuration; matched whole, ignoring case.
	weakDefaults = map[string]bool{
		"password": true, "passw0rd": true, "p@ssw0rd": true, "p@ssword": true, "secret": true,
		"changeit": true, "admin": true, "root": true, "guest": true, "test": true, "testing": true,
		"user": true, "username": true, "pass": true, "pwd": true, "token": true, "apikey": true,
		"api_key": true, "mysecret": true, "mypassword": true, "letmein": true, "qwerty": true,
		"default": true, "foobar": true, "foo": true, "bar": true, "secret123": true, "password123": true,
		"password1": true, "admin123": true, "hunter2": true, "s3cr3t": true,
	}

	// documentedExamples are well-known sample credentials from vendor docs.
	documentedExamples = map[string]bool{
		"AKIAIOSFODNN7EXAMPLE":                     true,
		"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY": true,
		"je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY": true,
	}

	// placeholderShapes match whole values that are templates or references.
	placeholderShapes = regexp.MustCompile(`^(?:` +
		`\$\{[^}]{1,200}\}` + // ${VAR}, ${var.x}
		`|\$\([^)]{1,200}\)` + // $(command)
		`|\$[A-Z_][A-Z0-9_]{0,100}` + // $VAR
		`|%[A-Za-z_][A-Za-z0-9_]{0,100}%` + // %VAR% (Windows, NuGet)
		`|\{\{.{0,200}\}\}` + // {{ .x }}, ${{ secrets.X }} after trimming
		`|#\{[^}]{1,200}\}` + // #{ruby}
		`|<[^<>]{1,100}>` + // <your-key>
		`|\[[A-Za-z _-]{1,100}\]` + // [API KEY]
		`)$`)

	// references are code that reads a secret from somewhere else.
	references = regexp.MustCompile(`(?i)^(?:` +
		`(?:var|local|module|data|each|self|path|terraform)\.[A-Za-z_][\w.\[\]"-]{0,200}` +
		`|(?:os\.)?environ(?:\.get)?[\[(].{0,200}` +
		`|(?:os\.|System\.)?getenv\(.{0,200}` +
		`|process\.env\.[\w.]{1,200}` +
		`|(?:ENV|env)\[.{0,200}` +
		`|\$\{\{.{0,200}\}\}` +
		`|(?:secrets|vars|inputs|env|config|settings|params|context)\.[A-Za-z_][\w.]{0,200}` +
		`|(?:vault|secret|ssm|awssm|gcpsm|azkv|op|doppler|sops):[\w/.:#-]{1,200}` +
		`)$`)

	// identifierShapes are camelCase and PascalCase words such as
	// "searchConfluenceUsingCql": code, not random tokens.
	identifierShapes = regexp.MustCompile(`^(?:[a-z]+(?:[A-Z][a-z]+)+|[A-Z][a-z]+(?:[A-Z][a-z]+)+)$`)

	// nonSecretShapes are values that are identifiers, not credentials; they
	// only disqualify candidates of the generic rule.
	nonSecretShapes = regexp.MustCompile(`^(?:` +
		`[0-9a-fA-F]{40}` + // git commit SHA-1
		`|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}` + // UUID
		`|sha(?:1|256|384|512)-[A-Za-z0-9+/]{20,}={0,2}` + // lockfile integrity hashes
		`|(?:sha1|sha256|sha512|md5):[0-9a-fA-F]{32,128}` + // digests
		`|[a-z]+(?:[_.-][a-z]+)*` + // snake_case / dotted identifiers
		`|[A-Z]+(?:_[A-Z]+)*` + // CONSTANT_NAMES
		`|[\w.-]+\(.*` + // function calls
		`)$`)
)

func lowerAll(words []string) []string {
	out := make([]string, len(words))
	for i, w := range words {
		out[i] = strings.ToLower(w)
	}
	return out
}

// isPlaceholder reports values that are templates, references, documented
// examples or filler, for any rule.
func isPlaceholder(secret string) bool {
	s := strings.Trim(secret, "\"'` ")
	if s == "" {
		return true
	}
	if documentedExamples[s] {
		return true
	}
	lower := strings.ToLower(s)
	if weakDefaults[lower] {
		return true
	}
	for _, w := range placeholderLower {
		if strings.Contains(lower, w) {
			return true
		}
	}
	// The shape regexes only run on values that could match them: most
	// candidates are plain tokens and skip both.
	if strings.IndexByte("${<%#[", s[0]) >= 0 && placeholderShapes.MatchString(s) {
		return true
	}
	if strings.ContainsAny(s, ".([:") && references.MatchString(s) {
		return true
	}
	return identifierShapes.MatchString(s) || lowVariety(s) || hasSequentialRun(s, 8) || hasRepeatedRun(s)
}

// hasSequentialRun reports a run of n ascending or descending neighbours,
// such as "12345678" or "abcdefgh".
func hasSequentialRun(s string, n int) bool {
	up, down := 1, 1
	for i := 1; i < len(s); i++ {
		switch int(s[i]) - int(s[i-1]) {
		case 1:
			up, down = up+1, 1
		case -1:
			up, down = 1, down+1
		default:
			up, down = 1, 1
		}
		if up >= n || down >= n {
			return true
		}
	}
	return false
}

// hasRepeatedRun reports a value dominated by one repeated character: a run
// covering at least half of a value of 8 or more characters.
func hasRepeatedRun(s string) bool {
	if len(s) < 8 {
		return false
	}
	run, longest := 1, 1
	for i := 1; i < len(s); i++ {
		if s[i] == s[i-1] {
			run++
			longest = max(longest, run)
		} else {
			run = 1
		}
	}
	return longest*2 >= len(s)
}

// plausibleGenericSecret applies the extra scrutiny the keyword-assignment
// rules need: their values have no vendor prefix, so identifiers, hashes,
// UUIDs and plain words are rejected, and a value must mix character classes.
func plausibleGenericSecret(secret string) bool {
	s := strings.Trim(secret, "\"'` ")
	if nonSecretShapes.MatchString(s) {
		return false
	}
	var lower, upper, digit, symbol bool
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z':
			lower = true
		case c >= 'A' && c <= 'Z':
			upper = true
		case c >= '0' && c <= '9':
			digit = true
		default:
			symbol = true
		}
	}
	classes := 0
	for _, b := range []bool{lower, upper, digit, symbol} {
		if b {
			classes++
		}
	}
	// Mixed-case letters alone pass only at token length: short ones are words.
	return classes >= 2 && (digit || (symbol && (lower || upper)) || len(s) >= 16)
}
