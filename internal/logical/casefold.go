package logical

import "strings"

// CanonicalCase returns path with the name segments of the first matching
// pattern of patterns lowercased (see Paths.CaseInsensitive), or path
// unchanged when none matches.
func CanonicalCase(patterns []string, path string) string {
	if len(patterns) == 0 {
		return path
	}
	segs := strings.Split(path, "/")
	for _, pat := range patterns {
		ps := strings.Split(pat, "/")
		rest := len(ps) > 0 && ps[len(ps)-1] == "*"
		if rest {
			ps = ps[:len(ps)-1]
			if len(segs) <= len(ps) {
				continue
			}
		} else if len(segs) != len(ps) {
			continue
		}
		match := true
		for i, p := range ps {
			if p != "+" && p != segs[i] {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		out := append([]string(nil), segs...)
		for i, p := range ps {
			if p == "+" {
				out[i] = strings.ToLower(out[i])
			}
		}
		return strings.Join(out, "/")
	}
	return path
}
