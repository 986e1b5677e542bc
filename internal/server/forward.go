package server

import (
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/arcasec/arca/internal/logical"
)

// A standby answers the seal, health and leader endpoints itself; every
// other request belongs to the active server. By default the standby
// forwards it (a reverse proxy to the active server's api_addr, headers
// and body as sent, X-Forwarded-For added, and the client's address signed
// in X-Arca-Forwarded-Client), so a client pointed at any server works; with standby_redirect it answers 307 to the same path on
// the active server instead, as Vault's standbys do without forwarding.

// localPaths are served by every server, standby or not.
var localPaths = map[string]bool{
	"sys/init": true, "sys/seal-status": true, "sys/unseal": true, "sys/health": true, "sys/leader": true,
	// sys/seal is refused by a standby (it has no token store to check the
	// caller against) rather than forwarded, which would seal the active
	// server: Vault does the same.
	"sys/seal": true,
}

// forwardedHeader marks a request a standby forwarded, so a server that is
// itself a standby by the time it arrives does not forward it again.
const forwardedHeader = "X-Arca-Forwarded-By-Standby"

// forwardedClientHeader carries, on a forwarded request, the address of
// the client the standby served, authenticated with the cluster's
// forwarding key (core.SignForwardedClient). A server believes it only
// when it verifies; it never passes it on to the rest of the server.
const forwardedClientHeader = "X-Arca-Forwarded-Client"

// standbyHeader marks the answer of a server that turned out to be a
// standby: the forwarding standby forgets it as the active server.
const standbyHeader = "X-Arca-Standby"

// forwarder sends a standby's requests to the active server.
type forwarder struct {
	redirect  bool
	transport http.RoundTripper

	// The active server's address, remembered for leaderCacheFor so a
	// busy standby does not read the lock for every request; a failed
	// forward forgets it.
	mu       sync.Mutex
	leader   string
	leaderAt time.Time
}

const leaderCacheFor = time.Second

// activeAddr is the active server's api_addr, or "" when none is known.
func (h *Handler) activeAddr() (string, error) {
	f := h.forwarder
	f.mu.Lock()
	if f.leader != "" && time.Since(f.leaderAt) < leaderCacheFor {
		addr := f.leader
		f.mu.Unlock()
		return addr, nil
	}
	f.mu.Unlock()
	st, err := h.core.Leader()
	if err != nil || st.IsSelf {
		return "", err
	}
	f.mu.Lock()
	f.leader, f.leaderAt = st.LeaderAddress, time.Now()
	f.mu.Unlock()
	return st.LeaderAddress, nil
}

func (f *forwarder) forget() {
	f.mu.Lock()
	f.leader = ""
	f.mu.Unlock()
}

func newForwarder(redirect bool) *forwarder {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	t.ResponseHeaderTimeout = 0
	t.IdleConnTimeout = 30 * time.Second
	return &forwarder{redirect: redirect, transport: t}
}

// forward answers r on a standby: through the active server, or with a
// redirect to it.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get(forwardedHeader) != "" {
		w.Header().Set(standbyHeader, "true")
		writeErrors(w, http.StatusServiceUnavailable, "this server is a standby and the request was already forwarded once; retry")
		return
	}
	leader, err := h.activeAddr()
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if leader == "" {
		writeErrors(w, http.StatusServiceUnavailable, "this server is a standby and no active server is known yet; retry")
		return
	}
	target, err := url.Parse(leader)
	if err != nil || target.Host == "" {
		h.forwarder.forget()
		h.writeError(w, r, logical.Errorf(http.StatusServiceUnavailable, "the active server advertises an api_addr this standby cannot use: %q", leader))
		return
	}
	if h.forwarder.redirect {
		u := *target
		u.Path = strings.TrimSuffix(target.Path, "/") + r.URL.Path
		u.RawPath = ""
		u.RawQuery = r.URL.RawQuery
		w.Header().Set("Location", u.String())
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusTemporaryRedirect)
		return
	}
	// The client's address goes along, signed for the method and the
	// request URI the active server will see. A standby that cannot sign
	// (no forwarding key yet) does not forward: the active server would
	// take the standby's own address for the client's.
	out := *r.URL
	(&httputil.ProxyRequest{Out: &http.Request{URL: &out}}).SetURL(target)
	client, err := h.core.SignForwardedClient(r.Context(), r.RemoteAddr, r.Method, out.RequestURI(), time.Now())
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
			pr.Out.Host = target.Host
			pr.Out.Header.Set(forwardedHeader, "1")
			// Whatever the client sent under this name is replaced.
			pr.Out.Header.Set(forwardedClientHeader, client)
		},
		Transport: h.forwarder.transport,
		ModifyResponse: func(resp *http.Response) error {
			if resp.Header.Get(standbyHeader) != "" {
				h.forwarder.forget()
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			h.forwarder.forget()
			h.logger.Warn("forwarding a request to the active server failed", "active", leader, "error", err)
			writeErrors(w, http.StatusServiceUnavailable, "this server is a standby and could not reach the active server; retry")
		},
	}
	proxy.ServeHTTP(w, r)
}

// clientAddress settles the address of the client of r. A request that
// carries a forwarded client address whose MAC verifies (a standby
// forwarded it) is served as from that address; the header is removed
// either way, so nothing downstream sees it. ok is false for a request a
// standby marked as forwarded whose address does not verify: it is
// refused rather than served as from the standby.
func (h *Handler) clientAddress(r *http.Request) (_ *http.Request, ok bool) {
	vals := r.Header.Values(forwardedClientHeader)
	forwarded := r.Header.Get(forwardedHeader) != ""
	if len(vals) == 0 {
		return r, !forwarded
	}
	r = r.Clone(r.Context())
	r.Header.Del(forwardedClientHeader)
	if len(vals) == 1 {
		if addr, verified := h.core.VerifyForwardedClient(r.Context(), vals[0], r.Method, r.URL.RequestURI(), time.Now()); verified {
			r.RemoteAddr = addr
			return r, true
		}
	}
	level := slog.LevelDebug
	if forwarded {
		level = slog.LevelWarn // clocks apart, or a misconfigured api_addr
	}
	h.logger.Log(r.Context(), level, "ignoring a forwarded client address that does not verify", "remote_address", r.RemoteAddr, "forwarded_by_standby", forwarded)
	return r, !forwarded
}
