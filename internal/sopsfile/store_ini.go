package sopsfile

import (
	"bytes"
	"fmt"
	"strings"

	"gopkg.in/ini.v1"
)

// INI: each section is a mapping of string values (so a value's path is
// section:key:), comments kept; the sops block is a [sops] section of
// flattened keys, with newlines escaped as \n.

func iniLoadOptions() ini.LoadOptions {
	return ini.LoadOptions{
		IgnoreInlineComment:        true,
		SpaceBeforeInlineComment:   true,
		PreserveSurroundedQuote:    true,
		AllowPythonMultilineValues: false,
	}
}

func decodeINI(data []byte) (*Map, error) {
	cfg, err := ini.LoadSources(iniLoadOptions(), data)
	if err != nil {
		return nil, fmt.Errorf("parsing INI: %w", err)
	}
	root := &Map{}
	for _, sec := range cfg.Sections() {
		if sec.Name() == ini.DefaultSection && len(sec.Keys()) == 0 {
			continue
		}
		root.Items = append(root.Items, commentItems(sec.Comment)...)
		m := &Map{}
		for _, k := range sec.Keys() {
			m.Items = append(m.Items, commentItems(k.Comment)...)
			m.Items = append(m.Items, Item{Key: k.Name(), Value: k.Value()})
		}
		root.Items = append(root.Items, Item{Key: sec.Name(), Value: m})
	}
	return root, nil
}

func encodeINI(root *Map) ([]byte, error) {
	cfg := ini.Empty(iniLoadOptions())
	var pending []string
	for _, it := range root.Items {
		if c, ok := it.Value.(Comment); ok {
			pending = append(pending, "#"+string(c))
			continue
		}
		m, ok := it.Value.(*Map)
		if !ok {
			return nil, fmt.Errorf("INI values must be inside a section; %q is not", it.Key)
		}
		sec, err := cfg.NewSection(it.Key)
		if err != nil {
			return nil, err
		}
		sec.Comment = strings.Join(pending, "\n")
		pending = nil
		var keyComments []string
		for _, kv := range m.Items {
			if c, ok := kv.Value.(Comment); ok {
				keyComments = append(keyComments, "#"+string(c))
				continue
			}
			switch kv.Value.(type) {
			case *Map, []any:
				return nil, fmt.Errorf("INI cannot hold the nested value of %s.%s", it.Key, kv.Key)
			}
			v, err := scalarText(kv.Value)
			if err != nil {
				return nil, err
			}
			key, err := sec.NewKey(kv.Key, v)
			if err != nil {
				return nil, err
			}
			key.Comment = strings.Join(keyComments, "\n")
			keyComments = nil
		}
	}
	var buf bytes.Buffer
	if _, err := cfg.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// iniMetadata moves the [sops] section out of an INI tree and rebuilds
// the metadata map from its flattened keys.
func iniMetadata(tree *Map) (*Map, error) {
	v, ok := tree.Get("sops")
	if !ok {
		return nil, ErrNotEncrypted
	}
	sec, ok := v.(*Map)
	if !ok {
		return nil, fmt.Errorf("the [sops] section is malformed")
	}
	tree.Delete("sops")
	var flat []Item
	for _, it := range sec.Items {
		if it.Key == "" {
			continue
		}
		s, _ := it.Value.(string)
		// sops 3.13.0-3.13.1 escaped once, 3.13.2 reads both.
		s = strings.ReplaceAll(strings.ReplaceAll(s, `\\n`, "\n"), `\n`, "\n")
		flat = append(flat, Item{Key: it.Key, Value: s})
	}
	return unflatten(flat)
}

// iniMetadataSection renders metadata as the [sops] section.
func iniMetadataSection(md *Map) *Map {
	sec := &Map{}
	for _, it := range flattenMetadata(md) {
		s, _ := it.Value.(string)
		sec.Items = append(sec.Items, Item{Key: it.Key, Value: strings.ReplaceAll(s, "\n", `\n`)})
	}
	return sec
}
