package core

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/arcasec/arca/internal/storage"
)

// The access report answers "who read this secret?" from what the server
// served: for every path read on a secrets engine, which tokens (by
// accessor), policies, auth mounts and client addresses read it, how often
// and when last. It is kept in memory, flushed behind the barrier every few
// seconds and on seal, and bounded so a busy server cannot grow it without
// limit.
const (
	accessMaxPaths      = 10000
	accessMaxReaders    = 100 // per path; the least recently seen is dropped
	accessMaxTallies    = 100 // per path and kind (policies, auth mounts, addresses)
	accessMaxAddrs      = 8   // per reader
	accessFlushInterval = 5 * time.Second
)

// tally counts reads by one policy, auth mount or address.
type tally struct {
	Reads    int64     `json:"reads"`
	LastRead time.Time `json:"last_read"`
}

type readerAccess struct {
	Accessor    string   `json:"accessor"`
	DisplayName string   `json:"display_name"`
	Policies    []string `json:"policies"`
	AuthMount   string   `json:"auth_mount"`
	// The identity entity behind the token and its alias (its name on the
	// token's auth mount), when the token has one.
	EntityID        string    `json:"entity_id,omitempty"`
	EntityName      string    `json:"entity_name,omitempty"`
	AliasName       string    `json:"alias_name,omitempty"`
	Reads           int64     `json:"reads"`
	FirstRead       time.Time `json:"first_read"`
	LastRead        time.Time `json:"last_read"`
	RemoteAddresses []string  `json:"remote_addresses"`
}

type pathAccess struct {
	Path            string                   `json:"path"`
	Reads           int64                    `json:"reads"`
	FirstRead       time.Time                `json:"first_read"`
	LastRead        time.Time                `json:"last_read"`
	Readers         map[string]*readerAccess `json:"readers"`
	Policies        map[string]*tally        `json:"policies"`
	AuthMounts      map[string]*tally        `json:"auth_mounts"`
	RemoteAddresses map[string]*tally        `json:"remote_addresses"`
}

type accessReport struct {
	store     storage.Transactional
	authMount func(tokenPath string) string
	// identify names a token's entity and its alias; nil: no identities.
	identify func(te *TokenEntry) (entityName, aliasName string)

	mu    sync.Mutex
	paths map[string]*pathAccess
	dirty map[string]bool

	stop chan struct{}
	done chan struct{}
}

func newAccessReport(store storage.Transactional, authMount func(string) string) *accessReport {
	return &accessReport{store: store, authMount: authMount, paths: map[string]*pathAccess{}, dirty: map[string]bool{}}
}

func accessKey(path string) string {
	sum := sha256.Sum256([]byte(path))
	return hex.EncodeToString(sum[:])
}

func (a *accessReport) load(ctx context.Context) error {
	keys, err := a.store.List(ctx, "")
	if err != nil {
		return err
	}
	for _, k := range keys {
		e, err := a.store.Get(ctx, k)
		if err != nil {
			return err
		}
		if e == nil {
			continue
		}
		var pa pathAccess
		if err := json.Unmarshal(e.Value, &pa); err != nil {
			continue // a damaged record costs its own history, nothing else
		}
		a.paths[pa.Path] = &pa
	}
	return nil
}

// record notes one successful read of path by te.
func (a *accessReport) record(path string, te *TokenEntry, remoteAddr string, now time.Time) {
	host := remoteAddr
	if h, _, err := net.SplitHostPort(remoteAddr); err == nil {
		host = h
	}
	mount := a.authMount(te.Path)
	var entityName, aliasName string
	if a.identify != nil && te.EntityID != "" {
		entityName, aliasName = a.identify(te)
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	pa := a.paths[path]
	if pa == nil {
		if len(a.paths) >= accessMaxPaths {
			a.evictOldestPath()
		}
		pa = &pathAccess{Path: path, FirstRead: now, Readers: map[string]*readerAccess{},
			Policies: map[string]*tally{}, AuthMounts: map[string]*tally{}, RemoteAddresses: map[string]*tally{}}
		a.paths[path] = pa
	}
	pa.Reads++
	pa.LastRead = now
	a.dirty[path] = true

	r := pa.Readers[te.Accessor]
	if r == nil {
		if len(pa.Readers) >= accessMaxReaders {
			oldest := ""
			for k, x := range pa.Readers {
				if oldest == "" || x.LastRead.Before(pa.Readers[oldest].LastRead) {
					oldest = k
				}
			}
			delete(pa.Readers, oldest)
		}
		r = &readerAccess{Accessor: te.Accessor, DisplayName: te.DisplayName, Policies: te.Policies, AuthMount: mount, FirstRead: now}
		pa.Readers[te.Accessor] = r
	}
	r.Reads++
	r.LastRead = now
	if te.EntityID != "" {
		r.EntityID = te.EntityID
		if entityName != "" {
			r.EntityName, r.AliasName = entityName, aliasName
		}
	}
	if host != "" && !containsString(r.RemoteAddresses, host) {
		if len(r.RemoteAddresses) >= accessMaxAddrs {
			r.RemoteAddresses = r.RemoteAddresses[1:]
		}
		r.RemoteAddresses = append(r.RemoteAddresses, host)
	}
	for _, p := range te.Policies {
		bump(pa.Policies, p, now)
	}
	bump(pa.AuthMounts, mount, now)
	if host != "" {
		bump(pa.RemoteAddresses, host, now)
	}
}

func bump(m map[string]*tally, key string, now time.Time) {
	t := m[key]
	if t == nil {
		if len(m) >= accessMaxTallies {
			oldest := ""
			for k, x := range m {
				if oldest == "" || x.LastRead.Before(m[oldest].LastRead) {
					oldest = k
				}
			}
			delete(m, oldest)
		}
		t = &tally{}
		m[key] = t
	}
	t.Reads++
	t.LastRead = now
}

func (a *accessReport) evictOldestPath() {
	oldest := ""
	for k, x := range a.paths {
		if oldest == "" || x.LastRead.Before(a.paths[oldest].LastRead) {
			oldest = k
		}
	}
	delete(a.paths, oldest)
	a.dirty[oldest] = true // flush deletes it from storage
}

// report returns the access record of path as response data.
func (a *accessReport) report(path string) map[string]any {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]any{"path": path, "reads": int64(0), "readers": []any{},
		"policies": map[string]any{}, "auth_mounts": map[string]any{}, "remote_addresses": map[string]any{}}
	pa := a.paths[path]
	if pa == nil {
		return out
	}
	out["reads"] = pa.Reads
	out["first_read"] = formatTime(pa.FirstRead)
	out["last_read"] = formatTime(pa.LastRead)
	readers := make([]*readerAccess, 0, len(pa.Readers))
	for _, r := range pa.Readers {
		readers = append(readers, r)
	}
	sort.Slice(readers, func(i, j int) bool { return readers[i].LastRead.After(readers[j].LastRead) })
	list := make([]any, len(readers))
	for i, r := range readers {
		list[i] = map[string]any{
			"accessor":         r.Accessor,
			"display_name":     r.DisplayName,
			"policies":         append([]string(nil), r.Policies...),
			"auth_mount":       r.AuthMount,
			"entity_id":        r.EntityID,
			"entity_name":      r.EntityName,
			"alias_name":       r.AliasName,
			"reads":            r.Reads,
			"first_read":       formatTime(r.FirstRead),
			"last_read":        formatTime(r.LastRead),
			"remote_addresses": append([]string(nil), r.RemoteAddresses...),
		}
	}
	out["readers"] = list
	out["policies"] = tallies(pa.Policies)
	out["auth_mounts"] = tallies(pa.AuthMounts)
	out["remote_addresses"] = tallies(pa.RemoteAddresses)
	return out
}

func tallies(m map[string]*tally) map[string]any {
	out := make(map[string]any, len(m))
	for k, t := range m {
		out[k] = map[string]any{"reads": t.Reads, "last_read": formatTime(t.LastRead)}
	}
	return out
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// list returns the recorded paths under prefix, sorted.
func (a *accessReport) list(prefix string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for p := range a.paths {
		if strings.HasPrefix(p, prefix) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// flush writes the changed records in one transaction.
func (a *accessReport) flush(ctx context.Context) error {
	a.mu.Lock()
	if len(a.dirty) == 0 {
		a.mu.Unlock()
		return nil
	}
	ops := make([]storage.Op, 0, len(a.dirty))
	for p := range a.dirty {
		key := accessKey(p)
		pa := a.paths[p]
		if pa == nil {
			ops = append(ops, storage.Op{Kind: storage.OpDelete, Entry: &storage.Entry{Key: key}})
			continue
		}
		raw, err := json.Marshal(pa)
		if err != nil {
			a.mu.Unlock()
			return err
		}
		ops = append(ops, storage.Op{Kind: storage.OpPut, Entry: &storage.Entry{Key: key, Value: raw}})
	}
	dirty := a.dirty
	a.dirty = map[string]bool{}
	a.mu.Unlock()
	if err := a.store.Transaction(ctx, ops); err != nil {
		a.mu.Lock()
		for p := range dirty {
			a.dirty[p] = true
		}
		a.mu.Unlock()
		return err
	}
	return nil
}

func (a *accessReport) start(logger interface{ Warn(string, ...any) }) {
	a.stop, a.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(a.done)
		t := time.NewTicker(accessFlushInterval)
		defer t.Stop()
		for {
			select {
			case <-a.stop:
				return
			case <-t.C:
				if err := a.flush(context.Background()); err != nil {
					logger.Warn("storing the access report failed; will retry", "error", err)
				}
			}
		}
	}()
}

// close stops the flusher and flushes what is left.
func (a *accessReport) close(ctx context.Context) error {
	if a.stop != nil {
		close(a.stop)
		<-a.done
		a.stop = nil
	}
	return a.flush(ctx)
}

// inAccessReport reports whether reads on a mount of this type belong
// in the access report: secrets engines, not the system or per-token
// cubbyhole backends.
func inAccessReport(typ string) bool {
	return typ != "system" && typ != "cubbyhole" && typ != "identity"
}
