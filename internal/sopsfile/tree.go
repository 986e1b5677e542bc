// Package sopsfile reads and writes SOPS-format encrypted files: each value
// encrypted with AES-256-GCM under a per-file data key, keys left in the
// clear, a MAC over all values, and the data key wrapped by master keys
// (age and Vault-compatible transit keys here; other kinds are kept
// untouched), so that files written here
// decrypt with sops and files sops wrote decrypt here.
package sopsfile

import "time"

// Map is an ordered mapping. Comments are items with a Comment value and
// an empty key.
type Map struct {
	Items []Item
}

// Item is one key and value of a Map.
type Item struct {
	Key   string
	Value any
}

// Comment is a comment line kept in the tree (without its leading '#').
type Comment string

// Leaf values are string, int64, float64, bool, time.Time, []byte or nil;
// lists are []any; nested mappings are *Map.
var _ = time.Time{}

// Get returns the value of key and whether it is present.
func (m *Map) Get(key string) (any, bool) {
	for _, it := range m.Items {
		if it.Key == key {
			if _, isComment := it.Value.(Comment); !isComment {
				return it.Value, true
			}
		}
	}
	return nil, false
}

// Set replaces the value of key, or appends it.
func (m *Map) Set(key string, v any) {
	for i, it := range m.Items {
		if it.Key == key {
			if _, isComment := it.Value.(Comment); !isComment {
				m.Items[i].Value = v
				return
			}
		}
	}
	m.Items = append(m.Items, Item{Key: key, Value: v})
}

// Delete removes key and reports whether it was there.
func (m *Map) Delete(key string) bool {
	for i, it := range m.Items {
		if it.Key == key {
			if _, isComment := it.Value.(Comment); !isComment {
				m.Items = append(m.Items[:i], m.Items[i+1:]...)
				return true
			}
		}
	}
	return false
}
