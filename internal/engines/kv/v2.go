package kv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/arcasec/arca/internal/logical"
	fw "github.com/arcasec/arca/internal/logical/framework"
	"github.com/arcasec/arca/internal/storage"
)

// Storage layout of a v2 mount:
//
//	config                      mount-wide settings
//	metadata/<path>             a secret's metadata, one entry per secret
//	versions/<sha256(path)>/<n> the data of version n
const (
	configKey       = "config"
	metadataPrefix  = "metadata/"
	versionsPrefix  = "versions/"
	defaultVersions = 10
)

type config struct {
	MaxVersions        int           `json:"max_versions"`
	CASRequired        bool          `json:"cas_required"`
	DeleteVersionAfter time.Duration `json:"delete_version_after"`
}

type versionMeta struct {
	CreatedTime  time.Time `json:"created_time"`
	DeletionTime time.Time `json:"deletion_time,omitzero"`
	Destroyed    bool      `json:"destroyed,omitempty"`
}

type metadata struct {
	CurrentVersion     int                  `json:"current_version"`
	OldestVersion      int                  `json:"oldest_version"`
	CreatedTime        time.Time            `json:"created_time"`
	UpdatedTime        time.Time            `json:"updated_time"`
	MaxVersions        int                  `json:"max_versions"`
	CASRequired        bool                 `json:"cas_required"`
	DeleteVersionAfter time.Duration        `json:"delete_version_after"`
	CustomMetadata     map[string]string    `json:"custom_metadata,omitempty"`
	Versions           map[int]*versionMeta `json:"versions"`
}

type versionData struct {
	Data map[string]any `json:"data"`
}

type v2 struct {
	conf  *logical.BackendConfig
	locks keyLocks
}

func newV2(conf *logical.BackendConfig) logical.Backend {
	b := &v2{conf: conf}
	type opmap = map[logical.Operation]fw.OperationFunc
	versionsFields := map[string]*fw.FieldSchema{
		"path":     {Type: fw.TypeString},
		"versions": {Type: fw.TypeCommaIntSlice, Description: "the versions to act on"},
	}
	return &fw.Backend{
		Help: "KV v2: versioned secrets with metadata, check-and-set and soft delete.",
		Paths: []*fw.Path{
			{
				Pattern: "config",
				Fields: map[string]*fw.FieldSchema{
					"max_versions":         {Type: fw.TypeInt, Description: "versions kept per secret (0: 10)"},
					"cas_required":         {Type: fw.TypeBool, Description: "every write must carry options.cas"},
					"delete_version_after": {Type: fw.TypeDuration, Description: "versions are deleted this long after they are written"},
				},
				Operations: opmap{logical.ReadOperation: b.readConfig, logical.UpdateOperation: b.writeConfig},
			},
			{
				Pattern: "data/(?P<path>.+)",
				Fields: map[string]*fw.FieldSchema{
					"path":    {Type: fw.TypeString},
					"data":    {Type: fw.TypeMap, Description: "the secret's key/value pairs"},
					"options": {Type: fw.TypeMap, Description: "write options: cas"},
					"version": {Type: fw.TypeInt, Description: "the version to read (0: the latest)"},
				},
				ExistenceCheck: b.metadataExists,
				Operations: opmap{
					logical.ReadOperation:   b.readData,
					logical.CreateOperation: b.writeData,
					logical.UpdateOperation: b.writeData,
					logical.PatchOperation:  b.patchData,
					logical.DeleteOperation: b.deleteLatest,
				},
			},
			{Pattern: "delete/(?P<path>.+)", Fields: versionsFields, Operations: opmap{logical.UpdateOperation: b.deleteVersions}},
			{Pattern: "undelete/(?P<path>.+)", Fields: versionsFields, Operations: opmap{logical.UpdateOperation: b.undeleteVersions}},
			{Pattern: "destroy/(?P<path>.+)", Fields: versionsFields, Operations: opmap{logical.UpdateOperation: b.destroyVersions}},
			{
				// "metadata" and "metadata/" are the root (LIST lists it);
				// "metadataX" is no path at all.
				Pattern: "metadata(?:/(?P<path>.*))?",
				Fields: map[string]*fw.FieldSchema{
					"path":                 {Type: fw.TypeString},
					"max_versions":         {Type: fw.TypeInt},
					"cas_required":         {Type: fw.TypeBool},
					"delete_version_after": {Type: fw.TypeDuration},
					"custom_metadata":      {Type: fw.TypeKVPairs},
				},
				ExistenceCheck: b.metadataExists,
				Operations: opmap{
					logical.ReadOperation:   b.readMetadata,
					logical.CreateOperation: b.writeMetadata,
					logical.UpdateOperation: b.writeMetadata,
					logical.PatchOperation:  b.patchMetadata,
					logical.DeleteOperation: b.deleteMetadata,
					logical.ListOperation:   b.listMetadata,
				},
			},
			{
				Pattern: "subkeys/(?P<path>.+)",
				Fields: map[string]*fw.FieldSchema{
					"path":    {Type: fw.TypeString},
					"version": {Type: fw.TypeInt},
					"depth":   {Type: fw.TypeInt, Description: "how deep to descend (0: all the way)"},
				},
				Operations: opmap{logical.ReadOperation: b.readSubkeys},
			},
		},
	}
}

func versionKey(path string, n int) string {
	sum := sha256.Sum256([]byte(path))
	return versionsPrefix + hex.EncodeToString(sum[:]) + "/" + strconv.Itoa(n)
}

func checkPath(path string) error {
	if path == "" || strings.HasSuffix(path, "/") {
		return logical.BadRequest("a secret path must not be empty or end in '/'")
	}
	return nil
}

func (b *v2) loadConfig(ctx context.Context, s logical.Storage) (*config, error) {
	c := &config{}
	_, err := getJSON(ctx, s, configKey, c)
	return c, err
}

func (b *v2) loadMetadata(ctx context.Context, s logical.Storage, path string) (*metadata, error) {
	m := &metadata{}
	found, err := getJSON(ctx, s, metadataPrefix+path, m)
	if err != nil || !found {
		return nil, err
	}
	if m.Versions == nil {
		m.Versions = map[int]*versionMeta{}
	}
	return m, nil
}

func (b *v2) metadataExists(ctx context.Context, req *logical.Request, d *fw.FieldData) (bool, error) {
	e, err := req.Storage.Get(ctx, metadataPrefix+d.String("path"))
	return e != nil, err
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// deleted reports whether a version reads as deleted at now.
func (v *versionMeta) deleted(now time.Time) bool {
	return !v.DeletionTime.IsZero() && !v.DeletionTime.After(now)
}

func (v *versionMeta) data(n int, custom map[string]string) map[string]any {
	var cm any
	if custom != nil {
		cm = custom
	}
	return map[string]any{
		"created_time":    formatTime(v.CreatedTime),
		"deletion_time":   formatTime(v.DeletionTime),
		"destroyed":       v.Destroyed,
		"version":         n,
		"custom_metadata": cm,
	}
}

func (b *v2) readConfig(ctx context.Context, req *logical.Request, _ *fw.FieldData) (*logical.Response, error) {
	c, err := b.loadConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{
		"max_versions":         c.MaxVersions,
		"cas_required":         c.CASRequired,
		"delete_version_after": c.DeleteVersionAfter.String(),
	}}, nil
}

func (b *v2) writeConfig(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	c, err := b.loadConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if v, ok := d.GetOk("max_versions"); ok {
		if c.MaxVersions = v.(int); c.MaxVersions < 0 {
			return nil, logical.BadRequest("max_versions must not be negative")
		}
	}
	if v, ok := d.GetOk("cas_required"); ok {
		c.CASRequired = v.(bool)
	}
	if v, ok := d.GetOk("delete_version_after"); ok {
		if c.DeleteVersionAfter = v.(time.Duration); c.DeleteVersionAfter < 0 {
			return nil, logical.BadRequest("delete_version_after must not be negative")
		}
	}
	op, err := putOp(configKey, c)
	if err != nil {
		return nil, err
	}
	return nil, storage.Apply(ctx, req.Storage, []storage.Op{op})
}

// readData reads a version: the latest by default.
func (b *v2) readData(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	path := d.String("path")
	n := d.Int("version")
	if n < 0 {
		return nil, logical.BadRequest("version must not be negative")
	}
	m, err := b.loadMetadata(ctx, req.Storage, path)
	if err != nil || m == nil {
		return nil, err
	}
	if n == 0 {
		n = m.CurrentVersion
	}
	vm, ok := m.Versions[n]
	if !ok {
		return nil, nil
	}
	meta := vm.data(n, m.CustomMetadata)
	if vm.Destroyed || vm.deleted(time.Now()) {
		return &logical.Response{StatusCode: http.StatusNotFound, Data: map[string]any{"data": nil, "metadata": meta}}, nil
	}
	var vd versionData
	found, err := getJSON(ctx, req.Storage, versionKey(path, n), &vd)
	if err != nil {
		return nil, err
	}
	if !found {
		return &logical.Response{StatusCode: http.StatusNotFound, Data: map[string]any{"data": nil, "metadata": meta}}, nil
	}
	return &logical.Response{Data: map[string]any{"data": vd.Data, "metadata": meta}}, nil
}

// casOption reads options.cas.
func casOption(d *fw.FieldData) (int, bool, error) {
	opts := d.Get("options").(map[string]any)
	raw, ok := opts["cas"]
	if !ok {
		return 0, false, nil
	}
	var n int
	switch v := raw.(type) {
	case json.Number:
		i, err := v.Int64()
		if err != nil {
			return 0, false, logical.BadRequest("options.cas must be an integer")
		}
		n = int(i)
	case float64:
		n = int(v)
	case string:
		i, err := strconv.Atoi(v)
		if err != nil {
			return 0, false, logical.BadRequest("options.cas must be an integer")
		}
		n = i
	default:
		return 0, false, logical.BadRequest("options.cas must be an integer")
	}
	if n < 0 {
		return 0, false, logical.BadRequest("options.cas must not be negative")
	}
	return n, true, nil
}

func (b *v2) writeData(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	raw, ok := d.GetOk("data")
	if !ok || raw == nil {
		return nil, logical.BadRequest("no data provided: send the secret as {\"data\": {...}}")
	}
	cas, hasCAS, err := casOption(d)
	if err != nil {
		return nil, err
	}
	return b.putVersion(ctx, req, d.String("path"), func(*metadata) (map[string]any, error) {
		return raw.(map[string]any), nil
	}, cas, hasCAS)
}

// putVersion writes a new version computed by next from the metadata.
func (b *v2) putVersion(ctx context.Context, req *logical.Request, path string, next func(*metadata) (map[string]any, error), cas int, hasCAS bool) (*logical.Response, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	unlock := b.locks.lock(path)
	defer unlock()
	conf, err := b.loadConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	m, err := b.loadMetadata(ctx, req.Storage, path)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	if m == nil {
		m = &metadata{CreatedTime: now, Versions: map[int]*versionMeta{}}
	}
	if (conf.CASRequired || m.CASRequired) && !hasCAS {
		return nil, logical.BadRequest("check-and-set parameter required for this call")
	}
	if hasCAS && cas != m.CurrentVersion {
		return nil, logical.BadRequest("check-and-set parameter did not match the current version")
	}
	data, err := next(m)
	if err != nil {
		return nil, err
	}
	n := m.CurrentVersion + 1
	vm := &versionMeta{CreatedTime: now}
	dva := m.DeleteVersionAfter
	if dva == 0 {
		dva = conf.DeleteVersionAfter
	}
	if dva > 0 {
		vm.DeletionTime = now.Add(dva)
	}
	m.Versions[n] = vm
	m.CurrentVersion = n
	m.UpdatedTime = now
	if m.OldestVersion == 0 {
		m.OldestVersion = n
	}
	vop, err := putOp(versionKey(path, n), versionData{Data: data})
	if err != nil {
		return nil, err
	}
	ops := []storage.Op{vop}
	ops = append(ops, b.prune(m, conf, path)...)
	mop, err := putOp(metadataPrefix+path, m)
	if err != nil {
		return nil, err
	}
	ops = append(ops, mop)
	if err := storage.Apply(ctx, req.Storage, ops); err != nil {
		return nil, err
	}
	out := vm.data(n, m.CustomMetadata)
	return &logical.Response{Data: out}, nil
}

// prune drops the oldest versions beyond the version limit and returns the
// deletes of their data.
func (b *v2) prune(m *metadata, conf *config, path string) []storage.Op {
	max := m.MaxVersions
	if max == 0 {
		max = conf.MaxVersions
	}
	if max == 0 {
		max = defaultVersions
	}
	var ops []storage.Op
	for len(m.Versions) > max {
		oldest := m.OldestVersion
		for n := range m.Versions {
			if n < oldest || oldest == 0 {
				oldest = n
			}
		}
		delete(m.Versions, oldest)
		ops = append(ops, storage.Op{Kind: storage.OpDelete, Entry: &storage.Entry{Key: versionKey(path, oldest)}})
		m.OldestVersion = oldest + 1
		for m.Versions[m.OldestVersion] == nil && m.OldestVersion < m.CurrentVersion {
			m.OldestVersion++
		}
	}
	return ops
}

func (b *v2) patchData(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	raw, ok := d.GetOk("data")
	if !ok || raw == nil {
		return nil, logical.BadRequest("no data provided: send the patch as {\"data\": {...}}")
	}
	patch := raw.(map[string]any)
	cas, hasCAS, err := casOption(d)
	if err != nil {
		return nil, err
	}
	path := d.String("path")
	var notFound bool
	resp, err := b.putVersion(ctx, req, path, func(m *metadata) (map[string]any, error) {
		vm := m.Versions[m.CurrentVersion]
		if m.CurrentVersion == 0 || vm == nil || vm.Destroyed || vm.deleted(time.Now()) {
			notFound = true
			return nil, errNoLiveVersion
		}
		var vd versionData
		found, err := getJSON(ctx, req.Storage, versionKey(path, m.CurrentVersion), &vd)
		if err != nil {
			return nil, err
		}
		if !found {
			notFound = true
			return nil, errNoLiveVersion
		}
		return MergePatch(vd.Data, patch), nil
	}, cas, hasCAS)
	if notFound {
		return nil, logical.Errorf(http.StatusNotFound, "no live version of %q to patch", path)
	}
	return resp, err
}

var errNoLiveVersion = errors.New("no live version")

// MergePatch applies an RFC 7386 JSON merge patch to doc: objects merge
// recursively, null removes a key, anything else replaces.
func MergePatch(doc, patch map[string]any) map[string]any {
	out := make(map[string]any, len(doc)+len(patch))
	for k, v := range doc {
		out[k] = v
	}
	for k, pv := range patch {
		if pv == nil {
			delete(out, k)
			continue
		}
		if pm, ok := pv.(map[string]any); ok {
			dm, _ := out[k].(map[string]any)
			out[k] = MergePatch(dm, pm)
			continue
		}
		out[k] = pv
	}
	return out
}

// changeVersions applies change to the named versions and stores the
// metadata (and any data deletes).
func (b *v2) changeVersions(ctx context.Context, req *logical.Request, path string, versions []int, change func(n int, vm *versionMeta) []storage.Op) (*logical.Response, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	if len(versions) == 0 {
		return nil, logical.BadRequest("no versions provided")
	}
	unlock := b.locks.lock(path)
	defer unlock()
	m, err := b.loadMetadata(ctx, req.Storage, path)
	if err != nil || m == nil {
		return nil, err
	}
	var ops []storage.Op
	for _, n := range versions {
		if vm, ok := m.Versions[n]; ok {
			ops = append(ops, change(n, vm)...)
		}
	}
	mop, err := putOp(metadataPrefix+path, m)
	if err != nil {
		return nil, err
	}
	return nil, storage.Apply(ctx, req.Storage, append(ops, mop))
}

func (b *v2) deleteLatest(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	path := d.String("path")
	m, err := b.loadMetadata(ctx, req.Storage, path)
	if err != nil || m == nil || m.CurrentVersion == 0 {
		return nil, err
	}
	return b.softDelete(ctx, req, path, []int{m.CurrentVersion})
}

func (b *v2) deleteVersions(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	return b.softDelete(ctx, req, d.String("path"), d.Get("versions").([]int))
}

func (b *v2) softDelete(ctx context.Context, req *logical.Request, path string, versions []int) (*logical.Response, error) {
	now := time.Now().UTC()
	return b.changeVersions(ctx, req, path, versions, func(_ int, vm *versionMeta) []storage.Op {
		if !vm.Destroyed && !vm.deleted(now) {
			vm.DeletionTime = now
		}
		return nil
	})
}

func (b *v2) undeleteVersions(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	return b.changeVersions(ctx, req, d.String("path"), d.Get("versions").([]int), func(_ int, vm *versionMeta) []storage.Op {
		if !vm.Destroyed {
			vm.DeletionTime = time.Time{}
		}
		return nil
	})
}

func (b *v2) destroyVersions(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	path := d.String("path")
	return b.changeVersions(ctx, req, path, d.Get("versions").([]int), func(n int, vm *versionMeta) []storage.Op {
		vm.Destroyed = true
		return []storage.Op{{Kind: storage.OpDelete, Entry: &storage.Entry{Key: versionKey(path, n)}}}
	})
}

func (b *v2) readMetadata(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	path := d.String("path")
	if path == "" {
		return nil, logical.BadRequest("a secret path is required; to list, use LIST")
	}
	m, err := b.loadMetadata(ctx, req.Storage, path)
	if err != nil || m == nil {
		return nil, err
	}
	versions := make(map[string]any, len(m.Versions))
	for n, vm := range m.Versions {
		versions[strconv.Itoa(n)] = map[string]any{
			"created_time":  formatTime(vm.CreatedTime),
			"deletion_time": formatTime(vm.DeletionTime),
			"destroyed":     vm.Destroyed,
		}
	}
	var cm any
	if m.CustomMetadata != nil {
		cm = m.CustomMetadata
	}
	return &logical.Response{Data: map[string]any{
		"current_version":      m.CurrentVersion,
		"oldest_version":       m.OldestVersion,
		"created_time":         formatTime(m.CreatedTime),
		"updated_time":         formatTime(m.UpdatedTime),
		"max_versions":         m.MaxVersions,
		"cas_required":         m.CASRequired,
		"delete_version_after": m.DeleteVersionAfter.String(),
		"custom_metadata":      cm,
		"versions":             versions,
	}}, nil
}

func (b *v2) writeMetadata(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	return b.updateMetadata(ctx, req, d, false)
}

func (b *v2) patchMetadata(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	return b.updateMetadata(ctx, req, d, true)
}

// updateMetadata sets the metadata fields given. A patch merges
// custom_metadata (null removes a key); a write replaces it.
func (b *v2) updateMetadata(ctx context.Context, req *logical.Request, d *fw.FieldData, patch bool) (*logical.Response, error) {
	path := d.String("path")
	if err := checkPath(path); err != nil {
		return nil, err
	}
	unlock := b.locks.lock(path)
	defer unlock()
	m, err := b.loadMetadata(ctx, req.Storage, path)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	if m == nil {
		if patch {
			return nil, logical.Errorf(http.StatusNotFound, "no metadata at %q to patch", path)
		}
		m = &metadata{CreatedTime: now, Versions: map[int]*versionMeta{}}
	}
	if v, ok := d.GetOk("max_versions"); ok {
		if m.MaxVersions = v.(int); m.MaxVersions < 0 {
			return nil, logical.BadRequest("max_versions must not be negative")
		}
	}
	if v, ok := d.GetOk("cas_required"); ok {
		m.CASRequired = v.(bool)
	}
	if v, ok := d.GetOk("delete_version_after"); ok {
		if m.DeleteVersionAfter = v.(time.Duration); m.DeleteVersionAfter < 0 {
			return nil, logical.BadRequest("delete_version_after must not be negative")
		}
	}
	if raw, ok := req.Data["custom_metadata"]; ok {
		if patch {
			pm, isMap := raw.(map[string]any)
			if !isMap {
				return nil, logical.BadRequest("custom_metadata must be an object")
			}
			merged := map[string]string{}
			for k, v := range m.CustomMetadata {
				merged[k] = v
			}
			for k, v := range pm {
				if v == nil {
					delete(merged, k)
					continue
				}
				s, isStr := v.(string)
				if !isStr {
					return nil, logical.BadRequest("custom_metadata values must be strings; %q is not", k)
				}
				merged[k] = s
			}
			m.CustomMetadata = merged
		} else {
			m.CustomMetadata = d.Get("custom_metadata").(map[string]string)
		}
		if len(m.CustomMetadata) > 64 {
			return nil, logical.BadRequest("custom_metadata may hold at most 64 keys")
		}
	}
	m.UpdatedTime = now
	conf, err := b.loadConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	ops := b.prune(m, conf, path)
	mop, err := putOp(metadataPrefix+path, m)
	if err != nil {
		return nil, err
	}
	return nil, storage.Apply(ctx, req.Storage, append(ops, mop))
}

func (b *v2) deleteMetadata(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	path := d.String("path")
	if err := checkPath(path); err != nil {
		return nil, err
	}
	unlock := b.locks.lock(path)
	defer unlock()
	m, err := b.loadMetadata(ctx, req.Storage, path)
	if err != nil || m == nil {
		return nil, err
	}
	var ops []storage.Op
	for n := range m.Versions {
		ops = append(ops, storage.Op{Kind: storage.OpDelete, Entry: &storage.Entry{Key: versionKey(path, n)}})
	}
	ops = append(ops, storage.Op{Kind: storage.OpDelete, Entry: &storage.Entry{Key: metadataPrefix + path}})
	return nil, storage.Apply(ctx, req.Storage, ops)
}

func (b *v2) listMetadata(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	keys, err := req.Storage.List(ctx, metadataPrefix+d.String("path"))
	if err != nil {
		return nil, err
	}
	return listResponse(keys), nil
}

func (b *v2) readSubkeys(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	resp, err := b.readData(ctx, req, d)
	if err != nil || resp == nil {
		return resp, err
	}
	if resp.StatusCode == http.StatusNotFound {
		return resp, nil
	}
	depth := d.Int("depth")
	if depth < 0 {
		return nil, logical.BadRequest("depth must not be negative")
	}
	data, _ := resp.Data["data"].(map[string]any)
	return &logical.Response{Data: map[string]any{
		"subkeys":  subkeys(data, depth, 1),
		"metadata": resp.Data["metadata"],
	}}, nil
}

// subkeys replaces every leaf with null, descending at most depth levels
// (0: no limit).
func subkeys(m map[string]any, depth, level int) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok && (depth == 0 || level < depth) {
			out[k] = subkeys(sub, depth, level+1)
			continue
		}
		out[k] = nil
	}
	return out
}
