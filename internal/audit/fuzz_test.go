package audit

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"testing"
)

// FuzzAppendJSONString checks the hand-written string encoder against
// encoding/json: whatever the input, the output decodes to what
// encoding/json's own encoding decodes to.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "a\"b\\c", "\n\r\t\x00\x1f", "\xff\xfe", "é€😀", "\u2028\u2029", "<&>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var got, want string
		if err := json.Unmarshal(appendJSONString(nil, s), &got); err != nil {
			t.Fatalf("%q encodes to invalid JSON: %v", s, err)
		}
		ref, _ := json.Marshal(s)
		json.Unmarshal(ref, &want)
		if got != want {
			t.Fatalf("%q decodes to %q, encoding/json gives %q", s, got, want)
		}
	})
}

// FuzzJSONx feeds arbitrary JSON documents to the JSONx converter: it
// either refuses the input or writes well-formed XML.
func FuzzJSONx(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":{"b":[1,"x",null,true]}}`, `[]`, `"s"`, `{"<":"&"}`, `{"a":"\u0000"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		out, err := toJSONx(doc)
		if err != nil {
			return
		}
		dec := xml.NewDecoder(bytes.NewReader(out))
		for {
			_, err := dec.Token()
			if err == io.EOF {
				return
			}
			if err != nil {
				// XML 1.0 cannot carry some control characters at all;
				// encoding/xml's escaper writes them as U+FFFD, so any other
				// failure is a bug.
				t.Fatalf("JSONx of %q is not XML: %v\n%s", doc, err, out)
			}
		}
	})
}
