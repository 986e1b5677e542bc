package sopsfile

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"
)

// Version is the sops format version Arca writes.
const Version = "3.13.2"

// Metadata is the sops block of a file.
type Metadata struct {
	KeyGroups       []KeyGroup
	ShamirThreshold int
	LastModified    string
	MAC             string
	Version         string
	Rule            Rule
}

// toMap renders the metadata as sops 3.13 does: keys sorted at every level;
// with one key group the per-kind lists sit at the top, else key_groups.
func (md *Metadata) toMap() *Map {
	m := &Map{}
	if len(md.KeyGroups) == 1 {
		for kind, entries := range md.KeyGroups[0] {
			m.Items = append(m.Items, Item{Key: kind, Value: entryList(entries)})
		}
	} else {
		var groups []any
		for _, g := range md.KeyGroups {
			gm := &Map{}
			for kind, entries := range g {
				gm.Items = append(gm.Items, Item{Key: kind, Value: entryList(entries)})
			}
			sortMap(gm)
			groups = append(groups, gm)
		}
		m.Items = append(m.Items, Item{Key: "key_groups", Value: groups})
	}
	m.Items = append(m.Items, Item{Key: "lastmodified", Value: md.LastModified}, Item{Key: "mac", Value: md.MAC})
	r := md.Rule
	for k, v := range map[string]string{
		"unencrypted_suffix": r.UnencryptedSuffix, "encrypted_suffix": r.EncryptedSuffix,
		"unencrypted_regex": r.UnencryptedRegex, "encrypted_regex": r.EncryptedRegex,
	} {
		if v != "" {
			m.Items = append(m.Items, Item{Key: k, Value: v})
		}
	}
	if r.MACOnlyEncrypted {
		m.Items = append(m.Items, Item{Key: "mac_only_encrypted", Value: true})
	}
	if md.ShamirThreshold > 0 && len(md.KeyGroups) > 1 {
		m.Items = append(m.Items, Item{Key: "shamir_threshold", Value: int64(md.ShamirThreshold)})
	}
	m.Items = append(m.Items, Item{Key: "version", Value: md.Version})
	sortMap(m)
	return m
}

func entryList(entries []*Map) []any {
	out := make([]any, len(entries))
	for i, e := range entries {
		sortMap(e)
		out[i] = e
	}
	return out
}

func sortMap(m *Map) {
	sort.SliceStable(m.Items, func(i, j int) bool { return m.Items[i].Key < m.Items[j].Key })
}

// metadataFromMap reads a sops block in any key order.
func metadataFromMap(m *Map) (*Metadata, error) {
	md := &Metadata{}
	str := func(k string) string {
		v, _ := m.Get(k)
		switch t := v.(type) {
		case string:
			return t
		case time.Time:
			return t.UTC().Format(time.RFC3339)
		case nil:
			return ""
		}
		return fmt.Sprint(v)
	}
	md.LastModified = str("lastmodified")
	md.MAC = str("mac")
	md.Version = str("version")
	md.Rule = Rule{
		UnencryptedSuffix: str("unencrypted_suffix"), EncryptedSuffix: str("encrypted_suffix"),
		UnencryptedRegex: str("unencrypted_regex"), EncryptedRegex: str("encrypted_regex"),
	}
	if v, ok := m.Get("mac_only_encrypted"); ok {
		switch t := v.(type) {
		case bool:
			md.Rule.MACOnlyEncrypted = t
		case string:
			md.Rule.MACOnlyEncrypted, _ = strconv.ParseBool(t)
		}
	}
	if s := str("shamir_threshold"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, fmt.Errorf("sops metadata: shamir_threshold %q is not a number", s)
		}
		md.ShamirThreshold = n
	}
	if groups, ok := m.Get("key_groups"); ok {
		list, _ := groups.([]any)
		for _, g := range list {
			gm, ok := g.(*Map)
			if !ok {
				return nil, errors.New("sops metadata: key_groups must be a list of mappings")
			}
			md.KeyGroups = append(md.KeyGroups, groupFromMap(gm))
		}
	} else {
		md.KeyGroups = []KeyGroup{groupFromMap(m)}
	}
	if md.LastModified == "" || md.MAC == "" {
		return nil, errors.New("sops metadata: lastmodified and mac are required")
	}
	if _, err := time.Parse(time.RFC3339, md.LastModified); err != nil {
		return nil, fmt.Errorf("sops metadata: lastmodified %q is not an RFC 3339 time", md.LastModified)
	}
	if md.Rule.count() > 1 {
		return nil, errors.New("sops metadata: more than one of unencrypted_suffix, encrypted_suffix, unencrypted_regex, encrypted_regex")
	}
	n := 0
	for _, g := range md.KeyGroups {
		for _, entries := range g {
			n += len(entries)
		}
	}
	if n == 0 {
		return nil, errors.New("sops metadata: no master keys found in the file")
	}
	return md, nil
}

func groupFromMap(m *Map) KeyGroup {
	g := KeyGroup{}
	for _, kind := range keyKinds {
		v, ok := m.Get(kind)
		if !ok {
			continue
		}
		list, _ := v.([]any)
		for _, e := range list {
			if em, ok := e.(*Map); ok {
				g[kind] = append(g[kind], em)
			}
		}
	}
	return g
}

// macAAD is the additional data the MAC is encrypted with: lastmodified
// re-formatted the way sops does.
func macAAD(lastModified string) string {
	t, err := time.Parse(time.RFC3339, lastModified)
	if err != nil {
		return lastModified
	}
	return t.Format(time.RFC3339)
}
