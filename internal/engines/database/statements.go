package database

import (
	"fmt"
	"strings"
	"time"
)

// expirationLayout is how {{expiration}} is written into statements: a
// timestamp PostgreSQL's VALID UNTIL reads, in UTC.
const expirationLayout = "2006-01-02 15:04:05-0700"

// splitStatements splits each of stmts at the semicolons that end an SQL
// statement, ignoring those inside quoted strings, quoted identifiers,
// dollar-quoted bodies and comments, and drops empty statements. Templates
// are split before values are substituted, so no value can add a statement.
func splitStatements(stmts []string) []string {
	var out []string
	for _, s := range stmts {
		out = append(out, splitSQL(s)...)
	}
	return out
}

func splitSQL(s string) []string {
	var out []string
	start := 0
	emit := func(end int) {
		if stmt := strings.TrimSpace(s[start:end]); stmt != "" {
			out = append(out, stmt)
		}
		start = end + 1
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ';':
			emit(i)
		case c == '\'' || c == '"':
			// A doubled quote inside is an escaped quote: it closes and
			// reopens, which this loop handles as two quoted runs.
			if j := strings.IndexByte(s[i+1:], c); j >= 0 {
				i += j + 1
			} else {
				i = len(s)
			}
		case c == '-' && strings.HasPrefix(s[i:], "--"):
			if j := strings.IndexByte(s[i:], '\n'); j >= 0 {
				i += j
			} else {
				i = len(s)
			}
		case c == '/' && strings.HasPrefix(s[i:], "/*"):
			i = endOfBlockComment(s, i)
		case c == '$':
			if tag, ok := dollarTag(s[i:]); ok {
				if j := strings.Index(s[i+len(tag):], tag); j >= 0 {
					i += len(tag) + j + len(tag) - 1
				} else {
					i = len(s)
				}
			}
		}
	}
	emit(len(s))
	return out
}

// endOfBlockComment returns the index of the last byte of the (possibly
// nested, as PostgreSQL allows) block comment that starts at i.
func endOfBlockComment(s string, i int) int {
	depth := 0
	for ; i < len(s)-1; i++ {
		switch s[i : i+2] {
		case "/*":
			depth++
			i++
		case "*/":
			depth--
			i++
			if depth == 0 {
				return i
			}
		}
	}
	return len(s)
}

// dollarTag returns the opening tag of a dollar-quoted string ($$ or
// $name$) at the start of s. A positional parameter ($1) is not one.
func dollarTag(s string) (string, bool) {
	for j := 1; j < len(s); j++ {
		c := s[j]
		switch {
		case c == '$':
			return s[:j+1], true
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80:
		case c >= '0' && c <= '9' && j > 1:
		default:
			return "", false
		}
	}
	return "", false
}

// substitution is what a statement template's placeholders stand for.
type substitution struct {
	name       string // {{name}} and {{username}}
	password   string // {{password}}
	expiration time.Time
}

// render substitutes the placeholders in every statement. The values are
// Arca's own (generated names and passwords); a value that could end a
// quoted string is refused rather than escaped, since the template decides
// the quoting.
func (s substitution) render(stmts []string) ([]string, error) {
	for what, v := range map[string]string{"username": s.name, "password": s.password} {
		if i := strings.IndexAny(v, "'\"\\;\x00"); i >= 0 {
			return nil, fmt.Errorf("the %s contains the character %q, which cannot be placed in an SQL statement safely", what, v[i])
		}
	}
	exp := ""
	if !s.expiration.IsZero() {
		exp = s.expiration.UTC().Format(expirationLayout)
	}
	r := strings.NewReplacer("{{name}}", s.name, "{{username}}", s.name, "{{password}}", s.password, "{{expiration}}", exp)
	out := make([]string, len(stmts))
	for i, stmt := range stmts {
		out[i] = r.Replace(stmt)
	}
	return out, nil
}
