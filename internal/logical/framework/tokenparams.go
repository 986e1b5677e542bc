package framework

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/arcasec/arca/internal/logical"
)

// TokenParams are the token settings every auth method shares (Vault's
// token_* role and user fields): one declaration, one parser, one place that
// turns them into a login's Auth block.
type TokenParams struct {
	TokenTTL             time.Duration `json:"token_ttl"`
	TokenMaxTTL          time.Duration `json:"token_max_ttl"`
	TokenExplicitMaxTTL  time.Duration `json:"token_explicit_max_ttl"`
	TokenPeriod          time.Duration `json:"token_period"`
	TokenPolicies        []string      `json:"token_policies"`
	TokenBoundCIDRs      []string      `json:"token_bound_cidrs"`
	TokenNumUses         int           `json:"token_num_uses"`
	TokenType            string        `json:"token_type"`
	TokenNoDefaultPolicy bool          `json:"token_no_default_policy"`
}

// AddTokenFields adds the token_* fields to a path's field declarations.
func AddTokenFields(fields map[string]*FieldSchema) {
	for name, f := range TokenFields() {
		fields[name] = f
	}
}

// TokenFields declares the token_* fields.
func TokenFields() map[string]*FieldSchema {
	return map[string]*FieldSchema{
		"token_ttl":               {Type: TypeDuration, Description: "Lifetime of tokens issued at login; 0 means the mount's default."},
		"token_max_ttl":           {Type: TypeDuration, Description: "Longest a login token may live, renewals included; 0 means the mount's maximum."},
		"token_explicit_max_ttl":  {Type: TypeDuration, Description: "A hard cap on a login token's life that no renewal or mount setting raises."},
		"token_period":            {Type: TypeDuration, Description: "Makes login tokens periodic: each renewal extends them by this much, with no maximum."},
		"token_policies":          {Type: TypeCommaStringSlice, Description: "Policies attached to login tokens."},
		"token_bound_cidrs":       {Type: TypeCommaStringSlice, Description: "Addresses or CIDR blocks login tokens may be used from."},
		"token_num_uses":          {Type: TypeInt, Description: "How many requests a login token may make; 0 means unlimited."},
		"token_type":              {Type: TypeString, Default: "default", Description: `Kind of token issued at login: "default" or "service" ("batch" is not supported).`},
		"token_no_default_policy": {Type: TypeBool, Description: `Leave the "default" policy off login tokens.`},
	}
}

// ParseTokenFields sets p from the token_* fields present in d, leaving the
// others as they are (so an update changes only what it names). It returns a
// 400 naming the field for a negative duration or count, a malformed CIDR
// or an unknown token type.
func (p *TokenParams) ParseTokenFields(d *FieldData) error {
	for _, name := range []string{"token_ttl", "token_max_ttl", "token_explicit_max_ttl", "token_period"} {
		v, ok := d.GetOk(name)
		if !ok {
			continue
		}
		dur := v.(time.Duration)
		if dur < 0 {
			return logical.BadRequest("%s must not be negative", name)
		}
		switch name {
		case "token_ttl":
			p.TokenTTL = dur
		case "token_max_ttl":
			p.TokenMaxTTL = dur
		case "token_explicit_max_ttl":
			p.TokenExplicitMaxTTL = dur
		case "token_period":
			p.TokenPeriod = dur
		}
	}
	if v, ok := d.GetOk("token_policies"); ok {
		p.TokenPolicies = NormalizePolicies(v.([]string))
	}
	if v, ok := d.GetOk("token_bound_cidrs"); ok {
		cidrs, err := ParseCIDRs("token_bound_cidrs", v.([]string))
		if err != nil {
			return err
		}
		p.TokenBoundCIDRs = cidrs
	}
	if v, ok := d.GetOk("token_num_uses"); ok {
		n := v.(int)
		if n < 0 {
			return logical.BadRequest("token_num_uses must not be negative")
		}
		p.TokenNumUses = n
	}
	if v, ok := d.GetOk("token_type"); ok {
		switch t := strings.ToLower(strings.TrimSpace(v.(string))); t {
		case "", "default", "default-service":
			p.TokenType = "default"
		case "service":
			p.TokenType = "service"
		case "batch", "default-batch":
			return logical.BadRequest("token_type %q is not supported: Arca issues service tokens only", t)
		default:
			return logical.BadRequest("token_type %q is not one of default, service", t)
		}
	}
	if v, ok := d.GetOk("token_no_default_policy"); ok {
		p.TokenNoDefaultPolicy = v.(bool)
	}
	if p.TokenMaxTTL > 0 && p.TokenTTL > p.TokenMaxTTL {
		return logical.BadRequest("token_ttl must not be greater than token_max_ttl")
	}
	return nil
}

// PopulateAuth copies the settings into a login's Auth block. Policies are
// appended to whatever the method already put there.
func (p *TokenParams) PopulateAuth(a *logical.Auth) {
	a.TTL = p.TokenTTL
	a.MaxTTL = p.TokenMaxTTL
	a.ExplicitMaxTTL = p.TokenExplicitMaxTTL
	a.Period = p.TokenPeriod
	a.Policies = NormalizePolicies(append(append([]string{}, a.Policies...), p.TokenPolicies...))
	a.TokenPolicies = a.Policies
	a.BoundCIDRs = slices.Clone(p.TokenBoundCIDRs)
	a.NumUses = p.TokenNumUses
	a.NoDefaultPolicy = p.TokenNoDefaultPolicy
	a.TokenType = "service"
	a.Renewable = true
}

// ResponseData returns the settings as a read of a role or user shows them
// (durations in seconds).
func (p *TokenParams) ResponseData() map[string]any {
	typ := p.TokenType
	if typ == "" {
		typ = "default"
	}
	return map[string]any{
		"token_ttl":               int64(p.TokenTTL / time.Second),
		"token_max_ttl":           int64(p.TokenMaxTTL / time.Second),
		"token_explicit_max_ttl":  int64(p.TokenExplicitMaxTTL / time.Second),
		"token_period":            int64(p.TokenPeriod / time.Second),
		"token_policies":          nonNil(p.TokenPolicies),
		"token_bound_cidrs":       DisplayCIDRs(p.TokenBoundCIDRs),
		"token_num_uses":          p.TokenNumUses,
		"token_type":              typ,
		"token_no_default_policy": p.TokenNoDefaultPolicy,
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// NormalizePolicies trims, lower-cases, de-duplicates and sorts policy names,
// dropping empty ones.
func NormalizePolicies(in []string) []string {
	out := make([]string, 0, len(in))
	for _, p := range in {
		p = strings.ToLower(strings.TrimSpace(p))
		if p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// ParseCIDRs checks a list of addresses or CIDR blocks and returns them in
// canonical CIDR form (a bare address becomes a /32 or /128). field names
// the field in the error.
func ParseCIDRs(field string, in []string) ([]string, error) {
	out := make([]string, 0, len(in))
	for _, s := range in {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		var prefix netip.Prefix
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, logical.BadRequest("%s: %q is not an address or CIDR block", field, s)
			}
			prefix = p.Masked()
		} else {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, logical.BadRequest("%s: %q is not an address or CIDR block", field, s)
			}
			prefix = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		out = append(out, prefix.String())
	}
	return out, nil
}

// DisplayCIDRs returns CIDR blocks as Vault shows them in reads: a block of
// one address as the bare address ("10.0.0.1", not "10.0.0.1/32"); never nil.
func DisplayCIDRs(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if p, err := netip.ParsePrefix(s); err == nil && p.IsSingleIP() {
			s = p.Addr().String()
		}
		out = append(out, s)
	}
	return out
}

// RemoteAddrAllowed reports whether a request's remote address (host or
// host:port) lies in one of cidrs; an empty list allows every address.
func RemoteAddrAllowed(remoteAddr string, cidrs []string) bool {
	if len(cidrs) == 0 {
		return true
	}
	ap, err := netip.ParseAddrPort(remoteAddr)
	var addr netip.Addr
	if err == nil {
		addr = ap.Addr()
	} else if addr, err = netip.ParseAddr(remoteAddr); err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil && p.Contains(addr) {
			return true
		}
	}
	return false
}
