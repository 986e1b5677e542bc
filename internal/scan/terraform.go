package scan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Terraform checks: secrets written into .tf/.tfvars code, variables and
// outputs that should be sensitive, unencrypted state backends, and the
// values Terraform state and plan files hold in plaintext.

// isTerraformCode reports whether name is Terraform HCL code.
func isTerraformCode(name string) bool {
	base := path.Base(name)
	return strings.HasSuffix(base, ".tf") || strings.HasSuffix(base, ".tfvars") || strings.HasSuffix(base, ".tofu") || base == "terragrunt.hcl"
}

// isTerraformJSON reports whether name may be state or a plan.
func isTerraformJSON(name string, raw []byte) bool {
	base := path.Base(name)
	if strings.HasSuffix(base, ".tfstate") || strings.HasSuffix(base, ".tfstate.backup") {
		return true
	}
	if !strings.HasSuffix(base, ".json") {
		return false
	}
	head := raw
	if len(head) > 4096 {
		head = head[:4096]
	}
	return bytes.Contains(head, []byte(`"terraform_version"`)) || bytes.Contains(head, []byte(`"format_version"`))
}

// secretName matches attribute and variable names that hold secrets.
var secretName = regexp.MustCompile(`(?i)(?:^|_)(?:password|passwd|secret|token|api_?key|access_?key|secret_?key|private_?key|client_?secret|auth_?token|credentials?|connection_?string|passphrase|ssh_?key|sas_?token|master_?password|admin_?password|secret_?string|secret_?id)(?:$|_)`)

// notSecretName excludes names that describe a secret rather than hold it.
var notSecretName = regexp.MustCompile(`(?i)(?:_id|_ids|_arn|_name|_version|_length|_count|_type|_ttl|_policy|_rotation\w*|_kms\w*|_path|_file|_enabled|_expir\w*|_prefix|_special|_upper|_lower|_numeric|_min\w*|_max\w*)$`)

func isSecretName(n string) bool { return secretName.MatchString(n) && !notSecretName.MatchString(n) }

// tfFinding reports what rng covers, placed by the range's byte offsets
// as the rules' findings are: HCL's own columns count characters and end
// one past the range.
func tfFinding(ls lineStarts, rule, desc, file string, rng hcl.Range, match, secret string) Finding {
	f := Finding{
		RuleID: rule, Description: desc, File: file,
		Match: match, Secret: secret, Entropy: float32(shannon(secret)), Tags: []string{"terraform"},
		Fingerprint: fingerprint(rule, file, match+"\x00"+secret),
	}
	ls.locate(span{rng.Start.Byte, rng.End.Byte}).apply(&f)
	return f
}

// literalString returns the value of an expression that is a plain string
// literal (no references or function calls).
func literalString(e hclsyntax.Expression) (string, bool) {
	switch t := e.(type) {
	case *hclsyntax.TemplateExpr:
		if len(t.Parts) == 1 {
			if lit, ok := t.Parts[0].(*hclsyntax.LiteralValueExpr); ok && lit.Val.Type().FriendlyName() == "string" {
				return lit.Val.AsString(), true
			}
		}
	case *hclsyntax.LiteralValueExpr:
		if t.Val.Type().FriendlyName() == "string" && !t.Val.IsNull() {
			return t.Val.AsString(), true
		}
	}
	return "", false
}

func exprText(raw []byte, e hclsyntax.Expression) string {
	r := e.Range()
	if r.End.Byte <= len(raw) && r.Start.Byte <= r.End.Byte {
		return string(raw[r.Start.Byte:r.End.Byte])
	}
	return ""
}

// scanTerraformCode runs the HCL checks on one file.
func (d *Detector) scanTerraformCode(raw []byte, file string) []Finding {
	f, diags := hclsyntax.ParseConfig(raw, file, hcl.Pos{Line: 1, Column: 1})
	if diags.HasErrors() || f == nil {
		return nil
	}
	body, ok := f.Body.(*hclsyntax.Body)
	if !ok {
		return nil
	}
	var out []Finding
	ls := newLineStarts(raw)
	plausible := func(v string) bool {
		return len(v) >= 6 && (d.Validate == nil || d.Validate("generic-api-key", v)) && !strings.Contains(v, "${")
	}
	// Literal secrets in attributes, at any depth (resources, providers,
	// modules, nested blocks, and .tfvars assignments).
	var walk func(b *hclsyntax.Body, inVariable bool)
	walk = func(b *hclsyntax.Body, skipDefaults bool) {
		for name, attr := range b.Attributes {
			if strings.Contains(exprText(raw, attr.Expr), "nonsensitive(") {
				out = append(out, tfFinding(ls, "terraform-nonsensitive", "nonsensitive() exposes a sensitive value", file, attr.SrcRange, exprText(raw, attr.Expr), ""))
			}
			if skipDefaults || !isSecretName(name) {
				continue
			}
			if v, ok := literalString(attr.Expr); ok && plausible(v) {
				out = append(out, tfFinding(ls, "terraform-hardcoded-secret", fmt.Sprintf("secret literal in the %q attribute", name), file, attr.SrcRange, name+" = "+exprText(raw, attr.Expr), v))
			}
		}
		for _, blk := range b.Blocks {
			switch blk.Type {
			case "variable":
				out = append(out, d.checkVariable(raw, ls, file, blk, plausible)...)
				continue
			case "output":
				out = append(out, checkOutput(raw, ls, file, blk)...)
			case "terraform":
				out = append(out, checkBackend(ls, file, blk)...)
			}
			walk(blk.Body, false)
		}
	}
	walk(body, false)
	return out
}

func boolAttr(b *hclsyntax.Body, name string) bool {
	a, ok := b.Attributes[name]
	if !ok {
		return false
	}
	v, diags := a.Expr.Value(nil)
	return !diags.HasErrors() && v.Type().FriendlyName() == "bool" && v.True()
}

func (d *Detector) checkVariable(raw []byte, ls lineStarts, file string, blk *hclsyntax.Block, plausible func(string) bool) []Finding {
	if len(blk.Labels) == 0 || !isSecretName(blk.Labels[0]) {
		return nil
	}
	name := blk.Labels[0]
	var out []Finding
	if !boolAttr(blk.Body, "sensitive") {
		out = append(out, tfFinding(ls, "terraform-variable-not-sensitive", fmt.Sprintf("variable %q holds a secret but is not marked sensitive = true", name), file, blk.DefRange(), "variable \""+name+"\"", ""))
	}
	if def, ok := blk.Body.Attributes["default"]; ok {
		if v, ok := literalString(def.Expr); ok && plausible(v) {
			out = append(out, tfFinding(ls, "terraform-variable-secret-default", fmt.Sprintf("variable %q has a secret default value", name), file, def.SrcRange, "default = "+exprText(raw, def.Expr), v))
		}
	}
	return out
}

func checkOutput(raw []byte, ls lineStarts, file string, blk *hclsyntax.Block) []Finding {
	v, ok := blk.Body.Attributes["value"]
	if !ok || boolAttr(blk.Body, "sensitive") {
		return nil
	}
	text := exprText(raw, v.Expr)
	for _, tr := range v.Expr.Variables() {
		parts := []string{}
		for _, step := range tr {
			switch s := step.(type) {
			case hcl.TraverseRoot:
				parts = append(parts, s.Name)
			case hcl.TraverseAttr:
				parts = append(parts, s.Name)
			}
		}
		last := parts[len(parts)-1]
		if isSecretName(last) || (len(parts) >= 2 && knownSecretAttr(parts[0], last)) {
			name := ""
			if len(blk.Labels) > 0 {
				name = blk.Labels[0]
			}
			return []Finding{tfFinding(ls, "terraform-output-not-sensitive", fmt.Sprintf("output %q exposes %s without sensitive = true", name, strings.Join(parts, ".")), file, blk.DefRange(), "output \""+name+"\" = "+text, "")}
		}
	}
	return nil
}

func checkBackend(ls lineStarts, file string, blk *hclsyntax.Block) []Finding {
	var out []Finding
	for _, b := range blk.Body.Blocks {
		if b.Type == "backend" && len(b.Labels) > 0 && b.Labels[0] == "s3" && !boolAttr(b.Body, "encrypt") {
			out = append(out, tfFinding(ls, "terraform-s3-backend-unencrypted", "the s3 state backend does not set encrypt = true; state holds secrets in plaintext", file, b.DefRange(), "backend \"s3\"", ""))
		}
	}
	return out
}

// knownSecretAttrs are attributes of well-known resources that hold
// secrets in state, by resource type.
var knownSecretAttrs = map[string][]string{
	"aws_db_instance":                           {"password"},
	"aws_rds_cluster":                           {"master_password"},
	"aws_docdb_cluster":                         {"master_password"},
	"aws_redshift_cluster":                      {"master_password"},
	"aws_elasticache_replication_group":         {"auth_token"},
	"aws_iam_access_key":                        {"secret", "ses_smtp_password_v4", "encrypted_secret"},
	"aws_iam_user_login_profile":                {"password"},
	"aws_secretsmanager_secret_version":         {"secret_string", "secret_binary"},
	"aws_ssm_parameter":                         {"value"},
	"aws_mq_broker":                             {"password"},
	"random_password":                           {"result", "bcrypt_hash"},
	"tls_private_key":                           {"private_key_pem", "private_key_openssh", "private_key_pem_pkcs8"},
	"google_service_account_key":                {"private_key"},
	"google_sql_user":                           {"password"},
	"google_secret_manager_secret_version":      {"secret_data"},
	"azurerm_storage_account":                   {"primary_access_key", "secondary_access_key", "primary_connection_string", "secondary_connection_string", "primary_blob_connection_string"},
	"azurerm_key_vault_secret":                  {"value"},
	"azurerm_mssql_server":                      {"administrator_login_password"},
	"azurerm_postgresql_flexible_server":        {"administrator_password"},
	"azurerm_cosmosdb_account":                  {"primary_key", "secondary_key", "primary_master_key", "connection_strings"},
	"azuread_application_password":              {"value"},
	"azuread_service_principal_password":        {"value"},
	"kubernetes_secret":                         {"data"},
	"kubernetes_secret_v1":                      {"data"},
	"github_actions_secret":                     {"plaintext_value"},
	"tfe_team_token":                            {"token"},
	"tfe_organization_token":                    {"token"},
	"vault_token":                               {"client_token"},
	"vault_approle_auth_backend_role_secret_id": {"secret_id"},
	"vault_generic_secret":                      {"data_json", "data"},
	"vault_kv_secret_v2":                        {"data_json", "data"},
	"digitalocean_database_cluster":             {"password", "uri", "private_uri"},
	"heroku_app":                                {"all_config_vars"},
	"databricks_token":                          {"token_value"},
	"datadog_api_key":                           {"key"},
	"cloudflare_api_token":                      {"value"},
}

func knownSecretAttr(resourceType, attr string) bool {
	for _, a := range knownSecretAttrs[resourceType] {
		if a == attr {
			return true
		}
	}
	return false
}

// scanTerraformJSON reports the secrets a state file or plan holds.
func (d *Detector) scanTerraformJSON(raw []byte, file string) []Finding {
	// Decoded generically, so keys match exactly as jsonValueSpans matches
	// them (a struct would take "Resources" for "resources") and one field
	// of an unexpected type does not hide the rest of the file.
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil
	}
	// Candidates are collected first, then located in one walk of raw.
	type candidate struct {
		rule, name, secret, path string
	}
	var found []candidate
	seen := map[string]bool{}
	add := func(rule, address, attr string, value any, path string) {
		s := flattenValue(value)
		if s == "" || len(s) < 4 || seen[address+"."+attr] {
			return
		}
		seen[address+"."+attr] = true
		found = append(found, candidate{rule, address + "." + attr, s, path})
	}
	for ri, r := range field[[]any](doc, "resources") {
		typ := field[string](r, "type")
		if field[string](r, "mode") == "data" && !strings.HasPrefix(typ, "vault_") {
			continue
		}
		address := typ + "." + field[string](r, "name")
		if module := field[string](r, "module"); module != "" {
			address = module + "." + address
		}
		for ii, inst := range field[[]any](r, "instances") {
			addr := address
			if key := field[any](inst, "index_key"); key != nil {
				addr = fmt.Sprintf("%s[%v]", address, key)
			}
			marked := sensitivePaths(field[[]any](inst, "sensitive_attributes"))
			attrs := field[map[string]any](inst, "attributes")
			for _, attr := range sortedKeys(attrs) {
				if marked[attr] || knownSecretAttr(typ, attr) || (isSecretName(attr) && attr != "id") {
					add("terraform-state-secret", addr, attr, attrs[attr], jsonPath("resources", ri, "instances", ii, "attributes", attr))
				}
			}
		}
	}
	outputs := field[map[string]any](doc, "outputs")
	for _, name := range sortedKeys(outputs) {
		if o := outputs[name]; field[bool](o, "sensitive") || isSecretName(name) {
			add("terraform-state-secret", "output", name, field[any](o, "value"), jsonPath("outputs", name, "value"))
		}
	}
	for ci, rc := range field[[]any](doc, "resource_changes") {
		change := field[map[string]any](rc, "change")
		mask := field[map[string]any](change, "after_sensitive")
		after := field[map[string]any](change, "after")
		typ := field[string](rc, "type")
		for _, attr := range sortedKeys(after) {
			if m, ok := mask[attr]; (ok && m == true) || knownSecretAttr(typ, attr) || isSecretName(attr) {
				add("terraform-plan-secret", field[string](rc, "address"), attr, after[attr], jsonPath("resource_changes", ci, "change", "after", attr))
			}
		}
	}
	variables := field[map[string]any](doc, "variables")
	for _, name := range sortedKeys(variables) {
		if isSecretName(name) {
			add("terraform-plan-secret", "var", name, field[any](variables[name], "value"), jsonPath("variables", name, "value"))
		}
	}
	want := make(map[string]bool, len(found))
	for _, c := range found {
		want[c.path] = true
	}
	spans := jsonValueSpans(raw, want)
	ls := newLineStarts(raw)
	out := make([]Finding, 0, len(found))
	for _, c := range found {
		f := Finding{RuleID: c.rule, Description: "secret in Terraform state or plan: " + c.name,
			File: file, Match: c.name, Secret: c.secret, Entropy: float32(shannon(c.secret)), Tags: []string{"terraform"},
			Fingerprint: fingerprint(c.rule, file, c.name+"\x00"+c.secret)}
		ls.locate(spans[c.path]).apply(&f)
		out = append(out, f)
	}
	return out
}

// sensitivePaths reads the first attribute name of each path in a state's
// sensitive_attributes (both the v4 list-of-steps form and the object form).
func sensitivePaths(paths []any) map[string]bool {
	out := map[string]bool{}
	for _, p := range paths {
		steps, ok := p.([]any)
		if !ok {
			steps = field[[]any](p, "path")
		}
		if len(steps) > 0 {
			if s := field[string](steps[0], "value"); s != "" {
				out[s] = true
			}
		}
	}
	return out
}

// field reads key of a JSON object decoded into any: the zero T when v is
// not an object, or key is missing or holds something other than a T.
func field[T any](v any, key string) T {
	m, _ := v.(map[string]any)
	t, _ := m[key].(T)
	return t
}

// sortedKeys returns m's keys in order, so findings come out in a stable order.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// flattenValue renders a state value as the text that would leak: strings
// as they are, maps and lists as JSON; empty and null as "".
func flattenValue(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case bool, float64:
		return ""
	case map[string]any:
		if len(t) == 0 {
			return ""
		}
	case []any:
		if len(t) == 0 {
			return ""
		}
	}
	// Without HTML escaping: the text shows "<", ">" and "&" as they are.
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
	return strings.TrimSuffix(b.String(), "\n")
}
