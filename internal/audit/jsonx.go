package audit

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"sort"
)

// toJSONx renders a JSON document as JSONx, IBM's XML encoding of JSON that
// Vault's format=jsonx writes for XML-based log pipelines.
func toJSONx(doc []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.WriteString(`<?xml version="1.0" encoding="UTF-8"?>`)
	writeJSONx(&buf, "", v, true)
	return buf.Bytes(), nil
}

func writeJSONx(buf *bytes.Buffer, name string, v any, root bool) {
	open := func(kind string) {
		buf.WriteString("<json:" + kind)
		if name != "" {
			buf.WriteString(` name="`)
			xml.EscapeText(buf, []byte(name))
			buf.WriteByte('"')
		}
		if root {
			buf.WriteString(` xsi:schemaLocation="http://www.datapower.com/schemas/json jsonx.xsd" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:json="http://www.ibm.com/xmlns/prod/2009/jsonx"`)
		}
	}
	switch v := v.(type) {
	case nil:
		open("null")
		buf.WriteString("/>")
	case bool:
		open("boolean")
		if v {
			buf.WriteString(">true</json:boolean>")
		} else {
			buf.WriteString(">false</json:boolean>")
		}
	case json.Number:
		open("number")
		buf.WriteString(">" + v.String() + "</json:number>")
	case string:
		open("string")
		buf.WriteByte('>')
		xml.EscapeText(buf, []byte(v))
		buf.WriteString("</json:string>")
	case []any:
		open("array")
		buf.WriteByte('>')
		for _, x := range v {
			writeJSONx(buf, "", x, false)
		}
		buf.WriteString("</json:array>")
	case map[string]any:
		open("object")
		buf.WriteByte('>')
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			writeJSONx(buf, k, v[k], false)
		}
		buf.WriteString("</json:object>")
	}
}
