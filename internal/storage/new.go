package storage

import "fmt"

// New opens a physical backend by kind: "inmem", or "bolt" (conf["path"] is
// the database file).
func New(kind string, conf map[string]string) (Backend, error) {
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
	return nil, fmt.Errorf("unknown storage type %q (inmem or bolt)", kind)
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
