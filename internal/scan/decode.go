package scan

import (
	"bytes"
	"encoding/base64"
	"regexp"
	"strings"
)

// Formats that store secrets base64-encoded: Kubernetes Secret data and
// Docker config auths. Their values are decoded and scanned too.
var (
	k8sSecretKind = regexp.MustCompile(`(?m)^\s*kind:\s*["']?Secret["']?\s*$`)
	k8sDataValue  = regexp.MustCompile(`(?m)^\s+([\w.-]+):\s*["']?([A-Za-z0-9+/]{8,}={0,2})["']?\s*$`)
	dockerAuth    = regexp.MustCompile(`"auth"\s*:\s*"([A-Za-z0-9+/]{8,}={0,2})"`)
)

// scanDecoded decodes base64 values in formats known to hold them and
// reports what the rules find inside, at the line of the encoded value.
func (d *Detector) scanDecoded(raw []byte, path string) []Finding {
	var out []Finding
	decodeAt := func(value []byte, offset int, tag string) {
		dec, err := base64.StdEncoding.DecodeString(string(value))
		if err != nil || len(dec) == 0 || bytes.IndexByte(dec, 0) >= 0 {
			return
		}
		line := 1 + bytes.Count(raw[:offset], []byte{'\n'})
		text := string(dec)
		if tag == "docker-auth" {
			// user:password
			if _, pw, ok := strings.Cut(text, ":"); ok && len(pw) >= 6 {
				out = append(out, Finding{RuleID: "docker-config-auth", Description: "Docker registry credentials in a config file",
					File: path, StartLine: line, EndLine: line, Secret: pw, Match: string(value),
					Entropy: float32(shannon(pw)), Tags: []string{"decoded:base64", "docker"}, Fingerprint: fingerprint("docker-config-auth", path, pw)})
			}
			return
		}
		for _, f := range d.Detect(Fragment{Raw: []byte(key8s + text + "\n"), Path: path}) {
			f.StartLine, f.EndLine = line, line
			f.Tags = append(append([]string{}, f.Tags...), "decoded:base64")
			out = append(out, f)
		}
	}
	if k8sSecretKind.Match(raw) {
		for _, m := range k8sDataValue.FindAllSubmatchIndex(raw, -1) {
			decodeAt(raw[m[4]:m[5]], m[4], "k8s")
		}
	}
	for _, m := range dockerAuth.FindAllSubmatchIndex(raw, -1) {
		decodeAt(raw[m[2]:m[3]], m[2], "docker-auth")
	}
	return out
}

// key8s gives a decoded Kubernetes value an assignment context, so the
// generic rule can judge it like any "password = ..." line.
const key8s = "secret_value = "
