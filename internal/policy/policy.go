// Package policy parses Vault-compatible ACL policies (HCL or JSON) and
// compiles a token's policies into an ACL that decides each request.
//
// Deny by default: a path nothing grants is denied, and a deny on the rule
// that matches wins over any grant.
package policy

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/hcl/hcl/ast"

	"github.com/arcasec/arca/internal/hclsafe"
)

// Capability is a bit set of policy capabilities.
type Capability uint16

const (
	Deny Capability = 1 << iota
	Create
	Read
	Update
	Patch
	Delete
	List
	Sudo
)

var capNames = []struct {
	c    Capability
	name string
}{
	{Create, "create"}, {Delete, "delete"}, {Deny, "deny"}, {List, "list"},
	{Patch, "patch"}, {Read, "read"}, {Sudo, "sudo"}, {Update, "update"},
}

// Strings returns the capability names, sorted. Deny alone is ["deny"].
func (c Capability) Strings() []string {
	if c&Deny != 0 {
		return []string{"deny"}
	}
	var out []string
	for _, cn := range capNames {
		if c&cn.c != 0 {
			out = append(out, cn.name)
		}
	}
	return out
}

// ParseCapability parses one capability name.
func ParseCapability(s string) (Capability, error) {
	for _, cn := range capNames {
		if cn.name == s {
			return cn.c, nil
		}
	}
	return 0, fmt.Errorf("unknown capability %q (create, read, update, patch, delete, list, sudo, deny)", s)
}

// Policy is a parsed policy.
type Policy struct {
	Name  string
	Raw   string
	Paths []*PathRules
}

// PathRules is one `path "..." { ... }` block.
type PathRules struct {
	Path               string
	Capabilities       Capability
	AllowedParameters  map[string][]any
	DeniedParameters   map[string][]any
	RequiredParameters []string
	MinWrappingTTL     time.Duration
	MaxWrappingTTL     time.Duration
}

// legacyPolicies maps the pre-0.9 `policy = "..."` shorthand. It predates
// patch and, as in Vault, does not grant it.
var legacyPolicies = map[string]Capability{
	"deny":  Deny,
	"read":  Read | List,
	"write": Read | List | Create | Update | Delete,
	"sudo":  Read | List | Create | Update | Delete | Sudo,
}

// pathKeys are the keys a path block may hold. subscribe_event_types is
// accepted although Arca does not read it: it only narrows which events a
// token may subscribe to, and Arca serves no event subscriptions, so there
// is nothing it would narrow.
var pathKeys = map[string]bool{
	"capabilities": true, "policy": true, "allowed_parameters": true, "denied_parameters": true,
	"required_parameters": true, "min_wrapping_ttl": true, "max_wrapping_ttl": true,
	"subscribe_event_types": true,
}

// unenforcedKeys are Vault policy keys whose requirement Arca cannot
// enforce. A policy using one is refused: accepting it would serve without
// the requirement what its author meant to guard.
var unenforcedKeys = map[string]string{
	"control_group": "control groups",
	"mfa_methods":   "per-path MFA",
}

// Parse parses policy text in HCL or JSON.
func Parse(name, text string) (*Policy, error) {
	file, err := hclsafe.Parse(text)
	if err != nil {
		return nil, fmt.Errorf("policy %q: %w", name, err)
	}
	root, ok := file.Node.(*ast.ObjectList)
	if !ok {
		return nil, fmt.Errorf("policy %q: expected path blocks", name)
	}
	p := &Policy{Name: name, Raw: text}
	for _, item := range root.Items {
		key := keyName(item.Keys[0])
		switch key {
		case "name":
			continue
		case "path":
		default:
			return nil, fmt.Errorf("policy %q: unknown key %q (line %d); a policy is made of path blocks", name, key, item.Pos().Line)
		}
		pr, err := parsePath(item)
		if err != nil {
			return nil, fmt.Errorf("policy %q: %w", name, err)
		}
		p.Paths = append(p.Paths, pr)
	}
	return p, nil
}

type pathBody struct {
	Capabilities       []string         `hcl:"capabilities"`
	Policy             string           `hcl:"policy"`
	AllowedParameters  map[string][]any `hcl:"allowed_parameters"`
	DeniedParameters   map[string][]any `hcl:"denied_parameters"`
	RequiredParameters []string         `hcl:"required_parameters"`
	MinWrappingTTL     any              `hcl:"min_wrapping_ttl"`
	MaxWrappingTTL     any              `hcl:"max_wrapping_ttl"`
}

func parsePath(item *ast.ObjectItem) (*PathRules, error) {
	var path string
	var body *ast.ObjectType
	switch {
	case len(item.Keys) >= 2:
		path = keyName(item.Keys[1])
		b, ok := item.Val.(*ast.ObjectType)
		if !ok {
			return nil, fmt.Errorf("path %q: expected a block", path)
		}
		body = b
	default:
		return nil, fmt.Errorf("line %d: a path block needs a path: path \"secret/*\" { ... }", item.Pos().Line)
	}
	path = strings.TrimPrefix(path, "/")
	if i := strings.Index(path, "*"); i >= 0 && i != len(path)-1 {
		return nil, fmt.Errorf("path %q: '*' may only appear at the end", path)
	}
	if strings.Contains(path, "{{") || strings.Contains(path, "}}") {
		if _, err := templateParts(path); err != nil {
			return nil, err
		}
	}
	for _, bi := range body.List.Items {
		k := keyName(bi.Keys[0])
		if what, ok := unenforcedKeys[k]; ok {
			return nil, fmt.Errorf("path %q: %s (line %d) is not supported: Arca does not enforce %s, so a policy that requires them is refused", path, k, bi.Pos().Line, what)
		}
		if !pathKeys[k] {
			return nil, fmt.Errorf("path %q: unknown key %q (line %d)", path, k, bi.Pos().Line)
		}
	}
	var pb pathBody
	if err := hclsafe.DecodeObject(&pb, body); err != nil {
		return nil, fmt.Errorf("path %q: %w", path, err)
	}
	pr := &PathRules{Path: path, AllowedParameters: pb.AllowedParameters, DeniedParameters: pb.DeniedParameters, RequiredParameters: pb.RequiredParameters}
	for _, c := range pb.Capabilities {
		cp, err := ParseCapability(strings.ToLower(strings.TrimSpace(c)))
		if err != nil {
			return nil, fmt.Errorf("path %q: %w", path, err)
		}
		pr.Capabilities |= cp
	}
	if pb.Policy != "" {
		cp, ok := legacyPolicies[pb.Policy]
		if !ok {
			return nil, fmt.Errorf("path %q: unknown policy %q (deny, read, write, sudo)", path, pb.Policy)
		}
		pr.Capabilities |= cp
	}
	if pr.Capabilities&Deny != 0 {
		pr.Capabilities = Deny
	}
	var err error
	if pr.MinWrappingTTL, err = parseTTL(pb.MinWrappingTTL); err != nil {
		return nil, fmt.Errorf("path %q: min_wrapping_ttl: %w", path, err)
	}
	if pr.MaxWrappingTTL, err = parseTTL(pb.MaxWrappingTTL); err != nil {
		return nil, fmt.Errorf("path %q: max_wrapping_ttl: %w", path, err)
	}
	if pr.MinWrappingTTL < 0 || pr.MaxWrappingTTL < 0 {
		return nil, fmt.Errorf("path %q: min_wrapping_ttl and max_wrapping_ttl cannot be negative", path)
	}
	if pr.MinWrappingTTL > 0 && pr.MaxWrappingTTL > 0 && pr.MaxWrappingTTL < pr.MinWrappingTTL {
		return nil, fmt.Errorf("path %q: max_wrapping_ttl (%s) cannot be less than min_wrapping_ttl (%s)", path, pr.MaxWrappingTTL, pr.MinWrappingTTL)
	}
	return pr, nil
}

// keyName is an object key's text; a key the parser cannot read becomes
// "", which every caller rejects.
func keyName(k *ast.ObjectKey) string {
	s, _ := hclsafe.String(k.Token)
	return s
}

func parseTTL(v any) (time.Duration, error) {
	switch t := v.(type) {
	case nil:
		return 0, nil
	case int:
		return time.Duration(t) * time.Second, nil
	case int64:
		return time.Duration(t) * time.Second, nil
	case string:
		if t == "" {
			return 0, nil
		}
		var secs int64
		if _, err := fmt.Sscan(t, &secs); err == nil && fmt.Sprint(secs) == t {
			return time.Duration(secs) * time.Second, nil
		}
		return time.ParseDuration(t)
	}
	return 0, fmt.Errorf("expected a duration, got %v", v)
}
