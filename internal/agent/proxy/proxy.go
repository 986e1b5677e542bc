// Package proxy is the agent's API proxy: it listens on tcp or unix
// listeners and forwards every request to the server, adding the agent's
// auto-auth token so an application that cannot log in can still call the
// API through the agent.
package proxy

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/user"
	"strconv"
	"strings"

	"github.com/arcasec/arca/api"
	"github.com/arcasec/arca/internal/agent/config"
)

// Options configure the proxy.
type Options struct {
	Client *api.Client // where requests go, and the agent's current token
	// UseAutoAuthToken is "true" (add the token when the request carries
	// none), "force" (always use it) or "false".
	UseAutoAuthToken string
	Logger           *slog.Logger
	// RequireRequestHeader refuses (412) a request without
	// X-Vault-Request: true, as a listener's require_request_header asks;
	// browsers cannot add that header to a cross-site request.
	RequireRequestHeader bool
	// Quit, when set, is called for POST /agent/v1/quit (Vault Agent's
	// agent_api { enable_quit = true }); unset, that path answers 404.
	Quit func()
}

const tokenHeader = "X-Vault-Token"

// maxInspectedBody caps the request body read to see which token a
// token lookup or renewal names.
const maxInspectedBody = 1 << 20

// Handler forwards requests to the server. With UseAutoAuthToken "true" a
// request without X-Vault-Token gets the agent's current token; with
// "force" the agent's token replaces any the request carries. Nothing else
// of the request is changed. When a token lookup or renewal answers about
// the agent's own token, its ID and accessor are removed from the response,
// so an application using the proxy never learns the agent's token.
func Handler(opts Options) http.Handler {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	target, err := url.Parse(opts.Client.Address())
	if err != nil {
		// api.NewClient already checked the address; this cannot happen.
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			respondError(w, http.StatusBadGateway, "the agent's server address is not a URL")
		})
	}
	mode := strings.ToLower(opts.UseAutoAuthToken)
	rp := &httputil.ReverseProxy{
		Transport: opts.Client.HTTPClient().Transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			// Rewrite drops forwarding headers from the outbound request;
			// the proxy passes them on as the client sent them.
			for _, h := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
				if v, ok := pr.In.Header[h]; ok {
					pr.Out.Header[h] = v
				}
			}
			if tokenPath(pr.Out) != "" {
				// The response may have to be edited: ask for it uncompressed.
				pr.Out.Header.Del("Accept-Encoding")
			}
		},
		ModifyResponse: func(resp *http.Response) error {
			return scrubAgentToken(resp, opts.Client.Token())
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			logger.Warn("api proxy: forwarding failed", "method", r.Method, "path", r.URL.Path, "error", err)
			respondError(w, http.StatusBadGateway, "the agent could not forward the request to the server")
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if opts.RequireRequestHeader && r.Header.Get("X-Vault-Request") != "true" {
			respondError(w, http.StatusPreconditionFailed, "missing 'X-Vault-Request' header")
			return
		}
		if strings.HasPrefix(r.URL.Path, "/agent/") {
			// The agent's own API: answered here, never forwarded to
			// the server (with the agent's token).
			agentAPI(w, r, opts.Quit)
			return
		}
		switch mode {
		case "force":
			if t := opts.Client.Token(); t != "" {
				r.Header.Set(tokenHeader, t)
			}
		case "true":
			if r.Header.Get(tokenHeader) == "" {
				if t := opts.Client.Token(); t != "" {
					r.Header.Set(tokenHeader, t)
				}
			}
		}
		if p := tokenPath(r); p == "auth/token/lookup" || p == "auth/token/renew" {
			r = readNamedToken(r)
		}
		rp.ServeHTTP(w, r)
	})
}

// agentAPI answers Vault Agent's /agent/v1/ paths as Vault Agent does:
// quit (when enabled) stops the agent; cache-clear succeeds, as there is no
// cache to clear; anything else is 404.
func agentAPI(w http.ResponseWriter, r *http.Request, quit func()) {
	switch strings.TrimSuffix(r.URL.Path, "/") {
	case "/agent/v1/quit":
		if quit == nil {
			notFound(w)
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		w.WriteHeader(http.StatusOK)
		quit()
	case "/agent/v1/cache-clear":
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		w.WriteHeader(http.StatusOK)
	default:
		notFound(w)
	}
}

// notFound is Vault's 404: {"errors":[]}.
func notFound(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	_, _ = io.WriteString(w, `{"errors":[]}`+"\n")
}

func respondError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string][]string{"errors": {msg}})
}

// tokenPath is the path under /v1/ of a token lookup or renewal, or "".
func tokenPath(r *http.Request) string {
	p := strings.TrimPrefix(r.URL.Path, "/v1/")
	if p == r.URL.Path {
		return ""
	}
	switch p = strings.Trim(p, "/"); p {
	case "auth/token/lookup-self", "auth/token/renew-self", "auth/token/lookup", "auth/token/renew":
		return p
	}
	return ""
}

type namedTokenKey struct{}

// readNamedToken reads the token a lookup or renewal names in its JSON body
// (or, for a GET lookup, its query) and keeps it in the request's context;
// the body is put back as it was.
func readNamedToken(r *http.Request) *http.Request {
	named := r.URL.Query().Get("token")
	if named == "" && r.Body != nil && r.Body != http.NoBody {
		head, err := io.ReadAll(io.LimitReader(r.Body, maxInspectedBody+1))
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(head), r.Body), r.Body}
		if err == nil && len(head) <= maxInspectedBody {
			var b struct {
				Token string `json:"token"`
			}
			if json.Unmarshal(head, &b) == nil {
				named = b.Token
			}
		}
	}
	return r.WithContext(context.WithValue(r.Context(), namedTokenKey{}, named))
}

// scrubAgentToken removes the agent's token and its accessor from the
// answer to a lookup or renewal of that token.
func scrubAgentToken(resp *http.Response, agentToken string) error {
	req := resp.Request
	if agentToken == "" || req == nil || resp.StatusCode != http.StatusOK {
		return nil
	}
	path := tokenPath(req)
	if path == "" {
		return nil
	}
	named := req.Header.Get(tokenHeader)
	if path == "auth/token/lookup" || path == "auth/token/renew" {
		named, _ = req.Context().Value(namedTokenKey{}).(string)
	}
	if subtle.ConstantTimeCompare([]byte(named), []byte(agentToken)) != 1 {
		return nil
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	resp.Body.Close()
	if err != nil {
		return err
	}
	var body map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil {
		// Not the JSON a lookup answers with: refuse rather than pass on
		// something that may hold the token.
		return fmt.Errorf("the answer to %s was not JSON", path)
	}
	if data, ok := body["data"].(map[string]any); ok {
		delete(data, "id")
		delete(data, "accessor")
	}
	if auth, ok := body["auth"].(map[string]any); ok {
		auth["client_token"] = ""
		auth["accessor"] = ""
	}
	out, err := json.Marshal(body)
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(out))
	resp.ContentLength = int64(len(out))
	resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
	resp.Header.Del("Content-Encoding")
	return nil
}

// Listen opens a listener stanza's socket (TLS unless tls_disable). A unix
// socket replaces a stale socket file left by an earlier run (but not a
// live one, nor a file that is not a socket) and takes socket_mode,
// socket_user and socket_group.
func Listen(l *config.Listener) (net.Listener, error) {
	if l == nil || strings.TrimSpace(l.Address) == "" {
		return nil, errors.New("listener: address is required")
	}
	var tlsConf *tls.Config
	if !l.TLSDisable {
		if l.TLSCertFile == "" || l.TLSKeyFile == "" {
			return nil, fmt.Errorf("listener %q %s: set tls_cert_file and tls_key_file, or tls_disable = true", l.Type, l.Address)
		}
		cert, err := tls.LoadX509KeyPair(l.TLSCertFile, l.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("listener %q %s: loading the TLS certificate: %w", l.Type, l.Address, err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if l.TLSMinVersion == "tls13" {
			tlsConf.MinVersion = tls.VersionTLS13
		}
	}
	var ln net.Listener
	var err error
	switch l.Type {
	case "tcp", "":
		ln, err = net.Listen("tcp", l.Address)
	case "unix":
		ln, err = listenUnix(l)
	default:
		return nil, fmt.Errorf("listener %q: a listener is \"tcp\" or \"unix\"", l.Type)
	}
	if err != nil {
		return nil, err
	}
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
	}
	return ln, nil
}

func listenUnix(l *config.Listener) (net.Listener, error) {
	path := l.Address
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("listener \"unix\": %s exists and is not a socket; not replacing it", path)
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("listener \"unix\": another process is listening on %s", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("listener \"unix\": removing the stale socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (net.Listener, error) {
		ln.Close()
		return nil, err
	}
	if l.SocketMode != 0 {
		if err := os.Chmod(path, l.SocketMode); err != nil {
			return fail(fmt.Errorf("listener \"unix\": socket_mode: %w", err))
		}
	}
	if l.SocketUser != "" || l.SocketGroup != "" {
		uid, gid := -1, -1
		if l.SocketUser != "" {
			if uid, err = lookupID(l.SocketUser, true); err != nil {
				return fail(err)
			}
		}
		if l.SocketGroup != "" {
			if gid, err = lookupID(l.SocketGroup, false); err != nil {
				return fail(err)
			}
		}
		if err := os.Chown(path, uid, gid); err != nil {
			return fail(fmt.Errorf("listener \"unix\": socket_user/socket_group: %w", err))
		}
	}
	return ln, nil
}

// lookupID resolves a user or group name, or takes a numeric ID as it is.
func lookupID(name string, isUser bool) (int, error) {
	if n, err := strconv.Atoi(name); err == nil && n >= 0 {
		return n, nil
	}
	var id string
	if isUser {
		u, err := user.Lookup(name)
		if err != nil {
			return 0, fmt.Errorf("listener \"unix\": socket_user %q: %w", name, err)
		}
		id = u.Uid
	} else {
		g, err := user.LookupGroup(name)
		if err != nil {
			return 0, fmt.Errorf("listener \"unix\": socket_group %q: %w", name, err)
		}
		id = g.Gid
	}
	return strconv.Atoi(id)
}
