package sopsfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
)

// decodeJSON parses a JSON object keeping key order. Integers that fit in
// int64 become int64, other numbers float64.
func decodeJSON(data []byte) (*Map, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := jsonValue(dec)
	if err != nil {
		return nil, fmt.Errorf("parsing JSON: %w", err)
	}
	m, ok := v.(*Map)
	if !ok {
		return nil, errors.New("parsing JSON: the top level must be an object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("parsing JSON: unexpected data after the top-level object")
	}
	return m, nil
}

func jsonValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			m := &Map{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				v, err := jsonValue(dec)
				if err != nil {
					return nil, err
				}
				m.Items = append(m.Items, Item{Key: k, Value: v})
			}
			_, err := dec.Token()
			return m, err
		case '[':
			list := []any{}
			for dec.More() {
				v, err := jsonValue(dec)
				if err != nil {
					return nil, err
				}
				list = append(list, v)
			}
			_, err := dec.Token()
			return list, err
		}
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i, nil
		}
		return t.Float64()
	case string, bool, nil:
		return t, nil
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}

// encodeJSON writes the tree as tab-indented JSON with a trailing newline,
// as sops does.
func encodeJSON(m *Map) ([]byte, error) {
	var buf bytes.Buffer
	if err := writeJSON(&buf, m, 0); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

func newline(buf *bytes.Buffer, depth int) {
	buf.WriteByte('\n')
	for i := 0; i < depth; i++ {
		buf.WriteByte('\t')
	}
}

// writeJSONString writes s quoted; strings that need no escaping (every
// ENC[...] value) are copied as they are.
func writeJSONString(buf *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s)
			buf.Write(b)
			return
		}
	}
	buf.Grow(len(s) + 2)
	buf.WriteByte('"')
	buf.WriteString(s)
	buf.WriteByte('"')
}

func writeJSON(buf *bytes.Buffer, v any, depth int) error {
	switch t := v.(type) {
	case *Map:
		buf.WriteByte('{')
		n := 0
		for _, it := range t.Items {
			if _, isComment := it.Value.(Comment); isComment {
				continue // JSON has no comments
			}
			if n > 0 {
				buf.WriteByte(',')
			}
			n++
			newline(buf, depth+1)
			writeJSONString(buf, it.Key)
			buf.WriteString(": ")
			if err := writeJSON(buf, it.Value, depth+1); err != nil {
				return err
			}
		}
		if n > 0 {
			newline(buf, depth)
		}
		buf.WriteByte('}')
	case []any:
		buf.WriteByte('[')
		n := 0
		for _, e := range t {
			if _, isComment := e.(Comment); isComment {
				continue
			}
			if n > 0 {
				buf.WriteByte(',')
			}
			n++
			newline(buf, depth+1)
			if err := writeJSON(buf, e, depth+1); err != nil {
				return err
			}
		}
		if n > 0 {
			newline(buf, depth)
		}
		buf.WriteByte(']')
	case string:
		writeJSONString(buf, t)
	case float64:
		if math.IsInf(t, 0) || math.IsNaN(t) {
			return fmt.Errorf("%v cannot be written as JSON", t)
		}
		if t == math.Trunc(t) && math.Abs(t) < 1e21 {
			buf.WriteString(strconv.FormatFloat(t, 'f', -1, 64))
		} else {
			b, _ := json.Marshal(t)
			buf.Write(b)
		}
	case time.Time:
		writeJSONString(buf, t.Format(time.RFC3339Nano))
	case []byte:
		writeJSONString(buf, string(t))
	default:
		b, err := json.Marshal(t)
		if err != nil {
			return err
		}
		buf.Write(b)
	}
	return nil
}
