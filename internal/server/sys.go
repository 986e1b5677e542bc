package server

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/arcasec/arca/internal/core"
	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/logical/framework"
	"github.com/arcasec/arca/internal/seal"
	"github.com/arcasec/arca/internal/version"
)

// buildDate is reported by seal-status; set at link time for releases.
var buildDate = "2026-11-22T00:00:00Z"

func methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	writeErrors(w, http.StatusMethodNotAllowed, "method "+r.Method+" is not supported on "+r.URL.Path)
}

func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) (map[string]any, bool) {
	data, err := h.decodeBody(w, r)
	if err != nil {
		h.writeError(w, r, err)
		return nil, false
	}
	return data, true
}

func (h *Handler) handleInit(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := requestContext(r)
	defer cancel()
	switch r.Method {
	case http.MethodGet:
		ok, err := h.core.Initialized(ctx)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]bool{"initialized": ok})
	case http.MethodPut, http.MethodPost:
		data, ok := h.readBody(w, r)
		if !ok {
			return
		}
		st, err := h.core.SealStatus(ctx)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		// As in Vault, the fields of the other kind of seal are refused
		// rather than ignored.
		own, other := []string{"secret_shares", "secret_threshold"}, []string{"recovery_shares", "recovery_threshold"}
		if st.RecoverySeal {
			own, other = other, own
		}
		for _, f := range other {
			if v, ok := data[f]; ok && v != nil && fmt.Sprint(v) != "0" {
				h.writeError(w, r, logical.BadRequest("parameter %s is not applicable to seal type %s", f, st.Type))
				return
			}
		}
		for _, f := range []string{"pgp_keys", "recovery_pgp_keys"} {
			if keys, _ := data[f].([]any); len(keys) > 0 {
				h.writeError(w, r, logical.BadRequest("%s are not supported: Arca returns the key shares in plaintext over TLS", f))
				return
			}
		}
		if v, _ := data["root_token_pgp_key"].(string); v != "" {
			h.writeError(w, r, logical.BadRequest("root_token_pgp_key is not supported: Arca returns the root token in plaintext over TLS"))
			return
		}
		var conf, recovery seal.Config
		if st.RecoverySeal {
			// No recovery keys at all is Vault's default here.
			if recovery.Shares, err = optionalIntField(data, own[0]); err == nil {
				recovery.Threshold, err = optionalIntField(data, own[1])
			}
		} else if conf.Shares, err = intField(data, own[0]); err == nil {
			conf.Threshold, err = intField(data, own[1])
		}
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		res, err := h.core.InitWithRecovery(ctx, conf, recovery)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		hexKeys, b64Keys := encodeKeys(res.Shares)
		body := map[string]any{"keys": hexKeys, "keys_base64": b64Keys, "root_token": res.RootToken}
		if len(res.RecoveryShares) > 0 {
			body["recovery_keys"], body["recovery_keys_base64"] = encodeKeys(res.RecoveryShares)
		}
		writeJSON(w, http.StatusOK, body)
	default:
		methodNotAllowed(w, r)
	}
}

// encodeKeys is keys in hex and in base64.
func encodeKeys(keys [][]byte) (hexKeys, b64Keys []string) {
	hexKeys, b64Keys = make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		hexKeys[i] = hex.EncodeToString(k)
		b64Keys[i] = base64.StdEncoding.EncodeToString(k)
	}
	return hexKeys, b64Keys
}

// optionalIntField is intField with 0 for a missing field.
func optionalIntField(data map[string]any, name string) (int, error) {
	if _, ok := data[name]; !ok {
		return 0, nil
	}
	return intField(data, name)
}

func intField(data map[string]any, name string) (int, error) {
	v, ok := data[name]
	if !ok {
		return 0, logical.BadRequest("missing required field %q", name)
	}
	d := &framework.FieldData{Raw: map[string]any{name: v}, Schema: map[string]*framework.FieldSchema{name: {Type: framework.TypeInt}}}
	if err := d.Validate(); err != nil {
		return 0, err
	}
	return d.Int(name), nil
}

// sealStatusBody is the bare (non-envelope) body of seal-status and unseal.
func (h *Handler) sealStatusBody(r *http.Request) (map[string]any, error) {
	st, err := h.core.SealStatus(r.Context())
	if err != nil {
		return nil, err
	}
	body := map[string]any{
		"type":          st.Type,
		"initialized":   st.Initialized,
		"sealed":        st.Sealed,
		"t":             st.Threshold,
		"n":             st.Shares,
		"progress":      st.Progress,
		"nonce":         st.Nonce,
		"version":       version.VaultAPI,
		"build_date":    buildDate,
		"migration":     st.Migration,
		"recovery_seal": st.RecoverySeal,
		"storage_type":  st.StorageType,
	}
	if !st.Sealed {
		body["cluster_name"] = st.ClusterName
		body["cluster_id"] = st.ClusterID
	}
	return body, nil
}

func (h *Handler) handleSealStatus(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, r)
		return
	}
	body, err := h.sealStatusBody(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

func (h *Handler) handleUnseal(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut && r.Method != http.MethodPost {
		methodNotAllowed(w, r)
		return
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	data, ok := h.readBody(w, r)
	if !ok {
		return
	}
	if reset, _ := data["reset"].(bool); reset {
		if err := h.core.ResetUnseal(); err != nil {
			h.writeError(w, r, err)
			return
		}
	} else {
		key, _ := data["key"].(string)
		if key == "" {
			h.writeError(w, r, logical.BadRequest("'key' must be specified in request body as JSON, or 'reset' set to true"))
			return
		}
		share, err := decodeKey(key)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		migrate, err := boolField(data, "migrate")
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		if err := h.core.UnsealMigrate(ctx, share, migrate); err != nil {
			h.writeError(w, r, err)
			return
		}
	}
	body, err := h.sealStatusBody(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// boolField reads an optional boolean field (false when missing).
func boolField(data map[string]any, name string) (bool, error) {
	v, ok := data[name]
	if !ok || v == nil {
		return false, nil
	}
	d := &framework.FieldData{Raw: map[string]any{name: v}, Schema: map[string]*framework.FieldSchema{name: {Type: framework.TypeBool}}}
	if err := d.Validate(); err != nil {
		return false, err
	}
	return d.Bool(name), nil
}

// decodeKey accepts an unseal key share in hex or base64.
func decodeKey(key string) ([]byte, error) {
	key = strings.TrimSpace(key)
	if b, err := hex.DecodeString(key); err == nil {
		return b, nil
	}
	if b, err := base64.StdEncoding.DecodeString(key); err == nil {
		return b, nil
	}
	return nil, logical.BadRequest("'key' must be a valid hex or base64 string")
}

// requireSudo checks that the request's token has sudo on path.
// requireSudo checks that the caller's token has sudo on path and records
// the request on the audit devices; it answers the client itself and
// returns false when the request must not go ahead.
func (h *Handler) requireSudo(w http.ResponseWriter, r *http.Request, path string) bool {
	dec, err := h.core.CheckToken(r.Context(), clientToken(r), r.RemoteAddr, path, logical.UpdateOperation)
	if err != nil {
		h.writeError(w, r, err)
		return false
	}
	var denied error
	if !dec.Allowed || !dec.Sudo {
		denied = logical.ErrPermissionDenied
	}
	req := &logical.Request{ID: uuid.NewString(), Operation: logical.UpdateOperation, Path: path,
		ClientToken: clientToken(r), Headers: r.Header, RemoteAddr: r.RemoteAddr}
	if err := h.core.RecordRequest(r.Context(), req, denied); err != nil {
		h.writeRequestError(w, r, req.ID, err)
		return false
	}
	if denied != nil {
		writeErrors(w, http.StatusForbidden, "permission denied")
		return false
	}
	return true
}

func (h *Handler) handleSeal(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut && r.Method != http.MethodPost {
		methodNotAllowed(w, r)
		return
	}
	if h.core.Standby() {
		writeErrors(w, http.StatusBadRequest, "this server is a standby, which cannot be sealed: it cannot check the token; restart it instead, or seal the active server")
		return
	}
	if !h.requireSudo(w, r, "sys/seal") {
		return
	}
	h.core.Seal(r.Context())
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) handleStepDown(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut && r.Method != http.MethodPost {
		methodNotAllowed(w, r)
		return
	}
	if !h.requireSudo(w, r, "sys/step-down") {
		return
	}
	// A server without HA is always active: stepping down does nothing.
	if err := h.core.StepDown(r.Context()); err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) handleHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, r)
		return
	}
	q := r.URL.Query()
	code := func(name string, def int) (int, bool) {
		v := q.Get(name)
		if v == "" {
			return def, true
		}
		c, err := strconv.Atoi(v)
		if err != nil || c < 100 || c > 999 {
			writeErrors(w, http.StatusBadRequest, "invalid value for "+name+": "+strconv.Quote(v))
			return 0, false
		}
		return c, true
	}
	active, ok1 := code("activecode", http.StatusOK)
	sealedCode, ok2 := code("sealedcode", http.StatusServiceUnavailable)
	uninit, ok3 := code("uninitcode", http.StatusNotImplemented)
	standbyCode, ok4 := code("standbycode", http.StatusTooManyRequests)
	_, ok5 := code("perfstandbycode", 473)
	if !(ok1 && ok2 && ok3 && ok4 && ok5) {
		return
	}
	// standbyok answers a standby with the active code; Arca has no
	// performance standbys, so perfstandbyok changes nothing.
	for _, name := range []string{"standbyok", "perfstandbyok"} {
		if v := q.Get(name); v != "" {
			ok, err := strconv.ParseBool(v)
			if err != nil {
				writeErrors(w, http.StatusBadRequest, "invalid value for "+name+": "+strconv.Quote(v))
				return
			}
			if ok && name == "standbyok" {
				standbyCode = active
			}
		}
	}
	initialized, err := h.core.Initialized(r.Context())
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	sealed := h.core.Sealed()
	standby := !sealed && h.core.Standby()
	status := active
	switch {
	case !initialized:
		status = uninit
	case sealed:
		status = sealedCode
	case standby:
		status = standbyCode
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return
	}
	body := map[string]any{
		"initialized":                  initialized,
		"sealed":                       sealed,
		"standby":                      standby,
		"performance_standby":          false,
		"replication_performance_mode": "disabled",
		"replication_dr_mode":          "disabled",
		"server_time_utc":              time.Now().Unix(),
		"version":                      version.VaultAPI,
		"enterprise":                   false,
	}
	if name, id := h.core.ClusterInfo(); id != "" {
		body["cluster_name"], body["cluster_id"] = name, id
	}
	writeJSON(w, status, body)
}

func (h *Handler) handleLeader(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, r)
		return
	}
	if h.core.Sealed() {
		writeErrors(w, http.StatusServiceUnavailable, logical.ErrSealed.Error())
		return
	}
	st, err := h.core.Leader()
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"ha_enabled":                          st.HAEnabled,
		"is_self":                             st.IsSelf,
		"active_time":                         st.ActiveTime.UTC().Format(time.RFC3339Nano),
		"leader_address":                      st.LeaderAddress,
		"leader_cluster_address":              st.LeaderClusterAddress,
		"performance_standby":                 false,
		"performance_standby_last_remote_wal": 0,
	})
}

// generateRootBody is the answer of sys/generate-root/attempt and update.
func generateRootBody(st *core.GenerateRootStatus, otp string) map[string]any {
	return map[string]any{
		"started":            st.Started,
		"nonce":              st.Nonce,
		"progress":           st.Progress,
		"required":           st.Required,
		"complete":           st.Complete,
		"encoded_token":      st.EncodedToken,
		"encoded_root_token": st.EncodedToken,
		"pgp_fingerprint":    "",
		"otp":                otp,
		"otp_length":         core.RootOTPLength,
	}
}

func (h *Handler) handleGenerateRootAttempt(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := requestContext(r)
	defer cancel()
	var otp string
	switch r.Method {
	case http.MethodGet:
	case http.MethodPut, http.MethodPost:
		data, ok := h.readBody(w, r)
		if !ok {
			return
		}
		if v, _ := data["pgp_key"].(string); v != "" {
			h.writeError(w, r, logical.BadRequest("pgp_key is not supported: start the generation with an otp (or none, and use the one returned)"))
			return
		}
		if v, ok := data["otp"]; ok && v != nil {
			if otp, ok = v.(string); !ok {
				h.writeError(w, r, logical.BadRequest("otp must be a string of %d base62 characters", core.RootOTPLength))
				return
			}
		}
		generated := otp == ""
		if generated {
			otp = core.NewRootOTP()
		}
		if err := h.core.GenerateRootInit(ctx, otp); err != nil {
			h.writeError(w, r, err)
			return
		}
		if !generated {
			otp = "" // the caller has it; answer it only when made here
		}
	case http.MethodDelete:
		if err := h.core.GenerateRootCancel(); err != nil {
			h.writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		methodNotAllowed(w, r)
		return
	}
	st, err := h.core.GenerateRootStatus(ctx)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, generateRootBody(st, otp))
}

func (h *Handler) handleGenerateRootUpdate(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut && r.Method != http.MethodPost {
		methodNotAllowed(w, r)
		return
	}
	ctx, cancel := requestContext(r)
	defer cancel()
	data, ok := h.readBody(w, r)
	if !ok {
		return
	}
	key, _ := data["key"].(string)
	if key == "" {
		h.writeError(w, r, logical.BadRequest("'key' must be specified in request body as JSON"))
		return
	}
	share, err := decodeKey(key)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	nonce, _ := data["nonce"].(string)
	if nonce == "" {
		h.writeError(w, r, logical.BadRequest("'nonce' must be specified in request body as JSON: the nonce of the root generation in progress"))
		return
	}
	st, err := h.core.GenerateRootUpdate(ctx, share, nonce)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, generateRootBody(st, ""))
}
