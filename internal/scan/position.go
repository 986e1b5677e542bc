package scan

import (
	"bytes"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
)

// A value found by decoding JSON is located by walking the document's
// tokens, never by searching for the value re-encoded: the same text has
// many encodings ("<" and "\u003c", "é" and "\u00e9"), and the same value
// can sit at several places.

// span is the bytes [start, end) of a text; for a JSON string, those
// between its quotes.
type span struct{ start, end int }

// jsonPath names a value in a JSON document by its object keys and array
// indices, in the form jsonValueSpans looks for.
func jsonPath(steps ...any) string {
	parts := make([]string, len(steps))
	for i, s := range steps {
		switch v := s.(type) {
		case string:
			parts[i] = v
		case int:
			parts[i] = strconv.Itoa(v)
		}
	}
	return strings.Join(parts, "\x00")
}

// jsonValueSpans returns the span of each wanted path (see jsonPath) in
// raw. Paths that are not in raw, or are past a syntax error, are absent.
func jsonValueSpans(raw []byte, want map[string]bool) map[string]span {
	type frame struct {
		object  bool
		wantKey bool
		step    string // the key or index of the child being read
		index   int
		path    string // this container's own path
		start   int
	}
	found := make(map[string]span, len(want))
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var stack []*frame
	childPath := func() string {
		steps := make([]string, len(stack))
		for i, f := range stack {
			steps[i] = f.step
		}
		return strings.Join(steps, "\x00")
	}
	// done moves the innermost container on past the value just read.
	done := func() {
		if n := len(stack); n > 0 {
			top := stack[n-1]
			if top.object {
				top.wantKey = true
			} else {
				top.index++
				top.step = strconv.Itoa(top.index)
			}
		}
	}
	for {
		start := int(dec.InputOffset())
		for start < len(raw) && strings.IndexByte(" \t\r\n:,", raw[start]) >= 0 {
			start++
		}
		tok, err := dec.Token()
		if err != nil {
			break
		}
		end := int(dec.InputOffset())
		if n := len(stack); n > 0 && stack[n-1].wantKey {
			if key, ok := tok.(string); ok {
				stack[n-1].step, stack[n-1].wantKey = key, false
				continue
			}
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			stack = append(stack, &frame{object: tok == json.Delim('{'), wantKey: tok == json.Delim('{'), step: "0", path: childPath(), start: start})
		case json.Delim('}'), json.Delim(']'):
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if want[top.path] {
				found[top.path] = span{top.start, end}
			}
			done()
		default:
			if p := childPath(); want[p] {
				if _, ok := tok.(string); ok {
					found[p] = span{start + 1, end - 1}
				} else {
					found[p] = span{start, end}
				}
			}
			done()
		}
	}
	return found
}

// lineStarts are the offsets where a text's lines start, so that many
// offsets are turned into lines without counting from the top for each.
type lineStarts []int

func newLineStarts(raw []byte) lineStarts {
	ls := lineStarts{0}
	for i := 0; ; {
		j := bytes.IndexByte(raw[i:], '\n')
		if j < 0 {
			return ls
		}
		i += j + 1
		ls = append(ls, i)
	}
}

// at returns the 1-based line and byte column of offset.
func (ls lineStarts) at(offset int) (line, col int) {
	i := sort.Search(len(ls), func(i int) bool { return ls[i] > offset }) - 1
	return i + 1, offset - ls[i] + 1
}

// where is a finding's place in its file: 1-based lines and columns,
// counted in bytes as the rules' findings are; the end column is that of
// the last byte.
type where struct{ startLine, startCol, endLine, endCol int }

// locate returns the place of the bytes s covers.
func (ls lineStarts) locate(s span) where {
	var w where
	w.startLine, w.startCol = ls.at(s.start)
	w.endLine, w.endCol = ls.at(max(s.end-1, s.start))
	return w
}

// apply puts f at w.
func (w where) apply(f *Finding) {
	f.StartLine, f.StartColumn, f.EndLine, f.EndColumn = w.startLine, w.startCol, w.endLine, w.endCol
}
