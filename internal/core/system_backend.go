package core

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/arcasec/arca/internal/logical"
	fw "github.com/arcasec/arca/internal/logical/framework"
	"github.com/arcasec/arca/internal/policy"
)

// systemBackend serves the logical sys/ paths: mounts, auth methods,
// policies, capabilities, key status. The seal, init, unseal and health
// endpoints are not logical and live in the HTTP layer.
type systemBackend struct {
	core *Core
	// migrations remembers finished remounts for sys/remount/status.
	migrations sync.Map // id -> [2]string{from, to}
}

var mountFields = map[string]*fw.FieldSchema{
	"path":                    {Type: fw.TypeString},
	"type":                    {Type: fw.TypeString, Description: "the engine or auth method type"},
	"plugin_name":             {Type: fw.TypeString},
	"description":             {Type: fw.TypeString},
	"config":                  {Type: fw.TypeMap, Description: "default_lease_ttl, max_lease_ttl, listing_visibility"},
	"options":                 {Type: fw.TypeKVPairs, Description: "engine options, e.g. version=2 for kv"},
	"local":                   {Type: fw.TypeBool},
	"seal_wrap":               {Type: fw.TypeBool},
	"external_entropy_access": {Type: fw.TypeBool},
	"plugin_version":          {Type: fw.TypeString},
}

var tuneFields = map[string]*fw.FieldSchema{
	"path":                         {Type: fw.TypeString},
	"default_lease_ttl":            {Type: fw.TypeString},
	"max_lease_ttl":                {Type: fw.TypeString},
	"description":                  {Type: fw.TypeString},
	"options":                      {Type: fw.TypeKVPairs},
	"listing_visibility":           {Type: fw.TypeString},
	"audit_non_hmac_request_keys":  {Type: fw.TypeCommaStringSlice},
	"audit_non_hmac_response_keys": {Type: fw.TypeCommaStringSlice},
	"passthrough_request_headers":  {Type: fw.TypeCommaStringSlice},
	"allowed_response_headers":     {Type: fw.TypeCommaStringSlice},
	"force_no_cache":               {Type: fw.TypeBool},
	"plugin_version":               {Type: fw.TypeString},
	"token_type":                   {Type: fw.TypeString},
	"user_lockout_config":          {Type: fw.TypeMap, Description: "lockout_threshold, lockout_duration, lockout_counter_reset_duration, lockout_disable (userpass, approle and ldap mounts)"},
}

var policyFields = map[string]*fw.FieldSchema{
	"name":   {Type: fw.TypeString},
	"policy": {Type: fw.TypeString, Description: "the policy text, HCL or JSON"},
	"rules":  {Type: fw.TypeString, Description: "legacy name of policy"},
}

var capabilitiesFields = map[string]*fw.FieldSchema{
	"token":    {Type: fw.TypeString},
	"accessor": {Type: fw.TypeString},
	"path":     {Type: fw.TypeCommaStringSlice},
	"paths":    {Type: fw.TypeCommaStringSlice},
}

func newSystemBackend(c *Core) logical.Backend {
	b := &systemBackend{core: c}
	rd, up, del, list := logical.ReadOperation, logical.UpdateOperation, logical.DeleteOperation, logical.ListOperation
	type opmap = map[logical.Operation]fw.OperationFunc
	paths := []*fw.Path{
		{Pattern: "mounts/?", Operations: opmap{rd: b.listMounts(mountsTable)}},
		{Pattern: "mounts/(?P<path>.+?)/tune", Fields: tuneFields, Operations: opmap{rd: b.readTune(mountsTable), up: b.writeTune(mountsTable)}},
		{Pattern: "mounts/(?P<path>.+)", Fields: mountFields, Operations: opmap{rd: b.readMount(mountsTable), up: b.enable(mountsTable), del: b.disable(mountsTable)}},
		{Pattern: "auth/?", Operations: opmap{rd: b.listMounts(authTable)}},
		{Pattern: "auth/(?P<path>.+?)/tune", Fields: tuneFields, Operations: opmap{rd: b.readTune(authTable), up: b.writeTune(authTable)}},
		{Pattern: "auth/(?P<path>.+)", Fields: mountFields, Operations: opmap{rd: b.readMount(authTable), up: b.enable(authTable), del: b.disable(authTable)}},
		{Pattern: "remount", Fields: map[string]*fw.FieldSchema{"from": {Type: fw.TypeString, Required: true}, "to": {Type: fw.TypeString, Required: true}}, Operations: opmap{up: b.remount}},
		{Pattern: "remount/status/(?P<id>.+)", Fields: map[string]*fw.FieldSchema{"id": {Type: fw.TypeString}}, Operations: opmap{rd: b.remountStatus}},
		{Pattern: "policy/?", Operations: opmap{rd: b.listPoliciesLegacy, list: b.listPolicies}},
		{Pattern: "policies/acl/?", Operations: opmap{list: b.listPolicies}},
		{Pattern: "capabilities", Fields: capabilitiesFields, Operations: opmap{up: b.capabilities(capsByToken)}},
		{Pattern: "capabilities-self", Fields: capabilitiesFields, Operations: opmap{up: b.capabilities(capsSelf)}},
		{Pattern: "capabilities-accessor", Fields: capabilitiesFields, Operations: opmap{up: b.capabilities(capsByAccessor)}},
		{Pattern: "internal/ui/mounts/?", Operations: opmap{rd: b.uiMounts}},
		{Pattern: "internal/ui/mounts/(?P<path>.+)", Fields: map[string]*fw.FieldSchema{"path": {Type: fw.TypeString}}, Operations: opmap{rd: b.uiMount}},
		{Pattern: "key-status", Operations: opmap{rd: b.keyStatus}},
		{Pattern: "ha-status", Operations: opmap{rd: b.haStatus}},
		{Pattern: "rotate(/keyring)?", Operations: opmap{up: b.rotate}},
		b.rotateConfigPath(),
	}
	// Policy names are kept in lowercase: a path must name them so, or
	// sys/policies/acl/ADMIN would pass an ACL that denies .../admin and
	// rewrite it (framework.RequireLowercase).
	policyPaths := []*fw.Path{
		{Pattern: "policy/(?P<name>.+)", Fields: policyFields, Operations: opmap{rd: b.readPolicy(true), up: b.writePolicy, del: b.deletePolicy}},
		{Pattern: "policies/acl/(?P<name>.+)", Fields: policyFields, Operations: opmap{rd: b.readPolicy(false), up: b.writePolicy, del: b.deletePolicy}},
	}
	fw.RequireLowercase("name", policyPaths)
	paths = append(paths, policyPaths...)
	paths = append(paths, b.auditPaths()...)
	paths = append(paths, b.observePaths()...)
	paths = append(paths, b.quotaPaths()...)
	paths = append(paths, b.wrappingPaths()...)
	paths = append(paths, b.passwordPolicyPaths()...)
	paths = append(paths, b.leasePaths()...)
	paths = append(paths, b.lockedUserPaths()...)
	return &fw.Backend{
		Help: "The system backend is built in and controls the server: mounts, auth methods, policies, audit, quotas.",
		PathsSpecial: &logical.Paths{
			Unauthenticated: []string{"internal/ui/mounts", "internal/ui/mounts/*", "wrapping/lookup"},
			Root: append([]string{"auth/*", "remount", "rotate", "rotate/*", "seal", "step-down",
				"audit", "audit/*", "config/auditing/*", "access-report", "access-report/*", "host-info"},
				leaseRootPaths...),
			CaseInsensitive: []string{"policy/+", "policies/acl/+"},
		},
		Paths: paths,
	}
}

// authMountTokenType is the token_type sys/auth reports for every auth mount:
// Arca issues service tokens unless a role asks otherwise, which is Vault's
// "default-service" (a mount's token_type cannot be tuned).
const authMountTokenType = "default-service"

// enabledOptions is the options of a mount enabled through the API: as in
// Vault, {} rather than null when none are given (built-in mounts keep null).
func enabledOptions(in map[string]string) map[string]string {
	if in == nil {
		return map[string]string{}
	}
	return cloneStringMap(in)
}

// mountInfo is how sys/mounts describes a mount.
func mountInfo(e *MountEntry, sys logical.SystemView) map[string]any {
	var options any
	if e.Options != nil {
		options = e.Options
	}
	config := map[string]any{
		"default_lease_ttl": int64(e.Config.DefaultLeaseTTL / time.Second),
		"max_lease_ttl":     int64(e.Config.MaxLeaseTTL / time.Second),
		"force_no_cache":    false,
	}
	// As in Vault: the tuned settings a mount has, and an auth mount's token type.
	if e.Config.ListingVisibility != "" {
		config["listing_visibility"] = e.Config.ListingVisibility
	}
	if keys := e.Config.AuditNonHMACRequestKeys; len(keys) > 0 {
		config["audit_non_hmac_request_keys"] = keys
	}
	if keys := e.Config.AuditNonHMACResponseKeys; len(keys) > 0 {
		config["audit_non_hmac_response_keys"] = keys
	}
	if e.Table == authTable {
		config["token_type"] = authMountTokenType
	}
	return map[string]any{
		"type":                    e.Type,
		"description":             e.Description,
		"accessor":                e.Accessor,
		"uuid":                    e.UUID,
		"config":                  config,
		"options":                 options,
		"local":                   e.Local,
		"seal_wrap":               e.SealWrap,
		"external_entropy_access": false,
		"plugin_version":          "",
		"running_plugin_version":  "",
		"running_sha256":          "",
		"deprecation_status":      "supported",
	}
}

func (b *systemBackend) routePath(table, p string) (string, error) {
	p, err := normalizeMountPath(p)
	if err != nil {
		return "", err
	}
	if table == authTable {
		return "auth/" + p, nil
	}
	return p, nil
}

func (b *systemBackend) listMounts(table string) fw.OperationFunc {
	return func(ctx context.Context, req *logical.Request, _ *fw.FieldData) (*logical.Response, error) {
		data := map[string]any{}
		for _, e := range b.core.mounts.entries(table) {
			data[e.Path] = mountInfo(e, nil)
		}
		return &logical.Response{Data: data}, nil
	}
}

func (b *systemBackend) readMount(table string) fw.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
		rp, err := b.routePath(table, d.String("path"))
		if err != nil {
			return nil, err
		}
		m := b.core.mounts.get(rp)
		if m == nil {
			return nil, logical.BadRequest("no mount at %q", rp)
		}
		return &logical.Response{Data: mountInfo(m.entry, nil)}, nil
	}
}

func (b *systemBackend) enable(table string) fw.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
		p, err := normalizeMountPath(d.String("path"))
		if err != nil {
			return nil, err
		}
		typ := d.String("type")
		if typ == "" {
			typ = d.String("plugin_name")
		}
		e := &MountEntry{
			Table:       table,
			Path:        p,
			Type:        typ,
			Description: d.String("description"),
			Options:     enabledOptions(d.Get("options").(map[string]string)),
			Local:       d.Bool("local"),
			SealWrap:    d.Bool("seal_wrap"),
		}
		if err := applyMountConfig(&e.Config, d.Get("config").(map[string]any)); err != nil {
			return nil, err
		}
		if table == authTable && typ == "token" {
			return nil, logical.BadRequest("token auth method is always enabled at auth/token/")
		}
		if typ == "system" || typ == "cubbyhole" || typ == "identity" {
			return nil, logical.BadRequest("cannot mount another %q backend", typ)
		}
		return nil, b.core.mounts.enable(ctx, e)
	}
}

// applyMountConfig reads the config object of a mount-enable request.
func applyMountConfig(mc *MountConfig, conf map[string]any) error {
	for k, v := range conf {
		switch k {
		case "default_lease_ttl", "max_lease_ttl":
			d, err := fw.ParseDuration(v)
			if err != nil {
				return logical.BadRequest("invalid value for config.%s: %v", k, err)
			}
			if k == "default_lease_ttl" {
				mc.DefaultLeaseTTL = d
			} else {
				mc.MaxLeaseTTL = d
			}
		case "listing_visibility":
			s, _ := v.(string)
			mc.ListingVisibility = s
		case "audit_non_hmac_request_keys", "audit_non_hmac_response_keys":
			keys, err := stringList(v)
			if err != nil {
				return logical.BadRequest("invalid value for config.%s: %v", k, err)
			}
			if k == "audit_non_hmac_request_keys" {
				mc.AuditNonHMACRequestKeys = keys
			} else {
				mc.AuditNonHMACResponseKeys = keys
			}
		}
	}
	if mc.MaxLeaseTTL > 0 && mc.DefaultLeaseTTL > mc.MaxLeaseTTL {
		return logical.BadRequest("config.default_lease_ttl must not be longer than config.max_lease_ttl")
	}
	return nil
}

// stringList reads a list given as a JSON array, a []string or a
// comma-separated string.
func stringList(v any) ([]string, error) {
	switch v := v.(type) {
	case []string:
		return v, nil
	case string:
		if v == "" {
			return nil, nil
		}
		return strings.Split(v, ","), nil
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			s, ok := x.(string)
			if !ok {
				return nil, fmt.Errorf("expected a list of strings")
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("expected a list of strings")
}

func (b *systemBackend) disable(table string) fw.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
		rp, err := b.routePath(table, d.String("path"))
		if err != nil {
			return nil, err
		}
		return nil, b.core.mounts.disable(ctx, rp)
	}
}

func (b *systemBackend) readTune(table string) fw.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
		rp, err := b.routePath(table, d.String("path"))
		if err != nil {
			return nil, err
		}
		m := b.core.mounts.get(rp)
		if m == nil {
			return nil, logical.BadRequest("cannot fetch sysview for path %q", rp)
		}
		data := map[string]any{
			"default_lease_ttl": int64(m.sys.DefaultLeaseTTL() / time.Second),
			"max_lease_ttl":     int64(m.sys.MaxLeaseTTL() / time.Second),
			"force_no_cache":    false,
			"description":       m.entry.Description,
		}
		if len(m.entry.Options) > 0 {
			data["options"] = m.entry.Options
		}
		if keys := m.entry.Config.AuditNonHMACRequestKeys; len(keys) > 0 {
			data["audit_non_hmac_request_keys"] = keys
		}
		if keys := m.entry.Config.AuditNonHMACResponseKeys; len(keys) > 0 {
			data["audit_non_hmac_response_keys"] = keys
		}
		if m.entry.Config.ListingVisibility != "" {
			data["listing_visibility"] = m.entry.Config.ListingVisibility
		}
		if m.entry.Table == authTable {
			data["token_type"] = authMountTokenType
		}
		if p := b.core.lockoutPolicyFor(m.entry); m.entry.Table == authTable && slices.Contains(lockoutTypes, m.entry.Type) {
			maps.Copy(data, lockoutTuneData(p))
		}
		return &logical.Response{Data: data}, nil
	}
}

func (b *systemBackend) writeTune(table string) fw.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
		rp, err := b.routePath(table, d.String("path"))
		if err != nil {
			return nil, err
		}
		return nil, b.core.mounts.tune(ctx, rp, func(e *MountEntry) error {
			conf := map[string]any{}
			for _, k := range []string{"default_lease_ttl", "max_lease_ttl"} {
				if v, ok := d.GetOk(k); ok && v.(string) != "" {
					s := v.(string)
					if s == "system" {
						s = "0"
					}
					conf[k] = s
				}
			}
			for _, k := range []string{"listing_visibility", "audit_non_hmac_request_keys", "audit_non_hmac_response_keys"} {
				if v, ok := d.GetOk(k); ok {
					conf[k] = v
				}
			}
			if err := applyMountConfig(&e.Config, conf); err != nil {
				return err
			}
			if v, ok := d.GetOk("user_lockout_config"); ok && len(v.(map[string]any)) > 0 {
				if e.Table != authTable || !slices.Contains(lockoutTypes, e.Type) {
					return logical.BadRequest("tuning of user lockout configuration for auth type %q not allowed: lockout applies to userpass, approle and ldap mounts", e.Type)
				}
				conf, err := tuneUserLockout(e.Config.UserLockout, v.(map[string]any))
				if err != nil {
					return err
				}
				e.Config.UserLockout = conf
			}
			if v, ok := d.GetOk("description"); ok {
				e.Description = v.(string)
			}
			if v, ok := d.GetOk("options"); ok {
				for k, val := range v.(map[string]string) {
					if k == "version" && e.Type == "kv" && e.Options["version"] != val {
						return logical.BadRequest("changing a kv mount's version from %q to %q is not supported", e.Options["version"], val)
					}
					if e.Options == nil {
						e.Options = map[string]string{}
					}
					e.Options[k] = val
				}
			}
			return nil
		})
	}
}

func (b *systemBackend) remount(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	from, err := normalizeMountPath(d.String("from"))
	if err != nil {
		return nil, err
	}
	to, err := normalizeMountPath(d.String("to"))
	if err != nil {
		return nil, err
	}
	if err := b.core.mounts.remount(ctx, from, to); err != nil {
		return nil, err
	}
	// The move is synchronous; the ID lets clients that poll
	// sys/remount/status find it done.
	id := newUUID()
	b.migrations.Store(id, [2]string{from, to})
	return &logical.Response{Data: map[string]any{"migration_id": id}}, nil
}

func (b *systemBackend) remountStatus(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	v, ok := b.migrations.Load(d.String("id"))
	if !ok {
		return nil, nil
	}
	paths := v.([2]string)
	return &logical.Response{Data: map[string]any{
		"migration_id": d.String("id"),
		"migration_info": map[string]any{
			"source_mount": paths[0],
			"target_mount": paths[1],
			"status":       "success",
		},
	}}, nil
}

func (b *systemBackend) listPolicies(ctx context.Context, req *logical.Request, _ *fw.FieldData) (*logical.Response, error) {
	names, err := b.core.policies.list(ctx)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{"keys": names, "policies": names}}, nil
}

func (b *systemBackend) listPoliciesLegacy(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	return b.listPolicies(ctx, req, d)
}

func (b *systemBackend) readPolicy(legacy bool) fw.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
		name := normalizePolicyName(d.String("name"))
		if name == "root" {
			data := map[string]any{"name": "root", "policy": "", "rules": ""}
			return &logical.Response{Data: data}, nil
		}
		p, err := b.core.policies.get(ctx, name)
		if err != nil {
			return nil, err
		}
		if p == nil {
			return nil, nil
		}
		data := map[string]any{"name": p.Name, "policy": p.Raw}
		if legacy {
			data["rules"] = p.Raw
		}
		return &logical.Response{Data: data}, nil
	}
}

func (b *systemBackend) writePolicy(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	text := d.String("policy")
	if text == "" {
		text = d.String("rules")
	}
	if strings.TrimSpace(text) == "" {
		return nil, logical.BadRequest("'policy' parameter not supplied or empty")
	}
	return nil, b.core.policies.set(ctx, d.String("name"), text)
}

func (b *systemBackend) deletePolicy(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	return nil, b.core.policies.delete(ctx, d.String("name"))
}

type capsMode int

const (
	capsByToken capsMode = iota
	capsSelf
	capsByAccessor
)

// capabilities answers sys/capabilities, capabilities-self and
// capabilities-accessor with what the token's ACL would decide for each
// path (see policy.ACL.Capabilities). capabilities-self is always about the
// calling token: naming another token there would let any token probe
// others.
func (b *systemBackend) capabilities(mode capsMode) fw.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
		var te *TokenEntry
		var err error
		switch mode {
		case capsByToken:
			tok := d.String("token")
			if tok == "" {
				return nil, logical.BadRequest("missing required field \"token\"")
			}
			if te, err = b.core.tokens.lookup(ctx, tok); err == nil && te == nil {
				return nil, logical.BadRequest("invalid token")
			}
		case capsSelf:
			// The caller's own token, even if this request spent its last use.
			if te, err = b.core.tokens.lookupInFlight(ctx, req.ClientToken); err == nil && te == nil {
				return nil, logical.BadRequest("invalid token")
			}
		case capsByAccessor:
			acc := d.String("accessor")
			if acc == "" {
				return nil, logical.BadRequest("missing required field \"accessor\"")
			}
			if te, err = b.core.tokens.lookupAccessor(ctx, acc); err == nil && te == nil {
				return nil, logical.BadRequest("invalid accessor")
			}
		}
		if err != nil {
			return nil, err
		}
		paths := d.Strings("paths")
		if len(paths) == 0 {
			paths = d.Strings("path") // the deprecated name
		}
		if len(paths) == 0 {
			return nil, logical.BadRequest("missing required field \"paths\"")
		}
		acl, err := b.core.aclOf(ctx, te)
		if err != nil {
			return nil, err
		}
		data := map[string]any{}
		for _, p := range paths {
			data[p] = acl.Capabilities(b.core.canonicalPath(strings.TrimLeft(p, "/")))
		}
		if len(paths) == 1 {
			// Older clients read this key; Vault sets it for one path only.
			data["capabilities"] = data[paths[0]]
		}
		return &logical.Response{Data: data}, nil
	}
}

// uiMounts lists the mounts a token can see (all of them for a token with
// any capability below a mount; the unauthenticated listing is empty).
func (b *systemBackend) uiMounts(ctx context.Context, req *logical.Request, _ *fw.FieldData) (*logical.Response, error) {
	acl := b.callerACL(ctx, req)
	secret, auth := map[string]any{}, map[string]any{}
	for _, table := range []string{mountsTable, authTable} {
		for _, e := range b.core.mounts.entries(table) {
			visible := e.Config.ListingVisibility == "unauth"
			if acl != nil && acl.AnyCapabilityUnder(e.routePath()) {
				visible = true
			}
			if !visible {
				continue
			}
			if table == authTable {
				auth[e.Path] = mountInfo(e, nil)
			} else {
				secret[e.Path] = mountInfo(e, nil)
			}
		}
	}
	return &logical.Response{Data: map[string]any{"secret": secret, "auth": auth}}, nil
}

func (b *systemBackend) callerACL(ctx context.Context, req *logical.Request) *policy.ACL {
	te, err := b.core.tokens.lookupInFlight(ctx, req.ClientToken)
	if err != nil || te == nil {
		return nil
	}
	acl, err := b.core.aclOf(ctx, te)
	if err != nil {
		return nil
	}
	return acl
}

// uiMount answers the preflight the vault CLI and consul-template make to
// learn which mount holds a path and its KV version.
func (b *systemBackend) uiMount(ctx context.Context, req *logical.Request, d *fw.FieldData) (*logical.Response, error) {
	path := strings.TrimPrefix(d.String("path"), "/")
	m, _ := b.core.mounts.route(path)
	acl := b.callerACL(ctx, req)
	if m == nil || acl == nil || !acl.AnyCapabilityUnder(m.entry.routePath()) {
		return nil, logical.Errorf(403, "preflight capability check returned 403, please ensure client's policies grant access to path %q", path)
	}
	data := mountInfo(m.entry, nil)
	data["path"] = m.entry.routePath()
	return &logical.Response{Data: data}, nil
}

func (b *systemBackend) keyStatus(ctx context.Context, req *logical.Request, _ *fw.FieldData) (*logical.Response, error) {
	ks := b.core.barrier.KeyStatus()
	return &logical.Response{Data: map[string]any{
		"term":         ks.Term,
		"install_time": ks.InstallTime.UTC().Format(time.RFC3339Nano),
		"encryptions":  ks.Encryptions,
	}}, nil
}

func (b *systemBackend) rotate(ctx context.Context, req *logical.Request, _ *fw.FieldData) (*logical.Response, error) {
	if _, err := b.core.barrier.Rotate(ctx); err != nil {
		return nil, err
	}
	return nil, nil
}

// canonicalPath is fullPath as the ACL sees it in a request: the names its
// mount keeps in lowercase lowercased (logical.Paths.CaseInsensitive), so
// capabilities answer for users/Alice what a request to it is decided on.
func (c *Core) canonicalPath(fullPath string) string {
	m, rel := c.mounts.route(fullPath)
	if m == nil {
		return fullPath
	}
	sp := m.backend.SpecialPaths()
	if sp == nil {
		return fullPath
	}
	if canon := logical.CanonicalCase(sp.CaseInsensitive, rel); canon != rel {
		return m.entry.routePath() + canon
	}
	return fullPath
}
