package scan

import (
	"bytes"
	"encoding/base64"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// Formats that store secrets base64-encoded: Kubernetes Secret data
// (YAML or JSON manifests, one or many documents, List objects) and Docker
// config auths (config.json, and .dockerconfigjson inside a Secret). Their
// values are decoded and scanned too, at the line of the encoded value.
var (
	k8sSecretKind = regexp.MustCompile(`(?m)^\s*(?:-\s+)?kind:\s*["']?Secret["']?\s*$|"kind"\s*:\s*"Secret"`)
	k8sDataValue  = regexp.MustCompile(`(?m)^\s+([\w.-]+):\s*["']?([A-Za-z0-9+/]{8,}={0,2})["']?\s*$`)
	dockerAuth    = regexp.MustCompile(`"auth"\s*:\s*"([A-Za-z0-9+/]{8,}={0,2})"`)
)

// scanDecoded decodes base64 values in formats known to hold them and
// reports what the rules find inside.
func (d *Detector) scanDecoded(raw []byte, path string) []Finding {
	var out []Finding
	if bytes.Contains(raw, []byte("Secret")) && k8sSecretKind.Match(raw) {
		if fs, ok := d.scanK8sManifests(raw, path); ok {
			out = append(out, fs...)
		} else {
			// Not YAML we can parse (a Helm template, say): take the
			// indented key: base64 lines of the file.
			for _, m := range k8sDataValue.FindAllSubmatchIndex(raw, -1) {
				line := 1 + bytes.Count(raw[:m[4]], []byte{'\n'})
				out = append(out, d.scanDecodedValue(string(raw[m[2]:m[3]]), string(raw[m[4]:m[5]]), line, path)...)
			}
		}
	}
	out = append(out, d.dockerAuths(raw, path, 0)...)
	return out
}

// scanK8sManifests walks every YAML (or JSON) document in raw for Secrets,
// also inside List objects, and scans each decoded data value. ok is false
// when raw does not parse as YAML.
func (d *Detector) scanK8sManifests(raw []byte, path string) (out []Finding, ok bool) {
	defer func() {
		// The YAML parser must not take the scan down with it on input it
		// was not written for.
		if recover() != nil {
			out, ok = nil, false
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	for docs := 0; ; docs++ {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			return out, docs > 0 // a parse error after good documents keeps what they gave
		}
		if len(doc.Content) > 0 {
			out = append(out, d.k8sObject(doc.Content[0], path, 0)...)
		}
	}
}

// k8sObject scans one object: a Secret's data, or the items of a List.
func (d *Detector) k8sObject(n *yaml.Node, path string, depth int) []Finding {
	if n.Kind != yaml.MappingNode || depth > 4 {
		return nil
	}
	kind := mapValue(n, "kind")
	if kind == nil {
		return nil
	}
	var out []Finding
	switch {
	case kind.Value == "Secret":
		data := mapValue(n, "data")
		if data == nil || data.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(data.Content); i += 2 {
			k, v := data.Content[i], data.Content[i+1]
			if v.Kind == yaml.ScalarNode {
				out = append(out, d.scanDecodedValue(k.Value, v.Value, v.Line, path)...)
			}
		}
	case strings.HasSuffix(kind.Value, "List"):
		if items := mapValue(n, "items"); items != nil && items.Kind == yaml.SequenceNode {
			for _, it := range items.Content {
				out = append(out, d.k8sObject(it, path, depth+1)...)
			}
		}
	}
	return out
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// scanDecodedValue decodes one base64 value of a Secret and scans it as if
// it were written "key = value", so the generic rule judges it by its key
// as it would judge a plain assignment. A decoded Docker config is searched
// for registry credentials.
func (d *Detector) scanDecodedValue(key, value string, line int, path string) []Finding {
	value = strings.Join(strings.Fields(value), "") // folded YAML scalars
	dec, err := base64.StdEncoding.DecodeString(value)
	if err != nil {
		dec, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(value, "="))
	}
	if err != nil || len(dec) == 0 || bytes.IndexByte(dec, 0) >= 0 {
		return nil
	}
	var out []Finding
	if key == ".dockerconfigjson" || key == ".dockercfg" {
		out = append(out, d.dockerAuths(dec, path, line)...)
	}
	name := "secret_value"
	if isIdentifier(key) {
		name = identifierReplacer.Replace(key)
	}
	for _, f := range d.Detect(Fragment{Raw: []byte(name + " = " + string(dec) + "\n"), Path: path}) {
		f.StartLine, f.EndLine = line, line
		f.Tags = append(append([]string{}, f.Tags...), "decoded:base64")
		out = append(out, f)
	}
	return out
}

// identifierReplacer turns Secret keys such as "db-password" or "tls.key"
// into the identifiers "db_password" and "tls_key".
var identifierReplacer = strings.NewReplacer("-", "_", ".", "_")

// isIdentifier reports whether s can stand, once replaced, as the left side
// of an assignment for the rules.
func isIdentifier(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c == '-' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// dockerAuths reports the passwords in a Docker config's base64 "auth"
// (user:password) values. atLine, when not 0, is where the config itself
// sits (decoded from a Secret); otherwise lines are counted in raw.
func (d *Detector) dockerAuths(raw []byte, path string, atLine int) []Finding {
	var out []Finding
	for _, m := range dockerAuth.FindAllSubmatchIndex(raw, -1) {
		value := raw[m[2]:m[3]]
		dec, err := base64.StdEncoding.DecodeString(string(value))
		if err != nil || bytes.IndexByte(dec, 0) >= 0 {
			continue
		}
		_, pw, ok := strings.Cut(string(dec), ":")
		if !ok || len(pw) < 6 {
			continue
		}
		line := atLine
		if line == 0 {
			line = 1 + bytes.Count(raw[:m[2]], []byte{'\n'})
		}
		out = append(out, Finding{RuleID: "docker-config-auth", Description: "Docker registry credentials in a config file",
			File: path, StartLine: line, EndLine: line, Secret: pw, Match: string(value),
			Entropy: float32(shannon(pw)), Tags: []string{"decoded:base64", "docker"}, Fingerprint: fingerprint("docker-config-auth", path, pw)})
	}
	return out
}
