package jwt

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

func decodeSegment(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// getClaim returns a claim by name, or by JSON pointer (RFC 6901) when the
// name starts with "/"; nil when absent. Numbers come back as json.Number.
func getClaim(claims map[string]any, name string) any {
	if !strings.HasPrefix(name, "/") {
		return normalizeNumber(claims[name])
	}
	var cur any = claims
	for _, tok := range strings.Split(name[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[tok]
			if !ok {
				return nil
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	return normalizeNumber(cur)
}

// normalizeNumber turns any JSON number into a json.Number in canonical
// form (integers without a fraction), so a bound claim stored as 5 matches
// a token's 5.0 and the other way round.
func normalizeNumber(v any) any {
	var f float64
	switch n := v.(type) {
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return json.Number(strconv.FormatInt(i, 10))
		}
		x, err := n.Float64()
		if err != nil {
			return v
		}
		f = x
	case float64:
		f = n
	case int:
		return json.Number(strconv.Itoa(n))
	case int64:
		return json.Number(strconv.FormatInt(n, 10))
	default:
		return v
	}
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return json.Number(strconv.FormatInt(int64(f), 10))
	}
	return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
}

// normalizeList turns a claim value into a list of scalars: a scalar becomes
// a one-element list. ok is false for objects and other shapes.
func normalizeList(raw any) ([]any, bool) {
	switch v := raw.(type) {
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = normalizeNumber(x)
		}
		return out, true
	case []string:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = x
		}
		return out, true
	case string, bool:
		return []any{v}, true
	case json.Number, float64, int, int64:
		return []any{normalizeNumber(v)}, true
	}
	return nil, false
}

// checkBoundClaims checks that every bound claim is present and that one of
// its values matches one of the token's values for it.
func checkBoundClaims(globs bool, bound map[string]any, claims map[string]any) error {
	names := make([]string, 0, len(bound))
	for k := range bound {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, name := range names {
		got := getClaim(claims, name)
		if got == nil {
			return fmt.Errorf("claim %q is missing", name)
		}
		gotVals, ok := normalizeList(got)
		if !ok {
			return fmt.Errorf("claim %q is not a string, number, bool or list of them", name)
		}
		wantVals, ok := normalizeList(bound[name])
		if !ok {
			return fmt.Errorf("bound claim %q is not a string, number, bool or list of them", name)
		}
		if !matchAny(wantVals, gotVals, globs) {
			return fmt.Errorf("claim %q does not match any associated bound claim values", name)
		}
	}
	return nil
}

func matchAny(want, got []any, globs bool) bool {
	for _, w := range want {
		for _, g := range got {
			if globs {
				ws, ok1 := w.(string)
				gs, ok2 := g.(string)
				if ok1 && ok2 && globMatch(ws, gs) {
					return true
				}
				continue
			}
			if w == g {
				return true
			}
		}
	}
	return false
}

// globMatch reports whether s matches pattern, where "*" matches any run of
// characters (including "/") and every other character only itself.
func globMatch(pattern, s string) bool {
	if pattern == "*" {
		return true
	}
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}

// extractMetadata copies the mapped claims into metadata; a mapped claim
// that is absent is skipped, one that is not a string (or number, bool)
// is an error.
func extractMetadata(claims map[string]any, mappings map[string]string) (map[string]string, error) {
	md := make(map[string]string, len(mappings)+1)
	for src, dst := range mappings {
		v := getClaim(claims, src)
		switch x := v.(type) {
		case nil:
		case string:
			md[dst] = x
		case json.Number:
			md[dst] = x.String()
		case bool:
			md[dst] = strconv.FormatBool(x)
		default:
			return nil, fmt.Errorf("error converting claim %q to string", src)
		}
	}
	return md, nil
}

// numericDate reads a time claim; ok is false when it is absent.
func numericDate(claims map[string]any, name string) (time.Time, bool, error) {
	v, present := claims[name]
	if !present || v == nil {
		return time.Time{}, false, nil
	}
	n, ok := normalizeNumber(v).(json.Number)
	if !ok {
		return time.Time{}, false, fmt.Errorf("claim %q is not a number", name)
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return time.Time{}, false, fmt.Errorf("claim %q is not a number", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// checkTimes checks exp, nbf and iat against now with the role's leeways.
// A token must carry at least one of them; with no exp, its nbf or iat
// stands in for it (so it lives for the leeways only).
func checkTimes(claims map[string]any, now time.Time, r *role) error {
	skew := leeway(r.ClockSkewLeeway, defaultClockSkewLeeway)
	expLeeway := leeway(r.ExpirationLeeway, defaultExpNbfLeeway)
	nbfLeeway := leeway(r.NotBeforeLeeway, defaultExpNbfLeeway)
	exp, hasExp, err := numericDate(claims, "exp")
	if err != nil {
		return err
	}
	nbf, hasNbf, err := numericDate(claims, "nbf")
	if err != nil {
		return err
	}
	iat, hasIat, err := numericDate(claims, "iat")
	if err != nil {
		return err
	}
	if !hasExp && !hasNbf && !hasIat {
		return fmt.Errorf("no issue time (iat), not before time (nbf), or expiration time (exp) claims in token")
	}
	start := iat
	if hasNbf && (!hasIat || nbf.After(iat)) {
		start = nbf
	}
	if !hasExp {
		exp = start
	}
	if now.After(exp.Add(expLeeway + skew)) {
		return fmt.Errorf("the token has expired (exp %s)", exp.UTC().Format(time.RFC3339))
	}
	if hasNbf && now.Add(nbfLeeway+skew).Before(nbf) {
		return fmt.Errorf("the token is not yet valid (nbf %s)", nbf.UTC().Format(time.RFC3339))
	}
	if hasIat && now.Add(skew).Before(iat) {
		return fmt.Errorf("the token was issued in the future (iat %s)", iat.UTC().Format(time.RFC3339))
	}
	return nil
}

// audiences returns the "aud" claim as a list (a single string becomes one).
func audiences(claims map[string]any) ([]string, error) {
	switch a := claims["aud"].(type) {
	case nil:
		return nil, nil
	case string:
		return []string{a}, nil
	case []any:
		out := make([]string, 0, len(a))
		for _, x := range a {
			s, ok := x.(string)
			if !ok {
				return nil, fmt.Errorf("the aud claim holds a value that is not a string")
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("the aud claim is not a string or list of strings")
}
