// Package server is Arca's HTTP front: listeners and TLS, request decoding,
// the Vault-compatible response envelope and error mapping, the seal and
// health endpoints that live outside the core's logical paths, config
// loading and dev mode.
package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/arcasec/arca/internal/core"
	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/logical/framework"
	"github.com/google/uuid"
)

func init() {
	// Request IDs come from crypto/rand through a buffer: one read serves
	// many requests.
	uuid.EnableRandPool()
}

// DefaultMaxRequestSize is the largest request body accepted unless the
// listener configures another limit.
const DefaultMaxRequestSize = 32 << 20

// Handler serves the /v1/ API for one core.
type Handler struct {
	core               *core.Core
	logger             *slog.Logger
	maxRequestSize     int64
	maxRequestDuration time.Duration
	json               JSONLimits
	forwarder          *forwarder
}

// HandlerOptions are a listener's request limits; zero values take the
// defaults.
type HandlerOptions struct {
	MaxRequestSize     int64
	MaxRequestDuration time.Duration
	JSON               JSONLimits
	// StandbyRedirect makes a standby answer 307 to the active server
	// instead of forwarding the request to it.
	StandbyRedirect bool
}

type rateDecision = core.RateLimitDecision

// NewHandler returns the API handler.
func NewHandler(c *core.Core, logger *slog.Logger, opts HandlerOptions) *Handler {
	if opts.MaxRequestSize <= 0 {
		opts.MaxRequestSize = DefaultMaxRequestSize
	}
	if opts.MaxRequestDuration <= 0 {
		opts.MaxRequestDuration = DefaultMaxRequestDuration
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Handler{core: c, logger: logger, maxRequestSize: opts.MaxRequestSize,
		maxRequestDuration: opts.MaxRequestDuration, json: opts.JSON.withDefaults(),
		forwarder: newForwarder(opts.StandbyRedirect)}
}

// injectedPaths are the legacy sys/ routes whose data members are repeated
// at the top level of the response, where old clients read them.
var injectedExact = map[string]bool{
	"sys/audit": true, "sys/auth": true, "sys/capabilities": true, "sys/capabilities-accessor": true,
	"sys/capabilities-self": true, "sys/ha-status": true, "sys/key-status": true, "sys/mounts": true,
	"sys/policy": true, "sys/remount": true, "sys/rotate": true, "sys/wrapping/wrap": true,
	"sys/config/cors": true, "sys/rotate/keyring": true,
}

var injectedPrefixes = []string{"sys/audit/", "sys/audit-hash/", "sys/auth/", "sys/mounts/", "sys/policy/"}

func injected(path string) bool {
	path = strings.TrimSuffix(path, "/")
	if injectedExact[path] {
		return true
	}
	for _, p := range injectedPrefixes {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/v1/") {
		writeErrors(w, http.StatusNotFound)
		return
	}
	path := r.URL.Path[len("/v1/"):]
	if err := checkPath(path); err != nil {
		writeErrors(w, http.StatusBadRequest, err.Error())
		return
	}
	r, ok := h.clientAddress(r)
	if !ok && !localPaths[path] {
		if h.core.Standby() {
			w.Header().Set(standbyHeader, "true")
		}
		writeErrors(w, http.StatusServiceUnavailable, "a standby forwarded this request with a client address this server cannot verify; check that the servers' clocks agree within a minute, and retry")
		return
	}
	// A quota with a role needs the login's role, which the body tells:
	// such requests are checked in handleLogical once it is read.
	if !h.core.RateLimitNeedsRole(path) && !h.rateLimited(w, r, path, h.core.CheckRateLimit(path, r.RemoteAddr)) {
		return
	}
	if !localPaths[path] && h.core.Standby() {
		h.forward(w, r)
		return
	}
	switch path {
	case "sys/init":
		h.handleInit(w, r)
		return
	case "sys/seal-status":
		h.handleSealStatus(w, r)
		return
	case "sys/unseal":
		h.handleUnseal(w, r)
		return
	case "sys/seal":
		h.handleSeal(w, r)
		return
	case "sys/step-down":
		h.handleStepDown(w, r)
		return
	case "sys/health":
		h.handleHealth(w, r)
		return
	case "sys/leader":
		h.handleLeader(w, r)
		return
	case "sys/generate-root/attempt":
		h.handleGenerateRootAttempt(w, r)
		return
	case "sys/generate-root/update":
		h.handleGenerateRootUpdate(w, r)
		return
	}
	h.handleLogical(w, r, path)
}

// rateLimited answers a request a quota refuses and returns false; it
// returns true when the request may go on.
func (h *Handler) rateLimited(w http.ResponseWriter, r *http.Request, path string, d core.RateLimitDecision) bool {
	setRateLimitHeaders(w, d)
	if d.Allowed {
		return true
	}
	h.logger.Warn("request refused by a rate limit quota", "quota", d.Quota, "path", logical.RedactPathToken(path), "remote_address", r.RemoteAddr)
	writeRateLimited(w, path, d)
	return false
}

// checkPath refuses paths that try to climb out of where they point.
func checkPath(path string) error {
	for _, seg := range strings.Split(path, "/") {
		if seg == ".." || seg == "." {
			return fmt.Errorf("invalid path %q: '.' and '..' segments are not allowed", path)
		}
	}
	if strings.ContainsAny(path, "\x00") {
		return errors.New("invalid path: contains a NUL byte")
	}
	return nil
}

func clientToken(r *http.Request) string {
	if t := r.Header.Get("X-Vault-Token"); t != "" {
		return t
	}
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return ""
}

// operation maps the HTTP method (and ?list) to a logical operation.
func operation(r *http.Request) (logical.Operation, error) {
	switch r.Method {
	case http.MethodGet:
		if v := r.URL.Query().Get("list"); v != "" {
			list, err := strconv.ParseBool(v)
			if err != nil {
				return "", logical.BadRequest("invalid value for 'list' query parameter: %q", v)
			}
			if list {
				return logical.ListOperation, nil
			}
		}
		if v := r.URL.Query().Get("help"); v != "" {
			if help, _ := strconv.ParseBool(v); help {
				return logical.HelpOperation, nil
			}
		}
		return logical.ReadOperation, nil
	case "LIST":
		return logical.ListOperation, nil
	case http.MethodPost, http.MethodPut:
		return logical.UpdateOperation, nil
	case http.MethodPatch:
		return logical.PatchOperation, nil
	case http.MethodDelete:
		return logical.DeleteOperation, nil
	}
	return "", logical.Errorf(http.StatusMethodNotAllowed, "unsupported method %s", r.Method)
}

func (h *Handler) handleLogical(w http.ResponseWriter, r *http.Request, path string) {
	op, err := operation(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	req := &logical.Request{
		ID:          uuid.NewString(),
		Operation:   op,
		Path:        path,
		ClientToken: clientToken(r),
		Headers:     r.Header,
		RemoteAddr:  r.RemoteAddr,
	}
	if req.WrapTTL, err = wrapTTL(r); err != nil {
		h.writeError(w, r, err)
		return
	}
	switch op {
	case logical.UpdateOperation, logical.PatchOperation:
		if op == logical.PatchOperation {
			ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if ct != "application/merge-patch+json" {
				writeErrors(w, http.StatusUnsupportedMediaType, fmt.Sprintf("PATCH requires Content-Type application/merge-patch+json, got %q", r.Header.Get("Content-Type")))
				return
			}
			req.ContentType = ct
		}
		decode := h.decodeBody
		if op == logical.UpdateOperation && isFormBody(r) && h.core.AcceptsFormBody(path) {
			decode = h.decodeFormBody
		}
		data, err := decode(w, r)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		req.Data = data
	default:
		req.Data = queryData(r)
	}
	if op == logical.ListOperation && !strings.HasSuffix(req.Path, "/") {
		req.Path += "/"
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.maxRequestDuration)
	defer cancel()
	if h.core.RateLimitNeedsRole(path) && !h.rateLimited(w, r, path, h.core.CheckLoginRateLimit(ctx, path, r.RemoteAddr, req.Data)) {
		return
	}
	start := time.Now()
	resp, err := h.core.HandleRequest(ctx, req)
	if err == nil && ctx.Err() == context.DeadlineExceeded {
		err = logical.Errorf(http.StatusServiceUnavailable, "the request took longer than the %s limit (max_request_duration)", h.maxRequestDuration)
	}
	if h.logger.Enabled(ctx, slog.LevelDebug) {
		h.logger.Debug("request", "request_id", req.ID, "method", r.Method, "path", logical.RedactPathToken(path),
			"operation", string(req.Operation), "status", logical.StatusOf(err), "duration", time.Since(start), "remote_address", r.RemoteAddr)
	}
	h.respond(w, r, req, path, resp, err)
}

// wrapTTL reads the response-wrapping request headers: X-Vault-Wrap-TTL
// in seconds or as a duration string, and X-Vault-Wrap-Format, of which
// only the token format ("uuid") is served.
func wrapTTL(r *http.Request) (time.Duration, error) {
	v := r.Header.Get("X-Vault-Wrap-TTL")
	if v == "" {
		return 0, nil
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil && secs > math.MaxInt64/int64(time.Second) {
		return 0, logical.BadRequest("error parsing X-Vault-Wrap-TTL header: %d seconds is too long", secs)
	}
	ttl, err := framework.ParseDuration(v)
	if err != nil {
		return 0, logical.BadRequest("error parsing X-Vault-Wrap-TTL header: %v", err)
	}
	if ttl < 0 {
		return 0, logical.BadRequest("error parsing X-Vault-Wrap-TTL header %q: the wrapping TTL cannot be negative", v)
	}
	if f := r.Header.Get("X-Vault-Wrap-Format"); f != "" && f != "uuid" {
		return 0, logical.BadRequest("unsupported X-Vault-Wrap-Format %q: only \"uuid\" wrapping tokens are issued", f)
	}
	return ttl, nil
}

// queryData turns query parameters into request data; "list" and "help"
// steer the operation and are not data.
func queryData(r *http.Request) map[string]any {
	if r.URL.RawQuery == "" {
		return nil
	}
	q := r.URL.Query()
	data := make(map[string]any, len(q))
	for k, vs := range q {
		if k == "list" || k == "help" {
			continue
		}
		if len(vs) == 1 {
			data[k] = vs[0]
			continue
		}
		list := make([]any, len(vs))
		for i, v := range vs {
			list[i] = v
		}
		data[k] = list
	}
	return data
}

// decodeBody reads a JSON object body within the size limit.
func (h *Handler) decodeBody(w http.ResponseWriter, r *http.Request) (map[string]any, error) {
	body := http.MaxBytesReader(w, r.Body, h.maxRequestSize)
	raw, err := io.ReadAll(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, logical.Errorf(http.StatusRequestEntityTooLarge, "request body is larger than the %d-byte limit", h.maxRequestSize)
		}
		return nil, logical.BadRequest("reading the request body: %v", err)
	}
	if err := h.json.check(raw); err != nil {
		return nil, err
	}
	return DecodeJSONBody(raw)
}

// isFormBody reports whether r's body is form-encoded.
func isFormBody(r *http.Request) bool {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return ct == "application/x-www-form-urlencoded"
}

// decodeFormBody reads an application/x-www-form-urlencoded body, for the
// paths whose backend declared it takes one (an OIDC form_post callback).
// Each field is a string; a field given twice is refused rather than
// guessed at.
func (h *Handler) decodeFormBody(w http.ResponseWriter, r *http.Request) (map[string]any, error) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxRequestSize))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, logical.Errorf(http.StatusRequestEntityTooLarge, "request body is larger than the %d-byte limit", h.maxRequestSize)
		}
		return nil, logical.BadRequest("reading the request body: %v", err)
	}
	// curl -d labels JSON as a form: a body that opens like a JSON object
	// is JSON (a browser's form encodes '{' as %7B).
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '{' {
		if err := h.json.check(raw); err != nil {
			return nil, err
		}
		return DecodeJSONBody(raw)
	}
	form, err := url.ParseQuery(string(raw))
	if err != nil {
		return nil, logical.BadRequest("failed to parse the form-encoded body: malformed encoding")
	}
	if len(form) == 0 {
		return nil, nil
	}
	data := make(map[string]any, len(form))
	for k, v := range form {
		if len(v) != 1 {
			return nil, logical.BadRequest("form field %q is given %d times; give it once", k, len(v))
		}
		data[k] = v[0]
	}
	return data, nil
}

// DecodeJSONBody parses a request body: empty, null, or one JSON object.
// Numbers stay json.Number so integers survive exactly.
func DecodeJSONBody(raw []byte) (map[string]any, error) {
	raw = bytes.TrimSpace(raw)
	// The Vault Go client sends "null" for a request without data (its
	// Logical().Unwrap does); Vault reads it as no body.
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] != '{' {
		return nil, logical.BadRequest("the request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var data map[string]any
	if err := dec.Decode(&data); err != nil {
		return nil, logical.BadRequest("failed to parse JSON input: %v", jsonErrorText(err))
	}
	if dec.More() {
		return nil, logical.BadRequest("failed to parse JSON input: unexpected data after the JSON object")
	}
	return data, nil
}

// jsonErrorText describes a JSON syntax error without echoing the input,
// which may hold a secret.
func jsonErrorText(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("value of type %s cannot go into %s", te.Value, te.Type)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of input"
	}
	return "malformed JSON"
}

func (h *Handler) respond(w http.ResponseWriter, r *http.Request, req *logical.Request, path string, resp *logical.Response, err error) {
	if err != nil {
		if resp != nil && resp.Data != nil && logical.StatusOf(err) < 500 {
			writeJSON(w, logical.StatusOf(err), map[string]any{"errors": []string{err.Error()}, "data": resp.Data})
			return
		}
		h.writeRequestError(w, r, req.ID, err)
		return
	}
	if resp == nil {
		switch req.Operation {
		case logical.ReadOperation, logical.ListOperation, logical.HelpOperation:
			writeErrors(w, http.StatusNotFound)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
		return
	}
	if resp.Raw != nil {
		ct := resp.RawContentType
		if ct == "" {
			ct = "application/json"
		}
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Cache-Control", "no-store")
		status := resp.StatusCode
		if status == 0 {
			status = http.StatusOK
		}
		w.WriteHeader(status)
		w.Write(resp.Raw)
		return
	}
	if req.Operation == logical.ListOperation && emptyList(resp) {
		writeErrors(w, http.StatusNotFound)
		return
	}
	if resp.Data == nil && resp.Auth == nil && resp.Secret == nil && resp.WrapInfo == nil && len(resp.Warnings) == 0 && resp.StatusCode == 0 {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	env := logical.NewHTTPResponse(resp, req.ID, req.MountType)
	if env.WrapInfo != nil {
		// A wrapped response says nothing but how to unwrap it.
		env = &logical.HTTPResponse{WrapInfo: env.WrapInfo}
	}
	status := resp.StatusCode
	if status == 0 {
		status = http.StatusOK
	}
	if injected(path) && resp.Data != nil {
		writeJSON(w, status, injectData(env))
		return
	}
	writeJSON(w, status, env)
}

// injectData renders the envelope with the data members also at the top
// level.
func injectData(env *logical.HTTPResponse) map[string]any {
	out := make(map[string]any, len(env.Data)+9)
	for k, v := range env.Data {
		out[k] = v
	}
	out["request_id"] = env.RequestID
	out["lease_id"] = env.LeaseID
	out["renewable"] = env.Renewable
	out["lease_duration"] = env.LeaseDuration
	out["data"] = env.Data
	out["wrap_info"] = env.WrapInfo
	out["warnings"] = env.Warnings
	out["auth"] = env.Auth
	out["mount_type"] = env.MountType
	return out
}

func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	h.writeRequestError(w, r, "", err)
}

// writeRequestError answers with err. The details of an unexpected internal
// error go to the server log only, under the request ID the audit log also
// carries, so the client learns nothing about the server's insides; a
// CodedError's message is written for the client and is sent as is.
func (h *Handler) writeRequestError(w http.ResponseWriter, r *http.Request, requestID string, err error) {
	status := logical.StatusOf(err)
	var coded *logical.CodedError
	if status >= 500 && status != http.StatusServiceUnavailable && !errors.As(err, &coded) {
		if requestID == "" {
			requestID = uuid.NewString()
		}
		h.logger.Error("request failed", "request_id", requestID, "method", r.Method, "path", logical.RedactPathToken(strings.TrimPrefix(r.URL.Path, "/v1/")), "error", err)
		writeErrors(w, status, fmt.Sprintf("internal error; the server log has details under request_id %s", requestID))
		return
	}
	if errors.Is(err, logical.ErrUnsupportedPath) {
		writeErrors(w, status, "unsupported path")
		return
	}
	writeErrors(w, status, err.Error())
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func writeJSON(w http.ResponseWriter, status int, v any) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		buf.Reset()
		status = http.StatusInternalServerError
		buf.WriteString(`{"errors":["the response could not be encoded"]}` + "\n")
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func writeErrors(w http.ResponseWriter, status int, msgs ...string) {
	if msgs == nil {
		msgs = []string{}
	}
	writeJSON(w, status, map[string][]string{"errors": msgs})
}

// requestContext bounds a non-logical request's work.
func requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 90*time.Second)
}

// emptyList reports whether a LIST response has no keys: Vault answers such a
// list with 404, as it answers a read of nothing, whichever backend built it.
// A response with other data and no "keys" field, or a wrapped one, is sent as is.
func emptyList(resp *logical.Response) bool {
	if resp.WrapInfo != nil {
		return false
	}
	if len(resp.Data) == 0 {
		return len(resp.Warnings) == 0 && resp.Auth == nil && resp.Secret == nil
	}
	switch k := resp.Data["keys"].(type) {
	case []string:
		return len(k) == 0
	case []any:
		return len(k) == 0
	}
	return false
}
