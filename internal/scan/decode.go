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
// values are decoded and scanned too, and reported at the lines and columns
// of the encoded value.
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
		ls := newLineStarts(raw)
		if fs, ok := d.scanK8sManifests(raw, ls, path); ok {
			out = append(out, fs...)
		} else {
			// Not YAML we can parse (a Helm template, say): take the
			// indented key: base64 lines of the file.
			for _, m := range k8sDataValue.FindAllSubmatchIndex(raw, -1) {
				at := ls.locate(span{m[4], m[5]})
				out = append(out, d.scanDecodedValue(string(raw[m[2]:m[3]]), string(raw[m[4]:m[5]]), at, path)...)
			}
		}
	}
	out = append(out, d.dockerAuths(raw, path, nil)...)
	return out
}

// scanK8sManifests walks every YAML (or JSON) document in raw for Secrets,
// also inside List objects, and scans each decoded data value. ok is false
// when raw does not parse as YAML.
func (d *Detector) scanK8sManifests(raw []byte, ls lineStarts, path string) (out []Finding, ok bool) {
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
			out = append(out, d.k8sObject(raw, ls, doc.Content[0], path, 0)...)
		}
	}
}

// k8sObject scans one object: a Secret's data, or the items of a List.
func (d *Detector) k8sObject(raw []byte, ls lineStarts, n *yaml.Node, path string, depth int) []Finding {
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
				out = append(out, d.scanDecodedValue(k.Value, v.Value, ls.locate(scalarSpan(raw, ls, v.Line, v.Column, v.Value)), path)...)
			}
		}
	case strings.HasSuffix(kind.Value, "List"):
		if items := mapValue(n, "items"); items != nil && items.Kind == yaml.SequenceNode {
			for _, it := range items.Content {
				out = append(out, d.k8sObject(raw, ls, it, path, depth+1)...)
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

// scalarSpan finds a YAML scalar's text in raw from where the parser puts
// it (its line, and column counted in characters, so never past the value's
// byte offset): from the first byte of its first word to the last byte of
// its last, so a block or folded value spans all its lines. It falls back
// to the parser's line when the text is not there as parsed.
func scalarSpan(raw []byte, ls lineStarts, line, column int, value string) span {
	start := ls[min(max(line, 1), len(ls))-1]
	lineEnd := len(raw)
	if i := bytes.IndexByte(raw[start:], '\n'); i >= 0 {
		lineEnd = start + i
	}
	whole := span{start, lineEnd}
	from := min(start+max(column-1, 0), lineEnd)
	words := strings.Fields(value)
	if len(words) == 0 {
		return whole
	}
	first := bytes.Index(raw[from:], []byte(words[0]))
	if first < 0 {
		return whole
	}
	s := span{from + first, from + first + len(words[0])}
	for _, w := range words[1:] {
		i := bytes.Index(raw[s.end:], []byte(w))
		if i < 0 {
			return whole
		}
		s.end += i + len(w)
	}
	return s
}

// scanDecodedValue decodes one base64 value of a Secret and scans it as if
// it were written "key = value", so the generic rule judges it by its key
// as it would judge a plain assignment. A decoded Docker config is searched
// for registry credentials. Findings are reported at the encoded value.
func (d *Detector) scanDecodedValue(key, value string, at where, path string) []Finding {
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
		out = append(out, d.dockerAuths(dec, path, &at)...)
	}
	name := "secret_value"
	if isIdentifier(key) {
		name = identifierReplacer.Replace(key)
	}
	for _, f := range d.Detect(Fragment{Raw: []byte(name + " = " + string(dec) + "\n"), Path: path}) {
		at.apply(&f)
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
// (user:password) values. at, when set, is where the config itself sits
// (decoded from a Secret); otherwise each finding is at its "auth" value.
func (d *Detector) dockerAuths(raw []byte, path string, at *where) []Finding {
	var out []Finding
	var ls lineStarts
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
		f := Finding{RuleID: "docker-config-auth", Description: "Docker registry credentials in a config file",
			File: path, Secret: pw, Match: string(value),
			Entropy: float32(shannon(pw)), Tags: []string{"decoded:base64", "docker"}, Fingerprint: fingerprint("docker-config-auth", path, pw)}
		if at != nil {
			at.apply(&f)
		} else {
			if ls == nil {
				ls = newLineStarts(raw)
			}
			ls.locate(span{m[2], m[3]}).apply(&f)
		}
		out = append(out, f)
	}
	return out
}
