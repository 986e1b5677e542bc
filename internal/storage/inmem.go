package storage

import (
	"context"
	"sort"
	"strings"
	"sync"
)

// Inmem is an in-memory backend for dev mode and tests. Nothing survives
// the process.
type Inmem struct {
	mu   sync.RWMutex
	data map[string][]byte
}

// NewInmem returns an empty in-memory backend.
func NewInmem() *Inmem { return &Inmem{data: make(map[string][]byte)} }

func (m *Inmem) Get(_ context.Context, key string) (*Entry, error) {
	m.mu.RLock()
	v, ok := m.data[key]
	m.mu.RUnlock()
	if !ok {
		return nil, nil
	}
	return &Entry{Key: key, Value: v}, nil
}

func (m *Inmem) Put(_ context.Context, e *Entry) error {
	v := append([]byte(nil), e.Value...)
	m.mu.Lock()
	m.data[e.Key] = v
	m.mu.Unlock()
	return nil
}

func (m *Inmem) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	delete(m.data, key)
	m.mu.Unlock()
	return nil
}

func (m *Inmem) List(_ context.Context, prefix string) ([]string, error) {
	m.mu.RLock()
	var keys []string
	for k := range m.data {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	m.mu.RUnlock()
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		out = appendChild(out, prefix, k)
	}
	return out, nil
}

func (m *Inmem) Transaction(_ context.Context, ops []Op) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, op := range ops {
		if op.Kind == OpDelete {
			delete(m.data, op.Entry.Key)
		} else {
			m.data[op.Entry.Key] = append([]byte(nil), op.Entry.Value...)
		}
	}
	return nil
}

func (m *Inmem) Close() error { return nil }
