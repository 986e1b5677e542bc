package policy

import (
	"fmt"
	"sort"
	"strings"
)

// Format renders a policy in canonical HCL: one block per path, in the
// order written, with capabilities in a fixed order.
func Format(p *Policy) string {
	var b strings.Builder
	for i, pr := range p.Paths {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "path %q {\n", pr.Path)
		caps := pr.Capabilities.Strings()
		quoted := make([]string, len(caps))
		for j, c := range caps {
			quoted[j] = fmt.Sprintf("%q", c)
		}
		fmt.Fprintf(&b, "  capabilities = [%s]\n", strings.Join(quoted, ", "))
		writeParams(&b, "allowed_parameters", pr.AllowedParameters)
		writeParams(&b, "denied_parameters", pr.DeniedParameters)
		if len(pr.RequiredParameters) > 0 {
			q := make([]string, len(pr.RequiredParameters))
			for j, r := range pr.RequiredParameters {
				q[j] = fmt.Sprintf("%q", r)
			}
			fmt.Fprintf(&b, "  required_parameters = [%s]\n", strings.Join(q, ", "))
		}
		if pr.MinWrappingTTL > 0 {
			fmt.Fprintf(&b, "  min_wrapping_ttl = %q\n", pr.MinWrappingTTL.String())
		}
		if pr.MaxWrappingTTL > 0 {
			fmt.Fprintf(&b, "  max_wrapping_ttl = %q\n", pr.MaxWrappingTTL.String())
		}
		b.WriteString("}\n")
	}
	return b.String()
}

func writeParams(b *strings.Builder, name string, m map[string][]any) {
	if len(m) == 0 {
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(b, "  %s = {\n", name)
	for _, k := range keys {
		vals := make([]string, len(m[k]))
		for i, v := range m[k] {
			vals[i] = fmt.Sprintf("%q", fmt.Sprint(v))
		}
		fmt.Fprintf(b, "    %q = [%s]\n", k, strings.Join(vals, ", "))
	}
	b.WriteString("  }\n")
}
