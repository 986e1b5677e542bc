package sopsfile

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// decodeYAML parses a YAML mapping keeping key order and comments.
// Anchors are expanded and tags dropped, as sops does.
func decodeYAML(data []byte) (*Map, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parsing YAML: %w", err)
	}
	if doc.Kind == 0 {
		return &Map{}, nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("parsing YAML: the top level must be a mapping")
	}
	v, err := yamlValue(doc.Content[0])
	if err != nil {
		return nil, err
	}
	m := v.(*Map)
	m.Items = append(commentItems(doc.HeadComment), m.Items...)
	m.Items = append(m.Items, commentItems(doc.FootComment)...)
	return m, nil
}

// commentItems turns a comment block (YAML's '#' lines, INI's '#' or ';'
// lines) into comment items without the comment character.
func commentItems(block string) []Item {
	var out []Item
	for _, line := range strings.Split(block, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if line[0] == '#' || line[0] == ';' {
			line = line[1:]
		}
		out = append(out, Item{Value: Comment(line)})
	}
	return out
}

func yamlValue(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.AliasNode:
		return yamlValue(n.Alias)
	case yaml.MappingNode:
		m := &Map{}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			kn, vn := n.Content[i], n.Content[i+1]
			if kn.Kind == yaml.ScalarNode && kn.Tag == "!!merge" {
				merged, err := yamlValue(vn)
				if err != nil {
					return nil, err
				}
				if mm, ok := merged.(*Map); ok {
					m.Items = append(m.Items, mm.Items...)
				}
				continue
			}
			if kn.Kind != yaml.ScalarNode || (kn.Tag != "!!str" && kn.Tag != "") {
				return nil, fmt.Errorf("parsing YAML: line %d: only string keys are supported", kn.Line)
			}
			if seen[kn.Value] {
				return nil, fmt.Errorf("parsing YAML: line %d: duplicate key %q", kn.Line, kn.Value)
			}
			seen[kn.Value] = true
			m.Items = append(m.Items, commentItems(kn.HeadComment)...)
			v, err := yamlValue(vn)
			if err != nil {
				return nil, err
			}
			m.Items = append(m.Items, Item{Key: kn.Value, Value: v})
			m.Items = append(m.Items, commentItems(kn.LineComment+"\n"+vn.LineComment)...)
			m.Items = append(m.Items, commentItems(kn.FootComment)...)
		}
		return m, nil
	case yaml.SequenceNode:
		list := []any{}
		for _, e := range n.Content {
			for _, c := range commentItems(e.HeadComment) {
				list = append(list, c.Value)
			}
			v, err := yamlValue(e)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
		return list, nil
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("parsing YAML: line %d: %w", n.Line, err)
		}
		switch t := v.(type) {
		case int:
			return int64(t), nil
		case uint64:
			return float64(t), nil
		}
		return v, nil
	}
	return nil, fmt.Errorf("parsing YAML: line %d: unsupported node", n.Line)
}

// encodeYAML writes the tree with four-space indentation, as sops does.
func encodeYAML(m *Map) ([]byte, error) {
	root, err := yamlNode(m)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(4)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func yamlNode(v any) (*yaml.Node, error) {
	switch t := v.(type) {
	case *Map:
		n := &yaml.Node{Kind: yaml.MappingNode}
		var pending []string
		for _, it := range t.Items {
			if c, ok := it.Value.(Comment); ok {
				pending = append(pending, "#"+string(c))
				continue
			}
			kn := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: it.Key}
			if len(pending) > 0 {
				kn.HeadComment = strings.Join(pending, "\n")
				pending = nil
			}
			vn, err := yamlNode(it.Value)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, kn, vn)
		}
		if len(pending) > 0 {
			if len(n.Content) > 0 {
				n.Content[len(n.Content)-2].FootComment = strings.Join(pending, "\n")
			} else {
				n.HeadComment = strings.Join(pending, "\n")
			}
		}
		return n, nil
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode}
		var pending []string
		for _, e := range t {
			if c, ok := e.(Comment); ok {
				if IsEncrypted(string(c)) {
					// sops keeps an encrypted list comment as an item.
					n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: string(c)})
					continue
				}
				pending = append(pending, "#"+string(c))
				continue
			}
			en, err := yamlNode(e)
			if err != nil {
				return nil, err
			}
			if len(pending) > 0 {
				en.HeadComment = strings.Join(pending, "\n")
				pending = nil
			}
			n.Content = append(n.Content, en)
		}
		return n, nil
	case time.Time:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!timestamp", Value: t.Format(time.RFC3339Nano)}, nil
	case []byte:
		return yamlNode(string(t))
	}
	n := &yaml.Node{}
	if err := n.Encode(v); err != nil {
		return nil, err
	}
	return n, nil
}
