package sopsfile

import (
	"bufio"
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// dotenv: KEY=VALUE lines, '#' comments; a literal \n in a value is a
// newline. The sops block is flattened into sops_-prefixed keys.

func decodeDotenv(data []byte) (*Map, error) {
	m := &Map{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		trimmed := strings.TrimSpace(text)
		if trimmed == "" {
			continue
		}
		if strings.HasPrefix(trimmed, "#") {
			m.Items = append(m.Items, Item{Value: Comment(strings.TrimPrefix(trimmed, "#"))})
			continue
		}
		k, v, ok := strings.Cut(text, "=")
		if !ok {
			return nil, fmt.Errorf("parsing dotenv: line %d has no '='", line)
		}
		m.Items = append(m.Items, Item{Key: k, Value: strings.ReplaceAll(v, `\n`, "\n")})
	}
	return m, sc.Err()
}

func encodeDotenv(m *Map) ([]byte, error) {
	var b bytes.Buffer
	for _, it := range m.Items {
		if c, ok := it.Value.(Comment); ok {
			b.WriteString("#" + string(c) + "\n")
			continue
		}
		switch it.Value.(type) {
		case *Map, []any:
			return nil, fmt.Errorf("cannot use complex value in dotenv file: %q", it.Key)
		}
		v, err := scalarText(it.Value)
		if err != nil {
			return nil, err
		}
		b.WriteString(it.Key + "=" + strings.ReplaceAll(v, "\n", `\n`) + "\n")
	}
	return b.Bytes(), nil
}

// scalarText renders a leaf as text for flat formats.
func scalarText(v any) (string, error) {
	switch t := v.(type) {
	case string:
		return t, nil
	case nil:
		return "", nil
	case bool:
		return strconv.FormatBool(t), nil
	}
	b, _, err := plaintextOf(v)
	return string(b), err
}

// flatten turns a nested metadata map into key paths joined with __map_
// and __list_N, as sops stores metadata in flat formats.
func flatten(prefix string, v any, out map[string]string) {
	switch t := v.(type) {
	case *Map:
		for _, it := range t.Items {
			flatten(prefix+"__map_"+it.Key, it.Value, out)
		}
	case []any:
		for i, e := range t {
			flatten(prefix+"__list_"+strconv.Itoa(i), e, out)
		}
	default:
		s, _ := scalarText(v)
		out[prefix] = s
	}
}

func flattenMetadata(md *Map) []Item {
	flat := map[string]string{}
	for _, it := range md.Items {
		flatten(it.Key, it.Value, flat)
	}
	keys := make([]string, 0, len(flat))
	for k := range flat {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	items := make([]Item, len(keys))
	for i, k := range keys {
		items[i] = Item{Key: k, Value: flat[k]}
	}
	return items
}

// unflatten rebuilds the metadata map from flat keys.
func unflatten(items []Item) (*Map, error) {
	root := &Map{}
	for _, it := range items {
		parts := splitFlat(it.Key)
		if err := setFlat(root, parts, it.Value); err != nil {
			return nil, fmt.Errorf("sops metadata key %q: %w", it.Key, err)
		}
	}
	return root, nil
}

type flatPart struct {
	key   string
	index int // -1 for a map key
}

func splitFlat(key string) []flatPart {
	var parts []flatPart
	first, rest, _ := strings.Cut(key, "__")
	parts = append(parts, flatPart{key: first, index: -1})
	for rest != "" {
		var seg string
		seg, rest, _ = strings.Cut(rest, "__")
		switch {
		case strings.HasPrefix(seg, "map_"):
			parts = append(parts, flatPart{key: seg[4:], index: -1})
		case strings.HasPrefix(seg, "list_"):
			n, _ := strconv.Atoi(seg[5:])
			parts = append(parts, flatPart{index: n})
		default:
			// A key that itself contains "__": glue it back on.
			last := &parts[len(parts)-1]
			last.key += "__" + seg
		}
	}
	return parts
}

func setFlat(container any, parts []flatPart, value any) error {
	p := parts[0]
	last := len(parts) == 1
	var child any
	if !last {
		if parts[1].index >= 0 {
			child = []any{}
		} else {
			child = &Map{}
		}
	}
	switch c := container.(type) {
	case *Map:
		existing, ok := c.Get(p.key)
		if last {
			c.Set(p.key, value)
			return nil
		}
		if !ok {
			c.Set(p.key, child)
			existing = child
		}
		if l, isList := existing.([]any); isList {
			updated, err := setList(l, parts[1:], value)
			if err != nil {
				return err
			}
			c.Set(p.key, updated)
			return nil
		}
		return setFlat(existing, parts[1:], value)
	}
	return fmt.Errorf("unexpected structure")
}

func setList(l []any, parts []flatPart, value any) ([]any, error) {
	idx := parts[0].index
	if idx < 0 || idx > 10000 {
		return nil, fmt.Errorf("bad list index")
	}
	for len(l) <= idx {
		l = append(l, nil)
	}
	if len(parts) == 1 {
		l[idx] = value
		return l, nil
	}
	if l[idx] == nil {
		if parts[1].index >= 0 {
			l[idx] = []any{}
		} else {
			l[idx] = &Map{}
		}
	}
	if sub, ok := l[idx].([]any); ok {
		updated, err := setList(sub, parts[1:], value)
		l[idx] = updated
		return l, err
	}
	return l, setFlat(l[idx], parts[1:], value)
}
