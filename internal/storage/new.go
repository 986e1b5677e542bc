package storage

import (
	"fmt"
	"sync"
)

// Opener opens a backend from its configuration options.
type Opener func(conf map[string]string) (Backend, error)

var (
	openersMu sync.RWMutex
	openers   = map[string]Opener{}
)

// Register makes a backend that lives in its own package (postgres, which
// imports this one) available to New under kind. It is called from that
// package's init, so importing the package is what enables the kind.
func Register(kind string, open Opener) {
	openersMu.Lock()
	defer openersMu.Unlock()
	openers[kind] = open
}

// New opens a physical backend by kind: "inmem", "bolt" (conf["path"] is
// the database file), or a registered kind ("postgresql").
func New(kind string, conf map[string]string) (Backend, error) {
	openersMu.RLock()
	open := openers[kind]
	openersMu.RUnlock()
	if open != nil {
		return open(conf)
	}
	switch kind {
	case "inmem":
		return NewInmem(), nil
	case "bolt":
		path := conf["path"]
		if path == "" {
			return nil, fmt.Errorf("bolt storage needs a path, e.g. storage \"bolt\" { path = \"/var/lib/arca/arca.db\" }")
		}
		return OpenBolt(path)
	}
	return nil, fmt.Errorf("unknown storage type %q (inmem, bolt or postgresql)", kind)
}

// children turns the keys below prefix into List's answer: immediate
// children, with a folder once and with a trailing "/". keys must be sorted.
func appendChild(out []string, prefix, key string) []string {
	rest := key[len(prefix):]
	for i := 0; i < len(rest); i++ {
		if rest[i] == '/' {
			folder := rest[:i+1]
			if n := len(out); n > 0 && out[n-1] == folder {
				return out
			}
			return append(out, folder)
		}
	}
	return append(out, rest)
}
