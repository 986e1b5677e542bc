package policy

import (
	"fmt"
	"strings"
)

// Templated policies. A path may hold identity templates such as
// {{identity.entity.name}}, filled for each caller from its identity entity
// before the policy is compiled into that caller's ACL. A path whose
// templates cannot all be filled for a caller is left out of that caller's
// ACL, as Vault does.

// templateKeyValid reports whether key is one of the identity template
// names Arca fills.
func templateKeyValid(key string) bool {
	parts := strings.Split(key, ".")
	if len(parts) < 3 || parts[0] != "identity" {
		return false
	}
	switch parts[1] {
	case "entity":
		switch {
		case len(parts) == 3:
			return parts[2] == "id" || parts[2] == "name"
		case parts[2] == "metadata":
			return len(parts) == 4 && parts[3] != ""
		case parts[2] == "aliases":
			// aliases.<mount accessor>.id|name|metadata.<key>
			if len(parts) == 5 {
				return parts[3] != "" && (parts[4] == "id" || parts[4] == "name")
			}
			return len(parts) == 6 && parts[3] != "" && parts[4] == "metadata" && parts[5] != ""
		}
	case "groups":
		// groups.ids.<id>.name, groups.names.<name>.id
		return len(parts) == 5 && parts[3] != "" &&
			((parts[2] == "ids" && parts[4] == "name") || (parts[2] == "names" && parts[4] == "id"))
	}
	return false
}

// templateParts splits a path into literal text and template keys: even
// indexes are literals, odd ones keys.
func templateParts(path string) ([]string, error) {
	var out []string
	rest := path
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			if strings.Contains(rest, "}}") {
				return nil, fmt.Errorf("path %q: '}}' without '{{'", path)
			}
			return append(out, rest), nil
		}
		j := strings.Index(rest[i:], "}}")
		if j < 0 {
			return nil, fmt.Errorf("path %q: '{{' without '}}'", path)
		}
		lit, key := rest[:i], strings.TrimSpace(rest[i+2:i+j])
		if strings.Contains(lit, "}}") {
			return nil, fmt.Errorf("path %q: '}}' without '{{'", path)
		}
		if !templateKeyValid(key) {
			return nil, fmt.Errorf("path %q: unknown template %q (identity.entity.id, identity.entity.name, identity.entity.metadata.<key>, identity.entity.aliases.<mount accessor>.id|name|metadata.<key>, identity.groups.ids.<id>.name, identity.groups.names.<name>.id)", path, key)
		}
		out = append(out, lit, key)
		rest = rest[i+j+2:]
	}
}

// Templated reports whether any path of the policy holds an identity
// template, so its ACL depends on the caller's identity.
func (p *Policy) Templated() bool {
	for _, pr := range p.Paths {
		if strings.Contains(pr.Path, "{{") {
			return true
		}
	}
	return false
}

// Fill returns the policy with its templates filled by lookup. A path
// with a template lookup cannot fill, or fills with a value that would
// widen the path (one holding '*', or a '+' or '..' segment), is left out.
// A policy without templates is returned as is.
func (p *Policy) Fill(lookup func(key string) (string, bool)) *Policy {
	if !p.Templated() {
		return p
	}
	out := &Policy{Name: p.Name, Raw: p.Raw}
	for _, pr := range p.Paths {
		if !strings.Contains(pr.Path, "{{") {
			out.Paths = append(out.Paths, pr)
			continue
		}
		path, ok := fillPath(pr.Path, lookup)
		if !ok {
			continue
		}
		filled := *pr
		filled.Path = path
		out.Paths = append(out.Paths, &filled)
	}
	return out
}

func fillPath(path string, lookup func(string) (string, bool)) (string, bool) {
	parts, err := templateParts(path)
	if err != nil || lookup == nil {
		return "", false
	}
	var b strings.Builder
	for i, part := range parts {
		if i%2 == 0 {
			b.WriteString(part)
			continue
		}
		v, ok := lookup(part)
		if !ok || !safeTemplateValue(v) {
			return "", false
		}
		b.WriteString(v)
	}
	return b.String(), true
}

// safeTemplateValue reports whether v may stand in a path: it must not be
// empty, and must not carry glob characters or segments that would let
// an identity's own name or metadata widen what the path grants. Nor may
// it begin or end with '/': that would cut a neighbouring literal such as
// the '+' of "secret/+{{...}}" into a wildcard segment of its own.
func safeTemplateValue(v string) bool {
	if v == "" || strings.ContainsAny(v, "*{}") || strings.HasPrefix(v, "/") || strings.HasSuffix(v, "/") {
		return false
	}
	for _, seg := range strings.Split(v, "/") {
		if seg == "+" || seg == ".." || seg == "." {
			return false
		}
	}
	return true
}
