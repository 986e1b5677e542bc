// Package proxy is the agent's API proxy: it listens on tcp or unix
// listeners and forwards every request to the server, adding the agent's
// auto-auth token so an application that cannot log in can still call the
// API through the agent.
package proxy

import (
	"errors"
	"log/slog"
	"net"
	"net/http"

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
}

// Handler forwards requests to the server.
func Handler(opts Options) http.Handler {
	return http.NotFoundHandler()
}

// Listen opens a listener stanza's socket (TLS unless tls_disable).
func Listen(l *config.Listener) (net.Listener, error) {
	return nil, errors.New("proxy: not implemented")
}
