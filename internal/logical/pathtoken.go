package logical

import "strings"

// tokenPaths are the request paths that end in a token or an accessor.
// Whatever records a request path (audit entries, the server log) must not
// write that last part in plaintext any more than it writes client_token.
var tokenPaths = []struct {
	prefix   string
	accessor bool
}{
	{"auth/token/lookup/", false},
	{"auth/token/renew/", false},
	{"auth/token/revoke/", false},
	{"auth/token/revoke-orphan/", false},
	{"auth/token/lookup-accessor/", true},
	{"auth/token/revoke-accessor/", true},
}

// SplitPathToken splits a request path (below /v1/) that ends in a token or
// an accessor into the part before it and that secret; secret is "" for
// any other path. The prefix matches in any letter case, so a mistyped path
// that routes nowhere does not leak the token either.
func SplitPathToken(path string) (prefix, secret string, isAccessor bool) {
	for _, p := range tokenPaths {
		if len(path) > len(p.prefix) && strings.EqualFold(path[:len(p.prefix)], p.prefix) {
			return path[:len(p.prefix)], path[len(p.prefix):], p.accessor
		}
	}
	return path, "", false
}

// RedactPathToken returns path with a token or accessor at its end replaced
// by "<redacted>", for logs.
func RedactPathToken(path string) string {
	if prefix, secret, _ := SplitPathToken(path); secret != "" {
		return prefix + "<redacted>"
	}
	return path
}
